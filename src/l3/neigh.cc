// Neighbours (net/core/neighbour.c, net/ipv4/arp.c) on the control thread.
//
// Workers look entries up in an rte_hash (lock-free readers) and read one
// 64-bit word per entry (MAC + NUD state). Everything else — creating
// entries, the state machine and its timers, the queue of packets waiting
// for resolution — lives here and is fed by two per-worker rings: `pending`
// (packets whose next hop is not resolved) and `events` (what arp_rcv
// learned). Frames this code makes (ARP probes, released packets, ICMP host
// unreachable) leave through the worker inject rings.
//
// States and timers as Linux with arp_tbl's defaults: NONE/FAILED → INCOMPLETE
// on the first packet (a broadcast probe at once, then every retrans_time,
// mcast_probes in all) → FAILED (each queued packet: ICMP 3/1, drop
// neigh_failed); REACHABLE → STALE after reachable_time (random in
// [base/2, 3·base/2)); STALE used → DELAY (delay_first_probe_time) → PROBE
// (unicast probes, ucast_probes in all) → REACHABLE on a reply, else FAILED.
// The unresolved queue is bounded by unres_qlen_bytes of truesize; the
// oldest packet goes first (unres_discards, drop neigh_queuefull).
#include "l3/neigh.hh"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include <rte_arp.h>
#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_jhash.h>

#include "core/dataplane.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {
constexpr uint32_t kMaxNeigh = 16384;

// SKB_TRUESIZE of a full-sized packet buffer: what unres_qlen_bytes counts.
inline uint64_t truesize(const rte_mbuf* m) {
  return uint64_t(m->buf_len) + sizeof(rte_mbuf);
}

rte_hash* make_hash(const char* name, uint32_t entries, uint32_t key_len) {
  rte_hash_parameters hp{};
  hp.name = name;
  hp.entries = entries;
  hp.key_len = key_len;
  hp.hash_func = rte_jhash;
  hp.socket_id = SOCKET_ID_ANY;
  hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  return rte_hash_create(&hp);
}
}  // namespace

const char* nud_name(uint8_t s) {
  switch (s) {
    case kNudNone:
      return "none";
    case kNudIncomplete:
      return "incomplete";
    case kNudReachable:
      return "reachable";
    case kNudStale:
      return "stale";
    case kNudDelay:
      return "delay";
    case kNudProbe:
      return "probe";
    case kNudFailed:
      return "failed";
    case kNudNoarp:
      return "noarp";
    case kNudPermanent:
      return "permanent";
  }
  return "?";
}

// ---- the tables -----------------------------------------------------------------------------

int NeighTable::init() {
  static std::atomic<unsigned> instances{0};
  char name[RTE_HASH_NAMESIZE];
  std::snprintf(name, sizeof name, "l3neigh%u", instances.fetch_add(1));
  hash_ = make_hash(name, kMaxNeigh, sizeof(NeighKey));
  if (hash_ == nullptr) return rte_errno;
  slots_.resize(kMaxNeigh);
  for (uint32_t i = 0; i < kMaxNeigh; i++) {
    slots_[i] = std::make_unique<NeighEntry>();
    free_.push_back(kMaxNeigh - 1 - i);
  }
  return 0;
}

void NeighTable::init6() {
  static std::atomic<unsigned> instances{0};
  char name[48];
  std::snprintf(name, sizeof name, "l3neigh6_%u", instances.fetch_add(1));
  hash6_ = make_hash(name, 4096, sizeof(NeighKey6));
}

NeighTable::~NeighTable() {
  rte_hash_free(hash_);
  rte_hash_free(hash6_);
}

void NeighTable::drop_queues() {
  for (auto& e : slots_) {
    for (rte_mbuf* m : e->queue) rte_pktmbuf_free(m);
    e->queue.clear();
    e->queue_bytes = 0;
  }
}

uint64_t NeighTable::random_reachable() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  uint64_t base = params.base_reachable_ms;
  return base / 2 + rng_ % (base == 0 ? 1 : base);  // neigh_rand_reach_time
}

// ---- entries --------------------------------------------------------------------------------

NeighEntry* NeighTable::find(uint32_t ip, uint16_t dev) {
  NeighKey k{ip, dev, 0};
  void* data = nullptr;
  if (rte_hash_lookup_data(hash_, &k, &data) < 0) return nullptr;
  return static_cast<NeighEntry*>(data);
}

