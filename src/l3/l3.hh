// L3: IPv4 receive, routing, forwarding and output, ARP and neighbours, ICMP,
// as Linux does them (net/ipv4/ip_input.c, route.c, ip_forward.c,
// ip_output.c, icmp.c, arp.c, net/core/neighbour.c).
// Spec: ../shared/spec/linux-rx.md §6 (CORE-06, FWD-* in §8.1–8.2). Docs: docs/l3.md.
//
// Stages (each named after the kernel function it reproduces):
//   ip_rcv()         protocol handler for 0x0800 (ipv4.cc): OTHERHOST drop,
//                    header checks in Linux's order with Linux's counters,
//                    Ethernet padding trimmed, [pre_routing], input route
//                    (martians, local table before main, rte_fib bulk lookup)
//   ip_local_deliver ICMP echo answered here; the rest to the punt TAP, or
//                    without one ICMP port/protocol unreachable
//   ip_forward()     pkt_type HOST only, TTL check (ICMP 11/0), ForwDatagrams,
//                    DF + too big (ICMP 3/4), TTL decrement with incremental
//                    checksum, [forward]
//   ip_output()      [post_routing], fragmentation (rte_ip_frag), neighbour
//                    output (MAC rewrite) or the unresolved queue, dev_queue_xmit
//   arp_rcv()        protocol handler for 0x0806 (arp.cc): replies for our
//                    addresses in the dataplane, learning events to the control thread
//   ipv6_rcv()       protocol handler for 0x86dd (ipv6.cc): checks, ND (NS
//                    answered, NS/NA learned), ICMPv6 echo, forwarding over
//                    connected and static routes (rte_fib6 x2), hop-limit/too-big errors
//   punt             punt.cc: a net_tap per `punt:` entry; local traffic the
//                    dataplane does not answer goes to the host kernel, what
//                    the kernel sends out of the TAP is routed like local output
//   neighbours       control thread (neigh.cc): Linux NUD states and timers,
//                    3 probes 1 s apart, unres queue bounded in bytes,
//                    FAILED → ICMP 3/1 for what was queued
//
// Outputs: dev_queue_xmit on the route's device; frames built off the worker
//   go through Worker::inject.
// Drop reasons: otherhost, ip_inhdr, ip_csum, pkt_too_small, nomem,
//   ip_invalid_source, ip_invalid_dest, ip_innoroutes, ip_fwd_not_host,
//   pkt_too_big, ip_frag_local, ip_noproto, no_socket, tcp_csum, ip_outnoroutes,
//   icmp_csum, icmp_ignored, neigh_failed, neigh_queuefull, neigh_createfail,
//   arp_invalid.
// Counters: per device IP MIB (Linux names, `show ip stats`), rx_otherhost_dropped.
// Config keys: addresses, routes, neighbours, punt (docs/l3.md).
// CLI: show addresses, show routes, show neigh, show ip stats [DEV],
//   route add|del PREFIX via ADDR|dev DEV.
#pragma once

#include <array>
#include <cstring>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/device.hh"
#include "core/worker.hh"

struct rte_fib;
struct rte_fib6;
struct rte_hash;
struct rte_ring;
struct rte_mempool;

namespace sluice {
class Dataplane;
}
namespace sluice::hooks {
class Registry;
}

