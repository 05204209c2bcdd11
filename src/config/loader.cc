// The YAML topology loader (docs/config.md, design/CONFIG.md).
//
// Layout, so that new features only add code:
//  * every top-level section has one parse function, registered in
//    kSections by its name; sections of the contract that this build does
//    not implement yet are listed in kNotYet and refused at their key;
//  * inside a section, every key of a map has one parse function, registered
//    in a per-type key table (kEalKeys, kPortKeys, ...); the table is also the
//    list of allowed keys, so unknown keys are errors everywhere;
//  * cross-references (unique names, vlan links, worker lcores, ...) are
//    checked after all sections are parsed, by the functions in kChecks.
// Errors are ConfigError("FILE:LINE:COL: message") pointing at the offending
// node: the key for an unknown or duplicate key, the value for a bad value.
#include <arpa/inet.h>
#include <rte_config.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <set>
#include <span>
#include <sstream>
#include <string_view>

#include "config/topology.hh"
#include "hooks/hooks.hh"

namespace sluice::config {

namespace {

constexpr unsigned kMaxLcore = RTE_MAX_LCORE - 1;
constexpr unsigned kMaxCpu = 1023;      // CPU_SETSIZE - 1: what an EAL cpuset holds
constexpr size_t kMaxDevName = 15;      // IFNAMSIZ - 1
constexpr size_t kMaxSocketPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

Mark to_mark(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return Mark{1, 1};
  return Mark{m.line + 1, m.column + 1};
}

std::string mark_str(Mark m) {
  return std::to_string(m.line) + ":" + std::to_string(m.col);
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_hex(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
bool is_alnum(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
char lower(char c) {
  return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string to_lower(std::string_view s) {
  std::string r(s);
  for (char& c : r) c = lower(c);
  return r;
}

std::string join(std::span<const std::string_view> v) {
  std::string r;
  for (auto s : v) {
    if (!r.empty()) r += ", ";
    r += s;
  }
  return r;
}

std::string join(const std::vector<unsigned>& v) {
  std::string r;
  for (unsigned x : v) {
    if (!r.empty()) r += ", ";
    r += std::to_string(x);
  }
  return r;
}

// What a node is, for "got ..." in messages.
std::string describe(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& s = n.Scalar();
      if (s.empty()) return "an empty string";
      if (s.size() > 40) return "'" + s.substr(0, 40) + "...'";
      return "'" + s + "'";
    }
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "nothing";
  }
}

// Decimal integer; nullopt if not one. Negative numbers parse (so that the
// range message shows them) and saturate far outside any valid range.
std::optional<long long> parse_int(std::string_view s) {
  bool neg = false;
  if (!s.empty() && s[0] == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  if (s.empty()) return std::nullopt;
  long long v = 0;
  for (char c : s) {
    if (!is_digit(c)) return std::nullopt;
    if (v < (1LL << 40)) v = v * 10 + (c - '0');
  }
  return neg ? -v : v;
}

// Why a device name is not acceptable, or "" if it is.
std::string bad_dev_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxDevName)
    return "device names are 1.." + std::to_string(kMaxDevName) + " characters";
  for (char c : s)
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
      return "only letters, digits, '_', '.' and '-' are allowed";
  if (s == "." || s == "..") return "'.' and '..' are not device names";
  std::string l = to_lower(s);
  if (l == "all" || l == "any") return "'" + std::string(s) + "' is a reserved word";
  return "";
}

// PCI address shape: [DDDD:]BB:SS.F, hex digits.
bool looks_pci(std::string_view s) {
  if (s.size() == 12) {
    for (int i = 0; i < 4; i++)
      if (!is_hex(s[i])) return false;
    if (s[4] != ':') return false;
    s.remove_prefix(5);
  }
  return s.size() == 7 && is_hex(s[0]) && is_hex(s[1]) && s[2] == ':' && is_hex(s[3]) &&
         is_hex(s[4]) && s[5] == '.' && is_hex(s[6]);
}

}  // namespace

// An lcores string (docs/config.md): EAL's -l list ("0-1", "0,2-3") or its
// --lcores mapping ("0@0,1@0,2@1", "0,1@0,2@1", "(0-1)@0,2@1"):
//
//   lcores  := element (',' element)*
//   element := set ['@' set]          lcore ids, then the CPUs they run on
//   set     := id ['-' id] | '(' id ['-' id] (',' id ['-' id])* ')'
//
// No blanks. The lcore ids, in the order written, must increase without
// repeats, so that the first one, the main lcore, is also the lowest (DPDK's
// default main lcore). Never empty.
LcoreSpec parse_lcore_spec(std::string_view rest) {
  LcoreSpec spec;
  // what: "lcore" or "CPU".
  auto number = [&](const std::string& what, unsigned max) -> unsigned {
    size_t n = 0;
    while (n < rest.size() && is_digit(rest[n])) n++;
    const std::string expected = what == "lcore" ? "expected an lcore id" : "expected a CPU id";
    if (n == 0)
      throw std::invalid_argument(rest.empty() ? expected + " at the end"
                                               : expected + " at '" + std::string(rest) + "'");
    auto v = parse_int(rest.substr(0, n));
    if (*v > max)
      throw std::invalid_argument(what + " " + std::string(rest.substr(0, n)) +
                                  " is above the maximum " + std::to_string(max));
    rest.remove_prefix(n);
    return static_cast<unsigned>(*v);
  };
  // One set; calls add(lo, hi) for each id or range in it.
  auto set = [&](const std::string& what, unsigned max, auto add) {
    bool group = !rest.empty() && rest[0] == '(';
    if (group) {
      spec.mapped = true;
      rest.remove_prefix(1);
    }
    while (true) {
      unsigned lo = number(what, max), hi = lo;
      if (!rest.empty() && rest[0] == '-') {
        rest.remove_prefix(1);
        hi = number(what, max);
        if (hi < lo)
          throw std::invalid_argument("range " + std::to_string(lo) + "-" + std::to_string(hi) +
                                      " goes backwards");
      }
      add(lo, hi);
      if (!group) return;
      if (rest.empty()) throw std::invalid_argument("missing ')' at the end");
      if (rest[0] == ')') {
        rest.remove_prefix(1);
        return;
      }
      if (rest[0] != ',')
        throw std::invalid_argument("expected ',' or ')' at '" + std::string(rest) + "'");
      rest.remove_prefix(1);
    }
  };
  auto add_lcores = [&](unsigned lo, unsigned hi) {
    if (!spec.lcores.empty() && lo <= spec.lcores.back())
      throw std::invalid_argument("lcore " + std::to_string(lo) +
                                  " repeats or is out of increasing order");
    for (unsigned i = lo; i <= hi; i++) spec.lcores.push_back(i);
  };
  while (true) {
    set("lcore", kMaxLcore, add_lcores);
    if (!rest.empty() && rest[0] == '@') {
      spec.mapped = true;
      rest.remove_prefix(1);
      set("CPU", kMaxCpu, [](unsigned, unsigned) {});
    }
    if (rest.empty()) return spec;
    if (rest[0] != ',') throw std::invalid_argument("unexpected '" + std::string(rest) + "'");
    rest.remove_prefix(1);
  }
}

namespace {

// A parsed "key: value" pair, with the name of what contains it for
// messages ("port 'eth1'", "eal").
struct Field {
  const YAML::Node& key;
  const YAML::Node& value;
  std::string name;          // the key's text
  const std::string& where;  // "port 'eth1'"

