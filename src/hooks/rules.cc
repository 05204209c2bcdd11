// Rule lists on rte_acl. Every match field is an ACL field of a per-packet
// key built from the frame and its metadata (devices, MACs, VLAN and mark
// included), so the ACL's answer is the first rule that matches on every
// field; nothing is checked after it. Only after a `continue` rule are the
// following rules tried in order, with an exact check on the same key.
// Layout of the key:
//
//   off  size  field                       ACL type  input group
//   0    1     IP protocol (0: ARP, none)  BITMASK   0
//   4    4·W   source address (W words)    MASK      1..W
//   ..   4·W   destination address         MASK      W+1..2W
//   T+0  2+2   source, destination port    RANGE     (pair)
//   T+4  2+2   in_dev, out_dev index       RANGE     (pair)
//   T+8  4     mark                        BITMASK
//   T+12 2+2   VLAN id, flags              RANGE, BITMASK (pair)
//   T+16 2+2   ICMP type<<8|code, pad      RANGE, BITMASK (pair)
//   T+20 4     source MAC bytes 0-3        BITMASK
//   T+24 4     destination MAC bytes 0-3   BITMASK
//   T+28 2+2   source, destination MAC 4-5 BITMASK (pair)
//
// W = 1 (IPv4 and ARP: sender/target address) or 4 (IPv6), T = 4 + 8·W.
// flags: bits 0-7 TCP flags, bit 8 "L4 header here" (not a non-first
// fragment, long enough), bit 9 "VLAN tagged". Values are in network order
// in the key, host order in the rules (rte_acl's convention).
#include "hooks/rules.hh"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

#include <rte_acl.h>
#include <rte_byteorder.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_mbuf.h>
#include <spdlog/spdlog.h>

#include "core/dataplane.hh"
#include "core/rcu.hh"
#include "hooks/hooks.hh"

