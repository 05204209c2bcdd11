// The receive path: Linux's __netif_receive_skb_core, burst-wise.
//
// A burst enters on one port. Each round runs over a vector of packets that
// are all on the same device: bookkeeping and in-band VLAN untag → taps
// (namespace, then device; newest first) → ingress actions → VLAN demux →
// rx_handler. Packets whose round ends on a new device (VLAN sub-device,
// rx_handler ANOTHER) are regrouped by device and make their next round
// together; the rest go through the residual-VLAN rule to protocol delivery.
// The events of each packet happen in the kernel's order; only the loop nest
// differs (spec: ../shared/spec/linux-rx.md §1–2).
#include "core/netif.hh"

#include <algorithm>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_cycles.h>
#include <rte_ether.h>

namespace sluice {
namespace {

constexpr uint16_t kEthP8021Q = 0x8100;
constexpr uint16_t kEthP8021AD = 0x88a8;
constexpr uint16_t kEthP8023 = 0x0001;  // raw 802.3 (Novell)
constexpr uint16_t kEthP8022 = 0x0004;  // 802.2 LLC
constexpr uint16_t kEthP8023Min = 0x0600;

// Linux's pt_prev for the packets of a round: a tap ran and nothing has
// flushed it (an ingress action, a VLAN tag, the rx_handler) — for every
// packet of the vector, for none, or (a vector of tagged and untagged
// packets) for those carrying kFlagPtPrev. Held per vector so that a tap
// costs no write to every packet's metadata.
enum class PtPrev : uint8_t { none, all, flagged };

inline bool is_vlan_proto(uint16_t p) {
  return p == kEthP8021Q || p == kEthP8021AD;
}

// skb->protocol of a length field (eth_type_trans / vlan_set_encap_proto).
inline uint16_t length_proto(const uint8_t* payload, uint32_t avail) {
  if (avail >= 2 && payload[0] == 0xff && payload[1] == 0xff) return kEthP8023;
  return kEthP8022;
}

inline const rte_ether_addr& eth_dst(const rte_mbuf* m) {
  return rte_pktmbuf_mtod(m, const rte_ether_hdr*)->dst_addr;
}

struct Vec {
  uint16_t dev;
  uint16_t n;
  rte_mbuf* pkts[kBurst];
};

// Packets whose next round is on another device, grouped by that device.
struct Regroup {
  static constexpr unsigned kGroups = 4;
  Vec g[kGroups];
  unsigned ng = 0;
};

// What a round knows of its vector when the previous round's rx_handler
// passed the whole of it on (RxHandlerFn returning a device): no tag held,
// no ingress action ran, pt_prev flushed — only the per-round bookkeeping
// is left to do. `seen` ORs the packets' flags, `rmax` their rounds.
struct Carry {
  uint8_t seen;
  uint8_t rmax;
};

void round(Worker& w, Vec& v, const Carry* carry = nullptr);

// Step 1 for a vector that was not carried: each packet's round count,
// skb_iif = `to` and its flags without pt_prev, with the vector's highest
// round, whether a packet holds an in-band tag and the ORed flags. Through:
// the packets make two rounds at once (the device's, passed on whole by
// its rx_handler, and `to`'s), so their dev is `to` too.
template <bool Through>
[[gnu::always_inline]] inline void bookkeep(rte_mbuf** pkts, uint16_t n, uint16_t to, uint8_t& rmax,
                                            bool& vlan_proto, uint8_t& seen) {
  for (uint16_t i = 0; i < n; i++) {
    PktMeta& md = meta(pkts[i]);
    const uint8_t r = static_cast<uint8_t>(md.rounds + (Through ? 2 : 1));
    const uint8_t f = md.flags & static_cast<uint8_t>(~kFlagPtPrev);
    if constexpr (Through) md.dev = to;
    md.rounds = r;
    md.skb_iif = to;
    md.flags = f;
    rmax = std::max(rmax, r);
    vlan_proto |= (md.protocol == kEthP8021Q) | (md.protocol == kEthP8021AD);
    seen |= f;
  }
}

void regroup_push(Worker& w, Regroup& r, rte_mbuf* m) {
  uint16_t dev = meta(m).dev;
  for (unsigned i = 0; i < r.ng; i++) {
    Vec& g = r.g[i];
    if (g.dev == dev) {
      if (g.n == kBurst) {  // full: that vector makes its round now
        round(w, g);
        g.n = 0;
        g.dev = dev;
      }
      g.pkts[g.n++] = m;
      return;
    }
  }
  if (r.ng == Regroup::kGroups) {  // too many devices at once: run the oldest group now
    Vec& g = r.g[0];
    round(w, g);
    for (unsigned i = 1; i < r.ng; i++) std::swap(r.g[i - 1], r.g[i]);
    r.ng--;
  }
  Vec& g = r.g[r.ng++];
  g.dev = dev;
  g.n = 0;
  g.pkts[g.n++] = m;
}

void regroup_run(Worker& w, Regroup& r) {
  for (unsigned i = 0; i < r.ng; i++)
    if (r.g[i].n != 0) round(w, r.g[i]);
  r.ng = 0;
}

// vlan_do_receive for a packet whose tag names an existing sub-device.
// Returns false if it was dropped (sub-device down).
bool vlan_do_receive(Worker& w, rte_mbuf* m, Device& sub) {
  PktMeta& md = meta(m);
  if (!sub.admin_up.load(std::memory_order_relaxed)) {
    // Linux frees it in vlan_do_receive; no core counter moves.
    w.drop(m, sub.index, DropReason::vlan_dev_down);
    return false;
  }
  SLUICE_TRACE(w, m, "vlan_do_receive", md.dev, "to VLAN sub-device", sub.index, "vid %u",
               md.vlan_tci & 0xfff);
  md.dev = sub.index;
  if (md.pkt_type == static_cast<uint8_t>(PktType::otherhost) &&
      rte_is_same_ether_addr(&eth_dst(m), &sub.mac))
    md.pkt_type = static_cast<uint8_t>(PktType::host);
  md.flags &= static_cast<uint8_t>(~kFlagVlan);
  md.vlan_tci = 0;
  DevCounters& c = w.c(sub.index);
  c.rx_packets++;
  c.rx_bytes += m->pkt_len;
  if (md.pkt_type == static_cast<uint8_t>(PktType::multicast)) c.multicast++;
  return true;
}

// Step 12: protocol delivery of packets on `dev` with the same protocol and
// the same deliver_exact. Ordered as Linux walks its lists: ptype_base
// (skipped when exact), orig_dev's bound handlers, then dev's if different.
void deliver_group(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n, uint16_t proto, bool exact,
                   PtPrev pt_prev) {
  constexpr unsigned kMaxHandlers = 16;
  const PacketType* hs[kMaxHandlers];
  unsigned nh = 0;
  if (!exact) {
    const PtypeBase* base = w.net.ptype_base();
    for (const PacketType& pt : base->bucket[proto & 15])
      if (pt.type == proto && nh < kMaxHandlers) hs[nh++] = &pt;
  }
  uint16_t orig = meta(pkts[0]).orig_dev;
  if (const Device* od = w.net.dev(orig)) {
    if (const PtypeList* l = od->ptype_specific.load(std::memory_order_acquire))
      for (const PacketType& pt : l->entries)
        if (pt.type == proto && nh < kMaxHandlers) hs[nh++] = &pt;
  }
  if (dev.index != orig) {
    if (const PtypeList* l = dev.ptype_specific.load(std::memory_order_acquire))
      for (const PacketType& pt : l->entries)
        if (pt.type == proto && nh < kMaxHandlers) hs[nh++] = &pt;
  }

  if (nh == 0) {
    DevCounters& c = w.c(dev.index);
    for (uint16_t i = 0; i < n; i++) {
      rte_mbuf* m = pkts[i];
      if (pt_prev == PtPrev::all || (pt_prev == PtPrev::flagged && (meta(m).flags & kFlagPtPrev))) {
        SLUICE_TRACE_FATE(w, m, TraceFate::delivered, dev.index, "deliver_skb",
                          "to the last tap (pt_prev)");
        w.free_later(m);  // the last tap was pt_prev: the frame counts as delivered (C-2)
        continue;
      }
      if (exact)
        c.rx_nohandler++;
      else
        c.rx_dropped++;
      w.drop(m, dev.index, DropReason::unhandled_proto);
    }
    return;
  }
  SLUICE_TRACE_EACH(w, pkts, n, i, "deliver_skb", dev.index, hs[0]->name, kNoDev,
                    nh > 1 ? "protocol 0x%04x, %u handlers" : "protocol 0x%04x", proto, nh);
  if (nh > 1)
    for (uint16_t i = 0; i < n; i++) rte_mbuf_refcnt_update(pkts[i], static_cast<int16_t>(nh - 1));
  for (unsigned h = 0; h < nh; h++) {
    rte_mbuf* copy[kBurst];  // each handler owns (and may reorder) its own vector
    std::memcpy(copy, pkts, n * sizeof(rte_mbuf*));
    StageScope scope(w.runtime, hs[h]->stage, n);
    hs[h]->fn(w, hs[h]->ctx, copy, n);
  }
}

// Steps 11–13 for packets whose round ended on `dev` without a new device.
void deliver(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n, Regroup& again, PtPrev pt_prev) {
  StageScope scope(w.runtime, stage::deliver, n);
  // Step 11: residual VLAN tag.
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    bool taken = false;
    while (md.flags & kFlagVlan) {
      uint16_t vid = md.vlan_tci & 0xfff;
      md.flags &= static_cast<uint8_t>(~kFlagVlan);
      md.vlan_tci = 0;
      if (vid != 0) {
        md.pkt_type = static_cast<uint8_t>(PktType::otherhost);
        SLUICE_TRACE(w, m, "vlan", dev.index, "no VLAN device: pkt_type otherhost", kNoDev,
                     "vid %u", vid);
        break;
      }
      // Priority tag. If the inner ethertype is a VLAN too (priority-tagged
      // QinQ), strip the inner tag and retry VLAN demux.
      if (!is_vlan_proto(md.protocol)) break;
      if (!vlan_untag(m)) {
        w.drop(m, dev.index, DropReason::pkt_too_small);
        taken = true;
        break;
      }
      md.flags &= static_cast<uint8_t>(~kFlagPtPrev);
      uint16_t sub = dev.vlan_dev(md.vlan_proto, md.vlan_tci & 0xfff);
      if (Device* s = sub != 0xffff ? w.net.dev(sub) : nullptr) {
        if (vlan_do_receive(w, m, *s)) regroup_push(w, again, m);
        taken = true;
        break;
      }
    }
    if (!taken) pkts[k++] = m;
  }
  n = k;