  // Where a problem with the value is: the value, or the key when the value
  // is empty (yaml-cpp marks an implicit null at the next token).
  Mark at() const { return to_mark(value.IsNull() ? key.Mark() : value.Mark()); }
  std::string what() const { return where.empty() ? name : where + ": " + name; }
};

// Entries as parsed, with the positions the checks after parsing need.
struct PortIn {
  Port v;
  Mark name_at, device_at;
  std::vector<Mark> worker_at;
};

struct VlanIn {
  Vlan v;
  Mark name_at, link_at, id_at;
};

struct BridgeIn {
  Bridge v;
  Mark name_at, mac_at;
  std::map<std::string, Mark> settings_at;  // port_settings key → where
  std::vector<Mark> static_port_at;         // fdb_static[i].port
  Mark group_fwd_mask_at;
};

class Loader;

template <class T>
struct KeyDef {
  std::string_view name;
  void (*parse)(Loader&, T&, const Field&);
};

class Loader {
 public:
  explicit Loader(std::string file) : file_(std::move(file)) {}

  [[noreturn]] void fail(Mark m, const std::string& msg) const {
    throw ConfigError(file_ + ":" + mark_str(m) + ": " + msg);
  }
  [[noreturn]] void fail(const YAML::Node& n, const std::string& msg) const {
    fail(to_mark(n.Mark()), msg);
  }

  // --- typed values --------------------------------------------------------

  unsigned get_uint(const Field& f, unsigned lo, unsigned hi,
                    std::string_view what = "an integer") {
    std::optional<long long> v;
    if (f.value.IsScalar()) v = parse_int(f.value.Scalar());
    if (!v || *v < lo || *v > hi)
      fail(f.at(), f.what() + " must be " + std::string(what) + " " + std::to_string(lo) + ".." +
                       std::to_string(hi) + ", got " + describe(f.value));
    return static_cast<unsigned>(*v);
  }

  bool get_bool(const Field& f) {
    if (f.value.IsScalar()) {
      std::string s = to_lower(f.value.Scalar());
      if (s == "true" || s == "yes" || s == "on") return true;
      if (s == "false" || s == "no" || s == "off") return false;
    }
    fail(f.at(), f.what() + " must be true or false, got " + describe(f.value));
  }

  std::string get_string(const Field& f) {
    if (!f.value.IsScalar()) fail(f.at(), f.what() + " must be a string, got " + describe(f.value));
    return f.value.Scalar();
  }

  // A list; an empty value is an empty list.
  std::vector<YAML::Node> get_list(const Field& f, std::string_view what) {
    std::vector<YAML::Node> r;
    if (f.value.IsNull()) return r;
    if (!f.value.IsSequence())
      fail(f.at(),
           f.what() + " must be a list of " + std::string(what) + ", got " + describe(f.value));
    for (const auto& n : f.value) r.push_back(n);
    return r;
  }

  // Calls the parse function of each key of `map`; returns the keys seen.
  template <class T>
  std::set<std::string> parse_keys(const YAML::Node& map, const std::string& where,
                                   std::span<const KeyDef<T>> keys, T& obj) {
    std::map<std::string, Mark> seen;
    for (const auto& kv : map) {  // a pair of Node handles, by value
      const YAML::Node& k = kv.first;
      const YAML::Node& v = kv.second;
      std::string prefix = where.empty() ? "" : where + ": ";
      if (!k.IsScalar()) fail(k, prefix + "keys must be plain names, got " + describe(k));
      const std::string& name = k.Scalar();
      if (auto s = seen.find(name); s != seen.end())
        fail(k, prefix + "duplicate key '" + name + "' (first at " + mark_str(s->second) + ")");
      seen.emplace(name, to_mark(k.Mark()));
      auto def = std::find_if(keys.begin(), keys.end(), [&](auto& d) { return d.name == name; });
      if (def == keys.end()) {
        std::vector<std::string_view> names;
        for (auto& d : keys) names.push_back(d.name);
        fail(k, prefix + "unknown key '" + name + "' (expected one of: " + join(names) + ")");
      }
      def->parse(*this, obj, Field{k, v, name, where});
    }
    std::set<std::string> r;
    for (auto& [k, m] : seen) r.insert(k);
    return r;
  }