namespace sluice::hooks {

namespace {

constexpr uint16_t kFlagL4 = 0x100;
constexpr uint16_t kFlagTagged = 0x200;
constexpr unsigned kKeySize = 72;
constexpr unsigned kMaxFields = 1 + 2 * 4 + 13;

struct Key {
  alignas(8) uint8_t b[kKeySize];
};

unsigned tail_off(unsigned words) {
  return 4 + 8 * words;
}

bool parse_u32(const std::string& s, uint64_t max, uint64_t* out) {
  if (s.empty() || s.size() > 12) return false;
  char* end = nullptr;
  int base = s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') ? 16 : 10;
  if (base == 10 && !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  unsigned long long v = std::strtoull(s.c_str(), &end, base);
  if (*end != 0 || v > max) return false;
  *out = v;
  return true;
}

std::string parse_prefix(const std::string& v, std::array<uint8_t, 16>* a, uint8_t* len,
                         int* family) {
  std::string addr = v;
  int plen = -1;
  if (auto s = v.find('/'); s != std::string::npos) {
    addr = v.substr(0, s);
    uint64_t l;
    if (!parse_u32(v.substr(s + 1), 128, &l)) return "bad prefix '" + v + "'";
    plen = static_cast<int>(l);
  }
  a->fill(0);
  if (inet_pton(AF_INET, addr.c_str(), a->data()) == 1) {
    if (plen > 32) return "bad prefix '" + v + "' (IPv4 length above 32)";
    *len = static_cast<uint8_t>(plen < 0 ? 32 : plen);
    if (*family == 6) return "'" + v + "' is IPv4 but the rule already has IPv6 addresses";
    *family = 4;
  } else if (inet_pton(AF_INET6, addr.c_str(), a->data()) == 1) {
    *len = static_cast<uint8_t>(plen < 0 ? 128 : plen);
    if (*family == 4) return "'" + v + "' is IPv6 but the rule already has IPv4 addresses";
    *family = 6;
  } else {
    return "bad prefix '" + v + "' (expected A.B.C.D[/LEN] or an IPv6 address[/LEN])";
  }
  return "";
}

std::string parse_ports(const std::string& v, uint16_t* lo, uint16_t* hi) {
  uint64_t a, b;
  auto d = v.find('-');
  if (d == std::string::npos) {
    if (!parse_u32(v, 65535, &a)) return "bad port '" + v + "' (0..65535 or LO-HI)";
    *lo = *hi = static_cast<uint16_t>(a);
    return "";
  }
  if (!parse_u32(v.substr(0, d), 65535, &a) || !parse_u32(v.substr(d + 1), 65535, &b))
    return "bad port range '" + v + "' (0..65535 or LO-HI)";
  if (b < a) return "port range '" + v + "' is out of order (LO must be <= HI)";
  *lo = static_cast<uint16_t>(a);
  *hi = static_cast<uint16_t>(b);
  return "";
}

bool parse_mac6(const std::string& s, std::array<uint8_t, 6>* out) {
  rte_ether_addr a;
  if (s.size() != 17 || rte_ether_unformat_addr(s.c_str(), &a) != 0) return false;
  std::memcpy(out->data(), a.addr_bytes, 6);
  return true;
}

std::string parse_tcp_flags(const std::string& v, uint8_t* set, uint8_t* mask) {
  // "syn" (SYN set), "syn/syn,ack" (SYN set out of SYN,ACK: a first SYN), "!ack".
  static const std::pair<const char*, uint8_t> names[] = {
      {"fin", 0x01}, {"syn", 0x02}, {"rst", 0x04}, {"psh", 0x08},
      {"ack", 0x10}, {"urg", 0x20}, {"ece", 0x40}, {"cwr", 0x80}};
  auto list = [&](const std::string& s, uint8_t* bits, uint8_t* neg) -> bool {
    size_t i = 0;
    while (i <= s.size()) {
      size_t j = s.find(',', i);
      if (j == std::string::npos) j = s.size();
      std::string w = s.substr(i, j - i);
      bool n = !w.empty() && w[0] == '!';
      if (n) w = w.substr(1);
      std::transform(w.begin(), w.end(), w.begin(), ::tolower);
      auto it =
          std::find_if(std::begin(names), std::end(names), [&](auto& p) { return w == p.first; });
      if (it == std::end(names) || (n && neg == nullptr)) return false;
      (n ? *neg : *bits) |= it->second;
      i = j + 1;
    }
    return true;
  };
  uint8_t s = 0, neg = 0, m = 0;
  auto slash = v.find('/');
  if (slash == std::string::npos) {
    if (!list(v, &s, &neg))
      return "bad tcp_flags '" + v + "' (e.g. syn, \"syn,!ack\", syn/syn,ack)";
    *set = s;
    *mask = static_cast<uint8_t>(s | neg);
  } else {
    if (!list(v.substr(0, slash), &s, nullptr) || !list(v.substr(slash + 1), &m, nullptr) ||
        (s & ~m))
      return "bad tcp_flags '" + v + "' (SET/MASK with SET inside MASK, e.g. syn/syn,ack)";
    *set = s;
    *mask = m;
  }
  return "";
}

}  // namespace

bool parse_rule_verdict(const std::string& s, RuleVerdict* out) {
  if (s == "accept")
    *out = RuleVerdict::accept;
  else if (s == "drop")
    *out = RuleVerdict::drop;
  else if (s == "continue")
    *out = RuleVerdict::cont;
  else if (s == "queue")
    *out = RuleVerdict::queue;
  else
    return false;
  return true;
}

std::string parse_match(const std::string& k, const std::string& v, Match* m, bool* unknown) {
  *unknown = false;
  uint64_t x;
  if (k == "in_dev" || k == "out_dev") {
    if (v.empty() || v.size() > 15) return k + " must be a device name";
    (k == "in_dev" ? m->in_dev : m->out_dev) = v;
  } else if (k == "src" || k == "dst") {
    bool s = k == "src";
    std::string e =
        parse_prefix(v, s ? &m->src : &m->dst, s ? &m->src_len : &m->dst_len, &m->family);
    if (!e.empty()) return k + ": " + e;
    (s ? m->has_src : m->has_dst) = true;
  } else if (k == "proto") {
    static const std::pair<const char*, int> names[] = {{"icmp", 1},  {"tcp", 6},  {"udp", 17},
                                                        {"gre", 47},  {"esp", 50}, {"icmpv6", 58},
                                                        {"sctp", 132}};
    auto it =
        std::find_if(std::begin(names), std::end(names), [&](auto& p) { return v == p.first; });
    if (it != std::end(names))
      m->proto = it->second;
    else if (parse_u32(v, 255, &x))
      m->proto = static_cast<int>(x);
    else
      return "proto must be tcp, udp, icmp, icmpv6, sctp, gre, esp or 0..255, got '" + v + "'";
  } else if (k == "src_port" || k == "dst_port") {
    bool s = k == "src_port";
    std::string e =
        parse_ports(v, s ? &m->sport_lo : &m->dport_lo, s ? &m->sport_hi : &m->dport_hi);
    if (!e.empty()) return k + ": " + e;
    (s ? m->has_sport : m->has_dport) = true;
  } else if (k == "tcp_flags") {
    std::string e = parse_tcp_flags(v, &m->tcp_set, &m->tcp_mask);
    if (!e.empty()) return e;
    m->has_tcp_flags = true;
  } else if (k == "icmp_type" || k == "icmp_code") {
    if (!parse_u32(v, 255, &x)) return k + " must be 0..255, got '" + v + "'";
    (k == "icmp_type" ? m->icmp_type : m->icmp_code) = static_cast<int>(x);
  } else if (k == "mark") {
    auto s = v.find('/');
    uint64_t mk = 0xffffffff;
    if (!parse_u32(v.substr(0, s), 0xffffffff, &x) ||
        (s != std::string::npos && !parse_u32(v.substr(s + 1), 0xffffffff, &mk)))
      return "mark must be VALUE or VALUE/MASK (32-bit), got '" + v + "'";
    m->has_mark = true;
    m->mark_mask = static_cast<uint32_t>(mk);
    m->mark = static_cast<uint32_t>(x) & m->mark_mask;
  } else if (k == "vlan") {
    if (!parse_u32(v, 4095, &x)) return "vlan must be 0..4095, got '" + v + "'";
    m->vlan = static_cast<int>(x);
  } else if (k == "src_mac" || k == "dst_mac") {
    bool s = k == "src_mac";
    if (!parse_mac6(v, s ? &m->smac : &m->dmac))
      return k + " must be a MAC like \"02:00:00:00:00:aa\", got '" + v + "'";
    (s ? m->has_smac : m->has_dmac) = true;
  } else {
    *unknown = true;
    return "unknown match key '" + k + "' (expected one of: " + kMatchKeys + ")";
  }
  return "";
}

// ---- the compiled table -----------------------------------------------------------

RTE_ACL_RULE_DEF(AclRule, kMaxFields);

struct CRule {
  Rule r;
  uint16_t in = kNoDev, out = kNoDev;  // resolved; kNoDev = any
};

struct FamCtx {
  rte_acl_ctx* ctx = nullptr;
  unsigned words = 1;
  std::vector<uint32_t> map;  // ACL userdata - 1 → rule index
  std::vector<AclRule> full;  // [userdata - 1]: every field, for the exact check
  ~FamCtx() {
    if (ctx != nullptr) rte_acl_free(ctx);
  }
};

struct RuleTable {
  std::vector<CRule> rules;
  FamCtx v4, v6;                     // v4 also serves ARP (sender/target IPv4)
  std::unique_ptr<uint64_t[]> hits;  // [worker * nrules + rule]
  struct alignas(64) Log {
    uint64_t window_ms = 0;
    unsigned n = 0;
  };
  std::unique_ptr<Log[]> log;  // [worker]
};

namespace {

std::atomic<unsigned> g_ctx_seq{0};

unsigned num_fields(unsigned words) {
  return 1 + 2 * words + 13;
}

void field_defs(rte_acl_config* cfg, unsigned words) {
  unsigned f = 0, in = 0;
  auto def = [&](uint8_t type, uint8_t size, uint32_t off, bool new_group) {
    if (new_group) in++;
    cfg->defs[f] = rte_acl_field_def{type, size, static_cast<uint8_t>(f),
                                     static_cast<uint8_t>(f == 0 ? 0 : in), off};
    f++;
  };
  def(RTE_ACL_FIELD_TYPE_BITMASK, 1, 0, false);
  for (unsigned i = 0; i < 2 * words; i++) def(RTE_ACL_FIELD_TYPE_MASK, 4, 4 + 4 * i, true);
  unsigned t = tail_off(words);
  def(RTE_ACL_FIELD_TYPE_RANGE, 2, t + 0, true);
  def(RTE_ACL_FIELD_TYPE_RANGE, 2, t + 2, false);
  def(RTE_ACL_FIELD_TYPE_RANGE, 2, t + 4, true);
  def(RTE_ACL_FIELD_TYPE_RANGE, 2, t + 6, false);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 4, t + 8, true);
  def(RTE_ACL_FIELD_TYPE_RANGE, 2, t + 12, true);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 2, t + 14, false);
  def(RTE_ACL_FIELD_TYPE_RANGE, 2, t + 16, true);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 2, t + 18, false);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 4, t + 20, true);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 4, t + 24, true);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 2, t + 28, true);
  def(RTE_ACL_FIELD_TYPE_BITMASK, 2, t + 30, false);
  cfg->num_fields = f;
}

