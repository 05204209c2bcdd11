// The `bridges:` section (docs/config.md, docs/bridge.md): its typed form,
// parsed and checked by src/bridge/config.cc, reached as
// topo.get<bridge::Config>().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/topology.hh"

namespace sluice::config {

// bridges: (docs/bridge.md). Per-port settings of one bridge port.
struct BridgePortSettings {
  Mark mark;
  std::string port;
  std::optional<unsigned> pvid;    // vlan_filtering: VID for untagged frames (0/none: drop them)
  std::vector<unsigned> vlans;     // vlan_filtering: member VIDs
  std::vector<unsigned> untagged;  // vlan_filtering: VIDs sent untagged
  bool hairpin = false;
  bool learning = true;
  bool flood = true;  // unknown unicast
  bool mcast_flood = true;
  bool bcast_flood = true;
  std::optional<std::string> state;  // forced STP state when stp is off (tests, maintenance)
  unsigned group_fwd_mask = 0;       // per port: any bit but 1 (pause)
  unsigned priority = 0x20;          // STP port priority
  unsigned path_cost = 0;            // STP; 0 = from the link speed
};

struct BridgeFdbStatic {
  Mark mark;
  std::string mac;
  std::string port;
  unsigned vlan = 0;
};

struct Bridge {
  Mark mark;
  std::string name;
  std::vector<std::string> ports;
  std::vector<Mark> port_at;
  std::optional<std::string> mac;  // nullopt = auto (lowest port MAC, as Linux)
  unsigned ageing_s = 300;
  unsigned max_fdb_entries = 65536;
  bool stp = false;
  bool vlan_filtering = false;
  unsigned default_pvid = 1;
  unsigned group_fwd_mask = 0;  // bridge level: bits 0-2 refused (BR_GROUPFWD_RESTRICTED)
  unsigned priority = 0x8000;   // STP bridge priority
  unsigned hello_s = 2, max_age_s = 20, forward_delay_s = 15;
  std::vector<BridgePortSettings> port_settings;
  std::vector<BridgeFdbStatic> fdb_static;
};

}  // namespace sluice::config

namespace sluice::bridge {

struct Config {
  std::vector<config::Bridge> bridges;
};

}  // namespace sluice::bridge
