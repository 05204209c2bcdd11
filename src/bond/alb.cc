// balance-alb: receive load balancing by ARP rewriting (alb.hh; Linux
// reference drivers/net/bonding/bond_alb.c, spec §3.1 step 4/6, §3.3,
// BOND-09). Workers: the members' rx_handler (rlb_arp_recv as recv_probe,
// HOST by the member's current MAC, ALB unicast on inactive members, the
// bridge-port destination rewrite) and the bond's xmit (TLB with ALB's
// hash, ARP through the client's member). Control thread: the client
// table, member MACs and their swap on failover, the updates and learning
// frames (alb_monitor).
#include "bond/alb.hh"

#include <algorithm>
#include <cstring>

#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>

#include "bond/bond.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/meta.hh"
#include "core/netif.hh"

namespace sluice::bond {

static_assert(kAlbMaxMembers == kMaxMembers, "alb.hh and bond.hh agree");

namespace {

constexpr uint16_t kEthPArp = 0x0806;
constexpr uint16_t kEthPLoopback = 0x0060;  // ETH_P_LOOPBACK: alb_send_lp_vid's learning frame

inline bool same_mac(const uint8_t* a, const rte_ether_addr& b) {
  return std::memcmp(a, b.addr_bytes, 6) == 0;
}
inline bool same_mac(const rte_ether_addr& a, const rte_ether_addr& b) {
  return std::memcmp(a.addr_bytes, b.addr_bytes, 6) == 0;
}
inline bool is_link_local(const uint8_t* d) {  // 01:80:C2:00:00:0X
  return d[0] == 0x01 && d[1] == 0x80 && d[2] == 0xc2 && d[3] == 0 && d[4] == 0 &&
         (d[5] & 0xf0) == 0;
}
inline bool in_mask(uint32_t mask, uint8_t pos) {
  return pos < 32 && ((mask >> pos) & 1u) != 0;
}
inline bool writable(const rte_mbuf* m) {
  return RTE_MBUF_DIRECT(m) && rte_mbuf_refcnt_read(m) == 1;
}
// Ethernet/IPv4 ARP (the only kind RLB reads): the 28 bytes after the
// Ethernet header, or nullptr.
inline uint8_t* arp_of(rte_mbuf* m) {
  if (m->data_len < RTE_ETHER_HDR_LEN + 28) return nullptr;
  uint8_t* a = rte_pktmbuf_mtod_offset(m, uint8_t*, RTE_ETHER_HDR_LEN);
  if (a[0] != 0 || a[1] != 1 || a[2] != 0x08 || a[3] != 0 || a[4] != 6 || a[5] != 4) return nullptr;
  return a;
}
inline uint16_t arp_op(const uint8_t* a) {
  return static_cast<uint16_t>(a[6] << 8 | a[7]);
}
inline uint16_t vlan_of(const rte_mbuf* m) {
  const PktMeta& md = meta(m);
  return (md.flags & kFlagVlan) ? (md.vlan_tci & 0xfff) : 0;
}

void post(WorkerState& ws, const RlbEvent& ev) {
  RlbEvent e = ev;  // the ring API takes a non-const pointer
  if (ws.rlb == nullptr || rte_ring_sp_enqueue_elem(ws.rlb, &e, sizeof e) != 0) ws.rlb_lost++;
}

// rlb_arp_recv (recv_probe): an ARP reply a member received may carry a
// client's new MAC; the control thread decides (rlb_update_entry_from_arp).
void rlb_arp_recv(WorkerState& ws, Bond& b, rte_mbuf* m) {
  const uint8_t* a = arp_of(m);
  if (a == nullptr || arp_op(a) != 2) return;
  RlbEvent ev{};
  ev.kind = RlbEventKind::rx_reply;
  ev.bond = b.idx;
  std::memcpy(&ev.client_ip, a + 14, 4);
  std::memcpy(&ev.server_ip, a + 24, 4);
  std::memcpy(ev.client_mac, a + 8, 6);
  ev.vlan = vlan_of(m);
  post(ws, ev);
}

// rlb_choose_channel, the part that decides the member: the entry's member
// when it is this client's and can still send, else the next member of the
// rotation (the entry is claimed for the client).
uint8_t rlb_choose(Alb& a, const TxView& v, uint32_t client_ip) {
  std::atomic<uint64_t>& slot = a.slot[rlb_index(client_ip)];
  uint64_t cur = slot.load(std::memory_order_acquire);
  if ((cur & kRlbAssigned) && rlb_ip(cur) == client_ip && in_mask(v.usable_mask, rlb_pos(cur)))
    return rlb_pos(cur);
  if (v.n_usable == 0) return kNoMember;
  const uint32_t k = a.next_rx.fetch_add(1, std::memory_order_relaxed);
  const uint8_t pos = v.usable[k % v.n_usable];
  if (!slot.compare_exchange_strong(cur, rlb_pack(client_ip, pos), std::memory_order_acq_rel) &&
      (cur & kRlbAssigned) && rlb_ip(cur) == client_ip && in_mask(v.usable_mask, rlb_pos(cur)))
    return rlb_pos(cur);  // another worker (or the control thread) was first
  return pos;
}

// rlb_arp_xmit: an ARP the bond itself sends (its sender hardware address
// is one of the bond's MACs) leaves through the client's member; a reply
// names that member's MAC. Returns the member, or kNoMember for "not RLB's".
uint8_t rlb_arp_xmit(WorkerState& ws, Bond& b, const TxView& v, rte_mbuf* m) {
  uint8_t* a = arp_of(m);
  if (a == nullptr) return kNoMember;
  const uint16_t op = arp_op(a);
  if (op != 1 && op != 2) return kNoMember;
  bool ours = same_mac(a + 8, b.dev->mac);
  for (unsigned pos = 0; pos < v.n && !ours; pos++) ours = same_mac(a + 8, v.mac[pos]);
  if (!ours) return kNoMember;  // forwarded, not the bond's own
  uint32_t sip, tip;
  std::memcpy(&sip, a + 14, 4);
  std::memcpy(&tip, a + 24, 4);
  uint8_t pos = rlb_choose(*b.alb, v, tip);
  if (pos == kNoMember) return kNoMember;
  if (op == 2) {
    if (writable(m))
      std::memcpy(a + 8, v.mac[pos].addr_bytes, 6);
    else
      pos = v.active;  // a shared frame is not rewritten; the update that follows corrects it
  }
  RlbEvent ev{};
  ev.kind = op == 2 ? RlbEventKind::tx_reply : RlbEventKind::tx_request;
  ev.bond = b.idx;
  ev.client_ip = tip;
  ev.server_ip = sip;
  std::memcpy(ev.client_mac, a + 18, 6);
  ev.vlan = vlan_of(m);
  ev.pos = pos;
  post(ws, ev);
  return pos;
}

// bond_alb_xmit's choice for IP: no balancing for IGMP, the IPv4
// broadcast address and IPv6 from :: (DAD); the hash is the XOR of the
// destination address's bytes with tlb_dynamic_lb, else xmit_hash_policy.
bool alb_ip_hash(const Bond& b, const rte_mbuf* m, uint16_t proto, uint32_t* h) {
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  if (proto == 0x0800) {
    if (m->data_len < RTE_ETHER_HDR_LEN + 20) return false;
    const uint8_t* ip = d + RTE_ETHER_HDR_LEN;
    if (ip[9] == 2) return false;  // IGMP
    if (ip[16] == 0xff && ip[17] == 0xff && ip[18] == 0xff && ip[19] == 0xff) return false;
    *h = b.tlb_dynamic_lb ? alb_hash(ip + 16, 4) : xmit_hash(b.policy, m);
    return true;
  }
  if (m->data_len < RTE_ETHER_HDR_LEN + 40) return false;
  const uint8_t* ip6 = d + RTE_ETHER_HDR_LEN;
  bool any = true;
  for (unsigned i = 8; i < 24 && any; i++) any = ip6[i] == 0;
  if (any) return false;  // DAD probes are not balanced
  *h = b.tlb_dynamic_lb ? alb_hash(ip6 + 24, 16) : xmit_hash(b.policy, m);
  return true;
}

}  // namespace

// bond_handle_frame for a balance-alb member (spec §3.1): recv_probe is
// rlb_arp_recv; the frame is HOST when addressed to the member's current
// MAC; an inactive member suppresses only broadcast and multicast
// (link-local PASS, the rest EXACT); when the bond is a bridge port a HOST
// frame gets the bond's MAC as destination (step 6).
void alb_handle_frame(Worker& w, Member& mb, rte_mbuf** pkts, uint16_t n, RxResult* res) {
  Bond& b = *mb.bond;
  const TxView& v = *b.view.load(std::memory_order_acquire);
  WorkerState& ws = *b.sys->workers[w.id];
  const bool inactive = mb.inactive.load(std::memory_order_relaxed);
  const bool bridged = b.dev->master.load(std::memory_order_relaxed) != kNoDev;
  const rte_ether_addr& own = v.mac[mb.pos];
  const uint16_t bond_dev = b.dev->index;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    PktMeta& md = meta(m);
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    if ((d[0] & 1) == 0)
      md.pkt_type = static_cast<uint8_t>(same_mac(d, own) ? PktType::host : PktType::otherhost);
    if (md.protocol == kEthPArp) rlb_arp_recv(ws, b, m);
    const bool group = md.pkt_type == static_cast<uint8_t>(PktType::broadcast) ||
                       md.pkt_type == static_cast<uint8_t>(PktType::multicast);
    if (inactive && group) {
      res[i] = is_link_local(d) ? RxResult::pass : RxResult::exact;
      continue;
    }
    if (bridged && md.pkt_type == static_cast<uint8_t>(PktType::host) && !same_mac(d, b.dev->mac)) {
      if (!writable(m)) {
        rte_mbuf* c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
        if (c == nullptr) {
          w.drop(m, mb.dev->index, DropReason::nomem);
          res[i] = RxResult::consumed;
          continue;
        }
        std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
        w.free_later(m);
        pkts[i] = m = c;
      }
      std::memcpy(rte_pktmbuf_mtod(m, uint8_t*), b.dev->mac.addr_bytes, 6);
    }
    meta(m).dev = bond_dev;
    res[i] = RxResult::another;
  }
}