// The rule's ACL form for a family with `words` address words.
void acl_rule(const CRule& cr, unsigned words, AclRule* a) {
  const Match& m = cr.r.match;
  std::memset(a, 0, sizeof *a);
  unsigned f = 0;
  int proto = m.proto;
  if (proto < 0 && (m.icmp_type >= 0 || m.icmp_code >= 0)) proto = words == 4 ? 58 : 1;
  a->field[f].value.u8 = static_cast<uint8_t>(proto < 0 ? 0 : proto);
  a->field[f++].mask_range.u8 = proto < 0 ? 0 : 0xff;
  auto addr = [&](bool has, const std::array<uint8_t, 16>& ad, uint8_t len) {
    for (unsigned wi = 0; wi < words; wi++) {
      uint32_t v = uint32_t(ad[4 * wi]) << 24 | uint32_t(ad[4 * wi + 1]) << 16 |
                   uint32_t(ad[4 * wi + 2]) << 8 | ad[4 * wi + 3];
      int bits = has ? std::clamp(int(len) - int(32 * wi), 0, 32) : 0;
      a->field[f].value.u32 = bits == 0 ? 0 : v;
      a->field[f++].mask_range.u32 = static_cast<uint32_t>(bits);
    }
  };
  addr(m.has_src, m.src, m.src_len);
  addr(m.has_dst, m.dst, m.dst_len);
  auto range = [&](uint16_t lo, uint16_t hi) {
    a->field[f].value.u16 = lo;
    a->field[f++].mask_range.u16 = hi;
  };
  auto bits16 = [&](uint16_t v, uint16_t mk) {
    a->field[f].value.u16 = v & mk;
    a->field[f++].mask_range.u16 = mk;
  };
  auto bits32 = [&](uint32_t v, uint32_t mk) {
    a->field[f].value.u32 = v & mk;
    a->field[f++].mask_range.u32 = mk;
  };
  range(m.sport_lo, m.sport_hi);
  range(m.dport_lo, m.dport_hi);
  range(cr.in == kNoDev ? 0 : cr.in, cr.in == kNoDev ? 0xffff : cr.in);
  range(cr.out == kNoDev ? 0 : cr.out, cr.out == kNoDev ? 0xffff : cr.out);
  bits32(m.mark, m.has_mark ? m.mark_mask : 0);
  range(m.vlan < 0 ? 0 : m.vlan, m.vlan < 0 ? 0xffff : m.vlan);
  uint16_t fv = m.tcp_set, fm = m.tcp_mask;
  if (m.needs_l4()) fv |= kFlagL4, fm |= kFlagL4;
  if (m.vlan >= 0) fv |= kFlagTagged, fm |= kFlagTagged;
  bits16(fv, fm);
  if (m.icmp_type >= 0 && m.icmp_code >= 0) {
    range(static_cast<uint16_t>(m.icmp_type << 8 | m.icmp_code),
          static_cast<uint16_t>(m.icmp_type << 8 | m.icmp_code));
  } else if (m.icmp_type >= 0) {
    range(static_cast<uint16_t>(m.icmp_type << 8), static_cast<uint16_t>(m.icmp_type << 8 | 0xff));
  } else {
    range(0, 0xffff);
  }
  bits16(0, 0);
  auto mac4 = [&](bool has, const std::array<uint8_t, 6>& mc) {
    bits32(uint32_t(mc[0]) << 24 | uint32_t(mc[1]) << 16 | uint32_t(mc[2]) << 8 | mc[3],
           has ? 0xffffffff : 0);
  };
  mac4(m.has_smac, m.smac);
  mac4(m.has_dmac, m.dmac);
  bits16(static_cast<uint16_t>(m.smac[4] << 8 | m.smac[5]), m.has_smac ? 0xffff : 0);
  bits16(static_cast<uint16_t>(m.dmac[4] << 8 | m.dmac[5]), m.has_dmac ? 0xffff : 0);
}

