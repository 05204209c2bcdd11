// The control API over the tables (net/ipv4/fib_frontend.c, devinet.c,
// net/ipv6/route.c): addresses with their connected routes, `route add|del`
// for both families (text parsed, next hops checked on-link), static
// neighbours. Each call returns "" or an error message with nothing changed;
// L3::commit() publishes.
#include <arpa/inet.h>

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
  if (a.v6) return "";  // its connected prefix comes with build_fib6()
  if (lo) return "";    // 127.0.0.0/8 is in the local table only, as in Linux
  dirty_ = true;
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
