// What workers read of L3's tables: one immutable Snapshot, replaced as a
// whole under RCU by L3::commit(). It names the current buffers of the two
// main tables (fib.hh) with their next hops, and carries the local tables
// (addr.hh), each device's addresses and its punt TAP.
#pragma once

#include <array>
#include <cstdint>
#include <cstring>
#include <vector>

#include "l3/fib.hh"

namespace sluice::l3 {

// The local table: own addresses and subnet broadcasts (exact /32 keys),
// open addressing; looked up before the main table as Linux does.
struct LocalSlot {
  uint32_t addr = 0;      // host order; 0 = empty
  uint16_t dev = kNoDev;  // the device the address is on
  RtType type = RtType::none;
};

struct Snapshot {
  rte_fib* fib = nullptr;        // the IPv4 main table (Fib4's current buffer)
  std::vector<NextHop> nh;       // index = the FIB's next hop; [0] = no route
  std::vector<LocalSlot> local;  // open addressing, at most 1/4 full
  uint32_t local_mask = 0;
  uint32_t local_shift = 32;
  // Fibonacci hashing: the high bits of the product (addresses often share
  // their low bits: 10.2.x.1 …).
  uint32_t local_slot(uint32_t a) const { return (a * 2654435761u) >> local_shift; }
  std::vector<uint32_t> dev_addr;  // [device index] primary IPv4 address, 0 = none
  std::vector<uint16_t> punt;      // [device index] its punt TAP device, kNoDev = none
  // IPv6: the main table (nullptr when IPv6 is off), own addresses (global
  // and link-local) and the groups joined.
  struct Local6 {
    uint8_t a[16];
    uint16_t dev;
    bool mcast;
  };
  rte_fib6* fib6 = nullptr;
  std::vector<NextHop6Ref> nh6;
  std::vector<Local6> local6;
  std::vector<Addr6> dev_addr6;  // [device index] an address to answer from
  const Local6* find_local6(const uint8_t* a, uint16_t dev) const {
    for (const Local6& l : local6)
      if (std::memcmp(l.a, a, 16) == 0 && (!l.mcast || l.dev == dev)) return &l;
    return nullptr;
  }

  const LocalSlot* find_local(uint32_t a) const {
    if (local.empty()) return nullptr;
    for (uint32_t i = local_slot(a);; i = (i + 1) & local_mask) {
      const LocalSlot& s = local[i];
      if (s.addr == a) return &s;
      if (s.addr == 0) return nullptr;
    }
  }
};

}  // namespace sluice::l3