std::string build_family(RuleTable& t, FamCtx& fc, unsigned words, int family) {
  fc.words = words;
  std::vector<AclRule> rs;
  for (size_t i = 0; i < t.rules.size(); i++) {
    const Match& m = t.rules[i].r.match;
    if (m.family != 0 && m.family != family) continue;
    AclRule a;
    acl_rule(t.rules[i], words, &a);
    fc.full.push_back(a);
    fc.map.push_back(static_cast<uint32_t>(i));
    a.data.category_mask = 1;
    a.data.priority = static_cast<int32_t>(t.rules.size() - i);  // first match wins
    a.data.userdata = static_cast<uint32_t>(fc.map.size());
    rs.push_back(a);
  }
  if (rs.empty()) return "";
  char name[RTE_ACL_NAMESIZE];
  std::snprintf(name, sizeof name, "hk%u", g_ctx_seq++);
  rte_acl_param p{};
  p.name = name;
  p.socket_id = SOCKET_ID_ANY;
  p.rule_size = RTE_ACL_RULE_SZ(num_fields(words));
  p.max_rule_num = static_cast<uint32_t>(rs.size());
  fc.ctx = rte_acl_create(&p);
  if (fc.ctx == nullptr) return "rte_acl_create failed";
  // Rules are laid out with kMaxFields fields; add them one by one in the
  // context's own (smaller) size.
  std::vector<uint8_t> buf(p.rule_size);
  for (auto& a : rs) {
    std::memcpy(buf.data(), &a, p.rule_size);
    if (rte_acl_add_rules(fc.ctx, reinterpret_cast<const rte_acl_rule*>(buf.data()), 1) != 0)
      return "rte_acl_add_rules failed";
  }
  rte_acl_config cfg{};
  cfg.num_categories = 1;
  field_defs(&cfg, words);
  int rc = rte_acl_build(fc.ctx, &cfg);
  if (rc != 0) return "rte_acl_build failed (" + std::to_string(rc) + ")";
  return "";
}

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Fills the key of one packet; returns the family (4, 6, 0 = ARP as 4, -1 none).
int make_key(const rte_mbuf* m, uint16_t in, uint16_t out, Key* k) {
  std::memset(k->b, 0, sizeof k->b);
  const PktMeta& md = meta(m);
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  uint32_t len = m->data_len;
  if (len < 14) return -1;
  uint16_t type = md.protocol;
  int fam = -1;
  unsigned words = 1;
  uint16_t flags = 0;
  const uint8_t* l4 = nullptr;
  uint32_t l4len = 0;
  uint8_t proto = 0;
  const uint8_t* ip = d + 14;
  uint32_t iplen = len - 14;
  if (type == 0x0800 && iplen >= 20) {
    fam = 4;
    unsigned hl = (ip[0] & 0xf) * 4u;
    proto = ip[9];
    std::memcpy(k->b + 4, ip + 12, 4);
    std::memcpy(k->b + 8, ip + 16, 4);
    uint16_t fo = static_cast<uint16_t>(ip[6] << 8 | ip[7]);
    if ((fo & 0x1fff) == 0 && iplen > hl) {  // non-first fragments have no ports
      l4 = ip + hl;
      l4len = iplen - hl;
    }
  } else if (type == 0x86dd && iplen >= 40) {
    fam = 6;
    words = 4;
    proto = ip[6];
    std::memcpy(k->b + 4, ip + 8, 32);
    l4 = ip + 40;
    l4len = iplen - 40;
    if (proto == 44 && l4len >= 8) {  // fragment header: ports only in the first
      uint16_t fo = static_cast<uint16_t>(l4[2] << 8 | l4[3]);
      proto = l4[0];
      if (fo & 0xfff8) {
        l4 = nullptr;
      } else {
        l4 += 8;
        l4len -= 8;
      }
    }
  } else if (type == 0x0806 && iplen >= 28) {
    fam = 4;  // ARP: sender and target IPv4 in the address fields, proto 0
    std::memcpy(k->b + 4, ip + 14, 4);
    std::memcpy(k->b + 8, ip + 24, 4);
  } else {
    fam = 4;  // anything else (bridge points): L2 fields only
  }
  k->b[0] = proto;
  uint8_t* t = k->b + tail_off(words);
  uint16_t icmp = 0;
  if (l4 != nullptr) {
    if ((proto == 6 && l4len >= 14) || ((proto == 17 || proto == 132) && l4len >= 4)) {
      flags |= kFlagL4;
      std::memcpy(t, l4, 4);
      if (proto == 6) flags |= l4[13];
    } else if ((proto == 1 || proto == 58) && l4len >= 2) {
      flags |= kFlagL4;
      icmp = static_cast<uint16_t>(l4[0] << 8 | l4[1]);
    }
  }
  put16(t + 4, in);
  put16(t + 6, out);
  uint32_t mk = md.mark;
  t[8] = static_cast<uint8_t>(mk >> 24);
  t[9] = static_cast<uint8_t>(mk >> 16);
  t[10] = static_cast<uint8_t>(mk >> 8);
  t[11] = static_cast<uint8_t>(mk);
  if (md.flags & kFlagVlan) {
    flags |= kFlagTagged;
    put16(t + 12, md.vlan_tci & 0xfff);
  }
  put16(t + 14, flags);
  put16(t + 16, icmp);
  std::memcpy(t + 20, d + 6, 4);   // source MAC 0-3
  std::memcpy(t + 24, d, 4);       // destination MAC 0-3
  std::memcpy(t + 28, d + 10, 2);  // source MAC 4-5
  std::memcpy(t + 30, d + 4, 2);   // destination MAC 4-5
  (void)fam;
  return words == 4 ? 6 : 4;
}

