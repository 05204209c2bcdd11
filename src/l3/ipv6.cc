// IPv6 on the worker (net/ipv6/ip6_input.c, ip6_output.c ip6_forward,
// icmp.c, ndisc.c), the subset this build does: ipv6_rcv checks, local
// addresses (global, the EUI-64 link-local, the groups a router joins),
// forwarding over connected prefixes and static routes (two rte_fib6
// swapped under RCU like the IPv4 pair, src/l3/l3.cc commit()) with
// hop-limit and packet-too-big errors, ICMPv6 echo, and neighbour discovery
// (NS answered with NA here, NS/NA learned through the same NUD state
// machine as ARP on the control thread).
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <rte_byteorder.h>
#include <rte_errno.h>
#include <rte_jhash.h>
#include <rte_fib6.h>
#include <rte_hash.h>
#include <rte_ip.h>
#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "l3/l3.hh"
#include "hooks/hooks.hh"

namespace sluice::l3 {

void ipv6_link_local(const rte_ether_addr& mac, uint8_t* out) {
  std::memset(out, 0, 16);
  out[0] = 0xfe;
  out[1] = 0x80;
  out[8] = mac.addr_bytes[0] ^ 0x02;
  out[9] = mac.addr_bytes[1];
  out[10] = mac.addr_bytes[2];
  out[11] = 0xff;
  out[12] = 0xfe;
  out[13] = mac.addr_bytes[3];
  out[14] = mac.addr_bytes[4];
  out[15] = mac.addr_bytes[5];
}

void ipv6_solicited_node(const uint8_t* a, uint8_t* out) {
  static const uint8_t pfx[13] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01, 0xff};
  std::memcpy(out, pfx, 13);
  std::memcpy(out + 13, a + 13, 3);
}

std::string ipv6_str(const uint8_t* a) {
  char b[64];
  inet_ntop(AF_INET6, a, b, sizeof b);
  return b;
}

namespace {

constexpr uint8_t kProtoIcmp6 = 58;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kProtoTcp = 6;
constexpr unsigned kOut6 = 64;

inline rte_ipv6_hdr* ip6h(rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, rte_ipv6_hdr*, sizeof(rte_ether_hdr));
}
inline bool is_mcast6(const uint8_t* a) {
  return a[0] == 0xff;
}
inline bool is_linklocal6(const uint8_t* a) {
  return a[0] == 0xfe && (a[1] & 0xc0) == 0x80;
}
inline bool is_zero6(const uint8_t* a) {
  for (int i = 0; i < 16; i++)
    if (a[i] != 0) return false;
  return true;
}

void mcast_mac(const uint8_t* a, rte_ether_addr* mac) {
  mac->addr_bytes[0] = 0x33;
  mac->addr_bytes[1] = 0x33;
  std::memcpy(mac->addr_bytes + 2, a + 12, 4);
}

void icmp6_csum(rte_ipv6_hdr* ip, uint8_t* icmp) {
  icmp[2] = icmp[3] = 0;
  uint16_t c = rte_ipv6_udptcp_cksum(ip, icmp);
  std::memcpy(icmp + 2, &c, 2);
}

struct Out6 {
  uint16_t n = 0;
  rte_mbuf* pkts[kOut6];
  uint8_t target[kOut6][16];
  uint16_t dev[kOut6];
};

struct Ctx6 {
  Worker& w;
  L3& l3;
  WorkerL3& ws;
  const Snapshot* s;
};

void xmit_grouped6(Worker& w, rte_mbuf** pkts, uint16_t n) {
  bool done[kOut6] = {};
  for (uint16_t i = 0; i < n; i++) {
    if (done[i]) continue;
    uint16_t d = meta(pkts[i]).dev;
    rte_mbuf* grp[kBurst];
    uint16_t g = 0;
    for (uint16_t j = i; j < n; j++) {
      if (done[j] || meta(pkts[j]).dev != d) continue;
      done[j] = true;
      grp[g++] = pkts[j];
      if (g == kBurst) {
        dev_queue_xmit(w, *w.net.dev(d), grp, g);
        g = 0;
      }
    }
    if (g != 0) dev_queue_xmit(w, *w.net.dev(d), grp, g);
  }
}

