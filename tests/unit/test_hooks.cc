// Hooks (src/hooks): order at a point (priorities, equal priorities in 6.x
// LIFO and the old FIFO, insertion and removal while traffic runs), every
// verdict's effect including queue with and without a consumer, rule lists on
// rte_acl (IPv4/IPv6, port ranges, non-first fragments, TCP flags, ICMP, MACs,
// VLAN, mark, devices, continue/set_mark, swap under traffic), the plugin ABI
// with the example plugin on real L3 traffic, and the IPv4 points of L3.
// Spec: ../shared/spec/linux-rx.md §4.7, §5.
#include <gtest/gtest.h>
#include <dlfcn.h>

#include <atomic>
#include <thread>

#include "bridge/config.hh"
#include "hooks/config.hh"
#include "l3/config.hh"
#include "bridge/bridge.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/netif.hh"
#include "hooks/hooks.hh"
#include "hooks/rules.hh"
#include "hooks/setup.hh"
#include "support/l3_fixture.hh"

using namespace sluice;
using namespace sluice::test;
using namespace sluice::hooks;

namespace {

struct Pkt {
  const char* src = "192.0.2.100";
  const char* dst = "198.51.100.7";
  uint8_t proto = 6;
  uint16_t sport = 40000, dport = 80;
  uint8_t tcp_flags = 0x02;
  uint16_t frag = 0;  // flags | offset (IPv4)
  uint8_t icmp_type = 8, icmp_code = 0;
  bool v6 = false;
  const char* smac = "02:00:00:00:00:aa";
  const char* dmac = "02:00:00:00:00:01";
  int vlan = -1;
  uint32_t mark = 0;
  uint8_t ttl = 64;
};

std::vector<uint8_t> l3_bytes(const Pkt& s) {
  std::vector<uint8_t> l4;
  if (s.proto == 6) {
    l4.assign(20, 0);
    l4[0] = s.sport >> 8, l4[1] = s.sport & 0xff, l4[2] = s.dport >> 8, l4[3] = s.dport & 0xff;
    l4[12] = 0x50;
    l4[13] = s.tcp_flags;
  } else if (s.proto == 17) {
    l4.assign(16, 0);
    l4[0] = s.sport >> 8, l4[1] = s.sport & 0xff, l4[2] = s.dport >> 8, l4[3] = s.dport & 0xff;
    l4[5] = 16;
  } else {
    l4.assign(16, 0);
    l4[0] = s.icmp_type;
    l4[1] = s.icmp_code;
    uint16_t c = csum(l4.data(), l4.size());
    l4[2] = c >> 8, l4[3] = c & 0xff;
  }
  if (s.v6) return ip6_bytes(s.src, s.dst, s.proto, s.ttl, l4);
  Ip ip;
  ip.src = s.src;
  ip.dst = s.dst;
  ip.ttl = s.ttl;
  ip.proto = s.proto;
  ip.frag = s.frag;
  ip.id = 0;
  ip.l4 = l4;
  return ip_bytes(ip);
}

rte_mbuf* make(const Pkt& s, uint16_t dev) {
  FrameSpec f;
  f.src = s.smac;
  f.dst = s.dmac;
  f.type = s.v6 ? 0x86dd : 0x0800;
  f.payload = l3_bytes(s);
  rte_mbuf* m = frame(f);
  PktMeta& md = meta(m);
  md = PktMeta{};
  md.dev = md.orig_dev = dev;
  md.protocol = f.type;
  md.mark = s.mark;
  if (s.vlan >= 0) {
    md.flags |= kFlagVlan;
    md.vlan_tci = static_cast<uint16_t>(s.vlan);
    md.vlan_proto = 0x8100;
  }
  return m;
}

// A hook that appends its tag to a log and answers a fixed verdict.
struct Tag {
  std::vector<std::string>* log;
  std::string name;
  uint32_t verdict = SLUICE_ACCEPT;
};
void tag_fn(Worker&, const State&, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
  auto* t = static_cast<Tag*>(priv);
  for (uint16_t i = 0; i < n; i++) {
    t->log->push_back(t->name);
    v[i] = t->verdict;
  }
}

class HooksTest : public TwoPortTest {
 protected:
  Registry* reg = nullptr;
  std::vector<std::string> log;

  void SetUp() override {
    TwoPortTest::SetUp();
    reg = &dp->feature<Registry>();
  }
  State st(Point p, uint16_t in = 0, uint16_t out = kNoDev) {
    return State{static_cast<uint8_t>(p), 0, in, out, nullptr};
  }
  // Runs one packet through point p; returns true when it survived (freed here).
  bool pass(Point p, rte_mbuf* m, uint16_t in = 0, uint16_t out = kNoDev) {
    rte_mbuf* v[1] = {m};
    uint16_t n = reg->run(*w, st(p, in, out), v, 1, in);
    if (n == 1) rte_pktmbuf_free(v[0]);
    w->flush_free();
    return n == 1;
  }
  uint64_t drops(uint16_t dev, DropReason r) { return dp->drops(dev)[static_cast<unsigned>(r)]; }
};

// ---- order ------------------------------------------------------------------------------

TEST_F(HooksTest, AscendingPriorityEqualPrioritiesNewestFirst) {
  Tag a{&log, "a"}, b{&log, "b"}, c{&log, "c"}, d{&log, "d"}, e{&log, "e"};
  reg->add(SLUICE_IPV4_FORWARD, 10, "a", tag_fn, &a, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, -5, "b", tag_fn, &b, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, 0, "c", tag_fn, &c, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, 0, "d", tag_fn, &d, Owner::builtin);  // same priority, later
  reg->add(SLUICE_IPV4_FORWARD, INT_MIN, "e", tag_fn, &e, Owner::builtin);
  EXPECT_TRUE(pass(SLUICE_IPV4_FORWARD, make(Pkt{}, 0)));
  // 6.x nf_hook_entries_grow: d (newer) before c.
  EXPECT_EQ(log, (std::vector<std::string>{"e", "b", "d", "c", "a"}));
  const List* l = reg->list(SLUICE_IPV4_FORWARD);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->entries.size(), 5u);
  EXPECT_EQ(reg->list(SLUICE_IPV4_PRE_ROUTING), nullptr);  // other points untouched
}

TEST_F(HooksTest, FifoAmongEqualsLikeOldKernels) {
  reg->set_fifo_equal(true);
  Tag c{&log, "c"}, d{&log, "d"};
  reg->add(SLUICE_IPV4_LOCAL_IN, 0, "c", tag_fn, &c, Owner::builtin);
  reg->add(SLUICE_IPV4_LOCAL_IN, 0, "d", tag_fn, &d, Owner::builtin);
  EXPECT_TRUE(pass(SLUICE_IPV4_LOCAL_IN, make(Pkt{}, 0)));
  EXPECT_EQ(log, (std::vector<std::string>{"c", "d"}));
}

TEST_F(HooksTest, RemoveAndNamedPriorities) {
  Tag a{&log, "a"}, b{&log, "b"};
  uint32_t ia = reg->add(SLUICE_IPV6_FORWARD, 0, "a", tag_fn, &a, Owner::builtin);
  reg->add(SLUICE_IPV6_FORWARD, 1, "b", tag_fn, &b, Owner::builtin);
  EXPECT_TRUE(reg->remove(ia));
  EXPECT_FALSE(reg->remove(ia));
  EXPECT_TRUE(pass(SLUICE_IPV6_FORWARD, make(Pkt{}, 0)));
  EXPECT_EQ(log, (std::vector<std::string>{"b"}));
  int v = 1;
  EXPECT_TRUE(parse_priority("nat_dst", false, &v));
  EXPECT_EQ(v, -100);
  EXPECT_TRUE(parse_priority("filter", false, &v));
  EXPECT_EQ(v, 0);
  EXPECT_TRUE(parse_priority("mangle", false, &v));
  EXPECT_EQ(v, -150);
  EXPECT_TRUE(parse_priority("conntrack_confirm", false, &v));
  EXPECT_EQ(v, INT_MAX);
  EXPECT_TRUE(parse_priority("filter_bridged", true, &v));
  EXPECT_EQ(v, -200);
  EXPECT_TRUE(parse_priority("nat_dst_bridged", true, &v));
  EXPECT_EQ(v, -300);
  EXPECT_TRUE(parse_priority("-42", false, &v));
  EXPECT_EQ(v, -42);
  EXPECT_FALSE(parse_priority("filter_bridged", false, &v));
  EXPECT_FALSE(parse_priority("filtre", false, &v));
  Point p;
  EXPECT_TRUE(parse_point("arp/forward", &p));
  EXPECT_EQ(p, SLUICE_ARP_FORWARD);
  EXPECT_TRUE(parse_point("bridge/post_routing", &p));
  EXPECT_FALSE(parse_point("ipv4/prerouting", &p));
}