// Scalar check of one rule against a key (continue rules: the rules after
// the ACL's answer are walked with it).
bool key_matches(const AclRule& a, const Key& k, unsigned words) {
  static const rte_acl_config cfgs[2] = {[] {
                                           rte_acl_config c{};
                                           field_defs(&c, 1);
                                           return c;
                                         }(),
                                         [] {
                                           rte_acl_config c{};
                                           field_defs(&c, 4);
                                           return c;
                                         }()};
  const rte_acl_config& cfg = cfgs[words == 4];
  for (unsigned f = 0; f < cfg.num_fields; f++) {
    const auto& d = cfg.defs[f];
    const uint8_t* p = k.b + d.offset;
    uint32_t v = 0;
    for (unsigned i = 0; i < d.size; i++) v = v << 8 | p[i];
    uint32_t val = d.size == 1   ? a.field[f].value.u8
                   : d.size == 2 ? a.field[f].value.u16
                                 : a.field[f].value.u32;
    uint32_t mr = d.size == 1   ? a.field[f].mask_range.u8
                  : d.size == 2 ? a.field[f].mask_range.u16
                                : a.field[f].mask_range.u32;
    switch (d.type) {
      case RTE_ACL_FIELD_TYPE_BITMASK:
        if ((v & mr) != (val & mr)) return false;
        break;
      case RTE_ACL_FIELD_TYPE_RANGE:
        if (v < val || v > mr) return false;
        break;
      default: {  // MASK: prefix length
        uint32_t pm = mr == 0 ? 0 : ~uint32_t(0) << (32 - mr);
        if ((v & pm) != (val & pm)) return false;
      }
    }
  }
  return true;
}

