// The bridge feature's control side: building bridges from the topology
// (br_add_bridge / br_add_if), the worker rings, draining learn requests into
// the FDB (the only rte_hash writer is the control thread), ageing
// (br_fdb_cleanup), and the inject path that lets the control thread send
// frames (BPDUs) without touching a worker's TX queue.
#include <algorithm>
#include <cstring>
#include <atomic>
#include <stdexcept>

#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "bridge/bridge.hh"
#include "bridge/config.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"

namespace sluice::bridge {

namespace {
std::atomic<unsigned> g_ring_serial{0};

rte_ring* make_ring(const char* what, unsigned worker, unsigned count, unsigned esize) {
  std::string name = std::string("br") + what + std::to_string(g_ring_serial.fetch_add(1)) + "_" +
                     std::to_string(worker);
  rte_ring* r = esize == 0 ? rte_ring_create(name.c_str(), count, SOCKET_ID_ANY,
                                             RING_F_SP_ENQ | RING_F_SC_DEQ)
                           : rte_ring_create_elem(name.c_str(), esize, count, SOCKET_ID_ANY,
                                                  RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (r == nullptr) throw std::runtime_error("bridge: cannot create ring " + name);
  return r;
}

void free_ring_mbufs(rte_ring* r) {
  if (r == nullptr) return;
  void* m;
  while (rte_ring_sc_dequeue(r, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
}

}  // namespace

const char* port_state_name(PortState s) {
  static const char* const names[] = {"disabled", "listening", "learning", "forwarding",
                                      "blocking"};
  return enum_name(s, names);
}

bool parse_port_state(const std::string& s, PortState* out) {
  for (auto st : {PortState::disabled, PortState::listening, PortState::learning,
                  PortState::forwarding, PortState::blocking})
    if (s == port_state_name(st)) {
      *out = st;
      return true;
    }
  return false;
}

uint64_t Bridge::hold_ms() const {
  return stp.topology_change ? stp.forward_delay_ms : ageing_ms;
}

BridgeSys::BridgeSys(Dataplane& d) : dp(d), hooks(hooks::registry(d)) {}

BridgeSys::~BridgeSys() {
  for (auto& ws : workers) {
    free_ring_mbufs(ws->to_ctl);
    rte_ring_free(ws->learn);
    rte_ring_free(ws->to_ctl);
  }
  // Ports stop calling into us before the bridges go.
  for (auto& br : bridges)
    for (auto& p : br->ports)
      if (p->dev->rx_handler_ctx.load() == p.get()) dp.net.clear_rx_handler(*p->dev);
}

Bridge* BridgeSys::by_idx(uint16_t idx) const {
  if (idx < bridges.size() && bridges[idx]->idx == idx) return bridges[idx].get();
  for (auto& b : bridges)
    if (b->idx == idx) return b.get();
  return nullptr;
}

Bridge* BridgeSys::find(const std::string& name) const {
  for (auto& b : bridges)
    if (b->dev->name == name) return b.get();
  return nullptr;
}

void BridgeSys::init_workers() {
  while (workers.size() < dp.workers.size()) {
    unsigned id = static_cast<unsigned>(workers.size());
    auto ws = std::make_unique<WorkerState>();
    ws->learn = make_ring("l", id, 4096, sizeof(LearnEvent));
    ws->to_ctl = make_ring("c", id, 512, 0);
    workers.push_back(std::move(ws));
  }
}

bool BridgeSys::inject(rte_mbuf* m) {
  // Worker::inject (core): a worker sends it with dev_queue_xmit(meta.dev)
  // on its own TX queues; the control thread never touches one.
  const size_t nw = dp.workers.size();
  for (size_t tries = 0; tries < nw; tries++) {
    Worker& w = *dp.workers[inject_rr_++ % nw];
    if (w.inject != nullptr && rte_ring_sp_enqueue(w.inject, m) == 0) return true;
  }
  rte_pktmbuf_free(m);
  return false;
}

void BridgeSys::poll_inject(Worker& w) {
  inject_xmit(w);
}

void BridgeSys::drain_learn(uint64_t now) {
  LearnEvent ev[64];
  for (auto& ws : workers) {
    for (;;) {
      unsigned n = rte_ring_sc_dequeue_burst_elem(ws->learn, ev, sizeof(LearnEvent), 64, nullptr);
      for (unsigned i = 0; i < n; i++) {
        // Bridge numbers are never reused: a request queued for a bridge a
        // reload removed, or for a port that left, names nothing now.
        Bridge* b = by_idx(ev[i].bridge);
        if (b == nullptr || b->port_of(ev[i].port) == nullptr) continue;
        Bridge& br = *b;
        switch (br.fdb->add(ev[i].mac, ev[i].vid, ev[i].port, 0, now)) {
          case Fdb::Result::added:
            br.learned++;
            break;
          case Fdb::Result::full:
            br.fdb_full++;
            break;
          default:
            break;
        }
      }
      if (n < 64) break;
    }
  }
}

void BridgeSys::drain_to_ctl(uint64_t now) {
  for (auto& ws : workers) {
    void* objs[32];
    unsigned n;
    while ((n = rte_ring_sc_dequeue_burst(ws->to_ctl, objs, 32, nullptr)) != 0) {
      for (unsigned i = 0; i < n; i++) {
        auto* m = static_cast<rte_mbuf*>(objs[i]);
        uint16_t dev = meta(m).dev;
        for (auto& br : bridges) {
          BridgePort* p = br->port_of(dev);
          if (p == nullptr) continue;
          if (rte_pktmbuf_is_contiguous(m) && m->data_len > RTE_ETHER_HDR_LEN + 3)
            stp_rcv(*br, *p, rte_pktmbuf_mtod_offset(m, const uint8_t*, RTE_ETHER_HDR_LEN + 3),
                    m->data_len - RTE_ETHER_HDR_LEN - 3, now);
          break;
        }
        rte_pktmbuf_free(m);
      }
    }
  }
}

uint64_t BridgeSys::gc(Bridge& br, uint64_t now) {
  const uint64_t hold = br.hold_ms();
  unsigned n = br.fdb->del_if([&](const FdbEntry& e) {
    return e.is_dynamic() && e.updated_ms.load(std::memory_order_relaxed) + hold <= now;
  });
  br.aged += n;
  br.next_gc_ms = now + std::clamp<uint64_t>(hold / 4, 100, 1000);
  return n;
}

// br_port_carrier_check with STP off: no carrier → DISABLED (and its learned
// entries go, br_fdb_delete_by_port); carrier back → FORWARDING at once.
void BridgeSys::carrier_check(Bridge& br) {
  for (auto& p : br.ports) {
    const bool up = p->dev->up();
    const PortState st = p->get_state();
    if (!up && st != PortState::disabled) {
      p->state.store(static_cast<uint8_t>(PortState::disabled), std::memory_order_relaxed);
      const uint16_t dev = p->dev->index;
      br.fdb->del_if([&](const FdbEntry& e) { return e.is_dynamic() && e.port.load() == dev; });
      spdlog::info("bridge {}: port {}({}) entered disabled state", br.dev->name, p->port_no,
                   p->dev->name);
    } else if (up && st == PortState::disabled && p->admin_state != PortState::disabled) {
      p->state.store(static_cast<uint8_t>(p->admin_state), std::memory_order_relaxed);
      spdlog::info("bridge {}: port {}({}) entered {} state", br.dev->name, p->port_no,
                   p->dev->name, port_state_name(p->admin_state));
    }
  }
}

void BridgeSys::run(uint64_t now) {
  now_ms.store(now, std::memory_order_relaxed);
  drain_learn(now);
  drain_to_ctl(now);
  for (auto& br : bridges) {
    if (br->stp_enabled)
      stp_timers(*br, now);  // carrier changes included
    else
      carrier_check(*br);
    if (now >= br->next_gc_ms) gc(*br, now);
  }
}

std::string BridgeSys::fdb_add(Bridge& br, const rte_ether_addr& mac, BridgePort& p, uint16_t vid,
                               bool is_static) {
  if (rte_is_multicast_ether_addr(&mac) || rte_is_zero_ether_addr(&mac))
    return "MAC " + mac_to_string(mac) + " is not a unicast address";
  if (vid > 4094) return "vlan must be 0..4094";
  switch (br.fdb->add(mac, vid, p.dev->index, is_static ? kFdbStatic : 0,
                      now_ms.load(std::memory_order_relaxed))) {
    case Fdb::Result::added:
      return "";
    case Fdb::Result::updated:
      return "";
    case Fdb::Result::unchanged:
      return "";
    case Fdb::Result::full:
      return "FDB of " + br.dev->name + " is full";
    case Fdb::Result::is_local:
      return mac_to_string(mac) + " is a local address of the bridge";
    case Fdb::Result::error:
      break;
  }
  return "cannot add the entry";
}

namespace {
// BrCounters is a row of uint64_t: add or subtract field by field.
constexpr size_t kBrFields = sizeof(BrCounters) / sizeof(uint64_t);
static_assert(sizeof(BrCounters) == kBrFields * sizeof(uint64_t));
void br_add(BrCounters& to, const BrCounters& c, bool subtract = false) {
  uint64_t a[kBrFields], b[kBrFields];
  std::memcpy(a, &to, sizeof to);
  std::memcpy(b, &c, sizeof c);
  for (size_t i = 0; i < kBrFields; i++) a[i] = subtract ? a[i] - b[i] : a[i] + b[i];
  std::memcpy(&to, a, sizeof to);
}
}  // namespace

BrCounters BridgeSys::raw_counters(const Bridge& br) const {
  BrCounters s{};
  for (auto& ws : workers)
    if (br.idx < ws->ctr.size()) br_add(s, ws->ctr[br.idx]);
  return s;
}

BrCounters BridgeSys::counters(const Bridge& br) const {
  BrCounters s = raw_counters(br);
  if (br.idx < base_.size()) br_add(s, base_[br.idx], true);
  return s;
}

void BridgeSys::clear_stats() {
  base_.resize(next_idx);
  for (auto& b : bridges) base_[b->idx] = raw_counters(*b);
}

// ---- setup -----------------------------------------------------------------------------------

namespace {

VlanSet default_vlans(unsigned pvid) {
  VlanSet v;
  if (pvid != 0) {
    v.member.set(pvid);
    v.untagged.set(pvid);
    v.pvid = static_cast<uint16_t>(pvid);
  }
  return v;
}

}  // namespace

// br_manage_promisc: a bridge port receives every frame, so the port (and,
// for a VLAN sub-device, the port beneath it) goes promiscuous.
void make_promiscuous(Dataplane& dp, Device& d) {
  for (Device* cur = &d; cur != nullptr;
       cur = cur->kind == DevKind::vlan ? dp.net.dev(cur->link) : nullptr) {
    if (cur->promiscuous) continue;
    cur->promiscuous = true;  // before the workers start: a plain field
    if (cur->kind == DevKind::port && rte_eth_dev_is_valid_port(cur->port_id)) {
      int rc = rte_eth_promiscuous_enable(cur->port_id);
      if (rc != 0 && rc != -ENOTSUP)
        spdlog::warn("bridge: port {}: promiscuous on: {}", cur->name, rte_strerror(-rc));
    }
    spdlog::info("bridge: {} entered promiscuous mode", cur->name);
  }
}

namespace {

// One port of br as br_add_if makes it: flags, VLANs, STP settings of the
// port's `port_settings` entry.
template <class Fail>
std::unique_ptr<BridgePort> make_port(Bridge& br, Device& dev, const config::Bridge& cfg,
                                      uint16_t port_no, const Fail& fail) {
  auto p = std::make_unique<BridgePort>();
  p->br = &br;
  p->dev = &dev;
  p->port_no = port_no;
  const config::BridgePortSettings* ps = nullptr;
  for (auto& s : cfg.port_settings)
    if (s.port == dev.name) ps = &s;
  uint32_t flags = kPortLearning | kPortFlood | kPortMcastFlood | kPortBcastFlood;
  if (cfg.vlan_filtering) p->vlans = default_vlans(cfg.default_pvid);
  if (ps != nullptr) {
    auto flag = [&](bool on, uint32_t f) { flags = on ? flags | f : flags & ~f; };
    flag(ps->learning, kPortLearning);
    flag(ps->flood, kPortFlood);
    flag(ps->mcast_flood, kPortMcastFlood);
    flag(ps->bcast_flood, kPortBcastFlood);
    flag(ps->hairpin, kPortHairpin);
    p->group_fwd_mask = static_cast<uint16_t>(ps->group_fwd_mask);
    p->priority = static_cast<uint8_t>(ps->priority);
    if (ps->path_cost != 0) {
      p->stp.path_cost = ps->path_cost;
      p->cost_from_speed = false;
    }
    if (cfg.vlan_filtering && (ps->pvid || !ps->vlans.empty())) {
      VlanSet v;
      for (unsigned vid : ps->vlans) v.member.set(vid);
      for (unsigned vid : ps->untagged) v.untagged.set(vid);
      if (ps->pvid && *ps->pvid != 0) {
        v.pvid = static_cast<uint16_t>(*ps->pvid);
        v.member.set(*ps->pvid);
      }
      p->vlans = v;
    }
    if (ps->state) {
      PortState st;
      if (!parse_port_state(*ps->state, &st)) fail("bad state '" + *ps->state + "'");
      p->state.store(static_cast<uint8_t>(st));
      p->admin_state = st;
    }
  }
  p->flags.store(flags);
  return p;
}

}  // namespace

std::unique_ptr<BridgePort> new_port(Bridge& br, Device& dev, const config::Bridge& cfg,
                                     uint16_t port_no) {
  return make_port(br, dev, cfg, port_no, [&](const std::string& m) {
    throw std::runtime_error("bridge '" + cfg.name + "': " + m);
  });
}

Bridge* build_bridge(Dataplane& dp, BridgeSys& sys, const config::Bridge& cfg) {
  auto fail = [&](const std::string& msg) {
    throw std::runtime_error("bridge '" + cfg.name + "': " + msg);
  };
  if (cfg.ports.size() > kMaxBridgePorts) fail("more than 1023 ports");
  std::vector<Device*> devs;
  for (auto& name : cfg.ports) {
    Device* d = dp.net.find(name);
    if (d == nullptr) fail("no device '" + name + "'");
    // br_add_if refusals.
    if (d->kind == DevKind::bridge) fail("'" + name + "' is a bridge (ELOOP)");
    if (d->master.load() != kNoDev) fail("'" + name + "' already has a master (EBUSY)");
    if (d->rx_handler.load() != nullptr) fail("'" + name + "' already has an rx_handler (EBUSY)");
    if (rte_is_zero_ether_addr(&d->mac) || rte_is_multicast_ether_addr(&d->mac))
      fail("'" + name + "' has no valid MAC");
    devs.push_back(d);
  }

  auto br = std::make_unique<Bridge>();
  br->idx = sys.next_idx++;  // never reused (see drain_learn)
  br->sys = &sys;
  br->stp_enabled = cfg.stp;
  br->vlan_filtering = cfg.vlan_filtering;
  br->group_fwd_mask = static_cast<uint16_t>(cfg.group_fwd_mask);
  br->ageing_ms = uint64_t(cfg.ageing_s) * 1000;
  br->by_dev.assign(kMaxDevices, nullptr);
  if (cfg.vlan_filtering) br->vlans = default_vlans(cfg.default_pvid);

  auto d = std::make_unique<Device>();
  d->name = cfg.name;
  d->kind = DevKind::bridge;
  if (cfg.mac) {
    rte_ether_unformat_addr(cfg.mac->c_str(), &d->mac);
  } else {  // br_stp_recalculate_bridge_id: the lowest port address
    bool first = true;
    for (Device* pd : devs)
      if (first || memcmp(pd->mac.addr_bytes, d->mac.addr_bytes, 6) < 0) {
        d->mac = pd->mac;
        first = false;
      }
  }
  d->mtu = 1500;
  if (!devs.empty()) {
    d->mtu = devs[0]->mtu;
    for (Device* pd : devs) d->mtu = std::min(d->mtu, pd->mtu);
  }
  d->promiscuous = false;
  d->xmit = br_dev_xmit;
  d->xmit_ctx = br.get();
  Device* bdev = dp.net.add_device(std::move(d));
  if (bdev == nullptr) fail("a device with that name exists");
  br->dev = bdev;
  br->fdb = std::make_unique<Fdb>(cfg.name, std::max(1u, cfg.max_fdb_entries), dp.rcu.qsbr());
  br->stp.priority = static_cast<uint16_t>(cfg.priority);
  br->stp.bridge_hello_ms = cfg.hello_s * 1000;
  br->stp.bridge_max_age_ms = cfg.max_age_s * 1000;
  br->stp.bridge_forward_delay_ms = cfg.forward_delay_s * 1000;

  for (size_t i = 0; i < devs.size(); i++) {
    auto p = make_port(*br, *devs[i], cfg, static_cast<uint16_t>(i + 1), fail);
    br->by_dev[devs[i]->index] = p.get();
    br->ports.push_back(std::move(p));
  }
  for (auto it = br->ports.rbegin(); it != br->ports.rend(); ++it) {
    (*it)->position = static_cast<uint16_t>(br->flood_order.size());
    br->flood_order.push_back(it->get());
  }

  // Local entries: the bridge's MAC and every port's (permanent, never forwarded to).
  br->fdb->add(bdev->mac, 0, bdev->index, kFdbLocal, 0);
  for (auto& p : br->ports) br->fdb->add(p->dev->mac, 0, p->dev->index, kFdbLocal, 0);
  for (auto& s : cfg.fdb_static) {
    rte_ether_addr mac;
    rte_ether_unformat_addr(s.mac.c_str(), &mac);
    BridgePort* p = nullptr;
    for (auto& q : br->ports)
      if (q->dev->name == s.port) p = q.get();
    if (p == nullptr) fail("fdb_static: '" + s.port + "' is not a port of the bridge");
    std::string err = sys.fdb_add(*br, mac, *p, static_cast<uint16_t>(s.vlan), true);
    if (!err.empty()) fail("fdb_static: " + err);
  }

  Bridge* b = br.get();
  sys.bridges.push_back(std::move(br));
  if (b->stp_enabled) sys.stp_init(*b);
  for (auto& p : b->ports) {
    p->dev->master.store(bdev->index);
    make_promiscuous(dp, *p->dev);
    if (!dp.net.set_rx_handler(*p->dev, br_handle_frame, p.get(), "bridge"))
      fail("cannot register the rx_handler on '" + p->dev->name + "'");
    if (b->stp_enabled)
      p->stp_ptype = dp.net.add_ptype(0x0004, p->dev, br_stp_rcv, p.get(), "br_stp_rcv");
  }
  spdlog::info("bridge {}: mac {} ports {} stp {} vlan_filtering {} ageing {} s", cfg.name,
               mac_to_string(bdev->mac), cfg.ports.size(), cfg.stp ? "on" : "off",
               cfg.vlan_filtering ? "on" : "off", cfg.ageing_s);
  return b;
}

void BridgeSys::size_workers() {
  size_t max_ports = 0;
  for (auto& b : bridges) max_ports = std::max(max_ports, b->ports.size());
  for (auto& ws : workers) {
    if (ws->egress.size() < max_ports) {
      const size_t old = ws->egress.size();
      ws->egress.resize(max_ports);
      for (size_t i = old; i < max_ports; i++) ws->egress[i].n = 0;
    }
    ws->touched.reserve(max_ports);
    if (ws->ctr.size() < next_idx) ws->ctr.resize(next_idx, BrCounters{});  // kept: by idx
    if (ws->src_seen.empty()) ws->src_seen.assign(4096, WorkerState::SrcSeen{});
  }
}

void BridgeSys::start(Dataplane& dp) {
  if (started_) return;
  started_ = true;
  init_workers();
  if (pool == nullptr && !dp.pools.empty()) pool = dp.pools.begin()->second;
  BridgeSys* s = this;
  dp.add_timer(10, [s](uint64_t now) { s->run(now); });
  dp.add_clear_stats([s]() { s->clear_stats(); });
  set_okfns(hooks);
  for (auto& w : dp.workers) w->enable_inject();  // BPDUs leave through the workers
  dp.add_shutdown([s]() {
    for (auto& ws : s->workers) free_ring_mbufs(ws->to_ctl);
  });
}

void setup(Dataplane& dp) {
  const Config& cfgs = dp.topo.get<Config>();
  if (cfgs.bridges.empty()) return;
  BridgeSys& sys = dp.feature<BridgeSys>();
  sys.init_workers();
  if (sys.pool == nullptr && !dp.pools.empty()) sys.pool = dp.pools.begin()->second;
  for (auto& cfg : cfgs.bridges) build_bridge(dp, sys, cfg);
  sys.size_workers();
  sys.start(dp);
}

}  // namespace sluice::bridge
