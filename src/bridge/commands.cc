// Bridge commands (bridge(8) / brctl equivalents):
//
//   show bridge [BR]                 ports, states, flags, VLANs, STP, counters
//   show fdb BR                      MAC, VLAN, port, static/local/learned, age
//   fdb add BR MAC PORT [vlan V]     a static entry (bridge fdb add … master static)
//   fdb del BR MAC PORT [vlan V]     remove a static or learned entry
//   fdb flush BR                     remove every learned entry
//
// JSON shapes: design/CLI.md (show fdb BR → [{mac, vlan, port, static, age_s}],
// show bridge BR → {name, ports: {P: {state, …}}, …}); fields are only added.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bridge/bridge.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice::bridge {
namespace {

using nlohmann::json;

CmdResult usage(const char* u) {
  return CmdResult::error(std::string("usage: ") + u);
}

std::string bridge_id_str(uint64_t id) {
  char b[32];
  std::snprintf(b, sizeof b, "%04x.%02x%02x%02x%02x%02x%02x", unsigned(id >> 48),
                unsigned(id >> 40) & 0xff, unsigned(id >> 32) & 0xff, unsigned(id >> 24) & 0xff,
                unsigned(id >> 16) & 0xff, unsigned(id >> 8) & 0xff, unsigned(id) & 0xff);
  return b;
}

json vid_list(const std::bitset<4096>& s) {
  json a = json::array();
  for (unsigned v = 1; v < 4095; v++)
    if (s.test(v)) a.push_back(v);
  return a;
}

std::string vid_text(const std::bitset<4096>& s) {
  std::string r;
  for (unsigned v = 1; v < 4095; v++)
    if (s.test(v)) {
      if (!r.empty()) r += ',';
      r += std::to_string(v);
    }
  return r.empty() ? "-" : r;
}

Bridge* find_bridge(Dataplane& dp, const std::string& name, CmdResult* err) {
  BridgeSys* sys = dp.find_feature<BridgeSys>();
  Bridge* br = sys != nullptr ? sys->find(name) : nullptr;
  if (br == nullptr) *err = CmdResult::error("no bridge '" + name + "'");
  return br;
}

const char* stp_role(const Bridge& br, const BridgePort& p) {
  if (!br.stp_enabled) return "none";  // STP off: no roles
  if (p.get_state() == PortState::disabled) return "disabled";
  if (br.stp.root_port == p.port_no) return "root";
  if (p.stp.designated_bridge == br.stp.bridge_id && p.stp.designated_port == p.stp.port_id)
    return "designated";
  return "alternate";
}

json bridge_json(BridgeSys& sys, Bridge& br, std::string* text) {
  json ports = json::object();
  TextTable t({{"PORT"},
               {"NO", TextTable::right},
               {"STATE"},
               {"ROLE"},
               {"FLAGS"},
               {"PVID", TextTable::right},
               {"VLANS"},
               {"UNTAGGED"}});
  for (auto& p : br.ports) {
    std::string flags;
    auto fl = [&](uint32_t f, const char* n) {
      if (!p->has(f)) return;
      if (!flags.empty()) flags += ',';
      flags += n;
    };
    fl(kPortLearning, "learning");
    fl(kPortFlood, "flood");
    fl(kPortMcastFlood, "mcast_flood");
    fl(kPortBcastFlood, "bcast_flood");
    fl(kPortHairpin, "hairpin");
    json pj = {
        {"port_no", p->port_no},
        {"state", port_state_name(p->get_state())},
        {"learning", p->has(kPortLearning)},
        {"flood", p->has(kPortFlood)},
        {"mcast_flood", p->has(kPortMcastFlood)},
        {"bcast_flood", p->has(kPortBcastFlood)},
        {"hairpin", p->has(kPortHairpin)},
        {"group_fwd_mask", p->group_fwd_mask},
        {"pvid", br.vlan_filtering && p->vlans.pvid ? json(p->vlans.pvid) : json(nullptr)},
        {"vlans", br.vlan_filtering ? vid_list(p->vlans.member) : json::array()},
        {"untagged", br.vlan_filtering ? vid_list(p->vlans.untagged) : json::array()},
        {"stp",
         {{"role", stp_role(br, *p)},
          {"port_id", p->stp.port_id},
          {"priority", p->priority},
          {"path_cost", p->stp.path_cost},
          {"designated_root", bridge_id_str(p->stp.designated_root)},
          {"designated_bridge", bridge_id_str(p->stp.designated_bridge)},
          {"designated_port", p->stp.designated_port},
          {"designated_cost", p->stp.designated_cost},
          {"bpdu_rx", p->stp.bpdu_rx},
          {"bpdu_tx", p->stp.bpdu_tx},
          {"tcn_rx", p->stp.tcn_rx},
          {"tcn_tx", p->stp.tcn_tx},
          {"transitions", p->stp.transitions}}},
    };
    ports[p->dev->name] = std::move(pj);
    t.add({p->dev->name, std::to_string(p->port_no), port_state_name(p->get_state()),
           stp_role(br, *p), flags,
           br.vlan_filtering && p->vlans.pvid ? std::to_string(p->vlans.pvid) : "-",
           br.vlan_filtering ? vid_text(p->vlans.member) : "-",
           br.vlan_filtering ? vid_text(p->vlans.untagged) : "-"});
  }
  BrCounters c = sys.counters(br);
  json counters = {
      {"learned", br.learned},
      {"learn_events", c.learn_events},
      {"learn_ring_full", c.learn_ring_full},
      {"moves", c.moves},
      {"own_src", c.own_src},
      {"fdb_full", br.fdb_full},
      {"aged", br.aged},
      {"flooded", c.flooded},
      {"flooded_local", c.flooded_local},
      {"forwarded", c.forwarded},
      {"local", c.local},
      {"hairpin", c.hairpin},
      {"link_local_pass", c.link_local_pass},
      {"bpdu_rx", c.bpdu_rx},
      {"bpdu_tx", br.bpdu_tx},
  };
  const auto& s = br.stp;
  json stp = {
      {"enabled", br.stp_enabled},
      {"bridge_id", bridge_id_str(s.bridge_id)},
      {"root_id", bridge_id_str(s.designated_root)},
      {"root_port", s.root_port == 0 ? json(nullptr) : json(br.ports[s.root_port - 1]->dev->name)},
      {"root_path_cost", s.root_path_cost},
      {"is_root", br.stp_enabled && s.designated_root == s.bridge_id},
      {"topology_change", s.topology_change},
      {"topology_change_count", s.tc_count},
      {"hello_s", s.bridge_hello_ms / 1000},
      {"max_age_s", s.bridge_max_age_ms / 1000},
      {"forward_delay_s", s.bridge_forward_delay_ms / 1000},
  };
  json j = {
      {"name", br.dev->name},
      {"mac", mac_to_string(br.dev->mac)},
      {"stp", br.stp_enabled},
      {"stp_state", std::move(stp)},
      {"vlan_filtering", br.vlan_filtering},
      {"ageing_s", br.ageing_ms / 1000},
      {"group_fwd_mask", br.group_fwd_mask},
      {"fdb_entries", br.fdb->size()},
      {"max_fdb_entries", br.fdb->max_entries()},
      {"pvid", br.vlan_filtering && br.vlans.pvid ? json(br.vlans.pvid) : json(nullptr)},
      {"vlans", br.vlan_filtering ? vid_list(br.vlans.member) : json::array()},
      {"ports", std::move(ports)},
      {"counters", counters},
  };
  if (text != nullptr) {
    std::string& o = *text;
    o += br.dev->name + "  mac " + mac_to_string(br.dev->mac) + "  stp " +
         (br.stp_enabled ? "on" : "off") + "  vlan_filtering " +
         (br.vlan_filtering ? "on" : "off") + "  ageing " + std::to_string(br.ageing_ms / 1000) +
         " s  fdb " + std::to_string(br.fdb->size()) + "/" + std::to_string(br.fdb->max_entries()) +
         "\n";
    if (br.stp_enabled)
      o += "  bridge id " + bridge_id_str(s.bridge_id) + "  root " +
           bridge_id_str(s.designated_root) + " cost " + std::to_string(s.root_path_cost) +
           (s.root_port ? " via " + br.ports[s.root_port - 1]->dev->name : " (this bridge)") +
           (s.topology_change ? "  TOPOLOGY CHANGE" : "") + "\n";
    o += t.str(2);
    o += "  learned " + std::to_string(br.learned) + "  moves " + std::to_string(c.moves) +
         "  aged " + std::to_string(br.aged) + "  fdb_full " + std::to_string(br.fdb_full) +
         "  flooded " + std::to_string(c.flooded) + "  forwarded " + std::to_string(c.forwarded) +
         "  local " + std::to_string(c.local) + "\n";
  }
  return j;
}

CmdResult show_bridge(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() > 1) return usage("show bridge [BR]");
  BridgeSys* sys = dp.find_feature<BridgeSys>();
  CmdResult r;
  if (args.size() == 1) {
    Bridge* br = find_bridge(dp, args[0], &r);
    if (br == nullptr) return r;
    r.json = bridge_json(*sys, *br, &r.text);
    return r;
  }
  r.json = json::object();
  if (sys != nullptr)
    for (auto& br : sys->bridges) r.json[br->dev->name] = bridge_json(*sys, *br, &r.text);
  if (r.text.empty()) r.text = "no bridges\n";
  return r;
}