// ndisc output: multicast destinations map to 33:33:…; the rest need a
// valid neighbour, or wait on the control thread.
void neigh_resolve6(Ctx6& c, Out6& o);

void neigh_output6(Ctx6& c, Out6& o) {
  if (o.n == 0) return;
  // [ipv6/post_routing] NF_INET_POST_ROUTING (out = the route's device).
  if (c.l3.hooks != nullptr && c.l3.hooks->list(SLUICE_IPV6_POST_ROUTING) != nullptr) {
    uint16_t k = 0;
    for (uint16_t base = 0; base < o.n; base += kBurst) {
      uint16_t cnt = static_cast<uint16_t>(std::min<unsigned>(kBurst, o.n - base));
      rte_mbuf* v[kBurst];
      uint16_t devs[kBurst], idx[kBurst];
      uint8_t tg[kBurst][16];
      for (uint16_t i = 0; i < cnt; i++) {
        v[i] = o.pkts[base + i];
        devs[i] = o.dev[base + i];
        std::memcpy(tg[i], o.target[base + i], 16);
      }
      hooks::State st{SLUICE_IPV6_POST_ROUTING, static_cast<uint16_t>(c.w.id), kNoDev, kNoDev,
                      devs};
      uint16_t kept = c.l3.hooks->run(c.w, st, v, cnt, kNoDev, idx);
      for (uint16_t i = 0; i < kept; i++) {
        o.pkts[k] = v[i];
        o.dev[k] = devs[idx[i]];
        std::memcpy(o.target[k++], tg[idx[i]], 16);
      }
    }
    o.n = k;
  }
  neigh_resolve6(c, o);
}

// After [ipv6/post_routing]: the neighbour (or the multicast MAC).
void neigh_resolve6(Ctx6& c, Out6& o) {
  if (o.n == 0) return;
  NeighKey6 keys[kOut6];
  const void* kp[kOut6];
  void* data[kOut6];
  for (uint16_t i = 0; i < o.n; i++) {
    std::memcpy(keys[i].a, o.target[i], 16);
    keys[i].dev = o.dev[i];
    keys[i].zero = 0;
    kp[i] = &keys[i];
  }
  uint64_t hit = 0;
  rte_hash_lookup_bulk_data(c.l3.neigh_hash6(), kp, o.n, &hit, data);
  rte_mbuf* ready[kOut6];
  uint16_t nr = 0;
  for (uint16_t i = 0; i < o.n; i++) {
    rte_mbuf* m = o.pkts[i];
    PktMeta& md = meta(m);
    auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
    md.flags &= static_cast<uint8_t>(~kFlagVlan);
    bool ok = false;
    if (is_mcast6(o.target[i])) {
      mcast_mac(o.target[i], &eth->dst_addr);
      ok = true;
    } else if (hit & (uint64_t(1) << i)) {
      auto* e = static_cast<NeighEntry*>(data[i]);
      uint64_t hw = e->hw.load(std::memory_order_acquire);
      uint8_t st = neigh_state(hw);
      if (st & kNudValid) {
        if (st == kNudStale && !e->used.load(std::memory_order_relaxed))
          e->used.store(1, std::memory_order_relaxed);
        neigh_mac(hw, &eth->dst_addr);
        ok = true;
      }
    }
    if (ok) {
      eth->src_addr = c.w.net.dev(o.dev[i])->mac;
      eth->ether_type = rte_cpu_to_be_16(kEthPIpv6);
      md.dev = o.dev[i];
      ready[nr++] = m;
      continue;
    }
    md.user[0] = uint64_t(o.dev[i]) << 32 | uint64_t(c.w.id) << 48 | uint64_t(1) << 63;
    std::memcpy(&md.user[1], o.target[i], 16);
    if (rte_ring_enqueue(c.ws.pending, m) != 0) c.w.drop(m, o.dev[i], DropReason::neigh_queuefull);
  }
  xmit_grouped6(c.w, ready, nr);
  o.n = 0;
}

void out6_push(Ctx6& c, Out6& o, rte_mbuf* m, const uint8_t* target, uint16_t dev) {
  if (o.n == kOut6) neigh_output6(c, o);
  o.pkts[o.n] = m;
  std::memcpy(o.target[o.n], target, 16);
  o.dev[o.n] = dev;
  o.n++;
}