  // A section's value must be a map (or empty: all defaults).
  bool section_map(const Field& f) {
    if (f.value.IsNull()) return false;
    if (!f.value.IsMap())
      fail(f.at(), f.name + " must be a map of settings, got " + describe(f.value));
    return true;
  }

  // Name and position of a list entry, for messages: "port 'eth1'" or
  // "port #2" when it has no usable name yet.
  std::string entry_where(std::string_view kind, const YAML::Node& entry, size_t index) {
    if (!entry.IsMap())
      fail(entry, std::string(kind) + " #" + std::to_string(index + 1) +
                      " must be a map of settings (name: ..., ...), got " + describe(entry));
    YAML::Node n = entry["name"];
    if (n && n.IsScalar() && bad_dev_name(n.Scalar()).empty())
      return std::string(kind) + " '" + n.Scalar() + "'";
    return std::string(kind) + " #" + std::to_string(index + 1);
  }

  void require(const YAML::Node& entry, const std::string& where, const std::set<std::string>& seen,
               std::initializer_list<std::string_view> keys) {
    for (auto k : keys)
      if (!seen.contains(std::string(k)))
        fail(entry, where + ": missing required key '" + std::string(k) + "'");
  }

  const std::string& file() const { return file_; }

  Topology topo;
  std::vector<PortIn> ports;
  std::vector<VlanIn> vlans;
  std::vector<BridgeIn> bridges;
  Mark ports_at{1, 1};  // the 'ports' key, for "no ports defined"