NeighEntry* NeighTable::find6(const uint8_t* a, uint16_t dev) {
  if (hash6_ == nullptr) return nullptr;
  NeighKey6 k{};
  std::memcpy(k.a, a, 16);
  k.dev = dev;
  void* data = nullptr;
  if (rte_hash_lookup_data(hash6_, &k, &data) < 0) return nullptr;
  return static_cast<NeighEntry*>(data);
}

NeighEntry* NeighTable::take_slot(uint64_t now) {
  NeighEntry* e = slots_[free_.back()].get();
  e->state = kNudNone;
  e->hw.store(0, std::memory_order_relaxed);
  e->used.store(0, std::memory_order_relaxed);
  e->probes = 0;
  e->updated_ms = e->confirmed_ms = now;
  e->next_ms = 0;
  e->queue_bytes = 0;
  return e;
}

void NeighTable::commit_slot(NeighEntry* e) {
  e->in_use = true;
  used_.push_back(free_.back());
  free_.pop_back();
  stats_.allocs++;
}

NeighEntry* NeighTable::create(uint32_t ip, uint16_t dev, uint64_t now) {
  if (free_.empty()) return nullptr;
  NeighEntry* e = take_slot(now);
  e->key = NeighKey{ip, dev, 0};
  e->v6 = false;
  std::memset(e->a6, 0, 16);
  int32_t pos = rte_hash_add_key_data(hash_, &e->key, e);
  if (pos < 0) return nullptr;
  e->pos = rte_hash_lookup(hash_, &e->key);
  commit_slot(e);
  return e;
}

NeighEntry* NeighTable::create6(const uint8_t* a, uint16_t dev, uint64_t now) {
  if (free_.empty() || hash6_ == nullptr) return nullptr;
  NeighEntry* e = take_slot(now);
  e->key = NeighKey{0, dev, 0};
  e->v6 = true;
  std::memcpy(e->a6, a, 16);
  NeighKey6 k{};
  std::memcpy(k.a, a, 16);
  k.dev = dev;
  if (rte_hash_add_key_data(hash6_, &k, e) < 0) return nullptr;
  commit_slot(e);
  return e;
}

void NeighTable::destroy(NeighEntry* e) {
  Dataplane& dp = l3_.dp;
  for (rte_mbuf* m : e->queue) dp.ctl_drop(m, e->key.dev, DropReason::neigh_failed);
  e->queue.clear();
  e->queue_bytes = 0;
  NeighKey6 k6{};
  std::memcpy(k6.a, e->a6, 16);
  k6.dev = e->key.dev;
  rte_hash* h = e->v6 ? hash6_ : hash_;
  int32_t pos = e->v6 ? rte_hash_del_key(h, &k6) : rte_hash_del_key(h, &e->key);
  gen.fetch_add(1, std::memory_order_seq_cst);  // workers drop cached entries
  // Lock-free table: the key slot and the entry are reused only after every
  // worker has passed a quiescent state.
  dp.rcu.synchronize();
  if (pos >= 0) rte_hash_free_key_with_position(h, pos);
  e->in_use = false;
  e->state = kNudNone;
  e->hw.store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < used_.size(); i++) {
    if (slots_[used_[i]].get() == e) {
      free_.push_back(used_[i]);
      used_[i] = used_.back();
      used_.pop_back();
      break;
    }
  }
  stats_.destroys++;
}

// neigh_update: new state (and MAC); connected states release the queue.
void NeighTable::set(NeighEntry* e, uint8_t state, const rte_ether_addr* mac, uint64_t now) {
  rte_ether_addr cur;
  neigh_mac(e->hw.load(std::memory_order_relaxed), &cur);
  const rte_ether_addr& use = mac != nullptr ? *mac : cur;
  if (mac != nullptr && !rte_is_same_ether_addr(mac, &cur)) e->updated_ms = now;
  e->state = state;
  e->hw.store(neigh_hw(use, state), std::memory_order_release);
  e->updated_ms = now;
  if (state == kNudReachable) {
    e->confirmed_ms = now;
    e->reachable_ms = random_reachable();
  }
  if (state & kNudValid) flush_queue(e);
}

// A timer transition that keeps the entry's MAC; returns that MAC.
rte_ether_addr NeighTable::enter(NeighEntry* e, uint8_t state) {
  rte_ether_addr mac;
  neigh_mac(e->hw.load(), &mac);
  e->state = state;
  e->hw.store(neigh_hw(mac, state), std::memory_order_release);
  return mac;
}