  // Step 12: group by (protocol, exact), keeping first-appearance order.
  uint16_t done = 0;
  bool used[kBurst] = {};
  while (done < n) {
    uint16_t first = 0;
    while (used[first]) first++;
    uint16_t proto = meta(pkts[first]).protocol;
    bool exact = meta(pkts[first]).flags & kFlagExact;
    rte_mbuf* grp[kBurst];
    uint16_t g = 0;
    for (uint16_t i = first; i < n; i++) {
      if (used[i]) continue;
      const PktMeta& md = meta(pkts[i]);
      if (md.protocol == proto && bool(md.flags & kFlagExact) == exact) {
        used[i] = true;
        grp[g++] = pkts[i];
      }
    }
    done += g;
    deliver_group(w, dev, grp, g, proto, exact, pt_prev);
  }
}

const char* rx_result_name(RxResult r) {
  switch (r) {
    case RxResult::consumed:
      return "RX_HANDLER_CONSUMED";
    case RxResult::another:
      return "RX_HANDLER_ANOTHER";
    case RxResult::exact:
      return "RX_HANDLER_EXACT";
    case RxResult::pass:
      return "RX_HANDLER_PASS";
  }
  return "?";
}

void round(Worker& w, Vec& v, const Carry* carry) {
  Device* dev = w.net.dev(v.dev);
  rte_mbuf** pkts = v.pkts;
  uint16_t n = 0;
  StageScope scope(w.runtime, stage::netif_receive, v.n);
#ifndef SLUICE_NO_TRACE
  if (w.net.trace.armed()) [[unlikely]]
    w.net.trace.mark(static_cast<uint8_t>(w.id), v.dev, pkts, v.n);
#endif

  // Step 1 (bookkeeping) and step 3 (in-band tag → metadata, one per round).
  // `seen` ORs the flags, so the loops below that only matter for a tagged
  // or traced packet are skipped when there is none (and no tap or action
  // saw the vector). The bookkeeping of every packet first; a packet over
  // the round limit, with an in-band tag or traced sends the vector through
  // the per-packet pass (drop, untag, trace record).
  // A carried vector (the rx_handler passed it on whole) needs only the
  // round's own fields: its flags, tags and rounds are known.
  uint8_t seen = 0, rmax = 0;
  bool vlan_proto = false;  // an in-band tag (or a tagged frame holding one out of band)
  if (carry != nullptr) {
    seen = carry->seen;
    rmax = static_cast<uint8_t>(carry->rmax + 1);
    for (uint16_t i = 0; i < v.n; i++) {
      PktMeta& md = meta(pkts[i]);
      md.dev = v.dev;
      md.skb_iif = v.dev;
      md.rounds++;
    }
  } else {
    // A device whose rx_handler passes every burst on whole (Device::
    // rx_through) and which nothing else would see this round — no tap, no
    // ingress action, no trace: this loop makes the packets' two rounds at
    // once, and the round goes on as the next device's. A tag or a traced
    // packet among them (found by the loop) undoes it: the vector makes
    // both rounds one after the other, as below.
    uint16_t through = dev->rx_through.load(std::memory_order_relaxed);
    if (through != kNoDev) [[likely]] {
      if (w.net.taps() != nullptr || dev->taps.load(std::memory_order_relaxed) != nullptr ||
          dev->ingress.load(std::memory_order_relaxed) != nullptr ||
          dev->rx_handler.load(std::memory_order_relaxed) == nullptr
#ifndef SLUICE_NO_TRACE
          || w.net.trace.armed()
#endif
      )
        through = kNoDev;
    }
    if (through != kNoDev) {
      bookkeep<true>(pkts, v.n, through, rmax, vlan_proto, seen);
      Device* next = w.net.dev(through);
      if ((rmax > kRoundLimit) | vlan_proto | ((seen & (kFlagVlan | kFlagTrace)) != 0) |
          (next == nullptr)) [[unlikely]] {
        for (uint16_t i = 0; i < v.n; i++) {  // back to this device's round
          PktMeta& md = meta(pkts[i]);
          md.dev = v.dev;
          md.rounds--;
          md.skb_iif = v.dev;
        }
        rmax = static_cast<uint8_t>(rmax - 1);
      } else {
        // What this device's round would have counted: its rx_handler's call.
        w.runtime.stats[dev->rx_handler_stage].calls++;
        w.runtime.stats[dev->rx_handler_stage].packets += v.n;
        v.dev = through;
        dev = next;
      }
    } else {
      bookkeep<false>(pkts, v.n, v.dev, rmax, vlan_proto, seen);
    }
  }
  n = v.n;
  if ((rmax > kRoundLimit) | vlan_proto | ((seen & kFlagTrace) != 0)) [[unlikely]] {
    n = 0;
    for (uint16_t i = 0; i < v.n; i++) {
      rte_mbuf* m = pkts[i];
      PktMeta& md = meta(m);
      if (md.rounds > kRoundLimit) {
        w.drop(m, v.dev, DropReason::round_limit);
        continue;
      }
      if (is_vlan_proto(md.protocol) && !(md.flags & kFlagVlan) && !vlan_untag(m)) {
        w.drop(m, v.dev, DropReason::pkt_too_small);
        continue;
      }
      SLUICE_TRACE(w, m, "netif_receive_skb", v.dev, "round", kNoDev, "round %u", md.rounds);
      seen |= md.flags;
      pkts[n++] = m;
    }
  }
  if (n == 0) return;
  PtPrev pt_prev = PtPrev::none;
  bool acted = false;  // an ingress action ran

  // Step 5: taps, namespace-wide then the device's own, newest first.
  const TapList* gt = w.net.taps();
  const TapList* dt = dev->taps.load(std::memory_order_acquire);
  if (gt != nullptr || dt != nullptr) {
    StageScope ts(w.runtime, stage::tap, n);
    if (gt)
      for (const Tap& t : gt->taps) t.fn(w, *dev, t.ctx, pkts, n, Direction::ingress);
    if (dt)
      for (const Tap& t : dt->taps) t.fn(w, *dev, t.ctx, pkts, n, Direction::ingress);
    pt_prev = PtPrev::all;
  }

  // Step 6: ingress actions (tc ingress / mirred). They flush pt_prev.
  if (const ActionList* al = dev->ingress.load(std::memory_order_acquire)) {
    StageScope as(w.runtime, stage::tc_ingress, n);
    pt_prev = PtPrev::none;
    acted = true;
    for (const Action& a : al->actions) {
      ActVerdict verdict[kBurst];
      a.fn(w, *dev, a.ctx, pkts, n, verdict);
      uint16_t k = 0;
      for (uint16_t i = 0; i < n; i++) {
        if (verdict[i] == ActVerdict::ok)
          pkts[k++] = pkts[i];
        else if (verdict[i] == ActVerdict::shot)
          w.drop(pkts[i], dev->index, DropReason::tc_ingress);  // rx_dropped not touched
        // stolen: the action owns it
      }
      n = k;
      if (n == 0) return;
    }
  }

  Regroup again;
  // Taps only read; an ingress action may have changed the packets (a
  // redirect from elsewhere, a tag) — then every packet is looked at.
  const bool any_vlan = acted || (seen & kFlagVlan);
  const bool any_trace = acted || (seen & kFlagTrace);

  // Step 9: VLAN demux for packets holding a tag. A tag flushes pt_prev
  // (with or without a VLAN device): the packets without one keep it, each
  // flagged, when the vector is mixed.
  uint16_t k = 0;
  if (any_vlan) {
    const bool mark = pt_prev == PtPrev::all;
    bool flushed = false;
    for (uint16_t i = 0; i < n; i++) {
      rte_mbuf* m = pkts[i];
      PktMeta& md = meta(m);
      if (!(md.flags & kFlagVlan)) {
        if (mark) md.flags |= kFlagPtPrev;
      } else {
        md.flags &= static_cast<uint8_t>(~kFlagPtPrev);
        flushed = true;
        uint16_t sub = dev->vlan_dev(md.vlan_proto, md.vlan_tci & 0xfff);
        if (sub != 0xffff) {
          if (Device* s = w.net.dev(sub)) {
            if (vlan_do_receive(w, m, *s)) regroup_push(w, again, m);
            continue;
          }
        }
      }
      pkts[k++] = m;
    }
    n = k;
    if (mark && flushed) pt_prev = PtPrev::flagged;
  }

  // Step 10: rx_handler (it flushes pt_prev).
  if (n != 0) {
    if (RxHandlerFn fn = dev->rx_handler.load(std::memory_order_acquire)) {
      pt_prev = PtPrev::none;
      if (any_trace)
        for (uint16_t i = 0; i < n; i++)
          SLUICE_TRACE(w, pkts[i], "rx_handler", dev->index, dev->rx_handler_owner);
      RxResult res[kBurst];
      uint16_t to;
      {
        StageScope hs(w.runtime, dev->rx_handler_stage, n);
        to = fn(w, *dev, dev->rx_handler_ctx.load(std::memory_order_relaxed), pkts, n, res);
      }
      if (to != kNoDev) {  // the whole vector ANOTHER to `to` (a bond's member)
        if (any_trace)
          for (uint16_t i = 0; i < n; i++)
            SLUICE_TRACE(w, pkts[i], "rx_handler", dev->index, "RX_HANDLER_ANOTHER", to, "%s",
                         dev->rx_handler_owner);
        if (again.ng == 0) {  // nothing else regrouped: it makes its next round as it is
          v.dev = to;
          v.n = n;
          if (!any_vlan) {
            const Carry c{seen, rmax};
            round(w, v, &c);
          } else {
            for (uint16_t i = 0; i < n; i++) meta(pkts[i]).dev = to;
            round(w, v);
          }
          return;
        }
        for (uint16_t i = 0; i < n; i++) {
          meta(pkts[i]).dev = to;
          regroup_push(w, again, pkts[i]);
        }
        n = 0;
      }
      k = 0;
      for (uint16_t i = 0; i < n; i++) {                // (n == 0 when passed on whole)
        if (any_trace && res[i] != RxResult::consumed)  // a consumed packet is no longer ours
          SLUICE_TRACE(w, pkts[i], "rx_handler", dev->index, rx_result_name(res[i]),
                       res[i] == RxResult::another ? meta(pkts[i]).dev : kNoDev, "%s",
                       dev->rx_handler_owner);
        switch (res[i]) {
          case RxResult::consumed:
            break;
          case RxResult::another:
            regroup_push(w, again, pkts[i]);
            break;
          case RxResult::exact:
            meta(pkts[i]).flags |= kFlagExact;
            pkts[k++] = pkts[i];
            break;
          case RxResult::pass:
            pkts[k++] = pkts[i];
            break;
        }
      }
      n = k;
    }
  }

  // Steps 11–13.
  if (n != 0) deliver(w, *dev, pkts, n, again, pt_prev);

  // Next rounds.
  regroup_run(w, again);
}

}  // namespace