 private:
  std::string file_;
};

std::string device_name(Loader& l, const Field& f) {
  std::string s = l.get_string(f);
  if (std::string why = bad_dev_name(s); !why.empty())
    l.fail(f.at(), f.where + ": invalid name " + describe(f.value) + ": " + why);
  return s;
}

// --- eal -----------------------------------------------------------------

void eal_lcores(Loader& l, Eal& e, const Field& f) {
  e.lcores = l.get_string(f);
  try {
    parse_lcore_spec(e.lcores);
  } catch (const std::invalid_argument& ex) {
    l.fail(f.at(),
           "eal: lcores must be lcore ids like \"0-1\" or \"0,2-3\", optionally mapped to CPUs "
           "like \"0@0,1@0,2@1\" or \"(0-1)@0,2@1\" (the first is the main lcore), got " +
               describe(f.value) + ": " + ex.what());
  }
}

void eal_memory(Loader& l, Eal& e, const Field& f) {
  e.memory_mb = l.get_uint(f, 1, 1u << 20);
}
void eal_hugepages(Loader& l, Eal& e, const Field& f) {
  e.hugepages = l.get_bool(f);
}

void eal_file_prefix(Loader& l, Eal& e, const Field& f) {
  std::string s = l.get_string(f);
  bool ok = !s.empty() && s != "." && s != "..";
  for (char c : s) ok = ok && (is_alnum(c) || c == '_' || c == '.' || c == '-');
  if (!ok)
    l.fail(f.at(),
           "eal: file_prefix must be a non-empty name of letters, digits, '_', '.' and "
           "'-', got " +
               describe(f.value));
  e.file_prefix = s;
}

void eal_args(Loader& l, Eal& e, const Field& f) {
  e.args.clear();
  for (const auto& n : l.get_list(f, "strings (EAL arguments)")) {
    if (!n.IsScalar())
      l.fail(n, "eal: args must be a list of strings, got " + describe(n) + " in it");
    e.args.push_back(n.Scalar());
  }
}

constexpr KeyDef<Eal> kEalKeys[] = {
    {"lcores", eal_lcores},           {"memory_mb", eal_memory}, {"hugepages", eal_hugepages},
    {"file_prefix", eal_file_prefix}, {"args", eal_args},
};

void section_eal(Loader& l, const Field& f) {
  if (l.section_map(f)) l.parse_keys<Eal>(f.value, "eal", kEalKeys, l.topo.eal);
}

// --- ports ---------------------------------------------------------------

void port_name(Loader& l, PortIn& p, const Field& f) {
  p.v.name = device_name(l, f);
  p.name_at = f.at();
}

void port_device(Loader& l, PortIn& p, const Field& f) {
  std::string s = l.get_string(f);
  p.device_at = f.at();
  if (looks_pci(s)) {
    std::string_view bdf = std::string_view(s).substr(s.size() - 7);
    unsigned slot = static_cast<unsigned>(std::stoul(std::string(bdf.substr(3, 2)), nullptr, 16));
    if (slot > 0x1f || !(bdf[6] >= '0' && bdf[6] <= '7'))
      l.fail(f.at(), f.where + ": device " + describe(f.value) +
                         " is not a valid PCI address (slot 00..1f, function 0..7)");
    p.v.device = to_lower(s);
    p.v.is_pci = true;
    return;
  }
  std::string_view name = std::string_view(s).substr(0, s.find(','));
  bool vdev =
      name.starts_with("net_") || name.starts_with("eth_") || name.starts_with("virtio_user");
  if (!vdev)
    l.fail(f.at(), f.where + ": device " + describe(f.value) +
                       " is neither a PCI address (0000:03:00.0 or 03:00.0) nor DPDK vdev devargs "
                       "(net_..., eth_... or virtio_user..., e.g. net_af_packet0,iface=veth0)");
  bool ok = name.size() > 4 && name != "virtio_user";
  for (char c : name) ok = ok && (is_alnum(c) || c == '_');
  if (!ok)
    l.fail(f.at(), f.where + ": device " + describe(f.value) + ": the vdev name '" +
                       std::string(name) +
                       "' must be a driver name plus an instance, letters, digits and '_' only "
                       "(e.g. net_af_packet0)");
  p.v.device = s;
  p.v.is_pci = false;
}

void port_rx_queues(Loader& l, PortIn& p, const Field& f) {
  p.v.rx_queues = l.get_uint(f, 1, 64);
}
void port_tx_queues(Loader& l, PortIn& p, const Field& f) {
  p.v.tx_queues = l.get_uint(f, 1, 64);
}
void port_mtu(Loader& l, PortIn& p, const Field& f) {
  p.v.mtu = l.get_uint(f, 68, 9600);
}
void port_rx_desc(Loader& l, PortIn& p, const Field& f) {
  p.v.rx_desc = l.get_uint(f, 32, 32768);
}
void port_tx_desc(Loader& l, PortIn& p, const Field& f) {
  p.v.tx_desc = l.get_uint(f, 32, 32768);
}
void port_promisc(Loader& l, PortIn& p, const Field& f) {
  p.v.promiscuous = l.get_bool(f);
}

void port_mac(Loader& l, PortIn& p, const Field& f) {
  std::string s = l.get_string(f);
  bool ok = s.size() == 17;
  for (size_t i = 0; ok && i < s.size(); i++) ok = i % 3 == 2 ? s[i] == ':' : is_hex(s[i]);
  if (!ok)
    l.fail(f.at(), f.where + ": mac must be six hex bytes like \"02:00:00:00:00:01\", got " +
                       describe(f.value));
  s = to_lower(s);
  if (s == "00:00:00:00:00:00") l.fail(f.at(), f.where + ": mac must not be all zeros");
  if (std::stoul(s.substr(0, 2), nullptr, 16) & 1)
    l.fail(f.at(), f.where + ": mac " + describe(f.value) +
                       " is a multicast address (lowest bit of the first byte set)");
  p.v.mac = s;
}

void port_workers(Loader& l, PortIn& p, const Field& f) {
  p.v.workers.clear();
  p.worker_at.clear();
  for (const auto& n : l.get_list(f, "worker lcore ids, e.g. [1, 2]")) {
    Field item{f.key, n, "workers", f.where};
    unsigned lc = l.get_uint(item, 0, kMaxLcore, "a list of lcore ids");
    auto dup = std::find(p.v.workers.begin(), p.v.workers.end(), lc);
    if (dup != p.v.workers.end())
      l.fail(n, f.where + ": workers: lcore " + std::to_string(lc) + " is listed twice");
    p.v.workers.push_back(lc);
    p.worker_at.push_back(to_mark(n.Mark()));
  }
}

constexpr KeyDef<PortIn> kPortKeys[] = {
    {"name", port_name},           {"device", port_device},   {"rx_queues", port_rx_queues},
    {"tx_queues", port_tx_queues}, {"mtu", port_mtu},         {"mac", port_mac},
    {"promiscuous", port_promisc}, {"workers", port_workers}, {"rx_desc", port_rx_desc},
    {"tx_desc", port_tx_desc},
};

void section_ports(Loader& l, const Field& f) {
  l.ports_at = to_mark(f.key.Mark());
  auto entries = l.get_list(f, "ports (one '- name: ...' entry per port)");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = l.entry_where("port", e, i);
    PortIn p;
    auto seen = l.parse_keys<PortIn>(e, where, kPortKeys, p);
    l.require(e, where, seen, {"name", "device"});
    l.ports.push_back(std::move(p));
  }
}

// --- vlans ---------------------------------------------------------------

void vlan_name(Loader& l, VlanIn& v, const Field& f) {
  v.v.name = device_name(l, f);
  v.name_at = f.at();
}

void vlan_link(Loader& l, VlanIn& v, const Field& f) {
  v.v.link = l.get_string(f);
  v.link_at = f.at();
}

void vlan_id(Loader& l, VlanIn& v, const Field& f) {
  v.v.id = l.get_uint(f, 1, 4094, "a VLAN id");
  v.id_at = f.at();
}

void vlan_protocol(Loader& l, VlanIn& v, const Field& f) {
  std::string s = to_lower(l.get_string(f));
  if (s == "802.1q")
    v.v.protocol = "802.1Q";
  else if (s == "802.1ad")
    v.v.protocol = "802.1ad";
  else
    l.fail(f.at(), f.where + ": protocol must be 802.1Q or 802.1ad, got " + describe(f.value));
}

constexpr KeyDef<VlanIn> kVlanKeys[] = {
    {"name", vlan_name},
    {"link", vlan_link},
    {"id", vlan_id},
    {"protocol", vlan_protocol},
};

void section_vlans(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "vlans (one '- {name: ..., link: ..., id: ...}' entry per vlan)");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = l.entry_where("vlan", e, i);
    VlanIn v;
    auto seen = l.parse_keys<VlanIn>(e, where, kVlanKeys, v);
    l.require(e, where, seen, {"name", "link", "id"});
    l.vlans.push_back(std::move(v));
  }
}

// --- addresses / routes / neighbours / punt (docs/l3.md) --------------------

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
  if (!l3_v4(n.address, &v4))
    l.fail(f.at(), f.where + ": address must be an IPv4 address, got " + describe(f.value));
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

template <class T, size_t N>
void l3_list(Loader& l, const Field& f, const char* kind, const char* example,
             const KeyDef<T> (&keys)[N], std::initializer_list<std::string_view> required,
             std::vector<T>& out) {
  auto entries = l.get_list(f, example);
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = std::string(kind) + " #" + std::to_string(i + 1);
    if (!e.IsMap())
      l.fail(e, where + " must be a map of settings (" + example + "), got " + describe(e));
    T v;
    v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<T>(e, where, std::span<const KeyDef<T>>(keys, N), v);
    l.require(e, where, seen, required);
    out.push_back(std::move(v));
  }
}

void section_addresses(Loader& l, const Field& f) {
  l3_list(l, f, "address", "{dev: ..., address: A.B.C.D/LEN}", kAddressKeys, {"dev", "address"},
          l.topo.addresses);
}
void section_routes(Loader& l, const Field& f) {
  l3_list(l, f, "route", "{prefix: ..., via: ... and/or dev: ...}", kRouteKeys, {"prefix"},
          l.topo.routes);
}
void section_neighbours(Loader& l, const Field& f) {
  l3_list(l, f, "neighbour", "{dev: ..., address: ..., mac: ...}", kNeighKeys,
          {"dev", "address", "mac"}, l.topo.neighbours);
}
void section_punt(Loader& l, const Field& f) {
  l3_list(l, f, "punt", "{dev: ..., tap: ...}", kPuntKeys, {"dev", "tap"}, l.topo.punt);
}

