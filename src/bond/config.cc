// The `bonds:` section (docs/config.md, docs/bond.md) parsed into
// bond::Config, its checks after parsing, and the bond's registration.
//
// Refused at load, with the line:column of the offending node: an unknown
// member, a member that is a bond (bond over bond), a member in two bonds or
// also a bridge port, `primary` not a member, and options the mode cannot
// use — Linux's "option X: mode dependency failed" (primary outside
// active-backup/tlb/alb; lacp_rate, lacp_active, ad_select outside 802.3ad;
// tlb_dynamic_lb outside tlb/alb; packets_per_slave outside balance-rr), plus
// an xmit_hash_policy in a mode that never hashes, fail_over_mac other than
// none outside active-backup, the ARP monitor in 802.3ad/tlb/alb, both
// monitors at once, and up/downdelay without the MII monitor.
#include "bond/config.hh"

#include <algorithm>
#include <arpa/inet.h>
#include <map>
#include <set>

#include "bond/bond.hh"
#include "bridge/config.hh"
#include "config/loader.hh"
#include "core/feature.hh"

namespace sluice::bond {

using namespace sluice::config;

namespace {

// Entries as parsed, with the positions the checks need.
struct BondIn {
  config::Bond v;
  Mark name_at, mode_at, primary_at, policy_at, miimon_at, updelay_at, downdelay_at, lacp_rate_at,
      lacp_active_at, ad_select_at, fom_at, arp_at, tlb_at, pps_at, members_at;
  bool has_lacp_rate = false, has_lacp_active = false, has_ad_select = false, has_tlb = false,
       has_pps = false, has_fom = false;
};
struct Parsed {
  std::vector<BondIn> bonds;
};

std::string one_of(Loader& l, const Field& f, std::span<const std::string_view> allowed) {
  std::string s = l.get_string(f);
  if (std::find(allowed.begin(), allowed.end(), s) == allowed.end())
    l.fail(f.at(), f.what() + " must be one of " + join(allowed) + ", got " + describe(f.value));
  return s;
}

constexpr std::string_view kModes[] = {"balance-rr", "active-backup", "balance-xor", "broadcast",
                                       "802.3ad",    "balance-tlb",   "balance-alb"};
constexpr std::string_view kPolicies[] = {"layer2",   "layer2+3", "layer3+4",
                                          "encap2+3", "encap3+4", "vlan+srcmac"};

void bond_name(Loader& l, BondIn& b, const Field& f) {
  b.v.name = device_name(l, f);
  b.name_at = f.at();
}
void bond_mode(Loader& l, BondIn& b, const Field& f) {
  b.v.mode = one_of(l, f, kModes);
  b.mode_at = f.at();
}
void bond_members(Loader& l, BondIn& b, const Field& f) {
  b.members_at = f.at();
  b.v.members.clear();
  b.v.member_at.clear();
  for (const auto& n : l.get_list(f, "device names")) {
    if (!n.IsScalar() || n.Scalar().empty())
      l.fail(n, f.what() + " must be a list of device names, got " + describe(n) + " in it");
    if (std::find(b.v.members.begin(), b.v.members.end(), n.Scalar()) != b.v.members.end())
      l.fail(n, f.what() + ": '" + n.Scalar() + "' is listed twice");
    b.v.members.push_back(n.Scalar());
    b.v.member_at.push_back(to_mark(n.Mark()));
  }
  if (b.v.members.empty()) l.fail(f.at(), f.what() + ": a bond needs at least one member");
  if (b.v.members.size() > kMaxMembers)
    l.fail(f.at(), f.what() + ": at most " + std::to_string(kMaxMembers) + " members");
}
void bond_primary(Loader& l, BondIn& b, const Field& f) {
  b.v.primary = l.get_string(f);
  b.primary_at = f.at();
}
void bond_primary_reselect(Loader& l, BondIn& b, const Field& f) {
  static constexpr std::string_view k[] = {"always", "better", "failure"};
  b.v.primary_reselect = one_of(l, f, k);
}
void bond_policy(Loader& l, BondIn& b, const Field& f) {
  b.v.xmit_hash_policy = one_of(l, f, kPolicies);
  b.policy_at = f.at();
}
void bond_miimon(Loader& l, BondIn& b, const Field& f) {
  b.v.miimon_ms = l.get_uint(f, 0, 600000, "milliseconds");
  b.miimon_at = f.at();
}
void bond_updelay(Loader& l, BondIn& b, const Field& f) {
  b.v.updelay_ms = l.get_uint(f, 0, 600000, "milliseconds");
  b.updelay_at = f.at();
}
void bond_downdelay(Loader& l, BondIn& b, const Field& f) {
  b.v.downdelay_ms = l.get_uint(f, 0, 600000, "milliseconds");
  b.downdelay_at = f.at();
}
void bond_lacp_rate(Loader& l, BondIn& b, const Field& f) {
  static constexpr std::string_view k[] = {"slow", "fast"};
  b.v.lacp_rate = one_of(l, f, k);
  b.lacp_rate_at = f.at();
  b.has_lacp_rate = true;
}
void bond_lacp_active(Loader& l, BondIn& b, const Field& f) {
  b.v.lacp_active = l.get_bool(f);
  b.lacp_active_at = f.at();
  b.has_lacp_active = true;
}
void bond_ad_select(Loader& l, BondIn& b, const Field& f) {
  static constexpr std::string_view k[] = {"stable", "bandwidth", "count"};
  b.v.ad_select = one_of(l, f, k);
  b.ad_select_at = f.at();
  b.has_ad_select = true;
}
void bond_ad_sys_prio(Loader& l, BondIn& b, const Field& f) {
  b.v.ad_actor_sys_prio = l.get_uint(f, 1, 65535, "a system priority");
}
void bond_ad_user_port_key(Loader& l, BondIn& b, const Field& f) {
  b.v.ad_user_port_key = l.get_uint(f, 0, 1023, "a 10-bit key");
}
void bond_fail_over_mac(Loader& l, BondIn& b, const Field& f) {
  static constexpr std::string_view k[] = {"none", "active", "follow"};
  b.v.fail_over_mac = one_of(l, f, k);
  b.fom_at = f.at();
  b.has_fom = true;
}
void bond_mac(Loader& l, BondIn& b, const Field& f) {
  b.v.mac = mac_value(l, f);
}
void bond_tlb_dynamic_lb(Loader& l, BondIn& b, const Field& f) {
  b.v.tlb_dynamic_lb = l.get_bool(f);
  b.tlb_at = f.at();
  b.has_tlb = true;
}
void bond_packets_per_slave(Loader& l, BondIn& b, const Field& f) {
  b.v.packets_per_slave = l.get_uint(f, 0, 65535, "a number of packets (0: random)");
  b.pps_at = f.at();
  b.has_pps = true;
}
void bond_num_grat_arp(Loader& l, BondIn& b, const Field& f) {
  b.v.num_grat_arp = l.get_uint(f, 0, 255, "a count");
}

// arp_monitor: {interval_ms, targets, validate, all_targets, missed_max}
void am_interval(Loader& l, BondArpMonitor& a, const Field& f) {
  a.interval_ms = l.get_uint(f, 0, 600000, "milliseconds");
}
void am_targets(Loader& l, BondArpMonitor& a, const Field& f) {
  a.targets.clear();
  for (const auto& n : l.get_list(f, "IPv4 addresses")) {
    in_addr ip{};
    if (!n.IsScalar() || inet_pton(AF_INET, n.Scalar().c_str(), &ip) != 1)
      l.fail(n, f.what() + " must be a list of IPv4 addresses, got " + describe(n) + " in it");
    if (ip.s_addr == 0 || ip.s_addr == 0xffffffff || (ntohl(ip.s_addr) >> 28) == 0xe)
      l.fail(n, f.what() + ": " + n.Scalar() + " is not a unicast address");
    if (std::find(a.targets.begin(), a.targets.end(), n.Scalar()) != a.targets.end())
      l.fail(n, f.what() + ": " + n.Scalar() + " is listed twice");
    a.targets.push_back(n.Scalar());
  }
  if (a.targets.size() > kMaxArpTargets)
    l.fail(f.at(), f.what() + ": at most " + std::to_string(kMaxArpTargets) +
                       " targets (BOND_MAX_ARP_TARGETS)");
}
void am_validate(Loader& l, BondArpMonitor& a, const Field& f) {
  static constexpr std::string_view k[] = {"none", "active", "backup", "all"};
  a.validate = one_of(l, f, k);
}
void am_all_targets(Loader& l, BondArpMonitor& a, const Field& f) {
  static constexpr std::string_view k[] = {"any", "all"};
  a.all_targets = one_of(l, f, k);
}
void am_missed_max(Loader& l, BondArpMonitor& a, const Field& f) {
  a.missed_max = l.get_uint(f, 1, 255, "a count");
}
constexpr KeyDef<BondArpMonitor> kArpKeys[] = {{"interval_ms", am_interval},
                                               {"targets", am_targets},
                                               {"validate", am_validate},
                                               {"all_targets", am_all_targets},
                                               {"missed_max", am_missed_max}};

void bond_arp_monitor(Loader& l, BondIn& b, const Field& f) {
  b.arp_at = f.at();
  if (f.value.IsNull()) return;
  if (!f.value.IsMap())
    l.fail(f.at(), f.what() + " must be a map {interval_ms: ..., targets: [...]}, got " +
                       describe(f.value));
  l.parse_keys<BondArpMonitor>(f.value, f.what(), kArpKeys, b.v.arp_monitor);
}

constexpr KeyDef<BondIn> kBondKeys[] = {
    {"name", bond_name},
    {"mode", bond_mode},
    {"members", bond_members},
    {"primary", bond_primary},
    {"primary_reselect", bond_primary_reselect},
    {"xmit_hash_policy", bond_policy},
    {"miimon_ms", bond_miimon},
    {"updelay_ms", bond_updelay},
    {"downdelay_ms", bond_downdelay},
    {"lacp_rate", bond_lacp_rate},
    {"lacp_active", bond_lacp_active},
    {"ad_select", bond_ad_select},
    {"ad_actor_sys_prio", bond_ad_sys_prio},
    {"ad_user_port_key", bond_ad_user_port_key},
    {"fail_over_mac", bond_fail_over_mac},
    {"arp_monitor", bond_arp_monitor},
    {"mac", bond_mac},
    {"tlb_dynamic_lb", bond_tlb_dynamic_lb},
    {"packets_per_slave", bond_packets_per_slave},
    {"num_grat_arp", bond_num_grat_arp},
};

// What the mode of one entry allows (Linux's BOND_OPT_* unsuppmodes, and
// options that a mode never reads).
void check_mode_options(Loader& l, BondIn& b, const std::string& where) {
  const std::string& m = b.v.mode;
  const bool ab = m == "active-backup", ad = m == "802.3ad", tlb = m == "balance-tlb",
             alb = m == "balance-alb", rr = m == "balance-rr", xr = m == "balance-xor";
  auto refuse = [&](Mark at, const std::string& opt, const std::string& modes) {
    l.fail(at, where + ": " + opt + " is not used in mode " + m + " (only in " + modes + ")");
  };
  if (b.v.primary && !(ab || tlb || alb))
    refuse(b.primary_at, "primary", "active-backup, balance-tlb, balance-alb");
  if (b.v.xmit_hash_policy && !(xr || ad || tlb || alb))
    refuse(b.policy_at, "xmit_hash_policy '" + *b.v.xmit_hash_policy + "'",
           "balance-xor, 802.3ad, balance-tlb, balance-alb");
  if (b.has_lacp_rate && !ad) refuse(b.lacp_rate_at, "lacp_rate", "802.3ad");
  if (b.has_lacp_active && !ad) refuse(b.lacp_active_at, "lacp_active", "802.3ad");
  if (b.has_ad_select && !ad) refuse(b.ad_select_at, "ad_select", "802.3ad");
  if (b.has_tlb && !(tlb || alb)) refuse(b.tlb_at, "tlb_dynamic_lb", "balance-tlb, balance-alb");
  if (b.has_pps && !rr) refuse(b.pps_at, "packets_per_slave", "balance-rr");
  if (b.has_fom && b.v.fail_over_mac != "none" && !ab)
    refuse(b.fom_at, "fail_over_mac " + b.v.fail_over_mac, "active-backup");
  if (b.v.arp_monitor.interval_ms != 0) {
    if (ad || tlb || alb)
      refuse(b.arp_at, "arp_monitor",
             "balance-rr, active-backup, "
             "balance-xor, broadcast");
    if (b.v.arp_monitor.targets.empty())
      l.fail(b.arp_at, where + ": arp_monitor needs at least one target");
    if (b.v.miimon_ms && *b.v.miimon_ms != 0)
      l.fail(b.miimon_at, where +
                              ": miimon_ms and arp_monitor cannot both be on "
                              "(Linux turns one off)");
  }
  // BOND_DEFAULT_MIIMON: forced for 802.3ad, tlb and alb when not given.
  const unsigned miimon = b.v.miimon_ms ? *b.v.miimon_ms : (ad || tlb || alb ? 100 : 0);
  if (miimon == 0 && b.v.updelay_ms != 0)
    l.fail(b.updelay_at, where + ": updelay_ms needs the MII monitor (miimon_ms > 0)");
  if (miimon == 0 && b.v.downdelay_ms != 0)
    l.fail(b.downdelay_at, where + ": downdelay_ms needs the MII monitor (miimon_ms > 0)");
  if (miimon == 0 && (ad || tlb || alb))
    l.fail(b.miimon_at, where + ": mode " + m + " needs the MII monitor (miimon_ms > 0)");
}

void section_bonds(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "bonds (one '- name: ...' entry per bond)");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = l.entry_where("bond", e, i);
    BondIn b;
    auto seen = l.parse_keys<BondIn>(e, where, kBondKeys, b);
    l.require(e, where, seen, {"name", "members"});
    check_mode_options(l, b, where);
    l.scratch<Parsed>().bonds.push_back(std::move(b));
  }
}

