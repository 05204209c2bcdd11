// What the mbuf pools of a topology take from EAL's memory (eal.memory_mb):
// the figures behind the loader's "memory_mb is too small" check. The
// packet pool's size is computed here once and used by the pool's creator
// (src/pmd_glue/pmd.cc create_pools), so that the check and the pool agree.
#include "config/memory.hh"

#include <rte_config.h>
#include <rte_mbuf.h>

#include <algorithm>

#include "core/meta.hh"
#include "core/rx_csum.hh"
#include "core/worker.hh"

namespace sluice::config {

namespace {

uint64_t pow2_minus1(uint64_t n) {
  uint64_t v = 1;
  while (v - 1 < n) v <<= 1;
  return v - 1;
}

uint64_t round_up(uint64_t n, uint64_t to) {
  return (n + to - 1) / to * to;
}

// One mbuf in a pool: the mempool's object header (a cache line), the mbuf,
// its private area, headroom and data room, in cache lines; an odd number
// of them, as the mempool pads objects to spread them over memory channels
// (4 assumed when EAL does not know).
uint64_t mbuf_bytes(uint64_t data_room) {
  uint64_t lines = 1 + (sizeof(rte_mbuf) + kMbufPrivSize + data_room + RTE_CACHE_LINE_SIZE - 1) /
                           RTE_CACHE_LINE_SIZE;
  if (lines % 2 == 0) lines++;
  return lines * RTE_CACHE_LINE_SIZE;
}

// The memory n objects of `obj` bytes take: the mempool keeps each object
// within one page (4 KiB without hugepages: one 2.4 KB mbuf per page, so
// 4 KiB each), or, when an object is larger than a page, in whole pages.
uint64_t objects_bytes(uint64_t n, uint64_t obj, uint64_t page) {
  if (obj > page) return round_up(obj, page) * n;
  uint64_t per_page = page / obj;
  return (n + per_page - 1) / per_page * page;
}

// A pool of n objects besides the objects: its ring (a power of two of
// pointers), its header and the per-lcore caches (RTE_MAX_LCORE of them,
// each with room for twice the largest cache), rounded up to pages.
uint64_t pool_overhead(uint64_t n) {
  uint64_t ring = (n + 1) * sizeof(void*) + 2 * RTE_CACHE_LINE_SIZE * 2;
  uint64_t caches =
      uint64_t(RTE_MAX_LCORE) * round_up(2 * RTE_MEMPOOL_CACHE_MAX_SIZE * sizeof(void*) + 64, 64);
  return round_up(ring + caches + 4096, 4096);
}

// The data room of a net_af_packet port's landing pool (rx_csum: its ring
// frame minus 32 bytes, plus headroom, at most 65535).
unsigned af_packet_room(const std::string& device) {
  std::string d = rx_csum::port_devargs(device);
  unsigned frame = 2048;
  size_t at = d.find(",framesz=");
  if (at != std::string::npos) {
    unsigned long v = std::strtoul(d.c_str() + at + 9, nullptr, 10);
    if (v != 0) frame = static_cast<unsigned>(std::min<unsigned long>(v, 1u << 20));
  }
  uint64_t room = uint64_t(frame) - 32 + RTE_PKTMBUF_HEADROOM;
  return static_cast<unsigned>(std::min<uint64_t>(room, 65535));
}

}  // namespace

uint64_t packet_pool_mbufs(const Topology& t, size_t workers) {
  uint64_t need = 0;
  for (auto& p : t.ports)
    need += uint64_t(p.rx_desc) * p.rx_queues +
            uint64_t(p.tx_desc) * std::max<size_t>(p.tx_queues, workers);
  need += workers * (256 + kBurst + kMaxPorts * kTxBufSize);
  return std::max<uint64_t>(need * 2, 32767);
}

PoolNeed pool_need(const Topology& t) {
  PoolNeed r;
  std::vector<unsigned> lcores = parse_lcore_spec(t.eal.lcores).lcores;
  r.workers = lcores.empty() ? 0 : lcores.size() - 1;
  for (auto& p : t.ports) {
    r.descriptors += uint64_t(p.rx_desc) * p.rx_queues +
                     uint64_t(p.tx_desc) * std::max<size_t>(p.tx_queues, r.workers);
    if (rx_csum::is_af_packet(p.device))
      r.landing_room = std::max(r.landing_room, af_packet_room(p.device));
  }
  // The mempool's page: the smallest hugepage (2 MiB assumed), or the system's.
  r.page = t.eal.hugepages ? (2u << 20) : 4096;
  r.mbufs = pow2_minus1(packet_pool_mbufs(t, r.workers));
  r.mbuf_bytes = mbuf_bytes(RTE_MBUF_DEFAULT_BUF_SIZE);
  r.pool_bytes = objects_bytes(r.mbufs, r.mbuf_bytes, r.page);
  r.bytes = r.pool_bytes + pool_overhead(r.mbufs);
  if (r.landing_room != 0) {
    constexpr unsigned kLandingCache = 16;  // rx_csum::rx_pool
    r.landing_mbufs = pow2_minus1(kBurst + r.workers * (kBurst + kLandingCache * 2));
    r.landing_bytes = objects_bytes(r.landing_mbufs, mbuf_bytes(r.landing_room), r.page);
    r.bytes += r.landing_bytes + pool_overhead(r.landing_mbufs);
  }
  return r;
}

}  // namespace sluice::config
