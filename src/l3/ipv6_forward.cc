// ip6_forward (net/ipv6/ip6_output.c) on the worker: one rte_fib6 lookup for
// the burst; no route → ICMPv6 no route (Ip6InNoRoutes); pkt_type HOST
// only; hop limit ≤ 1 → time exceeded; Ip6OutForwDatagrams; larger than
// the egress MTU → packet too big (Ip6InTooBigErrors); hop limit − 1;
// [ipv6/forward] → neigh_output.
#include <arpa/inet.h>

#include <rte_fib6.h>

#include "l3/ipv6.hh"

namespace sluice::l3 {

namespace {

// ip6_forward's checks for one packet and its next hop nh, then the hop
// limit decrement. False: dropped (with its ICMPv6 error when one is due).
[[gnu::always_inline]] inline bool ip6_forward_one(Ctx& c, MibBlock& mib, uint16_t dev, rte_mbuf* m,
                                                   uint64_t nh, Out6& out) {
  Worker& w = c.w;
  rte_ipv6_hdr* ip = ip6h(m);
  meta(m).skb_iif = dev;
  if (c.s->fib6 == nullptr || nh == 0 || nh >= c.s->nh6.size()) {
    mib[Mib::Ip6InNoRoutes]++;
    icmp6_send(c, out, m, 1, 0, 0, dev);
    w.drop(m, dev, DropReason::ip_innoroutes);
    return false;
  }
  if (pkt_type(m) != PktType::host) {
    w.drop(m, dev, DropReason::ip_fwd_not_host);
    return false;
  }
  if (ip->hop_limits <= 1) {
    mib[Mib::Ip6InHdrErrors]++;
    icmp6_send(c, out, m, 3, 0, 0, dev);
    w.drop(m, dev, DropReason::ip_inhdr);
    return false;
  }
  // Counted here, as ip6_forward does in 6.x: before the MTU check and
  // the FORWARD hook, so a packet either refuses is forwarded for the MIB.
  mib[Mib::Ip6OutForwDatagrams]++;
  const Device* od = w.net.dev(c.s->nh6[nh].dev);
  if (od != nullptr && m->pkt_len - sizeof(rte_ether_hdr) > od->mtu) {
    mib[Mib::Ip6InTooBigErrors]++;
    icmp6_send(c, out, m, 2, 0, od->mtu, dev);
    w.drop(m, dev, DropReason::pkt_too_big);
    return false;
  }
  ip->hop_limits--;
  return true;
}

}  // namespace

void ip6_forward(Ctx& c, uint16_t dev, Fwd6Burst& f, Out6& out) {
  MibBlock& mib = c.ws.m(dev);
  uint64_t nh[kBurst];
  if (c.s->fib6 != nullptr) rte_fib6_lookup_bulk(c.s->fib6, f.dst, nh, f.n);
  Routed<Addr6> fo;
  for (uint16_t i = 0; i < f.n; i++) {
    if (traced(f.pkts[i])) [[unlikely]] {
      const uint64_t k = c.s->fib6 != nullptr ? nh[i] : 0;
      if (k == 0 || k >= c.s->nh6.size()) {
        trace_rec(c.w, f.pkts[i], "fib6_lookup", dev, "no route");
      } else if (is_zero6(c.s->nh6[k].gw)) {
        trace_rec(c.w, f.pkts[i], "fib6_lookup", dev, "route", c.s->nh6[k].dev,
                  "directly connected");
      } else {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, c.s->nh6[k].gw, a, sizeof a);
        trace_rec(c.w, f.pkts[i], "fib6_lookup", dev, "route", c.s->nh6[k].dev, "via %s", a);
      }
    }
    if (!ip6_forward_one(c, mib, dev, f.pkts[i], c.s->fib6 != nullptr ? nh[i] : 0, out)) continue;
    const NextHop6Ref& h = c.s->nh6[nh[i]];
    fo.pkts[fo.n] = f.pkts[i];
    std::memcpy(fo.target[fo.n].data(), is_zero6(h.gw) ? f.dst[i] : h.gw, 16);
    fo.dev[fo.n++] = h.dev;
  }
  // [ipv6/forward] NF_INET_FORWARD (in = dev, out = the route's device);
  // Ip6OutForwDatagrams was counted before it (ip6_forward_one).
  uint16_t idx[kBurst];
  const uint16_t kept = run_hook(c, SLUICE_IPV6_FORWARD, dev, fo.pkts, fo.n, fo.dev, idx);
  for (uint16_t i = 0; i < kept; i++)
    out_push(c, out, fo.pkts[i], fo.target[idx[i]], fo.dev[idx[i]]);
}

// ip6_forward_finish for packets a queue consumer accepted at
// [ipv6/forward], on the route of now.
void ok6_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx6(w, *static_cast<L3*>(l3));
  Out6 out;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t dev;
    uint8_t target[16];
    if (!route6_of(c, pkts[i], &dev, target)) {
      w.drop(pkts[i], st.in, DropReason::ip_outnoroutes);
      continue;
    }
    out_push(c, out, pkts[i], target, dev);  // Ip6OutForwDatagrams: before the hook
  }
  neigh_output(c, out);
}

}  // namespace sluice::l3
