// The bonding datapath, burst-wise: bond_handle_frame (the rx_handler of
// every member, Linux 6.x order) and bond_start_xmit (the bond device's
// xmit). Linux reference: drivers/net/bonding/bond_main.c, bond_3ad.c
// (spec §3.1–3.4). No allocation, lock or exception per packet; the member
// choice reads one RCU-published TxView per burst; the round-robin counter
// is the worker's own (Linux's is per CPU).
#include <algorithm>
#include <bit>
#include <cstring>

#include <rte_random.h>
#include <rte_ring.h>

#include "bond/bond.hh"
#include "bond/hash_fast.hh"
#include "bond/tlb.hh"
#include "core/meta.hh"
#include "core/netif.hh"

namespace sluice::bond {
namespace {

const StageId kStXmit = stage_register("bond-xmit", 730);  // at load: nothing allocates per packet

constexpr uint16_t kEthPSlow = 0x8809;  // ETH_P_SLOW
constexpr uint32_t kLacpduSize = 110;   // sizeof(struct lacpdu) == sizeof(struct bond_marker)

inline bool is_link_local(const uint8_t* d) {  // 01:80:C2:00:00:0X
  return d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0 && d[4] == 0 &&
         (d[5] & 0xf0) == 0;
}
inline bool is_slow_dst(const uint8_t* d) {  // lacpdu_mcast_addr 01:80:C2:00:00:02
  return d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0 && d[4] == 0 && d[5] == 0x02;
}

// bond_3ad_lacpdu_recv (recv_probe of 802.3ad) for a frame already known
// to be 0x8809 to 01:80:C2:00:00:02: LACPDUs and Markers go to the control
// thread and are consumed; a truncated frame (shorter than a struct lacpdu)
// is illegal and any other subtype unknown — both go on as ANOTHER.
bool lacpdu_recv(Worker& w, WorkerState& ws, Member& mb, rte_mbuf* m) {
  MemberCounters& c = ws.ctr[mb.gidx];
  if (m->pkt_len < RTE_ETHER_HDR_LEN + kLacpduSize) {
    c.lacpdu_illegal_rx++;
    return false;
  }
  uint8_t subtype;
  const uint8_t* p =
      static_cast<const uint8_t*>(rte_pktmbuf_read(m, RTE_ETHER_HDR_LEN, 1, &subtype));
  if (p[0] != 1 && p[0] != 2) {  // AD_TYPE_LACPDU, AD_TYPE_MARKER
    c.lacpdu_unknown_rx++;
    return false;
  }
  // Its own ring: data overload never fills it; a loss is still counted.
  SLUICE_TRACE_FATE(w, m, TraceFate::delivered, mb.dev->index, "bond_3ad_lacpdu_recv",
                    p[0] == 1 ? "LACPDU to the 802.3ad state machines" : "Marker PDU");
  if (rte_ring_sp_enqueue(ws.slow, m) != 0) {
    c.slow_ring_full++;
    w.drop(m, mb.dev->index, DropReason::bond_slow_ring_full);
  }
  return true;
}

// bond_rcv_validate (recv_probe of the ARP monitor): stamps the member's
// last receive time — for every frame when validation is off for the
// member's state, else for ARP that bond_arp_rcv / bond_validate_arp trust.
// Never consumes.
void rcv_validate(Bond& b, MemberCounters& c, bool active, rte_mbuf* m, uint64_t now) {
  const uint8_t state_bit = active ? 1 : 2;
  if (!(b.arp.validate & state_bit)) {
    c.last_rx_ms = now;
    return;
  }
  const PktMeta& md = meta(m);
  if (md.protocol != 0x0806 || md.pkt_type == static_cast<uint8_t>(PktType::otherhost) ||
      md.pkt_type == static_cast<uint8_t>(PktType::loopback))
    return;
  uint8_t buf[28];
  const uint8_t* a = static_cast<const uint8_t*>(rte_pktmbuf_read(m, RTE_ETHER_HDR_LEN, 28, buf));
  if (a == nullptr || a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4)
    return;
  uint32_t sip, tip;
  std::memcpy(&sip, a + 14, 4);
  std::memcpy(&tip, a + 24, 4);
  const bool reply = a[6] == 0 && a[7] == 2;
  // Whom to trust: (a) the active member; (b) a backup, while the active
  // member has received since it became active (the request it sent, seen
  // through the switch: sip/tip swapped); (c) a reply on any member while
  // the ARP candidate sent within the last interval.
  if (!active) {
    if (b.arp.active_validated.load(std::memory_order_relaxed))
      std::swap(sip, tip);
    else if (!(b.arp.arp_slave_recent.load(std::memory_order_relaxed) && reply))
      return;
  }
  // bond_validate_arp: from a target, to one of our addresses.
  if (sip == 0 || std::find(b.arp.local.begin(), b.arp.local.end(), tip) == b.arp.local.end()) {
    c.arp_not_validated++;
    return;
  }
  auto t = std::find(b.arp.targets.begin(), b.arp.targets.end(), sip);
  if (t == b.arp.targets.end()) {
    c.arp_not_validated++;
    return;
  }
  c.last_rx_ms = now;
  c.target_last_rx_ms[t - b.arp.targets.begin()] = now;
  c.arp_validated++;
}

inline bool bit(uint32_t mask, unsigned pos) {
  return (mask >> pos) & 1u;
}

// bond_slave_can_tx: device up with carrier, link UP, active.
inline bool can_tx(const TxView& v, unsigned pos) {
  return bit(v.link_up, pos) && bit(v.is_active, pos) && v.dev[pos]->up();
}

// bond_get_slave_by_id: the id-th member if it can send, else the next
// that can, wrapping; kNoMember if none can.
inline uint8_t slave_by_id(const TxView& v, unsigned id) {
  for (unsigned pos = id; pos < v.n; pos++)
    if (can_tx(v, pos)) return static_cast<uint8_t>(pos);
  for (unsigned pos = 0; pos < id && pos < v.n; pos++)
    if (can_tx(v, pos)) return static_cast<uint8_t>(pos);
  return kNoMember;
}

inline bool is_igmp(const rte_mbuf* m) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  return m->data_len >= RTE_ETHER_HDR_LEN + 20 && d[12] == 0x08 && d[13] == 0x00 &&
         d[RTE_ETHER_HDR_LEN + 9] == 2;
}

// Per-member output vectors of one xmit call. `flags` ORs the packets'
// metadata flags (add()), so the per-packet trace records are skipped when
// no packet of the call is traced; the xor choice sets kFlagTrace without
// looking, and send() then tests the trace store's live flag once.
struct Staged {
  uint16_t n[kMaxMembers];
  uint32_t touched = 0;
  uint8_t flags = 0;
  rte_mbuf* pkts[kMaxMembers][kBurst];
  void add(uint8_t pos, rte_mbuf* m) {
    if (!bit(touched, pos)) {
      touched |= 1u << pos;
      n[pos] = 0;
    }
    pkts[pos][n[pos]++] = m;
    flags |= meta(m).flags;
  }
  void send(Worker& w, const TxView& v) {
    while (touched != 0) {
      unsigned pos = __builtin_ctz(touched);
      touched &= touched - 1;
      if ((flags & kFlagTrace) && SLUICE_TRACE_LIVE(w)) [[unlikely]]
        for (uint16_t i = 0; i < n[pos]; i++)
          SLUICE_TRACE(w, pkts[pos][i], "bond_start_xmit",
                       v.dev[pos]->master.load(std::memory_order_relaxed), "member chosen",
                       v.dev[pos]->index);
      dev_queue_xmit_sorted(w, *v.dev[pos], pkts[pos], n[pos]);
    }
  }
};

// bond_3ad_xor_xmit for a burst (n <= kBurst, n_usable != 0): each frame's
// hash and usable[hash % count] first, then the members' vectors. The plain
// IPv4 TCP/UDP frame of layer2+3 / layer3+4 is hashed inline; any other
// frame or policy is marked and goes through the general xmit_hash after
// the loop, so the loop holds no call and keeps its values in registers.
// With a few members each vector is one compacting pass over the choices
// (its length stays in a register): a scatter that counts in memory would
// make every packet wait for the previous one's store of the same count.
template <int Policy>  // 34: layer3+4, 23: layer2+3, 0: any other policy
void xor_place(HashPolicy p, const TxView& v, rte_mbuf** pkts, uint16_t n, Staged& st) {
  static_assert(kBurst <= 32, "one bit per packet");
  uint8_t where[kBurst];
  uint32_t touched = 0;
  uint32_t general = Policy != 0 ? 0 : (n == 32 ? ~0u : (1u << n) - 1);
  const uint64_t mod = v.usable_mod;
  const uint32_t cnt = v.n_usable;
  if constexpr (Policy != 0) {
    for (uint16_t i = 0; i < n; i++) {
      rte_mbuf* m = pkts[i];
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      if (plain_ip4_l4(m, d)) [[likely]] {
        const uint8_t pos = v.usable[fastmod(plain_ip4_hash<Policy == 34>(d), mod, cnt)];
        where[i] = pos;
        touched |= 1u << pos;
      } else {
        general |= 1u << i;
      }
    }
  }
  for (; general != 0; general &= general - 1) {
    const unsigned i = static_cast<unsigned>(std::countr_zero(general));
    const uint8_t pos = v.usable[fastmod(xmit_hash(p, pkts[i]), mod, cnt)];
    where[i] = pos;
    touched |= 1u << pos;
  }
  st.touched = touched;
  st.flags = kFlagTrace;  // not ORed per packet: send() tests the trace store's live flag
  if (std::popcount(touched) <= 4) {
    for (uint32_t t = touched; t != 0; t &= t - 1) {
      const unsigned pos = static_cast<unsigned>(std::countr_zero(t));
      rte_mbuf** out = st.pkts[pos];
      uint16_t k = 0;
      for (uint16_t i = 0; i < n; i++) {
        out[k] = pkts[i];
        k = static_cast<uint16_t>(k + (where[i] == pos));
      }
      st.n[pos] = k;
    }
    return;
  }
  for (uint32_t t = touched; t != 0; t &= t - 1) st.n[std::countr_zero(t)] = 0;
  for (uint16_t i = 0; i < n; i++) st.pkts[where[i]][st.n[where[i]]++] = pkts[i];
}

// The common bond of two usable members under layer2+3 / layer3+4 when
// every frame of the burst is plain IPv4 TCP/UDP: hash % 2 is the hash's
// low bit, and each frame is written to both vectors while only the chosen
// one's end advances (no branch, no count in memory). Whether every frame
// was plain is looked at once, after the loop. False, with nothing staged,
// for a burst with another frame: the caller starts over with xor_place,
// which keeps the burst's order on each member. Out of line: its loop then
// has the registers to itself (inlined in bond_start_xmit, it reloaded
// pkts from the stack on every frame).
template <int Policy>
[[gnu::noinline]] bool xor_place_pair(const TxView& v, rte_mbuf** pkts, uint16_t n, Staged& st) {
  const uint8_t p0 = v.usable[0], p1 = v.usable[1];
  rte_mbuf** const b0 = st.pkts[p0];
  rte_mbuf** const b1 = st.pkts[p1];
  rte_mbuf** o0 = b0;
  rte_mbuf** o1 = b1;
  uint64_t miss = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (m->data_len < 14 + 20 + 4) [[unlikely]]
      return false;
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    miss |= plain_ip4_l4_miss(d);
    const size_t odd = plain_ip4_hash_odd<Policy == 34>(d);
    *o0 = m;
    *o1 = m;
    o0 += odd ^ 1u;
    o1 += odd;
  }
  if (miss != 0) [[unlikely]]
    return false;
  const auto k0 = static_cast<uint16_t>(o0 - b0), k1 = static_cast<uint16_t>(o1 - b1);
  st.n[p0] = k0;
  st.n[p1] = k1;
  st.touched = (k0 != 0 ? 1u << p0 : 0u) | (k1 != 0 ? 1u << p1 : 0u);
  st.flags = kFlagTrace;  // not ORed per packet: send() tests the trace store's live flag
  return true;
}

