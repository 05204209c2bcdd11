// Linux bonding (drivers/net/bonding/): bond devices whose members'
// rx_handler is bond_handle_frame, member choice on transmit identical to
// Linux 6.x, the MII monitor with up/downdelay, primary and reselect,
// failover with peer notification, and the counters folded as
// bond_get_stats does.
// Spec: ../shared/spec/linux-rx.md §3 (BOND-* cases in §8.3). Docs: docs/bond.md.
//
// Stages (each named after the kernel function it reproduces):
//   bond_handle_frame()   rx_handler of every member: recv_probe (LACPDU and
//                         Marker consumed on every member in 802.3ad; other
//                         slow-protocol subtypes go on), inactive member →
//                         link-local PASS / everything else EXACT, otherwise
//                         dev := bond and ANOTHER
//   bond_start_xmit()     the bond device's xmit: balance-rr (per-worker
//                         pre-incremented counter, IGMP to the active member),
//                         active-backup, balance-xor / 802.3ad (xmit_hash over
//                         the usable members), broadcast (a copy per member)
//   bond_mii_monitor()    control thread, every miimon_ms: the link state
//                         table of §3.5, commit, bond_select_active_slave
//   bond_change_active_slave()  inactive flags, gratuitous ARP / unsolicited
//                         NA for the bond's addresses, learning frames for
//                         the MACs of a bridge the bond is a port of
//
// Outputs: ANOTHER to the bond device; PASS / EXACT on inactive members;
//   dev_queue_xmit on members; LACPDUs and Markers to the control thread.
// Drop reasons: bond_no_member (tx_dropped on the bond), bond_slow_ring_full,
//   nomem (broadcast copies).
// Counters: members' counters fold into the bond's (Dataplane::fold_counters);
//   per member (show bond): link failures, last change, lacpdu illegal/unknown.
// Config keys: bonds: name, mode, members, primary, primary_reselect,
//   xmit_hash_policy, miimon_ms, updelay_ms, downdelay_ms, lacp_rate,
//   lacp_active, ad_select, ad_actor_sys_prio, ad_user_port_key,
//   fail_over_mac, arp_monitor{interval_ms, targets, validate, all_targets,
//   missed_max}, mac, tlb_dynamic_lb, packets_per_slave, num_grat_arp.
// balance-alb: alb.hh (RLB client table, member MACs, ARP rewriting).
// CLI: show bond [BOND].
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "bond/alb.hh"
#include "bond/lacp.hh"
#include "bond/tlb.hh"
#include "core/device.hh"
#include "core/worker.hh"

struct rte_ring;
struct rte_mempool;

namespace sluice {
class Dataplane;
}
namespace sluice::config {
struct Bond;
class Topology;
}  // namespace sluice::config

