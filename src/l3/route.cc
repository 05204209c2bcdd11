// The control API over the tables (net/ipv4/fib_frontend.c, devinet.c,
// net/ipv6/route.c): addresses with their connected routes, `route add|del`
// for both families (text parsed, next hops checked on-link), static
// neighbours. Each call returns "" or an error message with nothing changed;
// L3::commit() publishes.
#include <arpa/inet.h>

#include <cstring>

#include "core/dataplane.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {

struct RouteArgs {
  uint32_t prefix = 0, via = 0;
  uint8_t len = 0;
  uint16_t dev = kNoDev;
};

std::string parse_route_args(const Dataplane& dp, const std::string& prefix, const std::string& via,
                             const std::string& dev, RouteArgs* r) {
  if (!parse_cidr4(prefix, &r->prefix, &r->len)) {
    if (!parse_ipv4(prefix, &r->prefix)) return "bad prefix '" + prefix + "' (want A.B.C.D/LEN)";
    r->len = 32;
  }
  r->prefix &= prefix_mask(r->len);
  if (!via.empty() && !parse_ipv4(via, &r->via)) return "bad next hop '" + via + "'";
  if (!dev.empty()) {
    Device* d = dp.net.find(dev);
    if (d == nullptr) return "no such device '" + dev + "'";
    r->dev = d->index;
  }
  if (via.empty() && dev.empty()) return "a route needs 'via ADDR' or 'dev DEV'";
  return "";
}

std::string off_link(const std::string& via, const std::string& dev) {
  return "next hop " + via + " is not in a connected subnet" + (dev.empty() ? "" : " of " + dev) +
         " (Network is unreachable)";
}

}  // namespace

