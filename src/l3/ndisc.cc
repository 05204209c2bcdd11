// Neighbour discovery (net/ipv6/ndisc.c). On the worker: a solicitation for
// one of our addresses is answered in place with an advertisement (router,
// solicited unless DAD, override; the target link-layer address), and what
// solicitations and advertisements teach goes to the control thread as a
// NeighEvent6 (the same NUD state machine as ARP, neigh.cc). On the control
// thread: the solicitations that resolve a neighbour (ndisc_send_ns).
// Drop reasons: icmp_ignored (hop limit not 255, too short), nomem.
// Counters: Icmp6OutMsgs, Icmp6OutNeighborAdvertisements.
#include <rte_byteorder.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "l3/ipv6.hh"

namespace sluice::l3 {

namespace {

const uint8_t kAllNodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};

// The first option of type opt (1 source, 2 target link-layer address) in
// the ND message at icmp (options from byte 24), as an event for the
// control thread about address a.
void ndisc_learn(Ctx& c, const uint8_t* icmp, uint16_t plen, uint8_t opt, const uint8_t* a,
                 uint16_t dev, uint8_t kind) {
  for (unsigned off = 24; off + 8 <= plen; off += icmp[off + 1] * 8u) {
    if (icmp[off + 1] == 0) break;
    if (icmp[off] == opt) {
      NeighEvent6 ev{};
      std::memcpy(ev.a, a, 16);
      ev.dev = dev;
      ev.kind = kind;
      std::memcpy(ev.mac, icmp + off + 2, 6);
      rte_ring_enqueue_elem(c.ws.events6, &ev, sizeof ev);
      break;
    }
  }
}

// ndisc_send_na, in place: m (the solicitation) becomes the advertisement
// for target and leaves on dev straight back to the solicitor's MAC (or to
// all nodes for DAD): no neighbour lookup needed.
void ndisc_send_na(Ctx& c, rte_mbuf* m, uint16_t dev, const Device& d, const uint8_t* target,
                   bool dad) {
  rte_ipv6_hdr* ip = ip6h(m);
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  uint8_t dst[16];
  std::memcpy(dst, dad ? kAllNodes : reinterpret_cast<const uint8_t*>(&ip->src_addr), 16);
  rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - (14 + 40)));
  if (rte_pktmbuf_append(m, 32) == nullptr) {
    c.w.drop(m, dev, DropReason::nomem);
    return;
  }
  ip = ip6h(m);
  uint8_t* icmp = reinterpret_cast<uint8_t*>(ip) + 40;
  std::memcpy(&ip->dst_addr, dst, 16);
  std::memcpy(&ip->src_addr, target, 16);
  ip->payload_len = rte_cpu_to_be_16(32);
  ip->hop_limits = 255;
  icmp[0] = 136;
  icmp[1] = 0;
  icmp[4] = static_cast<uint8_t>(0x80 | (dad ? 0 : 0x40) | 0x20);
  icmp[5] = icmp[6] = icmp[7] = 0;
  std::memcpy(icmp + 8, target, 16);
  icmp[24] = 2;
  icmp[25] = 1;
  std::memcpy(icmp + 26, d.mac.addr_bytes, 6);
  icmp6_csum(ip, icmp);
  MibBlock& mib = c.ws.m(dev);
  mib[Mib::Icmp6OutMsgs]++;
  mib[Mib::Icmp6OutNeighborAdvertisements]++;
  if (!dad) {
    eth->dst_addr = eth->src_addr;
  } else {
    mcast_mac(dst, &eth->dst_addr);
  }
  eth->src_addr = d.mac;
  meta(m).dev = dev;
  meta(m).flags &= static_cast<uint8_t>(~kFlagVlan);
  rte_mbuf* one = m;
  dev_queue_xmit(c.w, *c.w.net.dev(dev), &one, 1);
}

}  // namespace

// ndisc_recv_ns: the source link-layer address option → the sender becomes
// STALE (neigh_event_ns); then ndisc_send_na.
void ndisc_rcv_ns(Ctx& c, rte_mbuf* m, uint16_t dev, const Device& d) {
  rte_ipv6_hdr* ip = ip6h(m);
  const uint8_t* icmp = reinterpret_cast<const uint8_t*>(ip) + 40;
  uint16_t plen = rte_be_to_cpu_16(ip->payload_len);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(&ip->src_addr);
  if (ip->hop_limits != 255 || plen < 24) {
    c.w.drop(m, dev, DropReason::icmp_ignored);
    return;
  }
  uint8_t target[16];
  std::memcpy(target, icmp + 8, 16);
  const Snapshot::Local6* l = c.s->find_local6(target, dev);
  if (l == nullptr || l->mcast) {  // not ours: nothing to say
    c.w.free_later(m);
    return;
  }
  bool dad = is_zero6(src);
  if (!dad) ndisc_learn(c, icmp, plen, 1, src, dev, kEvRequestForUs);
  ndisc_send_na(c, m, dev, d, target, dad);
}

// ndisc_recv_na: the target link-layer address option, REACHABLE when
// solicited and unicast to us.
void ndisc_rcv_na(Ctx& c, rte_mbuf* m, uint16_t dev) {
  const rte_ipv6_hdr* ip = ip6h(m);
  const uint8_t* icmp = reinterpret_cast<const uint8_t*>(ip) + 40;
  uint16_t plen = rte_be_to_cpu_16(ip->payload_len);
  if (ip->hop_limits != 255 || plen < 24) {
    c.w.drop(m, dev, DropReason::icmp_ignored);
    return;
  }
  bool solicited = icmp[4] & 0x40;
  ndisc_learn(c, icmp, plen, 2, icmp + 8, dev,
              solicited && pkt_type(m) == PktType::host ? kEvReplyToUs : kEvOther);
  c.w.free_later(m);
}

// ---- control thread -------------------------------------------------------------------------

bool ndisc_send_ns(L3& l3, uint16_t dev, const uint8_t* target, const rte_ether_addr* unicast) {
  Device* d = l3.dp.net.dev(dev);
  rte_mempool* mp = l3.ctl_pool();
  const Snapshot* s = l3.snap();
  if (d == nullptr || mp == nullptr || s->dev_addr6.size() <= dev) return false;
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return false;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 14 + 40 + 32));
  std::memset(p, 0, 14 + 40 + 32);
  auto* eth = reinterpret_cast<rte_ether_hdr*>(p);
  auto* ip = reinterpret_cast<rte_ipv6_hdr*>(p + 14);
  uint8_t* icmp = p + 14 + 40;
  uint8_t dst[16];
  if (unicast != nullptr) {
    std::memcpy(dst, target, 16);
    eth->dst_addr = *unicast;
  } else {
    ipv6_solicited_node(target, dst);
    mcast_mac(dst, &eth->dst_addr);
  }
  eth->src_addr = d->mac;
  eth->ether_type = rte_cpu_to_be_16(kEthPIpv6);
  ip->vtc_flow = rte_cpu_to_be_32(6u << 28);
  ip->payload_len = rte_cpu_to_be_16(32);
  ip->proto = kProtoIcmp6;
  ip->hop_limits = 255;
  std::memcpy(&ip->src_addr, s->dev_addr6[dev].data(), 16);
  std::memcpy(&ip->dst_addr, dst, 16);
  icmp[0] = 135;
  std::memcpy(icmp + 8, target, 16);
  icmp[24] = 1;
  icmp[25] = 1;
  std::memcpy(icmp + 26, d->mac.addr_bytes, 6);
  icmp6_csum(ip, icmp);
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  meta(m).dev = dev;
  l3.inject(m, 0);
  return true;
}

}  // namespace sluice::l3
