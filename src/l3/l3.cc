// L3 control plane: addresses, the local and main tables, the double-buffered
// FIB, setup from the topology, the control-thread tick.
//
// The FIB: two rte_fib (DIR24_8, 2-byte next hops) hold the same routes.
// Workers read the one named by the published Snapshot. A change is applied
// to the other buffer, a new Snapshot naming it is published, and after the
// RCU grace period (no worker can still be reading the old buffer) the same
// change is applied to the old one. DPDK 22.11's rte_fib has no RCU hook of
// its own, and this way no reader ever sees a half-updated table.
#include "l3/l3.hh"
#include "l3/config.hh"
#include "hooks/hooks.hh"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include <rte_errno.h>
#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_hash.h>
#include <rte_jhash.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "core/format.hh"

namespace sluice::l3 {

namespace {
std::atomic<unsigned> g_instance{0};
constexpr uint32_t kMaxNeigh = 16384;
constexpr uint32_t kMaxNextHops = 32767;  // 2-byte DIR24_8 next hops
}  // namespace

const char* mib_name(Mib m) {
  static const char* const names[] = {
#define SLUICE_MIB_NAME(n) #n,
      SLUICE_IP_MIB(SLUICE_MIB_NAME)
#undef SLUICE_MIB_NAME
  };
  auto i = static_cast<unsigned>(m);
  return i < kNumMib ? names[i] : "?";
}

const char* rt_type_name(RtType t) {
  switch (t) {
    case RtType::unicast:
      return "unicast";
    case RtType::local:
      return "local";
    case RtType::broadcast:
      return "broadcast";
    default:
      return "none";
  }
}

const char* nud_name(uint8_t s) {
  switch (s) {
    case kNudNone:
      return "none";
    case kNudIncomplete:
      return "incomplete";
    case kNudReachable:
      return "reachable";
    case kNudStale:
      return "stale";
    case kNudDelay:
      return "delay";
    case kNudProbe:
      return "probe";
    case kNudFailed:
      return "failed";
    case kNudNoarp:
      return "noarp";
    case kNudPermanent:
      return "permanent";
  }
  return "?";
}

bool parse_ipv4(const std::string& s, uint32_t* out) {
  in_addr a;
  if (s.empty() || inet_pton(AF_INET, s.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

bool parse_cidr4(const std::string& s, uint32_t* addr, uint8_t* len) {
  size_t slash = s.find('/');
  if (slash == std::string::npos) return false;
  if (!parse_ipv4(s.substr(0, slash), addr)) return false;
  std::string l = s.substr(slash + 1);
  if (l.empty() || l.size() > 2) return false;
  for (char c : l)
    if (c < '0' || c > '9') return false;
  int v = std::stoi(l);
  if (v > 32) return false;
  *len = static_cast<uint8_t>(v);
  return true;
}

std::string ipv4_str(uint32_t a) {
  char b[16];
  std::snprintf(b, sizeof b, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
  return b;
}

std::string mac_str(const rte_ether_addr& a) {
  return mac_to_string(a);
}

// ---- construction -----------------------------------------------------------------------

L3::L3(Dataplane& d) : dp(d), hooks(&d.feature<hooks::Registry>()) {
  unsigned inst = g_instance.fetch_add(1);
  for (int i = 0; i < 2; i++) {
    rte_fib_conf conf{};
    conf.type = RTE_FIB_DIR24_8;
    conf.default_nh = 0;
    conf.max_routes = 1 << 15;
    conf.rib_ext_sz = 0;
    conf.dir24_8.nh_sz = RTE_FIB_DIR24_8_2B;
    conf.dir24_8.num_tbl8 = 1024;
    char name[32];
    std::snprintf(name, sizeof name, "l3fib%u_%d", inst, i);
    fibs_[i] = rte_fib_create(name, SOCKET_ID_ANY, &conf);
    if (fibs_[i] == nullptr)
      throw std::runtime_error(std::string("l3: cannot create the FIB: ") +
                               rte_strerror(rte_errno) +
                               " (raise eal.memory_mb: the FIB needs 2 x 32 MB)");
  }
  char hname[RTE_HASH_NAMESIZE];
  std::snprintf(hname, sizeof hname, "l3neigh%u", inst);
  rte_hash_parameters hp{};
  hp.name = hname;
  hp.entries = kMaxNeigh;
  hp.key_len = sizeof(NeighKey);
  hp.hash_func = rte_jhash;
  hp.socket_id = SOCKET_ID_ANY;
  hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  nhash_ = rte_hash_create(&hp);
  if (nhash_ == nullptr)
    throw std::runtime_error(std::string("l3: cannot create the neighbour table: ") +
                             rte_strerror(rte_errno));
  nslots_.resize(kMaxNeigh);
  for (uint32_t i = 0; i < kMaxNeigh; i++) {
    nslots_[i] = std::make_unique<NeighEntry>();
    nfree_.push_back(kMaxNeigh - 1 - i);
  }
  nh_.push_back(NextHop{});  // index 0: no route
  nh_refs_.push_back(1);

  for (auto& w : dp.workers) {
    auto ws = std::make_unique<WorkerL3>();
    ws->mib.reset(new MibBlock[kMaxDevices]());
    char rn[RTE_RING_NAMESIZE];
    std::snprintf(rn, sizeof rn, "l3p%u_%u", inst, w->id);
    ws->pending = rte_ring_create(rn, 1024, SOCKET_ID_ANY, RING_F_SP_ENQ | RING_F_SC_DEQ);
    std::snprintf(rn, sizeof rn, "l3e%u_%u", inst, w->id);
    ws->events = rte_ring_create_elem(rn, sizeof(NeighEvent), 1024, SOCKET_ID_ANY,
                                      RING_F_SP_ENQ | RING_F_SC_DEQ);
    std::snprintf(rn, sizeof rn, "l3e6%u_%u", inst, w->id);
    ws->events6 = rte_ring_create_elem(rn, sizeof(NeighEvent6), 1024, SOCKET_ID_ANY,
                                       RING_F_SP_ENQ | RING_F_SC_DEQ);
    if (ws->pending == nullptr || ws->events == nullptr || ws->events6 == nullptr)
      throw std::runtime_error(std::string("l3: cannot create rings: ") + rte_strerror(rte_errno));
    w->enable_inject();
    if (w->inject == nullptr) throw std::runtime_error("l3: cannot create a worker inject ring");
    workers_.push_back(std::move(ws));
  }
  // An empty published table, so that readers never see nullptr.
  auto* s = new Snapshot();
  s->fib = fibs_[active_];
  s->nh = nh_;
  s->dev_addr.assign(kMaxDevices, 0);
  s->punt.assign(kMaxDevices, kNoDev);
  s->dev_addr6.assign(kMaxDevices, std::array<uint8_t, 16>{});
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
  for (auto* f : fibs_) rte_fib_free(f);
  rte_fib6_free(fib6s_[0]);
  rte_fib6_free(fib6s_[1]);
  rte_hash_free(nhash_);
  rte_hash_free(nhash6_);
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
  for (auto& e : nslots_) {
    for (rte_mbuf* m : e->queue) rte_pktmbuf_free(m);
    e->queue.clear();
    e->queue_bytes = 0;
  }
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

MibBlock L3::mib(uint16_t dev) const {
  MibBlock s = raw_mib(dev);
  if (!mib_base_.empty())
    for (unsigned i = 0; i < kNumMib; i++) s.v[i] -= mib_base_[dev].v[i];
  return s;
}

MibBlock L3::raw_mib(uint16_t dev) const {
  MibBlock s{};
  for (auto& ws : workers_)
    for (unsigned i = 0; i < kNumMib; i++) s.v[i] += ws->mib[dev].v[i];
  return s;
}

void L3::clear_stats() {
  mib_base_.resize(kMaxDevices);
  for (uint16_t d = 0; d < kMaxDevices; d++) mib_base_[d] = raw_mib(d);
}

// ---- next hops and routes -------------------------------------------------------------

uint32_t L3::nh_get(const NextHop& nh) {
  auto key = std::make_tuple(nh.dev, nh.gw, static_cast<uint8_t>(nh.type));
  auto it = nh_index_.find(key);
  if (it != nh_index_.end()) {
    nh_refs_[it->second]++;
    return it->second;
  }
  uint32_t idx;
  if (!nh_free_.empty()) {
    idx = nh_free_.back();
    nh_free_.pop_back();
    nh_[idx] = nh;
    nh_refs_[idx] = 1;
  } else {
    if (nh_.size() > kMaxNextHops) return 0;
    idx = static_cast<uint32_t>(nh_.size());
    nh_.push_back(nh);
    nh_refs_.push_back(1);
  }
  nh_index_[key] = idx;
  return idx;
}

void L3::nh_put(uint32_t idx) {
  if (idx == 0 || --nh_refs_[idx] != 0) return;
  const NextHop& nh = nh_[idx];
  nh_index_.erase(std::make_tuple(nh.dev, nh.gw, static_cast<uint8_t>(nh.type)));
  nh_free_.push_back(idx);
}

// A next hop is usable when it lies in a connected subnet (of `dev` if given).
bool L3::on_link(uint32_t via, uint16_t* dev) const {
  for (const Address& a : addrs_) {
    if (a.v6 || (*dev != kNoDev && a.dev != *dev)) continue;
    uint32_t m = prefix_mask(a.len);
    if ((a.addr & m) == (via & m) && via != a.addr) {
      *dev = a.dev;
      return true;
    }
  }
  return false;
}

std::string L3::insert_route(Route r) {
  auto key = std::make_pair(r.prefix, r.len);
  if (routes_.count(key))
    return "route " + ipv4_str(r.prefix) + "/" + std::to_string(r.len) + " exists";
  NextHop nh;
  nh.dev = r.dev;
  nh.gw = r.via;
  nh.type = RtType::unicast;
  r.nh = nh_get(nh);
  if (r.nh == 0) return "too many next hops";
  routes_[key] = r;
  ops_.push_back(FibOp{r.prefix, r.len, r.nh});
  dirty_ = true;
  return "";
}

std::string L3::add_address(Device& d, const std::string& cidr) {
  Address a;
  a.dev = d.index;
  if (cidr.find(':') != std::string::npos) {
    size_t slash = cidr.find('/');
    if (slash == std::string::npos) return "bad IPv6 prefix '" + cidr + "'";
    in6_addr x;
    if (inet_pton(AF_INET6, cidr.substr(0, slash).c_str(), &x) != 1)
      return "bad IPv6 address '" + cidr + "'";
    int l = std::atoi(cidr.c_str() + slash + 1);
    if (l < 0 || l > 128) return "bad IPv6 prefix length in '" + cidr + "'";
    a.v6 = true;
    std::memcpy(a.v6addr, &x, 16);
    a.len = static_cast<uint8_t>(l);
    addrs_.push_back(a);
    return "";
  }
  if (!parse_cidr4(cidr, &a.addr, &a.len))
    return "bad IPv4 prefix '" + cidr + "' (want A.B.C.D/LEN)";
  uint32_t m = prefix_mask(a.len);
  if (a.addr == 0 || (a.addr >> 24) == 127 || (a.addr >> 28) >= 14 ||
      (a.len < 31 && ((a.addr & ~m) == 0 || (a.addr & ~m) == ~m)))
    return "'" + cidr + "' is not a usable host address";
  for (const Address& o : addrs_)
    if (!o.v6 && o.addr == a.addr) return "address " + ipv4_str(a.addr) + " is already assigned";
  addrs_.push_back(a);
  dirty_ = true;
  // The connected route (fib_add_ifaddr), unless the subnet already has one.
  Route r;
  r.prefix = a.addr & m;
  r.len = a.len;
  r.dev = d.index;
  r.origin = RouteOrigin::connected;
  if (!routes_.count({r.prefix, r.len})) insert_route(r);
  return "";
}

namespace {
struct RouteArgs {
  uint32_t prefix = 0, via = 0;
  uint8_t len = 0;
  uint16_t dev = kNoDev;
};
}  // namespace

static std::string parse_route_args(const Dataplane& dp, const std::string& prefix,
                                    const std::string& via, const std::string& dev, RouteArgs* r) {
  if (!parse_cidr4(prefix, &r->prefix, &r->len)) {
    if (!parse_ipv4(prefix, &r->prefix)) return "bad prefix '" + prefix + "' (want A.B.C.D/LEN)";
    r->len = 32;
  }
  r->prefix &= prefix_mask(r->len);
  if (!via.empty() && !parse_ipv4(via, &r->via)) return "bad next hop '" + via + "'";
  if (!dev.empty()) {
    Device* d = dp.net.find(dev);
    if (d == nullptr) return "no such device '" + dev + "'";
    r->dev = d->index;
  }
  if (via.empty() && dev.empty()) return "a route needs 'via ADDR' or 'dev DEV'";
  return "";
}

std::string L3::add_route(const std::string& prefix, const std::string& via,
                          const std::string& dev) {
  if (prefix.find(':') != std::string::npos) return add_route6(prefix, via, dev);
  RouteArgs a;
  if (std::string e = parse_route_args(dp, prefix, via, dev, &a); !e.empty()) return e;
  if (a.via != 0) {
    uint16_t d = a.dev;
    if (!on_link(a.via, &d))
      return "next hop " + via + " is not in a connected subnet" +
             (dev.empty() ? "" : " of " + dev) + " (Network is unreachable)";
    a.dev = d;
  }
  Route r;
  r.prefix = a.prefix;
  r.len = a.len;
  r.via = a.via;
  r.dev = a.dev;
  r.origin = RouteOrigin::static_route;
  return insert_route(r);
}

std::string L3::del_route(const std::string& prefix, const std::string& via,
                          const std::string& dev) {
  if (prefix.find(':') != std::string::npos) return del_route6(prefix, via, dev);
  RouteArgs a;
  std::string e = parse_route_args(dp, prefix, via, dev, &a);
  if (!e.empty() && !(via.empty() && dev.empty())) return e;
  if (!parse_cidr4(prefix, &a.prefix, &a.len)) {
    if (!parse_ipv4(prefix, &a.prefix)) return "bad prefix '" + prefix + "'";
    a.len = 32;
  }
  a.prefix &= prefix_mask(a.len);
  auto it = routes_.find({a.prefix, a.len});
  if (it == routes_.end())
    return "no route " + ipv4_str(a.prefix) + "/" + std::to_string(a.len) + " (No such process)";
  const Route& r = it->second;
  if ((!via.empty() && r.via != a.via) || (!dev.empty() && r.dev != a.dev))
    return "route " + ipv4_str(a.prefix) + "/" + std::to_string(a.len) + " has another next hop";
  nh_put(r.nh);
  ops_.push_back(FibOp{r.prefix, r.len, 0});
  routes_.erase(it);
  dirty_ = true;
  return "";
}

void L3::commit() {
  if (!dirty_ && ops_.empty()) return;
  auto apply = [&](rte_fib* f) {
    for (const FibOp& op : ops_) {
      int rc = op.nh != 0 ? rte_fib_add(f, op.prefix, op.len, op.nh)
                          : rte_fib_delete(f, op.prefix, op.len);
      if (rc != 0)
        spdlog::warn("l3: fib {} {}/{}: {}", op.nh ? "add" : "delete", ipv4_str(op.prefix), op.len,
                     rte_strerror(-rc));
    }
  };
  auto apply6 = [&](rte_fib6* f) {
    if (f == nullptr) return;
    for (const FibOp6& op : ops6_) {
      uint8_t a[16];
      std::memcpy(a, op.prefix.data(), 16);
      int rc = op.nh != 0 ? rte_fib6_add(f, a, op.len, op.nh) : rte_fib6_delete(f, a, op.len);
      if (rc != 0)
        spdlog::warn("l3: fib6 {} {}/{}: {}", op.nh ? "add" : "delete", ipv6_str(a), op.len,
                     rte_strerror(-rc));
    }
  };
  unsigned next = active_ ^ 1;
  apply(fibs_[next]);
  unsigned next6 = active6_ ^ 1;
  apply6(fib6s_[next6]);
  if (fib6s_[next6] != nullptr) fib6_ = fib6s_[next6];

  auto* s = new Snapshot();
  s->fib = fibs_[next];
  s->nh = nh_;
  s->dev_addr.assign(kMaxDevices, 0);
  s->punt.assign(kMaxDevices, kNoDev);
  for (auto [d, tap] : punt_) s->punt[d] = tap;
  // IPv6: the FIB (fixed after start), own addresses and the groups joined.
  s->fib6 = fib6_;
  s->nh6 = nh6_;
  s->dev_addr6.assign(kMaxDevices, std::array<uint8_t, 16>{});
  if (fib6_ != nullptr) {
    std::vector<uint16_t> v6devs;
    auto add = [&](const uint8_t* a, uint16_t dev, bool mcast) {
      Snapshot::Local6 l{};
      std::memcpy(l.a, a, 16);
      l.dev = dev;
      l.mcast = mcast;
      s->local6.push_back(l);
    };
    for (const Address& a : addrs_) {
      if (!a.v6) continue;
      uint8_t sn[16];
      add(a.v6addr, a.dev, false);
      ipv6_solicited_node(a.v6addr, sn);
      add(sn, a.dev, true);
      auto& da = s->dev_addr6[a.dev];
      if (std::all_of(da.begin(), da.end(), [](uint8_t b) { return b == 0; }))
        std::memcpy(da.data(), a.v6addr, 16);
      if (std::find(v6devs.begin(), v6devs.end(), a.dev) == v6devs.end()) v6devs.push_back(a.dev);
    }
    static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    static const uint8_t all_routers[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
    for (uint16_t d : v6devs) {
      Device* dv = dp.net.dev(d);
      if (dv == nullptr) continue;
      uint8_t ll[16], sn[16];
      ipv6_link_local(dv->mac, ll);
      ipv6_solicited_node(ll, sn);
      add(ll, d, false);
      add(sn, d, true);
      add(all_nodes, d, true);
      add(all_routers, d, true);
    }
  }
  std::vector<LocalSlot> entries;
  for (const Address& a : addrs_) {
    if (a.v6) continue;
    if (s->dev_addr[a.dev] == 0) s->dev_addr[a.dev] = a.addr;
    entries.push_back(LocalSlot{a.addr, a.dev, RtType::local});
    if (a.len < 31)
      entries.push_back(LocalSlot{a.addr | ~prefix_mask(a.len), a.dev, RtType::broadcast});
  }
  uint32_t size = 64, bits = 6;
  while (size < entries.size() * 4 + 4) size <<= 1, bits++;
  s->local.assign(size, LocalSlot{});
  s->local_mask = size - 1;
  s->local_shift = 32 - bits;
  for (const LocalSlot& e : entries) {
    uint32_t i = s->local_slot(e.addr);
    while (s->local[i].addr != 0 && s->local[i].addr != e.addr) i = (i + 1) & s->local_mask;
    if (s->local[i].addr == 0 || e.type == RtType::local)
      s->local[i] = e;  // local wins over broadcast
  }
  dp.rcu.publish(snap_, static_cast<const Snapshot*>(s));  // waits out the readers of the old one
  apply(fibs_[active_]);
  active_ = next;
  apply6(fib6s_[active6_]);
  if (fib6s_[next6] != nullptr) active6_ = next6;
  ops6_.clear();
  ops_.clear();
  dirty_ = false;
}

// ---- the control tick ---------------------------------------------------------------------

void L3::run(uint64_t now) {
  for (auto& ws : workers_) {
    NeighEvent evs[32];
    unsigned n;
    while ((n = rte_ring_dequeue_burst_elem(ws->events, evs, sizeof(NeighEvent), 32, nullptr)) != 0)
      for (unsigned i = 0; i < n; i++) neigh_event(evs[i], now);
    NeighEvent6 ev6[16];
    while ((n = rte_ring_dequeue_burst_elem(ws->events6, ev6, sizeof(NeighEvent6), 16, nullptr)) !=
           0)
      for (unsigned i = 0; i < n; i++) neigh_event6(ev6[i], now);
    rte_mbuf* ms[32];
    while ((n = rte_ring_dequeue_burst(ws->pending, reinterpret_cast<void**>(ms), 32, nullptr)) !=
           0)
      for (unsigned i = 0; i < n; i++) resolve(ms[i], now);
  }
  neigh_timers(now);
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

void L3::start() {
  if (started_) return;
  started_ = true;
  ptype_ids_.push_back(dp.net.add_ptype(kEthPIp, nullptr, ip_rcv, this, "ip_rcv"));
  ptype_ids_.push_back(dp.net.add_ptype(kEthPArp, nullptr, arp_rcv, this, "arp_rcv"));
  if (fib6_ != nullptr)
    ptype_ids_.push_back(dp.net.add_ptype(kEthPIpv6, nullptr, ipv6_rcv, this, "ipv6_rcv"));
  ipv4_set_okfns(*this);
  arp_set_okfns(*this);
  if (fib6_ != nullptr) ipv6_set_okfns(*this);
}

uint32_t L3::source_for(uint16_t dev, uint32_t target) const {
  uint32_t first_dev = 0, any = 0;
  for (const Address& a : addrs_) {
    if (a.v6) continue;
    if (any == 0) any = a.addr;
    if (a.dev != dev) continue;
    if (first_dev == 0) first_dev = a.addr;
    uint32_t m = prefix_mask(a.len);
    if ((a.addr & m) == (target & m)) return a.addr;
  }
  return first_dev != 0 ? first_dev : any;
}

// ---- setup ----------------------------------------------------------------------------------

void setup(Dataplane& dp) {
  const Config& t = dp.topo.get<Config>();
  if (t.addresses.empty() && t.routes.empty() && t.neighbours.empty() && t.punt.empty()) return;
  add_punt_ports(dp);  // punt TAPs are ports too (src/l3/punt.cc)
  L3& l3 = dp.feature<L3>();
  auto where = [&](const config::Mark& m) {
    return dp.topo.file + ":" + std::to_string(m.line) + ":" + std::to_string(m.col) + ": ";
  };
  for (const auto& a : t.addresses) {
    Device* d = dp.net.find(a.dev);
    if (d == nullptr)
      throw std::runtime_error(where(a.mark) + "address on unknown device '" + a.dev + "'");
    if (std::string e = l3.add_address(*d, a.address); !e.empty())
      throw std::runtime_error(where(a.mark) + e);
  }
  l3.build_fib6();
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
  dp.add_clear_stats([p]() { p->clear_stats(); });
  spdlog::info("l3: {} address(es), {} route(s), {} static neighbour(s)", l3.addresses().size(),
               l3.routes().size(), t.neighbours.size());
}

}  // namespace sluice::l3