// Entries added and removed while a worker thread runs bursts through the point.
TEST_F(HooksTest, InsertRemoveWhileTrafficRuns) {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bursts{0};
  dp->rcu.register_thread(0);
  std::thread t([&] {
    dp->rcu.online(0);
    while (!stop.load()) {
      rte_mbuf* v[8];
      for (auto& m : v) m = make(Pkt{}, 0);
      uint16_t n = reg->run(*w, st(SLUICE_IPV4_FORWARD), v, 8, 0);
      for (uint16_t i = 0; i < n; i++) rte_pktmbuf_free(v[i]);
      w->flush_free();
      bursts++;
      dp->rcu.quiescent(0);
    }
    dp->rcu.offline(0);
  });
  struct Cnt {
    std::atomic<uint64_t> n{0};
  } cnt;
  auto count_fn = [](Worker&, const State&, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
    static_cast<Cnt*>(priv)->n += n;
    for (uint16_t i = 0; i < n; i++) v[i] = SLUICE_ACCEPT;
  };
  for (int round = 0; round < 200; round++) {
    uint32_t a = reg->add(SLUICE_IPV4_FORWARD, round % 7, "x", count_fn, &cnt, Owner::builtin);
    uint32_t b = reg->add(SLUICE_IPV4_FORWARD, -(round % 5), "y", count_fn, &cnt, Owner::builtin);
    ASSERT_NE(a, 0u);
    ASSERT_NE(b, 0u);
    EXPECT_TRUE(reg->remove(a));
    if (round % 2) {
      EXPECT_TRUE(reg->remove(b));
    }
  }
  while (bursts.load() < 100) std::this_thread::yield();
  stop = true;
  t.join();
  EXPECT_GT(cnt.n.load(), 0u);
  const List* l = reg->list(SLUICE_IPV4_FORWARD);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(l->entries.size(), 100u);  // the even rounds' "y"
  for (size_t i = 1; i < l->entries.size(); i++)
    EXPECT_LE(l->entries[i - 1].priority, l->entries[i].priority);
}

// ---- verdicts ---------------------------------------------------------------------------

TEST_F(HooksTest, DropIsFreedAndCountedWithTheHooksName) {
  Tag a{&log, "a", SLUICE_DROP}, b{&log, "b"};
  reg->add(SLUICE_IPV4_LOCAL_IN, 0, "blocker", tag_fn, &a, Owner::builtin);
  reg->add(SLUICE_IPV4_LOCAL_IN, 5, "after", tag_fn, &b, Owner::builtin);
  EXPECT_FALSE(pass(SLUICE_IPV4_LOCAL_IN, make(Pkt{}, p0->index), p0->index));
  EXPECT_EQ(log, (std::vector<std::string>{"a"}));  // nothing after a drop
  EXPECT_EQ(drops(p0->index, DropReason::netfilter_drop), 1u);
  const Entry& e = reg->list(SLUICE_IPV4_LOCAL_IN)->entries[0];
  EXPECT_EQ(e.name, "blocker");
  EXPECT_EQ(reg->counters(e.slot).drops, 1u);
  EXPECT_EQ(reg->counters(e.slot).hits, 1u);
}

TEST_F(HooksTest, StolenIsNotFreedStopSkipsTheRest) {
  static rte_mbuf* kept = nullptr;
  auto steal = [](Worker&, const State&, void*, rte_mbuf** p, uint16_t n, uint32_t* v) {
    for (uint16_t i = 0; i < n; i++) {
      kept = p[i];
      v[i] = SLUICE_STOLEN;
    }
  };
  reg->add(SLUICE_ARP_IN, 0, "thief", steal, nullptr, Owner::builtin);
  EXPECT_FALSE(pass(SLUICE_ARP_IN, make(Pkt{}, 0)));
  ASSERT_NE(kept, nullptr);
  EXPECT_EQ(rte_mbuf_refcnt_read(kept), 1);  // still ours: the core did not free it
  rte_pktmbuf_free(kept);

  Tag s{&log, "stop", SLUICE_STOP}, later{&log, "later", SLUICE_DROP}, first{&log, "first"};
  reg->add(SLUICE_IPV4_POST_ROUTING, 0, "stop", tag_fn, &s, Owner::builtin);
  reg->add(SLUICE_IPV4_POST_ROUTING, 10, "later", tag_fn, &later, Owner::builtin);
  reg->add(SLUICE_IPV4_POST_ROUTING, -10, "first", tag_fn, &first, Owner::builtin);
  EXPECT_TRUE(pass(SLUICE_IPV4_POST_ROUTING, make(Pkt{}, 0)));  // accepted despite "later"
  EXPECT_EQ(log, (std::vector<std::string>{"first", "stop"}));
}

TEST_F(HooksTest, MixedVerdictsInOneBurstKeepOrder) {
  // Drop every second packet, STOP the third: survivors keep their order.
  auto fn = [](Worker&, const State&, void*, rte_mbuf** p, uint16_t n, uint32_t* v) {
    for (uint16_t i = 0; i < n; i++) {
      uint16_t id = meta(p[i]).mark;
      v[i] = id % 2 ? SLUICE_DROP : id == 2 ? SLUICE_STOP : SLUICE_ACCEPT;
    }
  };
  auto drop4 = [](Worker&, const State&, void*, rte_mbuf** p, uint16_t n, uint32_t* v) {
    for (uint16_t i = 0; i < n; i++) v[i] = meta(p[i]).mark == 4 ? SLUICE_DROP : SLUICE_ACCEPT;
  };
  reg->add(SLUICE_IPV4_FORWARD, 0, "odd", fn, nullptr, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, 1, "four", drop4, nullptr, Owner::builtin);
  rte_mbuf* v[8];
  for (uint32_t i = 0; i < 8; i++) {
    Pkt p;
    p.mark = i;
    v[i] = make(p, 0);
  }
  uint16_t idx[8];
  uint16_t n = reg->run(*w, st(SLUICE_IPV4_FORWARD), v, 8, 0, idx);
  ASSERT_EQ(n, 3);  // 0, 2 (stopped before "four"), 6
  EXPECT_EQ(meta(v[0]).mark, 0u);
  EXPECT_EQ(meta(v[1]).mark, 2u);
  EXPECT_EQ(meta(v[2]).mark, 6u);
  EXPECT_EQ(idx[0], 0);
  EXPECT_EQ(idx[1], 2);
  EXPECT_EQ(idx[2], 6);
  for (uint16_t i = 0; i < n; i++) rte_pktmbuf_free(v[i]);
}

TEST_F(HooksTest, QueueWithoutConsumerDropsOrBypasses) {
  Tag q{&log, "q", sluice_queue_nr(3)}, after{&log, "after"};
  uint32_t id = reg->add(SLUICE_IPV4_FORWARD, 0, "q", tag_fn, &q, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, 1, "after", tag_fn, &after, Owner::builtin);
  EXPECT_FALSE(pass(SLUICE_IPV4_FORWARD, make(Pkt{}, 0)));
  EXPECT_EQ(drops(0, DropReason::nfqueue_nolistener), 1u);
  EXPECT_EQ(log, (std::vector<std::string>{"q"}));
  reg->remove(id);
  Tag qb{&log, "qb", sluice_queue_nr(3, true)};
  reg->add(SLUICE_IPV4_FORWARD, 0, "qb", tag_fn, &qb, Owner::builtin);
  log.clear();
  EXPECT_TRUE(pass(SLUICE_IPV4_FORWARD, make(Pkt{}, 0)));  // fail-open: on to the next hook
  EXPECT_EQ(log, (std::vector<std::string>{"qb", "after"}));
  EXPECT_EQ(reg->queue_stats(3).bypassed, 1u);
}

struct OkSink {
  std::vector<uint32_t> marks;
};
void ok_fn(Worker&, const State&, rte_mbuf** pkts, uint16_t n, void* ctx) {
  for (uint16_t i = 0; i < n; i++) {
    static_cast<OkSink*>(ctx)->marks.push_back(meta(pkts[i]).mark);
    rte_pktmbuf_free(pkts[i]);
  }
}

TEST_F(HooksTest, QueueWithConsumerAcceptResumesAfterTheQueueingHook) {
  Tag before{&log, "before"}, q{&log, "q", sluice_queue_nr(1)}, after{&log, "after"};
  reg->add(SLUICE_IPV4_FORWARD, -1, "before", tag_fn, &before, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, 0, "q", tag_fn, &q, Owner::builtin);
  reg->add(SLUICE_IPV4_FORWARD, 1, "after", tag_fn, &after, Owner::builtin);
  OkSink sinkok;
  reg->set_okfn(SLUICE_IPV4_FORWARD, ok_fn, &sinkok);
  reg->bind(1, true);
  for (uint32_t i = 0; i < 3; i++) {
    Pkt p;
    p.mark = 100 + i;
    EXPECT_FALSE(pass(SLUICE_IPV4_FORWARD, make(p, 0)));  // left the burst: queued
  }
  EXPECT_EQ(log, (std::vector<std::string>{"before", "q", "before", "q", "before", "q"}));
  log.clear();
  Queued got[8];
  ASSERT_EQ(reg->read(1, got, 8), 3u);
  EXPECT_LT(got[0].id, got[1].id);
  reg->verdict(got[0], SLUICE_ACCEPT);
  reg->verdict(got[1], SLUICE_DROP);
  reg->verdict(got[2], SLUICE_STOP);
  reg->poll(*w);
  w->flush_free();
  EXPECT_EQ(log, (std::vector<std::string>{"after"}));  // only the accepted one re-entered
  EXPECT_EQ(sinkok.marks, (std::vector<uint32_t>{100, 102}));
  EXPECT_EQ(reg->queue_stats(1).answered, 3u);
  EXPECT_EQ(reg->queue_stats(1).queued, 3u);
}

