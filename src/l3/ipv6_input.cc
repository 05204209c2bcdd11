// ipv6_rcv (net/ipv6/ip6_input.c): the protocol handler for 0x86dd.
// OTHERHOST dropped, Ip6InReceives, version and length checks, padding
// trimmed; [ipv6/pre_routing]; ip6_rcv_finish: multicast sources refused,
// groups not joined ignored, own addresses delivered (ipv6_local.cc), the
// rest forwarded (ipv6_forward.cc). Stages: ipv6.hh.
#include <rte_byteorder.h>

#include "l3/ipv6.hh"

namespace sluice::l3 {

namespace {

// ipv6_rcv's checks for one packet. Returns the packet to go on with (a
// private copy if it was shared), nullptr when it was dropped or consumed.
[[gnu::always_inline]] inline rte_mbuf* ip6_rcv_core(Worker& w, MibBlock& mib, const Device& d,
                                                     uint16_t dev, rte_mbuf* m) {
  if (pkt_type(m) == PktType::otherhost) {
    w.c(dev).rx_otherhost_dropped++;
    w.drop(m, dev, DropReason::otherhost);
    return nullptr;
  }
  if (d.kind == DevKind::punt) {  // the TAP's kernel side has IPv6 off
    w.free_later(m);
    return nullptr;
  }
  mib[Mib::Ip6InReceives]++;
  m = unshare(w, m);
  if (m == nullptr) return nullptr;
  uint32_t len = m->pkt_len - sizeof(rte_ether_hdr);
  if (len < 40 || m->data_len < sizeof(rte_ether_hdr) + 40 ||
      (rte_be_to_cpu_32(ip6h(m)->vtc_flow) >> 28) != 6) {
    mib[Mib::Ip6InHdrErrors]++;
    w.drop(m, dev, DropReason::ip_inhdr);
    return nullptr;
  }
  uint32_t plen = rte_be_to_cpu_16(ip6h(m)->payload_len);
  if (40 + plen > len) {
    mib[Mib::Ip6InTruncatedPkts]++;
    w.drop(m, dev, DropReason::pkt_too_small);
    return nullptr;
  }
  if (len > 40 + plen) rte_pktmbuf_trim(m, static_cast<uint16_t>(len - 40 - plen));
  // ::1 as source or destination only on lo (ipv6_rcv: "not on a loopback device").
  if (d.kind != DevKind::loopback) {
    static const uint8_t kLoop6[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    const rte_ipv6_hdr* ip = ip6h(m);
    const bool src = std::memcmp(&ip->src_addr, kLoop6, 16) == 0;
    if (src || std::memcmp(&ip->dst_addr, kLoop6, 16) == 0) {
      mib[Mib::Ip6InAddrErrors]++;
      w.drop(m, dev, src ? DropReason::ip_invalid_source : DropReason::ip_invalid_dest);
      return nullptr;
    }
  }
  return m;
}

// ip6_rcv_finish: local (ip6_input_finish, per packet in order) or
// ip6_forward (the rest, burst-wise), then output. Also the okfn of
// ipv6/pre_routing.
void ip6_rcv_finish(Ctx& c, uint16_t dev, rte_mbuf** pre, uint16_t npre) {
  MibBlock& mib = c.ws.m(dev);
  Out6 out;
  Fwd6Burst fwd;
  for (uint16_t pi = 0; pi < npre; pi++) {
    rte_mbuf* m = pre[pi];
    const rte_ipv6_hdr* ip = ip6h(m);
    const uint8_t* src = reinterpret_cast<const uint8_t*>(&ip->src_addr);
    const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip->dst_addr);
    if (is_mcast6(src)) {
      mib[Mib::Ip6InHdrErrors]++;
      c.w.drop(m, dev, DropReason::ip_invalid_source);
      continue;
    }
    const Snapshot::Local6* l = c.s->find_local6(dst, dev);
    if (is_mcast6(dst)) {
      mib[Mib::Ip6InMcastPkts]++;
      if (l == nullptr) {  // a group we did not join
        SLUICE_TRACE(c.w, m, "ip6_input", dev, "multicast group not joined");
        c.w.free_later(m);
        continue;
      }
    }
    if (l == nullptr) {
      SLUICE_TRACE(c.w, m, "ip6_route_input", dev, "not local: forward");
      fwd.pkts[fwd.n] = m;
      std::memcpy(fwd.dst[fwd.n++], dst, 16);
      continue;
    }
    SLUICE_TRACE(c.w, m, "ip6_route_input", dev,
                 is_mcast6(dst) ? "joined multicast group: local delivery" : "local address");
    ip6_local_in(c, out, m, *l, dev);
  }
  if (fwd.n != 0) ip6_forward(c, dev, fwd, out);
  neigh_output(c, out);
}

void ok6_pre_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx6(w, *static_cast<L3*>(l3));
  ip6_rcv_finish(c, st.in, pkts, n);
}

}  // namespace

void ipv6_rcv(Worker& w, void* vctx, rte_mbuf** pkts, uint16_t n) {
  L3& l3 = *static_cast<L3*>(vctx);
  Ctx c = ctx6(w, l3);
  const uint16_t dev = meta(pkts[0]).dev;
  const Device& d = *w.net.dev(dev);
  MibBlock& mib = c.ws.m(dev);
  rte_mbuf* pre[kBurst];
  uint16_t npre = 0;
  for (uint16_t i = 0; i < n; i++)
    if (rte_mbuf* m = ip6_rcv_core(w, mib, d, dev, pkts[i])) pre[npre++] = m;

  // [ipv6/pre_routing] NF_INET_PRE_ROUTING (in = dev), after validation.
  if (npre != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV6_PRE_ROUTING, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
    npre = l3.hooks->run(w, st, pre, npre, dev);
  }
  if (npre != 0) ip6_rcv_finish(c, dev, pre, npre);
}

void ipv6_set_okfns(L3& l3) {
  if (l3.hooks == nullptr) return;
  l3.hooks->set_okfns(SLUICE_IPV6_PRE_ROUTING,
                      {ok6_pre_routing, ok6_local_in, ok6_forward, ok6_local_out, ok6_post_routing},
                      &l3);
}

}  // namespace sluice::l3