CmdResult show_fdb(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() != 1) return usage("show fdb BR");
  CmdResult r;
  Bridge* br = find_bridge(dp, args[0], &r);
  if (br == nullptr) return r;
  const uint64_t now = br->sys->now_ms.load();
  struct Row {
    std::string port, mac;
    uint16_t vid;
    bool is_static, local;
    uint64_t age_s;
  };
  std::vector<Row> rows;
  br->fdb->for_each([&](const FdbEntry& e) {
    Device* d = dp.net.dev(e.port.load());
    uint64_t upd = e.updated_ms.load();
    rows.push_back(Row{d != nullptr ? d->name : "?", mac_to_string(e.mac), e.vid, e.is_static(),
                       e.is_local(), e.is_dynamic() && now > upd ? (now - upd) / 1000 : 0});
  });
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) {
    return std::tie(a.port, a.mac, a.vid) < std::tie(b.port, b.mac, b.vid);
  });
  r.json = json::array();
  TextTable t({{"MAC"}, {"VLAN", TextTable::right}, {"PORT"}, {"TYPE"}, {"AGE", TextTable::right}});
  for (auto& x : rows) {
    const char* type = x.local ? "local" : x.is_static ? "static" : "learned";
    r.json.push_back({{"mac", x.mac},
                      {"vlan", x.vid},
                      {"port", x.port},
                      {"static", x.is_static || x.local},
                      {"local", x.local},
                      {"type", type},
                      {"age_s", x.age_s}});
    t.add({x.mac, std::to_string(x.vid), x.port, type,
           x.local || x.is_static ? "-" : std::to_string(x.age_s) + "s"});
  }
  r.text =
      t.str() + std::to_string(rows.size()) + " entr" + (rows.size() == 1 ? "y" : "ies") + "\n";
  return r;
}