// --- control -------------------------------------------------------------

void control_socket(Loader& l, Control& c, const Field& f) {
  std::string s = l.get_string(f);
  if (s.empty() || s.size() > kMaxSocketPath)
    l.fail(f.at(), "control: socket must be a path of 1.." + std::to_string(kMaxSocketPath) +
                       " characters, got " + describe(f.value));
  c.socket = s;
}

void control_telemetry(Loader& l, Control& c, const Field& f) {
  c.telemetry = l.get_bool(f);
}

void control_metrics(Loader& l, Control& c, const Field& f) {
  std::string s = l.get_string(f);
  if (!s.empty()) {
    size_t colon = s.rfind(':');
    bool ok = colon != std::string::npos && colon > 0;
    if (ok) {
      std::string_view host = std::string_view(s).substr(0, colon);
      if (host.front() == '[')
        ok = host.size() > 2 && host.back() == ']';
      else
        ok = host.find(':') == std::string_view::npos;
      auto port = parse_int(std::string_view(s).substr(colon + 1));
      ok = ok && port && *port >= 1 && *port <= 65535;
    }
    if (!ok)
      l.fail(f.at(),
             "control: metrics must be \"HOST:PORT\" (e.g. \"127.0.0.1:9469\", "
             "\"[::1]:9469\") or \"\" for off, got " +
                 describe(f.value));
  }
  c.metrics = s;
}

constexpr KeyDef<Control> kControlKeys[] = {
    {"socket", control_socket},
    {"telemetry", control_telemetry},
    {"metrics", control_metrics},
};

void section_control(Loader& l, const Field& f) {
  if (l.section_map(f)) l.parse_keys<Control>(f.value, "control", kControlKeys, l.topo.control);
}

// --- logging -------------------------------------------------------------

constexpr std::string_view kLogLevels[] = {"trace", "debug",    "info", "warn",
                                           "error", "critical", "off"};

void logging_level(Loader& l, Logging& g, const Field& f) {
  std::string s = l.get_string(f);
  if (std::find(std::begin(kLogLevels), std::end(kLogLevels), s) == std::end(kLogLevels))
    l.fail(f.at(),
           "logging: level must be one of " + join(kLogLevels) + ", got " + describe(f.value));
  g.level = s;
}

void logging_file(Loader& l, Logging& g, const Field& f) {
  g.file = l.get_string(f);
}

constexpr KeyDef<Logging> kLoggingKeys[] = {{"level", logging_level}, {"file", logging_file}};

void section_logging(Loader& l, const Field& f) {
  if (l.section_map(f)) l.parse_keys<Logging>(f.value, "logging", kLoggingKeys, l.topo.logging);
}

// --- bridges ---------------------------------------------------------------

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

std::string mac_value(Loader& l, const Field& f) {
  std::string s = l.get_string(f);
  bool ok = s.size() == 17;
  for (size_t i = 0; ok && i < s.size(); i++) ok = i % 3 == 2 ? s[i] == ':' : is_hex(s[i]);
  if (!ok)
    l.fail(f.at(), f.what() + " must be six hex bytes like \"02:00:00:00:00:01\", got " +
                       describe(f.value));
  s = to_lower(s);
  if (s == "00:00:00:00:00:00") l.fail(f.at(), f.what() + " must not be all zeros");
  if (std::stoul(s.substr(0, 2), nullptr, 16) & 1)
    l.fail(f.at(), f.what() + " " + describe(f.value) + " is a multicast address");
  return s;
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
    l.bridges.push_back(std::move(b));
  }
}

// --- hooks / plugins (docs/hooks.md) ------------------------------------------

struct HookIn {
  HookListCfg v;
  std::string priority;  // resolved once the point is known (bridge names differ)
  Mark priority_at{0, 0};
};

void resolve_priority(Loader& l, const std::string& point, const std::string& pri, Mark at,
                      int* out) {
  if (pri.empty()) return;
  if (!hooks::parse_priority(pri, point.rfind("bridge/", 0) == 0, out))
    l.fail(at, "unknown priority '" + pri +
                   "' (an integer, or for ipv4/ipv6/arp: first, raw_before_defrag, "
                   "conntrack_defrag, raw, selinux_first, conntrack, mangle, nat_dst, filter, "
                   "security, nat_src, selinux_last, conntrack_helper, conntrack_confirm, last; "
                   "for bridge: first, nat_dst_bridged, filter_bridged, brnf, nat_dst_other, "
                   "filter_other, nat_src, last)");
}

std::string hook_point(Loader& l, const Field& f) {
  std::string s = l.get_string(f);
  hooks::Point p;
  if (!hooks::parse_point(s, &p))
    l.fail(f.at(), f.what() + ": unknown hook point '" + s +
                       "' (ipv4|ipv6|bridge/pre_routing|local_in|forward|local_out|post_routing, "
                       "arp/in|out|forward)");
  return s;
}

