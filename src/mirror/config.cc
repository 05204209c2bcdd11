// The `mirrors:` section (docs/config.md, docs/mirror.md) parsed into
// mirror::Config, its check after parsing (devices exist, remote
// destinations routed by L3, no loop in the mirror/redirect graph), and the
// feature's registration.
#include "mirror/config.hh"

#include <arpa/inet.h>

#include <algorithm>
#include <deque>
#include <map>
#include <set>

#include "bond/config.hh"
#include "bridge/config.hh"
#include "capture/filter.hh"
#include "core/dataplane.hh"
#include "mirror/mirror.hh"
#include "config/loader.hh"
#include "core/feature.hh"
#include "l3/config.hh"
#include "mirror/mirror.hh"

namespace sluice::config {

const char* mirror_target_name(MirrorTarget t) {
  switch (t) {
    case MirrorTarget::dev:
      return "dev";
    case MirrorTarget::vxlan:
      return "vxlan";
    case MirrorTarget::gre:
      return "gre";
    case MirrorTarget::erspan:
      return "erspan";
    case MirrorTarget::pcapng:
      return "pcapng";
  }
  return "?";
}

}  // namespace sluice::config

namespace sluice::mirror {

using namespace sluice::config;

namespace {

struct MirrorIn {
  config::Mirror v;
  bool has_at = false, has_max_bytes = false;
  Mark via_at, remote_at, at_at;
  std::set<std::string> kinds;  // keys of `to` naming a destination
};
struct Parsed {
  std::vector<MirrorIn> mirrors;
};

// A device name, lo included (device_name refuses it for ports and vlans).
std::string mirror_dev(Loader& l, const Field& f) {
  if (f.value.IsScalar() && f.value.Scalar() == "lo") return "lo";
  return device_name(l, f);
}

// ---- source: {dev, direction} ----
void src_dev(Loader& l, MirrorIn& m, const Field& f) {
  m.v.source = mirror_dev(l, f);
  m.v.source_at = f.at();
}
void src_direction(Loader& l, MirrorIn& m, const Field& f) {
  std::string d = l.get_string(f);
  if (d == "ingress")
    m.v.direction = 1;
  else if (d == "egress")
    m.v.direction = 2;
  else if (d == "both")
    m.v.direction = 3;
  else
    l.fail(f.at(), f.what() + " must be ingress, egress or both, got " + describe(f.value));
}
constexpr KeyDef<MirrorIn> kSourceKeys[] = {{"dev", src_dev}, {"direction", src_direction}};

// ---- the remote destinations ----
void remote_addr(Loader& l, MirrorIn& m, const Field& f) {
  m.v.remote = l.get_string(f);
  m.remote_at = f.at();
  in_addr a;
  if (inet_pton(AF_INET, m.v.remote.c_str(), &a) != 1)
    l.fail(f.at(), f.what() + " must be an IPv4 address, got " + describe(f.value));
  uint32_t h = ntohl(a.s_addr);
  if (h == 0 || (h >> 24) == 127 || (h >> 28) >= 14)
    l.fail(f.at(), f.what() + " " + describe(f.value) + " is not a unicast address");
}
void remote_dev(Loader& l, MirrorIn& m, const Field& f) {
  m.v.via = mirror_dev(l, f);
  m.via_at = f.at();
}
void vx_vni(Loader& l, MirrorIn& m, const Field& f) {
  m.v.vni = l.get_uint(f, 0, 0xffffff, "a VNI");
}
void vx_port(Loader& l, MirrorIn& m, const Field& f) {
  m.v.dst_port = l.get_uint(f, 1, 65535, "a UDP port");
}
void gre_key(Loader& l, MirrorIn& m, const Field& f) {
  m.v.key = l.get_uint(f, 0, 0xffffffffu, "a 32-bit key");
}
void er_session(Loader& l, MirrorIn& m, const Field& f) {
  m.v.session = l.get_uint(f, 0, 1023, "an ERSPAN session id");
}
constexpr KeyDef<MirrorIn> kVxlanKeys[] = {
    {"remote", remote_addr}, {"vni", vx_vni}, {"dst_port", vx_port}, {"dev", remote_dev}};
constexpr KeyDef<MirrorIn> kGreKeys[] = {
    {"remote", remote_addr}, {"key", gre_key}, {"dev", remote_dev}};
constexpr KeyDef<MirrorIn> kErspanKeys[] = {
    {"remote", remote_addr}, {"session", er_session}, {"dev", remote_dev}};

template <size_t N>
void remote(Loader& l, MirrorIn& m, const Field& f, MirrorTarget t, const KeyDef<MirrorIn> (&keys)[N],
            std::initializer_list<std::string_view> required, const char* example) {
  m.kinds.insert(f.name);
  m.v.to = t;
  if (!f.value.IsMap())
    l.fail(f.at(), f.what() + " must be a map (" + example + "), got " + describe(f.value));
  auto seen = l.parse_keys<MirrorIn>(f.value, f.what(), std::span<const KeyDef<MirrorIn>>(keys, N), m);
  l.require(f.value, f.what(), seen, required);
}

// ---- to: {dev, at} | {vxlan} | {gre} | {erspan} | {pcapng, max_bytes} ----
void to_dev(Loader& l, MirrorIn& m, const Field& f) {
  m.kinds.insert("dev");
  m.v.to = MirrorTarget::dev;
  m.v.dev = mirror_dev(l, f);
  m.v.dev_at = f.at();
}
void to_at(Loader& l, MirrorIn& m, const Field& f) {
  std::string a = l.get_string(f);
  m.has_at = true;
  m.at_at = f.at();
  if (a == "egress")
    m.v.at_ingress = false;
  else if (a == "ingress")
    m.v.at_ingress = true;
  else
    l.fail(f.at(), f.what() + " must be egress or ingress, got " + describe(f.value));
}
void to_vxlan(Loader& l, MirrorIn& m, const Field& f) {
  remote(l, m, f, MirrorTarget::vxlan, kVxlanKeys, {"remote", "vni"},
         "{remote: 10.9.0.2, vni: 42, dst_port: 4789, dev: eth3}");
}
void to_gre(Loader& l, MirrorIn& m, const Field& f) {
  remote(l, m, f, MirrorTarget::gre, kGreKeys, {"remote"}, "{remote: 10.9.0.2, key: 0, dev: eth3}");
}
void to_erspan(Loader& l, MirrorIn& m, const Field& f) {
  remote(l, m, f, MirrorTarget::erspan, kErspanKeys, {"remote", "session"},
         "{remote: 10.9.0.2, session: 7, dev: eth3}");
}
void to_pcapng(Loader& l, MirrorIn& m, const Field& f) {
  m.kinds.insert("pcapng");
  m.v.to = MirrorTarget::pcapng;
  m.v.path = l.get_string(f);
  if (m.v.path.empty()) l.fail(f.at(), f.what() + " must be a file path");
}
void to_max_bytes(Loader& l, MirrorIn& m, const Field& f) {
  m.has_max_bytes = true;
  auto v = f.value.IsScalar() ? parse_int(f.value.Scalar()) : std::nullopt;
  if (!v || *v < 4096)
    l.fail(f.at(), f.what() + " must be a number of bytes >= 4096, got " + describe(f.value));
  m.v.max_bytes = static_cast<uint64_t>(*v);
}
constexpr KeyDef<MirrorIn> kToKeys[] = {{"dev", to_dev},       {"at", to_at},
                                         {"vxlan", to_vxlan},   {"gre", to_gre},
                                         {"erspan", to_erspan}, {"pcapng", to_pcapng},
                                         {"max_bytes", to_max_bytes}};

// ---- the entry ----
void m_name(Loader& l, MirrorIn& m, const Field& f) {
  m.v.name = l.get_string(f);
  m.v.name_at = f.at();
  const std::string& n = m.v.name;
  bool ok = !n.empty() && n.size() <= 32;
  for (char c : n) ok = ok && (is_alnum(c) || c == '_' || c == '-' || c == '.');
  if (!ok)
    l.fail(f.at(), f.what() + " must be 1..32 letters, digits, '_', '-' or '.', got " +
                       describe(f.value));
}
void m_source(Loader& l, MirrorIn& m, const Field& f) {
  if (!f.value.IsMap())
    l.fail(f.at(), f.what() + " must be a map ({dev: eth1, direction: egress}), got " +
                       describe(f.value));
  auto seen = l.parse_keys<MirrorIn>(f.value, f.what(), kSourceKeys, m);
  l.require(f.value, f.what(), seen, {"dev", "direction"});
}
void m_filter(Loader& l, MirrorIn& m, const Field& f) {
  m.v.filter = l.get_string(f);
  m.v.filter_at = f.at();
  if (std::string e = filter_check(m.v.filter); !e.empty())
    l.fail(f.at(), f.what() + ": " + e);
}
void m_action(Loader& l, MirrorIn& m, const Field& f) {
  std::string a = l.get_string(f);
  if (a == "mirror")
    m.v.redirect = false;
  else if (a == "redirect")
    m.v.redirect = true;
  else
    l.fail(f.at(), f.what() + " must be mirror or redirect, got " + describe(f.value));
}
void m_snaplen(Loader& l, MirrorIn& m, const Field& f) {
  m.v.snaplen = l.get_uint(f, 0, 65535, "a length (0: whole packet)");
  if (m.v.snaplen != 0 && m.v.snaplen < 14)
    l.fail(f.at(), f.what() + " must be 0 (whole packet) or at least 14 (an Ethernet header)");
}
void m_sample(Loader& l, MirrorIn& m, const Field& f) {
  m.v.sample = l.get_uint(f, 1, 1000000, "1 in N");
}
void m_to(Loader& l, MirrorIn& m, const Field& f) {
  m.v.to_at = f.at();
  if (!f.value.IsMap())
    l.fail(f.at(), f.what() +
                       " must be a map ({dev: eth2, at: egress}, {vxlan: {...}}, {gre: {...}}, "
                       "{erspan: {...}} or {pcapng: PATH}), got " +
                       describe(f.value));
  l.parse_keys<MirrorIn>(f.value, f.what(), kToKeys, m);
  if (m.kinds.empty())
    l.fail(f.at(), f.what() + " names no destination (dev, vxlan, gre, erspan or pcapng)");
  if (m.kinds.size() > 1) {
    std::vector<std::string_view> k(m.kinds.begin(), m.kinds.end());
    l.fail(f.at(), f.what() + " names more than one destination (" + join(k) + ")");
  }
  if (m.has_at && m.v.to != MirrorTarget::dev)
    l.fail(m.at_at, f.what() + ": at is for a device destination (to: {dev: X, at: ingress})");
  if (m.has_max_bytes && m.v.to != MirrorTarget::pcapng)
    l.fail(f.at(), f.what() + ": max_bytes is for a pcapng destination");
}
constexpr KeyDef<MirrorIn> kMirrorKeys[] = {
    {"name", m_name},       {"source", m_source},   {"filter", m_filter}, {"action", m_action},
    {"snaplen", m_snaplen}, {"sample", m_sample},   {"to", m_to}};

void section_mirrors(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "mirrors (one '- name: ...' entry per mirror)");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = l.entry_where("mirror", e, i);
    if (!e.IsMap())
      l.fail(e, where + " must be a map (name, source, filter, action, snaplen, sample, to), got " +
                    describe(e));
    MirrorIn m;
    m.v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<MirrorIn>(e, where, kMirrorKeys, m);
    l.require(e, where, seen, {"name", "source", "to"});
    l.scratch<Parsed>().mirrors.push_back(std::move(m));
  }
}

