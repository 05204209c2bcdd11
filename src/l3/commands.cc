// L3 commands.
//
//   show addresses                      every address: device, prefix, family
//   show routes                         local table, then main (connected and static)
//   show neigh                          neighbours: device, address, MAC, NUD state
//   show ip stats [DEV]                 per-device IP/ICMP MIB counters (Linux names)
//   route add|del PREFIX via ADDR|dev DEV [dev DEV]
//
// JSON shapes: ../shared/design/CLI.md (show routes, show neigh); docs/l3.md.
#include <arpa/inet.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "l3/l3.hh"

namespace sluice::l3 {
namespace {

using nlohmann::json;

std::string dev_name(Dataplane& dp, uint16_t idx) {
  Device* d = dp.net.dev(idx);
  return d != nullptr ? d->name : std::string("?");
}

L3* get(Dataplane& dp) {
  return dp.find_feature<L3>();
}

CmdResult not_configured() {
  CmdResult r;
  r.text = "L3 is not configured (no addresses in the topology)\n";
  return r;
}

std::string addr_text(const Address& a) {
  if (!a.v6) return ipv4_str(a.addr) + "/" + std::to_string(a.len);
  char b[INET6_ADDRSTRLEN];
  inet_ntop(AF_INET6, a.v6addr, b, sizeof b);
  return std::string(b) + "/" + std::to_string(a.len);
}

CmdResult show_addresses(Dataplane& dp, const std::vector<std::string>&) {
  CmdResult r;
  r.json = json::array();
  L3* l3 = get(dp);
  if (l3 == nullptr) return r;
  TextTable t({{"DEVICE"}, {"FAMILY"}, {"ADDRESS"}});
  for (const Address& a : l3->addresses()) {
    std::string fam = a.v6 ? "inet6" : "inet";
    r.json.push_back({{"dev", dev_name(dp, a.dev)}, {"family", fam}, {"address", addr_text(a)}});
    t.add({dev_name(dp, a.dev), fam, addr_text(a)});
  }
  r.text = t.str();
  return r;
}

CmdResult show_routes(Dataplane& dp, const std::vector<std::string>&) {
  CmdResult r;
  r.json = json::array();
  L3* l3 = get(dp);
  if (l3 == nullptr) return r;
  TextTable t({{"TABLE"}, {"TYPE"}, {"PREFIX"}, {"VIA"}, {"DEV"}, {"ORIGIN"}});
  // The local table (what fib_add_ifaddr puts there).
  for (const Address& a : l3->addresses()) {
    if (a.v6) continue;
    std::string dev = dev_name(dp, a.dev);
    r.json.push_back({{"prefix", ipv4_str(a.addr) + "/32"},
                      {"table", "local"},
                      {"type", "local"},
                      {"via", nullptr},
                      {"dev", dev}});
    t.add({"local", "local", ipv4_str(a.addr) + "/32", "-", dev, "kernel"});
    if (a.len < 31) {
      uint32_t b = a.addr | ~prefix_mask(a.len);
      r.json.push_back({{"prefix", ipv4_str(b) + "/32"},
                        {"table", "local"},
                        {"type", "broadcast"},
                        {"via", nullptr},
                        {"dev", dev}});
      t.add({"local", "broadcast", ipv4_str(b) + "/32", "-", dev, "kernel"});
    }
  }
  for (const auto& [key, rt] : l3->fib6.routes()) {
    std::string prefix = ipv6_str(rt.prefix.data()) + "/" + std::to_string(rt.len);
    bool onlink = std::all_of(rt.via.begin(), rt.via.end(), [](uint8_t b) { return b == 0; });
    std::string origin = rt.origin == RouteOrigin::connected ? "connected" : "static";
    json via = onlink ? json(nullptr) : json(ipv6_str(rt.via.data()));
    r.json.push_back({{"prefix", prefix},
                      {"table", "main"},
                      {"type", "unicast"},
                      {"via", via},
                      {"dev", dev_name(dp, rt.dev)},
                      {"origin", origin}});
    t.add({"main", "unicast", prefix, onlink ? "-" : ipv6_str(rt.via.data()), dev_name(dp, rt.dev),
           origin});
  }
  for (const auto& [key, rt] : l3->fib4.routes()) {
    std::string prefix = ipv4_str(rt.prefix) + "/" + std::to_string(rt.len);
    std::string origin = rt.origin == RouteOrigin::connected ? "connected" : "static";
    json via = rt.via != 0 ? json(ipv4_str(rt.via)) : json(nullptr);
    r.json.push_back({{"prefix", prefix},
                      {"table", "main"},
                      {"type", "unicast"},
                      {"via", via},
                      {"dev", dev_name(dp, rt.dev)},
                      {"origin", origin}});
    t.add({"main", "unicast", prefix, rt.via != 0 ? ipv4_str(rt.via) : "-", dev_name(dp, rt.dev),
           origin});
  }
  r.text = t.str();
  return r;
}

CmdResult show_neigh(Dataplane& dp, const std::vector<std::string>&) {
  CmdResult r;
  r.json = json::array();
  L3* l3 = get(dp);
  if (l3 == nullptr) return r;
  TextTable t({{"DEVICE"}, {"ADDRESS"}, {"MAC"}, {"STATE"}, {"QUEUED", TextTable::right}});
  for (const NeighEntry* e : l3->neighbours()) {
    rte_ether_addr mac;
    uint64_t hw = e->hw.load();
    neigh_mac(hw, &mac);
    bool has_mac = (e->state & kNudValid) != 0;
    json jm = has_mac ? json(mac_str(mac)) : json(nullptr);
    std::string addr = e->v6 ? ipv6_str(e->a6) : ipv4_str(e->key.ip);
    r.json.push_back({{"dev", dev_name(dp, e->key.dev)},
                      {"address", addr},
                      {"mac", jm},
                      {"state", nud_name(e->state)},
                      {"queued", e->queue.size()},
                      {"probes", e->probes}});
    t.add({dev_name(dp, e->key.dev), addr, has_mac ? mac_str(mac) : "-", nud_name(e->state),
           std::to_string(e->queue.size())});
  }
  const NeighStats& s = l3->neigh_stats();
  r.text = t.str() + "allocs " + std::to_string(s.allocs) + "  destroys " +
           std::to_string(s.destroys) + "  res_failed " + std::to_string(s.res_failed) +
           "  unres_discards " + std::to_string(s.unres_discards) + "  probes " +
           std::to_string(s.probes_sent) + "\n";
  return r;
}

CmdResult show_ip_stats(Dataplane& dp, const std::vector<std::string>& args) {
  if (args.size() > 1) return CmdResult::error("usage: show ip stats [DEV]");
  L3* l3 = get(dp);
  if (l3 == nullptr) return not_configured();
  std::vector<Device*> devs;
  if (args.empty() || args[0] == "all") {
    devs = dp.net.devices();
  } else {
    Device* d = dp.net.find(args[0]);
    if (d == nullptr) return CmdResult::error("no such device '" + args[0] + "'");
    devs.push_back(d);
  }
  CmdResult r;
  r.json = json::object();
  MibBlock total{};
  std::string text;
  for (Device* d : devs) {
    MibBlock b = l3->mib(d->index);
    json j = json::object();
    std::string line;
    for (unsigned i = 0; i < kNumMib; i++) {
      j[mib_name(static_cast<Mib>(i))] = b.v[i];
      total.v[i] += b.v[i];
      if (b.v[i] != 0)
        line +=
            "  " + std::string(mib_name(static_cast<Mib>(i))) + " " + std::to_string(b.v[i]) + "\n";
    }
    r.json[d->name] = j;
    text += d->name + ":\n" + (line.empty() ? "  (all zero)\n" : line);
  }
  if (args.empty()) {
    json j = json::object();
    for (unsigned i = 0; i < kNumMib; i++) j[mib_name(static_cast<Mib>(i))] = total.v[i];
    r.json["all"] = j;
  }
  r.text = text;
  return r;
}

// route add|del PREFIX [via ADDR] [dev DEV]
CmdResult route_cmd(Dataplane& dp, const std::vector<std::string>& args, bool add) {
  const char* usage = add ? "usage: route add PREFIX via ADDR|dev DEV"
                          : "usage: route del PREFIX [via ADDR|dev DEV]";
  if (args.empty() || args.size() % 2 != 1) return CmdResult::error(usage);
  std::string via, dev;
  for (size_t i = 1; i + 1 < args.size(); i += 2) {
    if (args[i] == "via")
      via = args[i + 1];
    else if (args[i] == "dev")
      dev = args[i + 1];
    else
      return CmdResult::error(usage);
  }
  L3* l3 = get(dp);
  if (l3 == nullptr) return CmdResult::error("L3 is not configured (no addresses in the topology)");
  std::string err = add ? l3->add_route(args[0], via, dev) : l3->del_route(args[0], via, dev);
  if (!err.empty()) return CmdResult::error(err);
  l3->commit();
  CmdResult r;
  r.json = json{{"ok", true}};
  return r;
}

CommandRegistrar r1(
    {{"show", "addresses"}, "show addresses", "L3 addresses of every device", show_addresses});
CommandRegistrar r2(
    {{"show", "routes"}, "show routes", "local and main routing tables", show_routes});
CommandRegistrar r3(
    {{"show", "neigh"}, "show neigh", "neighbour (ARP) table with NUD states", show_neigh});
CommandRegistrar r4({{"show", "ip", "stats"},
                     "show ip stats [DEV]",
                     "per-device IP and ICMP counters (Linux MIB names)",
                     show_ip_stats});
CommandRegistrar r5({{"route", "add"},
                     "route add PREFIX via ADDR|dev DEV",
                     "add a static route",
                     [](Dataplane& dp, const std::vector<std::string>& a) {
                       return route_cmd(dp, a, true);
                     }});
CommandRegistrar r6({{"route", "del"},
                     "route del PREFIX [via ADDR|dev DEV]",
                     "delete a route",
                     [](Dataplane& dp, const std::vector<std::string>& a) {
                       return route_cmd(dp, a, false);
                     }});

}  // namespace
}  // namespace sluice::l3
