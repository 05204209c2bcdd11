// ip_forward (net/ipv4/ip_forward.c) and ip_error (route.c) on the worker:
// one FIB lookup for the burst; no route → ICMP net unreachable; pkt_type
// HOST only; TTL ≤ 1 → ICMP time exceeded; ForwDatagrams; DF and larger
// than the egress MTU → ICMP frag needed; the TTL decremented with an
// incremental checksum; [ipv4/forward]; ip_forward_finish → ip_output.
// Spec: ../shared/spec/linux-rx.md §6.3 (FWD-01..06).
#include <rte_byteorder.h>
#include <rte_fib.h>

#include "l3/ipv4.hh"

namespace sluice::l3 {

namespace {

const StageId kStForward = stage_register("ip-forward", 450);

// ip_forward's checks for one packet and its next hop nh (ip_error when
// there is none), then ip_decrease_ttl. False: dropped (with its ICMP error
// in gen when one is due).
[[gnu::always_inline]] inline bool ip_forward_one(Ctx4& c, MibBlock& mib, uint16_t dev, rte_mbuf* m,
                                                  uint64_t nh, PktVec& gen) {
  Worker& w = c.w;
  if (nh == 0 || nh >= c.s->nh.size()) {
    // ip_error, ENETUNREACH (forwarding on): ICMP net unreachable.
    mib[Mib::InNoRoutes]++;
    icmp_send(c, gen, m, 3, 0, 0, dev, true);
    w.drop(m, dev, DropReason::ip_innoroutes);
    return false;
  }
  if (pkt_type(m) != PktType::host) {  // silent, no MIB
    w.drop(m, dev, DropReason::ip_fwd_not_host);
    return false;
  }
  rte_ipv4_hdr* ip = iph(m);
  if (ip->time_to_live <= 1) {
    mib[Mib::InHdrErrors]++;
    icmp_send(c, gen, m, 11, 0, 0, dev);
    w.drop(m, dev, DropReason::ip_inhdr);
    return false;
  }
  // Counted here, as ip_forward does in 6.x: before the DF/MTU check and
  // the FORWARD hook, so a packet either refuses still counts (FWD-06).
  mib[Mib::ForwDatagrams]++;
  const Device* od = w.net.dev(c.s->nh[nh].dev);
  uint16_t tot = rte_be_to_cpu_16(ip->total_length);
  if (od != nullptr && tot > od->mtu && (rte_be_to_cpu_16(ip->fragment_offset) & kIpDf)) {
    mib[Mib::FragFails]++;
    icmp_send(c, gen, m, 3, 4, od->mtu, dev);
    w.drop(m, dev, DropReason::pkt_too_big);
    return false;
  }
  // ip_decrease_ttl: incremental checksum update (RFC 1624).
  uint32_t check = ip->hdr_checksum;
  check += rte_cpu_to_be_16(0x0100);
  ip->hdr_checksum = static_cast<uint16_t>(check + (check >= 0xffff));
  ip->time_to_live--;
  return true;
}

// The FIB's answer for the traced packets of a burst (fib_lookup records).
[[gnu::noinline, gnu::cold]] void trace_routes(Ctx4& c, uint16_t dev, const FwdBurst& f,
                                               const uint64_t* nh) {
  for (uint16_t i = 0; i < f.n; i++) {
    if (!traced(f.pkts[i])) continue;
    if (nh[i] == 0 || nh[i] >= c.s->nh.size()) {
      trace_rec(c.w, f.pkts[i], "fib_lookup", dev, "no route");
      continue;
    }
    const uint32_t gw = c.s->nh[nh[i]].gw;
    if (gw != 0)
      trace_rec(c.w, f.pkts[i], "fib_lookup", dev, "route", c.s->nh[nh[i]].dev, "via %s",
                Ip4Text(gw).s);
    else
      trace_rec(c.w, f.pkts[i], "fib_lookup", dev, "route", c.s->nh[nh[i]].dev,
                "directly connected");
  }
}

}  // namespace

void ip_forward(Ctx4& c, uint16_t dev, FwdBurst& f, Out4& out, PktVec& gen) {
  StageScope scope(c.w.runtime, kStForward, f.n);
  MibBlock& mib = c.ws.m(dev);
  uint64_t nh[kBurst];
  rte_fib_lookup_bulk(c.s->fib, f.dst, nh, f.n);
  if (SLUICE_TRACE_LIVE(c.w)) [[unlikely]]
    trace_routes(c, dev, f, nh);
  Routed<uint32_t> fo;
  for (uint16_t i = 0; i < f.n; i++) {
    if (!ip_forward_one(c, mib, dev, f.pkts[i], nh[i], gen)) continue;
    const NextHop& h = c.s->nh[nh[i]];
    fo.pkts[fo.n] = f.pkts[i];
    fo.target[fo.n] = h.gw != 0 ? h.gw : f.dst[i];
    fo.dev[fo.n++] = h.dev;
  }
  // [ipv4/forward] NF_INET_FORWARD (in = dev, out = the route's device;
  // ForwDatagrams was counted before it, in ip_forward_one), then
  // ip_forward_finish and ip_output ([post_routing]).
  uint16_t idx[kBurst];
  const uint16_t kept = run_hook(c, SLUICE_IPV4_FORWARD, dev, fo.pkts, fo.n, fo.dev, idx);
  for (uint16_t i = 0; i < kept; i++)
    ip_output(c, out, fo.pkts[i], fo.target[idx[i]], fo.dev[idx[i]]);
}

// ip_forward_finish for packets a queue consumer accepted at [ipv4/forward]
// (ForwDatagrams was counted before the hook): ip_output (and
// post_routing) on the route of now.
void ok_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx4 c = ctx4(w, *static_cast<L3*>(l3));
  Out4 out;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t dev;
    uint32_t target;
    if (!route_of(c, pkts[i], &dev, &target)) {
      c.ws.m(st.in)[Mib::OutNoRoutes]++;
      w.drop(pkts[i], st.in, DropReason::ip_outnoroutes);
      continue;
    }
    ip_output(c, out, pkts[i], target, dev);
  }
  neigh_output(c, out);
}

}  // namespace sluice::l3
