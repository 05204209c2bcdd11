// The typed topology: what sluiced builds from the YAML file of
// docs/config.md. Every field keeps the line:column of its YAML node so that
// errors found after parsing (unknown device, duplicate name) still point
// into the file.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <typeindex>
#include <vector>

namespace sluice::config {

struct Mark {
  int line = 0;  // 1-based
  int col = 0;   // 1-based
};

// "FILE:LINE:COL: ", the prefix of an error at m in file.
std::string where(const std::string& file, Mark m);

// Thrown by the loader; what() is "FILE:LINE:COL: message".
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Eal {
  std::string lcores = "0-1";  // first = main lcore (control), rest = workers
  unsigned memory_mb = 512;
  bool hugepages = true;
  std::string file_prefix = "sluice";
  std::vector<std::string> args;
};

struct Port {
  Mark mark;
  std::string name;
  std::string device;  // PCI address or vdev devargs
  bool is_pci = false;
  unsigned rx_queues = 1;
  unsigned tx_queues = 1;
  unsigned mtu = 1500;
  std::optional<std::string> mac;  // "02:00:00:00:00:01"
  bool promiscuous = true;
  std::vector<unsigned> workers;  // worker lcores; empty = all workers
  unsigned rx_desc = 1024;
  unsigned tx_desc = 1024;
};

struct Vlan {
  Mark mark;
  std::string name;
  std::string link;
  unsigned id = 0;
  std::string protocol = "802.1Q";  // or "802.1ad"
};

struct Control {
  std::string socket = "/run/sluice/sluice.sock";
  bool telemetry = true;
  std::string metrics;  // "host:port" or ""
  std::string group;    // the socket's group as written ("" = the daemon's)
  long gid = -1;        // resolved at load; -1 = the daemon's
};

struct Logging {
  std::string level = "info";
  std::string file;  // "" = stderr
};

// The topology: the core's sections as members; every feature's sections
// as one value of the feature's own type (bridge::Config, l3::Config, …,
// declared in its folder's config.hh), reached with get<T>().
class Topology {
 public:
  std::string file;
  Eal eal;
  std::vector<Port> ports;
  std::vector<Vlan> vlans;
  Control control;
  Logging logging;
  // Every device the file defines (ports, VLANs, bonds, bridges, …): name →
  // kind ("port", "vlan", "bond", "bridge", …), as the loader registered them.
  std::map<std::string, std::string> devices;
  // Each top-level section as YAML text without positions (yaml-cpp's
  // Dump): what a reload compares to see which sections changed.
  std::map<std::string, std::string> section_text;
  // Whether section `name` differs from o's (present in one only, or other text).
  bool section_differs(const Topology& o, const std::string& name) const {
    auto a = section_text.find(name), b = o.section_text.find(name);
    if ((a == section_text.end()) != (b == o.section_text.end())) return true;
    return a != section_text.end() && a->second != b->second;
  }

  Topology() = default;
  Topology(const Topology& o) { *this = o; }
  Topology& operator=(const Topology& o) {
    if (this == &o) return *this;
    file = o.file;
    eal = o.eal;
    ports = o.ports;
    vlans = o.vlans;
    control = o.control;
    logging = o.logging;
    devices = o.devices;
    section_text = o.section_text;
    sections_.clear();
    for (auto& [t, s] : o.sections_) sections_.emplace(t, s->clone());
    return *this;
  }
  Topology(Topology&&) = default;
  Topology& operator=(Topology&&) = default;

  // A feature's sections, created empty on first use.
  template <class T>
  T& get() {
    auto& s = sections_[std::type_index(typeid(T))];
    if (!s) s = std::make_unique<SectionOf<T>>();
    return static_cast<SectionOf<T>*>(s.get())->v;
  }
  // Read-only: an empty T when the file has none of them.
  template <class T>
  const T& get() const {
    static const T empty{};
    auto it = sections_.find(std::type_index(typeid(T)));
    return it == sections_.end() ? empty : static_cast<const SectionOf<T>*>(it->second.get())->v;
  }

 private:
  struct Section {
    virtual ~Section() = default;
    virtual std::unique_ptr<Section> clone() const = 0;
  };
  template <class T>
  struct SectionOf final : Section {
    T v;
    std::unique_ptr<Section> clone() const override { return std::make_unique<SectionOf>(*this); }
  };
  std::map<std::type_index, std::unique_ptr<Section>> sections_;
};

// Parses and validates; throws ConfigError.
Topology load_file(const std::string& path);
Topology load_string(const std::string& text, const std::string& name = "<string>");

// What an lcores string says (docs/config.md): its lcore ids in the order
// written (increasing, so the first is the lowest: the main lcore), and
// whether it uses EAL's lcore→CPU mapping syntax ("0@0,1@0,2@1", "(0-1)@0"):
// an '@' or a parenthesised group, which EAL takes as --lcores, not -l.
// Throws std::invalid_argument saying what is wrong.
struct LcoreSpec {
  std::vector<unsigned> lcores;
  bool mapped = false;
};
LcoreSpec parse_lcore_spec(std::string_view s);

// Worker lcore ids from an lcores string ("0-1", "0,2-3", "0@0,1@0,2@1"):
// all but the first.
std::vector<unsigned> parse_lcores(const std::string& s);

}  // namespace sluice::config