// ip6_local_out for packets made here: link-local and multicast destinations
// leave through the device they came from; the rest are routed.
void route_out6(Ctx6& c, Out6& o, rte_mbuf* m);

void local_out6(Ctx6& c, Out6& o, rte_mbuf* m) {
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

// ip6_route_output for a packet made here (after ipv6/local_out).
void route_out6(Ctx6& c, Out6& o, rte_mbuf* m) {
  rte_ipv6_hdr* ip = ip6h(m);
  const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip->dst_addr);
  uint16_t in = meta(m).skb_iif;
  if (is_linklocal6(dst) || is_mcast6(dst)) {
    c.ws.m(in)[Mib::Ip6OutRequests]++;
    out6_push(c, o, m, dst, in);
    return;
  }
  uint8_t ips[1][16];
  std::memcpy(ips[0], dst, 16);
  uint64_t nh = 0;
  if (c.s->fib6 != nullptr) rte_fib6_lookup_bulk(c.s->fib6, ips, &nh, 1);
  if (nh == 0 || nh >= c.s->nh6.size()) {
    c.w.drop(m, in, DropReason::ip_outnoroutes);
    return;
  }
  const NextHop6Ref& h = c.s->nh6[nh];
  c.ws.m(h.dev)[Mib::Ip6OutRequests]++;
  out6_push(c, o, m, is_zero6(h.gw) ? dst : h.gw, h.dev);
}

// icmp6_send: the offending packet as much as fits in the minimum MTU.
void icmp6_send(Ctx6& c, Out6& o, rte_mbuf* m, uint8_t type, uint8_t code, uint32_t info,
                uint16_t in) {
  rte_ipv6_hdr* oip = ip6h(m);
  const uint8_t* osrc = reinterpret_cast<const uint8_t*>(&oip->src_addr);
  if (pkt_type(m) != PktType::host || is_mcast6(osrc) || is_zero6(osrc)) return;
  if (oip->proto == kProtoIcmp6 && m->data_len > sizeof(rte_ether_hdr) + 40 &&
      *(reinterpret_cast<uint8_t*>(oip) + 40) < 128)
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

// ndisc_recv_ns → ndisc_send_na, in place. Returns false if m was consumed otherwise.
void ndisc_ns(Ctx6& c, Out6& o, rte_mbuf* m, uint16_t dev, const Device& d) {
  rte_ipv6_hdr* ip = ip6h(m);
  uint8_t* icmp = reinterpret_cast<uint8_t*>(ip) + 40;
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
  // Source link-layer address option → the sender becomes STALE (neigh_event_ns).
  for (unsigned off = 24; !dad && off + 8 <= plen; off += icmp[off + 1] * 8u) {
    if (icmp[off + 1] == 0) break;
    if (icmp[off] == 1) {
      NeighEvent6 ev{};
      std::memcpy(ev.a, src, 16);
      ev.dev = dev;
      ev.kind = kEvRequestForUs;
      std::memcpy(ev.mac, icmp + off + 2, 6);
      rte_ring_enqueue_elem(c.ws.events6, &ev, sizeof ev);
      break;
    }
  }
  // The advertisement: router, solicited (unless DAD), override; target LLA.
  auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
  uint8_t dst[16];
  if (dad) {
    static const uint8_t all_nodes[16] = {0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    std::memcpy(dst, all_nodes, 16);
  } else {
    std::memcpy(dst, src, 16);
  }
  rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - (14 + 40)));
  if (rte_pktmbuf_append(m, 32) == nullptr) {
    c.w.drop(m, dev, DropReason::nomem);
    return;
  }
  ip = ip6h(m);
  icmp = reinterpret_cast<uint8_t*>(ip) + 40;
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
  // Straight back to the solicitor's MAC (no neighbour lookup needed).
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
  (void)o;
}

