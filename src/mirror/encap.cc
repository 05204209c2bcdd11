// Remote mirror destinations: the outer headers sluice builds around a copy
// (VXLAN, RFC 7348; Ethernet over GRE, RFC 1701/2784 with 0x6558 as Linux's
// gretap; ERSPAN type II, draft-foschiano-erspan, GRE 0x88BE with sequence
// numbers as Linux's erspan). The copy is a new first segment holding the
// room for Ethernet (filled by L3's neighbour output), the outer IPv4 and
// tunnel headers — and, when the frame's VLAN tag is held in the metadata,
// the inner MAC addresses and the tag — chained to a clone of the frame: the
// payload is shared, never copied, unless the outer packet must be
// fragmented (then it is made linear for L3's fragmenter).
#include <cstring>

#include <rte_byteorder.h>
#include <rte_hash_crc.h>
#include <rte_ip.h>
#include <rte_mbuf.h>

#include "core/meta.hh"
#include "mirror/mirror.hh"

namespace sluice::mirror {
namespace {

constexpr uint16_t kEth = 14;
constexpr uint16_t kIp = 20;

void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// The source port of a VXLAN packet from the inner flow (Linux:
// udp_flow_src_port over the local port range 32768–60999).
uint16_t flow_port(const rte_mbuf* m) {
  uint32_t h;
  if (m->ol_flags & RTE_MBUF_F_RX_RSS_HASH) {
    h = m->hash.rss;
  } else {
    uint32_t len = m->data_len < 38 ? m->data_len : 38;  // MACs, IPv4 addresses, ports
    h = rte_hash_crc(rte_pktmbuf_mtod(m, const void*), len, 0x5eed);
  }
  return static_cast<uint16_t>(32768 + h % (61000 - 32768));
}

}  // namespace

void build_encap(Mirror& mi) {
  Encap& e = mi.encap;
  std::memset(e.hdr, 0, sizeof e.hdr);
  uint8_t* ip = e.hdr;
  ip[0] = 0x45;
  ip[8] = 64;  // TTL
  put32(ip + 12, mi.src_ip);
  put32(ip + 16, mi.dst_ip);
  uint8_t* t = ip + kIp;
  switch (mi.cfg.to) {
    case config::MirrorTarget::vxlan:
      ip[9] = IPPROTO_UDP;
      put16(t + 2, static_cast<uint16_t>(mi.cfg.dst_port));
      t[8] = 0x08;  // I: the VNI is valid
      put32(t + 12, mi.cfg.vni << 8);
      e.len = kIp + 8 + 8;
      break;
    case config::MirrorTarget::gre:
      ip[9] = IPPROTO_GRE;
      put16(t, mi.cfg.key ? 0x2000 : 0);  // K
      put16(t + 2, 0x6558);               // transparent Ethernet bridging
      if (mi.cfg.key) put32(t + 4, *mi.cfg.key);
      e.len = static_cast<uint16_t>(kIp + (mi.cfg.key ? 8 : 4));
      break;
    case config::MirrorTarget::erspan:
      ip[9] = IPPROTO_GRE;
      put16(t, 0x1000);      // S: a sequence number follows
      put16(t + 2, 0x88be);  // ERSPAN type II
      // t + 4: the sequence number, per packet. t + 8: ERSPAN II, version 1.
      put32(t + 8, uint32_t(1) << 28 | (mi.cfg.session & 0x3ff));
      put32(t + 12, mi.source & 0xfffff);  // index: the source port
      e.len = kIp + 8 + 8;
      break;
    default:
      break;
  }
}

rte_mbuf* encapsulate(Mirror& mi, rte_mbuf* m, bool move, uint32_t seq, uint32_t caplen) {
  const PktMeta md = meta(m);
  const bool tagged = (md.flags & kFlagVlan) != 0;
  const Encap& e = mi.encap;
  rte_mempool* mp = m->pool;
  rte_mbuf* h = rte_pktmbuf_alloc(mp);
  if (h == nullptr) return nullptr;
  const uint16_t head = static_cast<uint16_t>(kEth + e.len + (tagged ? 16 : 0));
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(h, head));
  if (p == nullptr || m->data_len < 12) {
    rte_pktmbuf_free(h);
    return nullptr;
  }
  // The inner frame: [MACs + tag in h] + the rest of the frame (shared).
  const uint32_t skip = tagged ? 12 : 0;  // bytes of the frame already in h
  const uint32_t want = caplen - skip;    // bytes of the frame after them
  const bool truncated = caplen < m->pkt_len;
  if (tagged) {
    uint8_t* in = p + kEth + e.len;
    std::memcpy(in, rte_pktmbuf_mtod(m, const uint8_t*), 12);
    put16(in + 12, md.vlan_proto);
    put16(in + 14, md.vlan_tci);
  }
  rte_mbuf* body;
  if (m->nb_segs == 1 || caplen == m->pkt_len) {
    if (move && rte_mbuf_refcnt_read(m) == 1) {
      body = m;
    } else {
      body = rte_pktmbuf_clone(m, mp);
      if (move && body != nullptr) rte_pktmbuf_free(m);
    }
    if (body != nullptr) {
      if (skip) rte_pktmbuf_adj(body, static_cast<uint16_t>(skip));
      if (body->pkt_len > want) rte_pktmbuf_trim(body, static_cast<uint16_t>(body->pkt_len - want));
    }
  } else {
    body = rte_pktmbuf_copy(m, mp, skip, want);
    if (move) rte_pktmbuf_free(m);
  }
  if (body == nullptr) {
    rte_pktmbuf_free(h);
    return nullptr;
  }
  const uint32_t inner = (tagged ? 16 : 0) + body->pkt_len;

