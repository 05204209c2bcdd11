// The L3 sections (docs/config.md, docs/l3.md): addresses, routes,
// neighbours and punt, parsed into l3::Config; the check after parsing
// (devices exist, addresses unique, every next hop in a connected subnet).
#include "l3/config.hh"

#include <arpa/inet.h>

#include <cstring>
#include <map>
#include <set>

#include "config/loader.hh"
#include "core/feature.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

using namespace sluice::config;

namespace {

bool l3_v4(const std::string& s, uint32_t* out) {
  in_addr a;
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

bool l3_v6(const std::string& s) {
  in6_addr a;
  return !s.empty() && inet_pton(AF_INET6, s.c_str(), &a) == 1;
}

// "A.B.C.D/LEN" or "X::Y/LEN"; false if neither.
bool l3_cidr(const std::string& s, bool* v6, uint32_t* addr, unsigned* len) {
  size_t slash = s.find('/');
  if (slash == std::string::npos || slash + 1 == s.size()) return false;
  auto l = parse_int(std::string_view(s).substr(slash + 1));
  std::string a = s.substr(0, slash);
  if (!l || *l < 0) return false;
  *v6 = a.find(':') != std::string::npos;
  *len = static_cast<unsigned>(*l);
  if (*v6) return *l <= 128 && l3_v6(a);
  return *l <= 32 && l3_v4(a, addr);
}

void addr_dev(Loader& l, L3Address& a, const Field& f) {
  a.dev = l.get_string(f);
  a.dev_at = f.at();
}
void addr_address(Loader& l, L3Address& a, const Field& f) {
  a.address = l.get_string(f);
  a.address_at = f.at();
  bool v6;
  uint32_t v4;
  unsigned len;
  if (!l3_cidr(a.address, &v6, &v4, &len))
    l.fail(f.at(), f.where +
                       ": address must be a prefix like 10.0.0.1/24 or \"2001:db8::1/64\", got " +
                       describe(f.value));
  if (!v6) {
    uint32_t host = len >= 32 ? 0 : ~uint32_t(0) >> len;
    if (v4 == 0 || (v4 >> 24) == 127 || (v4 >> 28) >= 14)
      l.fail(f.at(), f.where + ": address " + describe(f.value) + " is not a unicast host address");
    if (len < 31 && ((v4 & host) == 0 || (v4 & host) == host))
      l.fail(f.at(), f.where + ": address " + describe(f.value) +
                         " is the network or broadcast address of its subnet");
  }
}
constexpr KeyDef<L3Address> kAddressKeys[] = {{"dev", addr_dev}, {"address", addr_address}};

void route_prefix(Loader& l, L3Route& r, const Field& f) {
  r.prefix = l.get_string(f);
  r.prefix_at = f.at();
  bool v6;
  uint32_t v4;
  unsigned len;
  if (!l3_cidr(r.prefix, &v6, &v4, &len))
    l.fail(f.at(),
           f.where + ": prefix must be like 10.9.0.0/16 or 0.0.0.0/0, got " + describe(f.value));
  if (v6) return;  // host bits: masked, as `ip -6 route` does
  uint32_t host = len >= 32 ? 0 : ~uint32_t(0) >> len;
  if (v4 & host)
    l.fail(f.at(), f.where + ": prefix " + describe(f.value) +
                       " has host bits set (did you mean the network address?)");
}
void route_via(Loader& l, L3Route& r, const Field& f) {
  r.via = l.get_string(f);
  r.via_at = f.at();
  uint32_t v4;
  if (!l3_v4(r.via, &v4) && !l3_v6(r.via))
    l.fail(f.at(), f.where + ": via must be an IPv4 or IPv6 address, got " + describe(f.value));
}
void route_dev(Loader& l, L3Route& r, const Field& f) {
  r.dev = l.get_string(f);
  r.dev_at = f.at();
}
void route_table(Loader& l, L3Route& r, const Field& f) {
  r.table = l.get_string(f);
  if (r.table != "main") l.fail(f.at(), f.where + ": table must be main, got " + describe(f.value));
}
constexpr KeyDef<L3Route> kRouteKeys[] = {
    {"prefix", route_prefix}, {"via", route_via}, {"dev", route_dev}, {"table", route_table}};

void neigh_dev(Loader& l, L3Neighbour& n, const Field& f) {
  n.dev = l.get_string(f);
  n.dev_at = f.at();
}
void neigh_address(Loader& l, L3Neighbour& n, const Field& f) {
  n.address = l.get_string(f);
  n.address_at = f.at();
  uint32_t v4;
  if (!l3_v4(n.address, &v4) && !l3_v6(n.address))
    l.fail(f.at(), f.where + ": address must be an IPv4 or IPv6 address, got " + describe(f.value));
}
void neigh_mac(Loader& l, L3Neighbour& n, const Field& f) {
  std::string s = l.get_string(f);
  bool ok = s.size() == 17;
  for (size_t i = 0; ok && i < s.size(); i++) ok = i % 3 == 2 ? s[i] == ':' : is_hex(s[i]);
  if (!ok || (std::stoul(s.substr(0, 2), nullptr, 16) & 1))
    l.fail(f.at(), f.where + ": mac must be a unicast MAC like \"02:00:00:00:00:aa\", got " +
                       describe(f.value));
  n.mac = to_lower(s);
}
constexpr KeyDef<L3Neighbour> kNeighKeys[] = {
    {"dev", neigh_dev}, {"address", neigh_address}, {"mac", neigh_mac}};

void punt_dev(Loader& l, L3Punt& p, const Field& f) {
  p.dev = l.get_string(f);
  p.dev_at = f.at();
}
void punt_tap(Loader& l, L3Punt& p, const Field& f) {
  p.tap = device_name(l, f);
  p.tap_at = f.at();
}
constexpr KeyDef<L3Punt> kPuntKeys[] = {{"dev", punt_dev}, {"tap", punt_tap}};

void section_addresses(Loader& l, const Field& f) {
  parse_entries(l, f, "address", "{dev: ..., address: A.B.C.D/LEN}", kAddressKeys,
                {"dev", "address"}, l.topo.get<l3::Config>().addresses);
}
void section_routes(Loader& l, const Field& f) {
  parse_entries(l, f, "route", "{prefix: ..., via: ... and/or dev: ...}", kRouteKeys, {"prefix"},
                l.topo.get<l3::Config>().routes);
}
void section_neighbours(Loader& l, const Field& f) {
  parse_entries(l, f, "neighbour", "{dev: ..., address: ..., mac: ...}", kNeighKeys,
                {"dev", "address", "mac"}, l.topo.get<l3::Config>().neighbours);
}
void section_punt(Loader& l, const Field& f) {
  parse_entries(l, f, "punt", "{dev: ..., tap: ...}", kPuntKeys, {"dev", "tap"},
                l.topo.get<l3::Config>().punt);
}

// L3: devices exist, addresses unique, every route's next hop in a connected subnet.
void check(Loader& l) {
  const l3::Config& cfg = l.topo.get<l3::Config>();
  auto known = [&](const std::string& name, Mark at, const std::string& where) {
    if (!l.has_device(name))
      l.fail(at,
             where + ": dev '" + name + "' is not a " + l.kinds_phrase() + " defined in this file");
  };
  struct Subnet {
    std::string dev;
    uint32_t net, mask, addr;
  };
  std::vector<Subnet> subnets;
  std::map<std::string, Mark> seen;
  for (size_t i = 0; i < cfg.addresses.size(); i++) {
    auto& a = cfg.addresses[i];
    std::string where = "address #" + std::to_string(i + 1);
    known(a.dev, a.dev_at, where);
    std::string host = a.address.substr(0, a.address.find('/'));
    auto [it, fresh] = seen.emplace(host, a.address_at);
    if (!fresh)
      l.fail(a.address_at, where + ": address " + host + " is already assigned (at " +
                               mark_str(it->second) + ")");
    bool v6;
    uint32_t v4;
    unsigned len;
    l3_cidr(a.address, &v6, &v4, &len);
    if (!v6) {
      uint32_t mask = len == 0 ? 0 : ~uint32_t(0) << (32 - len);
      subnets.push_back(Subnet{a.dev, v4 & mask, mask, v4});
    }
  }
  std::set<std::string> prefixes;
  for (size_t i = 0; i < cfg.routes.size(); i++) {
    auto& r = cfg.routes[i];
    std::string where = "route #" + std::to_string(i + 1);
    if (!r.dev.empty()) known(r.dev, r.dev_at, where);
    if (r.via.empty() && r.dev.empty()) l.fail(r.mark, where + ": a route needs via, dev or both");
    if (!prefixes.insert(r.prefix).second)
      l.fail(r.prefix_at, where + ": prefix " + r.prefix + " is routed twice");
    if (r.via.empty()) continue;
    bool pv6 = r.prefix.find(':') != std::string::npos, vv6 = r.via.find(':') != std::string::npos;
    if (pv6 != vv6) l.fail(r.via_at, where + ": via " + r.via + " is not of the prefix's family");
    if (vv6) {
      in6_addr via6;
      inet_pton(AF_INET6, r.via.c_str(), &via6);
      bool ok6 = false;
      for (auto& a : cfg.addresses) {
        if (a.address.find(':') == std::string::npos || (!r.dev.empty() && a.dev != r.dev))
          continue;
        in6_addr net6;
        size_t slash = a.address.find('/');
        inet_pton(AF_INET6, a.address.substr(0, slash).c_str(), &net6);
        unsigned alen = static_cast<unsigned>(std::stoul(a.address.substr(slash + 1)));
        bool in = true;
        for (unsigned b = 0; b < alen && in; b++) {
          uint8_t m = static_cast<uint8_t>(0x80 >> (b % 8));
          in = (net6.s6_addr[b / 8] & m) == (via6.s6_addr[b / 8] & m);
        }
        ok6 = ok6 || (in && std::memcmp(&net6, &via6, 16) != 0);
      }
      if (!ok6)
        l.fail(r.via_at, where + ": next hop " + r.via +
                             " is unreachable: not in a connected subnet" +
                             (r.dev.empty() ? std::string() : " of " + r.dev) + " (see addresses)");
      continue;
    }
    uint32_t via = 0;
    l3_v4(r.via, &via);
    bool ok = false;
    for (auto& s : subnets)
      if ((r.dev.empty() || s.dev == r.dev) && (via & s.mask) == s.net && via != s.addr) ok = true;
    if (!ok)
      l.fail(r.via_at, where + ": next hop " + r.via +
                           " is unreachable: not in a connected subnet" +
                           (r.dev.empty() ? std::string() : " of " + r.dev) + " (see addresses)");
  }
  for (size_t i = 0; i < cfg.neighbours.size(); i++)
    known(cfg.neighbours[i].dev, cfg.neighbours[i].dev_at, "neighbour #" + std::to_string(i + 1));
  std::set<std::string> taps;
  for (size_t i = 0; i < cfg.punt.size(); i++) {
    auto& p = cfg.punt[i];
    std::string where = "punt #" + std::to_string(i + 1);
    known(p.dev, p.dev_at, where);
    if (l.device_kind(p.dev) == "bridge")
      l.fail(p.dev_at,
             where + ": dev '" + p.dev + "' is a bridge; punt TAPs go on ports and vlans");
    if (l.has_device(p.tap))
      l.fail(p.tap_at, where + ": tap '" + p.tap + "' is the name of a sluice device");
    if (!taps.insert(p.tap).second) l.fail(p.tap_at, where + ": tap '" + p.tap + "' is used twice");
  }
}

}  // namespace

const Feature kFeature{
    .name = "l3",
    .after = {"bridge"},  // addresses on bridges
    .sections = {{"addresses", 70, section_addresses},
                 {"routes", 71, section_routes},
                 {"neighbours", 72, section_neighbours},
                 {"punt", 73, section_punt}},
    .check = check,
    .setup = setup,
    .reload = reload,
};
const FeatureRegistrar kRegistrar{kFeature};

}  // namespace sluice::l3
