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
#include <cstring>

#include <rte_byteorder.h>
#include <rte_fib.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_arp.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "hooks/hooks.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {
// SKB_TRUESIZE of a full-sized packet buffer: what unres_qlen_bytes counts.
inline uint64_t truesize(const rte_mbuf* m) {
  return uint64_t(m->buf_len) + sizeof(rte_mbuf);
}
}  // namespace

uint64_t L3::random_reachable() {
  rng_ ^= rng_ << 13;
  rng_ ^= rng_ >> 7;
  rng_ ^= rng_ << 17;
  uint64_t base = params.base_reachable_ms;
  return base / 2 + rng_ % (base == 0 ? 1 : base);  // neigh_rand_reach_time
}

NeighEntry* L3::neigh_find(uint32_t ip, uint16_t dev) {
  NeighKey k{ip, dev, 0};
  void* data = nullptr;
  if (rte_hash_lookup_data(nhash_, &k, &data) < 0) return nullptr;
  return static_cast<NeighEntry*>(data);
}

NeighEntry* L3::neigh_create(uint32_t ip, uint16_t dev, uint64_t now) {
  if (nfree_.empty()) return nullptr;
  uint32_t idx = nfree_.back();
  NeighEntry* e = nslots_[idx].get();
  e->key = NeighKey{ip, dev, 0};
  e->v6 = false;
  std::memset(e->a6, 0, 16);
  e->state = kNudNone;
  e->hw.store(0, std::memory_order_relaxed);
  e->used.store(0, std::memory_order_relaxed);
  e->probes = 0;
  e->updated_ms = e->confirmed_ms = now;
  e->next_ms = 0;
  e->queue_bytes = 0;
  int32_t pos = rte_hash_add_key_data(nhash_, &e->key, e);
  if (pos < 0) return nullptr;
  e->pos = rte_hash_lookup(nhash_, &e->key);
  e->in_use = true;
  nfree_.pop_back();
  nused_.push_back(idx);
  nstats_.allocs++;
  return e;
}

NeighEntry* L3::neigh_find6(const uint8_t* a, uint16_t dev) {
  if (nhash6_ == nullptr) return nullptr;
  NeighKey6 k{};
  std::memcpy(k.a, a, 16);
  k.dev = dev;
  void* data = nullptr;
  if (rte_hash_lookup_data(nhash6_, &k, &data) < 0) return nullptr;
  return static_cast<NeighEntry*>(data);
}

NeighEntry* L3::neigh_create6(const uint8_t* a, uint16_t dev, uint64_t now) {
  if (nfree_.empty() || nhash6_ == nullptr) return nullptr;
  uint32_t idx = nfree_.back();
  NeighEntry* e = nslots_[idx].get();
  e->key = NeighKey{0, dev, 0};
  e->v6 = true;
  std::memcpy(e->a6, a, 16);
  e->state = kNudNone;
  e->hw.store(0, std::memory_order_relaxed);
  e->used.store(0, std::memory_order_relaxed);
  e->probes = 0;
  e->updated_ms = e->confirmed_ms = now;
  e->next_ms = 0;
  e->queue_bytes = 0;
  NeighKey6 k{};
  std::memcpy(k.a, a, 16);
  k.dev = dev;
  if (rte_hash_add_key_data(nhash6_, &k, e) < 0) return nullptr;
  e->in_use = true;
  nfree_.pop_back();
  nused_.push_back(idx);
  nstats_.allocs++;
  return e;
}

void L3::neigh_destroy(NeighEntry* e) {
  for (rte_mbuf* m : e->queue) dp.ctl_drop(m, e->key.dev, DropReason::neigh_failed);
  e->queue.clear();
  e->queue_bytes = 0;
  NeighKey6 k6{};
  std::memcpy(k6.a, e->a6, 16);
  k6.dev = e->key.dev;
  rte_hash* h = e->v6 ? nhash6_ : nhash_;
  int32_t pos = e->v6 ? rte_hash_del_key(h, &k6) : rte_hash_del_key(h, &e->key);
  neigh_gen.fetch_add(1, std::memory_order_seq_cst);  // workers drop cached entries
  // Lock-free table: the key slot and the entry are reused only after every
  // worker has passed a quiescent state.
  dp.rcu.synchronize();
  if (pos >= 0) rte_hash_free_key_with_position(h, pos);
  e->in_use = false;
  e->state = kNudNone;
  e->hw.store(0, std::memory_order_relaxed);
  for (size_t i = 0; i < nused_.size(); i++) {
    if (nslots_[nused_[i]].get() == e) {
      nfree_.push_back(nused_[i]);
      nused_[i] = nused_.back();
      nused_.pop_back();
      break;
    }
  }
  nstats_.destroys++;
}