bool vlan_untag(rte_mbuf* m) {
  if (m->data_len < RTE_ETHER_HDR_LEN + 4) return false;
  uint8_t* p = rte_pktmbuf_mtod(m, uint8_t*);
  PktMeta& md = meta(m);
  md.vlan_proto = static_cast<uint16_t>(p[12] << 8 | p[13]);
  md.vlan_tci = static_cast<uint16_t>(p[14] << 8 | p[15]);
  uint16_t inner = static_cast<uint16_t>(p[16] << 8 | p[17]);
  std::memmove(p + 4, p, 12);
  rte_pktmbuf_adj(m, 4);
  md.flags |= kFlagVlan;
  md.protocol = inner >= kEthP8023Min
                    ? inner
                    : length_proto(p + 4 + RTE_ETHER_HDR_LEN, m->data_len - RTE_ETHER_HDR_LEN);
  return true;
}

bool vlan_insert(rte_mbuf* m) {
  PktMeta& md = meta(m);
  if (!(md.flags & kFlagVlan)) return true;
  if (rte_mbuf_refcnt_read(m) > 1 || !RTE_MBUF_DIRECT(m)) return false;  // shared: caller copies
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 4));
  if (p == nullptr) return false;
  std::memmove(p, p + 4, 12);
  p[12] = static_cast<uint8_t>(md.vlan_proto >> 8);
  p[13] = static_cast<uint8_t>(md.vlan_proto);
  p[14] = static_cast<uint8_t>(md.vlan_tci >> 8);
  p[15] = static_cast<uint8_t>(md.vlan_tci);
  md.flags &= static_cast<uint8_t>(~kFlagVlan);
  md.vlan_tci = 0;
  return true;
}