void ndisc_na(Ctx6& c, rte_mbuf* m, uint16_t dev) {
  rte_ipv6_hdr* ip = ip6h(m);
  uint8_t* icmp = reinterpret_cast<uint8_t*>(ip) + 40;
  uint16_t plen = rte_be_to_cpu_16(ip->payload_len);
  if (ip->hop_limits != 255 || plen < 24) {
    c.w.drop(m, dev, DropReason::icmp_ignored);
    return;
  }
  bool solicited = icmp[4] & 0x40;
  for (unsigned off = 24; off + 8 <= plen; off += icmp[off + 1] * 8u) {
    if (icmp[off + 1] == 0) break;
    if (icmp[off] == 2) {
      NeighEvent6 ev{};
      std::memcpy(ev.a, icmp + 8, 16);
      ev.dev = dev;
      ev.kind = solicited && pkt_type(m) == PktType::host ? kEvReplyToUs : kEvOther;
      std::memcpy(ev.mac, icmp + off + 2, 6);
      rte_ring_enqueue_elem(c.ws.events6, &ev, sizeof ev);
      break;
    }
  }
  c.w.free_later(m);
}

void ip6_rcv_finish(Ctx6& c, uint16_t dev, rte_mbuf** pre, uint16_t npre);

// ip6_input_finish → ICMPv6 (echo, ND) or no socket, for one local packet;
// also the okfn of ipv6/local_in.
void ip6_local_deliver(Ctx6& c, Out6& out, rte_mbuf* m, const Snapshot::Local6& loc, uint16_t dev) {
  Worker& w = c.w;
  const Device& d = *w.net.dev(dev);
  MibBlock& mib = c.ws.m(dev);
  const Snapshot::Local6* l = &loc;
  rte_ipv6_hdr* ip = ip6h(m);
  uint32_t plen = rte_be_to_cpu_16(ip->payload_len);
  const uint8_t* src = reinterpret_cast<const uint8_t*>(&ip->src_addr);
  const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip->dst_addr);
  if (ip->proto != kProtoIcmp6) {
    mib[Mib::Ip6InDelivers]++;
    if (!l->mcast)
      icmp6_send(c, out, m, ip->proto == kProtoUdp || ip->proto == kProtoTcp ? 1 : 4,
                 ip->proto == kProtoUdp || ip->proto == kProtoTcp ? 4 : 1, 6, dev);
    w.drop(m, dev,
           ip->proto == kProtoUdp || ip->proto == kProtoTcp ? DropReason::no_socket
                                                            : DropReason::ip_noproto);
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
    case 128: {  // echo request (icmpv6_echo_ignore_multicast = 0: answered)
      mib[Mib::Icmp6InEchos]++;
      uint8_t from[16];
      if (l->mcast)
        std::memcpy(from, c.s->dev_addr6[dev].data(), 16);
      else
        std::memcpy(from, dst, 16);
      std::memcpy(&ip->dst_addr, src, 16);
      std::memcpy(&ip->src_addr, from, 16);
      ip->hop_limits = 64;
      icmp[0] = 129;
      icmp6_csum(ip, icmp);
      mib[Mib::Icmp6OutMsgs]++;
      mib[Mib::Icmp6OutEchoReplies]++;
      local_out6(c, out, m);
      break;
    }
    case 135:
      mib[Mib::Icmp6InNeighborSolicits]++;
      ndisc_ns(c, out, m, dev, d);
      break;
    case 136:
      mib[Mib::Icmp6InNeighborAdvertisements]++;
      ndisc_na(c, m, dev);
      break;
    default:
      w.free_later(m);
      break;
  }
}

}  // namespace