void xor_xmit(Bond& b, const TxView& v, rte_mbuf** pkts, uint16_t n, Staged& st) {
  switch (b.policy) {
    case HashPolicy::layer34:
      if (v.n_usable == 2 && xor_place_pair<34>(v, pkts, n, st)) return;
      return xor_place<34>(b.policy, v, pkts, n, st);
    case HashPolicy::layer23:
      if (v.n_usable == 2 && xor_place_pair<23>(v, pkts, n, st)) return;
      return xor_place<23>(b.policy, v, pkts, n, st);
    default:
      return xor_place<0>(b.policy, v, pkts, n, st);
  }
}

// bond_tx_drop: counted against the bond (dev_core_stats_tx_dropped_inc).
inline void tx_drop(Worker& w, Bond& b, rte_mbuf* m) {
  w.c(b.dev->index).tx_dropped++;
  w.drop(m, b.dev->index, DropReason::bond_no_member);
}

// A copy with its own metadata (indirect: port_xmit copies before writing a tag).
inline rte_mbuf* clone(Worker& w, rte_mbuf* m, uint16_t dev) {
  rte_mbuf* c = rte_pktmbuf_clone(m, m->pool);
  if (c == nullptr) {
    w.drops[dev][static_cast<unsigned>(DropReason::nomem)]++;
    return nullptr;
  }
  std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
  SLUICE_TRACE_FORK(w, m, c);  // the copy is traced on its own, from its parent's path
  return c;
}