uint16_t eth_type_trans(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  DevCounters& c = w.c(dev.index);
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (i + 4 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 4], void*));
    if (m->data_len < RTE_ETHER_HDR_LEN) {
      c.rx_dropped++;
      w.drop(m, dev.index, DropReason::pkt_too_small);
      continue;
    }
    const rte_ether_hdr* eth = rte_pktmbuf_mtod(m, const rte_ether_hdr*);
    PktMeta& md = meta(m);
    std::memset(&md, 0, offsetof(PktMeta, user));
    md.dev = dev.index;
    md.orig_dev = dev.index;
    md.skb_iif = dev.index;
    PktType t = PktType::host;
    if (!rte_is_same_ether_addr(&eth->dst_addr, &dev.mac)) {
      if (rte_is_multicast_ether_addr(&eth->dst_addr)) {
        // lo's broadcast address is all-zero: ff:ff:ff:ff:ff:ff is MULTICAST there
        t = rte_is_broadcast_ether_addr(&eth->dst_addr) && dev.kind != DevKind::loopback
                ? PktType::broadcast
                : PktType::multicast;
      } else {
        t = PktType::otherhost;
        if (!dev.promiscuous) {  // what the NIC's unicast filter would have done
          w.drop(m, dev.index, DropReason::mac_filter);
          continue;
        }
      }
    }
    md.pkt_type = static_cast<uint8_t>(t);
    uint16_t et = rte_be_to_cpu_16(eth->ether_type);
    if (et >= kEthP8023Min)
      md.protocol = et;
    else
      md.protocol =
          length_proto(reinterpret_cast<const uint8_t*>(eth + 1), m->data_len - RTE_ETHER_HDR_LEN);
    if (m->ol_flags & RTE_MBUF_F_RX_VLAN_STRIPPED) {  // the PMD already took the tag out
      md.flags |= kFlagVlan;
      md.vlan_tci = m->vlan_tci;
      md.vlan_proto = kEthP8021Q;
      m->ol_flags &= ~(RTE_MBUF_F_RX_VLAN_STRIPPED | RTE_MBUF_F_RX_VLAN);
    }
    c.rx_packets++;
    c.rx_bytes += m->pkt_len;
    if (t == PktType::multicast) c.multicast++;
    pkts[k++] = m;
  }
  return k;
}

