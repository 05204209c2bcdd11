// The output half both families share (ip_finish_output2 /
// ip6_finish_output2 → neigh_output → dev_queue_xmit): a burst of routed
// packets, each with the address to resolve and its device, goes through
// [ipv4|ipv6/post_routing], the neighbour table (the worker's NeighCache and
// one bulk lookup for IPv4; one bulk lookup and the 33:33 multicast mapping
// for IPv6), and leaves grouped by device. What has no valid neighbour goes
// to the control thread (WorkerL3::pending), which queues and resolves.
// Drop reasons: neigh_queuefull (the pending ring is full).
// Internal to src/l3.
#pragma once

#include <cstdint>
#include <cstring>

#include "l3/datapath.hh"
#include "l3/fib.hh"

namespace sluice::l3 {

// Packets leaving through ip_output / ip6_output: the packet, the address to
// resolve (IPv4 host order, or IPv6), the device.
template <class A>
struct OutVec {
  uint16_t n = 0;
  rte_mbuf* pkts[kOutMax];
  A target[kOutMax];
  uint16_t dev[kOutMax];
};
using Out4 = OutVec<uint32_t>;
using Out6 = OutVec<Addr6>;

// Packets ip_forward / ip6_forward let through, for [forward]: where each goes.
template <class A>
struct Routed {
  uint16_t n = 0;
  rte_mbuf* pkts[kBurst];
  A target[kBurst];
  uint16_t dev[kBurst];
};

// neigh_output: [post_routing] (out = each packet's device), then
// neigh_resolve. Empties o.
void neigh_output(Ctx& c, Out4& o);
void neigh_output(Ctx& c, Out6& o);
// After post_routing (also the okfns of post_routing): the neighbour, the
// Ethernet header, the wire. Empties o.
void neigh_resolve(Ctx& c, Out4& o);
void neigh_resolve(Ctx& c, Out6& o);

template <class A>
inline void out_push(Ctx& c, OutVec<A>& o, rte_mbuf* m, const A& target, uint16_t dev) {
  if (o.n == kOutMax) neigh_output(c, o);
  o.pkts[o.n] = m;
  o.target[o.n] = target;
  o.dev[o.n] = dev;
  o.n++;
}
inline void out_push(Ctx& c, Out6& o, rte_mbuf* m, const uint8_t* target, uint16_t dev) {
  Addr6 t;
  std::memcpy(t.data(), target, 16);
  out_push(c, o, m, t, dev);
}

// Packets ready for the wire (meta.dev set, Ethernet header written) to
// dev_queue_xmit, grouped by device in order, at most kOutMax.
void xmit_grouped(Worker& w, rte_mbuf** pkts, uint16_t n);

}  // namespace sluice::l3