namespace sluice::bond {

inline constexpr unsigned kMaxMembers = 16;
inline constexpr unsigned kMaxArpTargets = 16;  // BOND_MAX_ARP_TARGETS
inline constexpr uint8_t kNoMember = 0xff;

// BOND_MODE_* (include/uapi/linux/if_bonding.h), same numbers.
enum class Mode : uint8_t {
  balance_rr = 0,
  active_backup = 1,
  balance_xor = 2,
  broadcast = 3,
  ieee8023ad = 4,
  balance_tlb = 5,
  balance_alb = 6
};
const char* mode_name(Mode m);
bool parse_mode(const std::string& s, Mode* out);

// BOND_XMIT_POLICY_* (same numbers).
enum class HashPolicy : uint8_t {
  layer2 = 0,
  layer34 = 1,
  layer23 = 2,
  encap23 = 3,
  encap34 = 4,
  vlan_srcmac = 5
};
const char* policy_name(HashPolicy p);
bool parse_policy(const std::string& s, HashPolicy* out);

// BOND_LINK_* (include/net/bonding.h), same numbers.
enum class LinkState : uint8_t { up = 0, fail = 1, down = 2, back = 3 };
const char* link_state_name(LinkState s);

enum class Reselect : uint8_t { always = 0, better = 1, failure = 2 };  // primary_reselect
enum class FailOverMac : uint8_t { none = 0, active = 1, follow = 2 };

// __bond_xmit_hash (6.x) over a frame: data/len are the frame from its
// Ethernet header (the first segment); vlan_tci is the out-of-band tag
// (skb_vlan_tag_get) or 0 when has_vlan is false. Policy numbers as Linux.
uint32_t xmit_hash(HashPolicy p, const uint8_t* data, uint32_t len, bool has_vlan,
                   uint16_t vlan_tci);
uint32_t xmit_hash(HashPolicy p, const rte_mbuf* m);
// A burst's hashes, the common IPv4 TCP/UDP case inline.
void xmit_hash_burst(HashPolicy p, rte_mbuf* const* pkts, uint16_t n, uint32_t* out);

// a % d for a divisor fixed in advance (Lemire's fastmod): m = ~0ULL / d + 1.
inline uint32_t fastmod(uint32_t a, uint64_t m, uint32_t d) {
  const uint64_t low = m * a;
  return static_cast<uint32_t>((static_cast<__uint128_t>(low) * d) >> 64);
}

// What the workers read to transmit: immutable, published under RCU by the
// control thread whenever a member's link, activity or the active member
// changes.
struct TxView {
  uint8_t n = 0;                     // members (slave_cnt)
  uint8_t n_usable = 0;              // usable_slaves->count
  uint8_t active = kNoMember;        // curr_active_slave (position)
  uint32_t link_up = 0;              // bit per member: link == UP
  uint32_t is_active = 0;            // bit per member: not inactive (bond_is_active_slave)
  Device* dev[kMaxMembers] = {};     // member devices, enslave order
  uint8_t usable[kMaxMembers] = {};  // bond_update_slave_arr (xor, 802.3ad, tlb/alb)
  uint64_t usable_mod = 0;           // fastmod multiplier of n_usable
  uint32_t usable_mask = 0;          // bit per usable position
  uint8_t tlb[kTlbBuckets];          // balance-tlb: bucket -> position (kNoMember: hashed)
  rte_ether_addr mac[kMaxMembers];   // balance-alb: each member's current MAC (Alb::mac)
};

struct Bond;

// Per-member counters written by workers (plain fields of the worker).
struct MemberCounters {
  uint64_t lacpdu_illegal_rx, lacpdu_unknown_rx, slow_ring_full;
  // ARP monitor (bond_rcv_validate): when the member last received (a
  // validated ARP when validation is on), per target too; BondSys::clock_ms.
  uint64_t last_rx_ms, target_last_rx_ms[kMaxArpTargets];
  uint64_t arp_validated, arp_not_validated;
};

struct Member {
  Bond* bond = nullptr;
  Device* dev = nullptr;
  uint8_t pos = 0;            // enslave order
  uint16_t gidx = 0;          // over all bonds' members (per-worker counters)
  rte_ether_addr perm_mac{};  // its own MAC before enslaving
  uint32_t speed_mbps = 0;    // for primary_reselect better (0: unknown)
  bool full_duplex = true;

  // Read by workers: bond_should_deliver_exact_match (slave->inactive).
  std::atomic<bool> inactive{false};
  // Control thread: BOND_STATE_BACKUP (bond_is_active_slave is !backup);
  // in TxView::is_active for the workers.
  bool backup = false;

  // Control thread: the MII monitor (bonding.h struct slave).
  LinkState link = LinkState::down;
  LinkState proposed = LinkState::up;
  bool has_proposal = false;
  int delay = 0;
  uint64_t link_failure_count = 0;
  uint64_t last_link_up_ms = 0;
  uint64_t last_change_ms = 0;  // link or active/backup state changed
  uint64_t last_tx_ms = 0;      // ARP monitor: when its last probe left (dev_trans_start)

  // Control thread: 802.3ad (lacp.cc).
  AdPort ad;
  AdAggregator agg;
};

struct BondCounters {  // control thread
  uint64_t failovers = 0, garp_sent = 0, na_sent = 0, learning_sent = 0, inject_failed = 0;
  uint64_t slow_rx = 0;  // LACPDU/Marker frames handed to the control thread
};

class BondSys;

struct Bond {
  uint16_t idx = 0;  // in BondSys::bonds
  Device* dev = nullptr;
  BondSys* sys = nullptr;

