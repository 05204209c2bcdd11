// IPv4 on the worker: ip_rcv → ip_rcv_finish (input route) → ip_local_deliver
// | ip_forward | ip_error, and ip_output → neigh_output. Burst-wise: every
// stage runs over the packets of one protocol-handler call; FIB lookups are
// one rte_fib_lookup_bulk, neighbour lookups one rte_hash_lookup_bulk_data.
// Nothing here allocates except mbufs for ICMP errors and fragments.
// Spec: ../shared/spec/linux-rx.md §6.1–6.4.
#include <cstring>

#include <rte_byteorder.h>
#include <rte_fib.h>
#include <rte_hash.h>
#include <rte_icmp.h>
#include <rte_ip.h>
#include <rte_ip_frag.h>
#include <rte_ring.h>
#include <rte_tcp.h>
#include <rte_udp.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "hooks/hooks.hh"
#include "l3/l3.hh"

namespace sluice::l3 {

namespace {

constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoTcp = 6;
constexpr uint8_t kProtoUdp = 17;
constexpr uint16_t kIpDf = 0x4000;
constexpr uint16_t kIpMf = 0x2000;
constexpr uint16_t kIpOffMask = 0x1fff;
constexpr uint32_t kIcmpRatemask =
    0x1818;                       // dest-unreach, source-quench, time-exceeded, param-problem
constexpr unsigned kOutMax = 64;  // RTE_HASH_LOOKUP_BULK_MAX

inline rte_ipv4_hdr* iph(rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, rte_ipv4_hdr*, sizeof(rte_ether_hdr));
}
inline const rte_ipv4_hdr* iph(const rte_mbuf* m) {
  return rte_pktmbuf_mtod_offset(m, const rte_ipv4_hdr*, sizeof(rte_ether_hdr));
}
inline bool is_multicast(uint32_t a) {
  return (a >> 28) == 14;
}
inline bool is_lbcast(uint32_t a) {
  return a == 0xffffffffu;
}
inline bool is_zeronet(uint32_t a) {
  return (a >> 24) == 0;
}
inline bool is_loopback(uint32_t a) {
  return (a >> 24) == 127;
}

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

// Packets leaving through ip_output: the packet, the address to resolve, the device.
struct OutVec {
  uint16_t n = 0;
  rte_mbuf* pkts[kOutMax];
  uint32_t target[kOutMax];
  uint16_t dev[kOutMax];
};

struct Ctx {
  Worker& w;
  L3& l3;
  WorkerL3& ws;
  const Snapshot* s;
  uint64_t now;
};

void neigh_output(Ctx& c, OutVec& o);

void out_push(Ctx& c, OutVec& o, rte_mbuf* m, uint32_t target, uint16_t dev) {
  if (o.n == kOutMax) {
    neigh_output(c, o);
    o.n = 0;
  }
  o.pkts[o.n] = m;
  o.target[o.n] = target;
  o.dev[o.n] = dev;
  o.n++;
}

// Groups packets ready for the wire by device (in order) and sends them.
void xmit_grouped(Worker& w, rte_mbuf** pkts, uint16_t n) {
  bool done[kOutMax] = {};
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

void neigh_resolve(Ctx& c, OutVec& o);

// ip_finish_output2 → neigh_output: [ipv4/post_routing] first, then the
// neighbour (neigh_resolve).
void neigh_output(Ctx& c, OutVec& o) {
  if (o.n == 0) return;
  // [ipv4/post_routing] NF_INET_POST_ROUTING (out = the route's device), on
  // what ip_output made (after fragmentation here, unlike Linux).
  if (c.l3.hooks != nullptr && c.l3.hooks->list(SLUICE_IPV4_POST_ROUTING) != nullptr) {
    uint16_t k = 0;
    for (uint16_t base = 0; base < o.n; base += kBurst) {
      uint16_t cnt = static_cast<uint16_t>(std::min<unsigned>(kBurst, o.n - base));
      rte_mbuf* v[kBurst];
      uint16_t devs[kBurst], idx[kBurst];
      uint32_t tg[kBurst];
      for (uint16_t i = 0; i < cnt; i++) {
        v[i] = o.pkts[base + i];
        devs[i] = o.dev[base + i];
        tg[i] = o.target[base + i];
      }
      hooks::State st{SLUICE_IPV4_POST_ROUTING, static_cast<uint16_t>(c.w.id), kNoDev, kNoDev,
                      devs};
      uint16_t kept = c.l3.hooks->run(c.w, st, v, cnt, kNoDev, idx);
      for (uint16_t i = 0; i < kept; i++) {
        o.pkts[k] = v[i];
        o.dev[k] = devs[idx[i]];
        o.target[k++] = tg[idx[i]];
      }
    }
    o.n = k;
  }
  neigh_resolve(c, o);
}

// neigh_output / neigh_resolve_output: a valid entry gives the destination
// MAC; anything else goes to the control thread, which queues and resolves.
void neigh_resolve(Ctx& c, OutVec& o) {
  if (o.n == 0) return;
  // The worker's cache first; one bulk lookup for the rest.
  NeighCache& nc = c.ws.ncache;
  if (const uint64_t gen = c.l3.neigh_gen.load(std::memory_order_acquire); nc.gen != gen) {
    nc = NeighCache{};
    nc.gen = gen;
  }
  NeighKey keys[kOutMax];
  const void* kp[kOutMax];
  void* data[kOutMax];
  uint16_t miss[kOutMax];
  uint16_t nm = 0;
  uint64_t hit = 0;
  for (uint16_t i = 0; i < o.n; i++) {
    const uint64_t k = NeighCache::key(o.target[i], o.dev[i]);
    const NeighCache::Slot& sl = nc.s[NeighCache::slot(k)];
    if (sl.key == k) {
      data[i] = sl.e;
      hit |= uint64_t(1) << i;
      continue;
    }
    keys[nm] = NeighKey{o.target[i], o.dev[i], 0};
    kp[nm] = &keys[nm];
    miss[nm++] = i;
  }
  if (nm != 0) {
    void* md[kOutMax];
    uint64_t mhit = 0;
    rte_hash_lookup_bulk_data(c.l3.neigh_hash(), kp, nm, &mhit, md);
    for (uint16_t j = 0; j < nm; j++) {
      if (!(mhit & (uint64_t(1) << j))) continue;
      const uint16_t i = miss[j];
      data[i] = md[j];
      hit |= uint64_t(1) << i;
      const uint64_t k = NeighCache::key(keys[j].ip, keys[j].dev);
      nc.s[NeighCache::slot(k)] = NeighCache::Slot{k, static_cast<NeighEntry*>(md[j])};
    }
  }
  rte_mbuf* ready[kOutMax];
  uint16_t nr = 0;
  for (uint16_t i = 0; i < o.n; i++) {
    rte_mbuf* m = o.pkts[i];
    PktMeta& md = meta(m);
    if (hit & (uint64_t(1) << i)) {
      auto* e = static_cast<NeighEntry*>(data[i]);
      uint64_t hw = e->hw.load(std::memory_order_acquire);
      uint8_t st = neigh_state(hw);
      if (st & kNudValid) {
        if (st == kNudStale && !e->used.load(std::memory_order_relaxed))
          e->used.store(1, std::memory_order_relaxed);
        auto* eth = rte_pktmbuf_mtod(m, rte_ether_hdr*);
        neigh_mac(hw, &eth->dst_addr);
        eth->src_addr = c.w.net.dev(o.dev[i])->mac;
        eth->ether_type = rte_cpu_to_be_16(kEthPIp);
        md.dev = o.dev[i];
        md.flags &= static_cast<uint8_t>(~kFlagVlan);
        ready[nr++] = m;
        continue;
      }
    }
    md.user[0] = uint64_t(o.target[i]) | uint64_t(o.dev[i]) << 32 | uint64_t(c.w.id) << 48;
    md.flags &= static_cast<uint8_t>(~kFlagVlan);
    if (rte_ring_enqueue(c.ws.pending, m) != 0) c.w.drop(m, o.dev[i], DropReason::neigh_queuefull);
  }
  xmit_grouped(c.w, ready, nr);
  o.n = 0;
}

// ip_output → ip_finish_output: fragmentation when larger than the device MTU
// (DF packets were refused before), then neighbour output.
void ip_output(Ctx& c, OutVec& o, rte_mbuf* m, uint32_t target, uint16_t dev) {
  Device* od = c.w.net.dev(dev);
  rte_ipv4_hdr* ip = iph(m);
  uint16_t tot = rte_be_to_cpu_16(ip->total_length);
  MibBlock& mib = c.ws.m(dev);
  mib[Mib::OutOctets] += tot;
  if (od != nullptr && tot > od->mtu) {
    MibBlock& fm = c.ws.m(meta(m).skb_iif < kMaxDevices ? meta(m).skb_iif : dev);
    if (rte_be_to_cpu_16(ip->fragment_offset) & kIpDf) {
      fm[Mib::FragFails]++;
      c.w.drop(m, dev, DropReason::pkt_too_big);
      return;
    }
    PktMeta md = meta(m);
    rte_pktmbuf_adj(m, sizeof(rte_ether_hdr));
    rte_mbuf* frags[64];
    int32_t nf = rte_ipv4_fragment_copy_nonseg_packet(m, frags, 64, od->mtu, m->pool);
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
    return;
  }
  out_push(c, o, m, target, dev);
}

// The ICMP error ratelimits of icmp_send (icmpv4_global_allow, then
// icmpv4_xrlim_allow); frag-needed is exempt from both (PMTU discovery).
bool icmp_allowed(Ctx& c, MibBlock& mib, uint8_t type, uint8_t code, uint32_t dst) {
  if (!((1u << type) & kIcmpRatemask) || (type == 3 && code == 4)) return true;
  if (!c.ws.rl.global_allow(c.now)) {
    mib[Mib::IcmpOutRateLimitGlobal]++;
    return false;
  }
  if (!c.ws.rl.xrlim_allow(dst, c.now)) {
    mib[Mib::IcmpOutRateLimitHost]++;
    return false;
  }
  return true;
}

// icmp_send's refusals: never about an ICMP error, a non-initial fragment,
// a frame that was not for us at L2, or a bad source.
bool icmp_may_reply(const rte_mbuf* m) {
  const rte_ipv4_hdr* ip = iph(m);
  if (pkt_type(m) != PktType::host) return false;
  if (rte_be_to_cpu_16(ip->fragment_offset) & kIpOffMask) return false;
  uint32_t src = rte_be_to_cpu_32(ip->src_addr);
  if (src == 0 || is_multicast(src) || is_lbcast(src)) return false;
  if (ip->next_proto_id == kProtoIcmp) {
    unsigned hl = (ip->version_ihl & 0xf) * 4u;
    if (m->data_len < sizeof(rte_ether_hdr) + hl + 1) return false;
    uint8_t t = *(reinterpret_cast<const uint8_t*>(ip) + hl);
    // Errors (and unknown types) never get an error back.
    if (t == 3 || t == 4 || t == 5 || t == 11 || t == 12 || t > 18) return false;
  }
  return true;
}

// icmp_send: build the error on the worker, queue it for ip_local_out.
void icmp_send(Ctx& c, OutVec& gen_local, rte_mbuf* m, uint8_t type, uint8_t code, uint32_t info,
               uint16_t in_dev, bool via_ip_error = false) {
  MibBlock& mib = c.ws.m(in_dev);
  if (!icmp_may_reply(m)) return;
  uint32_t dst = rte_be_to_cpu_32(iph(m)->src_addr);
  if (via_ip_error && !c.ws.rl.error_allow(dst, c.now)) return;
  if (!icmp_allowed(c, mib, type, code, dst)) return;
  uint64_t nh = 0;
  rte_fib_lookup_bulk(c.s->fib, &dst, &nh, 1);
  uint32_t from = 0;
  if (nh != 0 && nh < c.s->nh.size()) from = c.s->dev_addr[c.s->nh[nh].dev];
  if (from == 0) from = c.s->dev_addr[in_dev];
  if (from == 0) return;
  rte_mbuf* e = c.l3.icmp_error(m->pool, m, type, code, info, from, c.ws.ip_id++);
  if (e == nullptr) return;
  mib[Mib::IcmpOutMsgs]++;
  if (type == 3) mib[Mib::IcmpOutDestUnreachs]++;
  if (type == 11) mib[Mib::IcmpOutTimeExcds]++;
  meta(e).skb_iif = in_dev;
  gen_local.pkts[gen_local.n++] = e;
}

// ip_local_out for packets made here: route by destination, then ip_output.
void route_out(Ctx& c, OutVec& o, rte_mbuf** pkts, uint16_t n) {
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

// [ipv4/local_out] NF_INET_LOCAL_OUT (__ip_local_out; here before the
// route lookup, so no output device), then route_out.
void local_out(Ctx& c, OutVec& o, rte_mbuf** pkts, uint16_t n) {
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

// A private, writable copy when the packet is shared (several handlers) or indirect.
rte_mbuf* unshare(Worker& w, rte_mbuf* m) {
  if (rte_mbuf_refcnt_read(m) == 1 && RTE_MBUF_DIRECT(m)) return m;
  rte_mbuf* c = rte_pktmbuf_copy(m, m->pool, 0, UINT32_MAX);
  if (c != nullptr) std::memcpy(rte_mbuf_to_priv(c), rte_mbuf_to_priv(m), sizeof(PktMeta));
  w.free_later(m);
  return c;
}

// icmp_rcv for local packets; echo requests are answered in place.
// Returns true when the packet became a reply to send (in `gen`).
void icmp_rcv(Ctx& c, OutVec& gen, rte_mbuf* m, RtType rt, uint16_t dev) {
  MibBlock& mib = c.ws.m(dev);
  rte_ipv4_hdr* ip = iph(m);
  unsigned hl = (ip->version_ihl & 0xf) * 4u;
  uint16_t tot = rte_be_to_cpu_16(ip->total_length);
  mib[Mib::IcmpInMsgs]++;
  uint32_t len = tot - hl;
  uint16_t sum = 0;
  if (len < sizeof(rte_icmp_hdr) ||
      rte_raw_cksum_mbuf(m, sizeof(rte_ether_hdr) + hl, len, &sum) != 0 || sum != 0xffff) {
    mib[Mib::IcmpInCsumErrors] += len >= sizeof(rte_icmp_hdr) ? 1 : 0;
    mib[Mib::IcmpInErrors]++;
    c.w.drop(m, dev, DropReason::icmp_csum);
    return;
  }
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(reinterpret_cast<uint8_t*>(ip) + hl);
  switch (icmp->icmp_type) {
    case RTE_IP_ICMP_ECHO_REQUEST: {
      mib[Mib::IcmpInEchos]++;
      if (rt != RtType::local) {  // icmp_echo_ignore_broadcasts = 1
        c.w.drop(m, dev, DropReason::icmp_ignored);
        return;
      }
      // icmp_reply: same payload, addresses swapped, a fresh IP header.
      uint32_t a = ip->src_addr;
      ip->src_addr = ip->dst_addr;
      ip->dst_addr = a;
      ip->time_to_live = 64;
      ip->fragment_offset = 0;
      ip->packet_id = rte_cpu_to_be_16(c.ws.ip_id++);
      ip->hdr_checksum = 0;
      ip->hdr_checksum = rte_ipv4_cksum(ip);
      icmp->icmp_type = RTE_IP_ICMP_ECHO_REPLY;
      uint32_t ck = uint32_t(rte_be_to_cpu_16(icmp->icmp_cksum)) + 0x0800;  // type 8 → 0
      ck = (ck & 0xffff) + (ck >> 16);
      icmp->icmp_cksum = rte_cpu_to_be_16(static_cast<uint16_t>(ck));
      mib[Mib::IcmpOutMsgs]++;
      mib[Mib::IcmpOutEchoReps]++;
      meta(m).skb_iif = dev;
      gen.pkts[gen.n++] = m;
      return;
    }
    case RTE_IP_ICMP_ECHO_REPLY:
      mib[Mib::IcmpInEchoReps]++;
      break;
    case 3:
      mib[Mib::IcmpInDestUnreachs]++;
      break;
    case 11:
      mib[Mib::IcmpInTimeExcds]++;
      break;
    default:
      break;
  }
  c.w.free_later(m);  // consumed: no socket here wants it
}

// tcp_v4_send_reset for a segment to a local address with no socket (no
// punt TAP): never for a RST; ACK set → seq = its ack_seq, else RST|ACK with
// ack = seq + SYN + FIN + payload. Rewritten in place; false → drop it
// (m is then still owned by the caller, or null when the checksum was bad
// and it was dropped here).
bool tcp_reset(Ctx& c, rte_mbuf*& m, uint16_t dev) {
  rte_ipv4_hdr* ip = iph(m);
  unsigned hl = (ip->version_ihl & 0xf) * 4u;
  uint16_t tot = rte_be_to_cpu_16(ip->total_length);
  if (tot < hl + 20 || m->data_len < sizeof(rte_ether_hdr) + tot) return false;
  auto* tcp = reinterpret_cast<uint8_t*>(ip) + hl;
  if (hl == 20 && rte_ipv4_udptcp_cksum_verify(ip, tcp) != 0) {
    c.ws.m(dev)[Mib::TcpInCsumErrors]++;
    c.w.drop(m, dev, DropReason::tcp_csum);
    m = nullptr;
    return false;
  }
  uint8_t flags = tcp[13];
  if (flags & 0x04) return false;  // RST
  unsigned doff = (tcp[12] >> 4) * 4u;
  uint32_t seq, ack;
  std::memcpy(&seq, tcp + 4, 4);
  std::memcpy(&ack, tcp + 8, 4);
  uint16_t sport, dport;
  std::memcpy(&sport, tcp, 2);
  std::memcpy(&dport, tcp + 2, 2);
  uint32_t payload = tot > hl + doff ? tot - hl - doff : 0;
  uint8_t th[20] = {};
  std::memcpy(th, &dport, 2);
  std::memcpy(th + 2, &sport, 2);
  if (flags & 0x10) {  // ACK: seq = ack_seq
    std::memcpy(th + 4, &ack, 4);
    th[13] = 0x04;
  } else {
    uint32_t a =
        rte_be_to_cpu_32(seq) + payload + ((flags & 0x02) ? 1 : 0) + ((flags & 0x01) ? 1 : 0);
    a = rte_cpu_to_be_32(a);
    std::memcpy(th + 8, &a, 4);
    th[13] = 0x14;
  }
  th[12] = 5 << 4;
  uint32_t src = ip->src_addr;
  ip->version_ihl = 0x45;
  ip->src_addr = ip->dst_addr;
  ip->dst_addr = src;
  ip->total_length = rte_cpu_to_be_16(40);
  ip->time_to_live = 64;
  ip->fragment_offset = rte_cpu_to_be_16(kIpDf);
  ip->packet_id = 0;
  ip->type_of_service = 0;
  std::memcpy(reinterpret_cast<uint8_t*>(ip) + 20, th, 20);
  rte_pktmbuf_trim(m, static_cast<uint16_t>(m->pkt_len - (sizeof(rte_ether_hdr) + 40)));
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* nt = reinterpret_cast<rte_tcp_hdr*>(reinterpret_cast<uint8_t*>(ip) + 20);
  nt->cksum = 0;
  nt->cksum = rte_ipv4_udptcp_cksum(ip, nt);
  c.ws.m(dev)[Mib::TcpOutRsts]++;
  meta(m).skb_iif = dev;
  return true;
}

}  // namespace

// ---- IcmpLimiter ----------------------------------------------------------------------------

IcmpLimiter::Peer& IcmpLimiter::peer(uint32_t a, uint64_t now) {
  Peer& p = peers[(a * 2654435761u) >> 22];
  if (!p.used || p.addr != a) {  // a new inet_peer: rate_last = now - 60 s, so tokens start full
    p.used = true;
    p.addr = a;
    p.tokens = 60000;
    p.last_ms = now;
  }
  return p;
}

bool IcmpLimiter::error_allow(uint32_t a, uint64_t now) {
  Peer& p = peer(a, now);
  p.tokens += now - p.last_ms;
  if (p.tokens > 5000) p.tokens = 5000;
  p.last_ms = now;
  if (p.tokens >= 1000) {
    p.tokens -= 1000;
    return true;
  }
  return false;
}

bool IcmpLimiter::xrlim_allow(uint32_t a, uint64_t now) {
  Peer& p = peer(a, now);
  uint64_t token = p.tokens + (now - p.last_ms);
  p.last_ms = now;
  if (token > 6 * 1000) token = 6 * 1000;
  bool ok = false;
  if (token >= 1000) {
    token -= 1000;
    ok = true;
  }
  p.tokens = token;
  return ok;
}

bool IcmpLimiter::global_allow(uint64_t now) {
  if (!global_init) {
    global_init = true;
    global_stamp_ms = now;
    global_credit = 50;
  }
  uint64_t delta = std::min<uint64_t>(now - global_stamp_ms, 1000);
  if (global_credit == 0 && delta < 20) return false;  // HZ/50
  uint64_t incr = 1000 * delta / 1000;
  if (incr != 0) {
    global_credit = std::min<uint64_t>(global_credit + incr, 50);
    global_stamp_ms = now;
  }
  if (global_credit == 0) return false;
  global_credit--;
  return true;
}

// ---- ICMP error construction ------------------------------------------------------------------

rte_mbuf* L3::icmp_error(rte_mempool* mp, const rte_mbuf* orig, uint8_t type, uint8_t code,
                         uint32_t info, uint32_t src, uint16_t id) {
  const rte_ipv4_hdr* oip = iph(orig);
  unsigned ohl = (oip->version_ihl & 0xf) * 4u;
  unsigned avail = orig->pkt_len - sizeof(rte_ether_hdr);
  unsigned otot = std::min<unsigned>(rte_be_to_cpu_16(oip->total_length), avail);
  // The original header and the first 8 bytes of its payload (RFC 792).
  unsigned quote = std::min<unsigned>(otot, ohl + 8);
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return nullptr;
  unsigned total = sizeof(rte_ipv4_hdr) + sizeof(rte_icmp_hdr) + quote;
  auto* p = reinterpret_cast<uint8_t*>(
      rte_pktmbuf_append(m, static_cast<uint16_t>(sizeof(rte_ether_hdr) + total)));
  if (p == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  std::memset(p, 0, sizeof(rte_ether_hdr));
  auto* ip = reinterpret_cast<rte_ipv4_hdr*>(p + sizeof(rte_ether_hdr));
  ip->version_ihl = 0x45;
  ip->type_of_service = static_cast<uint8_t>((oip->type_of_service & 0x1e) | 0xc0);
  ip->total_length = rte_cpu_to_be_16(static_cast<uint16_t>(total));
  ip->packet_id = rte_cpu_to_be_16(id);
  ip->fragment_offset = 0;
  ip->time_to_live = 64;
  ip->next_proto_id = kProtoIcmp;
  ip->src_addr = rte_cpu_to_be_32(src);
  ip->dst_addr = oip->src_addr;
  ip->hdr_checksum = 0;
  ip->hdr_checksum = rte_ipv4_cksum(ip);
  auto* icmp = reinterpret_cast<rte_icmp_hdr*>(ip + 1);
  icmp->icmp_type = type;
  icmp->icmp_code = code;
  icmp->icmp_cksum = 0;
  uint32_t rest = rte_cpu_to_be_32(info);  // frag needed: next-hop MTU in the low 16 bits
  std::memcpy(&icmp->icmp_ident, &rest, 4);
  auto* q = reinterpret_cast<uint8_t*>(icmp + 1);
  const void* src_bytes = rte_pktmbuf_read(orig, sizeof(rte_ether_hdr), quote, q);
  if (src_bytes != q) std::memcpy(q, src_bytes, quote);
  uint16_t ck = rte_raw_cksum(icmp, sizeof(rte_icmp_hdr) + quote);
  icmp->icmp_cksum = ck == 0xffff ? ck : static_cast<uint16_t>(~ck);
  return m;
}

namespace {

void ip_rcv_finish(Ctx& c, uint16_t dev, rte_mbuf** pre, uint16_t npre);

// ip_local_deliver_finish for one packet of route type rt: the host
// kernel's (punt TAP tap) or answered here. Also the okfn of ipv4/local_in.
void local_deliver_finish(Ctx& c, OutVec& gen, rte_mbuf** punted, uint16_t& np, rte_mbuf* m,
                          RtType rt, uint16_t tap, uint16_t dev) {
  Worker& w = c.w;
  MibBlock& mib = c.ws.m(dev);
  rte_ipv4_hdr* ip = iph(m);
  auto punt = [&]() {
    mib[Mib::InDelivers]++;
    meta(m).dev = tap;
    meta(m).flags &= static_cast<uint8_t>(~kFlagVlan);
    punted[np++] = m;
  };
  unsigned hl = (ip->version_ihl & 0xf) * 4u;
  switch (ip->next_proto_id) {
    case kProtoIcmp: {
      bool echo = m->data_len > sizeof(rte_ether_hdr) + hl &&
                  *(reinterpret_cast<const uint8_t*>(ip) + hl) == RTE_IP_ICMP_ECHO_REQUEST;
      if (tap != kNoDev && !echo) {  // replies and errors are for the host's sockets
        punt();
        break;
      }
      mib[Mib::InDelivers]++;
      icmp_rcv(c, gen, m, rt, dev);
      break;
    }
    case kProtoUdp:
      if (tap != kNoDev) {
        punt();
        break;
      }
      // No socket on this address (no punt TAP): __udp4_lib_rcv's port unreachable.
      mib[Mib::InDelivers]++;
      if (rt == RtType::local) icmp_send(c, gen, m, 3, 3, 0, dev);
      w.drop(m, dev, DropReason::no_socket);
      break;
    case kProtoTcp:
      if (tap != kNoDev) {
        punt();
        break;
      }
      // No socket: tcp_v4_send_reset.
      mib[Mib::InDelivers]++;
      if (rt == RtType::local && tcp_reset(c, m, dev)) {
        gen.pkts[gen.n++] = m;
        break;
      }
      if (m != nullptr) w.drop(m, dev, DropReason::no_socket);
      break;
    default:
      if (tap != kNoDev) {
        punt();
        break;
      }
      mib[Mib::InUnknownProtos]++;
      if (rt == RtType::local) icmp_send(c, gen, m, 3, 2, 0, dev);
      w.drop(m, dev, DropReason::ip_noproto);
      break;
  }
}

// ---- the punt TAP: what the host kernel sends --------------------------------------------------

// Packets from the kernel's side of a punt TAP are locally generated:
// sanity checks only, then ip_local_out (routing, neighbours, the wire).
void from_host(Ctx& c, rte_mbuf** pkts, uint16_t n, uint16_t dev) {
  rte_mbuf* ok[kBurst];
  uint16_t k = 0;
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    uint32_t len = m->pkt_len - sizeof(rte_ether_hdr);
    m = unshare(c.w, m);
    if (m == nullptr) continue;
    if (len < sizeof(rte_ipv4_hdr) || m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr) ||
        (iph(m)->version_ihl >> 4) != 4 || (iph(m)->version_ihl & 0xf) < 5 ||
        rte_be_to_cpu_16(iph(m)->total_length) > len) {
      c.w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    uint32_t tot = rte_be_to_cpu_16(iph(m)->total_length);
    if (len > tot) rte_pktmbuf_trim(m, static_cast<uint16_t>(len - tot));
    uint32_t dst = rte_be_to_cpu_32(iph(m)->dst_addr);
    const LocalSlot* ls = c.s->find_local(dst);
    if (is_multicast(dst) || is_lbcast(dst) || (ls != nullptr && ls->type == RtType::broadcast)) {
      c.w.drop(m, dev, DropReason::ip_invalid_dest);  // no multicast/broadcast output from the host
      continue;
    }
    meta(m).skb_iif = dev;
    ok[k++] = m;
  }
  OutVec out;
  if (k != 0) local_out(c, out, ok, k);
  neigh_output(c, out);
}
}  // namespace

// ---- ip_rcv ---------------------------------------------------------------------------------

void ip_rcv(Worker& w, void* vctx, rte_mbuf** pkts, uint16_t n) {
  L3& l3 = *static_cast<L3*>(vctx);
  Ctx c{w, l3, l3.ws(w.id), l3.snap(), l3.now_ms()};
  const uint16_t dev = meta(pkts[0]).dev;
  if (const Device* in = w.net.dev(dev); in != nullptr && in->kind == DevKind::punt) {
    from_host(c, pkts, n, dev);
    return;
  }
  MibBlock& mib = c.ws.m(dev);
  DevCounters& dc = w.c(dev);

  rte_mbuf* pre[kBurst];  // valid, for PRE_ROUTING
  uint16_t npre = 0;
  // Per-burst sums of the per-packet MIB counters (added once, below).
  uint64_t in_receives = 0, in_octets = 0, ecn[4] = {};

  // ---- ip_rcv_core: validation in Linux's order ----
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    if (i + 2 < n) rte_prefetch0(rte_pktmbuf_mtod(pkts[i + 2], void*));
    if (pkt_type(m) == PktType::otherhost) {  // no MIB, not even InReceives
      dc.rx_otherhost_dropped++;
      w.drop(m, dev, DropReason::otherhost);
      continue;
    }
    uint32_t len = m->pkt_len - sizeof(rte_ether_hdr);
    in_receives++;
    in_octets += len;
    if (rte_mbuf_refcnt_read(m) != 1 || !RTE_MBUF_DIRECT(m)) m = unshare(w, m);
    if (m == nullptr) {
      mib[Mib::InDiscards]++;
      w.drops[dev][static_cast<unsigned>(DropReason::nomem)]++;
      continue;
    }
    if (len < sizeof(rte_ipv4_hdr) || m->data_len < sizeof(rte_ether_hdr) + sizeof(rte_ipv4_hdr)) {
      mib[Mib::InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    rte_ipv4_hdr* ip = iph(m);
    unsigned ihl = ip->version_ihl & 0xf;
    if (ihl < 5 || (ip->version_ihl >> 4) != 4) {
      mib[Mib::InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    ecn[ip->type_of_service & 3]++;
    unsigned hl = ihl * 4;
    if (len < hl || m->data_len < sizeof(rte_ether_hdr) + hl) {
      mib[Mib::InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    uint64_t ck_flags = m->ol_flags & RTE_MBUF_F_RX_IP_CKSUM_MASK;
    if (ck_flags == RTE_MBUF_F_RX_IP_CKSUM_BAD ||
        (ck_flags != RTE_MBUF_F_RX_IP_CKSUM_GOOD && !hdr_csum_ok(ip, hl))) {
      mib[Mib::InCsumErrors]++;
      mib[Mib::InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_csum);
      continue;
    }
    uint32_t tot = rte_be_to_cpu_16(ip->total_length);
    if (len < tot) {
      mib[Mib::InTruncatedPkts]++;
      w.drop(m, dev, DropReason::pkt_too_small);
      continue;
    }
    if (tot < hl) {
      mib[Mib::InHdrErrors]++;
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    if (len > tot &&
        rte_pktmbuf_trim(m, static_cast<uint16_t>(len - tot)) != 0) {  // Ethernet padding
      mib[Mib::InDiscards]++;
      w.drop(m, dev, DropReason::nomem);
      continue;
    }
    pre[npre++] = m;
  }

  mib[Mib::InReceives] += in_receives;
  mib[Mib::InOctets] += in_octets;
  mib[Mib::InNoECTPkts] += ecn[0];
  mib[Mib::InECT1Pkts] += ecn[1];
  mib[Mib::InECT0Pkts] += ecn[2];
  mib[Mib::InCEPkts] += ecn[3];

  // [ipv4/pre_routing] NF_INET_PRE_ROUTING (in = dev), after validation.
  if (npre != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV4_PRE_ROUTING, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
    npre = l3.hooks->run(w, st, pre, npre, dev);
  }
  if (npre != 0) ip_rcv_finish(c, dev, pre, npre);
}

namespace {

// ip_rcv_finish: the input route (martians, broadcast, local table, FIB),
// then ip_forward / ip_error and ip_local_deliver, then output. Also the
// okfn of ipv4/pre_routing for packets a queue consumer accepted.
void ip_rcv_finish(Ctx& c, uint16_t dev, rte_mbuf** pre, uint16_t npre) {
  Worker& w = c.w;
  L3& l3 = c.l3;
  MibBlock& mib = c.ws.m(dev);
  rte_mbuf* fwd[kBurst];
  uint32_t fwd_dst[kBurst];
  uint16_t nf = 0;
  rte_mbuf* loc[kBurst];
  RtType loc_rt[kBurst];
  uint16_t loc_dev[kBurst];  // the device that owns the address (its punt TAP gets the rest)
  uint16_t nl = 0;
  for (uint16_t pi = 0; pi < npre; pi++) {
    rte_mbuf* m = pre[pi];
    rte_ipv4_hdr* ip = iph(m);
    // ---- ip_route_input_slow: martians, broadcast, local table ----
    uint32_t src = rte_be_to_cpu_32(ip->src_addr);
    uint32_t dst = rte_be_to_cpu_32(ip->dst_addr);
    if (is_multicast(src) || is_lbcast(src)) {
      w.drop(m, dev, DropReason::ip_invalid_source);
      continue;
    }
    if (is_lbcast(dst) || (src == 0 && dst == 0)) {
      mib[Mib::InBcastPkts]++;
      loc[nl] = m;
      loc_dev[nl] = dev;
      loc_rt[nl++] = RtType::broadcast;
      continue;
    }
    if (is_zeronet(src) || is_loopback(src)) {
      w.drop(m, dev, DropReason::ip_invalid_source);
      continue;
    }
    if (is_zeronet(dst) || is_loopback(dst)) {
      w.drop(m, dev, DropReason::ip_invalid_dest);
      continue;
    }
    if (is_multicast(dst)) {
      mib[Mib::InMcastPkts]++;
      if (dst == 0xe0000001u) {  // all-hosts: always joined
        loc[nl] = m;
        loc_dev[nl] = dev;
        loc_rt[nl++] = RtType::broadcast;
      } else {  // no group joined, no multicast routing
        w.drop(m, dev, DropReason::ip_invalid_dest);
      }
      continue;
    }
    if (const LocalSlot* ls = c.s->find_local(dst)) {  // the local table comes first
      if (ls->type == RtType::broadcast) mib[Mib::InBcastPkts]++;
      loc[nl] = m;
      loc_dev[nl] = ls->dev;
      loc_rt[nl++] = ls->type;
      continue;
    }
    fwd[nf] = m;
    fwd_dst[nf++] = dst;
  }

  OutVec out;  // leaving through ip_output
  OutVec gen;  // made here (ICMP), for ip_local_out
  uint64_t nh[kBurst];
  if (nf != 0) rte_fib_lookup_bulk(c.s->fib, fwd_dst, nh, nf);

  // ---- ip_forward / ip_error ----
  rte_mbuf* fo_m[kBurst];
  uint32_t fo_tgt[kBurst];
  uint16_t fo_dev[kBurst];
  uint16_t nfo = 0;
  for (uint16_t i = 0; i < nf; i++) {
    rte_mbuf* m = fwd[i];
    if (nh[i] == 0 || nh[i] >= c.s->nh.size()) {
      // ip_error, ENETUNREACH (forwarding on): ICMP net unreachable.
      mib[Mib::InNoRoutes]++;
      icmp_send(c, gen, m, 3, 0, 0, dev, true);
      w.drop(m, dev, DropReason::ip_innoroutes);
      continue;
    }
    if (pkt_type(m) != PktType::host) {  // silent, no MIB
      w.drop(m, dev, DropReason::ip_fwd_not_host);
      continue;
    }
    rte_ipv4_hdr* ip = iph(m);
    if (ip->time_to_live <= 1) {
      mib[Mib::InHdrErrors]++;
      icmp_send(c, gen, m, 11, 0, 0, dev);
      w.drop(m, dev, DropReason::ip_inhdr);
      continue;
    }
    const NextHop& h = c.s->nh[nh[i]];
    Device* od = w.net.dev(h.dev);
    uint16_t tot = rte_be_to_cpu_16(ip->total_length);
    if (od != nullptr && tot > od->mtu && (rte_be_to_cpu_16(ip->fragment_offset) & kIpDf)) {
      mib[Mib::FragFails]++;
      icmp_send(c, gen, m, 3, 4, od->mtu, dev);
      w.drop(m, dev, DropReason::pkt_too_big);
      continue;
    }
    // ip_decrease_ttl: incremental checksum update (RFC 1624).
    uint32_t check = ip->hdr_checksum;
    check += rte_cpu_to_be_16(0x0100);
    ip->hdr_checksum = static_cast<uint16_t>(check + (check >= 0xffff));
    ip->time_to_live--;
    fo_m[nfo] = m;
    fo_tgt[nfo] = h.gw != 0 ? h.gw : fwd_dst[i];
    fo_dev[nfo++] = h.dev;
  }
  // [ipv4/forward] NF_INET_FORWARD (in = dev, out = the route's device),
  // then ip_forward_finish (ForwDatagrams) and ip_output ([post_routing]).
  uint16_t fo_idx[kBurst];
  uint16_t nfk = nfo;
  for (uint16_t i = 0; i < nfo; i++) fo_idx[i] = i;
  if (nfo != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV4_FORWARD, static_cast<uint16_t>(w.id), dev, kNoDev, fo_dev};
    nfk = l3.hooks->run(w, st, fo_m, nfo, dev, fo_idx);
  }
  mib[Mib::ForwDatagrams] += nfk;
  for (uint16_t i = 0; i < nfk; i++)
    ip_output(c, out, fo_m[i], fo_tgt[fo_idx[i]], fo_dev[fo_idx[i]]);

  // ---- ip_local_deliver ----
  rte_mbuf* punted[kBurst];
  uint16_t np = 0;
  rte_mbuf* li[kBurst];
  uint16_t li_idx[kBurst];
  uint16_t nli = 0;
  for (uint16_t i = 0; i < nl; i++) {
    rte_mbuf* m = loc[i];
    rte_ipv4_hdr* ip = iph(m);
    const uint16_t tap = c.s->punt[loc_dev[i]];
    if (rte_be_to_cpu_16(ip->fragment_offset) & (kIpMf | kIpOffMask)) {
      mib[Mib::ReasmReqds]++;
      if (tap != kNoDev) {  // the host kernel reassembles
        meta(m).dev = tap;
        meta(m).flags &= static_cast<uint8_t>(~kFlagVlan);
        punted[np++] = m;
      } else {
        w.drop(m, dev, DropReason::ip_frag_local);
      }
      continue;
    }
    li_idx[nli] = i;
    li[nli++] = m;
  }
  // [ipv4/local_in] NF_INET_LOCAL_IN (in = dev), after reassembly (fragments
  // went to the host kernel above).
  uint16_t li_kept[kBurst];
  for (uint16_t i = 0; i < nli; i++) li_kept[i] = i;
  if (nli != 0 && l3.hooks != nullptr) {
    hooks::State st{SLUICE_IPV4_LOCAL_IN, static_cast<uint16_t>(w.id), dev, kNoDev, nullptr};
    nli = l3.hooks->run(w, st, li, nli, dev, li_kept);
  }
  for (uint16_t j = 0; j < nli; j++) {
    const uint16_t i = li_idx[li_kept[j]];
    local_deliver_finish(c, gen, punted, np, li[j], loc_rt[i], c.s->punt[loc_dev[i]], dev);
  }
  if (np != 0) xmit_grouped(w, punted, np);

  if (gen.n != 0) local_out(c, out, gen.pkts, gen.n);
  neigh_output(c, out);
}

// ---- okfns: packets a hook queue consumer accepted go on from their point ----------------------

Ctx ctx_of(Worker& w, void* l3v) {
  L3& l3 = *static_cast<L3*>(l3v);
  return Ctx{w, l3, l3.ws(w.id), l3.snap(), l3.now_ms()};
}

// The route of now for m's destination: (device, address to resolve), or
// false. A queued packet may have waited across a route change.
bool route_of(Ctx& c, rte_mbuf* m, uint16_t* dev, uint32_t* target) {
  uint32_t dst = rte_be_to_cpu_32(iph(m)->dst_addr);
  uint64_t nh = 0;
  rte_fib_lookup_bulk(c.s->fib, &dst, &nh, 1);
  if (nh == 0 || nh >= c.s->nh.size()) return false;
  const NextHop& h = c.s->nh[nh];
  *dev = h.dev;
  *target = h.gw != 0 ? h.gw : dst;
  return true;
}

void ok_pre_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx_of(w, l3);
  ip_rcv_finish(c, st.in, pkts, n);
}

// ip_forward_finish: ForwDatagrams, ip_output (and post_routing).
void ok_forward(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx_of(w, l3);
  OutVec out;
  for (uint16_t i = 0; i < n; i++) {
    uint16_t dev;
    uint32_t target;
    if (!route_of(c, pkts[i], &dev, &target)) {
      c.ws.m(st.in)[Mib::OutNoRoutes]++;
      w.drop(pkts[i], st.in, DropReason::ip_outnoroutes);
      continue;
    }
    c.ws.m(st.in)[Mib::ForwDatagrams]++;
    ip_output(c, out, pkts[i], target, dev);
  }
  neigh_output(c, out);
}

// ip_local_deliver_finish with the local route of now.
void ok_local_in(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx_of(w, l3);
  OutVec gen, out;
  rte_mbuf* punted[kBurst];
  uint16_t np = 0;
  for (uint16_t i = 0; i < n; i++) {
    uint32_t dst = rte_be_to_cpu_32(iph(pkts[i])->dst_addr);
    RtType rt = RtType::broadcast;  // limited broadcast, all-hosts
    uint16_t owner = st.in;
    if (const LocalSlot* ls = c.s->find_local(dst)) {
      rt = ls->type;
      owner = ls->dev;
    } else if (!is_lbcast(dst) && !is_multicast(dst) && dst != 0) {  // the address went away
      w.drop(pkts[i], st.in, DropReason::ip_invalid_dest);
      continue;
    }
    local_deliver_finish(c, gen, punted, np, pkts[i], rt, c.s->punt[owner], st.in);
  }
  if (np != 0) xmit_grouped(w, punted, np);
  if (gen.n != 0) local_out(c, out, gen.pkts, gen.n);
  neigh_output(c, out);
}

void ok_local_out(Worker& w, const hooks::State&, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx_of(w, l3);
  OutVec out;
  route_out(c, out, pkts, n);
  neigh_output(c, out);
}

// neigh_output after post_routing: the device the packet was routed to.
void ok_post_routing(Worker& w, const hooks::State& st, rte_mbuf** pkts, uint16_t n, void* l3) {
  Ctx c = ctx_of(w, l3);
  OutVec o;
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

}  // namespace

void ipv4_set_okfns(L3& l3) {
  if (l3.hooks == nullptr) return;
  l3.hooks->set_okfns(SLUICE_IPV4_PRE_ROUTING,
                      {ok_pre_routing, ok_local_in, ok_forward, ok_local_out, ok_post_routing},
                      &l3);
}

void ip_local_out(Worker& w, L3& l3, rte_mbuf** pkts, uint16_t n) {
  Ctx c{w, l3, l3.ws(w.id), l3.snap(), l3.now_ms()};
  OutVec out;
  local_out(c, out, pkts, n);
  neigh_output(c, out);
}

}  // namespace sluice::l3