// bond_alb_xmit: ARP from the bond through the client's member (RLB, not
// when the bond is a bridge port: its ARP is the bridge's); IP unicast as
// balance-tlb with ALB's hash; everything else to the active member. A
// frame leaving on another member than the active one carries that
// member's current MAC as source.
void alb_start_xmit(Worker& w, Bond& b, const TxView& v, rte_mbuf** pkts, uint16_t n) {
  WorkerState& ws = *b.sys->workers[w.id];
  auto& bytes = ws.tlb_bytes[b.idx];
  const bool rlb_tx = b.dev->master.load(std::memory_order_relaxed) == kNoDev;
  rte_mbuf* out[kMaxMembers][kBurst];
  uint16_t cnt[kMaxMembers] = {};
  uint32_t touched = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    uint8_t pos = v.active;
    if (m->data_len >= RTE_ETHER_HDR_LEN) {
      uint8_t* d = rte_pktmbuf_mtod(m, uint8_t*);
      const uint16_t proto = static_cast<uint16_t>(d[12] << 8 | d[13]);
      uint32_t h;
      if (proto == kEthPArp) {
        if (rlb_tx) {
          const uint8_t p = rlb_arp_xmit(ws, b, v, m);
          if (p != kNoMember) pos = p;
        }
      } else if ((d[0] & 1) == 0 && (proto == 0x0800 || proto == 0x86dd) && v.n_usable != 0 &&
                 alb_ip_hash(b, m, proto, &h)) {
        const uint8_t p = tlb_choose(v, h, b.tlb_dynamic_lb);
        if (b.tlb_dynamic_lb) bytes[h & (kTlbBuckets - 1)] += m->pkt_len;
        if (p != kNoMember) pos = p;
      }
      if (pos != v.active && pos != kNoMember) {
        if (writable(m))
          std::memcpy(d + 6, v.mac[pos].addr_bytes, 6);
        else
          pos = v.active;
      }
    }
    if (pos == kNoMember || !(in_mask(v.link_up, pos) && v.dev[pos]->up())) {
      w.c(b.dev->index).tx_dropped++;  // bond_tx_drop
      w.drop(m, b.dev->index, DropReason::bond_no_member);
      continue;
    }
    if (cnt[pos] == kBurst) {
      dev_queue_xmit(w, *v.dev[pos], out[pos], cnt[pos]);
      cnt[pos] = 0;
    }
    SLUICE_TRACE(w, m, "bond_alb_xmit", b.dev->index, "member chosen", v.dev[pos]->index);
    out[pos][cnt[pos]++] = m;
    touched |= 1u << pos;
  }
  while (touched != 0) {
    const unsigned pos = static_cast<unsigned>(__builtin_ctz(touched));
    touched &= touched - 1;
    if (cnt[pos] != 0) dev_queue_xmit(w, *v.dev[pos], out[pos], cnt[pos]);
  }
}