// ---- the check ----

bool ipv4(const std::string& s, uint32_t* out) {
  in_addr a;
  if (inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

// The device L3's routes send `dst` out of (longest prefix over connected
// subnets and static routes), or "".
std::string route_dev(const l3::Config& c, uint32_t dst) {
  struct Subnet {
    uint32_t net, mask;
    std::string dev;
  };
  std::vector<Subnet> subnets;
  for (auto& a : c.addresses) {
    if (a.address.find(':') != std::string::npos) continue;
    size_t slash = a.address.find('/');
    uint32_t v = 0;
    if (slash == std::string::npos || !ipv4(a.address.substr(0, slash), &v)) continue;
    unsigned len = static_cast<unsigned>(std::stoul(a.address.substr(slash + 1)));
    uint32_t mask = len == 0 ? 0 : ~uint32_t(0) << (32 - len);
    subnets.push_back(Subnet{v & mask, mask, a.dev});
  }
  int best = -1;
  std::string dev;
  auto consider = [&](uint32_t net, uint32_t mask, int len, const std::string& d) {
    if ((dst & mask) == net && len > best && !d.empty()) {
      best = len;
      dev = d;
    }
  };
  for (auto& s : subnets) consider(s.net, s.mask, __builtin_popcount(s.mask), s.dev);
  for (auto& r : c.routes) {
    if (r.prefix.find(':') != std::string::npos) continue;
    size_t slash = r.prefix.find('/');
    uint32_t v = 0;
    if (slash == std::string::npos || !ipv4(r.prefix.substr(0, slash), &v)) continue;
    unsigned len = static_cast<unsigned>(std::stoul(r.prefix.substr(slash + 1)));
    uint32_t mask = len == 0 ? 0 : ~uint32_t(0) << (32 - len);
    std::string d = r.dev;
    uint32_t via = 0;
    if (d.empty() && ipv4(r.via, &via))
      for (auto& s : subnets)
        if ((via & s.mask) == s.net) d = s.dev;
    consider(v & mask, mask, static_cast<int>(len), d);
  }
  return dev;
}

void check(Loader& l) {
  std::vector<MirrorIn>& in = l.scratch<Parsed>().mirrors;
  if (in.empty()) return;
  const std::string kinds = l.kinds_phrase();
  auto known = [&](const std::string& dev, Mark at, const std::string& what) {
    if (dev == "lo" || l.has_device(dev)) return;
    l.fail(at, what + " '" + dev + "' is not a " + kinds + " defined in this file, nor lo");
  };
  const l3::Config& l3c = l.topo.get<l3::Config>();
  std::map<std::string, Mark> names;
  for (auto& m : in) {
    std::string where = "mirror '" + m.v.name + "'";
    if (auto it = names.find(m.v.name); it != names.end())
      l.fail(m.v.name_at,
             "duplicate mirror name '" + m.v.name + "' (first defined at " + mark_str(it->second) + ")");
    names.emplace(m.v.name, m.v.name_at);
    known(m.v.source, m.v.source_at, where + ": source dev");
    switch (m.v.to) {
      case MirrorTarget::dev:
        known(m.v.dev, m.v.dev_at, where + ": to dev");
        break;
      case MirrorTarget::vxlan:
      case MirrorTarget::gre:
      case MirrorTarget::erspan: {
        std::string kind = mirror_target_name(m.v.to);
        if (l3c.addresses.empty())
          l.fail(m.remote_at, where + ": a " + kind +
                                  " destination needs L3 (addresses:): sluice builds the outer "
                                  "IPv4 packet and sends it through its routes and neighbours");
        if (!m.v.via.empty()) known(m.v.via, m.via_at, where + ": " + kind + " dev");
        uint32_t dst = 0;
        ipv4(m.v.remote, &dst);
        std::string d = route_dev(l3c, dst);
        if (d.empty())
          l.fail(m.remote_at, where + ": no route to " + m.v.remote + " (see addresses and routes)");
        if (!m.v.via.empty() && m.v.via != d)
          l.fail(m.via_at, where + ": " + m.v.remote + " is routed out of " + d + ", not " +
                               m.v.via + " (dev names the device the tunnel leaves through)");
        m.v.via = d;
        break;
      }
      case MirrorTarget::pcapng:
        break;
    }
  }

  // The graph: every device of the file, lo, VLAN links, bridge ports.
  std::vector<GraphDevice> devs;
  GraphDevice lo;
  lo.name = "lo";
  lo.loopback = true;
  devs.push_back(lo);
  for (auto& p : l.topo.ports) devs.push_back(GraphDevice{p.name, "", {}, false, {}});
  for (auto& v : l.topo.vlans) devs.push_back(GraphDevice{v.name, v.link, {}, false, {}});
  for (auto& b : l.topo.get<bridge::Config>().bridges)
    devs.push_back(GraphDevice{b.name, "", b.ports, false, {}});
  for (auto& b : l.topo.get<bond::Config>().bonds)
    devs.push_back(GraphDevice{b.name, "", {}, false, b.members});
  std::vector<config::Mirror> ms;
  for (auto& m : in) ms.push_back(m.v);
  size_t culprit = 0;
  std::string loop = find_loop(devs, ms, &culprit);
  if (!loop.empty())
    l.fail(ms[culprit].mark, "mirror '" + ms[culprit].name + "' closes a loop: " + loop +
                                 " (a packet would come back to where it was mirrored; Linux "
                                 "hangs on such loops, sluice refuses them)");
  for (auto& m : in) l.topo.get<Config>().mirrors.push_back(m.v);
}

}  // namespace

// ---- the loop check ----

std::string find_loop(const std::vector<GraphDevice>& devices,
                      const std::vector<config::Mirror>& mirrors, size_t* culprit) {
  // Nodes: 2 * device index + (0 ingress, 1 egress).
  std::map<std::string, size_t> idx;
  for (auto& d : devices) idx.emplace(d.name, idx.size());
  auto node = [&](const std::string& dev, bool egress) -> int {
    auto it = idx.find(dev);
    return it == idx.end() ? -1 : static_cast<int>(2 * it->second + (egress ? 1 : 0));
  };
  struct Edge {
    int to;
    int mirror;  // -1: the way packets go on by themselves
  };
  std::vector<std::vector<Edge>> adj(2 * devices.size());
  auto add = [&](int a, int b, int m) {
    if (a >= 0 && b >= 0) adj[a].push_back(Edge{b, m});
  };
  for (auto& d : devices) {
    if (d.loopback) add(node(d.name, true), node(d.name, false), -1);
    if (!d.link.empty()) {
      add(node(d.name, true), node(d.link, true), -1);
      add(node(d.link, false), node(d.name, false), -1);
    }
    for (auto& p : d.members) {
      add(node(d.name, true), node(p, true), -1);
      add(node(p, false), node(d.name, false), -1);
    }
    for (auto& p : d.ports) {
      add(node(d.name, true), node(p, true), -1);
      add(node(p, false), node(d.name, false), -1);
      for (auto& q : d.ports)
        if (q != p) add(node(p, false), node(q, true), -1);
    }
  }
  auto node_name = [&](int n) {
    return devices[static_cast<size_t>(n / 2)].name + (n % 2 ? " egress" : " ingress");
  };
  auto target = [&](const config::Mirror& m) -> int {
    switch (m.to) {
      case config::MirrorTarget::dev:
        return node(m.dev, !m.at_ingress);
      case config::MirrorTarget::vxlan:
      case config::MirrorTarget::gre:
      case config::MirrorTarget::erspan:
        return node(m.via, true);
      case config::MirrorTarget::pcapng:
        return -1;
    }
    return -1;
  };
  auto label = [&](const config::Mirror& m) {
    std::string s = m.name;
    if (m.to != config::MirrorTarget::dev && m.to != config::MirrorTarget::pcapng)
      s += " " + std::string(config::mirror_target_name(m.to)) + " " + m.remote;
    return s;
  };
  // Mirrors join the graph one by one, in file order; the first whose edges
  // close a forbidden cycle is the culprit. For each new edge u → v: a
  // breadth-first search from v for u over (node, has another mirror edge).
  for (size_t mi = 0; mi < mirrors.size(); mi++) {
    const config::Mirror& m = mirrors[mi];
    int v = target(m);
    std::vector<int> us;
    if (m.direction & 1) us.push_back(node(m.source, false));
    if (m.direction & 2) us.push_back(node(m.source, true));
    for (int u : us) {
      if (u >= 0 && v >= 0) adj[u].push_back(Edge{v, static_cast<int>(mi)});
    }
    for (int u : us) {
      if (u < 0 || v < 0) continue;
      const size_t nn = adj.size();
      std::vector<int> prev(2 * nn, -2), via(2 * nn, -1);
      std::deque<int> q;
      int start = 2 * v;  // state = 2 * node + flag
      prev[start] = -1;
      q.push_back(start);
      int found = -1;
      while (!q.empty() && found < 0) {
        int s = q.front();
        q.pop_front();
        int n = s / 2;
        bool flag = s % 2;
        if (n == u && (flag || m.redirect)) {
          found = s;
          break;
        }
        for (const Edge& e : adj[n]) {
          // This mirror's own edges: it never copies (nor sees again) its own copies.
          if (e.mirror == static_cast<int>(mi)) continue;
          int t = 2 * e.to + ((flag || e.mirror >= 0) ? 1 : 0);
          if (prev[t] != -2) continue;
          prev[t] = s;
          via[t] = e.mirror;
          q.push_back(t);
        }
      }
      if (found < 0) continue;
      // u -(m)-> v ... -> u
      std::vector<std::pair<int, int>> path;  // (node, mirror edge into it)
      for (int s = found; s != start; s = prev[s]) path.push_back({s / 2, via[s]});
      std::reverse(path.begin(), path.end());
      std::string out = node_name(u) + " -(" + label(m) + ")-> " + node_name(v);
      for (auto& [n, e] : path)
        out += (e >= 0 ? " -(" + label(mirrors[static_cast<size_t>(e)]) + ")-> " : " -> ") +
               node_name(n);
      if (culprit) *culprit = mi;
      return out;
    }
  }
  return "";
}

namespace {

// reload: the loader has checked the new mirrors against the new topology
// (devices, filters, loops); apply swaps them in (MirrorSys::rebuild).
std::string reload(Dataplane& dp, const config::Topology& next, bool apply) {
  if (!apply) return "";
  dp.feature<MirrorSys>().rebuild(next.get<Config>(), next.file);
  return "";
}

const Feature kFeature{
    .name = "mirror",
    .after = {"bond", "bridge", "l3"},
    .sections = {{"mirrors", 90, section_mirrors}},
    .check = check,
    .setup = setup,
    .shutdown = shutdown,
    .clear_stats = clear_stats,
    .reload = reload,
};
const FeatureRegistrar kRegistrar{kFeature};
}  // namespace

}  // namespace sluice::mirror