void rule_match(Loader& l, hooks::Rule& r, const Field& f) {
  if (!f.value.IsMap()) l.fail(f.at(), f.what() + " must be a map like {proto: tcp, dst_port: 80}");
  for (const auto& kv : f.value) {
    const YAML::Node& k = kv.first;
    const YAML::Node& v = kv.second;
    if (!k.IsScalar()) l.fail(k, f.what() + ": keys must be plain names");
    if (!v.IsScalar())
      l.fail(to_mark(v.Mark()), f.what() + ": " + k.Scalar() + " must be a scalar");
    bool unknown = false;
    std::string e = hooks::parse_match(k.Scalar(), v.Scalar(), &r.match, &unknown);
    if (!e.empty()) l.fail(unknown ? to_mark(k.Mark()) : to_mark(v.Mark()), f.where + ": " + e);
  }
}
void rule_verdict(Loader& l, hooks::Rule& r, const Field& f) {
  std::string s = l.get_string(f);
  if (!hooks::parse_rule_verdict(s, &r.verdict))
    l.fail(f.at(), f.what() + " must be accept, drop, continue or queue, got '" + s + "'");
}
void rule_counter(Loader& l, hooks::Rule& r, const Field& f) {
  r.counter = l.get_bool(f);
}
void rule_log(Loader& l, hooks::Rule& r, const Field& f) {
  r.log = l.get_bool(f);
}
void rule_set_mark(Loader& l, hooks::Rule& r, const Field& f) {
  r.set_mark = l.get_uint(f, 0, 0xffffffffu, "a 32-bit mark");
  r.has_set_mark = true;
}
void rule_queue(Loader& l, hooks::Rule& r, const Field& f) {
  r.queue = static_cast<uint16_t>(l.get_uint(f, 0, hooks::kRuleQueues - 1, "a queue number"));
  r.has_queue = true;
}
void rule_bypass(Loader& l, hooks::Rule& r, const Field& f) {
  r.bypass = l.get_bool(f);
}
constexpr KeyDef<hooks::Rule> kRuleKeys[] = {{"match", rule_match},       {"verdict", rule_verdict},
                                             {"counter", rule_counter},   {"log", rule_log},
                                             {"set_mark", rule_set_mark}, {"queue", rule_queue},
                                             {"bypass", rule_bypass}};

void hook_name(Loader& l, HookIn& h, const Field& f) {
  h.v.name = l.get_string(f);
  h.v.name_at = f.at();
}
void hook_point_key(Loader& l, HookIn& h, const Field& f) {
  h.v.point = hook_point(l, f);
  h.v.point_at = f.at();
}
void hook_priority(Loader& l, HookIn& h, const Field& f) {
  h.priority = l.get_string(f);
  h.priority_at = f.at();
}
void hook_rules(Loader& l, HookIn& h, const Field& f) {
  auto entries = l.get_list(f, "rules ({match: {...}, verdict: ...})");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = f.where + ": rule #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map ({match: {...}, verdict: ...})");
    hooks::Rule r;
    l.parse_keys<hooks::Rule>(e, where, kRuleKeys, r);
    if ((r.has_queue || r.bypass) && r.verdict != hooks::RuleVerdict::queue)
      l.fail(e, where + ": queue and bypass go with verdict: queue");
    h.v.rules.push_back(std::move(r));
  }
}
constexpr KeyDef<HookIn> kHookKeys[] = {{"name", hook_name},
                                        {"point", hook_point_key},
                                        {"priority", hook_priority},
                                        {"rules", hook_rules}};

void section_hooks(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "hook rule lists ({point: ..., name: ..., rules: [...]})");
  std::map<std::string, Mark> names;
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = "hook #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map of settings");
    HookIn h;
    h.v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<HookIn>(e, where, kHookKeys, h);
    l.require(e, where, seen, {"point", "name"});
    resolve_priority(l, h.v.point, h.priority, h.priority_at, &h.v.priority);
    auto [it, fresh] = names.emplace(h.v.name, h.v.name_at);
    if (!fresh)
      l.fail(h.v.name_at,
             "duplicate hook name '" + h.v.name + "' (first at " + mark_str(it->second) + ")");
    l.topo.hooks.push_back(std::move(h.v));
  }
}

struct PluginIn {
  PluginCfg v;
  std::string priority;
  Mark priority_at{0, 0};
};
void plugin_path(Loader& l, PluginIn& p, const Field& f) {
  p.v.path = l.get_string(f);
  p.v.path_at = f.at();
}
void plugin_point(Loader& l, PluginIn& p, const Field& f) {
  p.v.point = hook_point(l, f);
}
void plugin_priority(Loader& l, PluginIn& p, const Field& f) {
  p.priority = l.get_string(f);
  p.priority_at = f.at();
}
void plugin_args(Loader& l, PluginIn& p, const Field& f) {
  p.v.args = l.get_string(f);
}
constexpr KeyDef<PluginIn> kPluginKeys[] = {{"path", plugin_path},
                                            {"point", plugin_point},
                                            {"priority", plugin_priority},
                                            {"args", plugin_args}};

void section_plugins(Loader& l, const Field& f) {
  auto entries = l.get_list(f, "plugins ({path: ..., point: ..., priority: ...})");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = "plugin #" + std::to_string(i + 1);
    if (!e.IsMap()) l.fail(e, where + " must be a map of settings");
    PluginIn p;
    p.v.mark = to_mark(e.Mark());
    auto seen = l.parse_keys<PluginIn>(e, where, kPluginKeys, p);
    l.require(e, where, seen, {"path"});
    resolve_priority(l, p.v.point, p.priority, p.priority_at, &p.v.priority);
    l.topo.plugins.push_back(std::move(p.v));
  }
}

// --- the section table -----------------------------------------------------

struct SectionDef {
  std::string_view name;
  void (*parse)(Loader&, const Field&);
};

constexpr SectionDef kSections[] = {
    {"eal", section_eal},
    {"ports", section_ports},
    {"vlans", section_vlans},
    {"bridges", section_bridges},
    {"control", section_control},
    {"logging", section_logging},
    {"addresses", section_addresses},
    {"routes", section_routes},
    {"neighbours", section_neighbours},
    {"punt", section_punt},
    {"hooks", section_hooks},
    {"plugins", section_plugins},
};

// In the contract, not implemented yet: refused rather than ignored.
constexpr std::string_view kNotYet[] = {"bonds", "mirrors"};

// --- checks after parsing ----------------------------------------------------

