// The `mirrors:` section (docs/config.md, docs/mirror.md): its typed form,
// parsed and checked by src/mirror/config.cc (every reference resolved, the
// filter compiled by libpcap, the mirror/redirect graph free of loops),
// reached as topo.get<mirror::Config>().
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/topology.hh"

namespace sluice::config {

enum class MirrorTarget : uint8_t { dev, vxlan, gre, erspan, pcapng };
const char* mirror_target_name(MirrorTarget t);

struct Mirror {
  Mark mark;
  std::string name;
  std::string source;        // device
  uint8_t direction = 0;     // 1 ingress, 2 egress, 3 both (sluice::Direction)
  std::string filter;        // pcap-filter(7); "" = every packet
  bool redirect = false;     // action: mirror (copy) | redirect (move)
  unsigned snaplen = 0;      // 0 = whole packet
  unsigned sample = 1;       // 1 in N
  MirrorTarget to = MirrorTarget::dev;
  // dev: the target device and side (mirred egress = dev_queue_xmit, ingress = receive)
  std::string dev;
  bool at_ingress = false;
  // vxlan / gre / erspan: outer IPv4 to `remote`, through L3; `via` is the
  // device the tunnel leaves through (given as `dev:` or, after the check,
  // the one L3's routes give).
  std::string remote;
  std::string via;
  unsigned vni = 0;
  unsigned dst_port = 4789;
  std::optional<uint32_t> key;  // gre
  unsigned session = 0;         // erspan (10 bits)
  // pcapng
  std::string path;
  uint64_t max_bytes = 0;
  Mark name_at, source_at, dev_at, to_at, filter_at;
};

}  // namespace sluice::config

namespace sluice::mirror {

struct Config {
  std::vector<config::Mirror> mirrors;
};

// The loop check of the mirror/redirect graph (config.cc), also for tests:
// a node is a device's ingress or egress; an edge is a mirror (its copies
// or, for redirect, the packets it moves go from its source to its target:
// a device's egress or ingress, or the egress of the device a tunnel's
// outer packets leave through) or the way packets go on by themselves (lo
// egress → lo ingress, a VLAN's egress → its link's egress, a link's
// ingress → its VLANs' ingress, a bridge port's ingress → the bridge's
// ingress and the other ports' egress, a bridge's egress → its ports'
// egress). A cycle through a redirect, or through two or more mirrors, is a
// loop; a cycle whose only mirror edge is one `mirror` (copy) is not: its
// copies are flagged and it never copies them again (the remote mirror that
// leaves through its own source device). Returns "" or the cycle:
// "p1 egress -(m0)-> lo egress -> lo ingress -(m1)-> p1 egress".
struct GraphDevice {
  std::string name;
  std::string link;                 // VLAN: its lower device
  std::vector<std::string> ports;   // bridge: its ports
  bool loopback = false;
  std::vector<std::string> members;  // bond: its members
};
std::string find_loop(const std::vector<GraphDevice>& devices,
                      const std::vector<config::Mirror>& mirrors, size_t* culprit);

}  // namespace sluice::mirror
