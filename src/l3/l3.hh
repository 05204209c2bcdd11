// L3: IPv4 receive, routing, forwarding and output, ARP and neighbours, ICMP,
// as Linux does them (net/ipv4/ip_input.c, route.c, ip_forward.c,
// ip_output.c, icmp.c, arp.c, net/core/neighbour.c), and the IPv6 subset.
// Spec: ../shared/spec/linux-rx.md §6 (CORE-06, FWD-* in §8.1–8.2). Docs: docs/l3.md.
//
// The feature is a composition of parts, one role each:
//   addrs            own addresses, local tables, source selection (addr.hh)
//   fib4, fib6       the main tables: routes, next hops, the rte_fib /
//                    rte_fib6 double buffers swapped under RCU (fib.hh)
//   neigh            ARP/ND entries: NUD states and timers, 3 probes 1 s
//                    apart, unres queue bounded in bytes, FAILED → ICMP 3/1
//                    for what was queued (neigh.hh)
//   mib              the per-device IP MIB summed over the workers (mib.hh)
// and the published Snapshot (snapshot.hh) that workers read.
//
// Stages on the worker (each named after the kernel function it reproduces):
//   ip_rcv()         protocol handler for 0x0800 (ipv4_input.cc): OTHERHOST
//                    drop, header checks in Linux's order with Linux's
//                    counters, Ethernet padding trimmed, [pre_routing], input
//                    route (martians, local table before main, rte_fib bulk lookup)
//   ip_local_deliver ipv4_local.cc: ICMP echo answered here (icmp.cc); the
//                    rest to the punt TAP, or without one ICMP port/protocol
//                    unreachable, TCP reset
//   ip_forward()     ipv4_forward.cc: pkt_type HOST only, TTL check (ICMP
//                    11/0), DF + too big (ICMP 3/4), TTL decrement with
//                    incremental checksum, [forward], ForwDatagrams
//   ip_output()      ipv4_output.cc: [local_out], fragmentation (rte_ip_frag);
//                    neigh_output (output.cc, shared with IPv6): [post_routing],
//                    MAC rewrite or the unresolved queue, dev_queue_xmit
//   arp_rcv()        protocol handler for 0x0806 (arp.cc): replies for our
//                    addresses in the dataplane, learning events to the control thread
//   ipv6_rcv()       protocol handler for 0x86dd (ipv6_*.cc, icmp6.cc,
//                    ndisc.cc): checks, ND (NS answered, NS/NA learned),
//                    ICMPv6 echo, forwarding over connected and static routes,
//                    hop-limit/too-big errors
//   punt             punt.cc: a net_tap per `punt:` entry; local traffic the
//                    dataplane does not answer goes to the host kernel, what
//                    the kernel sends out of the TAP is routed like local output
//
// Outputs: dev_queue_xmit on the route's device; frames built off the worker
//   go through Worker::inject.
// Drop reasons: otherhost, ip_inhdr, ip_csum, pkt_too_small, nomem,
//   ip_invalid_source, ip_invalid_dest, ip_innoroutes, ip_fwd_not_host,
//   pkt_too_big, ip_frag_local, ip_noproto, no_socket, tcp_csum, ip_outnoroutes,
//   icmp_csum, icmp_ignored, neigh_failed, neigh_queuefull, neigh_createfail,
//   arp_invalid.
// Counters: per device IP MIB (Linux names, `show ip stats`), rx_otherhost_dropped.
// Config keys: addresses, routes, neighbours, punt (config.cc; docs/l3.md).
// CLI: show addresses, show routes, show neigh, show ip stats [DEV],
//   route add|del PREFIX via ADDR|dev DEV (commands.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <rte_ether.h>
#include <rte_mbuf.h>

#include "core/device.hh"
#include "core/worker.hh"
#include "l3/addr.hh"
#include "l3/fib.hh"
#include "l3/icmp.hh"
#include "l3/mib.hh"
#include "l3/neigh.hh"
#include "l3/snapshot.hh"

struct rte_ring;
struct rte_mempool;

namespace sluice {
class Dataplane;
}
namespace sluice::config {
class Topology;
}
namespace sluice::hooks {
class Registry;
}

namespace sluice::l3 {

inline constexpr uint16_t kEthPIp = 0x0800;
inline constexpr uint16_t kEthPArp = 0x0806;
inline constexpr uint16_t kEthPIpv6 = 0x86dd;

// What one worker writes (nobody else does).
struct WorkerL3 {
  NeighCache ncache;
  NeighCache6 ncache6;
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
  hooks::Registry* hooks = nullptr;      // the hook points (src/hooks), set at construction
  std::atomic<uint64_t> fake_now_ms{0};  // tests: non-zero replaces the clock on workers

  // ---- the parts ----
  Addresses addrs;
  Fib4 fib4;
  Fib6 fib6;  // on() once build_fib6() found IPv6 addresses
  NeighTable neigh;
  MibTotals mib;        // mib(dev): dev's MIB since the last `clear stats`
  NeighParams& params;  // neigh.params

