// The neighbour table (net/core/neighbour.c with arp_tbl's and nd_tbl's
// behaviour): ARP and ND entries, their NUD states and timers, the queue of
// packets waiting for a resolution. neigh.cc says how states move.
//
// Workers look entries up in an rte_hash (lock-free readers; one for IPv4,
// one for IPv6) and read one 64-bit word per entry (MAC + NUD state); each
// worker caches its lookups in a NeighCache (IPv4) and a NeighCache6. Everything else runs on the
// control thread, fed by per-worker rings (WorkerL3::pending, events,
// events6).
// Outputs: probes (arp.cc, ndisc.cc), released packets and ICMP host
//   unreachable through the worker inject rings (L3::inject).
// Drop reasons: neigh_failed, neigh_queuefull, neigh_createfail.
// Counters: NeighStats (`show neigh`). CLI: show neigh (commands.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "l3/icmp.hh"

struct rte_hash;

namespace sluice::l3 {

class L3;

// NUD_* (include/uapi/linux/neighbour.h).
enum Nud : uint8_t {
  kNudNone = 0x00,
  kNudIncomplete = 0x01,
  kNudReachable = 0x02,
  kNudStale = 0x04,
  kNudDelay = 0x08,
  kNudProbe = 0x10,
  kNudFailed = 0x20,
  kNudNoarp = 0x40,
  kNudPermanent = 0x80,
};
inline constexpr uint8_t kNudValid =
    kNudPermanent | kNudNoarp | kNudReachable | kNudProbe | kNudStale | kNudDelay;
const char* nud_name(uint8_t s);

// arp_tbl defaults (net/ipv4/arp.c) and spec §9.
struct NeighParams {
  unsigned mcast_probes = 3;
  unsigned ucast_probes = 3;
  uint64_t retrans_ms = 1000;
  uint64_t base_reachable_ms = 30000;
  uint64_t delay_probe_ms = 5000;
  uint64_t gc_stale_ms = 60000;
  unsigned gc_thresh1 = 128;  // below this many entries nothing is collected
  uint64_t unres_qlen_bytes = 212992;
  uint64_t locktime_ms = 1000;
};

struct NeighKey {
  uint32_t ip;  // host order
  uint16_t dev;
  uint16_t zero;
};

struct NeighKey6 {
  uint8_t a[16];
  uint16_t dev;
  uint16_t zero;
};

struct NeighEntry {
  // Read by workers: MAC in the low 48 bits, NUD state in bits 48-55.
  std::atomic<uint64_t> hw{0};
  std::atomic<uint8_t> used{0};  // a worker sent through it while STALE
  // Control thread only.
  NeighKey key{};
  uint8_t state = kNudNone;
  bool in_use = false;
  unsigned probes = 0;
  uint64_t updated_ms = 0, confirmed_ms = 0, next_ms = 0, reachable_ms = 0;
  std::deque<rte_mbuf*> queue;
  uint64_t queue_bytes = 0;
  int32_t pos = -1;  // rte_hash position
  bool v6 = false;
  uint8_t a6[16] = {};
};

inline uint64_t neigh_hw(const rte_ether_addr& mac, uint8_t state) {
  uint64_t v = 0;
  for (int i = 5; i >= 0; i--) v = v << 8 | mac.addr_bytes[i];
  return v | uint64_t(state) << 48;
}
inline void neigh_mac(uint64_t hw, rte_ether_addr* mac) {
  for (int i = 0; i < 6; i++) mac->addr_bytes[i] = static_cast<uint8_t>(hw >> (8 * i));
}
inline uint8_t neigh_state(uint64_t hw) {
  return static_cast<uint8_t>(hw >> 48);
}

struct NeighStats {
  uint64_t allocs = 0, destroys = 0, res_failed = 0, unres_discards = 0, probes_sent = 0;
};

// Worker → control: what arp_rcv (NeighEvent) and ndisc (NeighEvent6) learned.
struct NeighEvent {  // 16 bytes
  uint32_t ip;
  uint16_t dev;
  uint8_t kind;  // NeighEventKind
  uint8_t pad;
  uint8_t mac[6];
  uint16_t pad2;
};
static_assert(sizeof(NeighEvent) == 16);
struct NeighEvent6 {  // 32 bytes
  uint8_t a[16];
  uint16_t dev;
  uint8_t kind;
  uint8_t pad;
  uint8_t mac[6];
  uint8_t pad2[6];
};
static_assert(sizeof(NeighEvent6) == 32);
enum NeighEventKind : uint8_t { kEvRequestForUs = 1, kEvReplyToUs = 2, kEvOther = 3, kEvGarp = 4 };

// A worker's cache of IPv4 neighbour lookups (key → entry), so a burst
// looks up in the shared rte_hash only the next hops it has not seen. It
// holds entries, not their state (read from the entry each time), and is
// emptied when the control thread destroys any entry (NeighTable::gen).
struct NeighCache {
  static constexpr unsigned kSlots = 64;
  struct Slot {
    uint64_t key = 0;  // ip | dev << 32 | 1 << 63; 0 = empty
    NeighEntry* e = nullptr;
  };
  uint64_t gen = 0;
  Slot s[kSlots];
  static uint64_t key(uint32_t ip, uint16_t dev) {
    return uint64_t(ip) | uint64_t(dev) << 32 | uint64_t(1) << 63;
  }
  static unsigned slot(uint64_t k) {
    return static_cast<unsigned>((k * 0x9e3779b97f4a7c15ull) >> 58);  // top 6 bits
  }
};

// The same for IPv6 next hops (address and device in the slot).
struct NeighCache6 {
  static constexpr unsigned kSlots = 64;
  struct Slot {
    uint64_t a0 = 0, a1 = 0;  // the address's two halves, as stored in memory
    uint32_t tag = 0;         // dev | 1 << 31; 0 = empty
    NeighEntry* e = nullptr;
  };
  uint64_t gen = 0;
  Slot s[kSlots];
  static uint32_t tag(uint16_t dev) { return uint32_t(dev) | uint32_t(1) << 31; }
  static unsigned slot(uint64_t a0, uint64_t a1, uint16_t dev) {
    const uint64_t h = (a0 ^ (a1 * 0xff51afd7ed558ccdull) ^ dev) * 0x9e3779b97f4a7c15ull;
    return static_cast<unsigned>(h >> 58);  // top 6 bits
  }
};

class NeighTable {
 public:
  explicit NeighTable(L3& l3) : l3_(l3) {}
  ~NeighTable();
  NeighTable(const NeighTable&) = delete;
  NeighTable& operator=(const NeighTable&) = delete;