namespace sluice::l3 {

inline constexpr uint16_t kEthPIp = 0x0800;
inline constexpr uint16_t kEthPArp = 0x0806;

// Linux /proc/net/snmp and netstat names (Ip, IpExt, Icmp).
// clang-format off
#define SLUICE_IP_MIB(X) \
  X(InReceives) \
  X(InHdrErrors) \
  X(InAddrErrors) \
  X(ForwDatagrams) \
  X(InUnknownProtos) \
  X(InDiscards) \
  X(InDelivers) \
  X(OutRequests) \
  X(OutDiscards) \
  X(OutNoRoutes) \
  X(ReasmReqds) \
  X(FragOKs) \
  X(FragFails) \
  X(FragCreates) \
  X(InNoRoutes) \
  X(InTruncatedPkts) \
  X(InMcastPkts) \
  X(OutMcastPkts) \
  X(InBcastPkts) \
  X(OutBcastPkts) \
  X(InOctets) \
  X(OutOctets) \
  X(InCsumErrors) \
  X(InNoECTPkts) \
  X(InECT1Pkts) \
  X(InECT0Pkts) \
  X(InCEPkts) \
  X(IcmpInMsgs) \
  X(IcmpInErrors) \
  X(IcmpInCsumErrors) \
  X(IcmpInDestUnreachs) \
  X(IcmpInTimeExcds) \
  X(IcmpInEchos) \
  X(IcmpInEchoReps) \
  X(IcmpOutMsgs) \
  X(IcmpOutRateLimitGlobal) \
  X(IcmpOutRateLimitHost) \
  X(IcmpOutDestUnreachs) \
  X(IcmpOutTimeExcds) \
  X(IcmpOutEchoReps) \
  X(Ip6InReceives) \
  X(Ip6InHdrErrors) \
  X(Ip6InTruncatedPkts) \
  X(Ip6InNoRoutes) \
  X(Ip6InAddrErrors) \
  X(Ip6InDelivers) \
  X(Ip6OutForwDatagrams) \
  X(Ip6OutRequests) \
  X(Ip6InTooBigErrors) \
  X(Ip6InMcastPkts) \
  X(Icmp6InMsgs) \
  X(Icmp6InErrors) \
  X(Icmp6InEchos) \
  X(Icmp6InNeighborSolicits) \
  X(Icmp6InNeighborAdvertisements) \
  X(Icmp6OutMsgs) \
  X(Icmp6OutEchoReplies) \
  X(Icmp6OutNeighborAdvertisements) \
  X(Icmp6OutNeighborSolicits) \
  X(Icmp6OutTimeExcds) \
  X(Icmp6OutDestUnreachs) \
  X(Icmp6OutPktTooBigs) \
  X(TcpOutRsts) \
  X(TcpInCsumErrors)
// clang-format on

enum class Mib : uint8_t {
#define SLUICE_MIB_ENUM(n) n,
  SLUICE_IP_MIB(SLUICE_MIB_ENUM)
#undef SLUICE_MIB_ENUM
      count_
};
inline constexpr unsigned kNumMib = static_cast<unsigned>(Mib::count_);
const char* mib_name(Mib m);
struct MibBlock {
  uint64_t v[kNumMib];
  uint64_t& operator[](Mib m) { return v[static_cast<unsigned>(m)]; }
  uint64_t operator[](Mib m) const { return v[static_cast<unsigned>(m)]; }
};

// ---- routing ------------------------------------------------------------------------------

enum class RtType : uint8_t { none = 0, unicast = 1, local = 2, broadcast = 3 };
const char* rt_type_name(RtType t);

struct NextHop6Ref {
  uint8_t gw[16] = {};  // all zero = on-link
  uint16_t dev = kNoDev;
};

struct NextHop {
  uint32_t gw = 0;  // host order; 0 = on-link: the destination itself
  uint16_t dev = kNoDev;
  RtType type = RtType::none;
};

// The local table: own addresses and subnet broadcasts (exact /32 keys),
// open addressing; looked up before the main table as Linux does.
struct LocalSlot {
  uint32_t addr = 0;      // host order; 0 = empty
  uint16_t dev = kNoDev;  // the device the address is on
  RtType type = RtType::none;
};

// What workers read: replaced as a whole under RCU. The FIB is one of two
// rte_fib buffers (the other is updated while no reader can see it).
struct Snapshot {
  rte_fib* fib = nullptr;
  std::vector<NextHop> nh;       // index = the FIB's next hop; [0] = no route
  std::vector<LocalSlot> local;  // open addressing, at most 1/4 full
  uint32_t local_mask = 0;
  uint32_t local_shift = 32;
  // Fibonacci hashing: the high bits of the product (addresses often share
  // their low bits: 10.2.x.1 …).
  uint32_t local_slot(uint32_t a) const { return (a * 2654435761u) >> local_shift; }
  std::vector<uint32_t> dev_addr;  // [device index] primary IPv4 address, 0 = none
  std::vector<uint16_t> punt;      // [device index] its punt TAP device, kNoDev = none
  // IPv6: connected routes in an rte_fib6 (built once at start), own
  // addresses (global and link-local) and the groups joined.
  struct Local6 {
    uint8_t a[16];
    uint16_t dev;
    bool mcast;
  };
  rte_fib6* fib6 = nullptr;
  std::vector<NextHop6Ref> nh6;
  std::vector<Local6> local6;
  std::vector<std::array<uint8_t, 16>> dev_addr6;  // [device index] an address to answer from
  const Local6* find_local6(const uint8_t* a, uint16_t dev) const {
    for (const Local6& l : local6)
      if (std::memcmp(l.a, a, 16) == 0 && (!l.mcast || l.dev == dev)) return &l;
    return nullptr;
  }