std::string L3::add_address(Device& d, const std::string& cidr) {
  Address a;
  const bool lo = d.kind == DevKind::loopback;
  if (std::string e = addrs.add(d.index, cidr, &a, lo); !e.empty()) return e;
  dirty_ = true;
  if (a.v6) {
    // Its connected prefix (addrconf_prefix_route); at start build_fib6() adds them.
    if (!fib6.on() || lo) return "";
    Route6 r;
    std::memcpy(r.prefix.data(), a.v6addr, 16);
    for (int b = a.len; b < 128; b++) r.prefix[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
    r.len = a.len;
    r.dev = d.index;
    r.origin = RouteOrigin::connected;
    if (!fib6.routes().count({r.prefix, r.len})) return fib6.insert(r);
    return "";
  }
  if (lo) return "";  // 127.0.0.0/8 is in the local table only, as in Linux
  // The connected route (fib_add_ifaddr), unless the subnet already has one.
  Route r;
  r.prefix = a.addr & prefix_mask(a.len);
  r.len = a.len;
  r.dev = d.index;
  r.origin = RouteOrigin::connected;
  if (!fib4.routes().count({r.prefix, r.len})) fib4.insert(r);
  return "";
}

std::string L3::add_static_neigh(Device& d, const std::string& ip, const std::string& mac) {
  return neigh.add_static(d.index, ip, mac);
}

namespace {
Addr6 masked6(const uint8_t* a, uint8_t len) {
  Addr6 p;
  std::memcpy(p.data(), a, 16);
  for (int b = len; b < 128; b++) p[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
  return p;
}
}  // namespace

void L3::address_gone(const Address& a) {
  dirty_ = true;
  if (a.loopback) return;
  // Another address of the subnet (the first in order) keeps the connected route.
  const Address* heir = nullptr;
  for (const Address& o : addrs.all()) {
    if (o.v6 != a.v6 || o.len != a.len || o.loopback) continue;
    const bool same = a.v6 ? masked6(o.v6addr, o.len) == masked6(a.v6addr, a.len)
                           : (o.addr & prefix_mask(o.len)) == (a.addr & prefix_mask(a.len));
    if (same && (heir == nullptr || o.dev == a.dev)) heir = &o;
  }
  if (a.v6) {
    if (!fib6.on()) return;
    auto it = fib6.routes().find({masked6(a.v6addr, a.len), a.len});
    if (it == fib6.routes().end() || it->second.origin != RouteOrigin::connected ||
        it->second.dev != a.dev || (heir != nullptr && heir->dev == a.dev))
      return;
    Route6 r = it->second;
    fib6.erase(it);
    if (heir != nullptr) {
      r.dev = heir->dev;
      fib6.insert(r);
    }
    return;
  }
  auto it = fib4.routes().find({a.addr & prefix_mask(a.len), a.len});
  if (it == fib4.routes().end() || it->second.origin != RouteOrigin::connected ||
      it->second.dev != a.dev || (heir != nullptr && heir->dev == a.dev))
    return;
  Route r = it->second;
  fib4.erase(it);
  if (heir != nullptr) {
    r.dev = heir->dev;
    fib4.insert(r);
  }
}

void L3::sweep_off_link() {
  for (auto it = fib4.routes().begin(); it != fib4.routes().end();) {
    uint16_t d = it->second.dev;
    if (it->second.via != 0 && !addrs.on_link(it->second.via, &d))
      fib4.erase(it++);
    else
      ++it;
  }
  if (!fib6.on()) return;
  static const Addr6 zero{};
  for (auto it = fib6.routes().begin(); it != fib6.routes().end();) {
    uint16_t d = it->second.dev;
    if (it->second.via != zero && !addrs.on_link6(it->second.via.data(), &d))
      fib6.erase(it++);
    else
      ++it;
  }
}

std::string L3::del_address(Device& d, const std::string& cidr) {
  Address a;
  if (std::string e = addrs.remove(d.index, cidr, &a); !e.empty()) return e;
  address_gone(a);
  sweep_off_link();
  return "";
}

std::string L3::del_static_neigh(Device& d, const std::string& ip) {
  return neigh.remove(d.index, ip);
}

void L3::forget_device(uint16_t dev) {
  for (const Address& a : addrs.remove_dev(dev)) address_gone(a);
  fib4.erase_dev(dev);
  if (fib6.on()) fib6.erase_dev(dev);
  sweep_off_link();
  neigh.flush_dev(dev);
  std::erase_if(punt_, [dev](const auto& p) { return p.first == dev || p.second == dev; });
  dirty_ = true;
}

// ---- IPv4 -----------------------------------------------------------------------------------

std::string L3::add_route(const std::string& prefix, const std::string& via,
                          const std::string& dev) {
  if (prefix.find(':') != std::string::npos) return add_route6(prefix, via, dev);
  RouteArgs a;
  if (std::string e = parse_route_args(dp, prefix, via, dev, &a); !e.empty()) return e;
  if (a.via != 0) {
    uint16_t d = a.dev;
    if (!addrs.on_link(a.via, &d)) return off_link(via, dev);
    a.dev = d;
  }
  Route r;
  r.prefix = a.prefix;
  r.len = a.len;
  r.via = a.via;
  r.dev = a.dev;
  r.origin = RouteOrigin::static_route;
  return fib4.insert(r);
}

std::string L3::del_route(const std::string& prefix, const std::string& via,
                          const std::string& dev) {
  if (prefix.find(':') != std::string::npos) return del_route6(prefix, via, dev);
  RouteArgs a;
  std::string e = parse_route_args(dp, prefix, via, dev, &a);
  if (!e.empty() && !(via.empty() && dev.empty())) return e;
  if (!parse_cidr4(prefix, &a.prefix, &a.len)) {
    if (!parse_ipv4(prefix, &a.prefix)) return "bad prefix '" + prefix + "'";
    a.len = 32;
  }
  a.prefix &= prefix_mask(a.len);
  auto it = fib4.routes().find({a.prefix, a.len});
  if (it == fib4.routes().end())
    return "no route " + ipv4_str(a.prefix) + "/" + std::to_string(a.len) + " (No such process)";
  const Route& r = it->second;
  if ((!via.empty() && r.via != a.via) || (!dev.empty() && r.dev != a.dev))
    return "route " + ipv4_str(a.prefix) + "/" + std::to_string(a.len) + " has another next hop";
  fib4.erase(it);
  return "";
}

// ---- IPv6 -----------------------------------------------------------------------------------

std::string L3::add_route6(const std::string& prefix, const std::string& via,
                           const std::string& dev) {
  if (!fib6.on()) return "IPv6 is off: no IPv6 address is configured";
  Route6 r;
  if (!parse_prefix6(prefix, &r.prefix, &r.len)) return "bad IPv6 prefix '" + prefix + "'";
  if (!dev.empty()) {
    Device* d = dp.net.find(dev);
    if (d == nullptr) return "no such device '" + dev + "'";
    r.dev = d->index;
  }
  if (!via.empty()) {
    if (inet_pton(AF_INET6, via.c_str(), r.via.data()) != 1) return "bad next hop '" + via + "'";
    uint16_t d = r.dev;
    if (!addrs.on_link6(r.via.data(), &d)) return off_link(via, dev);
    r.dev = d;
  } else if (dev.empty()) {
    return "a route needs 'via ADDR' or 'dev DEV'";
  }
  r.origin = RouteOrigin::static_route;
  return fib6.insert(r);
}

std::string L3::del_route6(const std::string& prefix, const std::string& via,
                           const std::string& dev) {
  Addr6 p;
  uint8_t len;
  if (!parse_prefix6(prefix, &p, &len)) return "bad IPv6 prefix '" + prefix + "'";
  auto it = fib6.routes().find({p, len});
  if (it == fib6.routes().end()) return "no route " + prefix + " (No such process)";
  Addr6 v{};
  if (!via.empty() && (inet_pton(AF_INET6, via.c_str(), v.data()) != 1 || v != it->second.via))
    return "route " + prefix + " has another next hop";
  if (!dev.empty()) {
    Device* d = dp.net.find(dev);
    if (d == nullptr || d->index != it->second.dev)
      return "route " + prefix + " is on another device";
  }
  fib6.erase(it);
  return "";
}

}  // namespace sluice::l3