// INCOMPLETE or PROBE ran out of probes: FAILED, and the queue is answered.
void NeighTable::resolution_failed(NeighEntry* e, uint64_t now) {
  e->state = kNudFailed;
  e->hw.store(neigh_hw(rte_ether_addr{}, kNudFailed), std::memory_order_release);
  e->updated_ms = now;
  stats_.res_failed++;
  fail_queue(e);
}

std::vector<const NeighEntry*> NeighTable::entries() const {
  std::vector<const NeighEntry*> v;
  for (uint32_t i : used_) v.push_back(slots_[i].get());
  std::sort(v.begin(), v.end(), [](const NeighEntry* a, const NeighEntry* b) {
    if (a->v6 != b->v6) return b->v6;
    if (a->key.dev != b->key.dev) return a->key.dev < b->key.dev;
    return a->v6 ? std::memcmp(a->a6, b->a6, 16) < 0 : a->key.ip < b->key.ip;
  });
  return v;
}

std::string NeighTable::add_static(uint16_t dev, const std::string& ip, const std::string& mac) {
  rte_ether_addr m;
  if (rte_ether_unformat_addr(mac.c_str(), &m) != 0) return "bad MAC '" + mac + "'";
  uint32_t a;
  NeighEntry* e = nullptr;
  if (parse_ipv4(ip, &a)) {
    e = find(a, dev);
    if (e == nullptr) e = create(a, dev, l3_.now_ms());
  } else {
    uint8_t a6[16];
    if (inet_pton(AF_INET6, ip.c_str(), a6) != 1) return "bad neighbour address '" + ip + "'";
    if (hash6_ == nullptr) return "IPv6 neighbour " + ip + " without IPv6 (no IPv6 address)";
    e = find6(a6, dev);
    if (e == nullptr) e = create6(a6, dev, l3_.now_ms());
  }
  if (e == nullptr) return "neighbour table full";
  set(e, kNudPermanent, &m, l3_.now_ms());
  return "";
}

std::string NeighTable::remove(uint16_t dev, const std::string& ip) {
  uint32_t a;
  NeighEntry* e = nullptr;
  if (parse_ipv4(ip, &a)) {
    e = find(a, dev);
  } else {
    uint8_t a6[16];
    if (inet_pton(AF_INET6, ip.c_str(), a6) != 1) return "bad neighbour address '" + ip + "'";
    if (hash6_ != nullptr) e = find6(a6, dev);
  }
  if (e == nullptr) return "no neighbour " + ip + " (No such file or directory)";
  destroy(e);
  return "";
}

unsigned NeighTable::flush_dev(uint16_t dev) {
  std::vector<NeighEntry*> gone;
  for (uint32_t i : used_)
    if (slots_[i]->key.dev == dev) gone.push_back(slots_[i].get());
  for (NeighEntry* e : gone) destroy(e);
  return static_cast<unsigned>(gone.size());
}

// ---- queued packets ---------------------------------------------------------------------------

// Rewrites the Ethernet header from the (now valid) entry and sends what waited.
void NeighTable::flush_queue(NeighEntry* e) {
  if (e->queue.empty()) return;
  Device* d = l3_.dp.net.dev(e->key.dev);
  rte_ether_addr mac;
  neigh_mac(e->hw.load(std::memory_order_relaxed), &mac);
  while (!e->queue.empty()) {
    rte_mbuf* m = e->queue.front();
    e->queue.pop_front();
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    eth->dst_addr = mac;
    if (d != nullptr) eth->src_addr = d->mac;
    eth->ether_type = rte_cpu_to_be_16(e->v6 ? kEthPIpv6 : kEthPIp);
    unsigned worker = static_cast<unsigned>(meta(m).user[0] >> 48);
    meta(m).dev = e->key.dev;
    l3_.inject(m, worker);
  }
  e->queue_bytes = 0;
}