TEST_F(HooksTest, FullQueueDropsOrBypasses) {
  reg->set_queue_len(2, 2);
  Tag q{&log, "q", sluice_queue_nr(2)};
  uint32_t id = reg->add(SLUICE_IPV6_LOCAL_IN, 0, "q", tag_fn, &q, Owner::builtin);
  reg->bind(2, true);
  int survived = 0;
  for (int i = 0; i < 5; i++) survived += pass(SLUICE_IPV6_LOCAL_IN, make(Pkt{}, 0));
  EXPECT_EQ(survived, 0);
  auto qs = reg->queue_stats(2);
  EXPECT_GE(qs.queued, 2u);
  EXPECT_EQ(qs.queued + qs.full, 5u);
  EXPECT_EQ(drops(0, DropReason::nfqueue_full), qs.full);
  reg->remove(id);
  Tag qb{&log, "qb", sluice_queue_nr(2, true)};
  reg->add(SLUICE_IPV6_LOCAL_IN, 0, "qb", tag_fn, &qb, Owner::builtin);
  {  // ring still full: fail-open, and the caller's scratch is intact
    rte_mbuf* m = make(Pkt{}, 0);
    meta(m).user[0] = 0x1234;
    rte_mbuf* v[1] = {m};
    ASSERT_EQ(reg->run(*w, st(SLUICE_IPV6_LOCAL_IN), v, 1, 0), 1);
    EXPECT_EQ(meta(v[0]).user[0], 0x1234u);
    rte_pktmbuf_free(v[0]);
  }
  Queued got[8];
  unsigned n = reg->read(2, got, 8);
  for (unsigned i = 0; i < n; i++) reg->verdict(got[i], SLUICE_DROP);
}

// ---- rule lists -------------------------------------------------------------------------

Rule rule(std::initializer_list<std::pair<const char*, const char*>> kv, const char* verdict) {
  Rule r;
  for (auto& [k, v] : kv) {
    bool unknown = false;
    std::string e = parse_match(k, v, &r.match, &unknown);
    EXPECT_EQ(e, "") << k << "=" << v;
  }
  EXPECT_TRUE(parse_rule_verdict(verdict, &r.verdict));
  return r;
}

struct Case {
  const char* what;
  Pkt p;
  int expect_rule;  // 1-based rule that matched; 0 = none
};

class RulesTest : public HooksTest {
 protected:
  std::unique_ptr<RuleList> rl;
  void TearDown() override {
    rl.reset();  // before the registry
    HooksTest::TearDown();
  }
  void load(Point p, std::vector<Rule> rules) {
    rl = std::make_unique<RuleList>(*reg, "t", p, 0);
    ASSERT_EQ(rl->load(rules), "");
    ASSERT_TRUE(rl->attach());
  }
  // Every rule has a distinct set_mark = its number; verdict accept.
  void check(Point p, const std::vector<Case>& cases, uint16_t in = 0, uint16_t out = 1) {
    for (const Case& c : cases) {
      rte_mbuf* v[1] = {make(c.p, in)};
      uint16_t n = reg->run(*w, st(p, in, out), v, 1, in);
      ASSERT_EQ(n, 1) << c.what;
      uint32_t m = meta(v[0]).mark;
      EXPECT_EQ(m == c.p.mark ? 0 : static_cast<int>(m), c.expect_rule) << c.what;
      rte_pktmbuf_free(v[0]);
    }
  }
  static std::vector<Rule> marked(std::vector<Rule> rs) {
    for (size_t i = 0; i < rs.size(); i++) {
      rs[i].has_set_mark = true;
      rs[i].set_mark = static_cast<uint32_t>(i + 1);
    }
    return rs;
  }
};

TEST_F(RulesTest, Ipv4PrefixesPortsProtoFirstMatchWins) {
  load(SLUICE_IPV4_FORWARD,
       marked({rule({{"proto", "tcp"}, {"dst_port", "9091"}}, "accept"),
               rule({{"src", "10.1.0.0/16"}, {"dst", "10.2.3.4"}}, "accept"),
               rule({{"proto", "udp"}, {"src_port", "1000-2000"}, {"dst_port", "53"}}, "accept"),
               rule({{"src", "10.0.0.0/8"}}, "accept"),
               rule({{"proto", "tcp"}, {"dst_port", "8000-8999"}}, "accept")}));
  Pkt base;
  auto P = [&](auto f) {
    Pkt p = base;
    f(p);
    return p;
  };
  check(SLUICE_IPV4_FORWARD,
        {{"tcp 9091", P([](Pkt& p) { p.dport = 9091; }), 1},
         {"tcp 9092", P([](Pkt& p) { p.dport = 9092; }), 0},
         {"udp 9091 is not tcp", P([](Pkt& p) { p.proto = 17, p.dport = 9091; }), 0},
         {"first match wins over the /8",
          P([](Pkt& p) { p.src = "10.1.2.3", p.dst = "10.2.3.4", p.dport = 9091; }), 1},
         {"exact dst", P([](Pkt& p) { p.src = "10.1.2.3", p.dst = "10.2.3.4"; }), 2},
         {"dst one off", P([](Pkt& p) { p.src = "10.1.2.3", p.dst = "10.2.3.5"; }), 4},
         {"/16 boundary", P([](Pkt& p) { p.src = "10.2.0.1", p.dst = "10.2.3.4"; }), 4},
         {"udp range low edge", P([](Pkt& p) { p.proto = 17, p.sport = 1000, p.dport = 53; }), 3},
         {"udp range high edge", P([](Pkt& p) { p.proto = 17, p.sport = 2000, p.dport = 53; }), 3},
         {"udp range above", P([](Pkt& p) { p.proto = 17, p.sport = 2001, p.dport = 53; }), 0},
         {"udp range below", P([](Pkt& p) { p.proto = 17, p.sport = 999, p.dport = 53; }), 0},
         {"tcp 8000", P([](Pkt& p) { p.dport = 8000; }), 5},
         {"tcp 8999", P([](Pkt& p) { p.dport = 8999; }), 5},
         {"tcp 9000", P([](Pkt& p) { p.dport = 9000; }), 0}});
  auto hits = rl->rule_hits();
  ASSERT_EQ(hits.size(), 5u);
  EXPECT_EQ(hits[0], 2u);
  EXPECT_EQ(hits[1], 1u);
  EXPECT_EQ(hits[2], 2u);
  EXPECT_EQ(hits[3], 2u);
  EXPECT_EQ(hits[4], 2u);
}

TEST_F(RulesTest, NonFirstFragmentsHaveNoPorts) {
  load(SLUICE_IPV4_FORWARD, marked({rule({{"proto", "udp"}, {"dst_port", "0-65535"}}, "accept"),
                                    rule({{"proto", "udp"}}, "accept")}));
  Pkt first, later;
  first.proto = later.proto = 17;
  first.frag = 0x2000;  // MF, offset 0: has ports
  later.frag = 0x0003;  // offset 24: no ports
  check(SLUICE_IPV4_FORWARD, {{"first fragment", first, 1}, {"later fragment", later, 2}});
}

TEST_F(RulesTest, TcpFlagsAndIcmp) {
  load(SLUICE_IPV4_LOCAL_IN,
       marked({rule({{"proto", "tcp"}, {"tcp_flags", "syn/syn,ack"}}, "accept"),
               rule({{"tcp_flags", "ack,!rst"}}, "accept"),
               rule({{"proto", "icmp"}, {"icmp_type", "8"}, {"icmp_code", "0"}}, "accept"),
               rule({{"icmp_type", "3"}}, "accept")}));
  Pkt syn, synack, ack, rstack, echo, unreach, unreach_code;
  synack.tcp_flags = 0x12;
  ack.tcp_flags = 0x10;
  rstack.tcp_flags = 0x14;
  echo.proto = unreach.proto = unreach_code.proto = 1;
  unreach.icmp_type = 3;
  unreach_code.icmp_type = 3, unreach_code.icmp_code = 13;
  Pkt echo_code = echo;
  echo_code.icmp_code = 1;
  check(SLUICE_IPV4_LOCAL_IN, {{"syn", syn, 1},
                               {"syn+ack", synack, 2},
                               {"ack", ack, 2},
                               {"rst+ack", rstack, 0},
                               {"echo", echo, 3},
                               {"echo code 1", echo_code, 0},
                               {"unreach", unreach, 4},
                               {"unreach code 13", unreach_code, 4}});
}