  const LocalSlot* find_local(uint32_t a) const {
    if (local.empty()) return nullptr;
    for (uint32_t i = local_slot(a);; i = (i + 1) & local_mask) {
      const LocalSlot& s = local[i];
      if (s.addr == a) return &s;
      if (s.addr == 0) return nullptr;
    }
  }
};

struct Address {
  uint16_t dev;
  bool v6 = false;
  uint32_t addr = 0;  // v4, host order
  uint8_t v6addr[16] = {};
  uint8_t len = 0;
};

enum class RouteOrigin : uint8_t { connected, static_route };

struct Route6 {
  std::array<uint8_t, 16> prefix{};  // masked
  uint8_t len = 0;
  std::array<uint8_t, 16> via{};  // all zero = on-link
  uint16_t dev = kNoDev;
  RouteOrigin origin = RouteOrigin::static_route;
  uint32_t nh = 0;
};
struct Route {
  uint32_t prefix = 0;  // host order, masked
  uint8_t len = 0;
  uint32_t via = 0;  // 0 = on-link
  uint16_t dev = kNoDev;
  RouteOrigin origin = RouteOrigin::static_route;
  uint32_t nh = 0;
};

// ---- neighbours -------------------------------------------------------------------------

// NUD_* (include/uapi/linux/neighbour.h).
enum Nud : uint8_t {
  kNudNone = 0x00,
  kNudIncomplete = 0x01,
  kNudReachable = 0x02,
  kNudStale = 0x04,
  kNudDelay = 0x08,
  kNudProbe = 0x10,
  kNudFailed = 0x20,
  kNudNoarp = 0x40,
  kNudPermanent = 0x80,
};
inline constexpr uint8_t kNudValid =
    kNudPermanent | kNudNoarp | kNudReachable | kNudProbe | kNudStale | kNudDelay;
const char* nud_name(uint8_t s);

// arp_tbl defaults (net/ipv4/arp.c) and spec §9.
struct NeighParams {
  unsigned mcast_probes = 3;
  unsigned ucast_probes = 3;
  uint64_t retrans_ms = 1000;
  uint64_t base_reachable_ms = 30000;
  uint64_t delay_probe_ms = 5000;
  uint64_t gc_stale_ms = 60000;
  unsigned gc_thresh1 = 128;  // below this many entries nothing is collected
  uint64_t unres_qlen_bytes = 212992;
  uint64_t locktime_ms = 1000;
};

struct NeighKey {
  uint32_t ip;  // host order
  uint16_t dev;
  uint16_t zero;
};

struct NeighEntry {
  // Read by workers: MAC in the low 48 bits, NUD state in bits 48-55.
  std::atomic<uint64_t> hw{0};
  std::atomic<uint8_t> used{0};  // a worker sent through it while STALE
  // Control thread only.
  NeighKey key{};
  uint8_t state = kNudNone;
  bool in_use = false;
  unsigned probes = 0;
  uint64_t updated_ms = 0, confirmed_ms = 0, next_ms = 0, reachable_ms = 0;
  std::deque<rte_mbuf*> queue;
  uint64_t queue_bytes = 0;
  int32_t pos = -1;  // rte_hash position
  bool v6 = false;
  uint8_t a6[16] = {};
};

struct NeighKey6 {
  uint8_t a[16];
  uint16_t dev;
  uint16_t zero;
};

struct NeighEvent6 {  // 32 bytes, worker → control (NS/NA)
  uint8_t a[16];
  uint16_t dev;
  uint8_t kind;
  uint8_t pad;
  uint8_t mac[6];
  uint8_t pad2[6];
};
static_assert(sizeof(NeighEvent6) == 32);

inline uint64_t neigh_hw(const rte_ether_addr& mac, uint8_t state) {
  uint64_t v = 0;
  for (int i = 5; i >= 0; i--) v = v << 8 | mac.addr_bytes[i];
  return v | uint64_t(state) << 48;
}
inline void neigh_mac(uint64_t hw, rte_ether_addr* mac) {
  for (int i = 0; i < 6; i++) mac->addr_bytes[i] = static_cast<uint8_t>(hw >> (8 * i));
}
inline uint8_t neigh_state(uint64_t hw) {
  return static_cast<uint8_t>(hw >> 48);
}

struct NeighStats {
  uint64_t allocs = 0, destroys = 0, res_failed = 0, unres_discards = 0, probes_sent = 0;
};

// ---- ICMP rate limits -------------------------------------------------------------------

// inet_peer rate_tokens/rate_last (shared by ip_error and icmpv4_xrlim_allow,
// as in Linux) and icmp_global_allow's credit.
struct IcmpLimiter {
  struct Peer {
    uint32_t addr = 0;
    uint64_t tokens = 0, last_ms = 0;
    bool used = false;
  };
  std::array<Peer, 1024> peers{};
  uint64_t global_credit = 50, global_stamp_ms = 0;
  bool global_init = false;

