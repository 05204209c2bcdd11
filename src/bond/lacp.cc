// 802.3ad: the LACP machines of drivers/net/bonding/bond_3ad.c (Linux 6.x),
// on the control thread. Each function is named after the one it
// reproduces; the order of a tick is Linux's: the aggregator selection
// timer, then for every member rx (timers), periodic, port selection, mux,
// tx, churn. Spec: ../shared/spec/linux-rx.md §3.2, §3.7.
#include "bond/lacp.hh"

#include <algorithm>
#include <cstring>

#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "bond/bond.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/meta.hh"

namespace sluice::bond {

namespace {

const char* const kRxNames[] = {"dummy",   "initialize", "port_disabled", "lacp_disabled",
                                "expired", "defaulted",  "current"};
const char* const kPeriodicNames[] = {"dummy", "no_periodic", "fast_periodic", "slow_periodic",
                                      "periodic_tx"};
const char* const kMuxNames[] = {"dummy", "detached", "waiting", "attached",
                                 "collecting_distributing"};
const char* const kChurnNames[] = {"monitor", "churn", "no_churn"};

constexpr uint16_t kDuplexKeyMask = 0x1, kSpeedKeyMask = 0x3e;

// __ad_timer_to_ticks.
constexpr uint16_t ticks(unsigned seconds) {
  return static_cast<uint16_t>(seconds * kAdTicksPerSec);
}

bool same_mac(const rte_ether_addr& a, const rte_ether_addr& b) {
  return rte_is_same_ether_addr(&a, &b);
}

// __get_link_speed: AD_LINK_SPEED_* of a member whose link is UP, else 0.
uint16_t link_speed(const Member& m) {
  if (m.link != LinkState::up) return 0;
  switch (m.speed_mbps) {
    case 1:
      return 1;
    case 10:
      return 2;
    case 100:
      return 3;
    case 1000:
      return 4;
    case 2500:
      return 5;
    case 5000:
      return 6;
    case 10000:
      return 7;
    case 14000:
      return 8;
    case 20000:
      return 9;
    case 25000:
      return 10;
    case 40000:
      return 11;
    case 50000:
      return 12;
    case 56000:
      return 13;
    case 100000:
      return 14;
    case 200000:
      return 15;
    case 400000:
      return 16;
    case 800000:
      return 17;
    default:
      return 0;
  }
}
uint32_t speed_of_class(uint16_t c) {
  static const uint32_t mbps[] = {0,     1,     10,     100,    1000,   2500,
                                  5000,  10000, 14000,  20000,  25000,  40000,
                                  50000, 56000, 100000, 200000, 400000, 800000};
  return c < std::size(mbps) ? mbps[c] : 0;
}

// __get_duplex.
uint8_t duplex_of(const Member& m) {
  return m.link == LinkState::up && m.full_duplex ? 1 : 0;
}

// ad_update_actor_keys.
void update_actor_keys(Member& m, bool reset) {
  AdPort& p = m.ad;
  const uint16_t old_oper = p.actor_oper_key;
  uint8_t duplex = 0;
  uint16_t speed = 0, ospeed = 0;
  p.actor_admin_key &= static_cast<uint16_t>(~(kSpeedKeyMask | kDuplexKeyMask));
  if (!reset) {
    speed = link_speed(m);
    ospeed = static_cast<uint16_t>((old_oper & kSpeedKeyMask) >> 1);
    duplex = duplex_of(m);
    p.actor_admin_key |= static_cast<uint16_t>((speed << 1) | duplex);
  }
  p.actor_oper_key = p.actor_admin_key;
  if (old_oper != p.actor_oper_key) {
    if (duplex)
      p.sm_vars |= kPortLacpEnabled;  // only a full-duplex port takes part in LACP
    else
      p.sm_vars &= static_cast<uint16_t>(~kPortLacpEnabled);
    if (!reset && speed != 0 && duplex && ospeed != speed)
      p.sm_vars |= kPortBegin;  // a speed change restarts the machines
  }
}

// __record_default.
void record_default(AdPort& p) {
  p.partner_oper = p.partner_admin;
  p.actor_oper_state |= kLacpDefaulted;
}

// __choose_matched.
void choose_matched(const Lacpdu& pdu, AdPort& p) {
  const PortParams& pa = pdu.partner;
  if ((pa.port_number == p.actor_port_number && pa.port_priority == p.actor_port_priority &&
       same_mac(pa.system, p.actor_system) && pa.system_priority == p.actor_system_priority &&
       pa.key == p.actor_oper_key &&
       (pa.port_state & kLacpAggregation) == (p.actor_oper_state & kLacpAggregation)) ||
      (pdu.actor.port_state & kLacpAggregation) == 0)
    p.sm_vars |= kPortMatched;
  else
    p.sm_vars &= static_cast<uint16_t>(~kPortMatched);
}

// __record_pdu.
void record_pdu(const Lacpdu& pdu, AdPort& p) {
  choose_matched(pdu, p);
  p.partner_oper = pdu.actor;
  p.actor_oper_state &= static_cast<uint8_t>(~kLacpDefaulted);
  if ((p.sm_vars & kPortMatched) && (pdu.actor.port_state & kLacpSync))
    p.partner_oper.port_state |= kLacpSync;
  else
    p.partner_oper.port_state &= static_cast<uint8_t>(~kLacpSync);
}

bool differs_for_selection(const PortParams& a, const PortParams& b) {
  return a.port_number != b.port_number || a.port_priority != b.port_priority ||
         !same_mac(a.system, b.system) || a.system_priority != b.system_priority ||
         a.key != b.key || (a.port_state & kLacpAggregation) != (b.port_state & kLacpAggregation);
}

// __update_selected / __update_default_selected.
void update_selected(const Lacpdu& pdu, AdPort& p) {
  if (differs_for_selection(pdu.actor, p.partner_oper))
    p.sm_vars &= static_cast<uint16_t>(~kPortSelected);
}
void update_default_selected(AdPort& p) {
  if (differs_for_selection(p.partner_admin, p.partner_oper))
    p.sm_vars &= static_cast<uint16_t>(~kPortSelected);
}

// __update_ntt: the partner's view of us is out of date.
void update_ntt(const Lacpdu& pdu, AdPort& p) {
  const PortParams& pa = pdu.partner;
  constexpr uint8_t bits = kLacpActivity | kLacpTimeout | kLacpSync | kLacpAggregation;
  if (pa.port_number != p.actor_port_number || pa.port_priority != p.actor_port_priority ||
      !same_mac(pa.system, p.actor_system) || pa.system_priority != p.actor_system_priority ||
      pa.key != p.actor_oper_key || (pa.port_state & bits) != (p.actor_oper_state & bits))
    p.ntt = true;
}

// __agg_ports_are_ready / __set_agg_ports_ready.
bool agg_ports_are_ready(const AdAggregator* a) {
  if (a == nullptr) return true;
  for (Member* m : a->lag)
    if (!(m->ad.sm_vars & kPortReadyN)) return false;
  return true;
}
void set_agg_ports_ready(AdAggregator* a, bool ready) {
  if (a == nullptr) return;
  for (Member* m : a->lag) {
    if (ready)
      m->ad.sm_vars |= kPortReady;
    else
      m->ad.sm_vars &= static_cast<uint16_t>(~kPortReady);
  }
}

unsigned agg_active_ports(const AdAggregator& a) {
  unsigned n = 0;
  for (Member* m : a.lag) n += m->ad.is_enabled ? 1 : 0;
  return n;
}

bool agg_device_up(const AdAggregator& a) {
  for (Member* m : a.lag)
    if (m->dev->up()) return true;
  return false;
}

uint32_t agg_bandwidth(const AdAggregator& a) {
  if (a.lag.empty()) return 0;
  return static_cast<uint32_t>(a.lag.size()) * speed_of_class(link_speed(*a.lag.front()));
}

// ad_clear_agg.
void clear_agg(AdAggregator& a) {
  a.is_individual = false;
  a.actor_admin_key = a.actor_oper_key = 0;
  a.partner_system = rte_ether_addr{};
  a.partner_system_priority = a.partner_oper_key = 0;
  a.receive_state = a.transmit_state = false;
  a.lag.clear();
  a.is_active = false;
}

// ad_agg_selection_test.
AdAggregator* agg_selection_test(AdSelect sel, AdAggregator* best, AdAggregator* curr) {
  if (best == nullptr) return curr;
  if (!curr->is_individual && best->is_individual) return curr;
  if (curr->is_individual && !best->is_individual) return best;
  if (curr->has_partner() && !best->has_partner()) return curr;
  if (!curr->has_partner() && best->has_partner()) return best;
  if (sel == AdSelect::count) {
    if (agg_active_ports(*curr) > agg_active_ports(*best)) return curr;
    if (agg_active_ports(*curr) < agg_active_ports(*best)) return best;
  }
  if (agg_bandwidth(*curr) > agg_bandwidth(*best)) return curr;
  return best;
}

}  // namespace

const char* rx_state_name(RxState s) {
  return enum_name(s, kRxNames);
}
const char* periodic_state_name(PeriodicState s) {
  return enum_name(s, kPeriodicNames);
}
const char* mux_state_name(MuxState s) {
  return enum_name(s, kMuxNames);
}
const char* churn_state_name(ChurnState s) {
  return enum_name(s, kChurnNames);
}

// ---- ports ----------------------------------------------------------------------------------

// __enable_port / __disable_port: the member's active and inactive flags.
void BondSys::ad_enable_port(Member& m) {
  if (m.link == LinkState::up && m.dev->up()) {
    if (m.backup || m.inactive.load()) m.last_change_ms = now_ms_;
    m.backup = false;
    m.inactive.store(false, std::memory_order_relaxed);
    publish_through(*m.bond, m);
  }
}
void BondSys::ad_disable_port(Member& m) {
  if (!m.backup || !m.inactive.load()) m.last_change_ms = now_ms_;
  m.backup = true;
  m.inactive.store(true, std::memory_order_relaxed);
  publish_through(*m.bond, m);
}

AdAggregator* BondSys::ad_active_agg(Bond& b) const {
  for (auto& m : b.members)
    if (m->agg.is_active) return &m->agg;
  return nullptr;
}

// bond_3ad_bind_slave (with ad_initialize_port and ad_initialize_agg).
void BondSys::ad_bind(Bond& b, Member& m) {
  AdPort& p = m.ad;
  p = AdPort{};
  p.actor_admin_state = kLacpAggregation | (b.ad.lacp_active ? kLacpActivity : 0);
  p.actor_oper_state = p.actor_admin_state | (b.ad.lacp_fast ? kLacpTimeout : 0);
  p.partner_admin = PortParams{};
  p.partner_oper = PortParams{};
  p.is_enabled = m.link == LinkState::up;
  p.sm_vars = kPortBegin | kPortLacpEnabled;
  p.actor_port_number = static_cast<uint16_t>(m.pos + 1);
  p.actor_admin_key = static_cast<uint16_t>(b.ad.user_port_key << 6);
  update_actor_keys(m, false);
  p.actor_system = b.ad.system;
  p.actor_system_priority = b.ad.system_priority;
  p.tx_timer = kAdTicksPerSec / kAdMaxTxPerSec;
  ad_disable_port(m);
  m.agg = AdAggregator{};
  m.agg.id = static_cast<uint16_t>(m.pos + 1);
}

// ---- selection -------------------------------------------------------------------------------

namespace {

struct Ctx {
  BondSys& sys;
  Bond& b;
  bool update_slave_arr = false;
};

AdAggregator* get_active_agg(Bond& b) {
  for (auto& m : b.members)
    if (m->agg.is_active) return &m->agg;
  return nullptr;
}

// bond_3ad_set_carrier (min_links 0).
void ad_set_carrier(Bond& b) {
  const bool up = get_active_agg(b) != nullptr;
  if (b.dev->oper_up.load() != up) {
    b.dev->oper_up.store(up);
    spdlog::info("bond {}: carrier {}", b.dev->name, up ? "on" : "off");
  }
}

// ad_agg_selection_logic.
void agg_selection_logic(Ctx& c) {
  Bond& b = c.b;
  AdAggregator* active = get_active_agg(b);
  AdAggregator* best = active != nullptr && agg_device_up(*active) ? active : nullptr;
  for (auto& m : b.members) {
    AdAggregator& a = m->agg;
    a.is_active = false;
    if (agg_active_ports(a) != 0 && agg_device_up(a))
      best = agg_selection_test(b.ad.select, best, &a);
  }
  if (best != nullptr && b.ad.select == AdSelect::stable) {
    // Keep the old active aggregator while it has active ports and either
    // its partner answers or neither it nor the best one has a partner.
    if (active != nullptr && !active->lag.empty() && agg_active_ports(*active) != 0 &&
        (active->has_partner() || (!active->has_partner() && !best->has_partner()))) {
      if (!(active->actor_oper_key == 0 && best->actor_oper_key != 0)) {
        best = nullptr;
        active->is_active = true;
      }
    }
  }
  if (best != nullptr && best == active) {
    best = nullptr;
    active->is_active = true;
  }
  if (best != nullptr) {
    best->is_active = true;
    spdlog::info("bond {}: aggregator {} is active ({} port(s), partner {}){}", b.dev->name,
                 best->id, best->lag.size(), mac_to_string(best->partner_system),
                 best->is_individual || !best->has_partner()
                     ? ": no 802.3ad response from the link partner"
                     : "");
    if (active != nullptr)
      for (Member* m : active->lag) c.sys.ad_disable_port(*m);
    c.update_slave_arr = true;
  }
  // An aggregator of individual links (no partner): its ports are enabled.
  if (AdAggregator* a = get_active_agg(b); a != nullptr && !a->has_partner()) {
    for (Member* m : a->lag) c.sys.ad_enable_port(*m);
    c.update_slave_arr = true;
  }
  ad_set_carrier(b);
}

// ad_port_selection_logic.
void port_selection_logic(Ctx& c, Member& m) {
  AdPort& p = m.ad;
  if (p.sm_vars & kPortSelected) return;
  Bond& b = c.b;
  if (AdAggregator* old = p.aggregator) {  // detach from the former aggregator
    auto it = std::find(old->lag.begin(), old->lag.end(), &m);
    if (it != old->lag.end()) {
      old->lag.erase(it);
      p.aggregator = nullptr;
      if (old->lag.empty()) clear_agg(*old);
    }
  }
  AdAggregator* free_agg = nullptr;
  bool found = false;
  for (auto& o : b.members) {
    AdAggregator& a = o->agg;
    if (a.lag.empty()) {
      if (free_agg == nullptr) free_agg = &a;
      continue;
    }
    if (a.actor_oper_key == p.actor_oper_key && same_mac(a.partner_system, p.partner_oper.system) &&
        a.partner_system_priority == p.partner_oper.system_priority &&
        a.partner_oper_key == p.partner_oper.key && a.has_partner() && !a.is_individual) {
      p.aggregator = &a;
      a.lag.insert(a.lag.begin(), &m);
      p.sm_vars |= kPortSelected;
      found = true;
      break;
    }
  }
  if (!found) {
    if (free_agg != nullptr) {
      AdAggregator& a = *free_agg;
      p.aggregator = &a;
      a.is_individual = !(p.actor_oper_key & kDuplexKeyMask);
      a.actor_admin_key = p.actor_admin_key;
      a.actor_oper_key = p.actor_oper_key;
      a.partner_system = p.partner_oper.system;
      a.partner_system_priority = p.partner_oper.system_priority;
      a.partner_oper_key = p.partner_oper.key;
      a.receive_state = a.transmit_state = true;
      a.lag.insert(a.lag.begin(), &m);
      p.sm_vars |= kPortSelected;
    } else {
      spdlog::error("bond {}: port {} ({}) did not find a suitable aggregator", b.dev->name,
                    p.actor_port_number, m.dev->name);
      return;
    }
  }
  set_agg_ports_ready(p.aggregator, agg_ports_are_ready(p.aggregator));
  agg_selection_logic(c);
  if (!p.aggregator->is_active) p.actor_oper_state &= static_cast<uint8_t>(~kLacpSync);
}

// ---- the machines ------------------------------------------------------------------------------

// ad_rx_machine (lacpdu == nullptr: a tick).
void rx_machine(Ctx& c, Member& m, const Lacpdu* pdu) {
  AdPort& p = m.ad;
  const RxState last = p.rx;
  if (pdu != nullptr) p.ctr.lacpdu_rx++;
  if (p.sm_vars & kPortBegin) {
    p.rx = RxState::initialize;
    p.sm_vars |= kPortChurned;
  } else if (!p.is_enabled) {
    p.rx = RxState::port_disabled;
  } else if (pdu != nullptr &&
             (p.rx == RxState::expired || p.rx == RxState::defaulted || p.rx == RxState::current)) {
    if (p.rx != RxState::current) p.sm_vars |= kPortChurned;
    p.rx_timer = 0;
    p.rx = RxState::current;
  } else if (p.rx_timer != 0 && --p.rx_timer == 0) {
    if (p.rx == RxState::expired)
      p.rx = RxState::defaulted;
    else if (p.rx == RxState::current)
      p.rx = RxState::expired;
  } else if (p.rx == RxState::port_disabled) {
    if (p.is_enabled && (p.sm_vars & kPortLacpEnabled))
      p.rx = RxState::expired;
    else if (p.is_enabled)
      p.rx = RxState::lacp_disabled;
  }
  if (p.rx == last && pdu == nullptr) return;
  switch (p.rx) {
    case RxState::initialize:
      if (!(p.actor_oper_key & kDuplexKeyMask))
        p.sm_vars &= static_cast<uint16_t>(~kPortLacpEnabled);
      else
        p.sm_vars |= kPortLacpEnabled;
      p.sm_vars &= static_cast<uint16_t>(~kPortSelected);
      record_default(p);
      p.actor_oper_state &= static_cast<uint8_t>(~kLacpExpired);
      p.rx = RxState::port_disabled;
      [[fallthrough]];
    case RxState::port_disabled:
      p.sm_vars &= static_cast<uint16_t>(~kPortMatched);
      break;
    case RxState::lacp_disabled:
      p.sm_vars &= static_cast<uint16_t>(~kPortSelected);
      record_default(p);
      p.partner_oper.port_state &= static_cast<uint8_t>(~kLacpAggregation);
      p.sm_vars |= kPortMatched;
      p.actor_oper_state &= static_cast<uint8_t>(~kLacpExpired);
      break;
    case RxState::expired:
      // 43.4.12: the partner's Synchronization goes, so the mux leaves
      // COLLECTING_DISTRIBUTING even without a link-down; the partner is
      // asked to hurry (short timeout), our Expired bit is set.
      p.partner_oper.port_state &= static_cast<uint8_t>(~kLacpSync);
      p.sm_vars &= static_cast<uint16_t>(~kPortMatched);
      p.partner_oper.port_state |= kLacpTimeout;
      p.rx_timer = ticks(kAdShortTimeout);
      p.actor_oper_state |= kLacpExpired;
      p.sm_vars |= kPortChurned;
      break;
    case RxState::defaulted:
      update_default_selected(p);
      record_default(p);
      p.sm_vars |= kPortMatched;
      p.actor_oper_state &= static_cast<uint8_t>(~kLacpExpired);
      break;
    case RxState::current:
      if (same_mac(pdu->actor.system, p.actor_system)) {
        // Our own LACPDU came back: "an illegal loopback occurred".
        p.ctr.loopback_rx++;
        spdlog::warn("bond {}: an illegal loopback occurred on member {}", c.b.dev->name,
                     m.dev->name);
        return;
      }
      update_selected(*pdu, p);
      update_ntt(*pdu, p);
      record_pdu(*pdu, p);
      p.rx_timer = ticks((p.actor_oper_state & kLacpTimeout) ? kAdShortTimeout : kAdLongTimeout);
      p.actor_oper_state &= static_cast<uint8_t>(~kLacpExpired);
      break;
    default:
      break;
  }
}

// ad_periodic_machine.
void periodic_machine(Ctx& c, Member& m) {
  AdPort& p = m.ad;
  const PeriodicState last = p.periodic;
  if ((p.sm_vars & kPortBegin) || !(p.sm_vars & kPortLacpEnabled) || !p.is_enabled ||
      (!(p.actor_oper_state & kLacpActivity) && !(p.partner_oper.port_state & kLacpActivity)) ||
      !c.b.ad.lacp_active) {
    p.periodic = PeriodicState::no_periodic;
  } else if (p.periodic_timer != 0) {
    if (--p.periodic_timer == 0) {
      p.periodic = PeriodicState::periodic_tx;
    } else if (p.periodic == PeriodicState::fast_periodic) {
      if (!(p.partner_oper.port_state & kLacpTimeout)) p.periodic = PeriodicState::slow_periodic;
    } else if (p.periodic == PeriodicState::slow_periodic) {
      if (p.partner_oper.port_state & kLacpTimeout) {
        p.periodic_timer = 0;
        p.periodic = PeriodicState::periodic_tx;
      }
    }
  } else if (p.periodic == PeriodicState::no_periodic) {
    p.periodic = PeriodicState::fast_periodic;
  } else if (p.periodic == PeriodicState::periodic_tx) {
    p.periodic = (p.partner_oper.port_state & kLacpTimeout) ? PeriodicState::fast_periodic
                                                            : PeriodicState::slow_periodic;
  }
  if (p.periodic == last) return;
  switch (p.periodic) {
    case PeriodicState::no_periodic:
      p.periodic_timer = 0;
      break;
    case PeriodicState::fast_periodic:  // one tick is lost in PERIODIC_TX
      p.periodic_timer = ticks(kAdFastPeriodic) - 1;
      break;
    case PeriodicState::slow_periodic:
      p.periodic_timer = ticks(kAdSlowPeriodic) - 1;
      break;
    case PeriodicState::periodic_tx:
      p.ntt = true;
      break;
    default:
      break;
  }
}

// ad_enable_collecting_distributing / ad_disable_collecting_distributing.
void enable_collecting_distributing(Ctx& c, Member& m) {
  if (m.ad.aggregator != nullptr && m.ad.aggregator->is_active) {
    c.sys.ad_enable_port(m);
    c.update_slave_arr = true;
  }
}
void disable_collecting_distributing(Ctx& c, Member& m) {
  if (m.ad.aggregator != nullptr && m.ad.aggregator->has_partner()) {
    c.sys.ad_disable_port(m);
    c.update_slave_arr = true;
  }
}

// ad_mux_machine (coupled control: COLLECTING_DISTRIBUTING is one state).
void mux_machine(Ctx& c, Member& m) {
  AdPort& p = m.ad;
  const MuxState last = p.mux;
  AdAggregator* a = p.aggregator;
  auto unready = [&] {
    p.sm_vars &= static_cast<uint16_t>(~kPortReadyN);
    set_agg_ports_ready(a, agg_ports_are_ready(a));
  };
  if (p.sm_vars & kPortBegin) {
    p.mux = MuxState::detached;
  } else {
    switch (p.mux) {
      case MuxState::detached:
        if (p.sm_vars & (kPortSelected | kPortStandby)) p.mux = MuxState::waiting;
        break;
      case MuxState::waiting:
        if (!(p.sm_vars & kPortSelected)) {
          unready();
          p.mux = MuxState::detached;
          break;
        }
        if (p.mux_timer != 0 && --p.mux_timer == 0) p.sm_vars |= kPortReadyN;
        set_agg_ports_ready(a, agg_ports_are_ready(a));
        if ((p.sm_vars & kPortReady) && p.mux_timer == 0) p.mux = MuxState::attached;
        break;
      case MuxState::attached:
        if ((p.sm_vars & kPortSelected) && (p.partner_oper.port_state & kLacpSync) &&
            c.b.ad.agg_select_timer == 0) {
          if (a != nullptr && a->is_active) p.mux = MuxState::collecting_distributing;
        } else if (!(p.sm_vars & kPortSelected) || (p.sm_vars & kPortStandby)) {
          unready();
          p.mux = MuxState::detached;
        } else if (a != nullptr && a->is_active) {
          p.actor_oper_state |= kLacpSync;
        }
        break;
      case MuxState::collecting_distributing:
        if (!(p.sm_vars & kPortSelected) || (p.sm_vars & kPortStandby) ||
            !(p.partner_oper.port_state & kLacpSync) || !(p.actor_oper_state & kLacpSync)) {
          p.mux = MuxState::attached;
        } else if (a != nullptr && a->is_active && m.backup) {
          // A collecting/distributing port of the active aggregator is enabled.
          c.sys.ad_enable_port(m);
          c.update_slave_arr = true;
        }
        break;
      default:
        break;
    }
  }
  if (p.mux == last) return;
  switch (p.mux) {
    case MuxState::detached:
      p.actor_oper_state &= static_cast<uint8_t>(~kLacpSync);
      disable_collecting_distributing(c, m);
      p.actor_oper_state &= static_cast<uint8_t>(~(kLacpCollecting | kLacpDistributing));
      p.ntt = true;
      break;
    case MuxState::waiting:
      p.mux_timer = ticks(kAdAggregateWait);
      break;
    case MuxState::attached:
      if (a != nullptr && a->is_active)
        p.actor_oper_state |= kLacpSync;
      else
        p.actor_oper_state &= static_cast<uint8_t>(~kLacpSync);
      p.actor_oper_state &= static_cast<uint8_t>(~(kLacpCollecting | kLacpDistributing));
      disable_collecting_distributing(c, m);
      p.ntt = true;
      break;
    case MuxState::collecting_distributing:
      p.actor_oper_state |= kLacpCollecting | kLacpDistributing | kLacpSync;
      enable_collecting_distributing(c, m);
      p.ntt = true;
      break;
    default:
      break;
  }
}

// ad_tx_machine: at most AD_MAX_TX_IN_SECOND LACPDUs per second.
void tx_machine(Ctx& c, Member& m) {
  AdPort& p = m.ad;
  if (p.tx_timer != 0 && --p.tx_timer == 0) {
    if (p.ntt && (p.sm_vars & kPortLacpEnabled)) c.sys.ad_send_lacpdu(m);
    p.tx_timer = kAdTicksPerSec / kAdMaxTxPerSec;
  }
}

// ad_churn_machine.
void churn_machine(Member& m) {
  AdPort& p = m.ad;
  if (p.sm_vars & kPortChurned) {
    p.sm_vars &= static_cast<uint16_t>(~kPortChurned);
    p.churn_actor = p.churn_partner = ChurnState::monitor;
    p.churn_actor_timer = p.churn_partner_timer = ticks(kAdChurnTime);
    return;
  }
  if (p.churn_actor_timer != 0 && --p.churn_actor_timer == 0 &&
      p.churn_actor == ChurnState::monitor) {
    if (p.actor_oper_state & kLacpSync) {
      p.churn_actor = ChurnState::no_churn;
    } else {
      p.churn_actor_count++;
      p.churn_actor = ChurnState::churn;
    }
  }
  if (p.churn_partner_timer != 0 && --p.churn_partner_timer == 0 &&
      p.churn_partner == ChurnState::monitor) {
    if (p.partner_oper.port_state & kLacpSync) {
      p.churn_partner = ChurnState::no_churn;
    } else {
      p.churn_partner_count++;
      p.churn_partner = ChurnState::churn;
    }
  }
}

void finish(Ctx& c) {
  if (c.update_slave_arr) {
    c.sys.update_slave_arr(c.b);
    c.sys.publish(c.b);
  }
}

}  // namespace

// bond_3ad_state_machine_handler: one 100 ms tick of one bond.
void BondSys::ad_tick(Bond& b) {
  Ctx c{*this, b};
  if (b.ad.agg_select_timer != 0 && --b.ad.agg_select_timer == 0) {
    agg_selection_logic(c);
    ad_set_carrier(b);
  }
  for (auto& mp : b.members) {
    Member& m = *mp;
    rx_machine(c, m, nullptr);
    periodic_machine(c, m);
    port_selection_logic(c, m);
    mux_machine(c, m);
    tx_machine(c, m);
    churn_machine(m);
    m.ad.sm_vars &= static_cast<uint16_t>(~kPortBegin);
  }
  finish(c);
}

// bond_3ad_rx_indication: a LACPDU runs the receive machine at once; a
// Marker Information is answered with a Marker Response.
void BondSys::ad_rx(Member& m, const uint8_t* pdu) {
  Bond& b = *m.bond;
  Ctx c{*this, b};
  if (pdu[0] == 1) {
    Lacpdu l;
    parse_lacpdu(pdu, &l);
    rx_machine(c, m, &l);
  } else if (pdu[0] == 2) {
    switch (pdu[2]) {  // marker tlv_type
      case 1:          // AD_MARKER_INFORMATION_SUBTYPE
        m.ad.ctr.marker_rx++;
        ad_send_marker(m, pdu);
        break;
      case 2:  // AD_MARKER_RESPONSE_SUBTYPE
        m.ad.ctr.marker_resp_rx++;
        break;
      default:
        m.ad.ctr.marker_unknown_rx++;
        break;
    }
  }
  finish(c);
}

// bond_3ad_handle_link_change.
void BondSys::ad_link_change(Member& m, LinkState s) {
  Bond& b = *m.bond;
  Ctx c{*this, b};
  if (s == LinkState::up) {
    for (const PortInfo& pi : dp.ports)  // the speed of the link that came up
      if (pi.dev == m.dev->index) {
        m.speed_mbps = pi.speed_mbps;
        m.full_duplex = pi.full_duplex;
      }
    m.ad.is_enabled = true;
    update_actor_keys(m, false);
  } else {
    m.ad.is_enabled = false;
    update_actor_keys(m, true);
  }
  agg_selection_logic(c);
  update_slave_arr(b);
  publish(b);
}

}  // namespace sluice::bond