TEST_F(RulesTest, MacsVlanMarkDevices) {
  load(
      SLUICE_IPV4_PRE_ROUTING,
      marked({rule({{"src_mac", "02:00:00:00:00:bb"}}, "accept"),
              rule({{"dst_mac", "ff:ff:ff:ff:ff:ff"}}, "accept"), rule({{"vlan", "100"}}, "accept"),
              rule({{"mark", "0x40/0xf0"}}, "accept"), rule({{"in_dev", "p1"}}, "accept")}));
  Pkt a, b, v100, v101, mk, mk2;
  a.smac = "02:00:00:00:00:bb";
  b.dmac = "ff:ff:ff:ff:ff:ff";
  v100.vlan = 100;
  v101.vlan = 101;
  mk.mark = 0x45;
  mk2.mark = 0x85;
  check(SLUICE_IPV4_PRE_ROUTING,
        {{"src mac", a, 1},
         {"dst mac", b, 2},
         {"vlan 100", v100, 3},
         {"vlan 101", v101, 0},
         {"untagged", Pkt{}, 0},
         {"mark 0x45", mk, 4},
         {"mark 0x85", mk2, 0}},
        p0->index);
  check(SLUICE_IPV4_PRE_ROUTING, {{"in p1", Pkt{}, 5}}, p1->index);
}

TEST_F(RulesTest, MacsWithHighBitsAndEveryField) {
  load(SLUICE_IPV4_PRE_ROUTING, marked({rule({{"dst_mac", "03:00:00:00:00:01"}}, "accept"),
                                        rule({{"dst_mac", "ff:ff:ff:ff:ff:fe"}}, "accept"),
                                        rule({{"dst_mac", "7f:ff:ff:ff:ff:ff"}}, "accept"),
                                        rule({{"dst_mac", "ff:ff:ff:ff:ff:ff"}}, "accept")}));
  Pkt a, b, c, d;
  a.dmac = "03:00:00:00:00:01";
  b.dmac = "ff:ff:ff:ff:ff:fe";
  c.dmac = "7f:ff:ff:ff:ff:ff";
  d.dmac = "ff:ff:ff:ff:ff:ff";
  check(SLUICE_IPV4_PRE_ROUTING, {{"a", a, 1}, {"b", b, 2}, {"c", c, 3}, {"d", d, 4}});
}

TEST_F(RulesTest, Ipv6AndOutDev) {
  load(SLUICE_IPV6_FORWARD,
       marked({rule({{"src", "2001:db8:1::/48"}, {"proto", "tcp"}, {"dst_port", "443"}}, "accept"),
               rule({{"dst", "2001:db8::7"}}, "accept"), rule({{"out_dev", "p1"}}, "accept")}));
  Pkt a, b, c, d;
  a.v6 = b.v6 = c.v6 = d.v6 = true;
  a.src = "2001:db8:1:ffff::1", a.dst = "2001:db8::9", a.dport = 443;
  b.src = "2001:db8:2::1", b.dst = "2001:db8::7";
  c.src = "2001:db8:1::1", c.dst = "2001:db8::9", c.dport = 80;
  d = c;
  check(SLUICE_IPV6_FORWARD, {{"v6 /48 tcp 443", a, 1}, {"v6 exact dst", b, 2}, {"v6 none", c, 0}},
        p0->index, p0->index);
  check(SLUICE_IPV6_FORWARD, {{"out p1", d, 3}}, p0->index, p1->index);
}

TEST_F(RulesTest, VerdictsDropContinueAndBadRules) {
  std::vector<Rule> rs{rule({{"proto", "tcp"}}, "continue"), rule({{"dst_port", "22"}}, "drop"),
                       rule({{"proto", "tcp"}}, "accept")};
  rs[0].has_set_mark = true;
  rs[0].set_mark = 7;
  load(SLUICE_IPV4_FORWARD, rs);
  Pkt ssh, web;
  ssh.dport = 22;
  EXPECT_FALSE(pass(SLUICE_IPV4_FORWARD, make(ssh, 0)));
  rte_mbuf* v[1] = {make(web, 0)};
  ASSERT_EQ(reg->run(*w, st(SLUICE_IPV4_FORWARD), v, 1, 0), 1);
  EXPECT_EQ(meta(v[0]).mark, 7u);  // continue applied its mark, then rule 3 accepted
  rte_pktmbuf_free(v[0]);
  auto hits = rl->rule_hits();
  EXPECT_EQ(hits, (std::vector<uint64_t>{2, 1, 1}));
  EXPECT_EQ(reg->counters(reg->list(SLUICE_IPV4_FORWARD)->entries[0].slot).drops, 1u);

  Match m;
  bool unknown = false;
  EXPECT_NE(parse_match("dst_port", "9000-8000", &m, &unknown).find("out of order"),
            std::string::npos);
  EXPECT_NE(parse_match("src", "10.0.0.0/33", &m, &unknown).find("bad prefix"), std::string::npos);
  EXPECT_NE(parse_match("src", "10.0.0.300", &m, &unknown).find("bad prefix"), std::string::npos);
  parse_match("dport", "1", &m, &unknown);
  EXPECT_TRUE(unknown);
  RuleList bad(*reg, "bad", SLUICE_IPV4_FORWARD, 0);
  EXPECT_NE(bad.load({rule({{"src", "2001:db8::/32"}}, "drop")}).find("IPv6 addresses"),
            std::string::npos);
  EXPECT_NE(bad.load({rule({{"in_dev", "nope0"}}, "drop")}).find("unknown device"),
            std::string::npos);
}

// A rule list swapped (new rte_acl context, RCU) while a worker classifies.
TEST_F(RulesTest, SwapUnderTraffic) {
  load(SLUICE_IPV4_FORWARD, {rule({{"proto", "tcp"}, {"dst_port", "9091"}}, "drop")});
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> dropped{0}, passed{0};
  dp->rcu.register_thread(0);
  std::thread t([&] {
    dp->rcu.online(0);
    while (!stop.load()) {
      Pkt p;
      p.dport = 9091;
      rte_mbuf* v[4];
      for (auto& m : v) m = make(p, 0);
      uint16_t n = reg->run(*w, st(SLUICE_IPV4_FORWARD), v, 4, 0);
      for (uint16_t i = 0; i < n; i++) rte_pktmbuf_free(v[i]);
      w->flush_free();
      dropped += 4 - n;
      passed += n;
      dp->rcu.quiescent(0);
    }
    dp->rcu.offline(0);
  });
  // Swap at least 40 times, and on until the reader has seen both tables
  // (under load it may start late); bounded so a bug cannot hang the suite.
  int swaps = 0;
  bool ok = true;
  while (ok && swaps < 200000 && (swaps < 40 || dropped.load() == 0 || passed.load() == 0)) {
    const char* port = swaps % 2 ? "9091" : "9092";
    ok = rl->load({rule({{"proto", "tcp"}, {"dst_port", port}}, "drop")}).empty();
    swaps++;
    if (swaps >= 40) std::this_thread::yield();
  }
  stop = true;
  t.join();
  ASSERT_TRUE(ok);
  EXPECT_EQ(rl->swaps(), static_cast<uint64_t>(swaps) + 1);
  EXPECT_GT(dropped.load(), 0u);
  EXPECT_GT(passed.load(), 0u);
}

// ---- plugins and L3 ------------------------------------------------------------------------

class HooksL3Test : public HooksTest {
 protected:
  void SetUp() override {
    HooksTest::SetUp();
    t4_addresses();
    dp->topo.get<l3::Config>().addresses.push_back({{}, "p0", "2001:db8:1::1/64", {}, {}});
    dp->topo.get<l3::Config>().addresses.push_back({{}, "p1", "2001:db8:2::1/64", {}, {}});
    t4_neighbours();
    start_l3(1000000);
  }
  void TearDown() override {
    dp.reset();  // plugins are closed by the registry
    w = nullptr;
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }
  void rx(const Pkt& p) {
    rte_mbuf* m = make(p, p0->index);
    meta(m) = PktMeta{};
    port_receive(*w, *p0, &m, 1);
    w->flush_tx();
    w->flush_free();
  }
  size_t forwarded() {
    size_t n = 0;
    for (size_t i = 0; i < sink.frames.size(); i++) n += sink.devs[i] == p1->index;
    sink.frames.clear();
    sink.devs.clear();
    return n;
  }
};