// ---- the control thread ------------------------------------------------------------------------

namespace {

bool valid_unicast(const rte_ether_addr& a) {
  return rte_is_valid_assigned_ether_addr(&a) != 0;  // not zero, not multicast
}

bool can_tx(const Member& m) {
  return m.link == LinkState::up && !m.backup && m.dev->up();
}

// __rlb_next_rx_slave over the usable members (enslave order), kNoMember if none.
uint8_t next_rx(Bond& b) {
  if (b.usable.empty()) return kNoMember;
  const uint32_t k = b.alb->next_rx.fetch_add(1, std::memory_order_relaxed);
  return b.usable[k % b.usable.size()];
}

void set_client(Alb& a, unsigned idx, uint8_t pos) {
  RlbClient& c = a.client[idx];
  c.pos = pos;
  a.slot[idx].store(rlb_pack(c.ip_dst, pos), std::memory_order_release);
}

}  // namespace

// alb_send_lp_vid: dst = src = the MAC, so the switch learns it on that member.
void alb_learning(BondSys& sys, Bond& b, Member& via, const rte_ether_addr& mac) {
  uint8_t* p;
  rte_mbuf* f = new_frame(sys.pool, 60, &p);
  if (f == nullptr) return;
  std::memcpy(p, mac.addr_bytes, 6);
  std::memcpy(p + 6, mac.addr_bytes, 6);
  p[12] = kEthPLoopback >> 8, p[13] = kEthPLoopback & 0xff;
  frame_meta(f, via.dev->index, kEthPLoopback, 0);
  if (!sys.inject(f))
    b.ctr.inject_failed++;
  else if (b.alb != nullptr)
    b.alb->learning_sent++;
  else
    b.ctr.learning_sent++;
}

