// 802.1D spanning tree as the kernel runs it (BR_KERNEL_STP: net/bridge/
// br_stp.c, br_stp_if.c, br_stp_bpdu.c, br_stp_timer.c), on the control
// thread. BPDUs arrive through the LLC handler bound to each port (workers
// queue them on a ring) and leave through the worker inject rings
// (dev_queue_xmit(port) on a worker), so the control thread never touches a
// TX queue.
//
// Outputs: port states (read by the datapath), config and TCN BPDUs,
//   topology change (short FDB hold time).
// Counters: per port bpdu_rx/bpdu_tx/tcn_rx/tcn_tx/transitions; per bridge
//   topology_change_count, bpdu_tx.
// Config keys: stp, priority, hello_s, max_age_s, forward_delay_s, per port
//   priority and path_cost.
#include <cstring>

#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "bridge/bridge.hh"
#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice::bridge {
namespace {

constexpr uint8_t kBpduConfig = 0x00;
constexpr uint8_t kBpduTcn = 0x80;
constexpr uint64_t kHoldMs = 1000;  // BR_HOLD_TIME

struct ConfigBpdu {
  bool topology_change = false, topology_change_ack = false;
  uint64_t root_id = 0, bridge_id = 0;
  uint32_t root_path_cost = 0;
  uint16_t port_id = 0;
  uint32_t message_age_ms = 0, max_age_ms = 0, hello_ms = 0, forward_delay_ms = 0;
};

uint64_t get_id(const uint8_t* b) {
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = v << 8 | b[i];
  return v;
}
void put_id(uint8_t* b, uint64_t v) {
  for (int i = 7; i >= 0; i--, v >>= 8) b[i] = static_cast<uint8_t>(v);
}
// STP times are in 1/256 s.
uint32_t get_time_ms(const uint8_t* b) {
  return (uint32_t(b[0] << 8 | b[1]) * 1000) / 256;
}
void put_time_ms(uint8_t* b, uint32_t ms) {
  uint32_t t = (ms * 256 + 999) / 1000;
  if (t > 0xffff) t = 0xffff;
  b[0] = static_cast<uint8_t>(t >> 8);
  b[1] = static_cast<uint8_t>(t);
}

uint64_t mac_bits(const rte_ether_addr& a) {
  uint64_t v = 0;
  for (int i = 0; i < 6; i++) v = v << 8 | a.addr_bytes[i];
  return v;
}

uint32_t cost_of_speed(uint32_t mbps) {  // br_if.c port_cost()
  switch (mbps) {
    case 10000:
      return 2;
    case 5000:
      return 3;
    case 2500:
      return 4;
    case 1000:
      return 4;
    case 100:
      return 19;
    case 10:
      return 100;
    case 0:
      return 100;
    default:
      return mbps > 10000 ? 1 : 100;
  }
}

class Stp {
 public:
  Stp(BridgeSys& sys, Bridge& br, uint64_t now) : sys_(sys), br_(br), s_(br.stp), now_(now) {}

  bool is_root() const { return s_.designated_root == s_.bridge_id; }
  BridgePort* root_port() const {
    return s_.root_port ? br_.ports[s_.root_port - 1].get() : nullptr;
  }
  static PortState st(const BridgePort& p) { return p.get_state(); }
  bool is_designated(const BridgePort& p) const {
    return p.stp.designated_bridge == s_.bridge_id && p.stp.designated_port == p.stp.port_id;
  }

  void set_state(BridgePort& p, PortState to) {
    if (st(p) == to) return;
    spdlog::info("bridge {}: port {}({}) entered {} state", br_.dev->name, p.port_no, p.dev->name,
                 port_state_name(to));
    p.state.store(static_cast<uint8_t>(to), std::memory_order_relaxed);
    p.stp.transitions++;
  }

