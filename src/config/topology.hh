// The typed topology: what sluiced builds from the YAML file of
// docs/config.md. Every field keeps the line:column of its YAML node so that
// errors found after parsing (unknown device, duplicate name) still point
// into the file.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice::config {

struct Mark {
  int line = 0;  // 1-based
  int col = 0;   // 1-based
};

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
};

struct Logging {
  std::string level = "info";
  std::string file;  // "" = stderr
};

struct Topology {
  std::string file;
  Eal eal;
  std::vector<Port> ports;
  std::vector<Vlan> vlans;
  Control control;
  Logging logging;
};

// Parses and validates; throws ConfigError.
Topology load_file(const std::string& path);
Topology load_string(const std::string& text, const std::string& name = "<string>");

// Worker lcore ids from an lcores string ("0-1", "0,2-3"): all but the first.
std::vector<unsigned> parse_lcores(const std::string& s);

}  // namespace sluice::config