  Peer& peer(uint32_t a, uint64_t now);
  // ip_error: cost 1 s, burst 5 s.
  bool error_allow(uint32_t a, uint64_t now);
  // icmpv4_xrlim_allow: icmp_ratelimit 1 s, burst 6 (XRLIM_BURST_FACTOR).
  bool xrlim_allow(uint32_t a, uint64_t now);
  // icmp_global_allow: icmp_msgs_per_sec 1000, burst 50.
  bool global_allow(uint64_t now);
};

// ---- per worker ----------------------------------------------------------------------

struct NeighEvent {  // 16 bytes, worker → control
  uint32_t ip;
  uint16_t dev;
  uint8_t kind;  // NeighEventKind
  uint8_t pad;
  uint8_t mac[6];
  uint16_t pad2;
};
static_assert(sizeof(NeighEvent) == 16);
enum NeighEventKind : uint8_t { kEvRequestForUs = 1, kEvReplyToUs = 2, kEvOther = 3, kEvGarp = 4 };

// A worker's cache of IPv4 neighbour lookups (key → entry), so a burst
// looks up in the shared rte_hash only the next hops it has not seen. It
// holds entries, not their state (read from the entry each time), and is
// emptied when the control thread destroys any entry (L3::neigh_gen).
struct NeighCache {
  static constexpr unsigned kSlots = 64;
  struct Slot {
    uint64_t key = 0;  // ip | dev << 32 | 1 << 63; 0 = empty
    NeighEntry* e = nullptr;
  };
  uint64_t gen = 0;
  Slot s[kSlots];
  static uint64_t key(uint32_t ip, uint16_t dev) {
    return uint64_t(ip) | uint64_t(dev) << 32 | uint64_t(1) << 63;
  }
  static unsigned slot(uint64_t k) {
    return static_cast<unsigned>((k * 0x9e3779b97f4a7c15ull) >> 58);  // top 6 bits
  }
};

struct WorkerL3 {
  NeighCache ncache;
  std::unique_ptr<MibBlock[]> mib;  // [kMaxDevices]
  rte_ring* pending = nullptr;      // mbufs waiting for a neighbour → control
  rte_ring* events = nullptr;       // NeighEvent → control
  rte_ring* events6 = nullptr;      // NeighEvent6 → control
  IcmpLimiter rl;
  uint16_t ip_id = 1;
  MibBlock& m(uint16_t dev) { return mib[dev]; }
};

// ---- the feature -------------------------------------------------------------------------

class L3 {
 public:
  explicit L3(Dataplane& dp);
  ~L3();
  L3(const L3&) = delete;
  L3& operator=(const L3&) = delete;

  Dataplane& dp;
  hooks::Registry* hooks = nullptr;  // the hook points (src/hooks), set at construction
  NeighParams params;
  std::atomic<uint64_t> fake_now_ms{0};  // tests: non-zero replaces the clock on workers

  // ---- control thread ----
  // Each returns "" or an error message (nothing changed).
  std::string add_address(Device& d, const std::string& cidr);
  std::string add_route(const std::string& prefix, const std::string& via, const std::string& dev);
  std::string del_route(const std::string& prefix, const std::string& via, const std::string& dev);
  std::string add_static_neigh(Device& d, const std::string& ip, const std::string& mac);
  // Local traffic for dev's addresses that the dataplane does not answer goes to `tap`.
  void set_punt(uint16_t dev, uint16_t tap);
  // Publishes pending table changes (FIB, local table, addresses) to the workers.
  void commit();
  // Neighbour timers, worker events, resolution queues. now in ms.
  void run(uint64_t now_ms);
  // Registers the protocol handlers (after the first commit).
  void start();
  void shutdown();