void ipv6_rcv(Worker& w, void* vctx, rte_mbuf** pkts, uint16_t n) {
  L3& l3 = *static_cast<L3*>(vctx);
  Ctx6 c{w, l3, l3.ws(w.id), l3.snap()};
  const uint16_t dev = meta(pkts[0]).dev;
  const Device& d = *w.net.dev(dev);
  MibBlock& mib = c.ws.m(dev);
  rte_mbuf* pre[kBurst];
  uint16_t npre = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (pkt_type(m) == PktType::otherhost) {
      w.c(dev).rx_otherhost_dropped++;
      w.drop(m, dev, DropReason::otherhost);
      continue;
    }
    if (d.kind == DevKind::punt) {  // the TAP's kernel side has IPv6 off
      w.free_later(m);
      continue;
    }
    mib[Mib::Ip6InReceives]++;
    if (rte_mbuf_refcnt_read(m) > 1 || !RTE_MBUF_DIRECT(m)) {
      rte_mbuf* cp = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
      if (cp != nullptr) std::memcpy(rte_mbuf_to_priv(cp), rte_mbuf_to_priv(m), sizeof(PktMeta));
      w.free_later(m);
      if (cp == nullptr) continue;
      m = cp;
    }
    uint32_t len = m->pkt_len - sizeof(rte_ether_hdr);
    if (len < 40 || m->data_len < sizeof(rte_ether_hdr) + 40 ||
        (rte_be_to_cpu_32(ip6h(m)->vtc_flow) >> 28) != 6) {
      mib[Mib::Ip6InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    rte_ipv6_hdr* ip = ip6h(m);
    uint32_t plen = rte_be_to_cpu_16(ip->payload_len);
    if (40 + plen > len) {
      mib[Mib::Ip6InTruncatedPkts]++;
      w.drop(m, dev, DropReason::pkt_too_small);
      continue;
    }
    if (len > 40 + plen) rte_pktmbuf_trim(m, static_cast<uint16_t>(len - 40 - plen));
    pre[npre++] = m;
  }

  // [ipv6/pre_routing] NF_INET_PRE_ROUTING (in = dev), after validation.
  if (npre != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV6_PRE_ROUTING, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
    npre = l3.hooks->run(w, st, pre, npre, dev);
  }
  if (npre != 0) ip6_rcv_finish(c, dev, pre, npre);
}

namespace {

// ip6_rcv_finish: local (ip6_input_finish) or ip6_forward; also the okfn of
// ipv6/pre_routing.
void ip6_rcv_finish(Ctx6& c, uint16_t dev, rte_mbuf** pre, uint16_t npre) {
  Worker& w = c.w;
  L3& l3 = c.l3;
  MibBlock& mib = c.ws.m(dev);
  Out6 out;
  rte_mbuf* fwd[kBurst];
  uint8_t fdst[kBurst][16];
  uint16_t nf = 0;
  for (uint16_t pi = 0; pi < npre; pi++) {
    rte_mbuf* m = pre[pi];
    rte_ipv6_hdr* ip = ip6h(m);
    const uint8_t* src = reinterpret_cast<const uint8_t*>(&ip->src_addr);
    const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip->dst_addr);
    if (is_mcast6(src)) {
      mib[Mib::Ip6InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_invalid_source);
      continue;
    }
    const Snapshot::Local6* l = c.s->find_local6(dst, dev);
    if (is_mcast6(dst)) {
      mib[Mib::Ip6InMcastPkts]++;
      if (l == nullptr) {  // a group we did not join
        w.free_later(m);
        continue;
      }
    }
    if (l == nullptr) {
      fwd[nf] = m;
      std::memcpy(fdst[nf++], dst, 16);
      continue;
    }
    // ---- ip6_input_finish: local ----
    meta(m).skb_iif = dev;
    // [ipv6/local_in] NF_INET_LOCAL_IN (in = dev), per packet here.
    if (l3.hooks != nullptr && l3.hooks->list(SLUICE_IPV6_LOCAL_IN) != nullptr) {
      hooks::State st{SLUICE_IPV6_LOCAL_IN, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
      rte_mbuf* v[kBurst] = {m};
      if (l3.hooks->run(w, st, v, 1, dev) == 0) continue;
      m = v[0];
    }
    ip6_local_deliver(c, out, m, *l, dev);
  }

  // ---- ip6_forward ----
  rte_mbuf* fo_m[kBurst];
  uint8_t fo_tgt[kBurst][16];
  uint16_t fo_dev[kBurst];
  uint16_t nfo = 0;
  uint64_t nh[kBurst];
  if (nf != 0 && c.s->fib6 != nullptr) rte_fib6_lookup_bulk(c.s->fib6, fdst, nh, nf);
  for (uint16_t i = 0; i < nf; i++) {
    rte_mbuf* m = fwd[i];
    rte_ipv6_hdr* ip = ip6h(m);
    meta(m).skb_iif = dev;
    if (c.s->fib6 == nullptr || nh[i] == 0 || nh[i] >= c.s->nh6.size()) {
      mib[Mib::Ip6InNoRoutes]++;
      icmp6_send(c, out, m, 1, 0, 0, dev);
      w.drop(m, dev, DropReason::ip_innoroutes);
      continue;
    }
    if (pkt_type(m) != PktType::host) {
      w.drop(m, dev, DropReason::ip_fwd_not_host);
      continue;
    }
    if (ip->hop_limits <= 1) {
      mib[Mib::Ip6InHdrErrors]++;
      icmp6_send(c, out, m, 3, 0, 0, dev);
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    const NextHop6Ref& h = c.s->nh6[nh[i]];
    const Device* od = w.net.dev(h.dev);
    if (od != nullptr && m->pkt_len - sizeof(rte_ether_hdr) > od->mtu) {
      mib[Mib::Ip6InTooBigErrors]++;
      icmp6_send(c, out, m, 2, 0, od->mtu, dev);
      w.drop(m, dev, DropReason::pkt_too_big);
      continue;
    }
    ip->hop_limits--;
    fo_m[nfo] = m;
    std::memcpy(fo_tgt[nfo], is_zero6(h.gw) ? fdst[i] : h.gw, 16);
    fo_dev[nfo++] = h.dev;
  }
  // [ipv6/forward] NF_INET_FORWARD (in = dev, out = the route's device).
  uint16_t fo_idx[kBurst];
  uint16_t nfk = nfo;
  for (uint16_t i = 0; i < nfo; i++) fo_idx[i] = i;
  if (nfo != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV6_FORWARD, static_cast<uint16_t>(w.id), dev, kNoDev, fo_dev};
    nfk = l3.hooks->run(w, st, fo_m, nfo, dev, fo_idx);
  }
  for (uint16_t i = 0; i < nfk; i++) {
    mib[Mib::Ip6OutForwDatagrams]++;
    out6_push(c, out, fo_m[i], fo_tgt[fo_idx[i]], fo_dev[fo_idx[i]]);
  }
  neigh_output6(c, out);
}

// ---- okfns: packets a hook queue consumer accepted go on from their point ----------------------

Ctx6 ctx6_of(Worker& w, void* l3v) {
  L3& l3 = *static_cast<L3*>(l3v);
  return Ctx6{w, l3, l3.ws(w.id), l3.snap()};
}

// The route of now for m's destination: device and address to resolve.
bool route6_of(Ctx6& c, rte_mbuf* m, uint16_t* dev, uint8_t* target) {
  const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip6h(m)->dst_addr);
  uint8_t ips[1][16];
  std::memcpy(ips[0], dst, 16);
  uint64_t nh = 0;
  if (c.s->fib6 != nullptr) rte_fib6_lookup_bulk(c.s->fib6, ips, &nh, 1);
  if (nh == 0 || nh >= c.s->nh6.size()) return false;
  const NextHop6Ref& h = c.s->nh6[nh];
  *dev = h.dev;
  std::memcpy(target, is_zero6(h.gw) ? dst : h.gw, 16);
  return true;
}

void ok6_pre_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx6 c = ctx6_of(w, l3);
  ip6_rcv_finish(c, st.in, pkts, n);
}