// bond_rr_gen_slave_id.
inline uint32_t rr_gen(uint32_t& counter, unsigned packets_per_slave) {
  switch (packets_per_slave) {
    case 0:
      return static_cast<uint32_t>(rte_rand());
    case 1:
      return ++counter;
    default:
      return ++counter / packets_per_slave;
  }
}

}  // namespace

uint16_t bond_handle_frame(Worker& w, Device&, void* ctx, rte_mbuf** pkts, uint16_t n,
                           RxResult* res) {
  Member& mb = *static_cast<Member*>(ctx);
  Bond& b = *mb.bond;
  if (b.mode == Mode::balance_alb) {
    alb_handle_frame(w, mb, pkts, n, res);  // alb.cc
    return kNoDev;
  }
  const uint16_t bond_dev = b.dev->index;
  const bool inactive = mb.inactive.load(std::memory_order_relaxed);
  // No recv_probe, an active member: the whole burst ANOTHER to the bond,
  // which the round takes as it is (nothing written per packet).
  if (!b.lacp_probe && !b.arp_probe && !inactive) return bond_dev;
  WorkerState& ws = *b.sys->workers[w.id];
  uint64_t now = 0;
  bool active = true;
  if (b.arp_probe) {
    now = b.sys->clock_ms.load(std::memory_order_relaxed);
    active = bit(b.view.load(std::memory_order_acquire)->is_active, mb.pos);
  }
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    // recv_probe: before the inactive test, so LACPDUs are consumed on
    // every member, in or out of the active aggregator.
    if (b.lacp_probe && md.protocol == kEthPSlow && is_slow_dst(d) && lacpdu_recv(w, ws, mb, m)) {
      res[i] = RxResult::consumed;
      continue;
    }
    if (b.arp_probe) rcv_validate(b, ws.ctr[mb.gidx], active, m, now);
    // bond_should_deliver_exact_match.
    if (inactive &&
        !(b.mode == Mode::balance_alb && md.pkt_type != static_cast<uint8_t>(PktType::broadcast) &&
          md.pkt_type != static_cast<uint8_t>(PktType::multicast))) {
      res[i] = is_link_local(d) ? RxResult::pass : RxResult::exact;
      continue;
    }
    md.dev = bond_dev;
    res[i] = RxResult::another;
  }
  return kNoDev;
}

