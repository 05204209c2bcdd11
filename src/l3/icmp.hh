// ICMP (net/ipv4/icmp.c): the rate limits icmp_send applies and the error
// frame it builds, shared by the workers (icmp.cc; ipv4.hh for the worker's
// icmp_send / icmp_rcv) and the control thread (neigh.cc: host unreachable
// for what a FAILED neighbour had queued).
#pragma once

#include <array>
#include <cstdint>

struct rte_mbuf;
struct rte_mempool;

namespace sluice::l3 {

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

// The ICMP error about orig (IP header at offset 14) from src (host order):
// the original header and 8 bytes of its payload behind a zeroed Ethernet
// header; nullptr when mp is out of mbufs.
rte_mbuf* icmp_error(rte_mempool* mp, const rte_mbuf* orig, uint8_t type, uint8_t code,
                     uint32_t info, uint32_t src, uint16_t id);

}  // namespace sluice::l3