  // Parameters (fixed after setup; workers read mode, policy and the flags).
  Mode mode = Mode::balance_rr;
  HashPolicy policy = HashPolicy::layer2;
  bool lacp_probe = false;  // 802.3ad: bond_3ad_lacpdu_recv is recv_probe
  bool arp_probe = false;   // ARP monitor: bond_rcv_validate is recv_probe
  unsigned packets_per_slave = 1;
  unsigned miimon_ms = 0;
  int updelay = 0, downdelay = 0;  // in monitor ticks (ms / miimon, rounded down)
  Reselect reselect = Reselect::always;
  FailOverMac fail_over_mac = FailOverMac::none;
  unsigned num_grat_arp = 1;
  bool tlb_dynamic_lb = true;

  std::vector<std::unique_ptr<Member>> members;  // enslave order
  Member* primary = nullptr;
  AdBond ad;  // 802.3ad

  // ARP monitor (arp_interval, arp_ip_target, arp_validate, arp_all_targets,
  // missed_max); workers read the fixed parts and the two flags.
  struct Arp {
    unsigned interval_ms = 0;       // 0: off
    std::vector<uint32_t> targets;  // network order
    uint8_t validate = 0;           // bit 0: active members, bit 1: backups (BOND_ARP_VALIDATE_*)
    bool all_targets = false;       // arp_all_targets all
    unsigned missed_max = 2;
    std::vector<uint32_t> local;  // the bond's IPv4 addresses (and its bridge's, VLANs')
    uint64_t next_ms = 0;
    Member* current_arp_slave = nullptr;        // active-backup: the candidate being probed
    std::atomic<bool> active_validated{false};  // curr_active received since it became active
    std::atomic<bool> arp_slave_recent{false};  // current_arp_slave sent within an interval
    uint64_t probes_sent = 0;
  } arp;
  // The bond's IPv4 addresses with their subnets (and the VLAN they are on):
  // the source of ARP probes to a target in that subnet (bond_confirm_addr).
  struct ArpSource {
    uint32_t ip, mask;  // network order
    uint16_t vlan;
  };
  std::vector<ArpSource> arp_sources;
  bool force_primary = false;

  // Control thread.
  Member* curr_active = nullptr;
  std::vector<uint8_t> usable;  // positions, rebuilt by update_slave_arr
  uint64_t next_mii_ms = 0;
  unsigned notify_left = 0;  // peer notifications still to send (send_peer_notif)
  BondCounters ctr;
  // Peer notification: (device, IPv4 addresses, IPv6 addresses) of the bond
  // and of devices stacked on it (its VLANs, the bridge it is a port of).
  struct Upper {
    uint16_t dev;
    std::vector<uint32_t> v4;  // network order
    std::vector<std::array<uint8_t, 16>> v6;
  };
  std::vector<Upper> uppers;
  uint16_t bridge = kNoDev;  // the bridge the bond is a port of

  std::atomic<const TxView*> view{nullptr};

  // balance-tlb (control thread): the bucket assignment published in the
  // TxView, the byte sums at the last rebalance, when the next is due.
  uint8_t tlb_map[kTlbBuckets];
  uint64_t tlb_seen[kTlbBuckets] = {};
  uint64_t tlb_next_ms = 0;
  uint64_t tlb_rebalances = 0;

  // balance-alb (alb.cc): the client table and the members' MACs.
  std::unique_ptr<Alb> alb;