  // ---- control thread ----
  // Each returns "" or an error message (nothing changed).
  std::string add_address(Device& d, const std::string& cidr);
  std::string add_route(const std::string& prefix, const std::string& via, const std::string& dev);
  std::string del_route(const std::string& prefix, const std::string& via, const std::string& dev);
  std::string add_static_neigh(Device& d, const std::string& ip, const std::string& mac);
  // The reverse of add_address: its connected route goes with it (another
  // address of the same subnet keeps or takes it over), then the routes
  // whose gateway is no longer on a connected subnet of their device.
  std::string del_address(Device& d, const std::string& cidr);
  std::string del_static_neigh(Device& d, const std::string& ip);
  // NETDEV_UNREGISTER: dev's addresses, every route through dev (both
  // families, connected or not), its neighbours (queued packets dropped)
  // and its punt TAP entry go. Commit() publishes.
  void forget_device(uint16_t dev);
  // Local traffic for dev's addresses that the dataplane does not answer goes to `tap`.
  void set_punt(uint16_t dev, uint16_t tap);
  // IPv6: the two FIBs with the connected prefixes, the ND table (once, before start()).
  void build_fib6(uint32_t tbl8 = 0);  // tbl8: the trie groups the topology's routes take
  // Publishes pending table changes (FIBs, local tables, addresses) to the workers.
  void commit();
  // Neighbour timers, worker events, resolution queues. now in ms.
  void run(uint64_t now_ms);
  // Registers the protocol handlers (after the first commit).
  void start();
  void shutdown();
  // A frame built here to leave through `worker` (dropped when its ring is full).
  void inject(rte_mbuf* m, unsigned worker);
  rte_mempool* ctl_pool() const;

  // ---- readers ----
  const Snapshot* snap() const { return snap_.load(std::memory_order_acquire); }
  WorkerL3& ws(unsigned worker_id) { return *workers_[worker_id]; }
  const std::vector<Address>& addresses() const { return addrs.all(); }
  std::vector<const NeighEntry*> neighbours() const { return neigh.entries(); }
  const NeighStats& neigh_stats() const { return neigh.stats(); }
  uint64_t now_ms() const;
  bool started() const { return started_; }

 private:
  Snapshot* make_snapshot() const;
  std::string add_route6(const std::string& prefix, const std::string& via, const std::string& dev);
  std::string del_route6(const std::string& prefix, const std::string& via, const std::string& dev);
  // After addresses went: connected routes of a (re)taken over or dropped,
  // gateways off-link swept.
  void address_gone(const Address& a);
  void sweep_off_link();

  std::atomic<const Snapshot*> snap_{nullptr};
  std::vector<std::unique_ptr<WorkerL3>> workers_;
  bool dirty_ = false;  // addresses or punt TAPs changed since the last commit
  bool started_ = false;
  std::vector<uint32_t> ptype_ids_;
  std::vector<std::pair<uint16_t, uint16_t>> punt_;  // (L3 device, its punt TAP device)
};

// Creates the punt TAPs (net_tap, one per `punt:` entry) as ports polled by
// worker 0, before the workers' poll lists are built; gives the kernel side
// the device's MAC and IPv4 addresses (ARP off: sluice resolves). Called by
// setup().
void add_punt_ports(Dataplane& dp);

// Builds the topology's punt TAPs, addresses, routes and static neighbours
// (topo.get<Config>(), config.hh), registers the IPv4/ARP handlers, the
// control timer and the shutdown step. Does nothing when the topology has
// no L3 section (the core alone stays L2).
void setup(Dataplane& dp);
// Feature::reload (reload.cc): addresses added, routes added and removed,
// static neighbours added; says why anything else needs a restart.
std::string reload(Dataplane& dp, const config::Topology& next, bool apply);

// The protocol handlers (ctx = L3*).
void ip_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);
void arp_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);
void ipv6_rcv(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n);
// The okfns of the hook points (hooks::Registry::set_okfn): where a packet a
// queue consumer accepted goes on (ipv4_*.cc, ipv6_*.cc, arp.cc).
void ipv4_set_okfns(L3& l3);
void ipv6_set_okfns(L3& l3);
void arp_set_okfns(L3& l3);

// Worker: ip_local_out + ip_output for packets built on this worker (IP
// header at offset 14).
void ip_local_out(Worker& w, L3& l3, rte_mbuf** pkts, uint16_t n);

// The neighbour table's probes, built on the control thread (arp.cc,
// ndisc.cc): false when the device, an address or an mbuf is missing.
bool arp_send(L3& l3, uint16_t dev, uint16_t op, uint32_t sip, const rte_ether_addr* tha_unicast,
              uint32_t tip);
bool ndisc_send_ns(L3& l3, uint16_t dev, const uint8_t* target, const rte_ether_addr* unicast);

}  // namespace sluice::l3
