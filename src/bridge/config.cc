// The `bridges:` section (docs/config.md, docs/bridge.md) parsed into
// bridge::Config, its check after parsing (ports exist, one bridge each,
// settings name ports of their bridge), and the bridge's registration.
#include "bridge/config.hh"

#include <algorithm>
#include <map>
#include <set>

#include "bridge/bridge.hh"
#include "config/loader.hh"
#include "core/feature.hh"

namespace sluice::bridge {

using namespace sluice::config;

namespace {

// Entries as parsed, with the positions the check after parsing needs.
struct BridgeIn {
  config::Bridge v;
  Mark name_at, mac_at;
  std::map<std::string, Mark> settings_at;  // port_settings key → where
  std::vector<Mark> static_port_at;         // fdb_static[i].port
};
struct Parsed {
  std::vector<BridgeIn> bridges;
};

// A 16-bit mask, decimal or 0x-hex.
unsigned mask16(Loader& l, const Field& f) {
  if (f.value.IsScalar()) {
    std::string s = to_lower(f.value.Scalar());
    if (s.size() > 2 && s.size() <= 6 && s[0] == '0' && s[1] == 'x') {
      unsigned v = 0;
      bool ok = true;
      for (size_t i = 2; i < s.size(); i++) {
        ok = ok && is_hex(s[i]);
        v = v * 16 + (is_digit(s[i]) ? s[i] - '0' : s[i] - 'a' + 10);
      }
      if (ok) return v;
    }
  }
  return l.get_uint(f, 0, 0xffff, "a 16-bit mask (decimal or 0x...)");
}

std::vector<unsigned> vid_list(Loader& l, const Field& f) {
  std::vector<unsigned> r;
  for (const auto& n : l.get_list(f, "VLAN ids 1..4094")) {
    Field item{f.key, n, f.name, f.where};
    unsigned v = l.get_uint(item, 1, 4094, "a list of VLAN ids");
    if (std::find(r.begin(), r.end(), v) != r.end())
      l.fail(n, f.what() + ": VLAN " + std::to_string(v) + " is listed twice");
    r.push_back(v);
  }
  return r;
}

void bps_pvid(Loader& l, BridgePortSettings& p, const Field& f) {
  p.pvid = l.get_uint(f, 0, 4094, "a VLAN id (0: none)");
}
void bps_vlans(Loader& l, BridgePortSettings& p, const Field& f) {
  p.vlans = vid_list(l, f);
}
void bps_untagged(Loader& l, BridgePortSettings& p, const Field& f) {
  p.untagged = vid_list(l, f);
}
void bps_hairpin(Loader& l, BridgePortSettings& p, const Field& f) {
  p.hairpin = l.get_bool(f);
}
void bps_learning(Loader& l, BridgePortSettings& p, const Field& f) {
  p.learning = l.get_bool(f);
}
void bps_flood(Loader& l, BridgePortSettings& p, const Field& f) {
  p.flood = l.get_bool(f);
}
void bps_mcast_flood(Loader& l, BridgePortSettings& p, const Field& f) {
  p.mcast_flood = l.get_bool(f);
}
void bps_bcast_flood(Loader& l, BridgePortSettings& p, const Field& f) {
  p.bcast_flood = l.get_bool(f);
}
void bps_state(Loader& l, BridgePortSettings& p, const Field& f) {
  static constexpr std::string_view kStates[] = {"disabled", "listening", "learning", "forwarding",
                                                 "blocking"};
  std::string s = l.get_string(f);
  if (std::find(std::begin(kStates), std::end(kStates), s) == std::end(kStates))
    l.fail(f.at(), f.what() + " must be one of " + join(kStates) + ", got " + describe(f.value));
  p.state = s;
}
void bps_group_fwd_mask(Loader& l, BridgePortSettings& p, const Field& f) {
  p.group_fwd_mask = mask16(l, f);
  if (p.group_fwd_mask & 0x2)
    l.fail(f.at(), f.what() + ": bit 1 (01:80:C2:00:00:01, pause) can never be forwarded");
}
void bps_priority(Loader& l, BridgePortSettings& p, const Field& f) {
  p.priority = l.get_uint(f, 0, 63, "an STP port priority");
}
void bps_path_cost(Loader& l, BridgePortSettings& p, const Field& f) {
  p.path_cost = l.get_uint(f, 1, 65535, "an STP path cost");
}

constexpr KeyDef<BridgePortSettings> kBridgePortKeys[] = {
    {"pvid", bps_pvid},
    {"vlans", bps_vlans},
    {"untagged", bps_untagged},
    {"hairpin", bps_hairpin},
    {"learning", bps_learning},
    {"flood", bps_flood},
    {"mcast_flood", bps_mcast_flood},
    {"bcast_flood", bps_bcast_flood},
    {"state", bps_state},
    {"group_fwd_mask", bps_group_fwd_mask},
    {"priority", bps_priority},
    {"path_cost", bps_path_cost},
};

void bridge_name(Loader& l, BridgeIn& b, const Field& f) {
  b.v.name = device_name(l, f);
  b.name_at = f.at();
}
void bridge_ports(Loader& l, BridgeIn& b, const Field& f) {
  b.v.ports.clear();
  b.v.port_at.clear();
  for (const auto& n : l.get_list(f, "device names")) {
    if (!n.IsScalar() || n.Scalar().empty())
      l.fail(n, f.what() + " must be a list of device names, got " + describe(n) + " in it");
    auto dup = std::find(b.v.ports.begin(), b.v.ports.end(), n.Scalar());
    if (dup != b.v.ports.end()) l.fail(n, f.what() + ": '" + n.Scalar() + "' is listed twice");
    b.v.ports.push_back(n.Scalar());
    b.v.port_at.push_back(to_mark(n.Mark()));
  }
  if (b.v.ports.size() > 1023) l.fail(f.at(), f.what() + ": at most 1023 ports (BR_MAX_PORTS)");
}
void bridge_mac(Loader& l, BridgeIn& b, const Field& f) {
  b.mac_at = f.at();
  if (f.value.IsScalar() && to_lower(f.value.Scalar()) == "auto") {
    b.v.mac.reset();
    return;
  }
  b.v.mac = mac_value(l, f);
}
void bridge_ageing(Loader& l, BridgeIn& b, const Field& f) {
  b.v.ageing_s = l.get_uint(f, 0, 1000000, "seconds");
}
void bridge_max_fdb(Loader& l, BridgeIn& b, const Field& f) {
  b.v.max_fdb_entries = l.get_uint(f, 16, 1u << 24, "a number of entries");
}
void bridge_stp(Loader& l, BridgeIn& b, const Field& f) {
  b.v.stp = l.get_bool(f);
}
void bridge_vlan_filtering(Loader& l, BridgeIn& b, const Field& f) {
  b.v.vlan_filtering = l.get_bool(f);
}
void bridge_default_pvid(Loader& l, BridgeIn& b, const Field& f) {
  b.v.default_pvid = l.get_uint(f, 0, 4094, "a VLAN id (0: none)");
}
void bridge_group_fwd_mask(Loader& l, BridgeIn& b, const Field& f) {
  b.v.group_fwd_mask = mask16(l, f);
  if (b.v.group_fwd_mask & 0x7)
    l.fail(f.at(), f.what() +
                       ": bits 0-2 (STP, pause, LACP) cannot be set on the bridge "
                       "(BR_GROUPFWD_RESTRICTED); use a port's group_fwd_mask");
}
void bridge_priority(Loader& l, BridgeIn& b, const Field& f) {
  b.v.priority = l.get_uint(f, 0, 65535, "an STP bridge priority");
}
void bridge_hello(Loader& l, BridgeIn& b, const Field& f) {
  b.v.hello_s = l.get_uint(f, 1, 10, "seconds");
}
void bridge_max_age(Loader& l, BridgeIn& b, const Field& f) {
  b.v.max_age_s = l.get_uint(f, 6, 40, "seconds");
}
void bridge_fwd_delay(Loader& l, BridgeIn& b, const Field& f) {
  b.v.forward_delay_s = l.get_uint(f, 2, 30, "seconds");
}
void bridge_port_settings(Loader& l, BridgeIn& b, const Field& f) {
  if (f.value.IsNull()) return;
  if (!f.value.IsMap())
    l.fail(f.at(), f.what() + " must be a map of port name → settings, got " + describe(f.value));
  for (const auto& kv : f.value) {
    const YAML::Node& k = kv.first;
    if (!k.IsScalar()) l.fail(k, f.what() + ": keys must be port names, got " + describe(k));
    BridgePortSettings s;
    s.port = k.Scalar();
    s.mark = to_mark(k.Mark());
    if (b.settings_at.contains(s.port)) l.fail(k, f.what() + ": duplicate key '" + s.port + "'");
    b.settings_at.emplace(s.port, s.mark);
    std::string where = f.what() + ": " + s.port;
    if (!kv.second.IsNull()) {
      if (!kv.second.IsMap())
        l.fail(kv.second, where + " must be a map of settings, got " + describe(kv.second));
      l.parse_keys<BridgePortSettings>(kv.second, where, kBridgePortKeys, s);
    }
    b.v.port_settings.push_back(std::move(s));
  }
}

struct FdbStaticIn {
  BridgeFdbStatic v;
  Mark port_at;
};
void fs_mac(Loader& l, FdbStaticIn& s, const Field& f) {
  s.v.mac = mac_value(l, f);
}
void fs_port(Loader& l, FdbStaticIn& s, const Field& f) {
  s.v.port = l.get_string(f);
  s.port_at = f.at();
}
void fs_vlan(Loader& l, FdbStaticIn& s, const Field& f) {
  s.v.vlan = l.get_uint(f, 0, 4094, "a VLAN id");
}
constexpr KeyDef<FdbStaticIn> kFdbStaticKeys[] = {
    {"mac", fs_mac}, {"port", fs_port}, {"vlan", fs_vlan}};

void bridge_fdb_static(Loader& l, BridgeIn& b, const Field& f) {
  auto entries = l.get_list(f, "entries {mac: ..., port: ..., vlan: ...}");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = f.what() + " #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map {mac: ..., port: ...}, got " + describe(e));
    FdbStaticIn s;
    s.v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<FdbStaticIn>(e, where, kFdbStaticKeys, s);
    l.require(e, where, seen, {"mac", "port"});
    b.v.fdb_static.push_back(s.v);
    b.static_port_at.push_back(s.port_at);
  }
}