namespace {

void learning(BondSys& sys, Bond& b, Member& via, const rte_ether_addr& mac) {
  alb_learning(sys, b, via, mac);
}

// rlb_update_client: RLB_ARP_BURST_SIZE ARP replies that tell the client
// its member's MAC for the bond's address, sent on that member.
void update_client(BondSys& sys, Bond& b, const RlbClient& c) {
  if (!c.assigned || c.pos >= b.members.size() || !valid_unicast(c.mac_dst)) return;
  Member& mb = *b.members[c.pos];
  const rte_ether_addr& mac = b.alb->mac[c.pos];
  for (unsigned k = 0; k < kRlbArpBurst; k++) {
    uint8_t* p;
    rte_mbuf* f = new_frame(sys.pool, 60, &p);
    if (f == nullptr) return;
    std::memcpy(p, c.mac_dst.addr_bytes, 6);
    std::memcpy(p + 6, mac.addr_bytes, 6);
    p[12] = 0x08, p[13] = 0x06;
    uint8_t* a = p + RTE_ETHER_HDR_LEN;
    a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = 2;  // Ethernet, IPv4, reply
    std::memcpy(a + 8, mac.addr_bytes, 6);
    std::memcpy(a + 14, &c.ip_src, 4);
    std::memcpy(a + 18, c.mac_dst.addr_bytes, 6);
    std::memcpy(a + 24, &c.ip_dst, 4);
    frame_meta(f, mb.dev->index, kEthPArp, c.vlan);
    if (sys.inject(f))
      b.alb->updates_sent++;
    else
      b.ctr.inject_failed++;
  }
}

// rlb_req_update_slave_clients.
void update_member_clients(Bond& b, uint8_t pos) {
  Alb& a = *b.alb;
  for (RlbClient& c : a.client)
    if (c.assigned && c.pos == pos && valid_unicast(c.mac_dst)) {
      c.ntt = true;
      a.rx_ntt = true;
    }
}

// rlb_choose_channel's bookkeeping for an ARP the bond sent (the worker
// chose the member), rlb_req_update_subnet_clients after a request, and
// rlb_update_entry_from_arp for a reply received.
void handle_event(BondSys& sys, Bond& b, const RlbEvent& ev) {
  Alb& a = *b.alb;
  a.events++;
  const unsigned idx = rlb_index(ev.client_ip);
  RlbClient& c = a.client[idx];
  rte_ether_addr mac;
  std::memcpy(mac.addr_bytes, ev.client_mac, 6);
  if (ev.kind == RlbEventKind::rx_reply) {
    if (c.assigned && c.ip_src == ev.server_ip && c.ip_dst == ev.client_ip &&
        !same_mac(c.mac_dst, mac)) {
      c.mac_dst = mac;
      c.ntt = true;
      a.rx_ntt = true;
    }
    return;
  }
  if (c.assigned && c.ip_src == ev.server_ip && c.ip_dst == ev.client_ip) {
    if (!rte_is_broadcast_ether_addr(&mac)) c.mac_dst = mac;
    c.pos = ev.pos;
  } else {
    // The entry held another client: it goes back to the active member
    // (it was told so), the new client takes the entry.
    if (c.assigned && c.ip_dst != ev.client_ip && b.curr_active != nullptr &&
        c.pos != b.curr_active->pos) {
      c.pos = b.curr_active->pos;
      update_client(sys, b, c);
    }
    c.assigned = true;
    c.ip_src = ev.server_ip;
    c.ip_dst = ev.client_ip;
    c.mac_dst = mac;
    c.pos = ev.pos;
    c.vlan = ev.vlan;
    c.ntt = valid_unicast(mac);
    if (c.ntt) a.rx_ntt = true;
  }
  if (ev.kind == RlbEventKind::tx_request) {
    // The broadcast request taught every client of that address the bond's
    // MAC: those on other members are told theirs again, after the delay.
    a.update_delay = kRlbUpdateDelayTicks;
    const rte_ether_addr& bmac = b.dev->mac;
    for (RlbClient& o : a.client)
      if (o.assigned && o.ip_src == ev.server_ip && o.pos < b.members.size() &&
          !same_mac(a.mac[o.pos], bmac) && !rte_is_zero_ether_addr(&o.mac_dst)) {
        o.ntt = true;
        a.rx_ntt = true;
      }
  }
}

// rlb_rebalance: every client to the next member of the rotation.
void rebalance(Bond& b) {
  Alb& a = *b.alb;
  bool ntt = false;
  for (unsigned i = 0; i < kRlbEntries; i++) {
    RlbClient& c = a.client[i];
    if (!c.assigned) continue;
    const uint8_t pos = next_rx(b);
    if (pos != kNoMember && pos != c.pos) {
      set_client(a, i, pos);
      if (!rte_is_zero_ether_addr(&c.mac_dst)) {
        c.ntt = true;
        ntt = true;
      }
    }
  }
  if (ntt) a.rx_ntt = true;
  a.rebalances++;
}

// rlb_clear_slave: the member's clients to the others; when it is not the
// active member, the switch learns its MAC behind the active one
// (rlb_teach_disabled_mac_on_primary).
void clear_member(BondSys& sys, Bond& b, Member& m) {
  Alb& a = *b.alb;
  for (unsigned i = 0; i < kRlbEntries; i++) {
    RlbClient& c = a.client[i];
    if (!c.assigned || c.pos != m.pos) continue;
    const uint8_t pos = next_rx(b);
    set_client(a, i, pos);
    if (pos == kNoMember) continue;
    a.moved++;
    if (valid_unicast(c.mac_dst)) {
      c.ntt = true;
      a.rx_ntt = true;
      a.update_retry = kRlbUpdateRetry;  // retry: under stress a client may miss one
    }
  }
  if (b.curr_active != nullptr && b.curr_active != &m)
    learning(sys, b, *b.curr_active, a.mac[m.pos]);
}

// alb_monitor, one 100 ms tick.
void monitor(BondSys& sys, Bond& b) {
  Alb& a = *b.alb;
  if (++a.lp_counter >= kAlbLpTicks) {
    for (auto& m : b.members)
      if (can_tx(*m)) learning(sys, b, *m, a.mac[m->pos]);
    a.lp_counter = 0;
  }
  if (a.rebalance) {
    a.rebalance = false;
    rebalance(b);
  }
  if (a.rx_ntt) {
    if (a.update_delay != 0) {
      a.update_delay--;
    } else {
      // rlb_update_rx_clients.
      for (RlbClient& c : a.client) {
        if (!c.assigned || !c.ntt) continue;
        update_client(sys, b, c);
        if (a.update_retry == 0) c.ntt = false;
      }
      a.update_delay = kRlbUpdateDelayTicks;  // do not confuse the clients
      if (a.update_retry != 0)
        a.update_retry--;
      else
        a.rx_ntt = false;
    }
  }
}

}  // namespace