// Parses "BR MAC PORT [vlan V]".
struct FdbArgs {
  Bridge* br;
  rte_ether_addr mac;
  BridgePort* port;
  uint16_t vid;
};

bool parse_fdb_args(Dataplane& dp, const std::vector<std::string>& args, const char* u,
                    FdbArgs* out, CmdResult* err) {
  if (args.size() != 3 && !(args.size() == 5 && args[3] == "vlan")) {
    *err = usage(u);
    return false;
  }
  out->br = find_bridge(dp, args[0], err);
  if (out->br == nullptr) return false;
  auto mac = parse_mac(args[1]);
  if (!mac) {
    *err = CmdResult::error("bad MAC '" + args[1] + "'");
    return false;
  }
  out->mac = *mac;
  out->port = nullptr;
  for (auto& p : out->br->ports)
    if (p->dev->name == args[2]) out->port = p.get();
  if (out->port == nullptr) {
    *err = CmdResult::error("'" + args[2] + "' is not a port of " + args[0]);
    return false;
  }
  out->vid = 0;
  if (args.size() == 5) {
    char* end = nullptr;
    long v = std::strtol(args[4].c_str(), &end, 10);
    if (end == args[4].c_str() || *end != 0 || v < 0 || v > 4094) {
      *err = CmdResult::error("vlan must be 0..4094, got '" + args[4] + "'");
      return false;
    }
    out->vid = static_cast<uint16_t>(v);
  }
  return true;
}

CmdResult fdb_add(Dataplane& dp, const std::vector<std::string>& args) {
  CmdResult r;
  FdbArgs a;
  if (!parse_fdb_args(dp, args, "fdb add BR MAC PORT [vlan V]", &a, &r)) return r;
  std::string err = a.br->sys->fdb_add(*a.br, a.mac, *a.port, a.vid, true);
  if (!err.empty()) return CmdResult::error(err);
  return r;
}

CmdResult fdb_del(Dataplane& dp, const std::vector<std::string>& args) {
  CmdResult r;
  FdbArgs a;
  if (!parse_fdb_args(dp, args, "fdb del BR MAC PORT [vlan V]", &a, &r)) return r;
  FdbEntry* e = a.br->fdb->lookup(a.mac, a.vid);
  if (e == nullptr || e->port.load() != a.port->dev->index)
    return CmdResult::error("no entry " + args[1] + " vlan " + std::to_string(a.vid) + " on " +
                            args[2]);
  if (e->is_local()) return CmdResult::error(args[1] + " is a local address (permanent)");
  a.br->fdb->del(a.mac, a.vid);
  return r;
}

CmdResult fdb_flush(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() != 1) return usage("fdb flush BR");
  CmdResult r;
  Bridge* br = find_bridge(dp, args[0], &r);
  if (br == nullptr) return r;
  unsigned n = br->fdb->del_if([](const FdbEntry& e) { return e.is_dynamic(); });
  r.json = {{"flushed", n}};
  r.text = "flushed " + std::to_string(n) + " learned entr" + (n == 1 ? "y" : "ies") + "\n";
  return r;
}

const CommandRegistrar kCommands{
    {{"show", "bridge"},
     "show bridge [BR]",
     "bridges: ports, STP states and roles, VLANs, counters",
     show_bridge},
    {{"show", "fdb"},
     "show fdb BR",
     "a bridge's forwarding database: MAC, VLAN, port, type, age",
     show_fdb},
    {{"fdb", "add"}, "fdb add BR MAC PORT [vlan V]", "add a static FDB entry", fdb_add},
    {{"fdb", "del"}, "fdb del BR MAC PORT [vlan V]", "remove an FDB entry", fdb_del},
    {{"fdb", "flush"}, "fdb flush BR", "remove every learned FDB entry of a bridge", fdb_flush},
};

}  // namespace
}  // namespace sluice::bridge