void netif_receive(Worker& w, rte_mbuf** pkts, uint16_t n) {
  if (n == 0) return;
  Vec v;
  v.dev = meta(pkts[0]).dev;
  v.n = n;
  std::memcpy(v.pkts, pkts, n * sizeof(rte_mbuf*));
  round(w, v);
  w.flush_free();
}

void netif_receive_pass(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  if (n == 0) return;
  Regroup again;
  rte_mbuf* v[kBurst];
  std::memcpy(v, pkts, n * sizeof(rte_mbuf*));
  deliver(w, dev, v, n, again, PtPrev::none);
  regroup_run(w, again);
  w.flush_free();
}

void port_receive(Worker& w, Device& port, rte_mbuf** pkts, uint16_t n) {
  if (!port.admin_up.load(std::memory_order_relaxed)) {
    for (uint16_t i = 0; i < n; i++) w.drop(pkts[i], port.index, DropReason::link_down);
    w.flush_free();
    return;
  }
  {
    StageScope scope(w.runtime, stage::classify, n);
    n = eth_type_trans(w, port, pkts, n);
  }
  if (n == 0) {
    w.flush_free();
    return;
  }
  netif_receive(w, pkts, n);
}

void dev_queue_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  while (n > kBurst) {  // actions and taps work on vectors of at most a burst
    dev_queue_xmit(w, dev, pkts, kBurst);
    pkts += kBurst;
    n = static_cast<uint16_t>(n - kBurst);
  }
  if (n == 0) return;
  StageScope scope(w.runtime, stage::xmit, n);
  SLUICE_TRACE_EACH(w, pkts, n, i, "dev_queue_xmit", dev.index, "xmit");
  if (!dev.up()) {
    DevCounters& c = w.c(dev.index);
    for (uint16_t i = 0; i < n; i++) {
      c.tx_dropped++;
      w.drop(pkts[i], dev.index, DropReason::dev_ready);
    }
    return;
  }
  // tc egress (sch_handle_egress) runs first, in __dev_queue_xmit: what an
  // egress action redirects or drops is never seen by the egress taps.
  rte_mbuf* local[kBurst];
  if (const ActionList* al = dev.egress.load(std::memory_order_acquire)) {
    StageScope as(w.runtime, stage::tc_egress, n);
    std::memcpy(local, pkts, n * sizeof(rte_mbuf*));
    pkts = local;
    for (const Action& a : al->actions) {
      ActVerdict verdict[kBurst];
      a.fn(w, dev, a.ctx, pkts, n, verdict);
      uint16_t k = 0;
      for (uint16_t i = 0; i < n; i++) {
        if (verdict[i] == ActVerdict::ok)
          pkts[k++] = pkts[i];
        else if (verdict[i] == ActVerdict::shot)
          w.drop(pkts[i], dev.index, DropReason::tc_egress);
      }
      n = k;
      if (n == 0) return;
    }
  }
  // dev_queue_xmit_nit (dev_hard_start_xmit): egress taps see it as OUTGOING.
  const TapList* gt = w.net.taps();
  const TapList* dt = dev.taps.load(std::memory_order_acquire);
  if (gt != nullptr || dt != nullptr) {
    StageScope ts(w.runtime, stage::tap, n);
    if (gt)
      for (const Tap& t : gt->taps) t.fn(w, dev, t.ctx, pkts, n, Direction::egress);
    if (dt)
      for (const Tap& t : dt->taps) t.fn(w, dev, t.ctx, pkts, n, Direction::egress);
  }
  dev.xmit(w, dev, pkts, n);
}