TEST_F(HooksL3Test, ForwardRuleBlocksPort9091OnlyAndCountsEachSyn) {
  config::HookListCfg h;
  h.name = "block-9091";
  h.point = "ipv4/forward";
  h.rules = {rule({{"proto", "tcp"}, {"dst_port", "9091"}, {"in_dev", "p0"}}, "drop")};
  ASSERT_EQ(load_rule_lists(*reg, {h}), "");
  for (int i = 0; i < 5; i++) {
    Pkt p;
    p.dport = 9091;
    rx(p);
  }
  EXPECT_EQ(forwarded(), 0u);
  EXPECT_EQ(l3->mib(p1->index)[l3::Mib::OutOctets], 0u);  // ip_output: after the hook
  Pkt other;
  other.dport = 9092;
  rx(other);
  EXPECT_EQ(forwarded(), 1u);
  EXPECT_GT(l3->mib(p1->index)[l3::Mib::OutOctets], 0u);
  ASSERT_EQ(reg->rule_lists.size(), 1u);
  EXPECT_EQ(reg->rule_lists[0]->rule_hits(), (std::vector<uint64_t>{5}));
  EXPECT_EQ(drops(p0->index, DropReason::netfilter_drop), 5u);
  // FWD-06: ForwDatagrams is counted before the FORWARD hook (ip_forward),
  // so the five dropped count too (OutOctets, above, only what left).
  EXPECT_EQ(l3->mib(p0->index)[l3::Mib::ForwDatagrams], 6u);
  // `clear stats`: entry counters and rule hits start again from 0.
  dp->clear_stats();
  uint16_t slot = reg->list(SLUICE_IPV4_FORWARD)->entries[0].slot;
  EXPECT_EQ(reg->counters(slot).hits, 0u);
  EXPECT_EQ(reg->rule_lists[0]->rule_hits(), (std::vector<uint64_t>{0}));
  Pkt again;
  again.dport = 9091;
  rx(again);
  EXPECT_EQ(reg->counters(slot).hits, 1u);
  EXPECT_EQ(reg->counters(slot).drops, 1u);
  EXPECT_EQ(reg->rule_lists[0]->rule_hits(), (std::vector<uint64_t>{1}));
}

TEST_F(HooksL3Test, PointsSeeTheRightDevices) {
  struct Seen {
    std::vector<std::tuple<uint8_t, uint16_t, uint16_t>> v;
  } seen;
  auto fn = [](Worker&, const State& s, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
    for (uint16_t i = 0; i < n; i++) {
      static_cast<Seen*>(priv)->v.emplace_back(s.point, s.in, out_of(s, i));
      v[i] = SLUICE_ACCEPT;
    }
  };
  for (unsigned p = SLUICE_IPV4_PRE_ROUTING; p <= SLUICE_IPV4_POST_ROUTING; p++)
    reg->add(static_cast<Point>(p), 0, "spy", fn, &seen, Owner::builtin);
  rx(Pkt{});  // forwarded p0 → p1
  EXPECT_EQ(forwarded(), 1u);
  using T = std::tuple<uint8_t, uint16_t, uint16_t>;
  EXPECT_EQ(seen.v, (std::vector<T>{T{SLUICE_IPV4_PRE_ROUTING, p0->index, kNoDev},
                                    T{SLUICE_IPV4_FORWARD, p0->index, p1->index},
                                    T{SLUICE_IPV4_POST_ROUTING, kNoDev, p1->index}}));
  seen.v.clear();
  Pkt echo;  // to 192.0.2.1: LOCAL_IN, and the reply LOCAL_OUT → POST_ROUTING
  echo.proto = 1;
  echo.dst = "192.0.2.1";
  rx(echo);
  sink.frames.clear();
  sink.devs.clear();
  EXPECT_EQ(seen.v, (std::vector<T>{T{SLUICE_IPV4_PRE_ROUTING, p0->index, kNoDev},
                                    T{SLUICE_IPV4_LOCAL_IN, p0->index, kNoDev},
                                    T{SLUICE_IPV4_LOCAL_OUT, kNoDev, kNoDev},
                                    T{SLUICE_IPV4_POST_ROUTING, kNoDev, p0->index}}));
}

TEST_F(HooksL3Test, Ipv6PointsAndForwardRule) {
  struct Seen {
    std::vector<std::tuple<uint8_t, uint16_t, uint16_t>> v;
  } seen;
  auto fn = [](Worker&, const State& s, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
    for (uint16_t i = 0; i < n; i++) {
      static_cast<Seen*>(priv)->v.emplace_back(s.point, s.in, out_of(s, i));
      v[i] = SLUICE_ACCEPT;
    }
  };
  for (unsigned p = SLUICE_IPV6_PRE_ROUTING; p <= SLUICE_IPV6_POST_ROUTING; p++)
    reg->add(static_cast<Point>(p), 0, "spy", fn, &seen, Owner::builtin);
  config::HookListCfg h;
  h.name = "v6-block";
  h.point = "ipv6/forward";
  h.priority = 10;  // after the spy (at 0, LIFO would put a newer 0 first)
  h.rules = {rule({{"dst", "2001:db8:2::/64"}, {"proto", "udp"}, {"dst_port", "9091"}}, "drop")};
  ASSERT_EQ(load_rule_lists(*reg, {h}), "");
  Pkt p;
  p.v6 = true;
  p.proto = 17;
  p.src = "2001:db8:1::2";
  p.dst = "2001:db8:2::7";
  p.dport = 9091;
  rx(p);
  using T = std::tuple<uint8_t, uint16_t, uint16_t>;
  EXPECT_EQ(seen.v, (std::vector<T>{T{SLUICE_IPV6_PRE_ROUTING, p0->index, kNoDev},
                                    T{SLUICE_IPV6_FORWARD, p0->index, p1->index}}));
  EXPECT_EQ(reg->rule_lists[0]->rule_hits(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(drops(p0->index, DropReason::netfilter_drop), 1u);
  EXPECT_EQ(l3->mib(p0->index)[l3::Mib::Ip6OutForwDatagrams], 1u);  // before the hook
}

TEST_F(HooksL3Test, ArpInRuleDropsRequestsAndArpOutSeesReplies) {
  auto arp_req = [&](const char* smac) {
    std::vector<uint8_t> p = {0, 1, 8, 0, 6, 4, 0, 1};
    rte_ether_addr a = mac(smac);
    p.insert(p.end(), a.addr_bytes, a.addr_bytes + 6);
    for (uint8_t b : {192, 0, 2, 100}) p.push_back(b);
    for (int i = 0; i < 6; i++) p.push_back(0);
    for (uint8_t b : {192, 0, 2, 1}) p.push_back(b);
    FrameSpec f;
    f.dst = "ff:ff:ff:ff:ff:ff";
    f.src = smac;
    f.type = 0x0806;
    f.payload = p;
    rte_mbuf* m = frame(f);
    port_receive(*w, *p0, &m, 1);
    w->flush_tx();
    w->flush_free();
  };
  config::HookListCfg h;
  h.name = "arp-in";
  h.point = "arp/in";
  h.rules = {rule({{"src_mac", "02:00:00:00:00:bb"}, {"dst", "192.0.2.1"}}, "drop")};
  ASSERT_EQ(load_rule_lists(*reg, {h}), "");
  struct Cnt {
    int n = 0;
  } outs;
  reg->add(
      SLUICE_ARP_OUT, 0, "spy",
      [](Worker&, const State& s, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
        for (uint16_t i = 0; i < n; i++) {
          static_cast<Cnt*>(priv)->n += s.out != kNoDev;
          v[i] = SLUICE_ACCEPT;
        }
      },
      &outs, Owner::builtin);
  arp_req("02:00:00:00:00:bb");  // dropped at arp/in: no reply
  EXPECT_EQ(sink.frames.size(), 0u);
  EXPECT_EQ(reg->rule_lists[0]->rule_hits(), (std::vector<uint64_t>{1}));
  arp_req("02:00:00:00:00:aa");  // answered, through arp/out
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0][13], 0x06);
  EXPECT_EQ(outs.n, 1);
  sink.frames.clear();
  sink.devs.clear();
}

TEST_F(HooksL3Test, ExamplePluginLoadsRegistersAndSeesTraffic) {
  std::string so = std::string(SLUICE_PLUGIN_DIR) + "/libsluice_nfqlo.so";
  EXPECT_NE(load_plugin(*reg, "/nonexistent/x.so", "", 0), "");
  ASSERT_EQ(load_plugin(*reg, so, "", -150), "");
  const List* pre = reg->list(SLUICE_IPV4_PRE_ROUTING);
  const List* out = reg->list(SLUICE_IPV4_LOCAL_OUT);
  ASSERT_NE(pre, nullptr);
  ASSERT_NE(out, nullptr);
  EXPECT_EQ(pre->entries[0].name, "nfqlo");
  EXPECT_EQ(pre->entries[0].priority, -150);
  EXPECT_EQ(pre->entries[0].owner, Owner::plugin);
  ASSERT_EQ(reg->plugins.size(), 1u);
  auto seen =
      reinterpret_cast<unsigned long long (*)()>(dlsym(reg->plugins[0].second, "nfqlo_seen"));
  ASSERT_NE(seen, nullptr);
  unsigned long long before = seen();
  // A rule after the plugin sees its mark: pass only what the plugin marked.
  config::HookListCfg h;
  h.name = "marked";
  h.point = "ipv4/forward";
  h.rules = {rule({{"mark", "0x9091"}}, "accept"), rule({}, "drop")};
  ASSERT_EQ(load_rule_lists(*reg, {h}), "");
  Pkt p9091, p80;
  p9091.dport = 9091;
  rx(p9091);
  rx(p80);
  EXPECT_EQ(seen() - before, 1u);
  EXPECT_EQ(forwarded(), 1u);  // only the 9091 one, marked by the plugin
  EXPECT_EQ(reg->counters(pre->entries[0].slot).hits, 2u);
}