void check_have_ports(Loader& l) {
  if (l.ports.empty()) l.fail(l.ports_at, "no ports defined");
}

// Names are unique over all devices (ports, vlans, later bonds, bridges...).
void check_unique_names(Loader& l) {
  std::map<std::string, Mark> first;
  auto add = [&](const std::string& name, Mark at) {
    auto [it, fresh] = first.emplace(name, at);
    if (!fresh)
      l.fail(at, "duplicate device name '" + name + "' (first defined at " + mark_str(it->second) +
                     ")");
  };
  for (auto& p : l.ports) add(p.v.name, p.name_at);
  for (auto& v : l.vlans) add(v.v.name, v.name_at);
}

// One port per DPDK device: compares PCI addresses with their domain and vdevs
// by their name (the part before the first ',').
void check_unique_devices(Loader& l) {
  std::map<std::string, const PortIn*> first;
  for (auto& p : l.ports) {
    std::string key = p.v.device;
    if (p.v.is_pci && key.size() == 7) key = "0000:" + key;
    if (!p.v.is_pci) key = key.substr(0, key.find(','));
    auto [it, fresh] = first.emplace(key, &p);
    if (!fresh)
      l.fail(p.device_at, "port '" + p.v.name + "': device '" + key +
                              "' is already used by port '" + it->second->v.name + "' (at " +
                              mark_str(it->second->device_at) + ")");
  }
}

void check_vlans(Loader& l) {
  std::map<std::string, const VlanIn*> by_name;
  std::set<std::string> port_names;
  for (auto& p : l.ports) port_names.insert(p.v.name);
  for (auto& v : l.vlans) by_name.emplace(v.v.name, &v);

  for (auto& v : l.vlans) {
    const std::string where = "vlan '" + v.v.name + "'";
    if (v.v.link == v.v.name) l.fail(v.link_at, where + ": link is the vlan itself");
    if (!port_names.contains(v.v.link) && !by_name.contains(v.v.link))
      l.fail(v.link_at,
             where + ": link '" + v.v.link + "' is not a port or vlan defined in this file");
  }
  for (auto& v : l.vlans) {
    // Follow the links down to a port; report a loop at its first member seen.
    std::vector<const VlanIn*> path{&v};
    for (const VlanIn* cur = &v; !port_names.contains(cur->v.link);) {
      cur = by_name.at(cur->v.link);
      auto loop = std::find(path.begin(), path.end(), cur);
      if (loop != path.end()) {
        std::string chain;
        for (auto it = loop; it != path.end(); ++it) chain += (*it)->v.name + " -> ";
        l.fail((*loop)->link_at,
               "vlan '" + (*loop)->v.name + "': link loop " + chain + cur->v.name);
      }
      path.push_back(cur);
    }
  }

  std::map<std::tuple<std::string, unsigned, std::string>, const VlanIn*> ids;
  for (auto& v : l.vlans) {
    auto [it, fresh] = ids.emplace(std::tuple{v.v.link, v.v.id, v.v.protocol}, &v);
    if (!fresh)
      l.fail(v.id_at, "vlan '" + v.v.name + "': " + v.v.protocol + " id " + std::to_string(v.v.id) +
                          " on '" + v.v.link + "' is already used by vlan '" + it->second->v.name +
                          "' (at " + mark_str(it->second->name_at) + ")");
  }
}

void check_workers(Loader& l) {
  const std::string& lcores = l.topo.eal.lcores;
  std::vector<unsigned> all = parse_lcore_spec(lcores).lcores;  // valid: checked when parsed
  std::vector<unsigned> workers(all.begin() + 1, all.end());
  for (auto& p : l.ports) {
    for (size_t i = 0; i < p.v.workers.size(); i++) {
      unsigned lc = p.v.workers[i];
      if (std::find(workers.begin(), workers.end(), lc) != workers.end()) continue;
      std::string what =
          lc == all[0] ? " is the main (control) lcore, not a worker" : " is not a worker lcore";
      std::string have = workers.empty() ? "has no worker lcores" : "has workers: " + join(workers);
      l.fail(p.worker_at[i], "port '" + p.v.name + "': workers: lcore " + std::to_string(lc) +
                                 what + " (eal.lcores \"" + lcores + "\" " + have + ")");
    }
  }
}