void inject_xmit(Worker& w) {
  if (w.inject == nullptr) return;
  rte_mbuf* pkts[kBurst];
  unsigned n = rte_ring_dequeue_burst(w.inject, reinterpret_cast<void**>(pkts), kBurst, nullptr);
  unsigned i = 0;
  while (i < n) {  // runs of the same device go together
    uint16_t d = meta(pkts[i]).dev;
    unsigned j = i + 1;
    while (j < n && meta(pkts[j]).dev == d) j++;
    if (Device* dev = w.net.dev(d))
      dev_queue_xmit(w, *dev, pkts + i, static_cast<uint16_t>(j - i));
    else
      for (unsigned k = i; k < j; k++) w.free_later(pkts[k]);
    i = j;
  }
}

// port_xmit for a packet with a tag held in its metadata (written into the
// frame) or traced (its fate): the packet to buffer, nullptr if dropped.
[[gnu::noinline]] static rte_mbuf* port_xmit_slow(Worker& w, Device& dev, rte_mbuf* m) {
  if ((meta(m).flags & kFlagVlan) && !vlan_insert(m)) {
    // Shared or no headroom: write the tag into a private copy.
    rte_mbuf* c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
    if (c == nullptr) {
      w.c(dev.index).tx_dropped++;
      w.drop(m, dev.index, DropReason::nomem);
      return nullptr;
    }
    std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
    w.free_later(m);
    m = c;
    if (!vlan_insert(m)) {
      w.c(dev.index).tx_dropped++;
      w.drop(m, dev.index, DropReason::nomem);
      return nullptr;
    }
  }
  SLUICE_TRACE_FATE(w, m, TraceFate::sent, dev.index, "port_xmit");
  return m;
}