void alb_drain_events(BondSys& sys) {
  for (auto& ws : sys.workers) {
    if (ws->rlb == nullptr) continue;
    RlbEvent evs[32];
    unsigned k;
    while ((k = rte_ring_sc_dequeue_burst_elem(ws->rlb, evs, sizeof(RlbEvent), 32, nullptr)) != 0)
      for (unsigned i = 0; i < k; i++) {
        const RlbEvent& ev = evs[i];
        Bond* b = sys.by_idx(ev.bond);  // nullptr: a bond a reload removed
        if (b != nullptr && b->alb != nullptr &&
            (ev.kind == RlbEventKind::rx_reply || ev.pos < b->members.size()))
          handle_event(sys, *b, ev);
      }
  }
}

// bond_alb_init_slave + alb_handle_addr_collision_on_attach: members keep
// their own MACs; one that would repeat the bond's or another member's
// takes the permanent MAC of a member none carries, else (sluice only; Linux
// refuses the member) a locally administered MAC made from the bond's.
void alb_init(BondSys&, Bond& b) {
  b.alb = std::make_unique<Alb>();
  Alb& a = *b.alb;
  const rte_ether_addr& bmac = b.dev->mac;
  auto carried = [&](const rte_ether_addr& x, size_t upto) {
    for (size_t j = 0; j < upto; j++)
      if (same_mac(a.mac[j], x)) return true;
    return false;
  };
  for (size_t i = 0; i < b.members.size(); i++) {
    Member& m = *b.members[i];
    rte_ether_addr mac = m.perm_mac;
    if (i != 0 && (same_mac(mac, bmac) || carried(mac, i))) {
      bool found = false;
      for (size_t j = 0; j < i && !found; j++)  // the members enslaved before it
        if (const rte_ether_addr& o = b.members[j]->perm_mac;
            !carried(o, i) && !same_mac(o, bmac) && !same_mac(o, m.perm_mac)) {
          mac = o;
          found = true;
        }
      for (uint8_t k = 0; !found; k++) {
        mac = bmac;
        mac.addr_bytes[0] = static_cast<uint8_t>((mac.addr_bytes[0] | 0x02) & ~0x01);
        mac.addr_bytes[5] = static_cast<uint8_t>(mac.addr_bytes[5] ^ (0x80 | (i + k)));
        found = !carried(mac, i) && !same_mac(mac, bmac);
      }
      spdlog::info("bond {}: {} takes MAC {} (its own is in use)", b.dev->name, m.dev->name,
                   mac_to_string(mac));
    }
    a.mac[i] = mac;
    Device& d = *m.dev;
    d.mac = mac;  // before the workers start: a plain field
    if (d.kind == DevKind::port && rte_eth_dev_is_valid_port(d.port_id)) {
      rte_ether_addr x = mac;
      rte_eth_dev_default_mac_addr_set(d.port_id, &x);  // best effort: the member is promiscuous
      if (!d.promiscuous) rte_eth_promiscuous_enable(d.port_id);
    }
    // A swapped MAC must still be received (Linux reprograms the NIC).
    d.promiscuous = true;
  }
  a.rebalance = true;
}

