// ICMP (net/ipv4/icmp.c): the rate limits, the error frame, and on the
// worker icmp_send (errors about packets ip_rcv, ip_forward and
// ip_local_deliver refuse) and icmp_rcv (echo requests answered in place).
// Drop reasons: icmp_csum, icmp_ignored. Counters: Icmp* of the IP MIB.
// Spec: ../shared/spec/linux-rx.md §6.3–6.4; docs/l3.md "ICMP errors".
#include "l3/icmp.hh"

#include <algorithm>

#include <rte_byteorder.h>
#include <rte_fib.h>
#include <rte_icmp.h>

#include "l3/ipv4.hh"

namespace sluice::l3 {

namespace {

constexpr uint32_t kIcmpRatemask =
    0x1818;  // dest-unreach, source-quench, time-exceeded, param-problem

// The ICMP error ratelimits of icmp_send (icmpv4_global_allow, then
// icmpv4_xrlim_allow); frag-needed is exempt from both (PMTU discovery).
bool icmp_allowed(Ctx4& c, MibBlock& mib, uint8_t type, uint8_t code, uint32_t dst) {
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

// icmp_reply for an echo request: same payload, addresses swapped, a fresh
// IP header; the ICMP checksum updated for type 8 → 0.
void icmp_echo_reply(Ctx4& c, rte_ipv4_hdr* ip, rte_icmp_hdr* icmp) {
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
}

}  // namespace

// ---- on the worker --------------------------------------------------------------------------

void icmp_send(Ctx4& c, PktVec& gen_local, const rte_mbuf* m, uint8_t type, uint8_t code,
               uint32_t info, uint16_t in_dev, bool via_ip_error) {
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
  rte_mbuf* e = icmp_error(m->pool, m, type, code, info, from, c.ws.ip_id++);
  if (e == nullptr) return;
  mib[Mib::IcmpOutMsgs]++;
  if (type == 3) mib[Mib::IcmpOutDestUnreachs]++;
  if (type == 11) mib[Mib::IcmpOutTimeExcds]++;
  meta(e).skb_iif = in_dev;
  gen_local.push(e);
}

void icmp_rcv(Ctx4& c, PktVec& gen, rte_mbuf* m, RtType rt, uint16_t dev) {
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
    case RTE_IP_ICMP_ECHO_REQUEST:
      mib[Mib::IcmpInEchos]++;
      if (rt != RtType::local) {  // icmp_echo_ignore_broadcasts = 1
        c.w.drop(m, dev, DropReason::icmp_ignored);
        return;
      }
      if (traced(m)) [[unlikely]] {  // the request is delivered; its reply is traced on its own
        trace_fate(c.w, m, TraceFate::delivered, dev, "icmp_rcv", "echo request answered");
        trace_fork(c.w, m, m);
        trace_rec(c.w, m, "icmp_reply", dev, "echo reply");
      }
      icmp_echo_reply(c, ip, icmp);
      mib[Mib::IcmpOutMsgs]++;
      mib[Mib::IcmpOutEchoReps]++;
      meta(m).skb_iif = dev;
      gen.push(m);
      return;
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

// ---- the error frame ------------------------------------------------------------------------

rte_mbuf* icmp_error(rte_mempool* mp, const rte_mbuf* orig, uint8_t type, uint8_t code,
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

}  // namespace sluice::l3