  bool uses_primary() const {
    return mode == Mode::active_backup || mode == Mode::balance_tlb || mode == Mode::balance_alb;
  }
  bool has_usable_arr() const {
    return mode == Mode::balance_xor || mode == Mode::ieee8023ad || mode == Mode::balance_tlb ||
           mode == Mode::balance_alb;
  }
  Member* member_of(uint16_t dev_index) const {
    for (auto& m : members)
      if (m->dev->index == dev_index) return m.get();
    return nullptr;
  }
};

// The member's state flags (bond_set_backup_slave / bond_set_active_slave,
// bond_set_slave_inactive_flags / bond_set_slave_active_flags). Control thread.
inline void set_backup(Member& m, bool backup, uint64_t now) {
  if (m.backup != backup) m.last_change_ms = now;
  m.backup = backup;
}
// The member's Device::rx_through: the bond while bond_handle_frame passes
// every burst on whole (an active member, no recv_probe, not alb), once the
// handler is registered. Called wherever `inactive` changes.
inline void publish_through(const Bond& b, Member& m) {
  if (m.dev->rx_handler_ctx.load(std::memory_order_relaxed) != &m) return;
  const bool whole = b.mode != Mode::balance_alb && !b.lacp_probe && !b.arp_probe &&
                     !m.inactive.load(std::memory_order_relaxed);
  m.dev->rx_through.store(whole ? b.dev->index : kNoDev, std::memory_order_relaxed);
}
inline void set_inactive_flags(Bond& b, Member& m, uint64_t now) {
  const bool lb = b.mode == Mode::balance_tlb || b.mode == Mode::balance_alb;
  if (!lb) set_backup(m, true, now);
  m.inactive.store(true, std::memory_order_relaxed);
  publish_through(b, m);
}
inline void set_active_flags(Member& m, uint64_t now) {
  set_backup(m, false, now);
  m.inactive.store(false, std::memory_order_relaxed);
  publish_through(*m.bond, m);
}

// What one worker owns for bonding (cache-line aligned, never shared).
struct alignas(64) WorkerState {
  rte_ring* slow = nullptr;         // worker → control: LACPDU / Marker mbufs
  std::vector<uint32_t> rr;         // [bond] rr_tx_counter
  std::vector<MemberCounters> ctr;  // [member gidx]
  std::vector<std::array<uint64_t, kTlbBuckets>> tlb_bytes;  // [bond] balance-tlb bytes per bucket
  rte_ring* rlb = nullptr;  // worker → control: RlbEvents (balance-alb)
  uint64_t rlb_lost = 0;    // events the full ring refused
};

// The bonding feature: dp.feature<BondSys>().
class BondSys {
 public:
  explicit BondSys(Dataplane& dp);
  ~BondSys();

  Dataplane& dp;
  std::vector<std::unique_ptr<Bond>> bonds;
  std::vector<Member*> all_members;                   // [gidx]
  std::vector<std::unique_ptr<WorkerState>> workers;  // [worker id]
  rte_mempool* pool = nullptr;                        // for frames the control thread sends
  // The bonding clock (ms): set by tick(), read by workers (ARP monitor).
  std::atomic<uint64_t> clock_ms{0};

  Bond* find(const std::string& name) const;
  Member* find_member(uint16_t dev_index) const;
  // The running bond numbered idx, or nullptr. Bond numbers and member gidx
  // are given in order and never reused (a reload removes bonds), so an
  // event a worker queued (RLB ring) cannot name another bond.
  Bond* by_idx(uint16_t idx) const;
  uint16_t next_idx = 0, next_gidx = 0;
  // The workers' per-bond and per-member arrays sized for every number;
  // the observers, timer and shutdown step, once.
  void size_workers();
  void start(Dataplane& dp);
  // bond_enslave's time stamps for members added after the clock started.
  void stamp_members(const std::vector<Member*>& ms, uint64_t now);
  bool clock_started() const { return clock_started_; }
  // Bonds a reload removed: the objects stay (a TxView or pointer read
  // before the grace period may still reach them); their members do not.
  std::vector<std::unique_ptr<Bond>> retired;

  // Control thread, every few ms (the daemon's timer; tests call it with a
  // fake clock): drains the slow-protocol rings, runs each bond's MII
  // monitor when it is due.
  void tick(uint64_t now_ms);
  uint64_t now_ms() const { return now_ms_; }

  // Control thread: queue a frame for dev_queue_xmit(meta(m).dev) on a
  // worker (Worker::inject). Owns m.
  bool inject(rte_mbuf* m);

