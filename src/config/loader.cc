// The YAML topology loader (docs/config.md, design/CONFIG.md): the generic
// machinery of src/config/loader.hh (values, key tables, FILE:LINE:COL
// errors, the device names of the file) and the sections that are the
// core's own: eal, ports, vlans, control and logging. Every other section
// belongs to a feature, which registers it (src/core/feature.hh) and parses
// it in its folder (src/bridge/config.cc, src/l3/config.cc, …); sections of
// the contract that this build has no feature for are refused at their key.
#include "config/loader.hh"

#include <rte_config.h>
#include <yaml-cpp/eventhandler.h>

#include <grp.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <tuple>

#include "config/memory.hh"
#include "core/feature.hh"

namespace sluice::config {

namespace {

constexpr unsigned kMaxLcore = RTE_MAX_LCORE - 1;
constexpr size_t kMaxDevName = 15;      // IFNAMSIZ - 1
constexpr size_t kMaxSocketPath = 107;  // sizeof(sockaddr_un::sun_path) - 1

}  // namespace

Mark to_mark(const YAML::Mark& m) {
  if (m.is_null() || m.line < 0 || m.column < 0) return Mark{1, 1};
  return Mark{m.line + 1, m.column + 1};
}

std::string mark_str(Mark m) {
  return std::to_string(m.line) + ":" + std::to_string(m.col);
}

std::string where(const std::string& file, Mark m) {
  return file + ":" + mark_str(m) + ": ";
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

std::string bad_dev_name(std::string_view s) {
  if (s.empty() || s.size() > kMaxDevName)
    return "device names are 1.." + std::to_string(kMaxDevName) + " characters";
  for (char c : s)
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-')
      return "only letters, digits, '_', '.' and '-' are allowed";
  if (s == "." || s == "..") return "'.' and '..' are not device names";
  std::string l = to_lower(s);
  if (l == "all" || l == "any") return "'" + std::string(s) + "' is a reserved word";
  if (s == "lo") return "'lo' is the loopback device every topology has";
  return "";
}

namespace {

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

// --- the loader ---------------------------------------------------------------

void Loader::fail(Mark m, const std::string& msg) const {
  throw ConfigError(file_ + ":" + mark_str(m) + ": " + msg);
}

unsigned Loader::get_uint(const Field& f, unsigned lo, unsigned hi, std::string_view what) {
  std::optional<long long> v;
  if (f.value.IsScalar()) v = parse_int(f.value.Scalar());
  if (!v || *v < lo || *v > hi)
    fail(f.at(), f.what() + " must be " + std::string(what) + " " + std::to_string(lo) + ".." +
                     std::to_string(hi) + ", got " + describe(f.value));
  return static_cast<unsigned>(*v);
}

bool Loader::get_bool(const Field& f) {
  if (f.value.IsScalar()) {
    std::string s = to_lower(f.value.Scalar());
    if (s == "true" || s == "yes" || s == "on") return true;
    if (s == "false" || s == "no" || s == "off") return false;
  }
  fail(f.at(), f.what() + " must be true or false, got " + describe(f.value));
}

std::string Loader::get_string(const Field& f) {
  if (!f.value.IsScalar()) fail(f.at(), f.what() + " must be a string, got " + describe(f.value));
  return f.value.Scalar();
}

std::vector<YAML::Node> Loader::get_list(const Field& f, std::string_view what) {
  std::vector<YAML::Node> r;
  if (f.value.IsNull()) return r;
  if (!f.value.IsSequence())
    fail(f.at(),
         f.what() + " must be a list of " + std::string(what) + ", got " + describe(f.value));
  for (const auto& n : f.value) r.push_back(n);
  return r;
}

bool Loader::section_map(const Field& f) {
  if (f.value.IsNull()) return false;
  if (!f.value.IsMap())
    fail(f.at(), f.name + " must be a map of settings, got " + describe(f.value));
  return true;
}

std::string Loader::entry_where(std::string_view kind, const YAML::Node& entry, size_t index) {
  if (!entry.IsMap())
    fail(entry, std::string(kind) + " #" + std::to_string(index + 1) +
                    " must be a map of settings (name: ..., ...), got " + describe(entry));
  YAML::Node n = entry["name"];
  if (n && n.IsScalar() && bad_dev_name(n.Scalar()).empty())
    return std::string(kind) + " '" + n.Scalar() + "'";
  return std::string(kind) + " #" + std::to_string(index + 1);
}

void Loader::require(const YAML::Node& entry, const std::string& where,
                     const std::set<std::string>& seen,
                     std::initializer_list<std::string_view> keys) {
  for (auto k : keys)
    if (!seen.contains(std::string(k)))
      fail(entry, where + ": missing required key '" + std::string(k) + "'");
}

void Loader::declare_kind(std::string_view kind) {
  if (std::find(kinds_.begin(), kinds_.end(), kind) == kinds_.end()) kinds_.emplace_back(kind);
}

std::string Loader::kinds_phrase() const {
  std::string r;
  for (size_t i = 0; i < kinds_.size(); i++) {
    if (i > 0) r += i + 1 == kinds_.size() ? " or " : ", ";
    r += kinds_[i];
  }
  return r;
}

void Loader::add_device(const std::string& name, std::string_view kind, Mark at) {
  auto [it, fresh] = devices_.emplace(name, std::pair{std::string(kind), at});
  if (!fresh)
    fail(at, "duplicate device name '" + name + "' (first defined at " +
                 mark_str(it->second.second) + ")");
}

std::string_view Loader::device_kind(const std::string& name) const {
  auto it = devices_.find(name);
  return it == devices_.end() ? std::string_view() : std::string_view(it->second.first);
}

std::string device_name(Loader& l, const Field& f) {
  std::string s = l.get_string(f);
  if (std::string why = bad_dev_name(s); !why.empty())
    l.fail(f.at(), f.where + ": invalid name " + describe(f.value) + ": " + why);
  return s;
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

namespace {

// The core's entries as parsed, with the positions the checks need.
struct PortIn {
  Port v;
  Mark name_at, device_at;
  std::vector<Mark> worker_at;
};

struct VlanIn {
  Vlan v;
  Mark name_at, link_at, id_at;
};

struct CoreIn {
  std::vector<PortIn> ports;
  std::vector<VlanIn> vlans;
  Mark ports_at{1, 1};   // the 'ports' key, for "no ports defined"
  Mark eal_at{0, 0};     // the 'eal' key (0: no eal section)
  Mark memory_at{0, 0};  // eal.memory_mb's value (0: not given)
};
CoreIn& core(Loader& l) {
  return l.scratch<CoreIn>();
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
  core(l).memory_at = f.at();
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
  core(l).eal_at = to_mark(f.key.Mark());
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
  core(l).ports_at = to_mark(f.key.Mark());
  auto entries = l.get_list(f, "ports (one '- name: ...' entry per port)");
  for (size_t i = 0; i < entries.size(); i++) {
    const YAML::Node& e = entries[i];
    std::string where = l.entry_where("port", e, i);
    PortIn p;
    auto seen = l.parse_keys<PortIn>(e, where, kPortKeys, p);
    l.require(e, where, seen, {"name", "device"});
    core(l).ports.push_back(std::move(p));
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
    core(l).vlans.push_back(std::move(v));
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

// A group name of this system (getgrnam_r: /etc/group or what NSS is set
// up for) or a number (any gid, as chown takes it).
void control_group(Loader& l, Control& c, const Field& f) {
  std::string s = l.get_string(f);
  if (s.empty()) l.fail(f.at(), "control: group must be a group name or number, got ''");
  if (std::all_of(s.begin(), s.end(), is_digit)) {
    auto n = parse_int(s);
    if (!n || *n > 4294967294LL)
      l.fail(f.at(), "control: group " + describe(f.value) + " is not a valid group id");
    c.group = s;
    c.gid = static_cast<long>(*n);
    return;
  }
  group g{}, *found = nullptr;
  std::vector<char> buf(16384);
  int rc;
  while ((rc = getgrnam_r(s.c_str(), &g, buf.data(), buf.size(), &found)) == ERANGE &&
         buf.size() < (1u << 22))
    buf.resize(buf.size() * 2);
  if (found == nullptr)
    l.fail(f.at(), "control: group " + describe(f.value) + " is not a group of this system" +
                       (rc != 0 ? std::string(" (") + std::strerror(rc) + ")" : std::string()));
  c.group = s;
  c.gid = static_cast<long>(g.gr_gid);
}

constexpr KeyDef<Control> kControlKeys[] = {
    {"socket", control_socket},
    {"group", control_group},
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

// --- sections -------------------------------------------------------------------

// The core's sections and every feature's, in docs/config.md's order.
std::vector<ConfigSection> all_sections() {
  std::vector<ConfigSection> r = {{"eal", 10, section_eal},
                                  {"ports", 20, section_ports},
                                  {"vlans", 30, section_vlans},
                                  {"control", 50, section_control},
                                  {"logging", 60, section_logging}};
  for (const Feature* f : features()) r.insert(r.end(), f->sections.begin(), f->sections.end());
  std::stable_sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.order < b.order; });
  return r;
}

// --- checks after parsing ----------------------------------------------------

void check_have_ports(Loader& l) {
  if (core(l).ports.empty()) l.fail(core(l).ports_at, "no ports defined");
}

// Names are unique over all devices: ports and vlans here, the devices of
// features (a bridge, a bond, …) in their checks.
void check_unique_names(Loader& l) {
  l.declare_kind("port");
  l.declare_kind("vlan");
  for (auto& p : core(l).ports) l.add_device(p.v.name, "port", p.name_at);
  for (auto& v : core(l).vlans) l.add_device(v.v.name, "vlan", v.name_at);
}

// One port per DPDK device: compares PCI addresses with their domain and vdevs
// by their name (the part before the first ',').
void check_unique_devices(Loader& l) {
  std::map<std::string, const PortIn*> first;
  for (auto& p : core(l).ports) {
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
  for (auto& v : core(l).vlans) by_name.emplace(v.v.name, &v);

  for (auto& v : core(l).vlans) {
    const std::string where = "vlan '" + v.v.name + "'";
    if (v.v.link == v.v.name) l.fail(v.link_at, where + ": link is the vlan itself");
    // A link that is neither is checked after the features' checks (a bond).
  }
  for (auto& v : core(l).vlans) {
    // Follow the links down to a port; report a loop at its first member seen.
    std::vector<const VlanIn*> path{&v};
    for (const VlanIn* cur = &v; by_name.contains(cur->v.link);) {
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
  for (auto& v : core(l).vlans) {
    auto [it, fresh] = ids.emplace(std::tuple{v.v.link, v.v.id, v.v.protocol}, &v);
    if (!fresh)
      l.fail(v.id_at, "vlan '" + v.v.name + "': " + v.v.protocol + " id " + std::to_string(v.v.id) +
                          " on '" + v.v.link + "' is already used by vlan '" + it->second->v.name +
                          "' (at " + mark_str(it->second->name_at) + ")");
  }
}

// After the features' checks: a link that is not a port or VLAN must be a
// bond (whose VLANs Dataplane::add_vlans makes once the bond exists).
void check_vlan_links(Loader& l) {
  std::set<std::string> names;
  for (auto& p : core(l).ports) names.insert(p.v.name);
  for (auto& v : core(l).vlans) names.insert(v.v.name);
  const bool bonds = l.kinds_phrase().find("bond") != std::string::npos;
  for (auto& v : core(l).vlans) {
    if (names.contains(v.v.link) || l.device_kind(v.v.link) == "bond") continue;
    l.fail(v.link_at, "vlan '" + v.v.name + "': link '" + v.v.link + "' is not a port" +
                          (bonds ? ", vlan or bond" : " or vlan") + " defined in this file");
  }
}

void check_workers(Loader& l) {
  const std::string& lcores = l.topo.eal.lcores;
  std::vector<unsigned> all = parse_lcore_spec(lcores).lcores;  // valid: checked when parsed
  std::vector<unsigned> workers(all.begin() + 1, all.end());
  for (auto& p : core(l).ports) {
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

// What EAL itself takes from eal.memory_mb besides the pools (its heap,
// memzones of ethdev, rings, telemetry, the features' tables of a small
// topology); measured, see docs/config.md ("Memory").
constexpr uint64_t kEalReserveMb = 12;

std::string mib(uint64_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB";
}

// The mbuf pools must fit in eal.memory_mb, with EAL's own share: refused
// here with both figures, not at start with ENOMEM.
void check_memory(Loader& l) {
  PoolNeed n = pool_need(l.topo);
  const uint64_t need_mb = ((n.bytes + (1 << 20) - 1) >> 20) + kEalReserveMb;
  if (l.topo.eal.memory_mb >= need_mb) return;
  Mark at = core(l).memory_at;
  if (at.line == 0) at = core(l).eal_at.line != 0 ? core(l).eal_at : core(l).ports_at;
  const bool small_pages = n.page < n.mbuf_bytes * 2;
  std::string detail = std::to_string(n.mbufs) + " mbufs of " + std::to_string(n.mbuf_bytes) +
                       " bytes" + (small_pages ? ", one per 4 KiB page without hugepages," : "") +
                       " = " + mib(n.pool_bytes) + " for " + std::to_string(core(l).ports.size()) +
                       " port(s) with " + std::to_string(n.descriptors) +
                       " RX/TX descriptors and " + std::to_string(n.workers) +
                       " worker(s)' caches and TX buffers, doubled";
  if (n.landing_mbufs != 0)
    detail += "; " + std::to_string(n.landing_mbufs) + " mbufs of " +
              std::to_string(n.landing_room) + " bytes = " + mib(n.landing_bytes) +
              " for net_af_packet frames";
  l.fail(at, "eal: memory_mb: " + std::to_string(l.topo.eal.memory_mb) +
                 " MiB is too small: the mbuf pools need " + mib(n.bytes) + " (" + detail +
                 "), plus " + std::to_string(kEalReserveMb) +
                 " MiB for EAL: memory_mb must be at least " + std::to_string(need_mb));
}

void check_core(Loader& l) {
  check_have_ports(l);
  check_unique_names(l);
  check_unique_devices(l);
  check_vlans(l);
  check_workers(l);
}

// --- the document ------------------------------------------------------------

void load_document(Loader& l, const YAML::Node& doc) {
  if (doc.IsNull()) l.fail(Mark{1, 1}, "no ports defined (the file is empty)");
  if (!doc.IsMap())
    l.fail(doc, "the file must be a map of sections (eal, ports, vlans, control, logging), got " +
                    describe(doc));
  const std::vector<ConfigSection> sections = all_sections();
  std::map<std::string, Mark> seen;
  for (const auto& kv : doc) {  // a pair of Node handles, by value
    const YAML::Node& k = kv.first;
    if (!k.IsScalar()) l.fail(k, "section names must be plain names, got " + describe(k));
    const std::string& name = k.Scalar();
    if (auto s = seen.find(name); s != seen.end())
      l.fail(k, "duplicate section '" + name + "' (first at " + mark_str(s->second) + ")");
    seen.emplace(name, to_mark(k.Mark()));
    l.topo.section_text[name] = YAML::Dump(kv.second);
    auto def =
        std::find_if(sections.begin(), sections.end(), [&](auto& d) { return d.name == name; });
    if (def != sections.end()) {
      def->parse(l, Field{k, kv.second, name, ""});
      continue;
    }
    std::vector<std::string_view> names;
    for (auto& d : sections) names.push_back(d.name);
    l.fail(k, "unknown key '" + name + "' (expected one of: " + join(names) + ")");
  }
  check_core(l);
  // The core's devices are in the topology before the features' checks
  // (which may follow a VLAN to its link).
  for (auto& p : core(l).ports) {
    p.v.mark = p.name_at;
    l.topo.ports.push_back(p.v);
  }
  for (auto& v : core(l).vlans) {
    v.v.mark = v.name_at;
    l.topo.vlans.push_back(v.v);
  }
  for (const Feature* f : features())
    if (f->check != nullptr) f->check(l);
  check_vlan_links(l);  // VLANs on a feature's device (a bond), once the features declared theirs
  check_memory(l);      // last: any other error of the file is reported first
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
  for (const auto& [name, kind] : l.devices()) l.topo.devices[name] = kind.first;
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
