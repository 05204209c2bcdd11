// Rule lists (iptables/ebtables-like) at a hook point: first match wins,
// verdict accept | drop | continue, per-rule counters, set mark, rate-limited
// logging. Compiled with rte_acl (one context per family), classified per
// burst; a change builds a new table and swaps it in under RCU while
// traffic flows. The match types here have no DPDK dependency: the config
// loader validates with parse_match().
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sluice {
class Dataplane;
}

namespace sluice::hooks {

struct Match {
  std::string in_dev, out_dev;
  int family = 0;  // 0: any; 4 or 6 once src/dst is an address of that family
  bool has_src = false, has_dst = false;
  std::array<uint8_t, 16> src{}, dst{};
  uint8_t src_len = 0, dst_len = 0;
  int proto = -1;  // -1: any
  bool has_sport = false, has_dport = false;
  uint16_t sport_lo = 0, sport_hi = 65535, dport_lo = 0, dport_hi = 65535;
  bool has_tcp_flags = false;
  uint8_t tcp_set = 0, tcp_mask = 0;  // (flags & mask) == set
  int icmp_type = -1, icmp_code = -1;
  bool has_mark = false;
  uint32_t mark = 0, mark_mask = 0xffffffff;
  int vlan = -1;  // 0..4095; -1 any
  bool has_smac = false, has_dmac = false;
  std::array<uint8_t, 6> smac{}, dmac{};
  bool needs_l4() const {
    return has_sport || has_dport || has_tcp_flags || icmp_type >= 0 || icmp_code >= 0;
  }
};

enum class RuleVerdict : uint8_t { accept, drop, cont, queue };
inline constexpr unsigned kRuleQueues = 16;  // = hooks::kNumQueues

struct Rule {
  Match match;
  RuleVerdict verdict = RuleVerdict::cont;
  bool counter = true;
  bool has_set_mark = false;
  uint32_t set_mark = 0;
  bool log = false;
  // verdict queue (nft `queue num N [bypass]`): to hook queue `queue`
  // (0..15); bypass: without a consumer or with a full queue, go on (fail-open).
  bool has_queue = false;
  uint16_t queue = 0;
  bool bypass = false;
};

// The match keys, for messages.
inline constexpr const char* kMatchKeys =
    "in_dev, out_dev, src, dst, proto, src_port, dst_port, tcp_flags, icmp_type, icmp_code, "
    "mark, vlan, src_mac, dst_mac";
// Parses one "key: value" of a match map into m; returns "" or what is wrong.
// `unknown` is set when the key itself is not a match key.
std::string parse_match(const std::string& key, const std::string& value, Match* m, bool* unknown);
bool parse_rule_verdict(const std::string& s, RuleVerdict* out);

class Registry;
struct RuleTable;  // compiled (rules.cc)

// One named rule list registered at one point.
class RuleList {
 public:
  RuleList(Registry& reg, std::string name, unsigned point, int priority);
  ~RuleList();
  // Compiles rules into a new table and swaps it in (RCU). Returns "" or an
  // error (nothing changes then). Resolves device names against dp.net.
  std::string load(const std::vector<Rule>& rules, bool dry_run = false);
  // Registers the list's hook at its point (once).
  bool attach();
  void detach();

  const std::string& name() const { return name_; }
  unsigned point() const { return point_; }
  int priority() const { return priority_; }
  uint32_t hook_id() const { return id_; }
  size_t size() const;
  std::vector<uint64_t> rule_hits() const;  // summed over workers, per rule, since clear_stats()
  void clear_stats();  // a baseline for the current table (a new table counts from 0)
  uint64_t swaps() const { return swaps_; }
  // ACL fields the current table compiles for family 4 (IPv4, ARP, other) or
  // 6; 0 when that family has no rules. Only fields some rule uses are
  // compiled (plus the protocol, always first, and a pad to pair 16-bit ones).
  unsigned compiled_fields(int family) const;
  // Tests: compile every field, used or not (the differential test compares
  // a table compiled both ways). Read by load().
  bool compile_all_fields = false;

  // The hook function's view (rules.cc).
  std::atomic<const RuleTable*> table{nullptr};
  Registry& reg;

 private:
  std::string name_;
  unsigned point_;
  int priority_;
  uint32_t id_ = 0;
  uint64_t swaps_ = 0;
  uint64_t base_swaps_ = UINT64_MAX;  // the table the baseline belongs to
  std::vector<uint64_t> base_hits_;
  std::vector<uint64_t> raw_hits() const;
};

}  // namespace sluice::hooks