// L3: devices exist, addresses unique, every route's next hop in a connected subnet.
void check_l3(Loader& l) {
  std::set<std::string> devs;
  for (auto& p : l.ports) devs.insert(p.v.name);
  for (auto& v : l.vlans) devs.insert(v.v.name);
  for (auto& b : l.topo.bridges) devs.insert(b.name);
  auto known = [&](const std::string& name, Mark at, const std::string& where) {
    if (!devs.contains(name))
      l.fail(at, where + ": dev '" + name + "' is not a port, vlan or bridge defined in this file");
  };
  struct Subnet {
    std::string dev;
    uint32_t net, mask, addr;
  };
  std::vector<Subnet> subnets;
  std::map<std::string, Mark> seen;
  for (size_t i = 0; i < l.topo.addresses.size(); i++) {
    auto& a = l.topo.addresses[i];
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
  for (size_t i = 0; i < l.topo.routes.size(); i++) {
    auto& r = l.topo.routes[i];
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
      for (auto& a : l.topo.addresses) {
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
  for (size_t i = 0; i < l.topo.neighbours.size(); i++)
    known(l.topo.neighbours[i].dev, l.topo.neighbours[i].dev_at,
          "neighbour #" + std::to_string(i + 1));
  std::set<std::string> taps;
  for (size_t i = 0; i < l.topo.punt.size(); i++) {
    auto& p = l.topo.punt[i];
    std::string where = "punt #" + std::to_string(i + 1);
    known(p.dev, p.dev_at, where);
    for (auto& b : l.topo.bridges)
      if (b.name == p.dev)
        l.fail(p.dev_at,
               where + ": dev '" + p.dev + "' is a bridge; punt TAPs go on ports and vlans");
    if (devs.contains(p.tap))
      l.fail(p.tap_at, where + ": tap '" + p.tap + "' is the name of a sluice device");
    if (!taps.insert(p.tap).second) l.fail(p.tap_at, where + ": tap '" + p.tap + "' is used twice");
  }
}

// --- bridges: checks after parsing -------------------------------------------------

// Bridge names are device names; ports are ports or vlans of this file, in at
// most one bridge and never a bridge (br_add_if: ELOOP, EBUSY); port_settings
// and fdb_static name ports of their bridge; VLAN settings need filtering.
void check_bridges(Loader& l) {
  std::map<std::string, Mark> devs;
  for (auto& p : l.ports) devs.emplace(p.v.name, p.name_at);
  for (auto& v : l.vlans) devs.emplace(v.v.name, v.name_at);
  std::set<std::string> bridge_names;
  for (auto& b : l.bridges) {
    auto [it, fresh] = devs.emplace(b.v.name, b.name_at);
    if (!fresh)
      l.fail(b.name_at, "duplicate device name '" + b.v.name + "' (first defined at " +
                            mark_str(it->second) + ")");
    bridge_names.insert(b.v.name);
  }
  std::map<std::string, std::pair<std::string, Mark>> member_of;
  for (auto& b : l.bridges) {
    const std::string where = "bridge '" + b.v.name + "'";
    for (size_t i = 0; i < b.v.ports.size(); i++) {
      const std::string& p = b.v.ports[i];
      const Mark at = b.v.port_at[i];
      if (bridge_names.contains(p))
        l.fail(at, where + ": port '" + p + "' is a bridge (a bridge cannot be a bridge port)");
      if (!devs.contains(p))
        l.fail(at, where + ": port '" + p + "' is not a port or vlan defined in this file");
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
  // Valid: published now, so that later checks (check_l3) see the bridges.
  for (auto& b : l.bridges) {
    b.v.mark = b.name_at;
    l.topo.bridges.push_back(b.v);
  }
}

constexpr void (*kChecks[])(Loader&) = {
    check_have_ports, check_unique_names, check_unique_devices, check_vlans, check_workers,
    check_bridges,    check_l3,
};

// --- the document ------------------------------------------------------------

void load_document(Loader& l, const YAML::Node& doc) {
  if (doc.IsNull()) l.fail(Mark{1, 1}, "no ports defined (the file is empty)");
  if (!doc.IsMap())
    l.fail(doc, "the file must be a map of sections (eal, ports, vlans, control, logging), got " +
                    describe(doc));
  std::map<std::string, Mark> seen;
  for (const auto& kv : doc) {  // a pair of Node handles, by value
    const YAML::Node& k = kv.first;
    if (!k.IsScalar()) l.fail(k, "section names must be plain names, got " + describe(k));
    const std::string& name = k.Scalar();
    if (auto s = seen.find(name); s != seen.end())
      l.fail(k, "duplicate section '" + name + "' (first at " + mark_str(s->second) + ")");
    seen.emplace(name, to_mark(k.Mark()));
    auto def = std::find_if(std::begin(kSections), std::end(kSections),
                            [&](auto& d) { return d.name == name; });
    if (def != std::end(kSections)) {
      def->parse(l, Field{k, kv.second, name, ""});
      continue;
    }
    if (std::find(std::begin(kNotYet), std::end(kNotYet), name) != std::end(kNotYet))
      l.fail(k, "section '" + name + "' is not supported by this build");
    std::vector<std::string_view> names;
    for (auto& d : kSections) names.push_back(d.name);
    l.fail(k, "unknown key '" + name + "' (expected one of: " + join(names) + ")");
  }
  for (auto check : kChecks) check(l);
  for (auto& p : l.ports) {
    p.v.mark = p.name_at;
    l.topo.ports.push_back(std::move(p.v));
  }
  for (auto& v : l.vlans) {
    v.v.mark = v.name_at;
    l.topo.vlans.push_back(std::move(v.v));
  }
}

// Records where each document starts; the other events are not needed.
struct DocStarts : YAML::EventHandler {
  std::vector<YAML::Mark> marks;
  void OnDocumentStart(const YAML::Mark& m) override { marks.push_back(m); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

std::vector<unsigned> parse_lcores(const std::string& s) {
  std::vector<unsigned> all = parse_lcore_spec(s).lcores;
  return std::vector<unsigned>(all.begin() + 1, all.end());
}

Topology load_string(const std::string& text, const std::string& name) {
  Loader l(name);
  l.topo.file = name;
  // Syntax first, over at most two documents. Not YAML::LoadAll: in
  // yaml-cpp 0.7 it loops, allocating without end, on a stray token such as
  // a ',' at the start of a line (jbeder/yaml-cpp#1040, fixed by #1319).
  DocStarts starts;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    if (parser.HandleNextDocument(starts)) parser.HandleNextDocument(starts);
  } catch (const YAML::Exception& e) {
    l.fail(to_mark(e.mark), "YAML syntax error: " + e.msg);
  }
  if (starts.marks.size() > 1) {
    const YAML::Mark& m = starts.marks[1];
    size_t pos = m.pos >= 0 ? static_cast<size_t>(m.pos) : text.size();
    if (text.compare(pos, 3, "---") == 0)
      l.fail(to_mark(m), "only one YAML document is allowed (found '---' starting another)");
    l.fail(to_mark(m), "YAML syntax error: unexpected '" + text.substr(pos, 1) + "'");
  }
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    l.fail(to_mark(e.mark), "YAML syntax error: " + e.msg);
  }
  try {
    load_document(l, doc);
  } catch (const YAML::Exception& e) {
    // Not expected (types are checked before use); still report a position.
    l.fail(to_mark(e.mark), e.msg);
  }
  return std::move(l.topo);
}

Topology load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read: " + std::strerror(errno));
  return load_string(ss.str(), path);
}

}  // namespace sluice::config