// The hook function of a rule list.
void rules_hook(Worker& w, const State& st, void* priv, rte_mbuf** pkts, uint16_t n,
                uint32_t* verdicts) {
  auto* rl = static_cast<RuleList*>(priv);
  const RuleTable* t = rl->table.load(std::memory_order_acquire);
  for (uint16_t i = 0; i < n; i++) verdicts[i] = SLUICE_ACCEPT;
  if (t == nullptr || t->rules.empty()) return;
  Key keys[kBurst];
  int fam[kBurst];
  const uint8_t* d4[kBurst];
  const uint8_t* d6[kBurst];
  uint16_t i4[kBurst], i6[kBurst], n4 = 0, n6 = 0;
  for (uint16_t i = 0; i < n; i++) {
    fam[i] = make_key(pkts[i], st.in != kNoDev ? st.in : kNoDev, out_of(st, i), &keys[i]);
    if (fam[i] == 6) {
      d6[n6] = keys[i].b;
      i6[n6++] = i;
    } else {
      d4[n4] = keys[i].b;
      i4[n4++] = i;
    }
  }
  uint32_t r4[kBurst] = {}, r6[kBurst] = {};
  if (n4 != 0 && t->v4.ctx != nullptr) rte_acl_classify(t->v4.ctx, d4, r4, n4, 1);
  if (n6 != 0 && t->v6.ctx != nullptr) rte_acl_classify(t->v6.ctx, d6, r6, n6, 1);
  const unsigned nr = static_cast<unsigned>(t->rules.size());
  uint64_t* hits = &t->hits[(w.id % kMaxWorkers) * nr];
  // The ACL's answer is the first rule that matches on every field; after a
  // `continue` rule the next ones are tried in order with the exact check.
  auto next_match = [&](const FamCtx& fc, uint32_t from, const Key& k) -> uint32_t {
    for (uint32_t j = from; j < fc.map.size(); j++)
      if (key_matches(fc.full[j], k, fc.words)) return j + 1;
    return 0;
  };
  auto apply = [&](uint16_t i, const FamCtx& fc, uint32_t res) {
    rte_mbuf* m = pkts[i];
    while (res != 0) {
      uint32_t ri = fc.map[res - 1];
      const CRule& cr = t->rules[ri];
      if (cr.r.counter) hits[ri]++;
      if (cr.r.has_set_mark) meta(m).mark = cr.r.set_mark;
      if (cr.r.log) {
        auto& lg = t->log[w.id % kMaxWorkers];
        uint64_t now = rte_get_tsc_cycles() / (rte_get_tsc_hz() / 1000);
        if (now - lg.window_ms >= 1000) lg.window_ms = now, lg.n = 0;
        if (lg.n++ < 5)
          spdlog::info("hooks {} {} rule {}: len {} in {} out {} mark {:#x}", point_name(st.point),
                       rl->name(), ri + 1, m->pkt_len, st.in, out_of(st, i), meta(m).mark);
      }
      if (cr.r.verdict == RuleVerdict::drop) {
        verdicts[i] = SLUICE_DROP;
        return;
      }
      if (cr.r.verdict == RuleVerdict::accept) return;
      if (cr.r.verdict == RuleVerdict::queue) {
        verdicts[i] = sluice_queue_nr(cr.r.queue, cr.r.bypass);
        return;
      }
      // continue: the next matching rule of this list.
      res = next_match(fc, res, keys[i]);
    }
  };
  for (uint16_t j = 0; j < n4; j++) apply(i4[j], t->v4, r4[j]);
  for (uint16_t j = 0; j < n6; j++) apply(i6[j], t->v6, r6[j]);
}

}  // namespace

