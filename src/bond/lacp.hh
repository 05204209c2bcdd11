// 802.3ad (IEEE 802.1AX) as Linux implements it (drivers/net/bonding/bond_3ad.c):
// per member a port (actor and partner information, the receive, periodic,
// mux, transmit and churn machines) and an aggregator; selection by partner
// system and key with ad_select stable / bandwidth / count. Everything here
// runs on the control thread: the machines at the 100 ms tick
// (BondSys::ad_tick), received LACPDUs and Markers when the control thread
// drains the workers' slow-protocol rings (BondSys::ad_rx).
// Spec: ../shared/spec/linux-rx.md §3.2, §3.7.
#pragma once

#include <cstdint>
#include <vector>

#include <rte_ether.h>

namespace sluice::bond {

struct Member;

inline constexpr unsigned kAdTicksPerSec = 10;                        // AD_TIMER_INTERVAL 100 ms
inline constexpr unsigned kAdFastPeriodic = 1, kAdSlowPeriodic = 30;  // s
inline constexpr unsigned kAdShortTimeout = 3, kAdLongTimeout = 90;   // s
inline constexpr unsigned kAdChurnTime = 60, kAdAggregateWait = 2;    // s
inline constexpr unsigned kAdMaxTxPerSec = 3;                         // AD_MAX_TX_IN_SECOND
inline constexpr unsigned kLacpduLen = 110;  // sizeof(struct lacpdu) == sizeof(struct bond_marker)

// Actor/partner state bits (include/uapi/linux/if_bonding.h LACP_STATE_*).
enum LacpState : uint8_t {
  kLacpActivity = 0x01,
  kLacpTimeout = 0x02,  // 1 = short
  kLacpAggregation = 0x04,
  kLacpSync = 0x08,
  kLacpCollecting = 0x10,
  kLacpDistributing = 0x20,
  kLacpDefaulted = 0x40,
  kLacpExpired = 0x80,
};

// port->sm_vars (bond_3ad.c AD_PORT_*).
enum AdSmVar : uint16_t {
  kPortBegin = 0x1,
  kPortLacpEnabled = 0x2,
  kPortActorChurn = 0x4,
  kPortPartnerChurn = 0x8,
  kPortReady = 0x10,
  kPortReadyN = 0x20,
  kPortMatched = 0x40,
  kPortStandby = 0x80,
  kPortSelected = 0x100,
  kPortMoved = 0x200,
  kPortChurned = kPortActorChurn | kPortPartnerChurn,
};

// The machines' states, with Linux's numbers (rx_states_t, …).
enum class RxState : uint8_t {
  dummy,
  initialize,
  port_disabled,
  lacp_disabled,
  expired,
  defaulted,
  current
};
enum class PeriodicState : uint8_t {
  dummy,
  no_periodic,
  fast_periodic,
  slow_periodic,
  periodic_tx
};
enum class MuxState : uint8_t { dummy, detached, waiting, attached, collecting_distributing };
enum class ChurnState : uint8_t { monitor, churn, no_churn };
enum class AdSelect : uint8_t { stable = 0, bandwidth = 1, count = 2 };

const char* rx_state_name(RxState s);
const char* periodic_state_name(PeriodicState s);
const char* mux_state_name(MuxState s);
const char* churn_state_name(ChurnState s);

// struct port_params.
struct PortParams {
  rte_ether_addr system{};
  uint16_t system_priority = 0xffff;
  uint16_t key = 1;
  uint16_t port_number = 1;
  uint16_t port_priority = 0xff;
  uint8_t port_state = kLacpActivity;
};

// A received struct lacpdu, in host order.
struct Lacpdu {
  PortParams actor, partner;
};
// Parses 110 bytes from the subtype on; false if it is not a version-1 LACPDU layout.
bool parse_lacpdu(const uint8_t* p, Lacpdu* out);
// Writes a struct lacpdu (110 bytes) from actor and partner information.
void write_lacpdu(uint8_t* p, const PortParams& actor, const PortParams& partner);

// struct aggregator: one per member, as Linux has.
struct AdAggregator {
  uint16_t id = 0;  // aggregator_identifier (1-based, enslave order)
  bool is_individual = false;
  uint16_t actor_admin_key = 0, actor_oper_key = 0;
  rte_ether_addr partner_system{};
  uint16_t partner_system_priority = 0, partner_oper_key = 0;
  bool receive_state = false, transmit_state = false;
  std::vector<Member*> lag;  // lag_ports, newest first
  bool is_active = false;
  bool has_partner() const { return !rte_is_zero_ether_addr(&partner_system); }
};

struct AdCounters {
  uint64_t lacpdu_rx = 0, lacpdu_tx = 0, marker_rx = 0, marker_tx = 0, marker_resp_rx = 0,
           marker_unknown_rx = 0, loopback_rx = 0, tx_failed = 0;
};

// struct port.
struct AdPort {
  uint16_t actor_port_number = 0;
  uint16_t actor_port_priority = 0xff;
  rte_ether_addr actor_system{};
  uint16_t actor_system_priority = 0xffff;
  uint16_t actor_admin_key = 0, actor_oper_key = 0;
  uint8_t actor_admin_state = 0, actor_oper_state = 0;
  PortParams partner_admin, partner_oper;
  bool is_enabled = true;
  bool ntt = false;
  uint16_t sm_vars = 0;
  RxState rx = RxState::dummy;
  uint16_t rx_timer = 0;
  PeriodicState periodic = PeriodicState::dummy;
  uint16_t periodic_timer = 0;
  MuxState mux = MuxState::dummy;
  uint16_t mux_timer = 0;
  uint16_t tx_timer = 0;
  ChurnState churn_actor = ChurnState::monitor, churn_partner = ChurnState::monitor;
  uint16_t churn_actor_timer = 0, churn_partner_timer = 0;
  uint64_t churn_actor_count = 0, churn_partner_count = 0;
  AdAggregator* aggregator = nullptr;
  AdCounters ctr;
};

// The bond's 802.3ad parameters and state (struct ad_bond_info).
struct AdBond {
  rte_ether_addr system{};  // ad_actor_system: the bond's MAC
  uint16_t system_priority = 0xffff;
  uint16_t user_port_key = 0;
  bool lacp_fast = false;
  bool lacp_active = true;
  AdSelect select = AdSelect::stable;
  unsigned agg_select_timer = 0;  // ticks
  uint64_t next_tick_ms = 0;
};

}  // namespace sluice::bond
