// Local IPv6 delivery (ip6_input_finish, net/ipv6/ip6_input.c): ICMPv6 is
// checked and handled here — echo answered (icmp6.cc), neighbour discovery
// (ndisc.cc); UDP and TCP get ICMPv6 port unreachable (no sockets), other
// next headers parameter problem.
// Drop reasons: no_socket, ip_noproto, icmp_csum, ip_invalid_dest (okfn).
#include <rte_byteorder.h>

#include "l3/ipv6.hh"

namespace sluice::l3 {

namespace {

// ip6_input_finish → ICMPv6 (echo, ND) or no socket, for one local packet.
void ip6_local_deliver(Ctx& c, Out6& out, rte_mbuf* m, const Snapshot::Local6& l, uint16_t dev) {
  Worker& w = c.w;
  MibBlock& mib = c.ws.m(dev);
  rte_ipv6_hdr* ip = ip6h(m);
  uint32_t plen = rte_be_to_cpu_16(ip->payload_len);
  if (ip->proto != kProtoIcmp6) {
    const bool l4 = ip->proto == kProtoUdp || ip->proto == kProtoTcp;
    mib[Mib::Ip6InDelivers]++;
    if (!l.mcast) icmp6_send(c, out, m, l4 ? 1 : 4, l4 ? 4 : 1, 6, dev);
    w.drop(m, dev, l4 ? DropReason::no_socket : DropReason::ip_noproto);
    return;
  }
  mib[Mib::Ip6InDelivers]++;
  mib[Mib::Icmp6InMsgs]++;
  uint8_t* icmp = reinterpret_cast<uint8_t*>(ip) + 40;
  if (plen < 8 || rte_ipv6_udptcp_cksum_verify(ip, icmp) != 0) {
    mib[Mib::Icmp6InErrors]++;
    w.drop(m, dev, DropReason::icmp_csum);
    return;
  }
  switch (icmp[0]) {
    case 128:  // echo request (icmpv6_echo_ignore_multicast = 0: answered)
      mib[Mib::Icmp6InEchos]++;
      if (traced(m)) [[unlikely]] {  // the request is delivered; its reply is traced on its own
        trace_fate(w, m, TraceFate::delivered, dev, "icmpv6_rcv", "echo request answered");
        trace_fork(w, m, m);
        trace_rec(w, m, "icmpv6_echo_reply", dev, "echo reply");
      }
      icmp6_echo_reply(c, out, m, l, dev);
      break;
    case 135:
      mib[Mib::Icmp6InNeighborSolicits]++;
      SLUICE_TRACE_FATE(w, m, TraceFate::delivered, dev, "ndisc_rcv", "neighbour solicitation");
      ndisc_rcv_ns(c, m, dev, *w.net.dev(dev));
      break;
    case 136:
      mib[Mib::Icmp6InNeighborAdvertisements]++;
      SLUICE_TRACE_FATE(w, m, TraceFate::delivered, dev, "ndisc_rcv", "neighbour advertisement");
      ndisc_rcv_na(c, m, dev);
      break;
    default:
      w.free_later(m);
      break;
  }
}

}  // namespace

void ip6_local_in(Ctx& c, Out6& out, rte_mbuf* m, const Snapshot::Local6& l, uint16_t dev) {
  meta(m).skb_iif = dev;
  // [ipv6/local_in] NF_INET_LOCAL_IN (in = dev), per packet here.
  if (c.l3.hooks != nullptr && c.l3.hooks->list(SLUICE_IPV6_LOCAL_IN) != nullptr) {
    hooks::State st{SLUICE_IPV6_LOCAL_IN, static_cast<uint16_t>(c.w.id), dev, kNoDev, nullptr};
    rte_mbuf* v[kBurst] = {m};
    if (c.l3.hooks->run(c.w, st, v, 1, dev) == 0) return;
    m = v[0];
  }
  ip6_local_deliver(c, out, m, l, dev);
}

// ip6_input_finish with the local addresses of now.
void ok6_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx6(w, *static_cast<L3*>(l3));
  Out6 out;
  for (uint16_t i = 0; i < n; i++) {
    const Snapshot::Local6* l =
        c.s->find_local6(reinterpret_cast<const uint8_t*>(&ip6h(pkts[i])->dst_addr), st.in);
    if (l == nullptr) {  // the address went away while the packet was queued
      w.drop(pkts[i], st.in, DropReason::ip_invalid_dest);
      continue;
    }
    ip6_local_deliver(c, out, pkts[i], *l, st.in);
  }
  neigh_output(c, out);
}

}  // namespace sluice::l3