RuleList::RuleList(Registry& r, std::string name, unsigned point, int priority)
    : reg(r), name_(std::move(name)), point_(point), priority_(priority) {}

RuleList::~RuleList() {
  detach();
  const RuleTable* t = table.exchange(nullptr);
  if (t != nullptr) {
    reg.dp.rcu.synchronize();
    delete t;
  }
}

std::string RuleList::load(const std::vector<Rule>& rules, bool dry_run) {
  auto t = std::make_unique<RuleTable>();
  bool v4_point = point_ <= SLUICE_IPV4_POST_ROUTING || point_ >= SLUICE_ARP_IN;
  bool v6_point = point_ >= SLUICE_IPV6_PRE_ROUTING && point_ <= SLUICE_IPV6_POST_ROUTING;
  for (size_t i = 0; i < rules.size(); i++) {
    CRule cr{rules[i]};
    const Match& m = cr.r.match;
    std::string where = "hook '" + name_ + "' rule " + std::to_string(i + 1) + ": ";
    if (m.family == 6 && v4_point) return where + "IPv6 addresses at " + point_name(point_);
    if (m.family == 4 && v6_point) return where + "IPv4 addresses at " + point_name(point_);
    if (m.icmp_code >= 0 && m.icmp_type < 0) return where + "icmp_code needs icmp_type";
    for (auto [name, idx] : {std::pair{&m.in_dev, &cr.in}, std::pair{&m.out_dev, &cr.out}}) {
      if (name->empty()) continue;
      const Device* d = reg.dp.net.find(*name);
      if (d == nullptr) return where + "unknown device '" + *name + "'";
      *idx = d->index;
    }
    t->rules.push_back(std::move(cr));
  }
  std::string e;
  if (!v6_point) e = build_family(*t, t->v4, 1, 4);
  if (e.empty() && !v4_point) e = build_family(*t, t->v6, 4, 6);
  if (!e.empty()) return "hook '" + name_ + "': " + e;
  if (dry_run) return "";
  t->hits.reset(new uint64_t[kMaxWorkers * std::max<size_t>(1, t->rules.size())]());
  t->log.reset(new RuleTable::Log[kMaxWorkers]());
  reg.dp.rcu.publish(table, static_cast<const RuleTable*>(t.release()));
  swaps_++;
  return "";
}

