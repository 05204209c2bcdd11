// IPv4 on the worker, shared by its stages (internal to src/l3):
//
//   ipv4_input.cc   ip_rcv → ip_rcv_core (checks) → [pre_routing] →
//                   ip_rcv_finish: the input route (martians, local table, FIB)
//   ipv4_forward.cc ip_forward / ip_error → [forward] → ip_output
//   ipv4_local.cc   ip_local_deliver → [local_in] → ICMP, punt TAP, or no
//                   socket (port/protocol unreachable, TCP reset)
//   ipv4_output.cc  ip_local_out → [local_out] → route → ip_output
//                   (fragmentation) → neigh_output (output.cc)
//   icmp.cc         icmp_send, icmp_rcv (echo)
//   punt.cc         what the host kernel sends out of a punt TAP
//
// Burst-wise: every stage runs over the packets of one protocol-handler call;
// FIB lookups are one rte_fib_lookup_bulk, neighbour lookups one
// rte_hash_lookup_bulk_data. Nothing allocates except mbufs for ICMP errors
// and fragments. Spec: ../shared/spec/linux-rx.md §6.1–6.4.
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_ip.h>

#include "hooks/hooks.hh"
#include "l3/datapath.hh"
#include "l3/l3.hh"
#include "l3/output.hh"

namespace sluice::l3 {

inline constexpr uint16_t kIpDf = 0x4000;
inline constexpr uint16_t kIpMf = 0x2000;
inline constexpr uint16_t kIpOffMask = 0x1fff;

inline rte_ipv4_hdr* iph(rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
}
inline const rte_ipv4_hdr* iph(const rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
}
inline bool is_multicast(uint32_t a) {
  return (a >> 28) == 14;
}
inline bool is_lbcast(uint32_t a) {
  return a == 0xffffffffu;
}
inline bool is_zeronet(uint32_t a) {
  return (a >> 24) == 0;
}
inline bool is_loopback(uint32_t a) {
  return (a >> 24) == 127;
}

// IPv4 stages also need the clock (ICMP rate limits), read once per call.
struct Ctx4 : Ctx {
  uint64_t now;
};
inline Ctx4 ctx4(Worker& w, L3& l3) {
  return Ctx4{{w, l3, l3.ws(w.id), l3.snap()}, l3.now_ms()};
}

// ip_rcv_finish's results: packets to forward (with their destination, host
// order) and packets for us (route type, the device owning the address).
struct FwdBurst {
  uint16_t n = 0;
  rte_mbuf* pkts[kBurst];
  uint32_t dst[kBurst];
};
struct LocalBurst {
  uint16_t n = 0;
  rte_mbuf* pkts[kBurst];
  RtType rt[kBurst];
  uint16_t owner[kBurst];  // its punt TAP, if any, gets what is not answered here
};

// ---- the stages (ctx for the okfns: the L3) ----

// ipv4_forward.cc: ip_forward for f (routes looked up here), ICMP errors
// into gen, what passed [forward] into out.
void ip_forward(Ctx4& c, uint16_t dev, FwdBurst& f, Out4& out, PktVec& gen);
void ok_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);

// ipv4_local.cc: ip_local_deliver for l; replies into gen, the host's
// packets straight to the punt TAPs.
void ip_local_deliver(Ctx4& c, uint16_t dev, const LocalBurst& l, PktVec& gen);
void ok_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);

// ipv4_output.cc
// ip_output → ip_finish_output: fragmentation when larger than the device
// MTU (DF packets were refused before), then into o for neighbour output.
void ip_output(Ctx& c, Out4& o, rte_mbuf* m, uint32_t target, uint16_t dev);
// ip_local_out for packets made here: [local_out], route by destination, ip_output.
void local_out(Ctx& c, Out4& o, rte_mbuf** pkts, uint16_t n);
// The route of now for m's destination: (device, address to resolve), or
// false. A queued packet may have waited across a route change.
bool route_of(const Ctx& c, const rte_mbuf* m, uint16_t* dev, uint32_t* target);
void ok_local_out(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);
void ok_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);

// icmp.cc
// icmp_send: an error about m (which stays the caller's), built here, into
// gen for ip_local_out; via_ip_error adds ip_error's own rate limit.
void icmp_send(Ctx4& c, PktVec& gen, const rte_mbuf* m, uint8_t type, uint8_t code, uint32_t info,
               uint16_t in_dev, bool via_ip_error = false);
// icmp_rcv for a local packet of route type rt: an echo request becomes the
// reply, in place, in gen; the rest is counted and consumed.
void icmp_rcv(Ctx4& c, PktVec& gen, rte_mbuf* m, RtType rt, uint16_t dev);

// punt.cc: what the host kernel sent out of punt TAP dev (locally generated).
void ip_from_host(Ctx4& c, rte_mbuf** pkts, uint16_t n, uint16_t dev);

}  // namespace sluice::l3
