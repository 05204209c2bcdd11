// IPv6 output on the worker (net/ipv6/ip6_output.c, route.c): ip6_local_out
// for what L3 makes here ([ipv6/local_out], then ip6_route_output), and the
// okfns of local_out and post_routing; neigh_output is output.cc's.
// Drop reasons: ip_outnoroutes. Counters: Ip6OutRequests.
#include <rte_fib6.h>

#include "l3/ipv6.hh"

namespace sluice::l3 {

namespace {
// The main table's next hop for dst, or nullptr (no route, IPv6 off).
const NextHop6Ref* fib6_lookup(const Ctx& c, const uint8_t* dst) {
  uint8_t ips[1][16];
  std::memcpy(ips[0], dst, 16);
  uint64_t nh = 0;
  if (c.s->fib6 != nullptr) rte_fib6_lookup_bulk(c.s->fib6, ips, &nh, 1);
  if (nh == 0 || nh >= c.s->nh6.size()) return nullptr;
  return &c.s->nh6[nh];
}
}  // namespace

void local_out6(Ctx& c, Out6& o, rte_mbuf* m) {
  // [ipv6/local_out] NF_INET_LOCAL_OUT (one packet: replies and errors are
  // made one at a time here).
  if (c.l3.hooks != nullptr && c.l3.hooks->list(SLUICE_IPV6_LOCAL_OUT) != nullptr) {
    hooks::State st{SLUICE_IPV6_LOCAL_OUT, static_cast<uint16_t>(c.w.id), kNoDev, kNoDev, nullptr};
    rte_mbuf* v[kBurst] = {m};
    if (c.l3.hooks->run(c.w, st, v, 1, kNoDev) == 0) return;
    m = v[0];
  }
  route_out6(c, o, m);
}

void route_out6(Ctx& c, Out6& o, rte_mbuf* m) {
  const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip6h(m)->dst_addr);
  uint16_t in = meta(m).skb_iif;
  if (is_linklocal6(dst) || is_mcast6(dst)) {
    c.ws.m(in)[Mib::Ip6OutRequests]++;
    out_push(c, o, m, dst, in);
    return;
  }
  const NextHop6Ref* h = fib6_lookup(c, dst);
  if (h == nullptr) {
    c.w.drop(m, in, DropReason::ip_outnoroutes);
    return;
  }
  c.ws.m(h->dev)[Mib::Ip6OutRequests]++;
  out_push(c, o, m, is_zero6(h->gw) ? dst : h->gw, h->dev);
}

bool route6_of(const Ctx& c, const rte_mbuf* m, uint16_t* dev, uint8_t* target) {
  const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip6h(m)->dst_addr);
  const NextHop6Ref* h = fib6_lookup(c, dst);
  if (h == nullptr) return false;
  *dev = h->dev;
  std::memcpy(target, is_zero6(h->gw) ? dst : h->gw, 16);
  return true;
}

void ok6_local_out(Worker& w, const hooks::State&, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx6(w, *static_cast<L3*>(l3));
  Out6 out;
  for (uint16_t i = 0; i < n; i++) route_out6(c, out, pkts[i]);
  neigh_output(c, out);
}

// neigh_output after post_routing: the device the packet was routed to.
void ok6_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx6(w, *static_cast<L3*>(l3));
  Out6 o;
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip6h(pkts[i])->dst_addr);
    uint16_t dev;
    uint8_t target[16];
    if (is_linklocal6(dst) || is_mcast6(dst) || !route6_of(c, pkts[i], &dev, target) ||
        dev != st.out)
      std::memcpy(target, dst, 16);  // on-link on the original device
    o.pkts[o.n] = pkts[i];
    std::memcpy(o.target[o.n].data(), target, 16);
    o.dev[o.n++] = st.out;
  }
  neigh_resolve(c, o);
}

}  // namespace sluice::l3
