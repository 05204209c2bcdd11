// bond_xmit_hash (drivers/net/bonding/bond_main.c, 6.x): the member index
// of balance-xor, 802.3ad and balance-tlb is usable[hash % count], so these
// formulas decide where every frame goes (spec §3.4, with its worked
// examples in tests/unit/test_bond.cc).
//
// Host byte order matters: the kernel XORs raw network-order 32-bit words
// read on a little-endian CPU. le32() reproduces that on any host.
//
//   layer2       dst[5] ^ src[5] ^ ethertype                 (bond_eth_hash)
//   layer2+3     (L2 ^ daddr ^ saddr), folded >>16 >>8       (IPv4/IPv6, else layer2)
//   layer3+4     (ports or ICMP {type, code, id}) ^ daddr ^ saddr, folded, >>1
//   encap2+3/3+4 the same mixing over the flow dissector's innermost headers
//   vlan+srcmac  TCI ^ srcmac[0..2] ^ srcmac[3..5]
#include <cstring>

#include "bond/bond.hh"
#include "bond/hash_fast.hh"
#include "core/meta.hh"

namespace sluice::bond {
namespace {

constexpr uint16_t kEthIp = 0x0800, kEthIpv6 = 0x86dd, kEthArp = 0x0806, kEthRarp = 0x8035,
                   kEth8021Q = 0x8100, kEth8021AD = 0x88a8, kEthPppSes = 0x8864,
                   kEthMplsUc = 0x8847, kEthMplsMc = 0x8848, kEthTeb = 0x6558, kEthFcoe = 0x8906;
constexpr uint8_t kProtoIcmp = 1, kProtoIpip = 4, kProtoTcp = 6, kProtoUdp = 17, kProtoDccp = 33,
                  kProtoIpv6 = 41, kProtoGre = 47, kProtoEsp = 50, kProtoAh = 51, kProtoIcmpv6 = 58,
                  kProtoSctp = 132, kProtoUdplite = 136;
constexpr uint8_t kNextHop = 0, kNextRouting = 43, kNextFragment = 44, kNextDest = 60;
constexpr unsigned kMaxHdrs = 15;  // MAX_FLOW_DISSECT_HDRS

inline uint32_t le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline uint16_t be16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}

// A bounds-checked view of the frame (bond_pull_data / __skb_header_pointer).
struct Frame {
  const uint8_t* d;
  uint32_t len;
  bool has(uint32_t off, uint32_t n) const { return off <= len && n <= len - off; }
};

// struct flow_keys as far as the bond hash reads it.
struct Flow {
  uint32_t src = 0, dst = 0;  // flow_get_u32_src/dst: IPv4 raw, IPv6 folded
  uint32_t ports = 0;         // raw 4 bytes (le32 of sport_hi, sport_lo, dport_hi, dport_lo)
  uint8_t icmp_type = 0, icmp_code = 0;
  uint16_t icmp_id = 0;  // host order; 0 = no id
};

// bond_eth_hash.
inline uint32_t eth_hash(const Frame& f) {
  if (!f.has(0, 14)) return 0;
  return uint32_t(f.d[5] ^ f.d[11]) ^ be16(f.d + 12);
}

// ipv6_addr_hash: the four words XORed.
inline uint32_t v6_fold(const uint8_t* a) {
  return le32(a) ^ le32(a + 4) ^ le32(a + 8) ^ le32(a + 12);
}

// proto_ports_offset.
inline int ports_offset(int proto) {
  switch (proto) {
    case kProtoTcp:
    case kProtoUdp:
    case kProtoDccp:
    case kProtoEsp:
    case kProtoSctp:
    case kProtoUdplite:
      return 0;
    case kProtoAh:
      return 4;
    default:
      return -1;
  }
}

// __skb_flow_get_ports.
inline uint32_t get_ports(const Frame& f, uint32_t thoff, int proto) {
  int po = ports_offset(proto);
  if (po < 0 || !f.has(thoff + static_cast<uint32_t>(po), 4)) return 0;
  return le32(f.d + thoff + static_cast<uint32_t>(po));
}

inline bool icmp_has_id(uint8_t type) {
  return type == 8 || type == 0 || type == 13 || type == 14 || type == 128 || type == 129;
}

// skb_flow_get_icmp_tci.
inline void get_icmp(const Frame& f, uint32_t thoff, Flow& k) {
  if (!f.has(thoff, 8)) return;
  k.icmp_type = f.d[thoff];
  k.icmp_code = f.d[thoff + 1];
  if (icmp_has_id(k.icmp_type)) {
    uint16_t id = be16(f.d + thoff + 4);
    k.icmp_id = id != 0 ? id : 1;  // 0 means "no id"
  } else {
    k.icmp_id = 0;
  }
}

inline bool ipv4_is_fragment(const uint8_t* iph) {
  return (be16(iph + 6) & 0x3fff) != 0;  // MF or an offset
}

// bond_flow_ip: addresses of the IP header at *nhoff, *nhoff past it,
// *ip_proto (kept for IPv4 fragments), ports when l34.
bool flow_ip(const Frame& f, Flow& k, uint16_t l2_proto, uint32_t* nhoff, int* ip_proto, bool l34) {
  if (l2_proto == kEthIp) {
    if (!f.has(*nhoff, 20)) return false;
    const uint8_t* iph = f.d + *nhoff;
    k.src = le32(iph + 12);
    k.dst = le32(iph + 16);
    *nhoff += (iph[0] & 0x0f) << 2;
    if (!ipv4_is_fragment(iph)) *ip_proto = iph[9];
  } else if (l2_proto == kEthIpv6) {
    if (!f.has(*nhoff, 40)) return false;
    const uint8_t* iph = f.d + *nhoff;
    k.src = v6_fold(iph + 8);
    k.dst = v6_fold(iph + 24);
    *nhoff += 40;
    *ip_proto = iph[6];
  } else {
    return false;
  }
  if (l34 && *ip_proto >= 0) k.ports = get_ports(f, *nhoff, *ip_proto);
  return true;
}

inline bool icmp_is_err(uint8_t t) {
  return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
}
inline bool icmpv6_is_err(uint8_t t) {
  return t >= 1 && t <= 4;
}

// bond_flow_dissect for layer2+3 and layer3+4.
bool flow_dissect_l3(const Frame& f, Flow& k, uint16_t l2_proto, bool l34) {
  uint32_t nhoff = 14;
  int proto = -1;
  if (!flow_ip(f, k, l2_proto, &nhoff, &proto, l34)) return false;
  // ICMP errors carry the header of the packet that caused them: hash that
  // flow's addresses (and ports), so errors follow their flow.
  if (proto == kProtoIcmp || proto == kProtoIcmpv6) {
    get_icmp(f, nhoff, k);
    if (proto == kProtoIcmp) {
      if (!icmp_is_err(k.icmp_type)) return true;
    } else if (!icmpv6_is_err(k.icmp_type)) {
      return true;
    }
    nhoff += 8;
    return flow_ip(f, k, l2_proto, &nhoff, &proto, l34);
  }
  return true;
}

// __skb_flow_dissect with flow_keys_bonding and no flags (encap2+3, encap3+4):
// follows in-band VLAN tags, PPPoE, GRE (with Ethernet inside), IPIP and
// IPv6-in-IP, and IPv6 extension headers; returns false where the kernel's
// returns "out_bad" (the bond then falls back to layer2).
bool flow_dissect_full(const Frame& f, Flow& k, uint16_t proto) {
  uint32_t nhoff = 14;
  int ip_proto = -1;
  for (unsigned depth = 0; depth < kMaxHdrs; depth++) {
    // proto_again
    switch (proto) {
      case kEthIp: {
        if (!f.has(nhoff, 20)) return false;
        const uint8_t* iph = f.d + nhoff;
        if ((iph[0] & 0x0f) < 5) return false;
        nhoff += (iph[0] & 0x0f) * 4u;
        ip_proto = iph[9];
        k.src = le32(iph + 12);
        k.dst = le32(iph + 16);
        if (ipv4_is_fragment(iph)) return true;  // no ports, first fragment or not
        break;
      }
      case kEthIpv6: {
        if (!f.has(nhoff, 40)) return false;
        const uint8_t* iph = f.d + nhoff;
        ip_proto = iph[6];
        k.src = v6_fold(iph + 8);
        k.dst = v6_fold(iph + 24);
        nhoff += 40;
        break;
      }
      case kEth8021Q:
      case kEth8021AD:
        if (!f.has(nhoff, 4)) return false;
        proto = be16(f.d + nhoff + 2);
        nhoff += 4;
        continue;
      case kEthPppSes: {
        if (!f.has(nhoff, 8)) return false;
        const uint8_t* h = f.d + nhoff;
        if (h[0] != 0x11 || h[1] != 0) return false;  // version 1, type 1, session data
        uint16_t ppp = be16(h + 6);
        if (ppp == 0x0021) {
          proto = kEthIp;
        } else if (ppp == 0x0057) {
          proto = kEthIpv6;
        } else {
          return false;
        }
        nhoff += 8;
        continue;
      }
      case kEthArp:
      case kEthRarp:
      case kEthMplsUc:
      case kEthMplsMc:
      case kEthFcoe:
        return true;  // no key of the bonding dissector: good, addresses 0
      default:
        return false;
    }
    // ip_proto_again
    bool again = true;
    while (again) {
      again = false;
      switch (ip_proto) {
        case kProtoGre: {
          if (!f.has(nhoff, 4)) return false;
          const uint16_t flags = be16(f.d + nhoff);
          if (flags & 0x4000) return true;         // routing: not looked into
          if ((flags & 0x0007) != 0) return true;  // only version 0 is followed here
          uint16_t inner = be16(f.d + nhoff + 2);
          uint32_t off = 4;
          if (flags & 0x8000) off += 4;  // checksum + reserved
          if (flags & 0x2000) off += 4;  // key
          if (flags & 0x1000) off += 4;  // sequence
          if (inner == kEthTeb) {
            if (!f.has(nhoff + off, 14)) return false;
            inner = be16(f.d + nhoff + off + 12);
            off += 14;
          }
          nhoff += off;
          proto = inner;
          goto next_proto;
        }
        case kProtoIpip:
          proto = kEthIp;
          goto next_proto;
        case kProtoIpv6:
          proto = kEthIpv6;
          goto next_proto;
        case kNextHop:
        case kNextRouting:
        case kNextDest:
          if (proto != kEthIpv6) break;
          if (!f.has(nhoff, 2)) return false;
          ip_proto = f.d[nhoff];
          nhoff += (f.d[nhoff + 1] + 1u) << 3;
          again = true;
          break;
        case kNextFragment:
          if (proto != kEthIpv6) break;
          if (!f.has(nhoff, 8)) return false;
          return true;  // a fragment: no ports
        case kProtoIcmp:
        case kProtoIcmpv6:
          get_icmp(f, nhoff, k);
          break;
        default:
          break;
      }
    }
    k.ports = get_ports(f, nhoff, ip_proto);
    return true;
  next_proto:;
  }
  return true;
}

// bond_ip_hash.
inline uint32_t ip_hash(uint32_t hash, const Flow& k, HashPolicy p) {
  hash ^= k.dst ^ k.src;
  hash ^= hash >> 16;
  hash ^= hash >> 8;
  if (p == HashPolicy::layer34 || p == HashPolicy::encap34) return hash >> 1;
  return hash;
}

}  // namespace

