// The typed topology: what sluiced builds from the YAML file of
// docs/config.md. Every field keeps the line:column of its YAML node so that
// errors found after parsing (unknown device, duplicate name) still point
// into the file.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "hooks/rules.hh"

namespace sluice::config {

struct Mark {
  int line = 0;  // 1-based
  int col = 0;   // 1-based
};

// Thrown by the loader; what() is "FILE:LINE:COL: message".
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Eal {
  std::string lcores = "0-1";  // first = main lcore (control), rest = workers
  unsigned memory_mb = 512;
  bool hugepages = true;
  std::string file_prefix = "sluice";
  std::vector<std::string> args;
};

struct Port {
  Mark mark;
  std::string name;
  std::string device;  // PCI address or vdev devargs
  bool is_pci = false;
  unsigned rx_queues = 1;
  unsigned tx_queues = 1;
  unsigned mtu = 1500;
  std::optional<std::string> mac;  // "02:00:00:00:00:01"
  bool promiscuous = true;
  std::vector<unsigned> workers;  // worker lcores; empty = all workers
  unsigned rx_desc = 1024;
  unsigned tx_desc = 1024;
};

struct Vlan {
  Mark mark;
  std::string name;
  std::string link;
  unsigned id = 0;
  std::string protocol = "802.1Q";  // or "802.1ad"
};

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

// addresses / routes / neighbours / punt (docs/l3.md).
struct L3Address {
  Mark mark;
  std::string dev;
  std::string address;  // CIDR, IPv4 or IPv6
  Mark dev_at, address_at;
};

struct L3Route {
  Mark mark;
  std::string prefix;  // CIDR
  std::string via;     // "" = on-link (dev must be given)
  std::string dev;     // "" = from the next hop's connected subnet
  std::string table = "main";
  Mark prefix_at, via_at, dev_at;
};

struct L3Neighbour {
  Mark mark;
  std::string dev;
  std::string address;
  std::string mac;
  Mark dev_at, address_at;
};

struct L3Punt {
  Mark mark;
  std::string dev;
  std::string tap;
  Mark dev_at, tap_at;
};

// hooks: (docs/hooks.md): one rule list at one point.
struct HookListCfg {
  Mark mark;
  std::string name;
  std::string point;  // "ipv4/forward", …
  int priority = 0;
  std::vector<hooks::Rule> rules;
  Mark name_at, point_at;
};

// plugins: a shared object loaded at start.
struct PluginCfg {
  Mark mark;
  std::string path;
  std::string point;  // "" = the plugin chooses
  int priority = 0;
  Mark path_at;
  std::string args;  // free text for the plugin (sluice_plugin_args::args)
};

struct Control {
  std::string socket = "/run/sluice/sluice.sock";
  bool telemetry = true;
  std::string metrics;  // "host:port" or ""
};

struct Logging {
  std::string level = "info";
  std::string file;  // "" = stderr
};

struct Topology {
  std::string file;
  Eal eal;
  std::vector<Port> ports;
  std::vector<Vlan> vlans;
  std::vector<Bridge> bridges;
  std::vector<L3Address> addresses;
  std::vector<L3Route> routes;
  std::vector<L3Neighbour> neighbours;
  std::vector<L3Punt> punt;
  std::vector<HookListCfg> hooks;
  std::vector<PluginCfg> plugins;
  Control control;
  Logging logging;
};

// Parses and validates; throws ConfigError.
Topology load_file(const std::string& path);
Topology load_string(const std::string& text, const std::string& name = "<string>");

// What an lcores string says (docs/config.md): its lcore ids in the order
// written (increasing, so the first is the lowest: the main lcore), and
// whether it uses EAL's lcore→CPU mapping syntax ("0@0,1@0,2@1", "(0-1)@0"):
// an '@' or a parenthesised group, which EAL takes as --lcores, not -l.
// Throws std::invalid_argument saying what is wrong.
struct LcoreSpec {
  std::vector<unsigned> lcores;
  bool mapped = false;
};
LcoreSpec parse_lcore_spec(std::string_view s);

// Worker lcore ids from an lcores string ("0-1", "0,2-3", "0@0,1@0,2@1"):
// all but the first.
std::vector<unsigned> parse_lcores(const std::string& s);

}  // namespace sluice::config