  // ---- readers ----
  const Snapshot* snap() const { return snap_.load(std::memory_order_acquire); }
  WorkerL3& ws(unsigned worker_id) { return *workers_[worker_id]; }
  MibBlock mib(uint16_t dev) const;  // summed over workers, since the last clear_stats()
  void clear_stats();                // `clear stats`: a baseline (workers' blocks untouched)
  const std::vector<Address>& addresses() const { return addrs_; }
  const std::map<std::pair<uint32_t, uint8_t>, Route>& routes() const { return routes_; }
  const std::map<std::pair<std::array<uint8_t, 16>, uint8_t>, Route6>& routes6() const {
    return routes6_;
  }
  std::vector<const NeighEntry*> neighbours() const;
  const NeighStats& neigh_stats() const { return nstats_; }
  uint64_t now_ms() const;
  rte_hash* neigh_hash() const { return nhash_; }
  // Bumped before an entry is destroyed (and its slot reused after an RCU
  // grace period): workers empty their NeighCache when it changes.
  std::atomic<uint64_t> neigh_gen{1};
  bool started() const { return started_; }

  // Control-side output of an IPv4 packet built by the control thread
  // (14 bytes of headroom for Ethernet at the front): route, neighbour, inject.
  void ctl_output(rte_mbuf* m, unsigned worker);
  // Resolution request from a worker (the mbuf's meta.user[0] holds the next hop).
  void resolve(rte_mbuf* m, uint64_t now);
  void neigh_event(const NeighEvent& ev, uint64_t now);
  void neigh_event6(const NeighEvent6& ev, uint64_t now);
  rte_hash* neigh_hash6() const { return nhash6_; }
  void neigh_timers(uint64_t now);
  // IPv6: the two FIBs with the connected prefixes, the ND table (once, before start()).
  void build_fib6();
  // Primary address of dev in the subnet of `target` (or any of dev's, or any at all).
  uint32_t source_for(uint16_t dev, uint32_t target) const;
  // The ICMP error builder (shared by workers and the control thread).
  rte_mbuf* icmp_error(rte_mempool* mp, const rte_mbuf* orig, uint8_t type, uint8_t code,
                       uint32_t info, uint32_t src, uint16_t id);
  IcmpLimiter ctl_rl;
  rte_mempool* ctl_pool() const;

 private:
  friend struct L3Access;
  std::atomic<const Snapshot*> snap_{nullptr};
  rte_fib* fibs_[2] = {nullptr, nullptr};
  unsigned active_ = 0;  // which of fibs_ the published snapshot uses
  std::vector<std::unique_ptr<WorkerL3>> workers_;
  std::vector<Address> addrs_;
  std::map<std::pair<uint32_t, uint8_t>, Route> routes_;
  std::map<std::pair<std::array<uint8_t, 16>, uint8_t>, Route6> routes6_;
  // Next hops, deduplicated: (dev, gw, type) → index with a reference count.
  std::map<std::tuple<uint16_t, uint32_t, uint8_t>, uint32_t> nh_index_;
  std::vector<NextHop> nh_;
  std::vector<uint32_t> nh_refs_;
  std::vector<uint32_t> nh_free_;
  // FIB changes not yet applied to either buffer: (prefix, len, nh; nh 0 = delete).
  struct FibOp {
    uint32_t prefix;
    uint8_t len;
    uint32_t nh;
  };
  std::vector<FibOp> ops_;
  bool dirty_ = false;