// Bonds are devices; members are ports or VLANs of this file, in one bond
// each, never a bond (bond_enslave: "Device can not be enslaved while up"
// aside, a bond under a bond is refused here); primary is a member.
void check(Loader& l) {
  std::vector<BondIn>& bonds = l.scratch<Parsed>().bonds;
  if (bonds.empty()) return;  // messages name the kinds a file has ("port, vlan or bridge")
  const std::string members_may_be = l.kinds_phrase();  // port or vlan
  l.declare_kind("bond");
  for (auto& b : bonds) l.add_device(b.v.name, "bond", b.name_at);
  std::map<std::string, std::pair<std::string, Mark>> member_of;
  for (auto& b : bonds) {
    const std::string where = "bond '" + b.v.name + "'";
    for (size_t i = 0; i < b.v.members.size(); i++) {
      const std::string& m = b.v.members[i];
      const Mark at = b.v.member_at[i];
      if (l.device_kind(m) == "bond")
        l.fail(at, where + ": member '" + m + "' is a bond (a bond cannot be a member of a bond)");
      if (!l.has_device(m))
        l.fail(at,
               where + ": member '" + m + "' is not a " + members_may_be + " defined in this file");
      auto [it, fresh] = member_of.emplace(m, std::pair{b.v.name, at});
      if (!fresh)
        l.fail(at, where + ": member '" + m + "' is already in bond '" + it->second.first +
                       "' (at " + mark_str(it->second.second) + ")");
    }
    if (b.v.primary &&
        std::find(b.v.members.begin(), b.v.members.end(), *b.v.primary) == b.v.members.end())
      l.fail(b.primary_at, where + ": primary '" + *b.v.primary + "' is not a member of this bond");
  }
  for (auto& b : bonds) {
    b.v.mark = b.name_at;
    l.topo.get<bond::Config>().bonds.push_back(b.v);
  }
}

