// IPv6 on the worker (net/ipv6/ip6_input.c, ip6_output.c, icmp.c, ndisc.c),
// the subset this build does, shared by its stages (internal to src/l3):
//
//   ipv6_input.cc   ipv6_rcv checks → [pre_routing] → ip6_rcv_finish: own
//                   addresses (global, the EUI-64 link-local, the groups a
//                   router joins) or ip6_forward
//   ipv6_local.cc   [local_in] → ip6_input_finish: ICMPv6 (echo, ND) or no socket
//   ipv6_forward.cc ip6_forward over connected prefixes and static routes
//                   (rte_fib6, fib.hh): hop limit and packet-too-big errors
//   ipv6_output.cc  ip6_local_out ([local_out], routing) → neigh_output (output.cc)
//   icmp6.cc        icmp6_send, echo replies
//   ndisc.cc        NS answered with NA here; NS/NA learned through the same
//                   NUD state machine as ARP on the control thread; NS probes
#pragma once

#include <cstdint>
#include <cstring>

#include <rte_ip.h>

#include "hooks/hooks.hh"
#include "l3/datapath.hh"
#include "l3/l3.hh"
#include "l3/output.hh"

namespace sluice::l3 {

inline rte_ipv6_hdr* ip6h(rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, sizeof(rte_ether_hdr));
}
inline const rte_ipv6_hdr* ip6h(const rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, const rte_ipv6_hdr*, sizeof(rte_ether_hdr));
}
inline bool is_mcast6(const uint8_t* a) {
  return a[0] == 0xff;
}
inline bool is_linklocal6(const uint8_t* a) {
  return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}
inline bool is_zero6(const uint8_t* a) {
  for (int i = 0; i < 16; i++)
    if (a[i] != 0) return false;
  return true;
}
// ipv6_eth_mc_map: 33:33 and the group's low 32 bits.
inline void mcast_mac(const uint8_t* a, rte_ether_addr* mac) {
  mac->addr_bytes[0] = 0x33;
  mac->addr_bytes[1] = 0x33;
  std::memcpy(mac->addr_bytes + 2, a + 12, 4);
}

inline Ctx ctx6(Worker& w, L3& l3) {
  return Ctx{w, l3, l3.ws(w.id), l3.snap()};
}

// ip6_rcv_finish's packets to forward, with their destinations.
struct Fwd6Burst {
  uint16_t n = 0;
  rte_mbuf* pkts[kBurst];
  uint8_t dst[kBurst][16];
};

// ---- the stages (ctx for the okfns: the L3) ----

// ipv6_local.cc: [ipv6/local_in] (per packet), then ip6_input_finish for a
// packet to our address or group l; replies into out.
void ip6_local_in(Ctx& c, Out6& out, rte_mbuf* m, const Snapshot::Local6& l, uint16_t dev);
void ok6_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);

// ipv6_forward.cc: ip6_forward for f; errors and what passed [forward] into out.
void ip6_forward(Ctx& c, uint16_t dev, Fwd6Burst& f, Out6& out);
void ok6_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);

// ipv6_output.cc
// ip6_local_out for one packet made here: [ipv6/local_out] (per packet),
// then route_out6.
void local_out6(Ctx& c, Out6& o, rte_mbuf* m);
// ip6_route_output: link-local and multicast destinations leave through the
// device they came from (skb_iif); the rest are routed.
void route_out6(Ctx& c, Out6& o, rte_mbuf* m);
// The route of now for m's destination: device and address to resolve.
bool route6_of(const Ctx& c, const rte_mbuf* m, uint16_t* dev, uint8_t* target);
void ok6_local_out(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);
void ok6_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3);

// icmp6.cc
// icmp6_send: an error about m (which stays the caller's), quoting as much of
// it as fits in the minimum MTU, through local_out6.
void icmp6_send(Ctx& c, Out6& o, const rte_mbuf* m, uint8_t type, uint8_t code, uint32_t info,
                uint16_t in);
// An echo request to l becomes the reply, in place, through local_out6.
void icmp6_echo_reply(Ctx& c, Out6& o, rte_mbuf* m, const Snapshot::Local6& l, uint16_t dev);
// The ICMPv6 checksum (with the pseudo header) of the message at icmp.
void icmp6_csum(rte_ipv6_hdr* ip, uint8_t* icmp);

// ndisc.cc: ndisc_recv_ns (answered in place on d) and ndisc_recv_na.
void ndisc_rcv_ns(Ctx& c, rte_mbuf* m, uint16_t dev, const Device& d);
void ndisc_rcv_na(Ctx& c, rte_mbuf* m, uint16_t dev);

}  // namespace sluice::l3
