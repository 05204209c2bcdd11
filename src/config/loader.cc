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
#include <rte_config.h>
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

namespace sluice::config {

namespace {

constexpr unsigned kMaxLcore = RTE_MAX_LCORE - 1;
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

// All lcores of an lcores string: a comma-separated list of ids and ranges
// "a-b", increasing and without repeats, so that the first one, the main
// lcore, is also the lowest (DPDK's default main lcore). Never empty.
std::vector<unsigned> parse_lcore_list(std::string_view rest) {
  std::vector<unsigned> all;
  auto number = [&]() -> unsigned {
    size_t n = 0;
    while (n < rest.size() && is_digit(rest[n])) n++;
    if (n == 0)
      throw std::invalid_argument(rest.empty()
                                      ? "expected an lcore id at the end"
                                      : "expected an lcore id at '" + std::string(rest) + "'");
    auto v = parse_int(rest.substr(0, n));
    if (*v > kMaxLcore)
      throw std::invalid_argument("lcore " + std::string(rest.substr(0, n)) +
                                  " is above the maximum " + std::to_string(kMaxLcore));
    rest.remove_prefix(n);
    return static_cast<unsigned>(*v);
  };
  while (true) {
    unsigned lo = number(), hi = lo;
    if (!rest.empty() && rest[0] == '-') {
      rest.remove_prefix(1);
      hi = number();
      if (hi < lo)
        throw std::invalid_argument("range " + std::to_string(lo) + "-" + std::to_string(hi) +
                                    " goes backwards");
    }
    if (!all.empty() && lo <= all.back())
      throw std::invalid_argument("lcore " + std::to_string(lo) +
                                  " repeats or is out of increasing order");
    for (unsigned i = lo; i <= hi; i++) all.push_back(i);
    if (rest.empty()) return all;
    if (rest[0] != ',') throw std::invalid_argument("unexpected '" + std::string(rest) + "'");
    rest.remove_prefix(1);
  }
}

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
    parse_lcore_list(e.lcores);
  } catch (const std::invalid_argument& ex) {
    l.fail(f.at(),
           "eal: lcores must be lcore ids like \"0-1\" or \"0,2-3\" (the first is the main "
           "lcore), got " +
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

// --- the section table -----------------------------------------------------

struct SectionDef {
  std::string_view name;
  void (*parse)(Loader&, const Field&);
};

constexpr SectionDef kSections[] = {
    {"eal", section_eal},         {"ports", section_ports},     {"vlans", section_vlans},
    {"control", section_control}, {"logging", section_logging},
};

// In the contract, not implemented yet: refused rather than ignored.
constexpr std::string_view kNotYet[] = {"bonds", "bridges", "addresses", "routes", "neighbours",
                                        "punt",  "hooks",   "plugins",   "mirrors"};

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
  std::vector<unsigned> all = parse_lcore_list(lcores);  // valid: checked when parsed
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

constexpr void (*kChecks[])(Loader&) = {
    check_have_ports, check_unique_names, check_unique_devices, check_vlans, check_workers,
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

}  // namespace

std::vector<unsigned> parse_lcores(const std::string& s) {
  std::vector<unsigned> all = parse_lcore_list(s);
  return std::vector<unsigned>(all.begin() + 1, all.end());
}

Topology load_string(const std::string& text, const std::string& name) {
  Loader l(name);
  l.topo.file = name;
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(text);
  } catch (const YAML::Exception& e) {
    l.fail(to_mark(e.mark), "YAML syntax error: " + e.msg);
  }
  if (docs.size() > 1) {
    l.fail(docs[1], "only one YAML document is allowed (found '---' starting another)");
  }
  try {
    load_document(l, docs.empty() ? YAML::Node() : docs[0]);
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
