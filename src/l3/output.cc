// neigh_output for both families (output.hh): post_routing, the neighbour,
// the wire. Written once over the address type; the two families differ only
// in how a burst finds its entries (neigh_lookup), in IPv6's multicast MAC
// (l2_dst) and in what the control thread is told (to_resolver).
#include "l3/output.hh"

#include <algorithm>

#include <rte_byteorder.h>
#include <rte_hash.h>
#include <rte_ring.h>

#include "core/netif.hh"
#include "hooks/hooks.hh"
#include "l3/ipv6.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {

template <class A>
struct Family;
template <>
struct Family<uint32_t> {
  static constexpr uint8_t kPostRouting = SLUICE_IPV4_POST_ROUTING;
  static constexpr uint16_t kEtherType = kEthPIp;
};
template <>
struct Family<Addr6> {
  static constexpr uint8_t kPostRouting = SLUICE_IPV6_POST_ROUTING;
  static constexpr uint16_t kEtherType = kEthPIpv6;
};

// [ipv4|ipv6/post_routing] NF_INET_POST_ROUTING (out = the route's device),
// on what ip_output made (after fragmentation here, unlike Linux): o keeps
// what the hooks accepted, in order.
template <class A>
void post_routing(Ctx& c, OutVec<A>& o) {
  uint16_t k = 0;
  for (uint16_t base = 0; base < o.n; base += kBurst) {
    uint16_t cnt = static_cast<uint16_t>(std::min<unsigned>(kBurst, o.n - base));
    rte_mbuf* v[kBurst];
    uint16_t devs[kBurst], idx[kBurst];
    A tg[kBurst];
    for (uint16_t i = 0; i < cnt; i++) {
      v[i] = o.pkts[base + i];
      devs[i] = o.dev[base + i];
      tg[i] = o.target[base + i];
    }
    hooks::State st{Family<A>::kPostRouting, static_cast<uint16_t>(c.w.id), kNoDev, kNoDev, devs};
    uint16_t kept = c.l3.hooks->run(c.w, st, v, cnt, kNoDev, idx);
    for (uint16_t i = 0; i < kept; i++) {
      o.pkts[k] = v[i];
      o.dev[k] = devs[idx[i]];
      o.target[k++] = tg[idx[i]];
    }
  }
  o.n = k;
}

// The misses of a worker cache in one bulk lookup: each entry found goes to
// data[miss[j]] and its bit into *hit, and fill(j, entry) caches it.
template <class Fill>
void lookup_misses(rte_hash* h, const void* const* kp, uint16_t nm, const uint16_t* miss,
                   void** data, uint64_t* hit, Fill fill) {
  if (nm == 0) return;
  void* md[kOutMax];
  uint64_t mhit = 0;
  rte_hash_lookup_bulk_data(h, const_cast<const void**>(kp), nm, &mhit, md);
  for (uint16_t j = 0; j < nm; j++) {
    if (!(mhit & (uint64_t(1) << j))) continue;
    data[miss[j]] = md[j];
    *hit |= uint64_t(1) << miss[j];
    fill(j, static_cast<NeighEntry*>(md[j]));
  }
}

// The entries of a burst: bit i of the result set = data[i] is packet i's.
// IPv4: the worker's cache first; one bulk lookup for the rest.
uint64_t neigh_lookup(Ctx& c, const Out4& o, void** data) {
  NeighCache& nc = c.ws.ncache;
  if (const uint64_t gen = c.l3.neigh.gen.load(std::memory_order_acquire); nc.gen != gen) {
    nc = NeighCache{};
    nc.gen = gen;
  }
  NeighKey keys[kOutMax];
  const void* kp[kOutMax];
  uint16_t miss[kOutMax];
  uint16_t nm = 0;
  uint64_t hit = 0;
  for (uint16_t i = 0; i < o.n; i++) {
    const uint64_t k = NeighCache::key(o.target[i], o.dev[i]);
    const NeighCache::Slot& sl = nc.s[NeighCache::slot(k)];
    if (sl.key == k) {
      data[i] = sl.e;
      hit |= uint64_t(1) << i;
      continue;
    }
    keys[nm] = NeighKey{o.target[i], o.dev[i], 0};
    kp[nm] = &keys[nm];
    miss[nm++] = i;
  }
  lookup_misses(c.l3.neigh.hash4(), kp, nm, miss, data, &hit, [&](uint16_t j, NeighEntry* e) {
    const uint64_t k = NeighCache::key(keys[j].ip, keys[j].dev);
    nc.s[NeighCache::slot(k)] = NeighCache::Slot{k, e};
  });
  return hit;
}

