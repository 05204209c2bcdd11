// The ARP monitor (drivers/net/bonding/bond_main.c, Linux 6.x): for links
// whose carrier never drops (af_packet and tap ports never report carrier
// loss), every arp_interval the bond sends ARP requests to its
// arp_ip_targets and judges each member by whether it received traffic
// (with arp_validate: validated ARP) within bond_time_in_interval's window.
//
//   active-backup   bond_ab_arp_inspect / bond_ab_arp_commit / bond_ab_arp_probe:
//                   probes leave through the active member; with none, the
//                   members are tried one after another (current_arp_slave)
//   other modes     bond_loadbalance_arp_mon: every member probes and must
//                   have sent and received within the window
//
// The workers stamp receive times (bond_rcv_validate, bond_input.cc) with
// BondSys::clock_ms; everything else runs on the control thread.
// Spec: ../shared/spec/linux-rx.md §3.5.
#include <algorithm>
#include <cstring>

#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "bond/bond.hh"
#include "core/dataplane.hh"
#include "core/meta.hh"

namespace sluice::bond {

// bond_time_in_interval: now within [last - d, last + mod * d + d / 2].
bool BondSys::in_interval(const Bond& b, uint64_t last, unsigned mod) const {
  const uint64_t d = b.arp.interval_ms;
  const uint64_t lo = last > d ? last - d : 0;
  return now_ms_ >= lo && now_ms_ <= last + mod * d + d / 2;
}

// slave_last_rx: with arp_all_targets all (and validation on for the
// member's state), the oldest of the per-target receive times.
uint64_t BondSys::slave_last_rx(const Member& m) const {
  const Bond& b = *m.bond;
  const uint8_t state_bit = m.backup ? 2 : 1;
  uint64_t last = 0;
  for (auto& ws : workers)
    if (m.gidx < ws->ctr.size()) last = std::max(last, ws->ctr[m.gidx].last_rx_ms);
  if (b.arp.all_targets && (b.arp.validate & state_bit)) {
    uint64_t oldest = UINT64_MAX;
    for (size_t t = 0; t < b.arp.targets.size(); t++) {
      uint64_t tl = 0;
      for (auto& ws : workers)
        if (m.gidx < ws->ctr.size()) tl = std::max(tl, ws->ctr[m.gidx].target_last_rx_ms[t]);
      oldest = std::min(oldest, tl);
    }
    return oldest == UINT64_MAX ? last : oldest;
  }
  return last;
}

namespace {

// arp_create(ARPOP_REQUEST, ETH_P_ARP, target, member, sip, broadcast, member MAC, 0).
rte_mbuf* arp_request(rte_mempool* mp, const rte_ether_addr& mac, uint32_t sip, uint32_t tip) {
  if (mp == nullptr) return nullptr;
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return nullptr;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 60));
  if (p == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memset(p, 0, 60);
  std::memset(p, 0xff, 6);
  std::memcpy(p + 6, mac.addr_bytes, 6);
  p[12] = 0x08, p[13] = 0x06;
  uint8_t* a = p + 14;
  a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = 1;  // Ethernet, IPv4, request
  std::memcpy(a + 8, mac.addr_bytes, 6);
  std::memcpy(a + 14, &sip, 4);
  std::memcpy(a + 24, &tip, 4);
  return m;
}

}  // namespace

// bond_arp_send_all: one request per target from the member, with the
// bond's address in the target's subnet (bond_confirm_addr) — 0 when no
// connected route to the target goes through the bond.
void BondSys::arp_send_all(Bond& b, Member& m) {
  const auto& addrs = b.arp_sources;
  for (uint32_t target : b.arp.targets) {
    uint32_t sip = 0;
    uint16_t vlan = 0;
    for (const auto& a : addrs)
      if (((a.ip ^ target) & a.mask) == 0) {
        sip = a.ip;
        vlan = a.vlan;
        break;
      }
    rte_mbuf* f = arp_request(pool, m.dev->mac, sip, target);
    if (f == nullptr) continue;
    PktMeta& md = meta(f);
    md = PktMeta{};
    md.dev = md.orig_dev = m.dev->index;  // straight onto the member (dev_queue_xmit(slave))
    md.protocol = 0x0806;
    md.pkt_type = static_cast<uint8_t>(PktType::outgoing);
    if (vlan != 0) {
      md.flags |= kFlagVlan;
      md.vlan_proto = 0x8100;
      md.vlan_tci = vlan;
    }
    if (inject(f)) {
      b.arp.probes_sent++;
      if (m.dev->up()) m.last_tx_ms = now_ms_;  // what the device will send: dev_trans_start
    } else {
      b.ctr.inject_failed++;
    }
  }
}