  // The IPv4 table and the entries: 0, or the rte_errno of the failure.
  int init();
  // The IPv6 table (when IPv6 is on, before start).
  void init6();

  NeighParams params;
  // Bumped before an entry is destroyed (and its slot reused after an RCU
  // grace period): workers empty their NeighCache when it changes.
  std::atomic<uint64_t> gen{1};
  rte_hash* hash4() const { return hash_; }
  rte_hash* hash6() const { return hash6_; }

  // ---- control thread ----
  std::string add_static(uint16_t dev, const std::string& ip, const std::string& mac);
  // `ip neigh del`: the entry of ip on dev goes (its queue is dropped): "" or why not.
  std::string remove(uint16_t dev, const std::string& ip);
  // Every entry on dev goes (the device was unregistered); returns how many.
  unsigned flush_dev(uint16_t dev);
  // A packet to resolve: from a worker's pending ring (the mbuf's
  // meta.user[0] holds the next hop, user[1..2] an IPv6 one) or made here.
  void resolve(rte_mbuf* m, uint64_t now);
  void event(const NeighEvent& ev, uint64_t now);
  void event6(const NeighEvent6& ev, uint64_t now);
  void timers(uint64_t now);
  // Frees every queued packet (shutdown).
  void drop_queues();

  std::vector<const NeighEntry*> entries() const;  // in use, sorted
  const NeighStats& stats() const { return stats_; }

 private:
  NeighEntry* find(uint32_t ip, uint16_t dev);
  NeighEntry* create(uint32_t ip, uint16_t dev, uint64_t now);
  NeighEntry* find6(const uint8_t* a, uint16_t dev);
  NeighEntry* create6(const uint8_t* a, uint16_t dev, uint64_t now);
  NeighEntry* take_slot(uint64_t now);  // a free entry, reset; nullptr when full
  void commit_slot(NeighEntry* e);      // the entry of take_slot() is now in use
  void destroy(NeighEntry* e);
  void set(NeighEntry* e, uint8_t state, const rte_ether_addr* mac, uint64_t now);
  rte_ether_addr enter(NeighEntry* e, uint8_t state);
  void resolution_failed(NeighEntry* e, uint64_t now);
  void apply_event(NeighEntry* e, uint8_t kind, const rte_ether_addr& mac, uint64_t now);
  void flush_queue(NeighEntry* e);
  void fail_queue(NeighEntry* e);
  void ctl_output(rte_mbuf* m, unsigned worker);
  void probe(NeighEntry* e, const rte_ether_addr* unicast);
  uint64_t random_reachable();

  L3& l3_;
  rte_hash* hash_ = nullptr;
  rte_hash* hash6_ = nullptr;
  std::vector<std::unique_ptr<NeighEntry>> slots_;
  std::vector<uint32_t> free_;
  std::vector<uint32_t> used_;  // indices of entries in use
  NeighStats stats_;
  IcmpLimiter rl_;  // icmp_send's limits for the host unreachables made here
  uint64_t rng_ = 88172645463325252ull;
};

}  // namespace sluice::l3