// IPv6: the same, with the worker's NeighCache6.
uint64_t neigh_lookup(Ctx& c, const Out6& o, void** data) {
  NeighCache6& nc = c.ws.ncache6;
  if (const uint64_t gen = c.l3.neigh.gen.load(std::memory_order_acquire); nc.gen != gen) {
    nc = NeighCache6{};
    nc.gen = gen;
  }
  NeighKey6 keys[kOutMax];
  const void* kp[kOutMax];
  uint16_t miss[kOutMax];
  uint16_t nm = 0;
  uint64_t hit = 0;
  for (uint16_t i = 0; i < o.n; i++) {
    uint64_t a[2];
    std::memcpy(a, o.target[i].data(), 16);
    const uint32_t tag = NeighCache6::tag(o.dev[i]);
    const NeighCache6::Slot& sl = nc.s[NeighCache6::slot(a[0], a[1], o.dev[i])];
    if (sl.tag == tag && sl.a0 == a[0] && sl.a1 == a[1]) {
      data[i] = sl.e;
      hit |= uint64_t(1) << i;
      continue;
    }
    std::memcpy(keys[nm].a, a, 16);
    keys[nm].dev = o.dev[i];
    keys[nm].zero = 0;
    kp[nm] = &keys[nm];
    miss[nm++] = i;
  }
  lookup_misses(c.l3.neigh.hash6(), kp, nm, miss, data, &hit, [&](uint16_t j, NeighEntry* e) {
    uint64_t a[2];
    std::memcpy(a, keys[j].a, 16);
    nc.s[NeighCache6::slot(a[0], a[1], keys[j].dev)] =
        NeighCache6::Slot{a[0], a[1], NeighCache6::tag(keys[j].dev), e};
  });
  return hit;
}

// neigh_output's fast path: a valid entry (NUD_VALID) gives the MAC; a
// STALE one is marked used (→ DELAY on the control thread).
inline bool neigh_ha(NeighEntry* e, rte_ether_addr* dst) {
  if (e == nullptr) return false;
  const uint64_t hw = e->hw.load(std::memory_order_acquire);
  const uint8_t st = neigh_state(hw);
  if (!(st & kNudValid)) return false;
  if (st == kNudStale && !e->used.load(std::memory_order_relaxed))
    e->used.store(1, std::memory_order_relaxed);
  neigh_mac(hw, dst);
  return true;
}

// The destination MAC, or false: the packet must wait for its neighbour.
inline bool l2_dst(uint32_t, NeighEntry* e, rte_ether_addr* dst) {
  return neigh_ha(e, dst);
}
inline bool l2_dst(const Addr6& t, NeighEntry* e, rte_ether_addr* dst) {
  if (is_mcast6(t.data())) {  // ndisc_mc_map
    mcast_mac(t.data(), dst);
    return true;
  }
  return neigh_ha(e, dst);
}

// What NeighTable::resolve reads: the next hop, its device, this worker.
inline void to_resolver(PktMeta& md, uint32_t t, uint16_t dev, unsigned worker) {
  md.user[0] = uint64_t(t) | uint64_t(dev) << 32 | uint64_t(worker) << 48;
}
inline void to_resolver(PktMeta& md, const Addr6& t, uint16_t dev, unsigned worker) {
  md.user[0] = uint64_t(dev) << 32 | uint64_t(worker) << 48 | uint64_t(1) << 63;
  std::memcpy(&md.user[1], t.data(), 16);
}