// bond_activebackup_arp_mon.
void BondSys::ab_arp_mon(Bond& b) {
  // bond_ab_arp_inspect.
  int commit = 0;
  for (auto& mp : b.members) {
    Member& m = *mp;
    m.has_proposal = false;
    const uint64_t last_rx = slave_last_rx(m);
    auto propose = [&](LinkState s) {
      m.proposed = s;
      m.has_proposal = true;
      commit++;
    };
    if (m.link != LinkState::up) {
      if (in_interval(b, last_rx, 1))
        propose(LinkState::up);
      else if (m.link == LinkState::back)
        propose(LinkState::fail);
      continue;
    }
    // Members get 2 intervals after being enslaved or made active.
    if (in_interval(b, m.last_link_up_ms, 2)) continue;
    if (m.backup && b.arp.current_arp_slave == nullptr &&
        !in_interval(b, last_rx, b.arp.missed_max + 1))
      propose(LinkState::down);
    if (!m.backup && (!in_interval(b, m.last_tx_ms, b.arp.missed_max) ||
                      !in_interval(b, last_rx, b.arp.missed_max)))
      propose(LinkState::down);
  }
  if (commit != 0) {
    // bond_ab_arp_commit.
    bool do_failover = false;
    for (auto& mp : b.members) {
      Member& m = *mp;
      if (!m.has_proposal) continue;
      m.has_proposal = false;
      switch (m.proposed) {
        case LinkState::up:
          if (b.curr_active != &m) {
            set_link(m, LinkState::up);
            m.last_link_up_ms = now_ms_;
            if (Member* cas = b.arp.current_arp_slave) {
              set_inactive_flags(b, *cas, now_ms_);
              b.arp.current_arp_slave = nullptr;
            }
            spdlog::info("bond {}: link status definitely up for interface {}", b.dev->name,
                         m.dev->name);
            if (b.curr_active == nullptr || &m == b.primary) do_failover = true;
          }
          break;
        case LinkState::down:
          m.link_failure_count++;
          set_link(m, LinkState::down);
          set_inactive_flags(b, m, now_ms_);
          spdlog::info("bond {}: link status definitely down for interface {}, disabling it",
                       b.dev->name, m.dev->name);
          if (&m == b.curr_active) {
            b.arp.current_arp_slave = nullptr;
            do_failover = true;
          }
          break;
        case LinkState::fail:
          set_link(m, LinkState::fail);
          set_inactive_flags(b, m, now_ms_);
          if (b.curr_active != nullptr) b.arp.current_arp_slave = nullptr;
          break;
        default:
          break;
      }
    }
    if (do_failover) select_active(b);
    set_carrier(b);
    publish(b);
  }

  // bond_ab_arp_probe.
  if (b.curr_active != nullptr) {
    arp_send_all(b, *b.curr_active);
  } else {
    Member* cas = b.arp.current_arp_slave;
    if (cas == nullptr) cas = b.members.front().get();
    Member *before = nullptr, *next = nullptr;
    bool found = false, changed = false;
    for (auto& mp : b.members) {
      Member& m = *mp;
      if (!found && before == nullptr && m.dev->up()) before = &m;
      if (found && next == nullptr && m.dev->up()) next = &m;
      if (!m.dev->up() && m.link == LinkState::up) {
        set_link(m, LinkState::down);
        m.link_failure_count++;
        set_inactive_flags(b, m, now_ms_);
        changed = true;
        spdlog::info("bond {}: backup interface {} is now down", b.dev->name, m.dev->name);
      }
      if (&m == cas) found = true;
    }
    if (next == nullptr) next = before;
    if (next != nullptr) {
      set_link(*next, LinkState::back);
      set_active_flags(*next, now_ms_);
      arp_send_all(b, *next);
      next->last_link_up_ms = now_ms_;
      b.arp.current_arp_slave = next;
      changed = true;
    }
    if (changed) publish(b);
  }

  // What the workers' validation needs (bond_arp_rcv's cases b and c).
  Member* ca = b.curr_active;
  b.arp.active_validated.store(ca != nullptr && slave_last_rx(*ca) > ca->last_link_up_ms,
                               std::memory_order_relaxed);
  Member* cas = b.arp.current_arp_slave;
  b.arp.arp_slave_recent.store(cas != nullptr && in_interval(b, cas->last_tx_ms, 1),
                               std::memory_order_relaxed);
}

// bond_loadbalance_arp_mon.
void BondSys::lb_arp_mon(Bond& b) {
  Member* oldcurrent = b.curr_active;
  bool do_failover = false, changed = false;
  for (auto& mp : b.members) {
    Member& m = *mp;
    m.has_proposal = false;
    const uint64_t last_rx = slave_last_rx(m);
    if (m.link != LinkState::up) {
      if (in_interval(b, m.last_tx_ms, 1) && in_interval(b, last_rx, 1)) {
        m.proposed = LinkState::up;
        m.has_proposal = changed = true;
        if (oldcurrent == nullptr) do_failover = true;
        spdlog::info("bond {}: interface {} is now up", b.dev->name, m.dev->name);
      }
    } else if (!in_interval(b, m.last_tx_ms, b.arp.missed_max) ||
               !in_interval(b, last_rx, b.arp.missed_max)) {
      m.proposed = LinkState::down;
      m.has_proposal = changed = true;
      m.link_failure_count++;
      spdlog::info("bond {}: interface {} is now down", b.dev->name, m.dev->name);
      if (&m == oldcurrent) do_failover = true;
    }
    if (m.dev->up()) arp_send_all(b, m);
  }
  if (!(do_failover || changed)) return;
  for (auto& mp : b.members)
    if (mp->has_proposal) {
      set_link(*mp, mp->proposed);
      mp->has_proposal = false;
    }
  if (changed && b.mode == Mode::balance_xor) update_slave_arr(b);
  if (do_failover) select_active(b);
  set_carrier(b);
  publish(b);
}

void BondSys::arp_monitor(Bond& b) {
  if (b.mode == Mode::active_backup)
    ab_arp_mon(b);
  else
    lb_arp_mon(b);
  if (b.notify_left != 0 && b.curr_active != nullptr) {  // num_grat_arp > 1
    notify_peers(b);
    b.notify_left--;
  }
}

}  // namespace sluice::bond
