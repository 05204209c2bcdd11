// The memory the mbuf pools of a topology take (src/config/memory.cc).
#pragma once

#include <cstddef>
#include <cstdint>

#include "config/topology.hh"

namespace sluice::config {

// Mbufs the packet pool of one NUMA socket is made for, before rounding to
// 2^n - 1 and before net_pcap infinite_rx preloads: every RX and TX
// descriptor, each worker's lcore cache, burst and TX buffers, doubled
// (packets in flight in rings, captures, queues), at least 32767.
uint64_t packet_pool_mbufs(const Topology& t, size_t workers);

struct PoolNeed {
  size_t workers = 0;
  uint64_t descriptors = 0;   // RX + TX descriptors of every port
  uint64_t page = 0;          // the mempool's page: 4 KiB, or 2 MiB with hugepages
  uint64_t mbufs = 0;         // the packet pool (2^n - 1)
  uint64_t mbuf_bytes = 0;    // one of them, with header and private area
  uint64_t pool_bytes = 0;    // all of them, in pages
  unsigned landing_room = 0;  // the net_af_packet landing pool's data room (0: none)
  uint64_t landing_mbufs = 0;
  uint64_t landing_bytes = 0;  // all of them, in pages
  uint64_t bytes = 0;          // every pool: objects, rings, lcore caches
};
// For a topology whose eal.lcores parses.
PoolNeed pool_need(const Topology& t);

}  // namespace sluice::config