// neigh_invalidate: every queued packet gets ICMP host unreachable (rate
// limited like any icmp_send) and is dropped.
void NeighTable::fail_queue(NeighEntry* e) {
  Dataplane& dp = l3_.dp;
  if (e->v6) {  // (ICMPv6 address unreachable is not sent by this build)
    while (!e->queue.empty()) {
      dp.ctl_drop(e->queue.front(), e->key.dev, DropReason::neigh_failed);
      e->queue.pop_front();
    }
    e->queue_bytes = 0;
    return;
  }
  uint64_t now = l3_.now_ms();
  while (!e->queue.empty()) {
    rte_mbuf* m = e->queue.front();
    e->queue.pop_front();
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
    uint32_t src = rte_be_to_cpu_32(ip->src_addr);
    const Snapshot* s = l3_.snap();
    uint64_t nh = 0;
    rte_fib_lookup_bulk(s->fib, &src, &nh, 1);
    if (nh != 0 && rl_.global_allow(now) && rl_.xrlim_allow(src, now)) {
      uint32_t from = l3_.addrs.source_for(s->nh[nh].dev, src);
      if (rte_mbuf* icmp = icmp_error(l3_.ctl_pool(), m, 3, 1, 0, from, 0))
        ctl_output(icmp, static_cast<unsigned>(meta(m).user[0] >> 48));
    }
    dp.ctl_drop(m, e->key.dev, DropReason::neigh_failed);
  }
  e->queue_bytes = 0;
}

// A packet built on the control thread: route, then neighbour (valid: out it
// goes; else it waits on the entry like any other).
void NeighTable::ctl_output(rte_mbuf* m, unsigned worker) {
  auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
  uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
  const Snapshot* s = l3_.snap();
  uint64_t nh = 0;
  rte_fib_lookup_bulk(s->fib, &dst, &nh, 1);
  if (nh == 0 || nh >= s->nh.size()) {
    l3_.dp.ctl_drop(m, kNoDev, DropReason::ip_outnoroutes);
    return;
  }
  const NextHop& h = s->nh[nh];
  uint32_t target = h.gw != 0 ? h.gw : dst;
  meta(m).user[0] = uint64_t(target) | uint64_t(h.dev) << 32 | uint64_t(worker) << 48;
  resolve(m, l3_.now_ms());
}

// ---- the state machine --------------------------------------------------------------------

void NeighTable::resolve(rte_mbuf* m, uint64_t now) {
  uint64_t u = meta(m).user[0];
  uint32_t ip = static_cast<uint32_t>(u);
  uint16_t dev = static_cast<uint16_t>(u >> 32);
  bool v6 = (u >> 63) & 1;
  uint8_t a6[16];
  std::memcpy(a6, &meta(m).user[1], 16);
  if (l3_.dp.net.dev(dev) == nullptr) {  // queued before its device was unregistered
    l3_.dp.ctl_drop(m, dev, DropReason::neigh_failed);
    return;
  }
  NeighEntry* e = v6 ? find6(a6, dev) : find(ip, dev);
  if (e == nullptr) e = v6 ? create6(a6, dev, now) : create(ip, dev, now);
  if (e == nullptr) {
    l3_.dp.ctl_drop(m, dev, DropReason::neigh_createfail);
    return;
  }
  e->queue.push_back(m);
  e->queue_bytes += truesize(m);
  while (e->queue_bytes > params.unres_qlen_bytes && e->queue.size() > 1) {
    rte_mbuf* old = e->queue.front();
    e->queue.pop_front();
    e->queue_bytes -= truesize(old);
    stats_.unres_discards++;
    l3_.dp.ctl_drop(old, dev, DropReason::neigh_queuefull);
  }
  if (e->state & kNudValid) {  // resolved since the worker looked
    flush_queue(e);
    return;
  }
  if (e->state == kNudNone || e->state == kNudFailed) {
    // __neigh_event_send: INCOMPLETE, first probe now, timer at retrans_time.
    e->state = kNudIncomplete;
    e->hw.store(neigh_hw(rte_ether_addr{}, kNudIncomplete), std::memory_order_release);
    e->updated_ms = now;
    e->probes = 1;
    e->next_ms = now + params.retrans_ms;
    probe(e, nullptr);
  }
}

void NeighTable::probe(NeighEntry* e, const rte_ether_addr* unicast) {
  bool sent = e->v6 ? ndisc_send_ns(l3_, e->key.dev, e->a6, unicast)
                    : arp_send(l3_, e->key.dev, RTE_ARP_OP_REQUEST,
                               l3_.addrs.source_for(e->key.dev, e->key.ip), unicast, e->key.ip);
  if (sent) stats_.probes_sent++;
}

