// The Linux bridge (net/bridge/): bridge devices whose ports' rx_handler is
// br_handle_frame, an FDB on rte_hash, flooding, local delivery, 802.1Q VLAN
// filtering, 802.1D STP and the bridge hook points.
// Spec: ../shared/spec/linux-rx.md §4 (BR-* cases in §8.4). Docs: docs/bridge.md.
//
// Stages (each named after the kernel function it reproduces):
//   br_handle_frame()        rx_handler of every port: loopback PASS, invalid
//                            source drop, link-local 01:80:C2:00:00:0X rules,
//                            STP state gate, pkt_type HOST for the bridge MAC,
//                            bridge/pre_routing hooks
//   br_handle_frame_finish() VLAN ingress filter, learning, classification,
//                            FDB lookup, forward / flood / pass up
//   br_forward()             per copy: egress VLAN, bridge/forward (or
//                            local_out), bridge/post_routing, MTU, dev_queue_xmit(port)
//   br_pass_frame_up()       bridge rx counters, bridge VLAN egress,
//                            bridge/local_in, ANOTHER with dev = orig_dev = bridge
//   br_dev_xmit()            the bridge device's xmit (frames sent by the host)
//
// Outputs: dev_queue_xmit on ports; RX_HANDLER_ANOTHER to the bridge device;
//   PASS to the port's stack (link-local, broute); BPDUs to the STP code.
// Drop reasons: mac_invalid_source, bridge_pause, bridge_ingress_stp_state,
//   bridge_learning_state, bridge_vlan_filter, bridge_no_pvid, no_tx_target,
//   netfilter_drop, pkt_too_big, nomem.
// Counters: bridge device rx_packets/rx_bytes/multicast (local delivery),
//   tx_packets/tx_bytes (br_dev_xmit); per bridge (show bridge): learned,
//   learn_events, learn_ring_full, moves, own_src, fdb_full, aged, flooded,
//   flooded_local, forwarded, local, link_local_pass, bpdu_rx, bpdu_tx.
// Config keys: bridges: name, ports, mac, ageing_s, max_fdb_entries, stp,
//   vlan_filtering, default_pvid, group_fwd_mask, priority, hello_s,
//   max_age_s, forward_delay_s, port_settings{pvid, vlans, untagged,
//   hairpin, learning, flood, mcast_flood, bcast_flood, state,
//   group_fwd_mask, priority, path_cost}, fdb_static[{mac, port, vlan}].
// CLI: show bridge [BR], show fdb BR, fdb add|del BR MAC PORT [vlan V],
//   fdb flush BR.
#pragma once

#include <atomic>
#include <bitset>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "bridge/fdb.hh"
#include "core/device.hh"
#include "core/worker.hh"
#include "hooks/hooks.hh"

struct rte_ring;

namespace sluice {
class Dataplane;
}

namespace sluice::config {
class Topology;
struct Bridge;
}  // namespace sluice::config