// neigh_update: new state (and MAC); connected states release the queue.
void L3::neigh_set(NeighEntry* e, uint8_t state, const rte_ether_addr* mac, uint64_t now) {
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
  if (state & kNudValid) neigh_flush_queue(e);
}

// A timer transition that keeps the entry's MAC; returns that MAC.
rte_ether_addr L3::neigh_enter(NeighEntry* e, uint8_t state) {
  rte_ether_addr mac;
  neigh_mac(e->hw.load(), &mac);
  e->state = state;
  e->hw.store(neigh_hw(mac, state), std::memory_order_release);
  return mac;
}

// INCOMPLETE or PROBE ran out of probes: FAILED, and the queue is answered.
void L3::neigh_resolution_failed(NeighEntry* e, uint64_t now) {
  e->state = kNudFailed;
  e->hw.store(neigh_hw(rte_ether_addr{}, kNudFailed), std::memory_order_release);
  e->updated_ms = now;
  nstats_.res_failed++;
  neigh_fail_queue(e);
}

std::vector<const NeighEntry*> L3::neighbours() const {
  std::vector<const NeighEntry*> v;
  for (uint32_t i : nused_) v.push_back(nslots_[i].get());
  std::sort(v.begin(), v.end(), [](const NeighEntry* a, const NeighEntry* b) {
    if (a->v6 != b->v6) return b->v6;
    if (a->key.dev != b->key.dev) return a->key.dev < b->key.dev;
    return a->v6 ? std::memcmp(a->a6, b->a6, 16) < 0 : a->key.ip < b->key.ip;
  });
  return v;
}

std::string L3::add_static_neigh(Device& d, const std::string& ip, const std::string& mac) {
  uint32_t a;
  if (!parse_ipv4(ip, &a)) return "bad neighbour address '" + ip + "'";
  rte_ether_addr m;
  if (rte_ether_unformat_addr(mac.c_str(), &m) != 0) return "bad MAC '" + mac + "'";
  NeighEntry* e = neigh_find(a, d.index);
  if (e == nullptr) e = neigh_create(a, d.index, now_ms());
  if (e == nullptr) return "neighbour table full";
  neigh_set(e, kNudPermanent, &m, now_ms());
  return "";
}

// ---- frames -----------------------------------------------------------------------------

void L3::send_arp(uint16_t dev, uint16_t op, uint32_t sip, const rte_ether_addr* tha_unicast,
                  uint32_t tip) {
  Device* d = dp.net.dev(dev);
  rte_mempool* mp = ctl_pool();
  if (d == nullptr || mp == nullptr) return;
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return;
  auto* eth = reinterpret_cast<rte_ether_hdr*>(
      rte_pktmbuf_append(m, sizeof(rte_ether_hdr) + sizeof(rte_arp_hdr)));
  auto* arp = reinterpret_cast<rte_arp_hdr*>(eth + 1);
  static const rte_ether_addr bcast = {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
  eth->dst_addr = tha_unicast != nullptr ? *tha_unicast : bcast;
  eth->src_addr = d->mac;
  eth->ether_type = rte_cpu_to_be_16(kEthPArp);
  arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
  arp->arp_protocol = rte_cpu_to_be_16(kEthPIp);
  arp->arp_hlen = 6;
  arp->arp_plen = 4;
  arp->arp_opcode = rte_cpu_to_be_16(op);
  arp->arp_data.arp_sha = d->mac;
  arp->arp_data.arp_sip = rte_cpu_to_be_32(sip);
  std::memset(&arp->arp_data.arp_tha, 0, 6);  // arp_solicit: target hardware address zero
  arp->arp_data.arp_tip = rte_cpu_to_be_32(tip);
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  meta(m).dev = dev;
  nstats_.probes_sent++;
  if (hooks != nullptr && hooks->list(SLUICE_ARP_OUT) != nullptr)
    hooks->run_on_worker(SLUICE_ARP_OUT, m, kNoDev, dev, 0);  // arp_xmit: NF_ARP_OUT
  else
    inject(m, 0);
}

// Rewrites the Ethernet header from the (now valid) entry and sends what waited.
void L3::neigh_flush_queue(NeighEntry* e) {
  if (e->queue.empty()) return;
  Device* d = dp.net.dev(e->key.dev);
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
    inject(m, worker);
  }
  e->queue_bytes = 0;
}