// The cost of the hook stage: three active points, 1000 rules per list (the
// issue's benchmark scenario, measured here on synthetic bursts).
TEST_F(HooksTest, StageCostThreePointsThousandRules) {
  std::vector<std::unique_ptr<RuleList>> lists;
  for (Point p : {SLUICE_IPV4_PRE_ROUTING, SLUICE_IPV4_FORWARD, SLUICE_IPV4_POST_ROUTING}) {
    std::vector<Rule> rs;
    for (int i = 0; i < 1000; i++) {
      std::string port = std::to_string(10000 + i);
      std::string src = "10." + std::to_string(i / 250) + "." + std::to_string(i % 250) + ".0/24";
      rs.push_back(
          rule({{"proto", i % 2 ? "tcp" : "udp"}, {"src", src.c_str()}, {"dst_port", port.c_str()}},
               "drop"));
    }
    lists.push_back(std::make_unique<RuleList>(*reg, point_name(p), p, 0));
    ASSERT_EQ(lists.back()->load(rs), "");
    ASSERT_TRUE(lists.back()->attach());
  }
  rte_mbuf* v[kBurst];
  for (auto& m : v) m = make(Pkt{}, 0);  // matches no rule: every list walks to the end
  const int rounds = 2000;
  uint64_t t0 = rte_rdtsc();
  for (int r = 0; r < rounds; r++) {
    for (Point p : {SLUICE_IPV4_PRE_ROUTING, SLUICE_IPV4_FORWARD, SLUICE_IPV4_POST_ROUTING})
      ASSERT_EQ(reg->run(*w, st(p), v, kBurst, 0), kBurst);
  }
  double cyc = double(rte_rdtsc() - t0) / (double(rounds) * kBurst);
  std::printf("[hooks] 3 points x 1000 rules (rte_acl), bursts of 32: %.1f cycles/packet\n", cyc);
  EXPECT_EQ(lists[1]->rule_hits(), std::vector<uint64_t>(1000, 0));
  for (auto& m : v) rte_pktmbuf_free(m);
  lists.clear();
}

// The bridge runs this registry's bridge/* entries where Linux runs
// NF_HOOK(NFPROTO_BRIDGE, …), in the registry's order.
TEST_F(HooksTest, BridgeRunsRuleListsAtBridgePoints) {
  Device* p2 = add_dev("p2", "02:00:00:00:00:03");
  config::Bridge b;
  b.name = "br0";
  b.ports = {"p0", "p1", "p2"};
  dp->topo.get<bridge::Config>().bridges = {b};
  bridge::setup(*dp);
  auto& sys = dp->feature<bridge::BridgeSys>();
  sys.pool = pool();
  sys.run(1000);
  config::HookListCfg h;
  h.name = "ebt-9091";
  h.point = "bridge/forward";
  h.priority = -200;
  h.rules = {rule({{"proto", "tcp"}, {"dst_port", "9091"}, {"out_dev", "p2"}}, "drop")};
  ASSERT_EQ(load_rule_lists(*reg, {h}), "");
  Tag spy{&log, "spy"};
  reg->add(SLUICE_BRIDGE_FORWARD, -200, "spy", tag_fn, &spy, Owner::builtin);  // runs first (newer)
  EXPECT_EQ(&sys.hooks, reg);                                                  // one engine
  const List* bl = reg->list(SLUICE_BRIDGE_FORWARD);
  ASSERT_NE(bl, nullptr);
  ASSERT_EQ(bl->entries.size(), 2u);
  EXPECT_EQ(bl->entries[0].name, "spy");  // same order as ours
  EXPECT_EQ(bl->entries[1].name, "ebt-9091");
  // Unknown unicast from p0: flooded to p2 and p1; the copy to p2 is dropped.
  Pkt p;
  p.dport = 9091;
  p.dmac = "02:00:00:00:00:99";
  rte_mbuf* m = make(p, p0->index);
  meta(m) = PktMeta{};
  port_receive(*w, *p0, &m, 1);
  w->flush_free();
  ASSERT_EQ(sink.devs.size(), 1u);
  EXPECT_EQ(sink.devs[0], p1->index);
  EXPECT_EQ(reg->rule_lists[0]->rule_hits(), (std::vector<uint64_t>{1}));
  EXPECT_EQ(drops(p2->index, DropReason::netfilter_drop), 1u);
  EXPECT_EQ(log.size(), 2u);  // the spy saw both copies
  sink.frames.clear();
  sink.devs.clear();
  sys.run(1100);
}

// br_nf_forward_arp: ARP frames the bridge forwards run arp/forward at
// bridge/forward, priority brnf — after the entries of priority 0 that were
// there, before those above. `show hooks` does not list it. A frame queued
// before it and accepted runs it too (the rest of the point, then the bridge).
TEST_F(HooksTest, BridgeForwardedArpRunsArpForward) {
  add_dev("p2", "02:00:00:00:00:03");
  config::Bridge b;
  b.name = "br0";
  b.ports = {"p0", "p1", "p2"};
  dp->topo.get<bridge::Config>().bridges = {b};
  bridge::setup(*dp);
  auto& sys = dp->feature<bridge::BridgeSys>();
  sys.pool = pool();
  sys.run(1000);
  Tag filter{&log, "filter"}, zero{&log, "zero"}, late{&log, "late"}, arp{&log, "arp"};
  reg->add(SLUICE_BRIDGE_FORWARD, bridge::kPriFilterBridged, "filter", tag_fn, &filter,
           Owner::builtin);
  reg->add(SLUICE_BRIDGE_FORWARD, bridge::kPriBrnf, "zero", tag_fn, &zero, Owner::builtin);
  reg->add(SLUICE_BRIDGE_FORWARD, bridge::kPriFilterOther, "late", tag_fn, &late, Owner::builtin);
  EXPECT_FALSE(bridge::br_netfilter_attach(*dp));  // arp/forward is empty: nothing to do
  reg->add(SLUICE_ARP_FORWARD, 0, "arp", tag_fn, &arp, Owner::builtin);
  ASSERT_TRUE(bridge::br_netfilter_attach(*dp));
  using V = std::vector<std::string>;
  auto rx = [&](uint16_t type) {  // unknown unicast from p0: flooded to p2 and p1
    FrameSpec f;
    f.src = "02:00:00:00:00:aa";
    f.dst = "02:00:00:00:00:99";
    f.type = type;
    f.payload.assign(46, 0);
    rte_mbuf* m = frame(f);
    meta(m) = PktMeta{};
    port_receive(*w, *p0, &m, 1);
    w->flush_tx();
    w->flush_free();
  };
  rx(0x0806);
  EXPECT_EQ(log, (V{"filter", "zero", "arp", "late", "filter", "zero", "arp", "late"}));
  EXPECT_EQ(sink.devs.size(), 2u);
  log.clear();
  rx(0x0800);  // not ARP: arp/forward does not see it
  EXPECT_EQ(log, (V{"filter", "zero", "late", "filter", "zero", "late"}));
  EXPECT_EQ(sink.devs.size(), 4u);
  CmdResult r = CommandRegistry::instance().run(*dp, {"show", "hooks", "bridge/forward"});
  V shown;
  for (auto& e : r.json["bridge/forward"]) shown.push_back(e["name"]);
  EXPECT_EQ(shown, (V{"filter", "zero", "late"}));
  // Queued at filter, accepted: zero, br_nf_forward_arp, late, then out.
  ASSERT_TRUE(reg->bind(5, true));
  filter.verdict = sluice_queue_nr(5);
  log.clear();
  rx(0x0806);
  EXPECT_EQ(log, (V{"filter", "filter"}));
  Queued got[4];
  ASSERT_EQ(reg->read(5, got, 4), 2u);
  for (unsigned i = 0; i < 2; i++) reg->verdict(got[i], SLUICE_ACCEPT);
  reg->poll(*w);
  w->flush_tx();
  w->flush_free();
  EXPECT_EQ(log, (V{"filter", "filter", "zero", "arp", "late", "zero", "arp", "late"}));
  EXPECT_EQ(sink.devs.size(), 6u);
  sink.frames.clear();
  sink.devs.clear();
  sys.run(1100);
}

// ---- queues: resumption in L3 and the bridge, REPEAT, consumers ---------------------------

class QueueL3Test : public HooksL3Test {
 protected:
  std::vector<std::string> qlog;
  Tag qtag{&qlog, "q", sluice_queue_nr(5)};
  uint32_t queue_at(Point p) {
    reg->bind(5, true);
    return reg->add(p, 0, "q", tag_fn, &qtag, Owner::builtin);
  }
  unsigned answer(uint32_t v) {
    Queued got[16];
    unsigned n = reg->read(5, got, 16);
    for (unsigned i = 0; i < n; i++) reg->verdict(got[i], v);
    reg->poll(*w);
    w->flush_tx();
    w->flush_free();
    return n;
  }
  size_t sent_on(Device* d) {
    size_t n = 0;
    for (size_t i = 0; i < sink.frames.size(); i++) n += sink.devs[i] == d->index;
    return n;
  }
  void clear_sink() {
    sink.frames.clear();
    sink.devs.clear();
  }
};

