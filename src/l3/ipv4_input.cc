// ip_rcv (net/ipv4/ip_input.c, route.c ip_route_input_slow): the protocol
// handler for 0x0800. ip_rcv_core checks every packet in Linux's order with
// Linux's counters, [ipv4/pre_routing] runs on what passed, and
// ip_rcv_finish routes the burst: martians dropped, broadcast and the local
// table (before the main table) to ip_local_deliver, the rest to ip_forward.
// Stages: ipv4.hh. Spec: ../shared/spec/linux-rx.md §6.1–6.2.
#include <rte_byteorder.h>
#include <rte_mbuf.h>

#include "core/netif.hh"
#include "l3/ipv4.hh"

namespace sluice::l3 {

namespace {

const StageId kStRouteInput = stage_register("ip-route-input", 430);

// The header checksum verifies (ip_fast_csum(iph, ihl) == 0). The common
// 20-byte header is summed as five 32-bit words: the one's-complement sum
// does not depend on the byte order, and 0xffff is its own byte swap.
inline bool hdr_csum_ok(const rte_ipv4_hdr* ip, unsigned hl) {
  if (hl != 20) return rte_raw_cksum(ip, hl) == 0xffff;
  uint32_t w[5];
  std::memcpy(w, ip, sizeof w);
  uint64_t sum = uint64_t(w[0]) + w[1] + w[2] + w[3] + w[4];
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffffffff) + (sum >> 32);
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return sum == 0xffff;
}

// Per-burst sums of the per-packet MIB counters (added once per burst).
struct RcvSums {
  uint64_t receives = 0, octets = 0, ecn[4] = {};
};

// ip_rcv_core for one packet: OTHERHOST (no MIB at all), a private copy if
// shared, the header checks with their counters, Ethernet padding trimmed.
// Returns the packet to go on with, nullptr when it was dropped.
[[gnu::always_inline]] inline rte_mbuf* ip_rcv_core(Worker& w, MibBlock& mib, DevCounters& dc,
                                                    uint16_t dev, rte_mbuf* m, RcvSums& sums) {
  if (pkt_type(m) == PktType::otherhost) {  // no MIB, not even InReceives
    dc.rx_otherhost_dropped++;
    w.drop(m, dev, DropReason::otherhost);
    return nullptr;
  }
  uint32_t len = m->pkt_len - sizeof(rte_ether_hdr);
  sums.receives++;
  sums.octets += len;
  m = unshare(w, m);
  if (m == nullptr) {
    mib[Mib::InDiscards]++;
    w.drops[dev][static_cast<unsigned>(DropReason::nomem)]++;
    return nullptr;
  }
  if (len < sizeof(rte_ipv4_hdr) || m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) {
    mib[Mib::InHdrErrors]++;
    w.drop(m, dev, DropReason::ip_inhdr);
    return nullptr;
  }
  rte_ipv4_hdr* ip = iph(m);
  unsigned ihl = ip->version_ihl & 0xf;
  if (ihl < 5 || (ip->version_ihl >> 4) != 4) {
    mib[Mib::InHdrErrors]++;
    w.drop(m, dev, DropReason::ip_inhdr);
    return nullptr;
  }
  sums.ecn[ip->type_of_service & 3]++;
  unsigned hl = ihl * 4;
  if (len < hl || m->data_len < sizeof(rte_ether_hdr) + hl) {
    mib[Mib::InHdrErrors]++;
    w.drop(m, dev, DropReason::ip_inhdr);
    return nullptr;
  }
  uint64_t ck_flags = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
  if (ck_flags == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
      (ck_flags != RTE_MBUF_F_RX_IP_CKSUM_GOOD && !hdr_csum_ok(ip, hl))) {
    mib[Mib::InCsumErrors]++;
    mib[Mib::InHdrErrors]++;
    w.drop(m, dev, DropReason::ip_csum);
    return nullptr;
  }
  uint32_t tot = rte_be_to_cpu_16(ip->total_length);
  if (len < tot) {
    mib[Mib::InTruncatedPkts]++;
    w.drop(m, dev, DropReason::pkt_too_small);
    return nullptr;
  }
  if (tot < hl) {
    mib[Mib::InHdrErrors]++;
    w.drop(m, dev, DropReason::ip_inhdr);
    return nullptr;
  }
  if (len > tot && rte_pktmbuf_trim(m, static_cast<uint16_t>(len - tot)) != 0) {  // padding
    mib[Mib::InDiscards]++;
    w.drop(m, dev, DropReason::nomem);
    return nullptr;
  }
  return m;
}

// ip_route_input_slow for one packet: martian sources and destinations,
// limited broadcast, multicast (only all-hosts is joined), then the local
// table; the rest goes to the main table (ip_forward).
[[gnu::always_inline]] inline void ip_route_input(const Ctx4& c, MibBlock& mib, uint16_t dev,
                                                  rte_mbuf* m, FwdBurst& fwd, LocalBurst& loc) {
  auto local = [&](uint16_t owner, RtType rt) {
    loc.pkts[loc.n] = m;
    loc.owner[loc.n] = owner;
    loc.rt[loc.n++] = rt;
  };
  const rte_ipv4_hdr* ip = iph(m);
  uint32_t src = rte_be_to_cpu_32(ip->src_addr);
  uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
  if (is_multicast(src) || is_lbcast(src)) {
    c.w.drop(m, dev, DropReason::ip_invalid_source);
    return;
  }
  if (is_lbcast(dst) || (src == 0 && dst == 0)) {
    mib[Mib::InBcastPkts]++;
    SLUICE_TRACE(c.w, m, "ip_route_input", dev, "limited broadcast: local delivery");
    local(dev, RtType::broadcast);
    return;
  }
  if (is_zeronet(src) || is_loopback(src)) {
    c.w.drop(m, dev, DropReason::ip_invalid_source);
    return;
  }
  if (is_zeronet(dst) || is_loopback(dst)) {
    c.w.drop(m, dev, DropReason::ip_invalid_dest);
    return;
  }
  if (is_multicast(dst)) {
    mib[Mib::InMcastPkts]++;
    if (dst == 0xe0000001u) {  // all-hosts: always joined
      SLUICE_TRACE(c.w, m, "ip_route_input", dev, "all-hosts multicast: local delivery");
      local(dev, RtType::broadcast);
    } else {  // no group joined, no multicast routing
      c.w.drop(m, dev, DropReason::ip_invalid_dest);
    }
    return;
  }
  if (const LocalSlot* ls = c.s->find_local(dst)) {  // the local table comes first
    if (ls->type == RtType::broadcast) mib[Mib::InBcastPkts]++;
    SLUICE_TRACE(c.w, m, "ip_route_input", dev,
                 ls->type == RtType::broadcast ? "local table: broadcast" : "local table: local",
                 ls->dev, "%s", Ip4Text(dst).s);
    local(ls->dev, ls->type);
    return;
  }
  fwd.pkts[fwd.n] = m;
  fwd.dst[fwd.n++] = dst;
}

// ip_rcv_finish: the input route, then ip_forward / ip_error and
// ip_local_deliver, then output (what they made, what they forwarded). Also
// the okfn of ipv4/pre_routing for packets a queue consumer accepted.
void ip_rcv_finish(Ctx4& c, uint16_t dev, rte_mbuf** pre, uint16_t npre) {
  MibBlock& mib = c.ws.m(dev);
  FwdBurst fwd;
  LocalBurst loc;
  {
    StageScope scope(c.w.runtime, kStRouteInput, npre);
    for (uint16_t i = 0; i < npre; i++) ip_route_input(c, mib, dev, pre[i], fwd, loc);
  }
  // The forward decision's record, once per burst out of the loop above.
  SLUICE_TRACE_EACH(c.w, fwd.pkts, fwd.n, i, "ip_route_input", dev, "not local: forward", kNoDev,
                    "to %s", Ip4Text(fwd.dst[i]).s);
  Out4 out;    // leaving through ip_output
  PktVec gen;  // made here (ICMP), for ip_local_out
  if (fwd.n != 0) ip_forward(c, dev, fwd, out, gen);
  if (loc.n != 0) ip_local_deliver(c, dev, loc, gen);
  if (gen.n != 0) local_out(c, out, gen.pkts, gen.n);
  neigh_output(c, out);
}

void ok_pre_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx4 c = ctx4(w, *static_cast<L3*>(l3));
  ip_rcv_finish(c, st.in, pkts, n);
}

}  // namespace