// neigh_invalidate: every queued packet gets ICMP host unreachable (rate
// limited like any icmp_send) and is dropped.
void L3::neigh_fail_queue(NeighEntry* e) {
  if (e->v6) {  // (ICMPv6 address unreachable is not sent by this build)
    while (!e->queue.empty()) {
      dp.ctl_drop(e->queue.front(), e->key.dev, DropReason::neigh_failed);
      e->queue.pop_front();
    }
    e->queue_bytes = 0;
    return;
  }
  uint64_t now = now_ms();
  while (!e->queue.empty()) {
    rte_mbuf* m = e->queue.front();
    e->queue.pop_front();
    const auto* ip = rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
    uint32_t src = rte_be_to_cpu_32(ip->src_addr);
    const Snapshot* s = snap();
    uint64_t nh = 0;
    rte_fib_lookup_bulk(s->fib, &src, &nh, 1);
    if (nh != 0 && ctl_rl.global_allow(now) && ctl_rl.xrlim_allow(src, now)) {
      uint32_t from = source_for(s->nh[nh].dev, src);
      if (rte_mbuf* icmp = icmp_error(ctl_pool(), m, 3, 1, 0, from, 0))
        ctl_output(icmp, static_cast<unsigned>(meta(m).user[0] >> 48));
    }
    dp.ctl_drop(m, e->key.dev, DropReason::neigh_failed);
  }
  e->queue_bytes = 0;
}

// A packet built on the control thread: route, then neighbour (valid: out it
// goes; else it waits on the entry like any other).
void L3::ctl_output(rte_mbuf* m, unsigned worker) {
  auto* ip = rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
  uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
  const Snapshot* s = snap();
  uint64_t nh = 0;
  rte_fib_lookup_bulk(s->fib, &dst, &nh, 1);
  if (nh == 0 || nh >= s->nh.size()) {
    dp.ctl_drop(m, kNoDev, DropReason::ip_outnoroutes);
    return;
  }
  const NextHop& h = s->nh[nh];
  uint32_t target = h.gw != 0 ? h.gw : dst;
  meta(m).user[0] = uint64_t(target) | uint64_t(h.dev) << 32 | uint64_t(worker) << 48;
  resolve(m, now_ms());
}

// ---- the state machine --------------------------------------------------------------------