  // ---- BPDU transmission --------------------------------------------------------------------
  void send(BridgePort& p, const uint8_t* body, unsigned len) {
    rte_mempool* mp = sys_.pool;
    if (mp == nullptr || !p.dev->up()) return;
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    if (m == nullptr) return;
    unsigned total = RTE_ETHER_HDR_LEN + 3 + len;
    auto* b = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(total)));
    if (b == nullptr) {
      rte_pktmbuf_free(m);
      return;
    }
    static const uint8_t group[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x00};
    std::memcpy(b, group, 6);
    std::memcpy(b + 6, p.dev->mac.addr_bytes, 6);
    b[12] = static_cast<uint8_t>((len + 3) >> 8);  // 802.3 length
    b[13] = static_cast<uint8_t>(len + 3);
    b[14] = 0x42;
    b[15] = 0x42;
    b[16] = 0x03;
    std::memcpy(b + 17, body, len);
    PktMeta& md = meta(m);
    md = PktMeta{};
    md.dev = p.dev->index;
    md.orig_dev = p.dev->index;
    md.protocol = 0x0004;
    md.pkt_type = static_cast<uint8_t>(PktType::outgoing);
    if (sys_.inject(m)) br_.bpdu_tx++;
  }

  void transmit_config(BridgePort& p) {
    if (p.stp.hold.active) {
      p.stp.config_pending = true;
      return;
    }
    ConfigBpdu c;
    c.topology_change = s_.topology_change;
    c.topology_change_ack = p.stp.topology_change_ack;
    c.root_id = s_.designated_root;
    c.root_path_cost = s_.root_path_cost;
    c.bridge_id = s_.bridge_id;
    c.port_id = p.stp.port_id;
    if (is_root()) {
      c.message_age_ms = 0;
    } else if (BridgePort* rp = root_port()) {
      uint64_t remaining = rp->stp.message_age.active && rp->stp.message_age.expires_ms > now_
                               ? rp->stp.message_age.expires_ms - now_
                               : 0;
      c.message_age_ms =
          static_cast<uint32_t>(s_.max_age_ms - std::min<uint64_t>(remaining, s_.max_age_ms)) + 4;
    }
    c.max_age_ms = s_.max_age_ms;
    c.hello_ms = s_.hello_ms;
    c.forward_delay_ms = s_.forward_delay_ms;
    if (c.message_age_ms >= s_.max_age_ms) return;
    uint8_t b[35] = {};
    b[3] = kBpduConfig;
    b[4] =
        static_cast<uint8_t>((c.topology_change ? 0x01 : 0) | (c.topology_change_ack ? 0x80 : 0));
    put_id(b + 5, c.root_id);
    b[13] = static_cast<uint8_t>(c.root_path_cost >> 24);
    b[14] = static_cast<uint8_t>(c.root_path_cost >> 16);
    b[15] = static_cast<uint8_t>(c.root_path_cost >> 8);
    b[16] = static_cast<uint8_t>(c.root_path_cost);
    put_id(b + 17, c.bridge_id);
    b[25] = static_cast<uint8_t>(c.port_id >> 8);
    b[26] = static_cast<uint8_t>(c.port_id);
    put_time_ms(b + 27, c.message_age_ms);
    put_time_ms(b + 29, c.max_age_ms);
    put_time_ms(b + 31, c.hello_ms);
    put_time_ms(b + 33, c.forward_delay_ms);
    send(p, b, sizeof b);
    p.stp.bpdu_tx++;
    p.stp.topology_change_ack = false;
    p.stp.config_pending = false;
    p.stp.hold.start(now_ + kHoldMs);
  }

  void transmit_tcn() {
    BridgePort* rp = root_port();
    if (rp == nullptr) return;
    uint8_t b[4] = {0, 0, 0, kBpduTcn};
    send(*rp, b, sizeof b);
    rp->stp.tcn_tx++;
  }

  void config_bpdu_generation() {
    for (auto& p : br_.ports)
      if (st(*p) != PortState::disabled && is_designated(*p)) transmit_config(*p);
  }

  // ---- 802.1D procedures -------------------------------------------------------------------
  void become_designated_port(BridgePort& p) {
    p.stp.designated_root = s_.designated_root;
    p.stp.designated_cost = s_.root_path_cost;
    p.stp.designated_bridge = s_.bridge_id;
    p.stp.designated_port = p.stp.port_id;
  }

  bool should_become_root_port(const BridgePort& p, const BridgePort* rp) const {
    if (st(p) == PortState::disabled || is_designated(p)) return false;
    if (s_.bridge_id <= p.stp.designated_root) return false;  // the root must beat us
    if (rp == nullptr) return true;
    if (p.stp.designated_root != rp->stp.designated_root)
      return p.stp.designated_root < rp->stp.designated_root;
    uint64_t c1 = uint64_t(p.stp.designated_cost) + p.stp.path_cost;
    uint64_t c2 = uint64_t(rp->stp.designated_cost) + rp->stp.path_cost;
    if (c1 != c2) return c1 < c2;
    if (p.stp.designated_bridge != rp->stp.designated_bridge)
      return p.stp.designated_bridge < rp->stp.designated_bridge;
    if (p.stp.designated_port != rp->stp.designated_port)
      return p.stp.designated_port < rp->stp.designated_port;
    return p.stp.port_id < rp->stp.port_id;
  }

  void root_selection() {
    BridgePort* best = nullptr;
    for (auto& p : br_.ports)
      if (should_become_root_port(*p, best)) best = p.get();
    s_.root_port = best ? best->port_no : 0;
    if (best == nullptr) {
      s_.designated_root = s_.bridge_id;
      s_.root_path_cost = 0;
    } else {
      s_.designated_root = best->stp.designated_root;
      s_.root_path_cost = best->stp.designated_cost + best->stp.path_cost;
    }
  }

  bool should_become_designated_port(const BridgePort& p) const {
    if (is_designated(p)) return true;
    if (p.stp.designated_root != s_.designated_root) return true;
    if (s_.root_path_cost != p.stp.designated_cost)
      return s_.root_path_cost < p.stp.designated_cost;
    if (s_.bridge_id != p.stp.designated_bridge) return s_.bridge_id < p.stp.designated_bridge;
    return p.stp.port_id < p.stp.designated_port;
  }

  void designated_port_selection() {
    for (auto& p : br_.ports)
      if (st(*p) != PortState::disabled && should_become_designated_port(*p))
        become_designated_port(*p);
  }

  void configuration_update() {
    root_selection();
    designated_port_selection();
  }

  void topology_change_detection() {
    if (is_root()) {
      if (!s_.topology_change) s_.tc_count++;
      s_.topology_change = true;
      s_.topology_change_timer.start(now_ + s_.bridge_forward_delay_ms + s_.bridge_max_age_ms);
    } else if (!s_.topology_change_detected) {
      transmit_tcn();
      s_.tcn.start(now_ + s_.bridge_hello_ms);
    }
    s_.topology_change_detected = true;
  }

  void make_forwarding(BridgePort& p) {
    if (st(p) != PortState::blocking) return;
    set_state(p, PortState::listening);
    p.stp.forward_delay.start(now_ + s_.forward_delay_ms);
  }

  void make_blocking(BridgePort& p) {
    PortState s = st(p);
    if (s == PortState::disabled || s == PortState::blocking) return;
    if (s == PortState::forwarding || s == PortState::learning) topology_change_detection();
    set_state(p, PortState::blocking);
    p.stp.forward_delay.stop();
  }

  void port_state_selection() {
    for (auto& p : br_.ports) {
      if (st(*p) == PortState::disabled) continue;
      if (p->port_no == s_.root_port) {
        p->stp.config_pending = false;
        p->stp.topology_change_ack = false;
        make_forwarding(*p);
      } else if (is_designated(*p)) {
        p->stp.message_age.stop();
        make_forwarding(*p);
      } else {
        p->stp.config_pending = false;
        p->stp.topology_change_ack = false;
        make_blocking(*p);
      }
    }
  }

  void become_root_bridge() {
    s_.max_age_ms = s_.bridge_max_age_ms;
    s_.hello_ms = s_.bridge_hello_ms;
    s_.forward_delay_ms = s_.bridge_forward_delay_ms;
    topology_change_detection();
    s_.tcn.stop();
    config_bpdu_generation();
    s_.hello.start(now_ + s_.hello_ms);
  }

  bool supersedes(const BridgePort& p, const ConfigBpdu& b) const {
    if (b.root_id != p.stp.designated_root) return b.root_id < p.stp.designated_root;
    if (b.root_path_cost != p.stp.designated_cost) return b.root_path_cost < p.stp.designated_cost;
    if (b.bridge_id != p.stp.designated_bridge) return b.bridge_id < p.stp.designated_bridge;
    if (b.bridge_id != s_.bridge_id) return true;
    return b.port_id <= p.stp.designated_port;
  }

  void received_config(BridgePort& p, const ConfigBpdu& b) {
    bool was_root = is_root();
    if (supersedes(p, b)) {
      p.stp.designated_root = b.root_id;
      p.stp.designated_cost = b.root_path_cost;
      p.stp.designated_bridge = b.bridge_id;
      p.stp.designated_port = b.port_id;
      p.stp.message_age.start(
          now_ + (b.max_age_ms > b.message_age_ms ? b.max_age_ms - b.message_age_ms : 0));
      configuration_update();
      port_state_selection();
      if (!is_root() && was_root) {
        s_.hello.stop();
        if (s_.topology_change_detected) {
          s_.topology_change_timer.stop();
          transmit_tcn();
          s_.tcn.start(now_ + s_.bridge_hello_ms);
        }
      }
      if (p.port_no == s_.root_port) {
        s_.max_age_ms = b.max_age_ms;
        s_.hello_ms = b.hello_ms;
        s_.forward_delay_ms = b.forward_delay_ms;
        if (b.topology_change && !s_.topology_change) s_.tc_count++;
        s_.topology_change = b.topology_change;
        config_bpdu_generation();
        if (b.topology_change_ack) {
          s_.topology_change_detected = false;
          s_.tcn.stop();
        }
      }
    } else if (is_designated(p)) {
      transmit_config(p);
    }
  }

  void received_tcn(BridgePort& p) {
    if (!is_designated(p)) return;
    topology_change_detection();
    p.stp.topology_change_ack = true;
    transmit_config(p);
  }

  void init_port(BridgePort& p) {
    p.stp.port_id = static_cast<uint16_t>((p.priority << 10) | (p.port_no & 0x3ff));
    become_designated_port(p);
    set_state(p, PortState::blocking);
    p.stp.topology_change_ack = false;
    p.stp.config_pending = false;
    p.stp.message_age.stop();
    p.stp.forward_delay.stop();
    p.stp.hold.stop();
  }

  void enable_port(BridgePort& p) {
    init_port(p);
    port_state_selection();
  }

  void disable_port(BridgePort& p) {
    bool was_root = is_root();
    become_designated_port(p);
    set_state(p, PortState::disabled);
    p.stp.topology_change_ack = false;
    p.stp.config_pending = false;
    p.stp.message_age.stop();
    p.stp.forward_delay.stop();
    p.stp.hold.stop();
    uint16_t dev = p.dev->index;
    br_.fdb->del_if([&](const FdbEntry& e) { return e.is_dynamic() && e.port.load() == dev; });
    configuration_update();
    port_state_selection();
    if (is_root() && !was_root) become_root_bridge();
  }

  void start() {
    s_.bridge_id = uint64_t(s_.priority) << 48 | mac_bits(br_.dev->mac);
    s_.designated_root = s_.bridge_id;
    s_.root_path_cost = 0;
    s_.root_port = 0;
    s_.max_age_ms = s_.bridge_max_age_ms;
    s_.hello_ms = s_.bridge_hello_ms;
    s_.forward_delay_ms = s_.bridge_forward_delay_ms;
    for (auto& p : br_.ports) {
      if (p->cost_from_speed) {
        uint32_t mbps = 0;
        for (auto& pi : sys_.dp.ports)
          if (pi.dev == p->dev->index) mbps = pi.speed_mbps;
        p->stp.path_cost = cost_of_speed(mbps);
      }
      p->state.store(static_cast<uint8_t>(PortState::disabled));
    }
    for (auto& p : br_.ports)
      if (p->dev->up()) enable_port(*p);
    config_bpdu_generation();
    s_.hello.start(now_ + s_.hello_ms);
  }

  void timers() {
    for (auto& p : br_.ports) {  // carrier changes
      bool up = p->dev->up();
      if (up && st(*p) == PortState::disabled) enable_port(*p);
      if (!up && st(*p) != PortState::disabled) disable_port(*p);
    }
    if (s_.hello.expired(now_)) {
      config_bpdu_generation();
      s_.hello.start(now_ + s_.hello_ms);
    }
    if (s_.tcn.expired(now_)) {
      if (!is_root()) {
        transmit_tcn();
        s_.tcn.start(now_ + s_.bridge_hello_ms);
      }
    }
    if (s_.topology_change_timer.expired(now_)) {
      s_.topology_change_detected = false;
      s_.topology_change = false;
    }
    for (auto& p : br_.ports) {
      if (p->stp.message_age.expired(now_) && st(*p) != PortState::disabled) {
        spdlog::info("bridge {}: neighbor info on port {}({}) expired", br_.dev->name, p->port_no,
                     p->dev->name);
        bool was_root = is_root();
        become_designated_port(*p);
        configuration_update();
        port_state_selection();
        if (is_root() && !was_root) become_root_bridge();
      }
      if (p->stp.forward_delay.expired(now_)) {
        if (st(*p) == PortState::listening) {
          set_state(*p, PortState::learning);
          p->stp.forward_delay.start(now_ + s_.forward_delay_ms);
        } else if (st(*p) == PortState::learning) {
          set_state(*p, PortState::forwarding);
          bool designated_for_some = false;
          for (auto& q : br_.ports)
            if (st(*q) != PortState::disabled && q->stp.designated_bridge == s_.bridge_id)
              designated_for_some = true;  // br_is_designated_for_some_port
          if (designated_for_some) topology_change_detection();
        }
      }
      if (p->stp.hold.expired(now_) && p->stp.config_pending) transmit_config(*p);
    }
  }

 private:
  BridgeSys& sys_;
  Bridge& br_;
  decltype(Bridge::stp)& s_;
  uint64_t now_;
};

}  // namespace