void ip_rcv(Worker& w, void* vctx, rte_mbuf** pkts, uint16_t n) {
  L3& l3 = *static_cast<L3*>(vctx);
  Ctx4 c = ctx4(w, l3);
  const uint16_t dev = meta(pkts[0]).dev;
  if (const Device* in = w.net.dev(dev); in != nullptr && in->kind == DevKind::punt) {
    ip_from_host(c, pkts, n, dev);
    return;
  }
  MibBlock& mib = c.ws.m(dev);
  DevCounters& dc = w.c(dev);
  rte_mbuf* pre[kBurst];  // valid, for PRE_ROUTING
  uint16_t npre = 0;
  RcvSums sums;
  for (uint16_t i = 0; i < n; i++) {
    if (i + 2 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 2], void*));
    if (rte_mbuf* m = ip_rcv_core(w, mib, dc, dev, pkts[i], sums)) pre[npre++] = m;
  }
  mib[Mib::InReceives] += sums.receives;
  mib[Mib::InOctets] += sums.octets;
  mib[Mib::InNoECTPkts] += sums.ecn[0];
  mib[Mib::InECT1Pkts] += sums.ecn[1];
  mib[Mib::InECT0Pkts] += sums.ecn[2];
  mib[Mib::InCEPkts] += sums.ecn[3];

  // [ipv4/pre_routing] NF_INET_PRE_ROUTING (in = dev), after validation.
  if (npre != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV4_PRE_ROUTING, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
    npre = l3.hooks->run(w, st, pre, npre, dev);
  }
  if (npre != 0) ip_rcv_finish(c, dev, pre, npre);
}

void ipv4_set_okfns(L3& l3) {
  if (l3.hooks == nullptr) return;
  l3.hooks->set_okfns(SLUICE_IPV4_PRE_ROUTING,
                      {ok_pre_routing, ok_local_in, ok_forward, ok_local_out, ok_post_routing},
                      &l3);
}

}  // namespace sluice::l3