  std::memcpy(p + kEth, e.hdr, e.len);
  uint8_t* ip = p + kEth;
  uint8_t* t = ip + kIp;
  put16(ip + 2, static_cast<uint16_t>(e.len + inner));
  put16(ip + 4, static_cast<uint16_t>(seq));  // identification
  switch (mi.cfg.to) {
    case config::MirrorTarget::vxlan:
      put16(t, flow_port(body));
      put16(t + 4, static_cast<uint16_t>(8 + 8 + inner));
      break;
    case config::MirrorTarget::erspan: {
      put32(t + 4, seq);
      uint32_t w0 = uint32_t(1) << 28 | (mi.cfg.session & 0x3ff);
      if (tagged) {
        w0 |= uint32_t(md.vlan_tci & 0xfff) << 16 | uint32_t(md.vlan_tci >> 13) << 13 |
              uint32_t(3) << 11;  // En: the tag is kept in the frame
      }
      if (truncated) w0 |= uint32_t(1) << 10;  // T: truncated
      put32(t + 8, w0);
      break;
    }
    default:
      break;
  }
  auto* iph = reinterpret_cast<rte_ipv4_hdr*>(ip);
  iph->hdr_checksum = 0;
  iph->hdr_checksum = rte_ipv4_cksum(iph);

  if (rte_pktmbuf_chain(h, body) != 0) {
    rte_pktmbuf_free(h);
    rte_pktmbuf_free(body);
    return nullptr;
  }
  // L3 fragments only linear packets.
  if (e.len + inner > mi.underlay_mtu && rte_pktmbuf_linearize(h) != 0) {
    rte_pktmbuf_free(h);
    return nullptr;
  }
  PktMeta& hm = meta(h);
  std::memset(&hm, 0, sizeof hm);
  hm.flags = kFlagMirrored;  // never mirrored again, wherever it leaves
  hm.mirror_depth = static_cast<uint8_t>(md.mirror_depth + 1);
  hm.skb_iif = mi.source;
  hm.dev = kNoDev;
  hm.protocol = 0x0800;
  return h;
}

}  // namespace sluice::mirror