namespace sluice::bridge {

inline constexpr unsigned kMaxBridgePorts = 1023;  // BR_MAX_PORTS - 1 (port 0 reserved)
inline constexpr unsigned kMaxWorkers = 64;

// Priorities at the bridge hook points (nf_br_hook_priorities, spec §4.7).
enum HookPriority : int {
  kPriFirst = INT_MIN,
  kPriNatDstBridged = -300,
  kPriFilterBridged = -200,
  kPriBrnf = 0,
  kPriNatDstOther = 100,
  kPriFilterOther = 200,
  kPriNatSrc = 300,
  kPriLast = INT_MAX,
};

// include/uapi/linux/if_bridge.h BR_STATE_*.
enum class PortState : uint8_t {
  disabled = 0,
  listening = 1,
  learning = 2,
  forwarding = 3,
  blocking = 4
};
const char* port_state_name(PortState s);
bool parse_port_state(const std::string& s, PortState* out);

enum PortFlag : uint32_t {
  kPortLearning = 1 << 0,
  kPortFlood = 1 << 1,
  kPortMcastFlood = 1 << 2,
  kPortBcastFlood = 1 << 3,
  kPortHairpin = 1 << 4,
};

// 802.1Q membership of a port or of the bridge itself (fixed after setup).
struct VlanSet {
  std::bitset<4096> member, untagged;
  uint16_t pvid = 0;  // 0: none
  bool has(uint16_t vid) const { return member.test(vid & 0xfff); }
  bool is_untagged(uint16_t vid) const { return untagged.test(vid & 0xfff); }
};

struct StpTimer {
  bool active = false;
  uint64_t expires_ms = 0;
  void start(uint64_t at) {
    active = true;
    expires_ms = at;
  }
  void stop() { active = false; }
  bool expired(uint64_t now) {
    if (active && now >= expires_ms) {
      active = false;
      return true;
    }
    return false;
  }
};

// 802.1D per-port STP variables (br_private.h net_bridge_port); control thread only.
struct StpPort {
  uint16_t port_id = 0;  // priority << 10 | port_no
  uint64_t designated_root = 0, designated_bridge = 0;
  uint32_t designated_cost = 0;
  uint16_t designated_port = 0;
  uint32_t path_cost = 100;
  bool config_pending = false, topology_change_ack = false;
  StpTimer message_age, forward_delay, hold;
  uint64_t last_bpdu_tx_ms = 0;
  uint64_t bpdu_rx = 0, bpdu_tx = 0, tcn_rx = 0, tcn_tx = 0;
  uint64_t transitions = 0;
};

struct Bridge;

struct BridgePort {
  Bridge* br = nullptr;
  Device* dev = nullptr;
  uint16_t port_no = 0;   // 1..1023, in order of addition
  uint16_t position = 0;  // index in Bridge::flood_order (newest first)
  std::atomic<uint8_t> state{static_cast<uint8_t>(PortState::forwarding)};
  // With STP off: the state while the port has carrier (config `state`,
  // default forwarding); without carrier a port is DISABLED, as Linux's
  // br_port_carrier_check does.
  PortState admin_state = PortState::forwarding;
  std::atomic<uint32_t> flags{kPortLearning | kPortFlood | kPortMcastFlood | kPortBcastFlood};
  uint16_t group_fwd_mask = 0;
  uint8_t priority = 0x20;
  bool cost_from_speed = true;
  VlanSet vlans;
  StpPort stp;
  uint32_t stp_ptype = 0;  // the br_stp_rcv handler's id (STP on), for removal

  PortState get_state() const {
    return static_cast<PortState>(state.load(std::memory_order_relaxed));
  }
  bool has(uint32_t f) const { return flags.load(std::memory_order_relaxed) & f; }
};

// Per bridge, per worker counters (plain fields of the worker that writes them).
// Per worker and bridge, written per packet: aligned so that two workers'
// counters (small heap blocks, allocated one after the other) never share a
// cache line.
struct alignas(64) BrCounters {
  uint64_t learn_events, learn_ring_full, moves, own_src, flooded, forwarded, local,
      link_local_pass, bpdu_rx, hairpin;
  uint64_t flooded_local;  // flooded and also passed up (in both `flooded` and `local`)
};

class BridgeSys;

struct Bridge {
  uint16_t idx = 0;  // in BridgeSys::bridges
  Device* dev = nullptr;
  BridgeSys* sys = nullptr;
  bool stp_enabled = false;
  bool vlan_filtering = false;
  uint16_t vlan_proto = 0x8100;
  uint16_t group_fwd_mask = 0;
  uint64_t ageing_ms = 300000;
  std::vector<std::unique_ptr<BridgePort>> ports;  // by port_no - 1
  std::vector<BridgePort*> flood_order;            // newest first (br->port_list order)
  VlanSet vlans;                                   // the bridge device's own
  std::unique_ptr<Fdb> fdb;
  std::vector<BridgePort*> by_dev;  // [device index] → port of this bridge (or nullptr)

  // Control-thread counters.
  uint64_t learned = 0, fdb_full = 0, aged = 0, bpdu_tx = 0;
  uint64_t next_gc_ms = 0;

