// The `bonds:` section (docs/config.md, docs/bond.md): its typed form,
// parsed and checked by src/bond/config.cc, reached as
// topo.get<bond::Config>().
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/topology.hh"

namespace sluice::config {

// arp_monitor: {interval_ms, targets, validate, all_targets, missed_max}.
struct BondArpMonitor {
  unsigned interval_ms = 0;          // 0 = off
  std::vector<std::string> targets;  // IPv4 addresses (BOND_MAX_ARP_TARGETS = 16)
  std::string validate = "none";     // none | active | backup | all
  std::string all_targets = "any";   // any | all
  unsigned missed_max = 2;
};

struct Bond {
  Mark mark;
  std::string name;
  std::string mode = "balance-rr";   // Linux's default
  std::vector<std::string> members;  // enslave order
  std::vector<Mark> member_at;
  std::optional<std::string> primary;
  std::string primary_reselect = "always";      // always | better | failure
  std::optional<std::string> xmit_hash_policy;  // default layer2
  std::optional<unsigned> miimon_ms;            // default 0; forced 100 for 802.3ad/tlb/alb
  unsigned updelay_ms = 0;
  unsigned downdelay_ms = 0;
  std::string lacp_rate = "slow";  // slow | fast
  bool lacp_active = true;
  std::string ad_select = "stable";  // stable | bandwidth | count
  unsigned ad_actor_sys_prio = 65535;
  unsigned ad_user_port_key = 0;
  std::string fail_over_mac = "none";  // none | active | follow
  BondArpMonitor arp_monitor;
  std::optional<std::string> mac;  // default: the first member's
  bool tlb_dynamic_lb = true;
  unsigned packets_per_slave = 1;  // balance-rr
  unsigned num_grat_arp = 1;       // peer notifications per failover (num_grat_arp / num_unsol_na)
};

}  // namespace sluice::config

namespace sluice::bond {

struct Config {
  std::vector<config::Bond> bonds;
};

}  // namespace sluice::bond