uint32_t xmit_hash(HashPolicy p, const uint8_t* data, uint32_t len, bool has_vlan,
                   uint16_t vlan_tci) {
  const Frame f{data, len};
  if (p == HashPolicy::vlan_srcmac) {  // bond_vlan_srcmac_hash
    if (!f.has(0, 14)) return 0;
    const uint8_t* s = data + 6;
    uint32_t vendor = uint32_t(s[0]) << 16 | uint32_t(s[1]) << 8 | s[2];
    uint32_t dev = uint32_t(s[3]) << 16 | uint32_t(s[4]) << 8 | s[5];
    return uint32_t(has_vlan ? vlan_tci : 0) ^ vendor ^ dev;
  }
  if (p == HashPolicy::layer2 || !f.has(0, 14)) return eth_hash(f);
  const uint16_t l2_proto = be16(data + 12);  // skb->protocol as the frame carries it
  Flow k;
  bool ok = p == HashPolicy::encap23 || p == HashPolicy::encap34
                ? flow_dissect_full(f, k, l2_proto)
                : flow_dissect_l3(f, k, l2_proto, p == HashPolicy::layer34);
  if (!ok) return eth_hash(f);
  uint32_t hash;
  if (p == HashPolicy::layer23 || p == HashPolicy::encap23) {
    hash = eth_hash(f);
  } else if (k.icmp_id != 0) {  // memcpy of struct flow_dissector_key_icmp {type, code, id}
    hash = uint32_t(k.icmp_type) | uint32_t(k.icmp_code) << 8 | uint32_t(k.icmp_id) << 16;
  } else {
    hash = k.ports;
  }
  return ip_hash(hash, k, p);
}

uint32_t xmit_hash(HashPolicy p, const rte_mbuf* m) {
  const PktMeta& md = meta(m);
  return xmit_hash(p, rte_pktmbuf_mtod(m, const uint8_t*), m->data_len, (md.flags & kFlagVlan) != 0,
                   md.vlan_tci);
}

namespace {

template <bool L34>
void hash_burst_ip(HashPolicy p, rte_mbuf* const* pkts, uint16_t n, uint32_t* out) {
  for (uint16_t i = 0; i < n; i++) {
    const rte_mbuf* m = pkts[i];
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    out[i] = plain_ip4_l4(m, d) ? plain_ip4_hash<L34>(d) : xmit_hash(p, m);
  }
}

}  // namespace

void xmit_hash_burst(HashPolicy p, rte_mbuf* const* pkts, uint16_t n, uint32_t* out) {
  switch (p) {
    case HashPolicy::layer34:
      return hash_burst_ip<true>(p, pkts, n, out);
    case HashPolicy::layer23:
      return hash_burst_ip<false>(p, pkts, n, out);
    default:
      for (uint16_t i = 0; i < n; i++) out[i] = xmit_hash(p, pkts[i]);
  }
}

}  // namespace sluice::bond