  // 802.1D bridge variables (control thread only, except topology_change
  // which ageing reads).
  struct {
    uint16_t priority = 0x8000;
    uint64_t bridge_id = 0, designated_root = 0;
    uint32_t root_path_cost = 0;
    uint16_t root_port = 0;  // port_no, 0 = we are root
    uint32_t max_age_ms = 20000, hello_ms = 2000, forward_delay_ms = 15000;  // in use
    uint32_t bridge_max_age_ms = 20000, bridge_hello_ms = 2000, bridge_forward_delay_ms = 15000;
    bool topology_change = false, topology_change_detected = false;
    StpTimer hello, tcn, topology_change_timer;
    uint64_t tc_count = 0;
    bool started = false;  // timers run from the first control tick
  } stp;

  BridgePort* port_of(uint16_t dev_index) const {
    return dev_index < by_dev.size() ? by_dev[dev_index] : nullptr;
  }
  uint64_t hold_ms() const;  // ageing_time, or forward_delay during a topology change
};

// A learn request from a worker to the control thread.
struct LearnEvent {
  rte_ether_addr mac;
  uint16_t vid;
  uint16_t port;    // device index
  uint16_t bridge;  // Bridge::idx
};
static_assert(sizeof(LearnEvent) % 4 == 0);

// What one worker owns for the bridge (cache-line aligned, never shared).
struct alignas(64) WorkerState {
  rte_ring* learn = nullptr;   // worker → control: LearnEvent
  rte_ring* to_ctl = nullptr;  // worker → control: BPDU mbufs (STP)
  struct Recent {
    uint64_t key;
    uint64_t ms;
    uint16_t port, bridge;
    uint32_t gen;  // Fdb::gen when sent: a deletion since allows a new request at once
  };
  Recent recent[256]{};         // learn requests sent lately (no repeats within 100 ms)
  std::vector<BrCounters> ctr;  // [bridge]
  // Sources verified in the FDB lately (direct-mapped, 4096 slots): a frame
  // from a source seen on the same port < 1 s ago, with no FDB deletion or
  // move since (Fdb::gen), skips the source lookup altogether.
  struct SrcSeen {
    uint64_t key;  // MAC | VID << 48
    uint64_t ms;   // the entry's updated_ms when verified
    uint32_t gen;
    uint16_t port, bridge;
  };
  std::vector<SrcSeen> src_seen;
  // Per-burst egress staging of one bridge: copies by port position.
  struct alignas(64) Egress {  // aligned: never on a line of another worker's
    uint16_t n;
    rte_mbuf* pkts[kBurst];
  };
  std::vector<Egress> egress;     // [max ports of any bridge]
  std::vector<uint16_t> touched;  // positions with n != 0
};

// The bridge feature: dp.feature<BridgeSys>().
class BridgeSys {
 public:
  explicit BridgeSys(Dataplane& dp);
  ~BridgeSys();

  Dataplane& dp;
  std::vector<std::unique_ptr<Bridge>> bridges;
  std::vector<std::unique_ptr<WorkerState>> workers;  // [worker id]
  // The hook points bridge/* (and arp/forward through br_netfilter) live
  // in the one registry: hooks::registry(dp).
  hooks::Registry& hooks;
  // br_netfilter's entry at bridge/forward (br_netfilter_attach), 0: none.
  uint32_t brnf_entry = 0;

  // The bridge clock: set by the control thread (and by tests), read by workers.
  std::atomic<uint64_t> now_ms{0};
  rte_mempool* pool = nullptr;  // for frames the control thread sends (BPDUs)

  Bridge* find(const std::string& name) const;
  // The running bridge numbered idx (Bridge::idx), or nullptr: numbers are
  // given in order and never reused, so that what a worker queued with a
  // number (learn requests, its caches) cannot name another bridge.
  Bridge* by_idx(uint16_t idx) const;
  uint16_t next_idx = 0;

  // The workers' per-bridge arrays sized for every bridge (counters by
  // number are kept); the timer, okfns, inject rings and shutdown step, once.
  void size_workers();
  void start(Dataplane& dp);

  // Control thread: drain learn requests and BPDUs, STP timers, ageing.
  void run(uint64_t now_ms);
  // Control thread: queue a frame for dev_queue_xmit(meta(m).dev) on a
  // worker (through Worker::inject, drained once per poll loop). Owns m.
  bool inject(rte_mbuf* m);
  // Worker: what inject_xmit() does in the poll loop (tests call it).
  void poll_inject(Worker& w);

