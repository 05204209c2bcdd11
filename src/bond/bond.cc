// The bonding feature's control side: building bonds from the topology
// (bond_enslave), the MII monitor (bond_mii_monitor: inspect + commit, spec
// §3.5), active member selection (bond_select_active_slave,
// bond_find_best_slave, bond_choose_primary_or_current), failover
// (bond_change_active_slave) with peer notification (gratuitous ARP,
// unsolicited NA, learning frames when the bond is a bridge port), the
// usable-member array (bond_update_slave_arr), the bond's carrier
// (bond_set_carrier), and the TxView the workers transmit with.
#include <arpa/inet.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

#include <rte_ethdev.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <spdlog/spdlog.h>

#include "bond/bond.hh"
#include "bond/config.hh"
#include "bridge/config.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"
#include "l3/config.hh"

namespace sluice::bond {

namespace {
std::atomic<unsigned> g_ring_serial{0};

void free_ring_mbufs(rte_ring* r) {
  if (r == nullptr) return;
  void* m;
  while (rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

const char* const kModeNames[] = {"balance-rr", "active-backup", "balance-xor", "broadcast",
                                  "802.3ad",    "balance-tlb",   "balance-alb"};
const char* const kPolicyNames[] = {"layer2",   "layer3+4", "layer2+3",
                                    "encap2+3", "encap3+4", "vlan+srcmac"};
const char* const kLinkNames[] = {"up", "fail", "down", "back"};
}  // namespace

const char* mode_name(Mode m) {
  return enum_name(m, kModeNames);
}
bool parse_mode(const std::string& s, Mode* out) {
  for (unsigned i = 0; i < std::size(kModeNames); i++)
    if (s == kModeNames[i]) {
      *out = static_cast<Mode>(i);
      return true;
    }
  return false;
}
const char* policy_name(HashPolicy p) {
  return enum_name(p, kPolicyNames);
}
bool parse_policy(const std::string& s, HashPolicy* out) {
  for (unsigned i = 0; i < std::size(kPolicyNames); i++)
    if (s == kPolicyNames[i]) {
      *out = static_cast<HashPolicy>(i);
      return true;
    }
  return false;
}
const char* link_state_name(LinkState s) {
  return enum_name(s, kLinkNames);
}

BondSys::BondSys(Dataplane& d) : dp(d) {}

BondSys::~BondSys() {
  unregister_observers(*this);
  for (auto& ws : workers) {
    free_ring_mbufs(ws->slow);
    rte_ring_free(ws->slow);
    rte_ring_free(ws->rlb);
  }
  for (auto& b : bonds) {
    for (auto& m : b->members)
      if (m->dev->rx_handler_ctx.load() == m.get()) dp.net.clear_rx_handler(*m->dev);
    delete b->view.load();
  }
  for (auto& b : retired) delete b->view.load();  // bonds a reload removed
}

Bond* BondSys::find(const std::string& name) const {
  for (auto& b : bonds)
    if (b->dev->name == name) return b.get();
  return nullptr;
}

Member* BondSys::find_member(uint16_t dev_index) const {
  for (Member* m : all_members)
    if (m->dev->index == dev_index) return m;
  return nullptr;
}

void BondSys::init_workers() {
  while (workers.size() < dp.workers.size()) {
    const unsigned id = static_cast<unsigned>(workers.size());
    auto ws = std::make_unique<WorkerState>();
    std::string name =
        "bdslow" + std::to_string(g_ring_serial.fetch_add(1)) + "_" + std::to_string(id);
    ws->slow = rte_ring_create(name.c_str(), 512, SOCKET_ID_ANY,
                               RING_F_SP_ENQ | RING_F_SC_DEQ | RING_F_EXACT_SZ);
    if (ws->slow == nullptr) throw std::runtime_error("bond: cannot create ring " + name);
    workers.push_back(std::move(ws));
  }
}

MemberCounters BondSys::member_counters(const Member& m) const {
  MemberCounters s{};
  for (auto& ws : workers) {
    if (m.gidx >= ws->ctr.size()) continue;
    const MemberCounters& c = ws->ctr[m.gidx];
    s.lacpdu_illegal_rx += c.lacpdu_illegal_rx;
    s.lacpdu_unknown_rx += c.lacpdu_unknown_rx;
    s.slow_ring_full += c.slow_ring_full;
    s.arp_validated += c.arp_validated;
    s.arp_not_validated += c.arp_not_validated;
    s.last_rx_ms = std::max(s.last_rx_ms, c.last_rx_ms);
  }
  return s;
}

bool BondSys::inject(rte_mbuf* m) {
  const size_t nw = dp.workers.size();
  for (size_t tries = 0; tries < nw; tries++) {
    Worker& w = *dp.workers[inject_rr_++ % nw];
    if (w.inject != nullptr && rte_ring_sp_enqueue(w.inject, m) == 0) return true;
  }
  rte_pktmbuf_free(m);
  return false;
}

// ---- the view the workers read --------------------------------------------------------------

void BondSys::publish(Bond& b) {
  auto* v = new TxView();
  v->n = static_cast<uint8_t>(b.members.size());
  for (auto& m : b.members) {
    v->dev[m->pos] = m->dev;
    if (m->link == LinkState::up) v->link_up |= 1u << m->pos;
    if (!m->backup) v->is_active |= 1u << m->pos;
  }
  v->active = b.curr_active != nullptr ? b.curr_active->pos : kNoMember;
  v->n_usable = static_cast<uint8_t>(b.usable.size());
  if (v->n_usable != 0) v->usable_mod = ~uint64_t(0) / v->n_usable + 1;
  std::copy(b.usable.begin(), b.usable.end(), v->usable);
  for (uint8_t pos : b.usable) v->usable_mask |= 1u << pos;
  std::copy(std::begin(b.tlb_map), std::end(b.tlb_map), v->tlb);
  if (b.alb != nullptr) std::copy(std::begin(b.alb->mac), std::end(b.alb->mac), v->mac);
  dp.rcu.publish(b.view, static_cast<const TxView*>(v));
}

// bond_update_slave_arr: members that can send, in enslave order.
void BondSys::update_slave_arr(Bond& b) {
  if (!b.has_usable_arr()) return;
  b.usable.clear();
  const AdAggregator* agg = b.mode == Mode::ieee8023ad ? ad_active_agg(b) : nullptr;
  if (b.mode == Mode::ieee8023ad && agg == nullptr) return;  // no active aggregator: nothing
  for (auto& m : b.members) {
    if (!(m->dev->up() && m->link == LinkState::up && !m->backup)) continue;
    if (agg != nullptr && m->ad.aggregator != agg) continue;
    b.usable.push_back(m->pos);
  }
}

// bond_set_carrier: carrier while some member's link is UP.
void BondSys::set_carrier(Bond& b) {
  bool up = false;
  if (b.mode == Mode::ieee8023ad)
    up = ad_active_agg(b) != nullptr;  // bond_3ad_set_carrier
  else
    for (auto& m : b.members) up = up || m->link == LinkState::up;
  if (b.dev->oper_up.load() != up) {
    b.dev->oper_up.store(up);
    spdlog::info("bond {}: carrier {}", b.dev->name, up ? "on" : "off");
  }
}

void BondSys::set_link(Member& m, LinkState s) {
  if (m.link == s) return;
  m.link = s;
  m.last_change_ms = now_ms_;
}

// ---- active member selection ---------------------------------------------------------------

Member* BondSys::choose_primary_or_current(Bond& b) {
  Member* prim = b.primary;
  Member* curr = b.curr_active;
  if (prim == nullptr || prim->link != LinkState::up) {
    // 6.x: the highest prio among UP members (all prios are equal here:
    // the first UP member), if it is not the current one.
    Member* hprio = nullptr;
    for (auto& m : b.members)
      if (m->link == LinkState::up) {
        hprio = m.get();
        break;
      }
    if (hprio != nullptr && hprio != curr) {
      prim = hprio;
    } else {
      if (curr == nullptr || curr->link != LinkState::up) return nullptr;
      return curr;
    }
  } else if (b.force_primary) {
    b.force_primary = false;
    return prim;
  }
  if (curr == nullptr || curr->link != LinkState::up) return prim;
  switch (b.reselect) {
    case Reselect::always:
      return prim;
    case Reselect::better:
      if (prim->speed_mbps < curr->speed_mbps) return curr;
      if (prim->speed_mbps == curr->speed_mbps && prim->full_duplex <= curr->full_duplex)
        return curr;
      return prim;
    case Reselect::failure:
      return curr;
  }
  return curr;
}

Member* BondSys::find_best(Bond& b) {
  if (Member* m = choose_primary_or_current(b)) return m;
  Member* best = nullptr;
  int mintime = b.updelay;
  for (auto& m : b.members) {
    if (m->link == LinkState::up) return m.get();
    if (m->link == LinkState::back && m->dev->up() && m->delay < mintime) {
      mintime = m->delay;
      best = m.get();
    }
  }
  return best;
}

void BondSys::select_active(Bond& b) {
  Member* best = find_best(b);
  if (best != b.curr_active) {
    change_active(b, best);
    set_carrier(b);
  }
}

void BondSys::change_active(Bond& b, Member* next) {
  Member* old = b.curr_active;
  if (next != nullptr) {
    next->last_link_up_ms = now_ms_;
    if (next->link == LinkState::back) {
      if (b.uses_primary())
        spdlog::info("bond {}: making interface {} the new active one {} ms earlier", b.dev->name,
                     next->dev->name, (b.updelay - next->delay) * int(b.miimon_ms));
      next->delay = 0;
      set_link(*next, LinkState::up);
      if (b.mode == Mode::ieee8023ad) ad_link_change(*next, LinkState::up);
    } else if (b.uses_primary()) {
      spdlog::info("bond {}: making interface {} the new active one", b.dev->name, next->dev->name);
    }
  }
  b.curr_active = next;
  if (b.mode == Mode::balance_tlb || b.mode == Mode::balance_alb) {
    // RX only on the active member (the others stay inactive, never backup).
    if (old != nullptr) set_inactive_flags(b, *old, now_ms_);
    if (next != nullptr) {
      set_active_flags(*next, now_ms_);
      if (old != nullptr) b.ctr.failovers++;
    }
    update_slave_arr(b);
    if (b.mode == Mode::balance_alb) alb_active_change(*this, b, old, next);
    // balance-tlb: the switch learns the bond's MAC behind the new active
    // member at once (Linux: alb_fasten_mac_swap's learning packets).
    if (b.mode == Mode::balance_tlb && old != nullptr && next != nullptr)
      alb_learning(*this, b, *next, b.dev->mac);
  }
  if (b.mode == Mode::active_backup) {
    if (old != nullptr) set_inactive_flags(b, *old, now_ms_);
    if (next != nullptr) {
      set_active_flags(*next, now_ms_);
      b.ctr.failovers++;
      // send_peer_notif = num_peer_notif: one now, the rest one per monitor run.
      b.notify_left = b.num_grat_arp;
      if (b.notify_left != 0) {
        publish(b);  // the notifications leave through the new active member
        notify_peers(b);
        b.notify_left--;
      }
    }
  }
  if (next == nullptr && old != nullptr)
    spdlog::warn("bond {}: now running without any active interface!", b.dev->name);
}

// ---- the MII monitor -----------------------------------------------------------------------

void BondSys::mii_monitor(Bond& b) {
  // bond_miimon_inspect.
  bool ignore_updelay = b.mode == Mode::active_backup ? b.curr_active == nullptr
                                                      : b.has_usable_arr() && b.usable.empty();
  int commit = 0;
  for (auto& mp : b.members) {
    Member& m = *mp;
    m.has_proposal = false;
    const bool link_state = m.dev->up();  // netif_running && netif_carrier_ok
    auto propose = [&](LinkState s) {
      m.proposed = s;
      m.has_proposal = true;
      commit++;
    };
    switch (m.link) {
      case LinkState::up:
        if (link_state) continue;
        propose(LinkState::fail);
        m.delay = b.downdelay;
        if (m.delay != 0)
          spdlog::info("bond {}: link status down for {}interface {}, disabling it in {} ms",
                       b.dev->name, &m == b.curr_active ? "active " : "", m.dev->name,
                       b.downdelay * int(b.miimon_ms));
        [[fallthrough]];
      case LinkState::fail:
        if (link_state) {  // recovered before downdelay expired
          propose(LinkState::up);
          m.last_link_up_ms = now_ms_;
          spdlog::info("bond {}: link status up again after {} ms for interface {}", b.dev->name,
                       (b.downdelay - m.delay) * int(b.miimon_ms), m.dev->name);
          continue;
        }
        if (m.delay <= 0) {
          propose(LinkState::down);
          continue;
        }
        m.delay--;
        break;
      case LinkState::down:
        if (!link_state) continue;
        propose(LinkState::back);
        m.delay = b.updelay;
        if (m.delay != 0)
          spdlog::info("bond {}: link status up for interface {}, enabling it in {} ms",
                       b.dev->name, m.dev->name, ignore_updelay ? 0 : b.updelay * int(b.miimon_ms));
        [[fallthrough]];
      case LinkState::back:
        if (!link_state) {
          propose(LinkState::down);
          continue;
        }
        if (ignore_updelay) m.delay = 0;
        if (m.delay <= 0) {
          propose(LinkState::up);
          ignore_updelay = false;
          continue;
        }
        m.delay--;
        break;
    }
  }

  if (commit != 0) {
    // bond_commit_link_state + bond_miimon_commit.
    bool do_failover = false;
    for (auto& mp : b.members) {
      Member& m = *mp;
      if (!m.has_proposal) continue;
      m.has_proposal = false;
      const LinkState s = m.proposed;
      switch (s) {
        case LinkState::up:
          set_link(m, LinkState::up);
          m.last_link_up_ms = now_ms_;
          if (b.mode == Mode::ieee8023ad)
            set_backup(m, true, now_ms_);  // the aggregator decides (bond_set_backup_slave)
          else if (b.mode != Mode::active_backup)
            set_backup(m, false, now_ms_);  // made active at once
          spdlog::info("bond {}: link status definitely up for interface {}", b.dev->name,
                       m.dev->name);
          if (b.mode == Mode::ieee8023ad) ad_link_change(m, LinkState::up);
          if (b.mode == Mode::balance_xor || b.mode == Mode::balance_tlb ||
              b.mode == Mode::balance_alb)
            update_slave_arr(b);  // bond_mode_can_use_xmit_hash
          if (b.mode == Mode::balance_alb) alb_link_change(*this, b, m, true);
          if (b.curr_active == nullptr || &m == b.primary) do_failover = true;
          break;
        case LinkState::down:
          m.link_failure_count++;
          set_link(m, LinkState::down);
          if (b.mode == Mode::active_backup || b.mode == Mode::ieee8023ad)
            set_inactive_flags(b, m, now_ms_);
          spdlog::info("bond {}: link status definitely down for interface {}, disabling it",
                       b.dev->name, m.dev->name);
          if (b.mode == Mode::ieee8023ad) ad_link_change(m, LinkState::down);
          if (b.mode == Mode::balance_xor || b.mode == Mode::balance_tlb ||
              b.mode == Mode::balance_alb)
            update_slave_arr(b);
          if (b.mode == Mode::balance_alb) alb_link_change(*this, b, m, false);
          if (&m == b.curr_active) do_failover = true;
          break;
        case LinkState::fail:
        case LinkState::back:
          set_link(m, s);
          break;
      }
    }
    if (do_failover) select_active(b);
    set_carrier(b);
    publish(b);
  }

  // Peer notifications still owed (num_grat_arp > 1): one per monitor run.
  if (b.notify_left != 0 && b.curr_active != nullptr) {
    notify_peers(b);
    b.notify_left--;
  }
}

// The times bond_enslave stamps, taken at the first tick (setup runs before
// the clock does): last_link_up and last_tx now, last_rx just out of the
// first ARP window (interval + 1 ms ago).
void BondSys::start_clock(uint64_t now) {
  stamp_members(all_members, now);
  clock_started_ = true;
}

void BondSys::stamp_members(const std::vector<Member*>& ms, uint64_t now) {
  for (Member* m : ms) {
    if (m->link != LinkState::down) m->last_link_up_ms = now;
    m->last_tx_ms = now;
    const uint64_t iv = m->bond->arp.interval_ms;
    for (auto& ws : workers) {
      if (m->gidx >= ws->ctr.size()) continue;
      MemberCounters& c = ws->ctr[m->gidx];
      c.last_rx_ms = now > iv + 1 ? now - iv - 1 : 0;
      std::fill(std::begin(c.target_last_rx_ms), std::end(c.target_last_rx_ms), c.last_rx_ms);
    }
  }
}

void BondSys::tick(uint64_t now) {
  now_ms_ = now;
  clock_ms.store(now, std::memory_order_relaxed);
  if (!clock_started_) start_clock(now);
  drain_slow();
  for (auto& b : bonds) {
    if (b->arp.interval_ms != 0 && now >= b->arp.next_ms) {
      b->arp.next_ms = now + b->arp.interval_ms;
      arp_monitor(*b);
    }
    if (b->miimon_ms != 0 && now >= b->next_mii_ms) {
      b->next_mii_ms = now + b->miimon_ms;
      mii_monitor(*b);
    }
    if (b->mode == Mode::ieee8023ad && now >= b->ad.next_tick_ms) {
      // AD_TIMER_INTERVAL: catch up on missed ticks one at a time (timers count ticks).
      if (b->ad.next_tick_ms == 0) b->ad.next_tick_ms = now;
      for (int n = 0; n < 10 && now >= b->ad.next_tick_ms; n++) {
        b->ad.next_tick_ms += 1000 / kAdTicksPerSec;
        ad_tick(*b);
      }
      if (now >= b->ad.next_tick_ms) b->ad.next_tick_ms = now + 1000 / kAdTicksPerSec;
    }
    if (b->alb != nullptr) alb_tick(*this, *b);
    if ((b->mode == Mode::balance_tlb || b->mode == Mode::balance_alb) && b->tlb_dynamic_lb &&
        now >= b->tlb_next_ms) {
      const bool first = b->tlb_next_ms == 0;
      b->tlb_next_ms = now + kTlbRebalanceMs;
      if (!first) tlb_rebalance_bond(*b);
    }
  }
}

// LACPDUs and Markers from the workers' rings.
void BondSys::drain_slow() {
  for (auto& ws : workers) {
    void* objs[32];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst(ws->slow, objs, 32, nullptr)) != 0) {
      for (unsigned i = 0; i < n; i++) {
        auto* m = static_cast<rte_mbuf*>(objs[i]);
        Member* mb = find_member(meta(m).dev);
        uint8_t buf[kLacpduLen];
        const auto* pdu =
            static_cast<const uint8_t*>(rte_pktmbuf_read(m, RTE_ETHER_HDR_LEN, kLacpduLen, buf));
        if (mb != nullptr && pdu != nullptr && mb->bond->mode == Mode::ieee8023ad) {
          mb->bond->ctr.slow_rx++;
          ad_rx(*mb, pdu);
        }
        rte_pktmbuf_free(m);
      }
    }
  }
}

// ---- setup -----------------------------------------------------------------------------------

void program_mac(Device& d, const rte_ether_addr& mac) {
  d.mac = mac;  // workers not started or paused (a reload): a plain field
  if (d.kind == DevKind::port && rte_eth_dev_is_valid_port(d.port_id)) {
    rte_ether_addr a = mac;
    int rc = rte_eth_dev_default_mac_addr_set(d.port_id, &a);
    if (rc != 0)
      spdlog::info("bond: port {}: PMD refused MAC {} ({}); sluice uses it anyway", d.name,
                   mac_to_string(mac), rte_strerror(-rc));
  }
}

namespace {

void make_promiscuous(Device& d) {
  if (d.promiscuous) return;
  d.promiscuous = true;
  if (d.kind == DevKind::port && rte_eth_dev_is_valid_port(d.port_id)) {
    int rc = rte_eth_promiscuous_enable(d.port_id);
    if (rc != 0 && rc != -ENOTSUP)
      spdlog::warn("bond: port {}: promiscuous on: {}", d.name, rte_strerror(-rc));
  }
  spdlog::info("bond: {} entered promiscuous mode", d.name);
}

}  // namespace

Bond* build_bond(Dataplane& dp, BondSys& sys, const config::Bond& cfg,
                 const config::Topology& topo) {
  auto fail = [&](const std::string& msg) {
    throw std::runtime_error("bond '" + cfg.name + "': " + msg);
  };
  std::vector<Device*> devs;
  for (auto& name : cfg.members) {
    Device* d = dp.net.find(name);
    if (d == nullptr) fail("no device '" + name + "'");
    if (d->kind == DevKind::bond) fail("'" + name + "' is a bond");
    if (d->master.load() != kNoDev) fail("'" + name + "' already has a master (EBUSY)");
    if (d->rx_handler.load() != nullptr) fail("'" + name + "' already has an rx_handler (EBUSY)");
    devs.push_back(d);
  }
  if (devs.size() > kMaxMembers) fail("more than " + std::to_string(kMaxMembers) + " members");

  auto b = std::make_unique<Bond>();
  b->idx = sys.next_idx++;  // never reused: what workers queued cannot name another bond
  b->sys = &sys;
  if (!parse_mode(cfg.mode, &b->mode)) fail("unknown mode '" + cfg.mode + "'");
  if (cfg.xmit_hash_policy && !parse_policy(*cfg.xmit_hash_policy, &b->policy))
    fail("unknown xmit_hash_policy '" + *cfg.xmit_hash_policy + "'");
  const bool forced =
      b->mode == Mode::ieee8023ad || b->mode == Mode::balance_tlb || b->mode == Mode::balance_alb;
  b->miimon_ms = cfg.miimon_ms ? *cfg.miimon_ms : (forced ? 100 : 0);
  if (b->miimon_ms != 0) {
    // bond_option_updelay_set: rounded down to multiples of miimon, kept in ticks.
    if (cfg.updelay_ms % b->miimon_ms != 0 || cfg.downdelay_ms % b->miimon_ms != 0)
      spdlog::warn("bond {}: up/downdelay ({} / {} ms) rounded down to multiples of miimon {} ms",
                   cfg.name, cfg.updelay_ms, cfg.downdelay_ms, b->miimon_ms);
    b->updelay = static_cast<int>(cfg.updelay_ms / b->miimon_ms);
    b->downdelay = static_cast<int>(cfg.downdelay_ms / b->miimon_ms);
  } else if (b->mode == Mode::active_backup) {
    spdlog::warn("bond {}: MII link monitoring is off: link failures will not be detected",
                 cfg.name);
  }
  b->reselect = cfg.primary_reselect == "better"    ? Reselect::better
                : cfg.primary_reselect == "failure" ? Reselect::failure
                                                    : Reselect::always;
  b->fail_over_mac = cfg.fail_over_mac == "active"   ? FailOverMac::active
                     : cfg.fail_over_mac == "follow" ? FailOverMac::follow
                                                     : FailOverMac::none;
  b->packets_per_slave = cfg.packets_per_slave;
  b->num_grat_arp = cfg.num_grat_arp;
  b->tlb_dynamic_lb = cfg.tlb_dynamic_lb;
  std::fill(std::begin(b->tlb_map), std::end(b->tlb_map), kNoMember);
  b->lacp_probe = b->mode == Mode::ieee8023ad;
  b->arp.interval_ms = cfg.arp_monitor.interval_ms;
  b->arp_probe = b->arp.interval_ms != 0;
  for (auto& t : cfg.arp_monitor.targets) {
    in_addr a{};
    inet_pton(AF_INET, t.c_str(), &a);
    b->arp.targets.push_back(a.s_addr);
  }
  const std::string& v = cfg.arp_monitor.validate;
  b->arp.validate = v == "active" ? 1 : v == "backup" ? 2 : v == "all" ? 3 : 0;
  b->arp.all_targets = cfg.arp_monitor.all_targets == "all";
  b->arp.missed_max = cfg.arp_monitor.missed_max;
  {
    // The bond's addresses: its own, its VLANs', its bridge's (by name, from the file).
    std::vector<std::pair<std::string, uint16_t>> uppers{{cfg.name, 0}};
    for (auto& vl : topo.vlans)
      if (vl.link == cfg.name) uppers.emplace_back(vl.name, static_cast<uint16_t>(vl.id));
    for (auto& br : topo.get<bridge::Config>().bridges)
      if (std::find(br.ports.begin(), br.ports.end(), cfg.name) != br.ports.end())
        uppers.emplace_back(br.name, 0);
    for (auto& a : topo.get<l3::Config>().addresses)
      for (auto& [name, vlan] : uppers) {
        if (a.dev != name) continue;
        const auto slash = a.address.find('/');
        in_addr ip{};
        if (inet_pton(AF_INET, a.address.substr(0, slash).c_str(), &ip) != 1) continue;
        const unsigned len = slash == std::string::npos
                                 ? 32
                                 : static_cast<unsigned>(std::stoul(a.address.substr(slash + 1)));
        const uint32_t mask = len == 0 ? 0 : htonl(~uint32_t(0) << (32 - len));
        b->arp_sources.push_back({ip.s_addr, mask, vlan});
        b->arp.local.push_back(ip.s_addr);
      }
  }
  b->ad.system_priority = static_cast<uint16_t>(cfg.ad_actor_sys_prio);
  b->ad.user_port_key = static_cast<uint16_t>(cfg.ad_user_port_key);
  b->ad.lacp_fast = cfg.lacp_rate == "fast";
  b->ad.lacp_active = cfg.lacp_active;
  b->ad.select = cfg.ad_select == "count"       ? AdSelect::count
                 : cfg.ad_select == "bandwidth" ? AdSelect::bandwidth
                                                : AdSelect::stable;

  auto d = std::make_unique<Device>();
  d->name = cfg.name;
  d->kind = DevKind::bond;
  if (cfg.mac)
    rte_ether_unformat_addr(cfg.mac->c_str(), &d->mac);
  else
    d->mac = devs[0]->mac;  // the first member's, as the bond takes it at the first enslave
  d->mtu = devs[0]->mtu;
  for (Device* md : devs) d->mtu = std::min(d->mtu, md->mtu);
  d->promiscuous = false;
  d->oper_up = false;
  d->xmit = bond_start_xmit;
  d->xmit_ctx = b.get();
  Device* bdev = dp.net.add_device(std::move(d));
  if (bdev == nullptr) fail("a device with that name exists");
  b->dev = bdev;
  b->ad.system = bdev->mac;  // ad_actor_system: the bond's MAC

  // A bridge port receives everything: so do its members (bond_set_promiscuity).
  bool bridged = false;
  for (auto& br : topo.get<bridge::Config>().bridges)
    bridged = bridged || std::find(br.ports.begin(), br.ports.end(), cfg.name) != br.ports.end();

  for (size_t i = 0; i < devs.size(); i++) {
    auto m = std::make_unique<Member>();
    m->bond = b.get();
    m->dev = devs[i];
    m->pos = static_cast<uint8_t>(i);
    m->gidx = sys.next_gidx++;  // never reused (per-worker counters by gidx)
    m->perm_mac = devs[i]->mac;
    for (const PortInfo& pi : dp.ports)
      if (pi.dev == devs[i]->index) {
        m->speed_mbps = pi.speed_mbps;
        m->full_duplex = pi.full_duplex;
      }
    // fail_over_mac none (and follow, for the first member): every member
    // carries the bond's MAC, so unicast to the bond is HOST on the member.
    // balance-alb: every member keeps a MAC of its own (alb_init).
    if (b->fail_over_mac == FailOverMac::none && b->mode != Mode::balance_alb)
      program_mac(*devs[i], bdev->mac);
    if (bridged) make_promiscuous(*devs[i]);
    // bond_enslave: the initial link state.
    const bool carrier = devs[i]->up();
    if (b->miimon_ms != 0) {
      if (carrier && b->updelay != 0) {
        m->link = LinkState::back;
        m->delay = b->updelay;
      } else {
        m->link = carrier ? LinkState::up : LinkState::down;
      }
    } else if (b->arp.interval_ms != 0) {
      m->link = carrier ? LinkState::up : LinkState::down;
    } else {
      m->link = LinkState::up;
    }

    switch (b->mode) {
      case Mode::active_backup:
      case Mode::ieee8023ad:
        set_inactive_flags(*b, *m, 0);
        break;
      case Mode::balance_tlb:
      case Mode::balance_alb:
        set_backup(*m, false, 0);
        set_inactive_flags(*b, *m, 0);
        break;
      default:  // always active in trunk modes
        set_backup(*m, false, 0);
        if (b->curr_active == nullptr && m->link == LinkState::up) b->curr_active = m.get();
        break;
    }
    if (b->mode == Mode::ieee8023ad) sys.ad_bind(*b, *m);
    if (b->uses_primary() && cfg.primary && *cfg.primary == devs[i]->name) {
      b->primary = m.get();
      b->force_primary = true;
    }
    sys.all_members.push_back(m.get());
    b->members.push_back(std::move(m));
  }

  // bond_open: the first aggregator selection at the next tick.
  if (b->mode == Mode::ieee8023ad) b->ad.agg_select_timer = 1;
  Bond* bp = b.get();
  sys.bonds.push_back(std::move(b));
  if (bp->mode == Mode::balance_alb) alb_init(sys, *bp);
  sys.update_slave_arr(*bp);
  for (auto& m : bp->members) {
    m->dev->master.store(bdev->index);
    dp.fold_counters(bdev->index, m->dev->index);
  }
  sys.publish(*bp);
  for (auto& m : bp->members) {
    if (!dp.net.set_rx_handler(*m->dev, bond_handle_frame, m.get(), "bond"))
      fail("cannot register the rx_handler on '" + m->dev->name + "'");
    publish_through(*bp, *m);
  }
  if (bp->uses_primary()) sys.select_active(*bp);
  sys.set_carrier(*bp);
  sys.publish(*bp);
  spdlog::info("bond {}: mode {} mac {} members {} miimon {} ms updelay {} downdelay {}{}",
               cfg.name, mode_name(bp->mode), mac_to_string(bdev->mac), cfg.members.size(),
               bp->miimon_ms, cfg.updelay_ms, cfg.downdelay_ms,
               bp->has_usable_arr() ? std::string(" policy ") + policy_name(bp->policy) : "");
  return bp;
}

void BondSys::size_workers() {
  if (std::any_of(bonds.begin(), bonds.end(), [](auto& b) { return b->alb != nullptr; }))
    alb_init_workers(*this);
  for (auto& ws : workers) {  // by number: what running bonds counted stays
    if (ws->rr.size() < next_idx) ws->rr.resize(next_idx, 0);
    if (ws->ctr.size() < next_gidx) ws->ctr.resize(next_gidx, MemberCounters{});
    if (ws->tlb_bytes.size() < next_idx)
      ws->tlb_bytes.resize(next_idx, std::array<uint64_t, kTlbBuckets>{});
  }
}

void BondSys::start(Dataplane& dp) {
  if (started_) return;
  started_ = true;
  register_observers(dp, *this);
  BondSys* s = this;
  dp.add_timer(10, [s](uint64_t now) { s->tick(now); });
  dp.add_shutdown([s]() {
    for (auto& ws : s->workers) free_ring_mbufs(ws->slow);
  });
}

Bond* BondSys::by_idx(uint16_t idx) const {
  for (auto& b : bonds)
    if (b->idx == idx) return b.get();
  return nullptr;
}

void setup(Dataplane& dp) {
  const Config& cfgs = dp.topo.get<Config>();
  if (cfgs.bonds.empty()) return;
  BondSys& sys = dp.feature<BondSys>();
  sys.init_workers();
  if (sys.pool == nullptr && !dp.pools.empty()) sys.pool = dp.pools.begin()->second;
  for (auto& w : dp.workers) w->enable_inject();  // peer notifications leave through the workers
  for (auto& cfg : cfgs.bonds) build_bond(dp, sys, cfg, dp.topo);
  sys.size_workers();
  dp.add_vlans();  // VLAN sub-devices of the bonds (vlans: link: bond0)
  sys.start(dp);
}

}  // namespace sluice::bond