constexpr KeyDef<BridgeIn> kBridgeKeys[] = {
    {"name", bridge_name},
    {"ports", bridge_ports},
    {"mac", bridge_mac},
    {"ageing_s", bridge_ageing},
    {"max_fdb_entries", bridge_max_fdb},
    {"stp", bridge_stp},
    {"vlan_filtering", bridge_vlan_filtering},
    {"default_pvid", bridge_default_pvid},
    {"group_fwd_mask", bridge_group_fwd_mask},
    {"priority", bridge_priority},
    {"hello_s", bridge_hello},
    {"max_age_s", bridge_max_age},
    {"forward_delay_s", bridge_fwd_delay},
    {"port_settings", bridge_port_settings},
    {"fdb_static", bridge_fdb_static},
};

void section_bridges(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "bridges (one '- name: ...' entry per bridge)");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = l.entry_where("bridge", e, i);
    BridgeIn b;
    auto seen = l.parse_keys<BridgeIn>(e, where, kBridgeKeys, b);
    l.require(e, where, seen, {"name", "ports"});
    l.scratch<Parsed>().bridges.push_back(std::move(b));
  }
}

// Bridge names are device names; ports are ports or vlans of this file, in at
// most one bridge and never a bridge (br_add_if: ELOOP, EBUSY); port_settings
// and fdb_static name ports of their bridge; VLAN settings need filtering.
void check(Loader& l) {
  std::vector<BridgeIn>& bridges = l.scratch<Parsed>().bridges;
  const std::string ports_may_be = l.kinds_phrase();  // what may be a bridge port
  l.declare_kind("bridge");
  for (auto& b : bridges) l.add_device(b.v.name, "bridge", b.name_at);
  std::map<std::string, std::pair<std::string, Mark>> member_of;
  for (auto& b : bridges) {
    const std::string where = "bridge '" + b.v.name + "'";
    for (size_t i = 0; i < b.v.ports.size(); i++) {
      const std::string& p = b.v.ports[i];
      const Mark at = b.v.port_at[i];
      if (l.device_kind(p) == "bridge")
        l.fail(at, where + ": port '" + p + "' is a bridge (a bridge cannot be a bridge port)");
      if (!l.has_device(p))
        l.fail(at, where + ": port '" + p + "' is not a " + ports_may_be + " defined in this file");
      auto [it, fresh] = member_of.emplace(p, std::pair{b.v.name, at});
      if (!fresh)
        l.fail(at, where + ": port '" + p + "' is already in bridge '" + it->second.first +
                       "' (at " + mark_str(it->second.second) + ")");
    }
    auto is_port = [&](const std::string& p) {
      return std::find(b.v.ports.begin(), b.v.ports.end(), p) != b.v.ports.end();
    };
    for (auto& s : b.v.port_settings) {
      const std::string sw = where + ": port_settings: ";
      if (!is_port(s.port)) l.fail(s.mark, sw + "'" + s.port + "' is not a port of this bridge");
      if (!b.v.vlan_filtering && (s.pvid || !s.vlans.empty() || !s.untagged.empty()))
        l.fail(s.mark, sw + s.port + ": pvid, vlans and untagged need vlan_filtering: true");
      for (unsigned u : s.untagged)
        if (std::find(s.vlans.begin(), s.vlans.end(), u) == s.vlans.end() &&
            !(s.pvid && *s.pvid == u))
          l.fail(s.mark, sw + s.port + ": untagged VLAN " + std::to_string(u) +
                             " is not in vlans or the pvid");
    }
    for (size_t i = 0; i < b.v.fdb_static.size(); i++) {
      const auto& s = b.v.fdb_static[i];
      const std::string sw = where + ": fdb_static #" + std::to_string(i + 1) + ": ";
      if (!is_port(s.port))
        l.fail(b.static_port_at[i], sw + "port '" + s.port + "' is not a port of this bridge");
      if (s.vlan != 0 && !b.v.vlan_filtering)
        l.fail(s.mark, sw + "vlan " + std::to_string(s.vlan) + " needs vlan_filtering: true");
    }
  }
  for (auto& b : bridges) {
    b.v.mark = b.name_at;
    l.topo.get<bridge::Config>().bridges.push_back(b.v);
  }
}

}  // namespace

const Feature kFeature{
    .name = "bridge",
    .sections = {{"bridges", 40, section_bridges}},
    .check = check,
    .setup = setup,
    .reload = reload,
};
const FeatureRegistrar kRegistrar{kFeature};

}  // namespace sluice::bridge