// Every IPv4 point: a queued packet goes nowhere until answered; accept makes
// it continue exactly where it stopped (forwarded, or the echo answered).
TEST_F(QueueL3Test, EveryIpv4PointResumesAfterAccept) {
  for (Point p : {SLUICE_IPV4_PRE_ROUTING, SLUICE_IPV4_FORWARD, SLUICE_IPV4_POST_ROUTING}) {
    uint32_t id = queue_at(p);
    rx(Pkt{});
    EXPECT_EQ(sink.frames.size(), 0u) << point_name(p);
    EXPECT_EQ(answer(SLUICE_ACCEPT), 1u) << point_name(p);
    EXPECT_EQ(sent_on(p1), 1u) << point_name(p);
    EXPECT_EQ(sink.frames.size(), 1u) << point_name(p);
    // The frame that left is the forwarded one: TTL 63, to the neighbour's MAC.
    if (!sink.frames.empty()) {
      EXPECT_EQ(sink.frames[0][14 + 8], 63) << point_name(p);
      EXPECT_EQ(sink.frames[0][5], 0x77) << point_name(p);
    }
    clear_sink();
    reg->remove(id);
  }
  EXPECT_EQ(l3->mib(p0->index)[l3::Mib::ForwDatagrams], 3u);
  Pkt echo;
  echo.proto = 1;
  echo.dst = "192.0.2.1";
  for (Point p : {SLUICE_IPV4_LOCAL_IN, SLUICE_IPV4_LOCAL_OUT}) {
    uint32_t id = queue_at(p);
    rx(echo);
    EXPECT_EQ(sink.frames.size(), 0u) << point_name(p);
    EXPECT_EQ(answer(SLUICE_ACCEPT), 1u) << point_name(p);
    ASSERT_EQ(sent_on(p0), 1u) << point_name(p);
    EXPECT_EQ(sink.frames[0][14 + 20], 0) << "an echo reply";
    clear_sink();
    reg->remove(id);
  }
  EXPECT_EQ(reg->queue_stats(5).answered, 5u);
}

TEST_F(QueueL3Test, DropAndStolenAnswersAndRepeat) {
  uint32_t id = queue_at(SLUICE_IPV4_FORWARD);
  rx(Pkt{});
  EXPECT_EQ(answer(SLUICE_DROP), 1u);
  EXPECT_EQ(sink.frames.size(), 0u);
  EXPECT_EQ(drops(p0->index, DropReason::netfilter_drop), 1u);
  // REPEAT: the queueing hook runs again (and queues again); then accept.
  rx(Pkt{});
  qlog.clear();
  EXPECT_EQ(answer(SLUICE_REPEAT), 1u);
  EXPECT_EQ(qlog, (std::vector<std::string>{"q"}));
  EXPECT_EQ(sink.frames.size(), 0u);
  EXPECT_EQ(reg->waiting(5), 1u);
  EXPECT_EQ(answer(SLUICE_ACCEPT), 1u);
  EXPECT_EQ(sent_on(p1), 1u);
  clear_sink();
  // STOLEN: the consumer owns the mbuf.
  rx(Pkt{});
  Queued got[2];
  ASSERT_EQ(reg->read(5, got, 2), 1u);
  reg->verdict(got[0], SLUICE_STOLEN);
  reg->poll(*w);
  EXPECT_EQ(sink.frames.size(), 0u);
  rte_pktmbuf_free(got[0].m);
  reg->remove(id);
}

TEST_F(QueueL3Test, Ipv6AndArpPointsResume) {
  Pkt p;
  p.v6 = true;
  p.proto = 17;
  p.src = "2001:db8:1::2";
  p.dst = "2001:db8:2::7";
  // No neighbour for 2001:db8:2::7: a resumed packet goes to the resolution
  // queue (a solicitation on p1 once the control thread runs).
  for (Point pt : {SLUICE_IPV6_PRE_ROUTING, SLUICE_IPV6_FORWARD, SLUICE_IPV6_POST_ROUTING}) {
    uint32_t id = queue_at(pt);
    rx(p);
    EXPECT_EQ(reg->waiting(5), 1u) << point_name(pt);
    EXPECT_EQ(answer(SLUICE_ACCEPT), 1u);
    reg->remove(id);
  }
  // Each was forwarded once (ip6_forward_finish, before post_routing).
  EXPECT_EQ(l3->mib(p0->index)[l3::Mib::Ip6OutForwDatagrams], 3u);
  l3->run(l3->fake_now_ms.load());  // resolution: solicitations out, the packets wait
  clear_sink();
  // arp/in: a request for 192.0.2.1 answered only after the accept.
  uint32_t id = queue_at(SLUICE_ARP_IN);
  std::vector<uint8_t> a = {0,   1, 8, 0,   6, 4, 0, 1, 2, 0, 0,   0, 0, 0xaa,
                            192, 0, 2, 100, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1};
  FrameSpec f;
  f.dst = "ff:ff:ff:ff:ff:ff";
  f.src = "02:00:00:00:00:aa";
  f.type = 0x0806;
  f.payload = a;
  rte_mbuf* m = frame(f);
  port_receive(*w, *p0, &m, 1);
  w->flush_tx();
  EXPECT_EQ(sink.frames.size(), 0u);
  EXPECT_EQ(answer(SLUICE_ACCEPT), 1u);
  ASSERT_EQ(sent_on(p0), 1u);
  EXPECT_EQ(sink.frames[0][21], 2) << "an ARP reply";
  clear_sink();
  reg->remove(id);
  l3->shutdown();
}

// arp_xmit runs NF_ARP_OUT for every ARP frame, also the solicitations the
// control thread makes: they pass the arp/out chain on a worker.
TEST_F(QueueL3Test, ArpProbesFromTheControlThreadRunArpOut) {
  struct Cnt {
    int n = 0;
    uint16_t out = 0;
  } c;
  reg->add(
      SLUICE_ARP_OUT, 0, "no-probes",
      [](Worker&, const State& s, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
        for (uint16_t i = 0; i < n; i++) {
          static_cast<Cnt*>(priv)->n++;
          static_cast<Cnt*>(priv)->out = s.out;
          v[i] = SLUICE_DROP;
        }
      },
      &c, Owner::builtin);
  Pkt p;
  p.dst = "198.51.100.9";  // no neighbour: resolution on the control thread
  rx(p);
  l3->run(l3->fake_now_ms.load());
  reg->poll(*w);
  w->flush_tx();
  w->flush_free();
  EXPECT_EQ(c.n, 1);
  EXPECT_EQ(c.out, p1->index);
  EXPECT_EQ(sink.frames.size(), 0u);
  EXPECT_EQ(drops(p1->index, DropReason::netfilter_drop), 1u);
  l3->shutdown();
}

TEST_F(HooksTest, OneConsumerPerQueueAndPluginConsumerApi) {
  sluice_host h = host_table(*reg);
  EXPECT_EQ(h.abi_version, 2u);
  EXPECT_EQ(h.queue_bind(h.ctx, 4), 0);
  EXPECT_EQ(h.queue_bind(h.ctx, 4), -1);  // taken
  EXPECT_FALSE(reg->bind(4, true));
  EXPECT_EQ(h.queue_bind(h.ctx, 16), -1);
  Tag q{&log, "q", sluice_queue_nr(4)}, after{&log, "after"};
  reg->add(SLUICE_IPV4_LOCAL_IN, 0, "q", tag_fn, &q, Owner::builtin);
  reg->add(SLUICE_IPV4_LOCAL_IN, 5, "after", tag_fn, &after, Owner::builtin);
  OkSink sinkok;
  reg->set_okfn(SLUICE_IPV4_LOCAL_IN, ok_fn, &sinkok);
  EXPECT_FALSE(pass(SLUICE_IPV4_LOCAL_IN, make(Pkt{}, 0)));
  sluice_queued got[4];
  ASSERT_EQ(h.queue_read(h.ctx, 4, got, 4), 1u);
  EXPECT_EQ(got[0].point, SLUICE_IPV4_LOCAL_IN);
  EXPECT_EQ(got[0].queue, 4);
  // The consumer rewrites the packet (a private copy when shared) and marks it.
  rte_mbuf_refcnt_update(reinterpret_cast<rte_mbuf*>(got[0].pkt), 1);  // shared now
  rte_mbuf* orig = reinterpret_cast<rte_mbuf*>(got[0].pkt);
  uint8_t* d = h.writable(&got[0].pkt);
  ASSERT_NE(d, nullptr);
  EXPECT_NE(reinterpret_cast<rte_mbuf*>(got[0].pkt), orig);
  rte_pktmbuf_free(orig);
  h.set_mark(got[0].pkt, 42);
  log.clear();
  h.queue_verdict(h.ctx, &got[0], SLUICE_ACCEPT);
  reg->poll(*w);
  EXPECT_EQ(log, (std::vector<std::string>{"after"}));
  EXPECT_EQ(sinkok.marks, (std::vector<uint32_t>{42}));
  EXPECT_EQ(h.queue_unbind(h.ctx, 4), 0);
  EXPECT_EQ(h.queue_unbind(h.ctx, 4), -1);
}