namespace {

// The member choice of bond_start_xmit (the bond-xmit stage): fills st, or
// returns the one member the whole vector goes to (*all), or sends itself
// (balance-alb) and returns false.
bool choose(Worker& w, Device& dev, Bond& b, const TxView& v, rte_mbuf** pkts, uint16_t n,
            Staged& st, uint8_t* all) {
  switch (b.mode) {
    case Mode::active_backup:
      // bond_xmit_activebackup: the active member, whatever its state.
      if (v.active == kNoMember) {
        for (uint16_t i = 0; i < n; i++) tx_drop(w, b, pkts[i]);
        return false;
      }
      for (uint16_t i = 0; i < n; i++)
        SLUICE_TRACE(w, pkts[i], "bond_start_xmit", dev.index, "active member",
                     v.dev[v.active]->index);
      *all = v.active;
      return true;

    case Mode::balance_xor:
    case Mode::ieee8023ad:
      // bond_3ad_xor_xmit: usable_slaves[hash % count].
      if (v.n_usable == 0) {
        for (uint16_t i = 0; i < n; i++) tx_drop(w, b, pkts[i]);
        return false;
      }
      xor_xmit(b, v, pkts, n, st);
      return true;

    case Mode::balance_rr: {
      uint32_t& counter = b.sys->workers[w.id]->rr[b.idx];
      for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        uint8_t pos;
        if (is_igmp(m)) {  // IGMP keeps to the active member (joins survive failover)
          pos = v.active != kNoMember ? v.active : slave_by_id(v, 0);
        } else if (v.n == 0) {
          pos = kNoMember;
        } else {
          pos = slave_by_id(v, rr_gen(counter, b.packets_per_slave) % v.n);
        }
        if (pos == kNoMember)
          tx_drop(w, b, m);
        else
          st.add(pos, m);
      }
      break;
    }

    case Mode::broadcast:
      // bond_xmit_broadcast: a copy to every member that is up with link
      // UP; the last member in the list gets the original.
      for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        bool used = false, sent = false;
        for (unsigned pos = 0; pos < v.n; pos++) {
          if (!(bit(v.link_up, pos) && v.dev[pos]->up())) continue;
          rte_mbuf* c = m;
          if (pos + 1 == v.n) {
            used = true;
          } else if ((c = clone(w, m, v.dev[pos]->index)) == nullptr) {
            continue;
          }
          st.add(static_cast<uint8_t>(pos), c);
          sent = true;
        }
        if (!sent)
          tx_drop(w, b, m);
        else if (!used)
          w.free_later(m);
      }
      break;