bool RuleList::attach() {
  if (id_ != 0) return true;
  id_ = reg.add(static_cast<Point>(point_), priority_, name_, rules_hook, this, Owner::rules);
  return id_ != 0;
}

void RuleList::detach() {
  if (id_ != 0) reg.remove(id_);
  id_ = 0;
}

size_t RuleList::size() const {
  const RuleTable* t = table.load();
  return t ? t->rules.size() : 0;
}

std::vector<uint64_t> RuleList::rule_hits() const {
  std::vector<uint64_t> r = raw_hits();
  if (swaps_ == base_swaps_ && base_hits_.size() == r.size())
    for (size_t i = 0; i < r.size(); i++) r[i] -= base_hits_[i];
  return r;
}

std::vector<uint64_t> RuleList::raw_hits() const {
  const RuleTable* t = table.load();
  std::vector<uint64_t> r;
  if (t == nullptr) return r;
  size_t nr = t->rules.size();
  r.assign(nr, 0);
  for (unsigned w = 0; w < kMaxWorkers; w++)
    for (size_t i = 0; i < nr; i++) r[i] += t->hits[w * nr + i];
  return r;
}

void RuleList::clear_stats() {
  base_swaps_ = swaps_;
  base_hits_ = raw_hits();
}

}  // namespace sluice::hooks