// neigh_output's record for the traced packets of a burst whose neighbour
// was valid (meta dev: the output device; the destination MAC is written).
[[gnu::noinline, gnu::cold]] static void trace_ready(Worker& w, rte_mbuf* const* ready,
                                                     uint16_t n) {
  for (uint16_t i = 0; i < n; i++) {
    const rte_mbuf* m = ready[i];
    if (!traced(m)) continue;
    const uint8_t* h = rte_pktmbuf_mtod(m, const rte_ether_hdr*)->dst_addr.addr_bytes;
    trace_rec(w, m, "neigh_output", meta(m).dev, "neighbour valid", kNoDev,
              "lladdr %02x:%02x:%02x:%02x:%02x:%02x", h[0], h[1], h[2], h[3], h[4], h[5]);
  }
}

template <class A>
void resolve_burst(Ctx& c, OutVec<A>& o) {
  if (o.n == 0) return;
  void* data[kOutMax];
  const uint64_t hit = neigh_lookup(c, o, data);
  rte_mbuf* ready[kOutMax];
  uint16_t nr = 0;
  for (uint16_t i = 0; i < o.n; i++) {
    rte_mbuf* m = o.pkts[i];
    PktMeta& md = meta(m);
    md.flags &= static_cast<uint8_t>(~kFlagVlan);
    auto* e = (hit >> i) & 1 ? static_cast<NeighEntry*>(data[i]) : nullptr;
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    if (l2_dst(o.target[i], e, &eth->dst_addr)) {
      eth->src_addr = c.w.net.dev(o.dev[i])->mac;
      eth->ether_type = rte_cpu_to_be_16(Family<A>::kEtherType);
      md.dev = o.dev[i];
      ready[nr++] = m;
      continue;
    }
    if (traced(m)) [[unlikely]] {
      trace_rec(c.w, m, "neigh_resolve_output", o.dev[i], "no valid neighbour: wait for it");
      trace_fate(c.w, m, TraceFate::queued, o.dev[i], "neigh_resolve_output",
                 "for neighbour resolution");
    }
    to_resolver(md, o.target[i], o.dev[i], c.w.id);
    if (rte_ring_enqueue(c.ws.pending, m) != 0) c.w.drop(m, o.dev[i], DropReason::neigh_queuefull);
  }
  if (SLUICE_TRACE_LIVE(c.w)) [[unlikely]]
    trace_ready(c.w, ready, nr);
  xmit_grouped(c.w, ready, nr);
  o.n = 0;
}

const StageId kStNeighOutput = stage_register("neigh-output", 460);

template <class A>
void output_burst(Ctx& c, OutVec<A>& o) {
  if (o.n == 0) return;
  StageScope scope(c.w.runtime, kStNeighOutput, o.n);
  if (c.l3.hooks != nullptr && c.l3.hooks->list(Family<A>::kPostRouting) != nullptr)
    post_routing(c, o);
  resolve_burst(c, o);
}

}  // namespace

void neigh_output(Ctx& c, Out4& o) {
  output_burst(c, o);
}
void neigh_output(Ctx& c, Out6& o) {
  output_burst(c, o);
}
void neigh_resolve(Ctx& c, Out4& o) {
  resolve_burst(c, o);
}
void neigh_resolve(Ctx& c, Out6& o) {
  resolve_burst(c, o);
}

void xmit_grouped(Worker& w, rte_mbuf** pkts, uint16_t n) {
  bool done[kOutMax] = {};
  for (uint16_t i = 0; i < n; i++) {
    if (done[i]) continue;
    uint16_t d = meta(pkts[i]).dev;
    rte_mbuf* grp[kBurst];
    uint16_t g = 0;
    for (uint16_t j = i; j < n; j++) {
      if (done[j] || meta(pkts[j]).dev != d) continue;
      done[j] = true;
      grp[g++] = pkts[j];
      if (g == kBurst) {
        dev_queue_xmit(w, *w.net.dev(d), grp, g);
        g = 0;
      }
    }
    if (g != 0) dev_queue_xmit(w, *w.net.dev(d), grp, g);
  }
}

}  // namespace sluice::l3
