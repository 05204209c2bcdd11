// Rule lists on rte_acl. Every match field is an ACL field of a per-packet
// key built from the frame and its metadata (devices, MACs, VLAN and mark
// included), so the ACL's answer is the first rule that matches on every
// field; nothing is checked after it. Only after a `continue` rule are the
// following rules tried in order, with an exact check on the same key.
//
// The match fields ("logical fields", enum F below):
//
//   field                        size  ACL type
//   IP protocol (0: ARP, none)   1     BITMASK   always the first field, input 0
//   source address word 0..W-1   4     MASK      (W = 1: IPv4, ARP sender; 4: IPv6)
//   destination address words    4     MASK
//   source, destination port     2     RANGE
//   in_dev, out_dev index        2     RANGE
//   mark                         4     BITMASK
//   VLAN id                      2     RANGE
//   flags                        2     BITMASK
//   ICMP type<<8|code            2     RANGE
//   source, dest. MAC bytes 0-3  4     BITMASK
//   source, dest. MAC bytes 4-5  2     BITMASK
//
// flags: bits 0-7 TCP flags, bit 8 "L4 header here" (not a non-first
// fragment, long enough), bit 9 "VLAN tagged". Values are in network order
// in the key, host order in the rules (rte_acl's convention).
//
// A table compiles only the fields some rule of it uses (a field every rule
// leaves as "any" cannot change the answer): rte_acl walks one trie level
// per key byte, so each 4-byte input group left out saves four transitions
// per packet. Each family context has its own key layout (Layout): the
// protocol at offset 0, then one 4-byte input group per used 32-bit field
// and one per pair of used 16-bit fields (a zero pad field completes an odd
// count). The key builder stores every field at its layout offset; the
// fields the table does not compile go to a scratch slot past the end.
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
constexpr unsigned kTrash = 72;  // offset of the scratch slot for fields not compiled
constexpr unsigned kKeySize = kTrash + 8;

// The logical fields.
enum F : uint8_t {
  F_PROTO,
  F_SRC0,
  F_SRC1,
  F_SRC2,
  F_SRC3,
  F_DST0,
  F_DST1,
  F_DST2,
  F_DST3,
  F_SPORT,
  F_DPORT,
  F_IN,
  F_OUT,
  F_MARK,
  F_VLAN,
  F_FLAGS,
  F_ICMP,
  F_SMAC03,
  F_DMAC03,
  F_SMAC45,
  F_DMAC45,
  F_PAD,  // zero; completes a pair of 16-bit fields
  kNumF
};
constexpr unsigned kMaxFields = kNumF;

struct FieldInfo {
  uint8_t type, size;
};
constexpr FieldInfo kInfo[kNumF] = {
    {RTE_ACL_FIELD_TYPE_BITMASK, 1}, {RTE_ACL_FIELD_TYPE_MASK, 4},
    {RTE_ACL_FIELD_TYPE_MASK, 4},    {RTE_ACL_FIELD_TYPE_MASK, 4},
    {RTE_ACL_FIELD_TYPE_MASK, 4},    {RTE_ACL_FIELD_TYPE_MASK, 4},
    {RTE_ACL_FIELD_TYPE_MASK, 4},    {RTE_ACL_FIELD_TYPE_MASK, 4},
    {RTE_ACL_FIELD_TYPE_MASK, 4},    {RTE_ACL_FIELD_TYPE_RANGE, 2},
    {RTE_ACL_FIELD_TYPE_RANGE, 2},   {RTE_ACL_FIELD_TYPE_RANGE, 2},
    {RTE_ACL_FIELD_TYPE_RANGE, 2},   {RTE_ACL_FIELD_TYPE_BITMASK, 4},
    {RTE_ACL_FIELD_TYPE_RANGE, 2},   {RTE_ACL_FIELD_TYPE_BITMASK, 2},
    {RTE_ACL_FIELD_TYPE_RANGE, 2},   {RTE_ACL_FIELD_TYPE_BITMASK, 4},
    {RTE_ACL_FIELD_TYPE_BITMASK, 4}, {RTE_ACL_FIELD_TYPE_BITMASK, 2},
    {RTE_ACL_FIELD_TYPE_BITMASK, 2}, {RTE_ACL_FIELD_TYPE_BITMASK, 2}};

