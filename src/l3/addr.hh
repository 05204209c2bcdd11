// Own addresses (net/ipv4/devinet.c, net/ipv6/addrconf.c): what `addresses:`
// and L3::add_address give; the local tables published from them (own
// addresses and subnet broadcasts, IPv6 addresses and the groups a router
// joins), source address selection, and the text forms of addresses.
// Control thread only; workers read the tables in Snapshot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <rte_ether.h>

#include "l3/fib.hh"

namespace sluice {
class Net;
}

namespace sluice::l3 {

struct Snapshot;

struct Address {
  uint16_t dev;
  bool v6 = false;
  bool loopback = false;  // lo's 127.0.0.1/8 or ::1: never a source for what leaves a port
  uint32_t addr = 0;      // v4, host order
  uint8_t v6addr[16] = {};
  uint8_t len = 0;
};

class Addresses {
 public:
  // Parses and adds cidr on dev: "" or why not (nothing changed). IPv4: a
  // usable host address not assigned yet; IPv6: any address with a length.
  // loopback: the address of lo (127.0.0.0/8 allowed, only there).
  std::string add(uint16_t dev, const std::string& cidr, Address* added, bool loopback = false);
  const std::vector<Address>& all() const { return addrs_; }
  // Takes cidr off dev (the same text add() took): "" or why not; *removed
  // is what was taken off.
  std::string remove(uint16_t dev, const std::string& cidr, Address* removed);
  // Takes every address of dev off; returns them.
  std::vector<Address> remove_dev(uint16_t dev);
  bool any_v6() const;

  // A next hop is usable when it lies in a connected subnet (of *dev unless
  // kNoDev), and is not our own address; *dev becomes that subnet's device.
  bool on_link(uint32_t via, uint16_t* dev) const;
  bool on_link6(const uint8_t* via, uint16_t* dev) const;
  // Primary address of dev in the subnet of `target` (or any of dev's, or any at all).
  uint32_t source_for(uint16_t dev, uint32_t target) const;

  // The snapshot's IPv4 local table (/32 keys: addresses, subnet broadcasts)
  // and each device's primary address.
  void fill_local(Snapshot& s) const;
  // IPv6: own addresses with their solicited-node groups, per device the
  // EUI-64 link-local address, ff02::1, ff02::2 (a router); an address to
  // answer from per device.
  void fill_local6(Snapshot& s, const Net& net) const;

 private:
  std::vector<Address> addrs_;
};

// Text forms.
bool parse_ipv4(const std::string& s, uint32_t* out);  // host order
bool parse_cidr4(const std::string& s, uint32_t* addr, uint8_t* len);
std::string ipv4_str(uint32_t a);  // host order
// The same, without allocating (a worker's trace details).
struct Ip4Text {
  char s[16];
  explicit Ip4Text(uint32_t a);  // host order
};
inline uint32_t prefix_mask(uint8_t len) {
  return len == 0 ? 0 : ~uint32_t(0) << (32 - len);
}
std::string mac_str(const rte_ether_addr& a);
// An IPv6 prefix (host bits masked); without /LEN a /128.
bool parse_prefix6(const std::string& s, Addr6* p, uint8_t* len);
std::string ipv6_str(const uint8_t* a);
// fe80::/64 with the modified EUI-64 of mac (addrconf_addr_eui48).
void ipv6_link_local(const rte_ether_addr& mac, uint8_t* out);
// ff02::1:ffXX:XXXX
void ipv6_solicited_node(const uint8_t* a, uint8_t* out);

}  // namespace sluice::l3
