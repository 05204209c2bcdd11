// ICMPv6 (net/ipv6/icmp.c) on the worker: icmp6_send — errors quote as much
// of the packet as fits in the minimum MTU (1280 bytes) and share the ICMP
// rate limits — and echo replies.
// Counters: Icmp6OutMsgs, Icmp6OutDestUnreachs, Icmp6OutPktTooBigs,
// Icmp6OutTimeExcds, Icmp6OutEchoReplies.
#include <algorithm>

#include <rte_byteorder.h>

#include "l3/ipv6.hh"

namespace sluice::l3 {

void icmp6_csum(rte_ipv6_hdr* ip, uint8_t* icmp) {
  icmp[2] = icmp[3] = 0;
  uint16_t c = rte_ipv6_udptcp_cksum(ip, icmp);
  std::memcpy(icmp + 2, &c, 2);
}

void icmp6_send(Ctx& c, Out6& o, const rte_mbuf* m, uint8_t type, uint8_t code, uint32_t info,
                uint16_t in) {
  const rte_ipv6_hdr* oip = ip6h(m);
  const uint8_t* osrc = reinterpret_cast<const uint8_t*>(&oip->src_addr);
  if (pkt_type(m) != PktType::host || is_mcast6(osrc) || is_zero6(osrc)) return;
  if (oip->proto == kProtoIcmp6 && m->data_len > sizeof(rte_ether_hdr) + 40 &&
      *(reinterpret_cast<const uint8_t*>(oip) + 40) < 128)
    return;  // never about an ICMPv6 error
  if (!c.ws.rl.global_allow(c.l3.now_ms()) ||
      !c.ws.rl.xrlim_allow(
          uint32_t(osrc[12]) << 24 | uint32_t(osrc[13]) << 16 | uint32_t(osrc[14]) << 8 | osrc[15],
          c.l3.now_ms()))
    return;
  const auto& from = c.s->dev_addr6[in];
  if (is_zero6(from.data())) return;
  unsigned quote = std::min<unsigned>(m->pkt_len - sizeof(rte_ether_hdr), 1280 - 48);
  rte_mbuf* e = rte_pktmbuf_alloc(m->pool);
  if (e == nullptr) return;
  auto* p =
      reinterpret_cast<uint8_t*>(rte_pktmbuf_append(e, static_cast<uint16_t>(14 + 40 + 8 + quote)));
  if (p == nullptr) {
    rte_pktmbuf_free(e);
    return;
  }
  std::memset(rte_mbuf_to_priv(e), 0, sizeof(PktMeta));
  std::memset(p, 0, 14 + 40 + 8);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
  ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
  ip->payload_len = rte_cpu_to_be_16(static_cast<uint16_t>(8 + quote));
  ip->proto = kProtoIcmp6;
  ip->hop_limits = 64;
  std::memcpy(&ip->src_addr, from.data(), 16);
  std::memcpy(&ip->dst_addr, osrc, 16);
  uint8_t* icmp = p + 14 + 40;
  icmp[0] = type;
  icmp[1] = code;
  uint32_t be = rte_cpu_to_be_32(info);
  std::memcpy(icmp + 4, &be, 4);
  const void* q = rte_pktmbuf_read(m, sizeof(rte_ether_hdr), quote, icmp + 8);
  if (q != icmp + 8) std::memcpy(icmp + 8, q, quote);
  icmp6_csum(ip, icmp);
  MibBlock& mib = c.ws.m(in);
  mib[Mib::Icmp6OutMsgs]++;
  if (type == 1) mib[Mib::Icmp6OutDestUnreachs]++;
  if (type == 2) mib[Mib::Icmp6OutPktTooBigs]++;
  if (type == 3) mib[Mib::Icmp6OutTimeExcds]++;
  meta(e).skb_iif = in;
  local_out6(c, o, e);
}

void icmp6_echo_reply(Ctx& c, Out6& o, rte_mbuf* m, const Snapshot::Local6& l, uint16_t dev) {
  rte_ipv6_hdr* ip = ip6h(m);
  uint8_t* icmp = reinterpret_cast<uint8_t*>(ip) + 40;
  uint8_t from[16];  // a group's reply comes from the device's address
  if (l.mcast)
    std::memcpy(from, c.s->dev_addr6[dev].data(), 16);
  else
    std::memcpy(from, &ip->dst_addr, 16);
  std::memcpy(&ip->dst_addr, &ip->src_addr, 16);
  std::memcpy(&ip->src_addr, from, 16);
  ip->hop_limits = 64;
  icmp[0] = 129;
  icmp6_csum(ip, icmp);
  MibBlock& mib = c.ws.m(dev);
  mib[Mib::Icmp6OutMsgs]++;
  mib[Mib::Icmp6OutEchoReplies]++;
  local_out6(c, o, m);
}

}  // namespace sluice::l3