struct Key {
  alignas(8) uint8_t b[kKeySize];
};

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

// Where each logical field sits in a family context's key, and the ACL
// fields compiled (in ACL field order).
struct Layout {
  uint8_t off[kNumF];         // key offset; kTrash when not compiled
  uint8_t nf = 0;             // compiled fields
  uint8_t field[kMaxFields];  // logical field of each ACL field
  rte_acl_field_def defs[kMaxFields];
};

struct FamCtx {
  rte_acl_ctx* ctx = nullptr;
  unsigned words = 1;
  Layout lay{};
  uint32_t need = 0;  // bit per logical field the layout compiles (make_key writes only these)
  std::vector<uint32_t> map;  // ACL userdata - 1 → rule index
  std::vector<AclRule> full;  // [userdata - 1]: the compiled fields, for the exact check
  // [userdata - 1]: what the hook's fast loop needs of the rule, in one
  // 8-byte entry (accept/drop with or without a counter; the rest, and
  // traced packets, take the full path).
  enum ActKind : uint8_t { kActAccept, kActDrop, kActFull };
  struct Act {
    uint32_t rule;  // index in RuleTable::rules
    ActKind kind;   // kActFull: continue, queue, log or set_mark (apply)
    uint8_t counter;
  };
  std::vector<Act> act;
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

// A rule's value and mask/range (or prefix length) on every logical field.
struct LVal {
  uint32_t v = 0, mr = 0;
};
using LRule = std::array<LVal, kNumF>;

bool wildcard(unsigned f, const LVal& x) {
  switch (kInfo[f].type) {
    case RTE_ACL_FIELD_TYPE_RANGE:
      return x.v == 0 && x.mr == (kInfo[f].size == 2 ? 0xffffu : 0xffffffffu);
    default:  // BITMASK: mask; MASK: prefix length
      return x.mr == 0;
  }
}

// The rule's value on every logical field for a family with `words` address words.
LRule logical(const CRule& cr, unsigned words) {
  const Match& m = cr.r.match;
  LRule a{};
  int proto = m.proto;
  if (proto < 0 && (m.icmp_type >= 0 || m.icmp_code >= 0)) proto = words == 4 ? 58 : 1;
  a[F_PROTO] = {static_cast<uint32_t>(proto < 0 ? 0 : proto), proto < 0 ? 0u : 0xffu};
  auto addr = [&](unsigned f0, bool has, const std::array<uint8_t, 16>& ad, uint8_t len) {
    for (unsigned wi = 0; wi < words; wi++) {
      uint32_t v = uint32_t(ad[4 * wi]) << 24 | uint32_t(ad[4 * wi + 1]) << 16 |
                   uint32_t(ad[4 * wi + 2]) << 8 | ad[4 * wi + 3];
      int bits = has ? std::clamp(int(len) - int(32 * wi), 0, 32) : 0;
      a[f0 + wi] = {bits == 0 ? 0 : v, static_cast<uint32_t>(bits)};
    }
  };
  addr(F_SRC0, m.has_src, m.src, m.src_len);
  addr(F_DST0, m.has_dst, m.dst, m.dst_len);
  for (unsigned f : {F_SPORT, F_DPORT, F_IN, F_OUT, F_VLAN, F_ICMP}) a[f] = {0, 0xffff};
  a[F_SPORT] = {m.sport_lo, m.sport_hi};
  a[F_DPORT] = {m.dport_lo, m.dport_hi};
  if (cr.in != kNoDev) a[F_IN] = {cr.in, cr.in};
  if (cr.out != kNoDev) a[F_OUT] = {cr.out, cr.out};
  if (m.has_mark) a[F_MARK] = {m.mark & m.mark_mask, m.mark_mask};
  if (m.vlan >= 0) a[F_VLAN] = {static_cast<uint32_t>(m.vlan), static_cast<uint32_t>(m.vlan)};
  uint16_t fv = m.tcp_set, fm = m.tcp_mask;
  if (m.needs_l4()) fv |= kFlagL4, fm |= kFlagL4;
  if (m.vlan >= 0) fv |= kFlagTagged, fm |= kFlagTagged;
  a[F_FLAGS] = {static_cast<uint32_t>(fv & fm), fm};
  if (m.icmp_type >= 0 && m.icmp_code >= 0)
    a[F_ICMP] = {uint32_t(m.icmp_type << 8 | m.icmp_code),
                 uint32_t(m.icmp_type << 8 | m.icmp_code)};
  else if (m.icmp_type >= 0)
    a[F_ICMP] = {uint32_t(m.icmp_type << 8), uint32_t(m.icmp_type << 8 | 0xff)};
  if (m.has_smac) {
    a[F_SMAC03] = {uint32_t(m.smac[0]) << 24 | uint32_t(m.smac[1]) << 16 |
                       uint32_t(m.smac[2]) << 8 | m.smac[3],
                   0xffffffff};
    a[F_SMAC45] = {uint32_t(m.smac[4] << 8 | m.smac[5]), 0xffff};
  }
  if (m.has_dmac) {
    a[F_DMAC03] = {uint32_t(m.dmac[0]) << 24 | uint32_t(m.dmac[1]) << 16 |
                       uint32_t(m.dmac[2]) << 8 | m.dmac[3],
                   0xffffffff};
    a[F_DMAC45] = {uint32_t(m.dmac[4] << 8 | m.dmac[5]), 0xffff};
  }
  return a;
}

// The key layout of a context compiling the fields in `used`.
void make_layout(const bool (&used)[kNumF], Layout* L) {
  std::memset(L->off, kTrash, sizeof L->off);
  L->nf = 0;
  unsigned off = 4, in = 1;
  auto def = [&](unsigned f, unsigned o, unsigned input) {
    L->off[f] = static_cast<uint8_t>(o);
    L->field[L->nf] = static_cast<uint8_t>(f);
    L->defs[L->nf] =
        rte_acl_field_def{kInfo[f].type, kInfo[f].size, L->nf, static_cast<uint8_t>(input), o};
    L->nf++;
  };
  def(F_PROTO, 0, 0);
  for (unsigned f : {F_SRC0, F_SRC1, F_SRC2, F_SRC3, F_DST0, F_DST1, F_DST2, F_DST3, F_MARK,
                     F_SMAC03, F_DMAC03}) {
    if (!used[f]) continue;
    def(f, off, in++);
    off += 4;
  }
  unsigned half[kNumF], nh = 0;
  for (unsigned f : {F_SPORT, F_DPORT, F_FLAGS, F_IN, F_OUT, F_VLAN, F_ICMP, F_SMAC45, F_DMAC45})
    if (used[f]) half[nh++] = f;
  if (nh % 2) half[nh++] = F_PAD;
  for (unsigned i = 0; i < nh; i += 2) {
    def(half[i], off, in);
    def(half[i + 1], off + 2, in++);
    off += 4;
  }
}

// The ACL form of a rule in a layout.
void acl_rule(const LRule& lr, const Layout& L, AclRule* a) {
  std::memset(a, 0, sizeof *a);
  for (unsigned i = 0; i < L.nf; i++) {
    const LVal& x = lr[L.field[i]];
    switch (kInfo[L.field[i]].size) {
      case 1:
        a->field[i].value.u8 = static_cast<uint8_t>(x.v);
        a->field[i].mask_range.u8 = static_cast<uint8_t>(x.mr);
        break;
      case 2:
        a->field[i].value.u16 = static_cast<uint16_t>(x.v);
        a->field[i].mask_range.u16 = static_cast<uint16_t>(x.mr);
        break;
      default:
        a->field[i].value.u32 = x.v;
        a->field[i].mask_range.u32 = x.mr;
    }
  }
}

std::string build_family(RuleTable& t, FamCtx& fc, unsigned words, int family, bool all_fields) {
  fc.words = words;
  std::vector<LRule> lrs;
  for (size_t i = 0; i < t.rules.size(); i++) {
    const Match& m = t.rules[i].r.match;
    if (m.family != 0 && m.family != family) continue;
    lrs.push_back(logical(t.rules[i], words));
    fc.map.push_back(static_cast<uint32_t>(i));
  }
  if (lrs.empty()) return "";
  bool used[kNumF] = {};
  used[F_PROTO] = true;
  for (unsigned f = 1; f < F_PAD; f++) {
    bool exists = !((f > F_SRC0 && f <= F_SRC3) || (f > F_DST0 && f <= F_DST3)) || words == 4;
    if (!exists) continue;
    used[f] = all_fields;
    for (const LRule& lr : lrs) used[f] = used[f] || !wildcard(f, lr[f]);
  }
  make_layout(used, &fc.lay);
  fc.need = 0;
  for (unsigned i = 0; i < fc.lay.nf; i++) fc.need |= 1u << fc.lay.field[i];
  char name[RTE_ACL_NAMESIZE];
  std::snprintf(name, sizeof name, "hk%u", g_ctx_seq++);
  rte_acl_param p{};
  p.name = name;
  p.socket_id = SOCKET_ID_ANY;
  p.rule_size = RTE_ACL_RULE_SZ(fc.lay.nf);
  p.max_rule_num = static_cast<uint32_t>(lrs.size());
  fc.ctx = rte_acl_create(&p);
  if (fc.ctx == nullptr) return "rte_acl_create failed";
  fc.full.resize(lrs.size());
  // Rules are laid out with kMaxFields fields; add them one by one in the
  // context's own (smaller) size.
  std::vector<uint8_t> buf(p.rule_size);
  for (size_t j = 0; j < lrs.size(); j++) {
    AclRule& a = fc.full[j];
    acl_rule(lrs[j], fc.lay, &a);
    std::memcpy(buf.data(), &a, p.rule_size);
    auto* r = reinterpret_cast<rte_acl_rule*>(buf.data());
    r->data.category_mask = 1;
    r->data.priority = static_cast<int32_t>(t.rules.size() - fc.map[j]);  // first match wins
    r->data.userdata = static_cast<uint32_t>(j + 1);
    const Rule& rr = t.rules[fc.map[j]].r;
    FamCtx::ActKind kind = FamCtx::kActFull;
    if (!rr.log && !rr.has_set_mark) {
      if (rr.verdict == RuleVerdict::accept) kind = FamCtx::kActAccept;
      if (rr.verdict == RuleVerdict::drop) kind = FamCtx::kActDrop;
    }
    fc.act.push_back({fc.map[j], kind, static_cast<uint8_t>(rr.counter)});
    if (rte_acl_add_rules(fc.ctx, r, 1) != 0) return "rte_acl_add_rules failed";
  }
  rte_acl_config cfg{};
  cfg.num_categories = 1;
  cfg.num_fields = fc.lay.nf;
  std::memcpy(cfg.defs, fc.lay.defs, fc.lay.nf * sizeof(rte_acl_field_def));
  int rc = rte_acl_build(fc.ctx, &cfg);
  if (rc != 0) return "rte_acl_build failed (" + std::to_string(rc) + ")";
  return "";
}

inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

// Which family context classifies a packet (6 or 4; ARP and non-IP are 4).
inline int family_of(const rte_mbuf* m) {
  return meta(m).protocol == 0x86dd && m->data_len >= 14 + 40 ? 6 : 4;
}

// Fills the key of one packet in a context's layout.
[[gnu::always_inline]] inline void make_key(const rte_mbuf* m, uint16_t in, uint16_t out,
                                            const FamCtx& fc, Key* k) {
  uint8_t* b = k->b;
  const uint8_t* off = fc.lay.off;
  const PktMeta& md = meta(m);
  const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
  uint32_t len = m->data_len;
  if (len < 14) {  // runt: the all-zero key
    std::memset(b, 0, sizeof k->b);
    return;
  }
  static const uint8_t kZero[32] = {};
  const uint16_t type = md.protocol;
  uint16_t flags = 0;
  const uint8_t* l4 = nullptr;
  uint32_t l4len = 0;
  uint8_t proto = 0;
  const uint8_t* ip = d + 14;
  const uint32_t iplen = len - 14;
  const uint8_t* sa = kZero;  // addresses (words × 4 bytes each)
  const uint8_t* da = kZero;
  if (type == 0x0800 && iplen >= 20) {
    unsigned hl = (ip[0] & 0xf) * 4u;
    proto = ip[9];
    sa = ip + 12;
    da = ip + 16;
    uint16_t fo = static_cast<uint16_t>(ip[6] << 8 | ip[7]);
    if ((fo & 0x1fff) == 0 && iplen > hl) {  // non-first fragments have no ports
      l4 = ip + hl;
      l4len = iplen - hl;
    }
  } else if (type == 0x86dd && iplen >= 40) {
    proto = ip[6];
    sa = ip + 8;
    da = ip + 24;
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
    sa = ip + 14;  // ARP: sender and target IPv4 in the address fields, proto 0
    da = ip + 24;
  }  // else (bridge points): L2 fields only
  // Only the fields the context compiles are written (one well-predicted
  // branch per group: every packet of a burst meets the same context).
  const uint32_t need = fc.need;
  auto has = [need](uint32_t bits) { return (need & bits) != 0; };
  constexpr uint32_t kAddr = 0x1feu;  // F_SRC0..F_DST3
  uint32_t w0 = proto;
  std::memcpy(b, &w0, 4);
  if (has(kAddr))
    for (unsigned i = 0; i < fc.words; i++) {
      std::memcpy(b + off[F_SRC0 + i], sa + 4 * i, 4);
      std::memcpy(b + off[F_DST0 + i], da + 4 * i, 4);
    }
  const uint8_t* ports = kZero;
  uint16_t icmp = 0;
  if (l4 != nullptr) {
    if ((proto == 6 && l4len >= 14) || ((proto == 17 || proto == 132) && l4len >= 4)) {
      flags |= kFlagL4;
      ports = l4;
      if (proto == 6) flags |= l4[13];
    } else if ((proto == 1 || proto == 58) && l4len >= 2) {
      flags |= kFlagL4;
      icmp = static_cast<uint16_t>(l4[0] << 8 | l4[1]);
    }
  }
  if (has(1u << F_SPORT | 1u << F_DPORT)) {
    std::memcpy(b + off[F_SPORT], ports, 2);
    std::memcpy(b + off[F_DPORT], ports + 2, 2);
  }
  if (has(1u << F_IN | 1u << F_OUT)) {
    put16(b + off[F_IN], in);
    put16(b + off[F_OUT], out);
  }
  if (has(1u << F_MARK)) {
    uint32_t mk = rte_cpu_to_be_32(md.mark);
    std::memcpy(b + off[F_MARK], &mk, 4);
  }
  uint16_t vlan = 0;
  if (md.flags & kFlagVlan) {
    flags |= kFlagTagged;
    vlan = md.vlan_tci & 0xfff;
  }
  if (has(1u << F_VLAN)) put16(b + off[F_VLAN], vlan);
  if (has(1u << F_FLAGS)) put16(b + off[F_FLAGS], flags);
  if (has(1u << F_ICMP)) put16(b + off[F_ICMP], icmp);
  if (has(1u << F_SMAC03 | 1u << F_DMAC03 | 1u << F_SMAC45 | 1u << F_DMAC45)) {
    std::memcpy(b + off[F_SMAC03], d + 6, 4);  // source MAC 0-3
    std::memcpy(b + off[F_DMAC03], d, 4);      // destination MAC 0-3
    std::memcpy(b + off[F_SMAC45], d + 10, 2);
    std::memcpy(b + off[F_DMAC45], d + 4, 2);
  }
  if (has(1u << F_PAD)) put16(b + off[F_PAD], 0);
}

// Scalar check of one rule against a key (continue rules: the rules after
// the ACL's answer are walked with it).
bool key_matches(const AclRule& a, const Key& k, const Layout& L) {
  for (unsigned f = 0; f < L.nf; f++) {
    const auto& d = L.defs[f];
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

const char* rule_verdict_word(RuleVerdict v) {
  switch (v) {
    case RuleVerdict::accept:
      return "rule: accept";
    case RuleVerdict::drop:
      return "rule: drop";
    case RuleVerdict::cont:
      return "rule: continue";
    case RuleVerdict::queue:
      return "rule: queue";
  }
  return "rule";
}

// The hook function of a rule list.
void rules_hook(Worker& w, const State& st, void* priv, rte_mbuf** pkts, uint16_t n,
                uint32_t* verdicts) {
  auto* rl = static_cast<RuleList*>(priv);
  const RuleTable* t = rl->table.load(std::memory_order_acquire);
  for (uint16_t i = 0; i < n; i++) verdicts[i] = SLUICE_ACCEPT;
  if (t == nullptr || t->rules.empty()) return;
  Key keys[kBurst];
  const uint8_t* d4[kBurst];
  const uint8_t* d6[kBurst];
  uint16_t i4[kBurst], i6[kBurst], n4 = 0, n6 = 0;
  const bool has4 = t->v4.ctx != nullptr, has6 = t->v6.ctx != nullptr;
  for (uint16_t i = 0; i < n; i++) {
    // A family without rules (no context) accepts without a key.
    if (family_of(pkts[i]) == 6) {
      if (!has6) continue;
      make_key(pkts[i], st.in, out_of(st, i), t->v6, &keys[i]);
      d6[n6] = keys[i].b;
      i6[n6++] = i;
    } else {
      if (!has4) continue;
      make_key(pkts[i], st.in, out_of(st, i), t->v4, &keys[i]);
      d4[n4] = keys[i].b;
      i4[n4++] = i;
    }
  }
  uint32_t r4[kBurst], r6[kBurst];
  if (n4 != 0) rte_acl_classify(t->v4.ctx, d4, r4, n4, 1);
  if (n6 != 0) rte_acl_classify(t->v6.ctx, d6, r6, n6, 1);
  const unsigned nr = static_cast<unsigned>(t->rules.size());
  uint64_t* hits = &t->hits[(w.id % kMaxWorkers) * nr];
  // The ACL's answer is the first rule that matches on every field; after a
  // `continue` rule the next ones are tried in order with the exact check.
  auto next_match = [&](const FamCtx& fc, uint32_t from, const Key& k) -> uint32_t {
    for (uint32_t j = from; j < fc.map.size(); j++)
      if (key_matches(fc.full[j], k, fc.lay)) return j + 1;
    return 0;
  };
  auto apply = [&](uint16_t i, const FamCtx& fc, uint32_t res) {
    rte_mbuf* m = pkts[i];
    while (res != 0) {
      uint32_t ri = fc.map[res - 1];
      const CRule& cr = t->rules[ri];
      if (cr.r.counter) hits[ri]++;
      SLUICE_TRACE(w, m, "rule", meta(m).dev, rule_verdict_word(cr.r.verdict), kNoDev, "%s rule %u",
                   rl->name().c_str(), ri + 1);
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
  // The usual answers (no match, a plain accept or drop) from the compact
  // action table; the rest, and every packet while a trace is live, through
  // apply.
  const bool live = SLUICE_TRACE_LIVE(w);
  auto run = [&](const FamCtx& fc, const uint16_t* idx, const uint32_t* res, uint16_t cnt) {
    const FamCtx::Act* act = fc.act.data();
    for (uint16_t j = 0; j < cnt; j++) {
      const uint32_t r = res[j];
      if (r == 0) continue;
      const FamCtx::Act& a = act[r - 1];
      if (a.kind == FamCtx::kActFull || live) [[unlikely]] {
        apply(idx[j], fc, r);
        continue;
      }
      if (a.counter) hits[a.rule]++;
      if (a.kind == FamCtx::kActDrop) verdicts[idx[j]] = SLUICE_DROP;
    }
  };
  if (n4 != 0) run(t->v4, i4, r4, n4);
  if (n6 != 0) run(t->v6, i6, r6, n6);
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
  if (!v6_point) e = build_family(*t, t->v4, 1, 4, compile_all_fields);
  if (e.empty() && !v4_point) e = build_family(*t, t->v6, 4, 6, compile_all_fields);
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

unsigned RuleList::compiled_fields(int family) const {
  const RuleTable* t = table.load();
  if (t == nullptr) return 0;
  const FamCtx& fc = family == 6 ? t->v6 : t->v4;
  return fc.ctx != nullptr ? fc.lay.nf : 0;
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