void alb_init_workers(BondSys& sys) {
  static std::atomic<unsigned> serial{0};
  for (auto& ws : sys.workers) {
    if (ws->rlb != nullptr) continue;
    const std::string name = "bdrlb" + std::to_string(serial.fetch_add(1));
    ws->rlb = rte_ring_create_elem(name.c_str(), sizeof(RlbEvent), 1024, SOCKET_ID_ANY,
                                   RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (ws->rlb == nullptr) spdlog::warn("bond: cannot create ring {}: RLB events are lost", name);
  }
}

void alb_tick(BondSys& sys, Bond& b) {
  alb_drain_events(sys);
  const uint64_t now = sys.now_ms();
  if (now < b.alb->next_ms) return;
  b.alb->next_ms = now + kAlbTickMs;
  monitor(sys, b);
}

// bond_alb_handle_link_change (the RLB part): down → its clients move;
// up → every client is rebalanced at the next tick.
void alb_link_change(BondSys& sys, Bond& b, Member& m, bool up) {
  if (b.alb == nullptr) return;
  if (up)
    b.alb->rebalance = true;
  else
    clear_member(sys, b, m);
}

// bond_alb_handle_active_change: the new active member takes the bond's
// MAC from the old one (or from whoever carries it), which takes the new
// one's; both tell the switch (learning frames) and their clients.
void alb_active_change(BondSys& sys, Bond& b, Member* old, Member* next) {
  if (b.alb == nullptr || next == nullptr) return;
  Alb& a = *b.alb;
  const rte_ether_addr& bmac = b.dev->mac;
  Member* swap = old;
  if (swap == nullptr)
    for (auto& m : b.members)
      if (same_mac(a.mac[m->pos], bmac)) swap = m.get();
  if (swap == next) return;
  if (swap == nullptr) {
    a.mac[next->pos] = bmac;
    learning(sys, b, *next, bmac);
    return;
  }
  std::swap(a.mac[swap->pos], a.mac[next->pos]);
  sys.publish(b);  // the learning frames and updates leave with the new MACs
  Member* disabled = nullptr;
  for (Member* m : {swap, next}) {
    if (!can_tx(*m)) {
      disabled = m;
      continue;
    }
    learning(sys, b, *m, a.mac[m->pos]);
    update_member_clients(b, m->pos);
  }
  if (disabled != nullptr && can_tx(*next) && disabled != next)
    learning(sys, b, *next, a.mac[disabled->pos]);
}

}  // namespace sluice::bond