void ok6_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx6 c = ctx6_of(w, l3);
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
  neigh_output6(c, out);
}

void ok6_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx6 c = ctx6_of(w, l3);
  Out6 out;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t dev;
    uint8_t target[16];
    if (!route6_of(c, pkts[i], &dev, target)) {
      w.drop(pkts[i], st.in, DropReason::ip_outnoroutes);
      continue;
    }
    c.ws.m(st.in)[Mib::Ip6OutForwDatagrams]++;
    out6_push(c, out, pkts[i], target, dev);
  }
  neigh_output6(c, out);
}

void ok6_local_out(Worker& w, const hooks::State&, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx6 c = ctx6_of(w, l3);
  Out6 out;
  for (uint16_t i = 0; i < n; i++) route_out6(c, out, pkts[i]);
  neigh_output6(c, out);
}

void ok6_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx6 c = ctx6_of(w, l3);
  Out6 o;
  for (uint16_t i = 0; i < n; i++) {
    const uint8_t* dst = reinterpret_cast<const uint8_t*>(&ip6h(pkts[i])->dst_addr);
    uint16_t dev;
    uint8_t target[16];
    if (is_linklocal6(dst) || is_mcast6(dst) || !route6_of(c, pkts[i], &dev, target) ||
        dev != st.out)
      std::memcpy(target, dst, 16);  // on-link on the original device
    o.pkts[o.n] = pkts[i];
    std::memcpy(o.target[o.n], target, 16);
    o.dev[o.n++] = st.out;
  }
  neigh_resolve6(c, o);
}

}  // namespace