// A table compiles only the fields its rules use. Differential check: the
// same random rule sets compiled that way and with every field give the same
// answer (survival and mark) for random packets, IPv4 and IPv6.
TEST_F(RulesTest, CompiledFieldSubsetMatchesLikeEveryField) {
  uint64_t seed = 12345;
  auto rnd = [&](uint64_t n) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % n;
  };
  const char* srcs4[] = {"192.0.2.0/24", "192.0.2.100", "10.0.0.0/8", "0.0.0.0/0"};
  const char* dsts4[] = {"198.51.100.0/24", "198.51.100.7", "203.0.113.0/25"};
  const char* srcs6[] = {"2001:db8:1::/64", "2001:db8:1::2", "2001:db8::/32"};
  const char* dsts6[] = {"2001:db8:2::/64", "2001:db8:2::7"};
  const char* protos[] = {"tcp", "udp", "icmp"};
  const char* macs[] = {"02:00:00:00:00:aa", "02:00:00:00:00:bb"};
  unsigned dropped = 0, marked = 0;
  for (int round = 0; round < 12; round++) {
    const bool v6 = round % 3 == 2;
    std::vector<Rule> rs;
    for (int i = 0; i < 24; i++) {
      std::vector<std::pair<const char*, std::string>> kv;
      if (rnd(2)) kv.push_back({"src", v6 ? srcs6[rnd(3)] : srcs4[rnd(4)]});
      if (rnd(2)) kv.push_back({"dst", v6 ? dsts6[rnd(2)] : dsts4[rnd(3)]});
      const char* proto = protos[rnd(v6 ? 2 : 3)];
      if (rnd(3)) kv.push_back({"proto", proto});
      if (std::string(proto) != "icmp" && rnd(3) == 0) {
        unsigned lo = 70 + static_cast<unsigned>(rnd(20));
        kv.push_back({rnd(2) ? "dst_port" : "src_port",
                      std::to_string(lo) + "-" + std::to_string(lo + rnd(15))});
      }
      if (round % 4 == 1 && rnd(4) == 0) kv.push_back({"mark", std::to_string(rnd(3))});
      if (round % 4 == 3 && rnd(4) == 0) kv.push_back({"src_mac", macs[rnd(2)]});
      if (round % 4 == 3 && rnd(5) == 0) kv.push_back({"vlan", std::to_string(rnd(3))});
      Rule r;
      for (auto& [k, v] : kv) {
        bool unknown = false;
        ASSERT_EQ(parse_match(k, v, &r.match, &unknown), "") << k << "=" << v;
      }
      r.verdict = rnd(3) == 0 ? RuleVerdict::drop
                  : rnd(2)    ? RuleVerdict::cont
                              : RuleVerdict::accept;
      r.has_set_mark = true;
      r.set_mark = static_cast<uint32_t>(100 + i);
      rs.push_back(r);
    }
    const Point pa = v6 ? SLUICE_IPV6_FORWARD : SLUICE_IPV4_FORWARD;
    const Point pb = v6 ? SLUICE_IPV6_LOCAL_IN : SLUICE_IPV4_LOCAL_IN;
    RuleList sub(*reg, "sub", pa, 0), all(*reg, "all", pb, 0);
    all.compile_all_fields = true;
    ASSERT_EQ(sub.load(rs), "");
    ASSERT_EQ(all.load(rs), "");
    ASSERT_TRUE(sub.attach());
    ASSERT_TRUE(all.attach());
    EXPECT_LE(sub.compiled_fields(v6 ? 6 : 4), all.compiled_fields(v6 ? 6 : 4));
    for (int k = 0; k < 200; k++) {
      Pkt p;
      p.v6 = v6;
      p.proto = static_cast<uint8_t>(v6 ? (rnd(2) ? 6 : 17) : (rnd(3) == 0 ? 1 : rnd(2) ? 6 : 17));
      p.src = v6 ? (rnd(2) ? "2001:db8:1::2" : "2001:db8:9::1")
                 : (rnd(3) == 0 ? "10.1.2.3"
                    : rnd(2)    ? "192.0.2.100"
                                : "192.0.2.5");
      p.dst = v6 ? (rnd(2) ? "2001:db8:2::7" : "2001:db8:3::1")
                 : (rnd(2)   ? "198.51.100.7"
                    : rnd(2) ? "203.0.113.9"
                             : "198.51.100.200");
      p.sport = static_cast<uint16_t>(65 + rnd(45));
      p.dport = static_cast<uint16_t>(65 + rnd(45));
      p.smac = macs[rnd(2)];
      p.vlan = rnd(2) ? -1 : static_cast<int>(rnd(3));
      p.mark = static_cast<uint32_t>(rnd(3));
      rte_mbuf* a[1] = {make(p, 0)};
      rte_mbuf* b[1] = {make(p, 0)};
      uint16_t na = reg->run(*w, st(pa, 0, 1), a, 1, 0);
      uint16_t nb = reg->run(*w, st(pb, 0, 1), b, 1, 0);
      ASSERT_EQ(na, nb) << "round " << round << " packet " << k;
      dropped += na == 0;
      if (na == 1) {
        marked += meta(a[0]).mark >= 100;
        EXPECT_EQ(meta(a[0]).mark, meta(b[0]).mark) << "round " << round << " packet " << k;
        rte_pktmbuf_free(a[0]);
        rte_pktmbuf_free(b[0]);
      }
      w->flush_free();
    }
    EXPECT_EQ(sub.rule_hits(), all.rule_hits()) << "round " << round;
    sub.detach();
    all.detach();
    dp->rcu.synchronize();
  }
  EXPECT_GT(dropped, 100u);  // the rules do match: both ways agree on real answers
  EXPECT_GT(marked, 100u);
}

// The rule verdict queue (nft `queue num 6 bypass`).
TEST_F(RulesTest, QueueVerdictFromARule) {
  Rule r = rule({{"proto", "tcp"}}, "queue");
  r.queue = 6;
  r.has_queue = true;
  r.bypass = true;
  RuleList rl(*reg, "q", SLUICE_IPV4_FORWARD, 0);
  ASSERT_EQ(rl.load({r}), "");
  ASSERT_TRUE(rl.attach());
  EXPECT_TRUE(pass(SLUICE_IPV4_FORWARD, make(Pkt{}, 0)));  // no consumer, bypass
  EXPECT_EQ(reg->queue_stats(6).bypassed, 1u);
  reg->bind(6, true);
  EXPECT_FALSE(pass(SLUICE_IPV4_FORWARD, make(Pkt{}, 0)));
  EXPECT_EQ(reg->waiting(6), 1u);
  Queued got[2];
  ASSERT_EQ(reg->read(6, got, 2), 1u);
  reg->verdict(got[0], SLUICE_DROP);
  EXPECT_EQ(rl.rule_hits(), (std::vector<uint64_t>{2}));
  rl.detach();
}

// A bridge point: STOP skips the rest of the point, survivors keep their order.
TEST_F(HooksTest, BridgeStopVerdictSkipsTheRestKeepsOrder) {
  struct Spy {
    std::vector<uint32_t> seen;
    bool stop_odd;
  };
  auto fn = [](Worker&, const State&, void* priv, rte_mbuf** pkts, uint16_t n, uint32_t* v) {
    auto* s = static_cast<Spy*>(priv);
    for (uint16_t i = 0; i < n; i++) {
      s->seen.push_back(meta(pkts[i]).mark);
      v[i] = s->stop_odd && (meta(pkts[i]).mark & 1) ? SLUICE_STOP : SLUICE_ACCEPT;
    }
  };
  Spy first{{}, true}, second{{}, false};
  reg->add(SLUICE_BRIDGE_FORWARD, 0, "first", fn, &first, Owner::builtin);
  reg->add(SLUICE_BRIDGE_FORWARD, 10, "second", fn, &second, Owner::builtin);
  rte_mbuf* v[kBurst];
  for (uint32_t i = 0; i < 6; i++) {
    Pkt p;
    p.mark = i;
    v[i] = make(p, 0);
  }
  uint16_t n = reg->run(*w, st(SLUICE_BRIDGE_FORWARD, p0->index, p1->index), v, 6, 0);
  ASSERT_EQ(n, 6);
  for (uint32_t i = 0; i < 6; i++) EXPECT_EQ(meta(v[i]).mark, i);
  EXPECT_EQ(first.seen.size(), 6u);
  EXPECT_EQ(second.seen, (std::vector<uint32_t>{0, 2, 4}));
  for (uint16_t i = 0; i < n; i++) rte_pktmbuf_free(v[i]);
  dp->rcu.synchronize();
}

}  // namespace
