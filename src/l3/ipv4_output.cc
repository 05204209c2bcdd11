// IPv4 output on the worker (net/ipv4/ip_output.c): ip_local_out for what
// L3 makes here ([ipv4/local_out], then the route by destination), and
// ip_output → ip_finish_output for everything routed (fragmentation with
// rte_ip_frag when larger than the device MTU), then neigh_output
// (output.cc: [ipv4/post_routing], the neighbour, the wire).
// Drop reasons: ip_outnoroutes, pkt_too_big, nomem. Counters: OutRequests,
// OutOctets, OutNoRoutes, FragOKs, FragFails, FragCreates.
#include <algorithm>

#include <rte_byteorder.h>
#include <rte_fib.h>
#include <rte_ip_frag.h>

#include "l3/ipv4.hh"

namespace sluice::l3 {

namespace {

// ip_fragment: m (larger than od's MTU) as fragments into o, or dropped.
// The counters are the ingress device's when there is one.
void ip_fragment(Ctx& c, Out4& o, rte_mbuf* m, uint32_t target, uint16_t dev, const Device& od) {
  rte_ipv4_hdr* ip = iph(m);
  MibBlock& fm = c.ws.m(meta(m).skb_iif < kMaxDevices ? meta(m).skb_iif : dev);
  if (rte_be_to_cpu_16(ip->fragment_offset) & kIpDf) {
    fm[Mib::FragFails]++;
    c.w.drop(m, dev, DropReason::pkt_too_big);
    return;
  }
  PktMeta md = meta(m);
  rte_pktmbuf_adj(m, sizeof(rte_ether_hdr));
  rte_mbuf* frags[64];
  int32_t nf = rte_ipv4_fragment_copy_nonseg_packet(m, frags, 64, od.mtu, m->pool);
  if (nf < 0) {
    fm[Mib::FragFails]++;
    c.w.drop(m, dev, DropReason::nomem);
    return;
  }
  fm[Mib::FragOKs]++;
  fm[Mib::FragCreates] += static_cast<uint64_t>(nf);
  c.w.free_later(m);
  for (int32_t i = 0; i < nf; i++) {
    rte_mbuf* f = frags[i];
    std::memcpy(rte_mbuf_to_priv(f), &md, sizeof md);
    auto* fip = rte_pktmbuf_mtod(f, rte_ipv4_hdr*);
    fip->hdr_checksum = 0;
    fip->hdr_checksum = rte_ipv4_cksum(fip);
    if (rte_pktmbuf_prepend(f, sizeof(rte_ether_hdr)) == nullptr) {
      c.w.drop(f, dev, DropReason::nomem);
      continue;
    }
    out_push(c, o, f, target, dev);
  }
}

// ip_local_out's routing for packets made here: by destination, then ip_output.
void route_out(Ctx& c, Out4& o, rte_mbuf** pkts, uint16_t n) {
  for (uint16_t base = 0; base < n; base += kOutMax) {
    uint16_t k = static_cast<uint16_t>(std::min<unsigned>(kOutMax, n - base));
    uint32_t dst[kOutMax];
    uint64_t nh[kOutMax];
    for (uint16_t i = 0; i < k; i++) dst[i] = rte_be_to_cpu_32(iph(pkts[base + i])->dst_addr);
    rte_fib_lookup_bulk(c.s->fib, dst, nh, k);
    for (uint16_t i = 0; i < k; i++) {
      rte_mbuf* m = pkts[base + i];
      if (nh[i] == 0 || nh[i] >= c.s->nh.size()) {
        uint16_t d = meta(m).skb_iif < kMaxDevices ? meta(m).skb_iif : 0;
        c.ws.m(d)[Mib::OutNoRoutes]++;
        c.w.drop(m, d, DropReason::ip_outnoroutes);
        continue;
      }
      const NextHop& h = c.s->nh[nh[i]];
      c.ws.m(h.dev)[Mib::OutRequests]++;
      ip_output(c, o, m, h.gw != 0 ? h.gw : dst[i], h.dev);
    }
  }
}

}  // namespace

void ip_output(Ctx& c, Out4& o, rte_mbuf* m, uint32_t target, uint16_t dev) {
  const Device* od = c.w.net.dev(dev);
  uint16_t tot = rte_be_to_cpu_16(iph(m)->total_length);
  c.ws.m(dev)[Mib::OutOctets] += tot;
  if (od != nullptr && tot > od->mtu) {
    ip_fragment(c, o, m, target, dev, *od);
    return;
  }
  out_push(c, o, m, target, dev);
}

// [ipv4/local_out] NF_INET_LOCAL_OUT (__ip_local_out; here before the
// route lookup, so no output device), then route_out.
void local_out(Ctx& c, Out4& o, rte_mbuf** pkts, uint16_t n) {
  if (c.l3.hooks == nullptr || c.l3.hooks->list(SLUICE_IPV4_LOCAL_OUT) == nullptr) {
    route_out(c, o, pkts, n);
    return;
  }
  for (uint16_t base = 0; base < n; base += kBurst) {
    uint16_t cnt = static_cast<uint16_t>(std::min<unsigned>(kBurst, n - base));
    hooks::State st{SLUICE_IPV4_LOCAL_OUT, static_cast<uint16_t>(c.w.id), kNoDev, kNoDev, nullptr};
    uint16_t kept = c.l3.hooks->run(c.w, st, pkts + base, cnt, kNoDev);
    if (kept != 0) route_out(c, o, pkts + base, kept);
  }
}

bool route_of(const Ctx& c, const rte_mbuf* m, uint16_t* dev, uint32_t* target) {
  uint32_t dst = rte_be_to_cpu_32(iph(m)->dst_addr);
  uint64_t nh = 0;
  rte_fib_lookup_bulk(c.s->fib, &dst, &nh, 1);
  if (nh == 0 || nh >= c.s->nh.size()) return false;
  const NextHop& h = c.s->nh[nh];
  *dev = h.dev;
  *target = h.gw != 0 ? h.gw : dst;
  return true;
}

void ok_local_out(Worker& w, const hooks::State&, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx4 c = ctx4(w, *static_cast<L3*>(l3));
  Out4 out;
  route_out(c, out, pkts, n);
  neigh_output(c, out);
}

// neigh_output after post_routing: the device the packet was routed to.
void ok_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx4 c = ctx4(w, *static_cast<L3*>(l3));
  Out4 o;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t dev;
    uint32_t target;
    if (!route_of(c, pkts[i], &dev, &target) || dev != st.out)
      target = rte_be_to_cpu_32(iph(pkts[i])->dst_addr);  // on-link on the original device
    o.pkts[o.n] = pkts[i];
    o.target[o.n] = target;
    o.dev[o.n++] = st.out;
  }
  neigh_resolve(c, o);
}

void ip_local_out(Worker& w, L3& l3, rte_mbuf** pkts, uint16_t n) {
  Ctx4 c = ctx4(w, l3);
  Out4 out;
  local_out(c, out, pkts, n);
  neigh_output(c, out);
}

}  // namespace sluice::l3
