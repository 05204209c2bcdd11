// L3's part of a live reload (Feature::reload, src/control/reload.cc):
// addresses, routes and static neighbours added and removed, all in the
// running tables (neighbours learned, the MIB and the FIB's other routes
// stay). A removed address takes its connected route with it (IPv4 and
// IPv6), and routes whose gateway is no longer on a connected subnet; a
// changed static neighbour is removed, then added. What a removed device
// held goes with it (L3::forget_device, run when the core unregisters it).
// Refused with the reason (a restart applies them): punt TAPs, IPv6
// addresses when IPv6 was off at start, and the first L3 section of a
// topology that started without one.
#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

#include "config/topology.hh"
#include "core/dataplane.hh"
#include "l3/config.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {

std::string at(const config::Topology& t, const config::Mark& m) {
  return config::where(t.file, m);
}

bool same(const config::L3Address& a, const config::L3Address& b) {
  return a.dev == b.dev && a.address == b.address;
}
bool same(const config::L3Route& a, const config::L3Route& b) {
  return a.prefix == b.prefix && a.via == b.via && a.dev == b.dev && a.table == b.table;
}
bool same(const config::L3Neighbour& a, const config::L3Neighbour& b) {
  return a.dev == b.dev && a.address == b.address && a.mac == b.mac;
}
bool same(const config::L3Punt& a, const config::L3Punt& b) {
  return a.dev == b.dev && a.tap == b.tap;
}

template <class T>
bool contains(const std::vector<T>& v, const T& x) {
  return std::any_of(v.begin(), v.end(), [&](const T& y) { return same(x, y); });
}

// A device of next's (a reload adds VLANs, bonds and bridges before L3 applies).
bool device_will_exist(Dataplane& dp, const config::Topology& next, const std::string& name) {
  if (next.devices.count(name) != 0) return true;
  return dp.net.find(name) != nullptr && next.devices.empty();  // topologies built in tests
}

// An IPv4 gateway must be inside a subnet of one of next's IPv4 addresses
// (on dev when given), as add_route will require.
bool on_link4(const Config& c, const std::string& via, const std::string& dev) {
  uint32_t gw;
  if (!parse_ipv4(via, &gw)) return true;  // IPv6: add_route6 says
  for (const auto& a : c.addresses) {
    uint32_t addr;
    uint8_t len;
    if (!parse_cidr4(a.address, &addr, &len) || (!dev.empty() && a.dev != dev)) continue;
    if ((addr & prefix_mask(len)) == (gw & prefix_mask(len))) return true;
  }
  return false;
}

}  // namespace

std::string reload(Dataplane& dp, const config::Topology& next, bool apply) {
  const Config& old = dp.topo.get<Config>();
  const Config& now = next.get<Config>();
  L3* l3 = dp.find_feature<L3>();
  if (!apply) {
    if (l3 == nullptr)
      return next.file +
             ": L3 was off at start (no addresses, routes, neighbours or punt): turning it on "
             "needs a restart of sluiced";
    if (old.punt.size() != now.punt.size() ||
        !std::all_of(now.punt.begin(), now.punt.end(),
                     [&](auto& p) { return contains(old.punt, p); }))
      return next.file + ": 'punt' changed: punt TAPs are ports; changing them needs a restart";
    for (const auto& a : now.addresses) {
      if (contains(old.addresses, a)) continue;
      if (!device_will_exist(dp, next, a.dev))
        return at(next, a.mark) + "address on unknown device '" + a.dev + "'";
      if (a.address.find(':') != std::string::npos && !l3->fib6.on())
        return at(next, a.mark) +
               "IPv6 was off at start (no IPv6 address): adding the first "
               "IPv6 address needs a restart of sluiced";
    }
    for (const auto& n : now.neighbours)
      if (!contains(old.neighbours, n) && !device_will_exist(dp, next, n.dev))
        return at(next, n.mark) + "neighbour on unknown device '" + n.dev + "'";
    for (const auto& r : now.routes)
      if (!contains(old.routes, r) && !r.via.empty() && !on_link4(now, r.via, r.dev))
        return at(next, r.mark) + "gateway " + r.via + " is not on a connected subnet";
    return "";
  }

  std::string err;
  auto note = [&](const config::Topology& t, const config::Mark& m, const std::string& e) {
    if (!e.empty() && err.empty()) err = at(t, m) + e;
  };
  // Removals first (routes, neighbours, addresses), so that what replaces
  // them finds its place free; a device that goes (a removed VLAN) is still
  // registered here: the core unregisters it after every feature applied.
  for (const auto& r : old.routes)
    if (!contains(now.routes, r)) {
      if (!r.dev.empty() && dp.net.find(r.dev) == nullptr) continue;  // went with its device
      std::string e = l3->del_route(r.prefix, r.via, r.dev);
      // A route through a removed address's subnet may be gone already.
      if (e.find("No such process") == std::string::npos) note(dp.topo, r.mark, e);
    }
  for (const auto& n : old.neighbours) {
    if (contains(now.neighbours, n)) continue;
    Device* d = dp.net.find(n.dev);
    if (d != nullptr) note(dp.topo, n.mark, l3->del_static_neigh(*d, n.address));
  }
  for (const auto& a : old.addresses) {
    if (contains(now.addresses, a)) continue;
    Device* d = dp.net.find(a.dev);
    if (d != nullptr) note(dp.topo, a.mark, l3->del_address(*d, a.address));
  }
  for (const auto& a : now.addresses) {
    if (contains(old.addresses, a)) continue;
    Device* d = dp.net.find(a.dev);
    note(next, a.mark, d == nullptr ? "no device '" + a.dev + "'" : l3->add_address(*d, a.address));
  }
  for (const auto& r : now.routes)
    if (!contains(old.routes, r)) note(next, r.mark, l3->add_route(r.prefix, r.via, r.dev));
  for (const auto& n : now.neighbours) {
    if (contains(old.neighbours, n)) continue;
    Device* d = dp.net.find(n.dev);
    note(next, n.mark,
         d == nullptr ? "no device '" + n.dev + "'" : l3->add_static_neigh(*d, n.address, n.mac));
  }
  l3->commit();
  return err;
}

}  // namespace sluice::l3