  // FDB editing (control thread): the CLI and the config's fdb_static.
  std::string fdb_add(Bridge& br, const rte_ether_addr& mac, BridgePort& p, uint16_t vid,
                      bool is_static);
  BrCounters counters(const Bridge& br) const;  // since the last clear_stats()
  void clear_stats();                           // `clear stats`: a baseline
  BrCounters raw_counters(const Bridge& br) const;
  std::vector<BrCounters> base_;          // [bridge] (control thread)
  uint64_t gc(Bridge& br, uint64_t now);  // ageing; returns entries removed

  // STP (stp.cc).
  void stp_init(Bridge& br);
  void stp_timers(Bridge& br, uint64_t now);
  void stp_rcv(Bridge& br, BridgePort& p, const uint8_t* bpdu, unsigned len, uint64_t now);
  void stp_port_link(Bridge& br, BridgePort& p, bool up, uint64_t now);

  // Creates the worker rings (once the workers exist).
  void init_workers();

 private:
  void carrier_check(Bridge& br);
  void drain_learn(uint64_t now);
  void drain_to_ctl(uint64_t now);
  unsigned inject_rr_ = 0;
  bool started_ = false;

 public:
  // Ports and bridges a reload removed: the objects stay (small; a hook
  // queue's resumed frame or a pointer read before the grace period may
  // still reach them). A removed bridge's FDB is freed.
  std::vector<std::unique_ptr<BridgePort>> retired_ports;
  std::vector<std::unique_ptr<Bridge>> retired_bridges;
};

// Internal to the feature (bridge.cc, reload.cc). Throw std::runtime_error.
// br_add_bridge + br_add_if for every port: the device, the FDB, the ports'
// rx_handler slots (after the checks, which leave nothing behind).
Bridge* build_bridge(Dataplane& dp, BridgeSys& sys, const config::Bridge& cfg);
// One port as br_add_if makes it (flags, VLANs, STP settings), not attached yet.
std::unique_ptr<BridgePort> new_port(Bridge& br, Device& dev, const config::Bridge& cfg,
                                     uint16_t port_no);
void make_promiscuous(Dataplane& dp, Device& d);

// Builds the bridges of dp.topo (after ports and VLANs exist); registers
// timers, the shutdown step, and the workers' inject rings. Throws on errors.
void setup(Dataplane& dp);
// Feature::reload (reload.cc): bridges added and removed, ports added to
// and removed from running bridges (their FDB, STP and counters stay),
// settings that apply in place; says why anything else needs a restart.
std::string reload(Dataplane& dp, const config::Topology& next, bool apply);

// The rx_handler and xmit (br_input.cc).
uint16_t br_handle_frame(Worker& w, Device& dev, void* ctx, rte_mbuf** pkts, uint16_t n,
                         RxResult* res);
void br_dev_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n);
// The LLC handler bound to each port when STP is on: BPDUs to the control thread.
void br_stp_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);

// The okfns of the bridge points (br_input.cc): where a frame a hook queue
// consumer accepted goes on — pre_routing: br_handle_frame_finish; local_in:
// the bridge device (or, link-local, the port's own stack); forward and
// local_out: ok_forward; post_routing: out of the port st.out. setup() sets them.
void set_okfns(hooks::Registry& reg);
// br_forward_finish for frames accepted late at bridge/forward or local_out
// (or arp/forward): bridge/post_routing, then out of the port st.out.
void ok_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* ctx);

// br_netfilter's br_nf_forward_arp (br_netfilter.cc): when there are bridges
// and arp/forward has entries (call after rule lists and plugins are in),
// an entry at bridge/forward, priority brnf, runs arp/forward on the ARP
// frames the bridge forwards. Returns whether the entry is there afterwards.
// Idempotent: called at start and after every reload of the hooks or the
// bridges (the first bridge or the first arp/forward list may arrive by
// reload); the entry leaves when arp/forward has no entries any more.
bool br_netfilter_attach(Dataplane& dp);

}  // namespace sluice::bridge