void L3::resolve(rte_mbuf* m, uint64_t now) {
  uint64_t u = meta(m).user[0];
  uint32_t ip = static_cast<uint32_t>(u);
  uint16_t dev = static_cast<uint16_t>(u >> 32);
  bool v6 = (u >> 63) & 1;
  uint8_t a6[16];
  std::memcpy(a6, &meta(m).user[1], 16);
  NeighEntry* e = v6 ? neigh_find6(a6, dev) : neigh_find(ip, dev);
  if (e == nullptr) e = v6 ? neigh_create6(a6, dev, now) : neigh_create(ip, dev, now);
  if (e == nullptr) {
    dp.ctl_drop(m, dev, DropReason::neigh_createfail);
    return;
  }
  e->queue.push_back(m);
  e->queue_bytes += truesize(m);
  while (e->queue_bytes > params.unres_qlen_bytes && e->queue.size() > 1) {
    rte_mbuf* old = e->queue.front();
    e->queue.pop_front();
    e->queue_bytes -= truesize(old);
    nstats_.unres_discards++;
    dp.ctl_drop(old, dev, DropReason::neigh_queuefull);
  }
  if (e->state & kNudValid) {  // resolved since the worker looked
    neigh_flush_queue(e);
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

void L3::probe(NeighEntry* e, const rte_ether_addr* unicast) {
  if (e->v6)
    send_ns(e->key.dev, e->a6, unicast);
  else
    send_arp(e->key.dev, RTE_ARP_OP_REQUEST, source_for(e->key.dev, e->key.ip), unicast, e->key.ip);
}

void L3::neigh_event(const NeighEvent& ev, uint64_t now) {
  rte_ether_addr mac;
  std::memcpy(mac.addr_bytes, ev.mac, 6);
  NeighEntry* e = neigh_find(ev.ip, ev.dev);
  if (e == nullptr && ev.kind == kEvRequestForUs) e = neigh_create(ev.ip, ev.dev, now);
  if (e != nullptr) neigh_apply_event(e, ev.kind, mac, now);
}

void L3::neigh_event6(const NeighEvent6& ev, uint64_t now) {
  rte_ether_addr mac;
  std::memcpy(mac.addr_bytes, ev.mac, 6);
  NeighEntry* e = neigh_find6(ev.a, ev.dev);
  if (e == nullptr && ev.kind == kEvRequestForUs) e = neigh_create6(ev.a, ev.dev, now);
  if (e != nullptr) neigh_apply_event(e, ev.kind, mac, now);
}

void L3::neigh_apply_event(NeighEntry* e, uint8_t kind, const rte_ether_addr& mac, uint64_t now) {
  if (e->state == kNudPermanent) return;
  rte_ether_addr cur;
  neigh_mac(e->hw.load(), &cur);
  if (kind == kEvRequestForUs) {
    // neigh_event_ns: create or refresh as STALE (a REACHABLE entry with the same MAC stays).
    if ((e->state & (kNudReachable | kNudDelay | kNudProbe)) && rte_is_same_ether_addr(&cur, &mac))
      return;
    neigh_set(e, kNudStale, &mac, now);
    return;
  }
  // Replies and other requests only update an entry that exists (arp_accept = 0).
  bool same = rte_is_same_ether_addr(&cur, &mac) && (e->state & kNudValid);
  bool override =
      kind == kEvGarp || now >= e->updated_ms + params.locktime_ms || !(e->state & kNudValid);
  if (kind == kEvReplyToUs) {
    if (!same && !override) return;
    neigh_set(e, kNudReachable, &mac, now);
    return;
  }
  if (same) return;  // STALE with the same address changes nothing
  if (override) neigh_set(e, kNudStale, &mac, now);
}

void L3::neigh_timers(uint64_t now) {
  std::vector<NeighEntry*> gc;
  for (size_t i = 0; i < nused_.size(); i++) {
    NeighEntry* e = nslots_[nused_[i]].get();
    switch (e->state) {
      case kNudIncomplete:
        if (now < e->next_ms) break;
        if (e->probes < params.mcast_probes) {
          e->probes++;
          e->next_ms = now + params.retrans_ms;
          probe(e, nullptr);
        } else {
          neigh_resolution_failed(e, now);
        }
        break;
      case kNudReachable:
        if (now >= e->confirmed_ms + e->reachable_ms) {
          e->used.store(0, std::memory_order_relaxed);
          neigh_enter(e, kNudStale);
          e->updated_ms = now;
        }
        break;
      case kNudStale:
        if (e->used.load(std::memory_order_relaxed)) {
          e->used.store(0, std::memory_order_relaxed);
          neigh_enter(e, kNudDelay);
          e->next_ms = now + params.delay_probe_ms;
        } else if (nused_.size() > params.gc_thresh1 && now >= e->updated_ms + params.gc_stale_ms) {
          gc.push_back(e);
        }
        break;
      case kNudDelay:
        if (now < e->next_ms) break;
        if (e->confirmed_ms + e->reachable_ms > now) {
          neigh_set(e, kNudReachable, nullptr, now);
        } else {
          rte_ether_addr mac = neigh_enter(e, kNudProbe);
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
          neigh_resolution_failed(e, now);
        }
        break;
      case kNudFailed:
        if (nused_.size() > params.gc_thresh1 && now >= e->updated_ms + params.gc_stale_ms)
          gc.push_back(e);
        break;
      default:
        break;
    }
  }
  for (NeighEntry* e : gc) neigh_destroy(e);
}

}  // namespace sluice::l3