void BridgeSys::stp_init(Bridge& br) {
  br.stp.bridge_id = uint64_t(br.stp.priority) << 48 | mac_bits(br.dev->mac);
  br.stp.designated_root = br.stp.bridge_id;
  for (auto& p : br.ports) {
    p->state.store(static_cast<uint8_t>(PortState::disabled));  // until the first timer tick
    p->stp.port_id = static_cast<uint16_t>((p->priority << 10) | (p->port_no & 0x3ff));
  }
}

void BridgeSys::stp_timers(Bridge& br, uint64_t now) {
  Stp s(*this, br, now);
  if (!br.stp.started) {
    br.stp.started = true;
    s.start();
    return;
  }
  s.timers();
}

void BridgeSys::stp_rcv(Bridge& br, BridgePort& p, const uint8_t* b, unsigned len, uint64_t now) {
  if (!br.stp.started || p.get_state() == PortState::disabled) return;
  if (len < 4 || b[0] != 0 || b[1] != 0 || b[2] != 0) return;  // protocol 0, version 0 (STP)
  Stp s(*this, br, now);
  if (b[3] == kBpduTcn) {
    p.stp.tcn_rx++;
    s.received_tcn(p);
    return;
  }
  if (b[3] != kBpduConfig || len < 35) return;
  p.stp.bpdu_rx++;
  ConfigBpdu c;
  c.topology_change = b[4] & 0x01;
  c.topology_change_ack = b[4] & 0x80;
  c.root_id = get_id(b + 5);
  c.root_path_cost = uint32_t(b[13]) << 24 | uint32_t(b[14]) << 16 | uint32_t(b[15]) << 8 | b[16];
  c.bridge_id = get_id(b + 17);
  c.port_id = static_cast<uint16_t>(b[25] << 8 | b[26]);
  c.message_age_ms = get_time_ms(b + 27);
  c.max_age_ms = get_time_ms(b + 29);
  c.hello_ms = get_time_ms(b + 31);
  c.forward_delay_ms = get_time_ms(b + 33);
  if (c.message_age_ms > c.max_age_ms) return;  // "received packet with message age > max age"
  s.received_config(p, c);
}

void BridgeSys::stp_port_link(Bridge&, BridgePort&, bool, uint64_t) {}  // carrier: see timers()

}  // namespace sluice::bridge