void NeighTable::event(const NeighEvent& ev, uint64_t now) {
  rte_ether_addr mac;
  std::memcpy(mac.addr_bytes, ev.mac, 6);
  if (l3_.dp.net.dev(ev.dev) == nullptr) return;  // learned before its device was unregistered
  NeighEntry* e = find(ev.ip, ev.dev);
  if (e == nullptr && ev.kind == kEvRequestForUs) e = create(ev.ip, ev.dev, now);
  if (e != nullptr) apply_event(e, ev.kind, mac, now);
}

void NeighTable::event6(const NeighEvent6& ev, uint64_t now) {
  rte_ether_addr mac;
  std::memcpy(mac.addr_bytes, ev.mac, 6);
  if (l3_.dp.net.dev(ev.dev) == nullptr) return;
  NeighEntry* e = find6(ev.a, ev.dev);
  if (e == nullptr && ev.kind == kEvRequestForUs) e = create6(ev.a, ev.dev, now);
  if (e != nullptr) apply_event(e, ev.kind, mac, now);
}

void NeighTable::apply_event(NeighEntry* e, uint8_t kind, const rte_ether_addr& mac, uint64_t now) {
  if (e->state == kNudPermanent) return;
  rte_ether_addr cur;
  neigh_mac(e->hw.load(), &cur);
  if (kind == kEvRequestForUs) {
    // neigh_event_ns: create or refresh as STALE (a REACHABLE entry with the same MAC stays).
    if ((e->state & (kNudReachable | kNudDelay | kNudProbe)) && rte_is_same_ether_addr(&cur, &mac))
      return;
    set(e, kNudStale, &mac, now);
    return;
  }
  // Replies and other requests only update an entry that exists (arp_accept = 0).
  bool same = rte_is_same_ether_addr(&cur, &mac) && (e->state & kNudValid);
  bool override =
      kind == kEvGarp || now >= e->updated_ms + params.locktime_ms || !(e->state & kNudValid);
  if (kind == kEvReplyToUs) {
    if (!same && !override) return;
    set(e, kNudReachable, &mac, now);
    return;
  }
  if (same) return;  // STALE with the same address changes nothing
  if (override) set(e, kNudStale, &mac, now);
}

void NeighTable::timers(uint64_t now) {
  std::vector<NeighEntry*> gc;
  for (size_t i = 0; i < used_.size(); i++) {
    NeighEntry* e = slots_[used_[i]].get();
    switch (e->state) {
      case kNudIncomplete:
        if (now < e->next_ms) break;
        if (e->probes < params.mcast_probes) {
          e->probes++;
          e->next_ms = now + params.retrans_ms;
          probe(e, nullptr);
        } else {
          resolution_failed(e, now);
        }
        break;
      case kNudReachable:
        if (now >= e->confirmed_ms + e->reachable_ms) {
          e->used.store(0, std::memory_order_relaxed);
          enter(e, kNudStale);
          e->updated_ms = now;
        }
        break;
      case kNudStale:
        if (e->used.load(std::memory_order_relaxed)) {
          e->used.store(0, std::memory_order_relaxed);
          enter(e, kNudDelay);
          e->next_ms = now + params.delay_probe_ms;
        } else if (used_.size() > params.gc_thresh1 && now >= e->updated_ms + params.gc_stale_ms) {
          gc.push_back(e);
        }
        break;
      case kNudDelay:
        if (now < e->next_ms) break;
        if (e->confirmed_ms + e->reachable_ms > now) {
          set(e, kNudReachable, nullptr, now);
        } else {
          rte_ether_addr mac = enter(e, kNudProbe);
          e->probes = 1;
          e->next_ms = now + params.retrans_ms;
          probe(e, &mac);
        }
        break;
      case kNudProbe:
        if (now < e->next_ms) break;
        if (e->probes < params.ucast_probes) {
          rte_ether_addr mac;
          neigh_mac(e->hw.load(), &mac);
          e->probes++;
          e->next_ms = now + params.retrans_ms;
          probe(e, &mac);
        } else {
          resolution_failed(e, now);
        }
        break;
      case kNudFailed:
        if (used_.size() > params.gc_thresh1 && now >= e->updated_ms + params.gc_stale_ms)
          gc.push_back(e);
        break;
      default:
        break;
    }
  }
  for (NeighEntry* e : gc) destroy(e);
}

}  // namespace sluice::l3