  // The MII monitor of one bond (bond_mii_monitor): inspect + commit.
  void mii_monitor(Bond& b);
  // bond_select_active_slave.
  void select_active(Bond& b);
  // Publishes b's TxView (and the members' inactive flags) from the control state.
  void publish(Bond& b);
  // Sends one round of peer notifications for b (GARP, NA, learning frames).
  void notify_peers(Bond& b);

  // bond_update_slave_arr and bond_set_carrier.
  void update_slave_arr(Bond& b);
  void set_carrier(Bond& b);

  MemberCounters member_counters(const Member& m) const;  // summed over workers

  // 802.3ad (lacp.cc): bond_3ad_bind_slave, the state machine handler (one
  // 100 ms tick), a received LACPDU or Marker (110 bytes from the subtype),
  // bond_3ad_handle_link_change, and the active aggregator (or nullptr).
  void ad_bind(Bond& b, Member& m);
  void ad_tick(Bond& b);
  void ad_rx(Member& m, const uint8_t* pdu);
  void ad_link_change(Member& m, LinkState s);
  AdAggregator* ad_active_agg(Bond& b) const;
  // ARP monitor (arp.cc): bond_activebackup_arp_mon / bond_loadbalance_arp_mon.
  void arp_monitor(Bond& b);
  uint64_t slave_last_rx(const Member& m) const;
  // Internals of lacp.cc that need the rest of the bond.
  void ad_enable_port(Member& m);
  void ad_disable_port(Member& m);
  void ad_send_lacpdu(Member& m);
  void ad_send_marker(Member& m, const uint8_t* marker);

  void init_workers();
  // balance-tlb: sums the workers' bucket bytes and reassigns (tlb.cc).
  void tlb_rebalance_bond(Bond& b);

 private:
  void change_active(Bond& b, Member* next);
  Member* find_best(Bond& b);
  Member* choose_primary_or_current(Bond& b);
  void set_link(Member& m, LinkState s);
  void ab_arp_mon(Bond& b);
  void lb_arp_mon(Bond& b);
  void arp_send_all(Bond& b, Member& m);
  bool in_interval(const Bond& b, uint64_t last, unsigned mod) const;
  void drain_slow();
  void start_clock(uint64_t now);
  uint64_t now_ms_ = 0;
  bool clock_started_ = false;
  unsigned inject_rr_ = 0;
  bool started_ = false;
};

// Internal (bond.cc, reload.cc): bond_create + bond_enslave of every member
// (their rx_handler slots, MACs, the folded counters), reading the rest of
// `topo` (its VLANs, bridges and addresses). Throws std::runtime_error.
Bond* build_bond(Dataplane& dp, BondSys& sys, const config::Bond& cfg,
                 const config::Topology& topo);
// Gives d the MAC (the PMD too, when it is a port).
void program_mac(Device& d, const rte_ether_addr& mac);

// Builds the bonds of dp.topo (after ports and VLANs exist, before the
// bridges and L3); registers the timer, the workers' rings and inject path.
void setup(Dataplane& dp);
// Feature::reload (reload.cc): bonds added and removed; a bond changed in
// place needs a restart.
std::string reload(Dataplane& dp, const config::Topology& next, bool apply);

// Frames the control thread sends (notify.cc): a zeroed frame of len bytes
// (at least 60, as a NIC pads), and the metadata that sends it straight out
// of `dev` (OUTGOING, VLAN-tagged when vlan != 0).
rte_mbuf* new_frame(rte_mempool* mp, unsigned len, uint8_t** out);
void frame_meta(rte_mbuf* m, uint16_t dev, uint16_t protocol, uint16_t vlan);

// show devices, Prometheus and telemetry (/sluice/bond) (commands.cc).
void register_observers(Dataplane& dp, BondSys& sys);
void unregister_observers(BondSys& sys);

// The rx_handler and xmit (bond_input.cc).
uint16_t bond_handle_frame(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                           RxResult* res);
void bond_start_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);

}  // namespace sluice::bond