  rte_hash* nhash_ = nullptr;
  std::vector<MibBlock> mib_base_;  // [kMaxDevices] once cleared
  MibBlock raw_mib(uint16_t dev) const;
  rte_hash* nhash6_ = nullptr;
  // IPv6: two rte_fib6 with the same routes, as for IPv4 (fib6_ = the published one).
  rte_fib6* fib6_ = nullptr;
  rte_fib6* fib6s_[2] = {nullptr, nullptr};
  unsigned active6_ = 0;
  std::vector<NextHop6Ref> nh6_;
  std::vector<uint32_t> nh6_refs_;
  std::vector<uint32_t> nh6_free_;
  std::map<std::pair<std::array<uint8_t, 16>, uint16_t>, uint32_t> nh6_index_;
  struct FibOp6 {
    std::array<uint8_t, 16> prefix;
    uint8_t len;
    uint32_t nh;
  };
  std::vector<FibOp6> ops6_;
  uint32_t nh6_get(const NextHop6Ref& h);
  void nh6_put(uint32_t idx);
  std::string insert_route6(Route6 r);
  bool on_link6(const uint8_t* via, uint16_t* dev) const;
  std::string add_route6(const std::string& prefix, const std::string& via, const std::string& dev);
  std::string del_route6(const std::string& prefix, const std::string& via, const std::string& dev);
  NeighEntry* neigh_find6(const uint8_t* a, uint16_t dev);
  NeighEntry* neigh_create6(const uint8_t* a, uint16_t dev, uint64_t now);
  void neigh_apply_event(NeighEntry* e, uint8_t kind, const rte_ether_addr& mac, uint64_t now);
  void probe(NeighEntry* e, const rte_ether_addr* unicast);
  void send_ns(uint16_t dev, const uint8_t* target, const rte_ether_addr* unicast);
  std::vector<std::unique_ptr<NeighEntry>> nslots_;
  std::vector<uint32_t> nfree_;
  std::vector<uint32_t> nused_;  // indices of entries in use
  NeighStats nstats_;
  uint64_t rng_ = 88172645463325252ull;
  bool started_ = false;
  std::vector<uint32_t> ptype_ids_;
  std::vector<std::pair<uint16_t, uint16_t>> punt_;  // (L3 device, its punt TAP device)

  uint32_t nh_get(const NextHop& nh);
  void nh_put(uint32_t idx);
  std::string insert_route(Route r);
  bool on_link(uint32_t via, uint16_t* dev) const;
  NeighEntry* neigh_find(uint32_t ip, uint16_t dev);
  NeighEntry* neigh_create(uint32_t ip, uint16_t dev, uint64_t now);
  void neigh_destroy(NeighEntry* e);
  void neigh_set(NeighEntry* e, uint8_t state, const rte_ether_addr* mac, uint64_t now);
  void neigh_flush_queue(NeighEntry* e);
  void neigh_fail_queue(NeighEntry* e);
  rte_ether_addr neigh_enter(NeighEntry* e, uint8_t state);
  void neigh_resolution_failed(NeighEntry* e, uint64_t now);
  void send_arp(uint16_t dev, uint16_t op, uint32_t sip, const rte_ether_addr* tha_unicast,
                uint32_t tip);
  void inject(rte_mbuf* m, unsigned worker);
  uint64_t random_reachable();
};

// Creates the punt TAPs (net_tap, one per `punt:` entry) as ports polled by
// worker 0, before the workers' poll lists are built; gives the kernel side
// the device's MAC and IPv4 addresses (ARP off: sluice resolves). Called by
// pmd::setup after ports and VLANs exist.
void add_punt_ports(Dataplane& dp);

// Builds the topology's addresses, routes and static neighbours, registers
// the IPv4/ARP handlers, the control timer and the shutdown step. Does
// nothing when the topology has no L3 section (the core alone stays L2).
void setup(Dataplane& dp);

// The protocol handlers (ctx = L3*).
void ip_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);
void arp_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);
void ipv6_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);
// The okfns of the hook points (hooks::Registry::set_okfn): where a packet a
// queue consumer accepted goes on (ipv4.cc, ipv6.cc, arp.cc).
void ipv4_set_okfns(L3& l3);
void ipv6_set_okfns(L3& l3);
void arp_set_okfns(L3& l3);

inline constexpr uint16_t kEthPIpv6 = 0x86dd;
// fe80::/64 with the modified EUI-64 of mac (addrconf_addr_eui48).
void ipv6_link_local(const rte_ether_addr& mac, uint8_t* out);
// ff02::1:ffXX:XXXX
void ipv6_solicited_node(const uint8_t* a, uint8_t* out);
std::string ipv6_str(const uint8_t* a);

// Worker: ip_local_out + ip_output for packets built on this worker (IP
// header at offset 14).
void ip_local_out(Worker& w, L3& l3, rte_mbuf** pkts, uint16_t n);

// Helpers shared by the files of this folder.
bool parse_ipv4(const std::string& s, uint32_t* out);  // host order
bool parse_cidr4(const std::string& s, uint32_t* addr, uint8_t* len);
std::string ipv4_str(uint32_t a);  // host order
inline uint32_t prefix_mask(uint8_t len) {
  return len == 0 ? 0 : ~uint32_t(0) << (32 - len);
}
std::string mac_str(const rte_ether_addr& a);

}  // namespace sluice::l3