    case Mode::balance_alb:
      alb_start_xmit(w, b, v, pkts, n);  // alb.cc
      return false;

    case Mode::balance_tlb: {
      // bond_tlb_xmit: broadcast/multicast and non-IP to the active member;
      // IP unicast by hash (and bucket when dynamic). A frame leaving on
      // another member carries that member's own MAC as its source.
      auto& bytes = b.sys->workers[w.id]->tlb_bytes[b.idx];
      for (uint16_t i = 0; i < n; i++) {
        rte_mbuf* m = pkts[i];
        uint8_t pos = v.active;
        const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
        const uint16_t proto = static_cast<uint16_t>(d[12] << 8 | d[13]);
        if ((d[0] & 1) == 0 && (proto == 0x0800 || proto == 0x86dd) && v.n_usable != 0) {
          const uint32_t h = xmit_hash(b.policy, m);
          pos = tlb_choose(v, h, b.tlb_dynamic_lb);
          if (b.tlb_dynamic_lb) bytes[h & (kTlbBuckets - 1)] += m->pkt_len;
          if (pos != v.active && RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1)
            std::memcpy(rte_pktmbuf_mtod_offset(m, uint8_t*, 6), &b.members[pos]->perm_mac, 6);
          else if (pos != v.active)
            pos = v.active;  // a shared frame is not rewritten: it leaves as the bond
        }
        if (pos == kNoMember)
          tx_drop(w, b, m);
        else
          st.add(pos, m);
      }
      break;
    }
  }
  return true;
}

}  // namespace

// dev.xmit of the bond (n <= kBurst: dev_queue_xmit's vectors). The members'
// dev_queue_xmit runs after the bond-xmit stage has closed, so it is timed
// as the dev-queue-xmit it nests in (one stage boundary fewer per member).
void bond_start_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  while (n > kBurst) {  // the member vectors hold a burst
    bond_start_xmit(w, dev, pkts, kBurst);
    pkts += kBurst;
    n = static_cast<uint16_t>(n - kBurst);
  }
  if (n == 0) return;
  Bond& b = *static_cast<Bond*>(dev.xmit_ctx);
  const TxView& v = *b.view.load(std::memory_order_acquire);
  Staged st;
  uint8_t all = kNoMember;
  {
    StageScope scope(w.runtime, kStXmit, n);
    if (!choose(w, dev, b, v, pkts, n, st, &all)) return;
  }
  if (all != kNoMember)
    dev_queue_xmit_sorted(w, *v.dev[all], pkts, n);
  else
    st.send(w, v);
}

}  // namespace sluice::bond