// After the bridges are checked: a bond member cannot also be a bridge port
// (br_add_if and bond_enslave both want the device's one rx_handler: EBUSY).
void check_members_not_bridged(Loader& l) {
  const auto& bonds = l.topo.get<bond::Config>().bonds;
  if (bonds.empty()) return;
  for (const auto& br : l.topo.get<bridge::Config>().bridges) {
    for (size_t i = 0; i < br.ports.size(); i++) {
      for (const auto& b : bonds) {
        auto it = std::find(b.members.begin(), b.members.end(), br.ports[i]);
        if (it == b.members.end()) continue;
        const Mark at = b.member_at[static_cast<size_t>(it - b.members.begin())];
        l.fail(br.port_at[i], "bridge '" + br.name + "': port '" + br.ports[i] +
                                  "' is a member of bond '" + b.name + "' (at " + mark_str(at) +
                                  "); add the bond to the bridge instead");
      }
    }
  }
}

}  // namespace

const Feature kFeature{
    .name = "bond",
    .before = {"bridge", "l3"},  // bonds can be bridge ports and carry addresses
    .sections = {{"bonds", 35, section_bonds}},
    .check = check,
    .setup = setup,
    .reload = reload,
};
const FeatureRegistrar kRegistrar{kFeature};

// Only a check: it needs the bridges' ports, which their check publishes.
const Feature kMembersFeature{
    .name = "bond-members",
    .after = {"bridge"},
    .check = check_members_not_bridged,
};
const FeatureRegistrar kMembersRegistrar{kMembersFeature};

}  // namespace sluice::bond