void port_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  StageScope scope(w.runtime, stage::port_xmit, n);
  if (w.tx_queue >= dev.tx_queues) [[unlikely]] {  // fewer TX queues than workers
    w.c(dev.index).tx_dropped += n;
    for (uint16_t i = 0; i < n; i++) w.drop(pkts[i], dev.index, DropReason::no_txq);
    return;
  }
  TxBuffer& b = w.txbuf[dev.port_id];
  b.dev = dev.index;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    // One test for the two uncommon cases: a tag to write, a traced packet.
    if (meta(m).flags & (kFlagVlan | kFlagTrace)) [[unlikely]] {
      m = port_xmit_slow(w, dev, m);
      if (m == nullptr) continue;
    }
    if (b.n == kTxBufSize) w.flush_port(dev.port_id);
    b.pkts[b.n++] = m;
  }
  w.tx_dirty |= uint64_t(1) << dev.port_id;
}

void vlan_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  StageScope scope(w.runtime, stage::vlan_xmit, n);
  Device* lower = w.net.dev(dev.link);
  DevCounters& c = w.c(dev.index);
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    // A tag already held (QinQ stacking) goes into the frame first.
    if ((md.flags & kFlagVlan) && !vlan_insert(m)) {
      c.tx_dropped++;
      w.drop(m, dev.index, DropReason::nomem);
      continue;
    }
    md.flags |= kFlagVlan;
    md.vlan_proto = dev.vlan_proto;
    md.vlan_tci = dev.vlan_id;
    SLUICE_TRACE(w, m, "vlan_dev_hard_start_xmit", dev.index, "tag", dev.link, "vid %u",
                 dev.vlan_id);
    c.tx_packets++;
    c.tx_bytes += m->pkt_len;
    pkts[k++] = m;
  }
  if (k != 0) dev_queue_xmit(w, *lower, pkts, k);
}

}  // namespace sluice
