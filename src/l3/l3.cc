// L3 on the control thread: construction of the parts, publication of the
// tables (commit), the control-thread tick, setup from the topology.
// Routes and addresses: route.cc; the tables themselves: fib.cc, addr.cc,
// neigh.cc.
#include "l3/l3.hh"
#include "l3/config.hh"

#include <cstdio>
#include <cstring>
#include <stdexcept>

#include <rte_cycles.h>
#include <rte_errno.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "hooks/hooks.hh"

namespace sluice::l3 {

namespace {
std::atomic<unsigned> g_instance{0};

// The per-device vectors of a snapshot, empty.
void size_per_device(Snapshot& s) {
  s.dev_addr.assign(kMaxDevices, 0);
  s.punt.assign(kMaxDevices, kNoDev);
  s.dev_addr6.assign(kMaxDevices, Addr6{});
}

std::unique_ptr<WorkerL3> make_worker_state(unsigned inst, unsigned id) {
  auto ws = std::make_unique<WorkerL3>();
  ws->mib.reset(new MibBlock[kMaxDevices]());
  char rn[RTE_RING_NAMESIZE];
  std::snprintf(rn, sizeof rn, "l3p%u_%u", inst, id);
  ws->pending = rte_ring_create(rn, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
  std::snprintf(rn, sizeof rn, "l3e%u_%u", inst, id);
  ws->events = rte_ring_create_elem(rn, sizeof(NeighEvent), 1024, SOCKET_ID_ANY,
                                    RING_F_SP_ENQ | RING_F_SC_DEQ);
  std::snprintf(rn, sizeof rn, "l3e6%u_%u", inst, id);
  ws->events6 = rte_ring_create_elem(rn, sizeof(NeighEvent6), 1024, SOCKET_ID_ANY,
                                     RING_F_SP_ENQ | RING_F_SC_DEQ);
  if (ws->pending == nullptr || ws->events == nullptr || ws->events6 == nullptr)
    throw std::runtime_error(std::string("l3: cannot create rings: ") + rte_strerror(rte_errno));
  return ws;
}
}  // namespace

// ---- construction -----------------------------------------------------------------------

L3::L3(Dataplane& d) : dp(d), hooks(&hooks::registry(d)), neigh(*this), params(neigh.params) {
  if (int e = fib4.create(); e != 0)
    throw std::runtime_error(std::string("l3: cannot create the FIB: ") + rte_strerror(e) +
                             " (raise eal.memory_mb: the FIB needs 2 x 32 MB)");
  if (int e = neigh.init(); e != 0)
    throw std::runtime_error(std::string("l3: cannot create the neighbour table: ") +
                             rte_strerror(e));
  unsigned inst = g_instance.fetch_add(1);
  for (auto& w : dp.workers) {
    workers_.push_back(make_worker_state(inst, w->id));
    mib.add_worker(workers_.back()->mib.get());
    w->enable_inject();
    if (w->inject == nullptr) throw std::runtime_error("l3: cannot create a worker inject ring");
  }
  // An empty published table, so that readers never see nullptr.
  auto* s = new Snapshot();
  s->fib = fib4.current();
  s->nh = fib4.hops();
  size_per_device(*s);
  snap_.store(s, std::memory_order_release);
}

L3::~L3() {
  for (uint32_t id : ptype_ids_) dp.net.remove_ptype(id);
  shutdown();
  for (auto& ws : workers_) {
    rte_ring_free(ws->pending);
    rte_ring_free(ws->events);
    rte_ring_free(ws->events6);
  }
  delete snap_.exchange(nullptr);
}

void L3::shutdown() {
  for (auto& ws : workers_) {
    void* m;
    while (rte_ring_dequeue(ws->pending, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
    NeighEvent ev;
    while (rte_ring_dequeue_elem(ws->events, &ev, sizeof ev) == 0) {
    }
    NeighEvent6 ev6;
    while (rte_ring_dequeue_elem(ws->events6, &ev6, sizeof ev6) == 0) {
    }
  }
  for (auto& w : dp.workers) {
    if (w->inject == nullptr) continue;
    void* m;
    while (rte_ring_dequeue(w->inject, &m) == 0) rte_pktmbuf_free(static_cast<rte_mbuf*>(m));
  }
  neigh.drop_queues();
}

rte_mempool* L3::ctl_pool() const {
  return dp.pool_for_socket(0);
}

uint64_t L3::now_ms() const {
  uint64_t f = fake_now_ms.load(std::memory_order_relaxed);
  if (f != 0) return f;
  static const uint64_t hz = rte_get_tsc_hz() / 1000;
  return rte_get_tsc_cycles() / hz;
}

// ---- publication ----------------------------------------------------------------------------

// What the next snapshot holds besides the FIB buffers: next hops, local
// tables, device addresses, punt TAPs.
Snapshot* L3::make_snapshot() const {
  auto* s = new Snapshot();
  size_per_device(*s);
  s->nh = fib4.hops();
  for (auto [d, tap] : punt_) s->punt[d] = tap;
  s->nh6 = fib6.hops();
  if (fib6.on()) addrs.fill_local6(*s, dp.net);
  addrs.fill_local(*s);
  return s;
}

void L3::commit() {
  if (!dirty_ && !fib4.pending() && !fib6.pending()) return;
  Snapshot* s = make_snapshot();
  s->fib = fib4.prepare();
  s->fib6 = fib6.prepare();
  dp.rcu.publish(snap_, static_cast<const Snapshot*>(s));  // waits out the readers of the old one
  fib4.complete();
  fib6.complete();
  dirty_ = false;
}

// ---- the control tick ---------------------------------------------------------------------

void L3::run(uint64_t now) {
  for (auto& ws : workers_) {
    NeighEvent evs[32];
    unsigned n;
    while ((n = rte_ring_dequeue_burst_elem(ws->events, evs, sizeof(NeighEvent), 32, nullptr)) != 0)
      for (unsigned i = 0; i < n; i++) neigh.event(evs[i], now);
    NeighEvent6 ev6[16];
    while ((n = rte_ring_dequeue_burst_elem(ws->events6, ev6, sizeof(NeighEvent6), 16, nullptr)) !=
           0)
      for (unsigned i = 0; i < n; i++) neigh.event6(ev6[i], now);
    rte_mbuf* ms[32];
    while ((n = rte_ring_dequeue_burst(ws->pending, reinterpret_cast<void**>(ms), 32, nullptr)) !=
           0)
      for (unsigned i = 0; i < n; i++) neigh.resolve(ms[i], now);
  }
  neigh.timers(now);
}

void L3::inject(rte_mbuf* m, unsigned worker) {
  if (worker >= dp.workers.size()) worker = 0;
  Worker* w = dp.workers.empty() ? nullptr : dp.workers[worker].get();
  if (w == nullptr || w->inject == nullptr || rte_ring_enqueue(w->inject, m) != 0)
    rte_pktmbuf_free(m);
}

void L3::set_punt(uint16_t dev, uint16_t tap) {
  for (auto& p : punt_)
    if (p.first == dev) {
      p.second = tap;
      dirty_ = true;
      return;
    }
  punt_.emplace_back(dev, tap);
  dirty_ = true;
}

void L3::build_fib6(uint32_t tbl8) {
  if (!addrs.any_v6()) return;
  if (int e = fib6.create(tbl8); e != 0) {
    spdlog::error("l3: cannot create the IPv6 FIB ({}); IPv6 stays off (raise eal.memory_mb)",
                  rte_strerror(e));
    return;
  }
  neigh.init6();
  dirty_ = true;
  for (const Address& a : addrs.all()) {  // connected prefixes (addrconf_prefix_route)
    if (!a.v6) continue;
    Route6 r;
    std::memcpy(r.prefix.data(), a.v6addr, 16);
    for (int b = a.len; b < 128; b++) r.prefix[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
    r.len = a.len;
    r.dev = a.dev;
    r.origin = RouteOrigin::connected;
    if (!fib6.routes().count({r.prefix, r.len})) fib6.insert(r);
  }
}

void L3::start() {
  if (started_) return;
  started_ = true;
  ptype_ids_.push_back(dp.net.add_ptype(kEthPIp, nullptr, ip_rcv, this, "ip_rcv"));
  ptype_ids_.push_back(dp.net.add_ptype(kEthPArp, nullptr, arp_rcv, this, "arp_rcv"));
  if (fib6.on())
    ptype_ids_.push_back(dp.net.add_ptype(kEthPIpv6, nullptr, ipv6_rcv, this, "ipv6_rcv"));
  ipv4_set_okfns(*this);
  arp_set_okfns(*this);
  if (fib6.on()) ipv6_set_okfns(*this);
}

// ---- setup ----------------------------------------------------------------------------------

void setup(Dataplane& dp) {
  const Config& t = dp.topo.get<Config>();
  if (t.addresses.empty() && t.routes.empty() && t.neighbours.empty() && t.punt.empty()) return;
  add_punt_ports(dp);  // punt TAPs are ports too (src/l3/punt.cc)
  L3& l3 = dp.feature<L3>();
  auto where = [&](const config::Mark& m) { return config::where(dp.topo.file, m); };
  for (const auto& a : t.addresses) {
    Device* d = dp.net.find(a.dev);
    if (d == nullptr)
      throw std::runtime_error(where(a.mark) + "address on unknown device '" + a.dev + "'");
    if (std::string e = l3.add_address(*d, a.address); !e.empty())
      throw std::runtime_error(where(a.mark) + e);
  }
  // lo's own, as Linux gives it: 127.0.0.1/8 and, with IPv6 on, ::1/128.
  if (Device* lo = dp.net.find("lo"); lo != nullptr && lo->kind == DevKind::loopback) {
    const bool v6 = l3.addrs.any_v6();
    if (std::string e = l3.add_address(*lo, "127.0.0.1/8"); !e.empty())
      spdlog::warn("l3: lo: 127.0.0.1/8: {}", e);  // the topology gave it already
    if (v6)
      if (std::string e = l3.add_address(*lo, "::1/128"); !e.empty())
        spdlog::warn("l3: lo: ::1: {}", e);
  }
  // The IPv6 trie's groups, sized for the topology's routes: each address's
  // local /128 and connected prefix, and every IPv6 route.
  uint32_t tbl8 = 0;
  for (const auto& a : t.addresses)
    if (a.address.find(':') != std::string::npos) tbl8 += Af6::tbl8_cost(128) + Af6::tbl8_cost(64);
  for (const auto& r : t.routes)
    if (size_t slash = r.prefix.find('/'); r.prefix.find(':') != std::string::npos)
      tbl8 += Af6::tbl8_cost(static_cast<uint8_t>(
          slash == std::string::npos ? 128
                                     : std::strtoul(r.prefix.c_str() + slash + 1, nullptr, 10)));
  l3.build_fib6(tbl8);
  for (const auto& r : t.routes) {
    if (std::string e = l3.add_route(r.prefix, r.via, r.dev); !e.empty())
      throw std::runtime_error(where(r.mark) + e);
  }
  l3.commit();
  for (const auto& n : t.neighbours) {
    Device* d = dp.net.find(n.dev);
    if (d == nullptr)
      throw std::runtime_error(where(n.mark) + "neighbour on unknown device '" + n.dev + "'");
    if (std::string e = l3.add_static_neigh(*d, n.address, n.mac); !e.empty())
      throw std::runtime_error(where(n.mark) + e);
  }
  for (const auto& p : t.punt) {
    Device* d = dp.net.find(p.dev);
    Device* tap = dp.net.find(p.tap);
    if (d != nullptr && tap != nullptr && tap->kind == DevKind::punt)
      l3.set_punt(d->index, tap->index);
  }
  l3.commit();
  l3.start();
  L3* p = &l3;
  dp.add_timer(10, [p](uint64_t now) { p->run(now); });
  dp.add_shutdown([p]() { p->shutdown(); });
  dp.add_clear_stats([p]() { p->mib.clear(); });
  dp.add_unregister([p](Device& d) {
    p->forget_device(d.index);
    p->commit();
  });
  spdlog::info("l3: {} address(es), {} route(s), {} static neighbour(s)", l3.addresses().size(),
               l3.fib4.routes().size(), t.neighbours.size());
}

}  // namespace sluice::l3