void ipv6_set_okfns(L3& l3) {
  if (l3.hooks == nullptr) return;
  l3.hooks->set_okfns(SLUICE_IPV6_PRE_ROUTING,
                      {ok6_pre_routing, ok6_local_in, ok6_forward, ok6_local_out, ok6_post_routing},
                      &l3);
}

// ---- control side ----------------------------------------------------------------------------

void L3::send_ns(uint16_t dev, const uint8_t* target, const rte_ether_addr* unicast) {
  Device* d = dp.net.dev(dev);
  rte_mempool* mp = ctl_pool();
  const Snapshot* s = snap();
  if (d == nullptr || mp == nullptr || s->dev_addr6.size() <= dev) return;
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return;
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
  nstats_.probes_sent++;
  inject(m, 0);
}

void L3::build_fib6() {
  bool any = false;
  for (const Address& a : addrs_) any = any || a.v6;
  if (!any) return;
  static std::atomic<unsigned> inst{0};
  unsigned k = inst.fetch_add(1);
  for (int b = 0; b < 2; b++) {
    rte_fib6_conf conf{};
    conf.type = RTE_FIB6_TRIE;
    conf.default_nh = 0;
    conf.max_routes = 4096;
    conf.trie.nh_sz = RTE_FIB6_TRIE_2B;
    conf.trie.num_tbl8 = 512;
    char name[32];
    std::snprintf(name, sizeof name, "l3fib6_%u_%d", k, b);
    fib6s_[b] = rte_fib6_create(name, SOCKET_ID_ANY, &conf);
    if (fib6s_[b] == nullptr) {
      spdlog::error("l3: cannot create the IPv6 FIB ({}); IPv6 stays off (raise eal.memory_mb)",
                    rte_strerror(rte_errno));
      rte_fib6_free(fib6s_[0]);
      fib6s_[0] = nullptr;
      return;
    }
  }
  char hname[48];
  std::snprintf(hname, sizeof hname, "l3neigh6_%u", k);
  rte_hash_parameters hp{};
  hp.name = hname;
  hp.entries = 4096;
  hp.key_len = sizeof(NeighKey6);
  hp.hash_func = rte_jhash;
  hp.socket_id = SOCKET_ID_ANY;
  hp.extra_flag = RTE_HASH_EXTRA_FLAGS_RW_CONCURRENCY_LF | RTE_HASH_EXTRA_FLAGS_EXT_TABLE;
  nhash6_ = rte_hash_create(&hp);
  fib6_ = fib6s_[active6_];
  nh6_.assign(1, NextHop6Ref{});
  nh6_refs_.assign(1, 1);
  dirty_ = true;
  for (const Address& a : addrs_) {  // connected prefixes (addrconf_prefix_route)
    if (!a.v6) continue;
    Route6 r;
    std::memcpy(r.prefix.data(), a.v6addr, 16);
    for (int b = a.len; b < 128; b++) r.prefix[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
    r.len = a.len;
    r.dev = a.dev;
    r.origin = RouteOrigin::connected;
    if (!routes6_.count({r.prefix, r.len})) insert_route6(r);
  }
}

uint32_t L3::nh6_get(const NextHop6Ref& h) {
  std::array<uint8_t, 16> gw;
  std::memcpy(gw.data(), h.gw, 16);
  auto key = std::make_pair(gw, h.dev);
  if (auto it = nh6_index_.find(key); it != nh6_index_.end()) {
    nh6_refs_[it->second]++;
    return it->second;
  }
  uint32_t idx;
  if (!nh6_free_.empty()) {
    idx = nh6_free_.back();
    nh6_free_.pop_back();
    nh6_[idx] = h;
    nh6_refs_[idx] = 1;
  } else {
    if (nh6_.size() > 32767) return 0;
    idx = static_cast<uint32_t>(nh6_.size());
    nh6_.push_back(h);
    nh6_refs_.push_back(1);
  }
  nh6_index_[key] = idx;
  return idx;
}

void L3::nh6_put(uint32_t idx) {
  if (idx == 0 || --nh6_refs_[idx] != 0) return;
  std::array<uint8_t, 16> gw;
  std::memcpy(gw.data(), nh6_[idx].gw, 16);
  nh6_index_.erase(std::make_pair(gw, nh6_[idx].dev));
  nh6_free_.push_back(idx);
}

std::string L3::insert_route6(Route6 r) {
  if (routes6_.count({r.prefix, r.len}))
    return "route " + ipv6_str(r.prefix.data()) + "/" + std::to_string(r.len) + " exists";
  NextHop6Ref h;
  std::memcpy(h.gw, r.via.data(), 16);
  h.dev = r.dev;
  r.nh = nh6_get(h);
  if (r.nh == 0) return "too many IPv6 next hops";
  routes6_[{r.prefix, r.len}] = r;
  ops6_.push_back(FibOp6{r.prefix, r.len, r.nh});
  dirty_ = true;
  return "";
}

bool L3::on_link6(const uint8_t* via, uint16_t* dev) const {
  for (const Address& a : addrs_) {
    if (!a.v6 || (*dev != kNoDev && a.dev != *dev)) continue;
    bool in = true;
    for (int b = 0; b < a.len && in; b++) {
      uint8_t m = static_cast<uint8_t>(0x80 >> (b % 8));
      in = (a.v6addr[b / 8] & m) == (via[b / 8] & m);
    }
    if (in && std::memcmp(a.v6addr, via, 16) != 0) {
      *dev = a.dev;
      return true;
    }
  }
  return false;
}

namespace {
bool parse_prefix6(const std::string& s, std::array<uint8_t, 16>* p, uint8_t* len) {
  size_t slash = s.find('/');
  std::string a = s.substr(0, slash);
  if (inet_pton(AF_INET6, a.c_str(), p->data()) != 1) return false;
  int l = 128;
  if (slash != std::string::npos) {
    std::string t = s.substr(slash + 1);
    if (t.empty() || t.size() > 3 || t.find_first_not_of("0123456789") != std::string::npos)
      return false;
    l = std::stoi(t);
  }
  if (l > 128) return false;
  *len = static_cast<uint8_t>(l);
  for (int b = l; b < 128; b++) (*p)[b / 8] &= static_cast<uint8_t>(~(0x80 >> (b % 8)));
  return true;
}
}  // namespace

std::string L3::add_route6(const std::string& prefix, const std::string& via,
                           const std::string& dev) {
  if (fib6s_[0] == nullptr) return "IPv6 is off: no IPv6 address is configured";
  Route6 r;
  if (!parse_prefix6(prefix, &r.prefix, &r.len)) return "bad IPv6 prefix '" + prefix + "'";
  if (!dev.empty()) {
    Device* d = dp.net.find(dev);
    if (d == nullptr) return "no such device '" + dev + "'";
    r.dev = d->index;
  }
  if (!via.empty()) {
    if (inet_pton(AF_INET6, via.c_str(), r.via.data()) != 1) return "bad next hop '" + via + "'";
    uint16_t d = r.dev;
    if (!on_link6(r.via.data(), &d))
      return "next hop " + via + " is not in a connected subnet" +
             (dev.empty() ? "" : " of " + dev) + " (Network is unreachable)";
    r.dev = d;
  } else if (dev.empty()) {
    return "a route needs 'via ADDR' or 'dev DEV'";
  }
  r.origin = RouteOrigin::static_route;
  return insert_route6(r);
}

std::string L3::del_route6(const std::string& prefix, const std::string& via,
                           const std::string& dev) {
  std::array<uint8_t, 16> p;
  uint8_t len;
  if (!parse_prefix6(prefix, &p, &len)) return "bad IPv6 prefix '" + prefix + "'";
  auto it = routes6_.find({p, len});
  if (it == routes6_.end()) return "no route " + prefix + " (No such process)";
  std::array<uint8_t, 16> v{};
  if (!via.empty() && (inet_pton(AF_INET6, via.c_str(), v.data()) != 1 || v != it->second.via))
    return "route " + prefix + " has another next hop";
  if (!dev.empty()) {
    Device* d = dp.net.find(dev);
    if (d == nullptr || d->index != it->second.dev)
      return "route " + prefix + " is on another device";
  }
  nh6_put(it->second.nh);
  ops6_.push_back(FibOp6{p, len, 0});
  routes6_.erase(it);
  dirty_ = true;
  return "";
}

}  // namespace sluice::l3
