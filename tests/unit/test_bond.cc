// Bonding on synthetic mbufs (spec §3, cases BOND-01/02/10 of §8.3): the
// xmit hash of every policy against a table worked out from §3.4's formulas
// (both worked examples; tests/unit/bond_hash_ref.py reproduces the table),
// member choice per mode and member count, balance-rr order, RX verdicts per
// mode and member state with taps and folded counters, the MII monitor's
// tick table with a fake clock, failover and its peer notifications, and
// `show bond`. Topology T2ab: bond0 over p0, p1 (and p2), enslaved in that
// order; the members carry the bond's MAC ..:01.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include <rte_mempool.h>

#include "bond/bond.hh"
#include "bond/config.hh"
#include "bond/hash_fast.hh"
#include "bridge/bridge.hh"
#include "bridge/config.hh"
#include "control/command.hh"
#include "control/metrics.hh"
#include "core/dataplane.hh"
#include "core/netif.hh"
#include "core/trace.hh"
#include "l3/config.hh"
#include "support/frames.hh"

using namespace sluice;
using namespace sluice::test;
using sluice::bond::Bond;
using sluice::bond::BondSys;
using sluice::bond::HashPolicy;
using sluice::bond::LinkState;

namespace {

constexpr const char* BOND_MAC = "02:00:00:00:00:01";
constexpr const char* PEER = "02:00:00:00:00:aa";

std::vector<uint8_t> unhex(const char* s) {
  std::vector<uint8_t> v;
  for (size_t i = 0; s[i] && s[i + 1]; i += 2) v.push_back(std::stoi(std::string(s + i, 2), 0, 16));
  return v;
}

rte_mbuf* mbuf_of(const std::vector<uint8_t>& bytes) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool());
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(bytes.size())));
  std::memcpy(p, bytes.data(), bytes.size());
  meta(m) = PktMeta{};
  return m;
}

// ---- the hash table ---------------------------------------------------------------------------

// Policies in the column order of the table.
constexpr HashPolicy kPolicies[] = {HashPolicy::layer2,  HashPolicy::layer23,
                                    HashPolicy::layer34, HashPolicy::encap23,
                                    HashPolicy::encap34, HashPolicy::vlan_srcmac};

struct HashCase {
  const char* name;
  const char* frame;  // hex, from the Ethernet header
  int tci;            // out-of-band VLAN TCI, -1 = none
  uint32_t hash[6];   // per policy, in kPolicies order
};

// Made by tests/unit/bond_hash_ref.py (scapy frames, the formulas of §3.4).
const HashCase kHashCases[] = {
    {"worked example: UDP 10.0.0.1:1000 -> 10.0.0.2:2000",
     "02000000000202000000000108004500001c00010000401166ce0a0000010a00000203e807d00008e023",
     -1,
     {0x00000803, 0x03030b08, 0x69ea1e1f, 0x03030b08, 0x69ea1e1f, 0x00020001}},
    {"second example: dst ..:03",
     "02000000000302000000000108004500001c00010000401166ce0a0000010a00000203e807d00008e023",
     -1,
     {0x00000802, 0x03030b09, 0x69ea1e1f, 0x03030b09, 0x69ea1e1f, 0x00020001}},
    {"TCP 10.1.2.3:40000 -> 192.168.7.9:443",
     "0200000000170200000000aa080045000028000100004006a71a0a010203c0a807099c4001bb000000000000"
     "0000500220001e320000",
     -1,
     {0x000008bd, 0x0a0faed9, 0x58daae05, 0x0a0faed9, 0x58daae05, 0x000200aa}},
    {"IPv4 first fragment (MF): no ports",
     "02000000000202000000000108004500001c00012000401146ce0a0000010a00000203e807d00008e023",
     -1,
     {0x00000803, 0x03030b08, 0x01818181, 0x03030b08, 0x01818181, 0x00020001}},
    {"IPv4 later fragment (offset 185): no ports",
     "02000000000202000000000108004500002c000100b9401166050a0000010a00000203e807d0787878787878"
     "7878787878787878787878787878",
     -1,
     {0x00000803, 0x03030b08, 0x01818181, 0x03030b08, 0x01818181, 0x00020001}},
    {"ICMP echo id 0x1234",
     "02000000000202000000000108004500001c00010000400166de0a0000010a0000020800e5ca12340001",
     -1,
     {0x00000803, 0x03030b08, 0x08929296, 0x03030b08, 0x08929296, 0x00020001}},
    {"ICMP echo id 0 (counts as id 1)",
     "02000000000202000000000108004500001c00010000400166de0a0000010a0000020800f7fe00000001",
     -1,
     {0x00000803, 0x03030b08, 0x01810105, 0x03030b08, 0x01810105, 0x00020001}},
    {"ICMP port unreachable: the inner flow's addresses and ports",
     "02000000000202000000000108004500003800010000400166bb0a0000090a00000103031119000000004500"
     "001c00010000401166ce0a0000010a00000203e807d00008e023",
     -1,
     {0x00000803, 0x03030b08, 0x69ea1e1f, 0x08080003, 0x04040404, 0x00020001}},
    {"IPv6 TCP 2001:db8::1:5000 -> 2001:db8::2:80 (addresses folded)",
     "02000000000202000000000186dd600000000014064020010db800000000000000000000000120010db80000"
     "000000000000000000021388005000000000000000005002200020960000",
     -1,
     {0x000086de, 0x0303855b, 0x29a9ede4, 0x0303855b, 0x29a9ede4, 0x00020001}},
    {"ICMPv6 echo request id 7",
     "02000000000202000000000186dd6000000000083a4020010db800000000000000000000000120010db80000"
     "000000000000000000028000244000070001",
     -1,
     {0x000086de, 0x0303855b, 0x01820242, 0x0303855b, 0x01820242, 0x00020001}},
    {"ARP: layer2+3 falls back to layer2, encap2+3 folds",
     "ffffffffffff020000000001080600010800060400010200000000010a0000010000000000000a000002",
     -1,
     {0x000008f8, 0x000008f8, 0x000008f8, 0x000008f0, 0x00000000, 0x00020001}},
    {"GRE 192.0.2.1 -> 192.0.2.2 carrying UDP 10.9.0.1:53 -> 10.9.0.2:33333",
     "02000000000202000000000108004500003400010000402ff696c0000201c0000202000008004500001c0001"
     "0000401166bc0a0900010a090002003582350008695f",
     -1,
     {0x00000803, 0x03030b08, 0x01818181, 0x03030b08, 0x1b5a40c0, 0x00020001}},
    {"IPIP 192.0.2.1 -> 192.0.2.2 carrying TCP 10.9.0.1:1234 -> 10.9.0.2:80",
     "02000000000202000000000108004500003c000100004004f6b9c0000201c00002024500002800010000400666"
     "bb0a0900010a09000204d2005000000000000000005002200076ac0000",
     -1,
     {0x00000803, 0x03030b08, 0x01818181, 0x03030b08, 0x29a9c0c2, 0x00020001}},
    {"in-band 802.1Q tag: layer2+3/3+4 fall back to layer2, encap looks inside",
     "0200000000020200000000018100006408004500001c00010000401166ce0a0000010a00000203e807d00008"
     "e023",
     -1,
     {0x00008103, 0x00008103, 0x00008103, 0x03038281, 0x69ea1e1f, 0x00020001}},
    {"vlan+srcmac: out-of-band TCI 0x2064, source 00:1b:21:3c:4d:5e",
     "020000000002001b213c4d5e08004500001c00010000401166ce0a0000010a00000203e807d00008e023",
     0x2064,
     {0x0000085c, 0x03030b57, 0x69ea1e1f, 0x03030b57, 0x69ea1e1f, 0x003c761b}},
    {"LLDP (0x88cc): every policy falls back to layer2",
     "0180c200000e02000000000188cc0207040000000000000000000000000000000000000000000000000000000"
     "0000000000000000000000000",
     -1,
     {0x000088c3, 0x000088c3, 0x000088c3, 0x000088c3, 0x000088c3, 0x00020001}},
};

TEST(BondHash, TableOfFlowsPerPolicy) {
  for (const HashCase& c : kHashCases) {
    SCOPED_TRACE(c.name);
    auto f = unhex(c.frame);
    for (size_t p = 0; p < std::size(kPolicies); p++) {
      SCOPED_TRACE(bond::policy_name(kPolicies[p]));
      EXPECT_EQ(bond::xmit_hash(kPolicies[p], f.data(), static_cast<uint32_t>(f.size()), c.tci >= 0,
                                static_cast<uint16_t>(c.tci >= 0 ? c.tci : 0)),
                c.hash[p]);
    }
  }
}

// §3.4's worked examples: hash, and the member index for n = 2, 3, 4.
TEST(BondHash, WorkedExamples) {
  auto f = unhex(kHashCases[0].frame);
  auto h = [&](HashPolicy p) {
    return bond::xmit_hash(p, f.data(), static_cast<uint32_t>(f.size()), false, 0);
  };
  EXPECT_EQ(h(HashPolicy::layer2), 0x803u);
  EXPECT_EQ(h(HashPolicy::layer23), 0x03030B08u);
  EXPECT_EQ(h(HashPolicy::layer34), 0x69EA1E1Fu);
  const unsigned want[3][3] = {{1, 2, 3}, {0, 1, 0}, {1, 1, 3}};  // l2, l23, l34 × n=2,3,4
  const HashPolicy pol[3] = {HashPolicy::layer2, HashPolicy::layer23, HashPolicy::layer34};
  for (int p = 0; p < 3; p++)
    for (unsigned n = 2; n <= 4; n++) EXPECT_EQ(h(pol[p]) % n, want[p][n - 2]) << p << " n=" << n;
  auto g = unhex(kHashCases[1].frame);  // dst ..:03
  uint32_t h2 =
      bond::xmit_hash(HashPolicy::layer2, g.data(), static_cast<uint32_t>(g.size()), false, 0);
  EXPECT_EQ(h2, 0x802u);
  EXPECT_EQ(h2 % 3, 1u);
}

// The burst hash (its inline IPv4 TCP/UDP path) and fastmod agree with the
// general code on every frame of the table and on random IPv4 frames.
TEST(BondHash, BurstPathAgrees) {
  std::vector<rte_mbuf*> v;
  for (const HashCase& c : kHashCases) v.push_back(mbuf_of(unhex(c.frame)));
  uint32_t seed = 12345;
  auto rnd = [&] { return seed = seed * 1103515245u + 12345u; };
  for (int i = 0; i < 200; i++) {
    auto f = unhex(kHashCases[2].frame);  // TCP: randomise addresses, ports, flags, protocol
    for (int j = 26; j < 38; j++) f[j] = static_cast<uint8_t>(rnd() >> 16);
    f[20] = static_cast<uint8_t>(rnd() >> 16) & 0x7f;
    f[23] = (rnd() >> 16) & 1 ? 6 : 17;
    v.push_back(mbuf_of(f));
  }
  for (HashPolicy p : kPolicies) {
    for (size_t base = 0; base < v.size(); base += 32) {
      const uint16_t n = static_cast<uint16_t>(std::min<size_t>(32, v.size() - base));
      uint32_t h[32];
      bond::xmit_hash_burst(p, v.data() + base, n, h);
      for (uint16_t i = 0; i < n; i++) {
        ASSERT_EQ(h[i], bond::xmit_hash(p, v[base + i])) << bond::policy_name(p) << " " << base + i;
        for (uint32_t d = 1; d <= bond::kMaxMembers; d++)
          ASSERT_EQ(bond::fastmod(h[i], ~uint64_t(0) / d + 1, d), h[i] % d);
      }
    }
  }
  // The two-member choice (hash % 2 from the unfolded bytes' parity), on
  // unfragmented copies of the random frames.
  unsigned plain = 0;
  for (rte_mbuf* r : v) {
    std::vector<uint8_t> f(rte_pktmbuf_mtod(r, const uint8_t*),
                           rte_pktmbuf_mtod(r, const uint8_t*) + r->data_len);
    if (f.size() >= 22) f[20] = f[21] = 0;
    rte_mbuf* m = mbuf_of(f);
    const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
    if (m->data_len >= 38) {
      EXPECT_EQ(bond::plain_ip4_l4_miss(d) == 0, bond::plain_ip4_l4(m, d));
    }
    if (bond::plain_ip4_l4(m, d)) {
      plain++;
      EXPECT_EQ(bond::plain_ip4_hash_odd<true>(d), bond::xmit_hash(HashPolicy::layer34, m) % 2);
      EXPECT_EQ(bond::plain_ip4_hash_odd<false>(d), bond::xmit_hash(HashPolicy::layer23, m) % 2);
    }
    rte_pktmbuf_free(m);
  }
  EXPECT_GT(plain, 100u);
  for (rte_mbuf* m : v) rte_pktmbuf_free(m);
  // The burst loop's branch-free test (plain_ip4_l4_miss) and plain_ip4_l4
  // agree on every value of each byte they look at.
  const auto tcp = unhex(kHashCases[2].frame);
  unsigned agree_plain = 0;
  for (int at : {12, 13, 14, 15, 20, 21, 22, 23}) {
    for (int val = 0; val < 256; val++) {
      auto f = tcp;
      f[20] = f[21] = 0;
      f[at] = static_cast<uint8_t>(val);
      rte_mbuf* m = mbuf_of(f);
      const uint8_t* d = rte_pktmbuf_mtod(m, const uint8_t*);
      const bool is_plain = bond::plain_ip4_l4(m, d);
      EXPECT_EQ(bond::plain_ip4_l4_miss(d) == 0, is_plain) << "byte " << at << " = " << val;
      agree_plain += is_plain;
      rte_pktmbuf_free(m);
    }
  }
  // Plain for: the type (12, 13) and version/IHL (14) of one value, any tos
  // (15), byte 20 without MF or offset bits (4 values: DF and the reserved
  // bit do not matter), 21 zero, any ttl (22), protocol 6 or 17 (23).
  EXPECT_EQ(agree_plain, 1u + 1u + 1u + 256u + 4u + 1u + 256u + 2u);
}

// A frame shorter than its headers: layer2 of what is there, never a read past the end.
TEST(BondHash, TruncatedFrames) {
  auto f = unhex(kHashCases[0].frame);
  for (uint32_t len = 0; len < f.size(); len++)
    for (HashPolicy p : kPolicies) {
      uint32_t h = bond::xmit_hash(p, f.data(), len, false, 0);
      if (len < 14) {
        EXPECT_EQ(h, 0u);
      } else if (len < 34 && p != HashPolicy::vlan_srcmac) {
        EXPECT_EQ(h, 0x803u) << len;
      }
    }
}

// ---- the fixture --------------------------------------------------------------------------------

class BondTest : public ::testing::Test {
 protected:
  std::unique_ptr<Dataplane> dp;
  Worker* w = nullptr;
  XmitSink sink;
  Recorder rec;
  Device* p[3] = {};
  Device* bond0 = nullptr;
  BondSys* sys = nullptr;
  Bond* b = nullptr;
  unsigned avail_before = 0;
  std::vector<std::unique_ptr<Probe>> probes;
  uint64_t now = 1000;

  void SetUp() override {
    avail_before = rte_mempool_avail_count(pool());
    dp = std::make_unique<Dataplane>();
    dp->workers.push_back(std::make_unique<Worker>(dp->net, 0));
    w = dp->workers[0].get();
    const char* macs[] = {"02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"};
    for (int i = 0; i < 3; i++) {
      auto d = std::make_unique<Device>();
      d->name = std::string("p") + char('0' + i);
      d->mac = mac(macs[i]);
      d->xmit = sink_xmit;
      d->xmit_ctx = &sink;
      p[i] = dp->net.add_device(std::move(d));
    }
  }
  void TearDown() override {
    drain_inject();
    w->flush_free();
    sink.frames.clear();
    dp.reset();
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }

  config::Bond cfg(const char* mode, std::vector<std::string> members = {"p0", "p1"}) {
    config::Bond c;
    c.name = "bond0";
    c.mode = mode;
    c.members = members;
    c.member_at.resize(members.size());
    c.miimon_ms = 100;
    return c;
  }
  void build(config::Bond c) {
    dp->topo.get<bond::Config>().bonds = {c};
    bond::setup(*dp);
    sys = &dp->feature<BondSys>();
    sys->pool = pool();
    b = sys->find("bond0");
    ASSERT_NE(b, nullptr);
    bond0 = b->dev;
    sys->tick(now);
  }
  // One monitor run (miimon 100 ms) with the fake clock.
  void tick(uint64_t dt = 100) {
    now += dt;
    sys->tick(now);
  }
  void carrier(int i, bool up) { p[i]->oper_up.store(up); }
  void drain_inject() {
    if (w->inject == nullptr) return;
    while (rte_ring_count(w->inject) != 0) inject_xmit(*w);
  }
  Probe* probe(const std::string& who) {
    probes.push_back(std::make_unique<Probe>(Probe{&rec, who}));
    return probes.back().get();
  }
  void rx(Device* d, const FrameSpec& f) {
    rte_mbuf* m = frame(f);
    port_receive(*w, *d, &m, 1);
    w->flush_free();
  }
  FrameSpec fr(const char* dst, uint16_t type = 0x0800, const char* src = PEER) {
    FrameSpec f;
    f.src = src;
    f.dst = dst;
    f.type = type;
    return f;
  }
  // Sends frames through bond0 (dev_queue_xmit, as a protocol would).
  void xmit(std::vector<rte_mbuf*> v) {
    dev_queue_xmit(*w, *bond0, v.data(), static_cast<uint16_t>(v.size()));
    w->flush_free();
  }
  void xmit(const FrameSpec& f, int count = 1) {
    std::vector<rte_mbuf*> v;
    for (int i = 0; i < count; i++) v.push_back(frame(f));
    xmit(v);
  }
  std::vector<std::string> outs() {
    std::vector<std::string> r;
    for (uint16_t d : sink.devs) r.push_back(dp->net.dev(d)->name);
    sink.frames.clear();
    sink.devs.clear();
    return r;
  }
  uint64_t drops(Device* d, DropReason r) { return dp->drops(d->index)[static_cast<unsigned>(r)]; }
  // n frames with their sequence number in the first payload byte.
  std::vector<rte_mbuf*> numbered(int n) {
    std::vector<rte_mbuf*> v;
    for (int i = 0; i < n; i++) {
      FrameSpec f = fr(PEER);
      f.payload[0] = static_cast<uint8_t>(i);
      v.push_back(frame(f));
    }
    return v;
  }
  // The member each numbered frame left by, in sequence order; clears the sink.
  std::vector<std::string> by_seq() {
    std::vector<std::string> r(sink.frames.size());
    for (size_t i = 0; i < sink.frames.size(); i++)
      r.at(sink.frames[i][14]) = dp->net.dev(sink.devs[i])->name;
    outs();
    return r;
  }
  std::string active() { return b->curr_active ? b->curr_active->dev->name : "-"; }
  LinkState link(int i) { return b->members[static_cast<size_t>(i)]->link; }
  bond::Member& mem_(int i) { return *b->members[static_cast<size_t>(i)]; }
  std::vector<uint8_t> usable() { return b->usable; }
  CmdResult cmd(std::vector<std::string> argv) {
    return CommandRegistry::instance().run(*dp, argv);
  }
};

using V = std::vector<std::string>;

// ---- transmit -----------------------------------------------------------------------------------

// balance-xor: usable[hash % count] for every flow of the table and every
// policy with 3 members; with p1 down, the same over {p0, p2}.
TEST_F(BondTest, XorMemberChoiceFollowsTheHash) {
  for (size_t pi = 0; pi < std::size(kPolicies); pi++) {
    SCOPED_TRACE(bond::policy_name(kPolicies[pi]));
    SetUp();  // a fresh dataplane per policy
    config::Bond c = cfg("balance-xor", {"p0", "p1", "p2"});
    c.xmit_hash_policy = bond::policy_name(kPolicies[pi]);
    build(c);
    for (const HashCase& hc : kHashCases) {
      SCOPED_TRACE(hc.name);
      rte_mbuf* m = mbuf_of(unhex(hc.frame));
      if (hc.tci >= 0) {
        meta(m).flags |= kFlagVlan;
        meta(m).vlan_tci = static_cast<uint16_t>(hc.tci);
        meta(m).vlan_proto = 0x8100;
      }
      xmit({m});
      EXPECT_EQ(outs(), V{p[hc.hash[pi] % 3]->name});
    }
    {  // the whole table as one burst (hash and member choice in one pass)
      std::vector<rte_mbuf*> burst;
      std::multiset<std::pair<std::vector<uint8_t>, std::string>> want, got;
      for (const HashCase& hc : kHashCases) {
        if (hc.tci >= 0) continue;
        burst.push_back(mbuf_of(unhex(hc.frame)));
        want.emplace(unhex(hc.frame), p[hc.hash[pi] % 3]->name);
      }
      xmit(burst);
      for (size_t i = 0; i < sink.frames.size(); i++)
        got.emplace(sink.frames[i], dp->net.dev(sink.devs[i])->name);
      outs();
      EXPECT_EQ(got, want);
    }
    p[1]->admin_up.store(false);  // set link p1 down: the monitor rebuilds the usable array
    tick();
    EXPECT_EQ(link(1), LinkState::down);
    for (const HashCase& hc : kHashCases) {
      if (hc.tci >= 0) continue;
      xmit({mbuf_of(unhex(hc.frame))});
      EXPECT_EQ(outs(), V{hc.hash[pi] % 2 == 0 ? "p0" : "p2"}) << hc.name;
    }
    // Two usable members, as bursts: the whole table, then only its plain
    // IPv4 TCP/UDP frames (the two-member pass). Each member gets its
    // frames in the burst's order.
    for (bool plain_only : {false, true}) {
      SCOPED_TRACE(plain_only ? "plain IPv4 TCP/UDP burst" : "whole-table burst");
      std::vector<rte_mbuf*> burst;
      std::map<std::string, std::vector<std::vector<uint8_t>>> want, got;
      for (const HashCase& hc : kHashCases) {
        const std::vector<uint8_t> f = unhex(hc.frame);
        const bool plain = f.size() >= 38 && f[12] == 0x08 && f[13] == 0 && f[14] == 0x45 &&
                           (f[20] & 0x3f) == 0 && f[21] == 0 && (f[23] == 6 || f[23] == 17);
        if (hc.tci >= 0 || (plain_only && !plain)) continue;
        burst.push_back(mbuf_of(f));
        want[hc.hash[pi] % 2 == 0 ? "p0" : "p2"].push_back(f);
        if (!plain_only || hc.hash[pi] == 0) continue;
        for (uint8_t port = 1; port <= 8; port++) {  // more flows, the general hash as reference
          std::vector<uint8_t> g = f;
          g[29] = static_cast<uint8_t>(g[29] ^ port);  // the source address's last byte
          rte_mbuf* m = mbuf_of(g);
          want[bond::xmit_hash(kPolicies[pi], m) % 2 == 0 ? "p0" : "p2"].push_back(g);
          burst.push_back(m);
        }
      }
      if (plain_only) {
        EXPECT_EQ(want.size(), 2u);  // the burst spreads over both
      }
      xmit(burst);
      for (size_t i = 0; i < sink.frames.size(); i++)
        got[dp->net.dev(sink.devs[i])->name].push_back(sink.frames[i]);
      outs();
      EXPECT_EQ(got, want);
    }
    TearDown();
  }
  SetUp();  // for the fixture's own TearDown
}

// A traced frame sent through a balance-xor bond gets a "member chosen"
// record naming its member, on the two-member pass (a burst of plain IPv4
// TCP/UDP) and on the general one (a fragment in the burst).
TEST_F(BondTest, TracedFramesRecordTheMemberChosen) {
  config::Bond c = cfg("balance-xor", {"p0", "p1"});
  c.xmit_hash_policy = "layer3+4";
  build(c);
  for (bool with_fragment : {false, true}) {
    SCOPED_TRACE(with_fragment ? "general pass" : "two-member pass");
    std::vector<rte_mbuf*> burst;
    std::vector<uint16_t> want;
    for (uint8_t i = 0; i < 8; i++) {
      std::vector<uint8_t> f = unhex(kHashCases[0].frame);  // UDP
      f[29] = static_cast<uint8_t>(f[29] ^ i);
      if (with_fragment && i == 5) f[20] = 0x20;  // MF
      rte_mbuf* m = mbuf_of(f);
      want.push_back(p[bond::xmit_hash(HashPolicy::layer34, m) % 2]->index);
      burst.push_back(m);
    }
    dp->net.trace.clear();
    dp->net.trace.arm(8, kNoDev, nullptr, nullptr);
    dp->net.trace.mark(0, bond0->index, burst.data(), 8);
    xmit(burst);
    EXPECT_EQ(outs().size(), 8u);
    std::set<uint16_t> members;
    for (uint32_t k = 1; k <= 8; k++) {
      const TracePacket* tp = dp->net.trace.packet(k);
      ASSERT_NE(tp, nullptr) << k;
      int chosen = -1;
      for (uint16_t r = 0; r < tp->nrec.load(); r++)
        if (std::string(tp->rec[r].stage) == "bond_start_xmit" &&
            std::string(tp->rec[r].what) == "member chosen") {
          EXPECT_EQ(tp->rec[r].dev, bond0->index);
          chosen = tp->rec[r].dev2;
        }
      EXPECT_EQ(chosen, want[k - 1]) << "packet " << k;
      members.insert(want[k - 1]);
    }
    EXPECT_EQ(members.size(), 2u);  // both members, both vectors traced
  }
  dp->net.trace.clear();
}

// balance-rr: a per-worker pre-incremented counter, so the first packet goes
// to the second member; a member whose link is not UP is skipped; IGMP goes
// to the active member.
TEST_F(BondTest, RoundRobinOrder) {
  build(cfg("balance-rr", {"p0", "p1", "p2"}));
  xmit(numbered(7));
  EXPECT_EQ(by_seq(), (V{"p1", "p2", "p0", "p1", "p2", "p0", "p1"}));
  // Another worker has its own counter: it starts again at the second member.
  dp->workers.push_back(std::make_unique<Worker>(dp->net, 1));
  sys->init_workers();
  sys->workers[1]->rr.assign(1, 0);
  sys->workers[1]->ctr.assign(3, bond::MemberCounters{});
  Worker& w1 = *dp->workers[1];
  rte_mbuf* m = frame(fr(PEER));
  dev_queue_xmit(w1, *bond0, &m, 1);
  EXPECT_EQ(outs(), V{"p1"});
  // IGMP (IPv4 protocol 2) keeps to curr_active_slave (p0, the first UP member).
  FrameSpec igmp = fr("01:00:5e:00:00:16");
  igmp.payload[0] = 0x46;
  igmp.payload[9] = 2;
  xmit(igmp, 3);
  EXPECT_EQ(outs(), (V{"p0", "p0", "p0"}));
  // p2 in FAIL (downdelay pending): rr needs link UP, so it is skipped.
  b->downdelay = 2;
  carrier(2, false);
  tick();
  EXPECT_EQ(link(2), LinkState::fail);
  xmit(numbered(4));  // counter 8, 9, 10, 11 → ids 2 (p2 skipped: p0), 0, 1, 2 (p0)
  EXPECT_EQ(by_seq(), (V{"p0", "p0", "p1", "p0"}));
}

// balance-xor during FAIL: the member stays in the usable array until DOWN.
TEST_F(BondTest, XorKeepsAFailingMemberUntilDown) {
  config::Bond c = cfg("balance-xor");
  c.downdelay_ms = 200;
  build(c);
  b->downdelay = 2;
  FrameSpec f = fr("02:00:00:00:00:02", 0x88b6, "02:00:00:00:00:01");  // layer2: 3 ^ 0x88b6, odd
  xmit(f);
  EXPECT_EQ(outs(), V{"p1"});
  carrier(1, false);
  tick();
  tick();
  EXPECT_EQ(link(1), LinkState::fail);
  xmit(f);
  // Still in the array: sent to p1, whose device refuses it (no carrier).
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(p[1], DropReason::dev_ready), 1u);
  EXPECT_EQ(dp->counters(p[1]->index).tx_dropped, 1u);
  tick();
  EXPECT_EQ(link(1), LinkState::down);
  xmit(f);
  EXPECT_EQ(outs(), V{"p0"});
}

// active-backup: everything to the active member; none → tx_dropped on the bond.
TEST_F(BondTest, ActiveBackupTransmit) {
  build(cfg("active-backup"));
  EXPECT_EQ(active(), "p0");
  Probe* bt = probe("bond0");
  Probe* p0t = probe("p0");
  dp->net.add_tap(bond0, probe_tap, bt);
  dp->net.add_tap(p[0], probe_tap, p0t);
  xmit(fr(PEER), 3);
  EXPECT_EQ(outs(), (V{"p0", "p0", "p0"}));
  // §3.8: the bond's egress taps see it, then the member's again (OUTGOING both).
  EXPECT_EQ(rec.of("bond0").size(), 3u);
  EXPECT_EQ(rec.of("p0").size(), 3u);
  EXPECT_EQ(rec.of("p0")[0].dir, Direction::egress);
  carrier(0, false);
  carrier(1, false);
  tick();
  EXPECT_EQ(active(), "-");
  EXPECT_FALSE(bond0->oper_up.load());
  // The bond without carrier refuses at dev_queue_xmit (dev_ready); its xmit,
  // called directly, counts bond_no_member. Both are the bond's tx_dropped.
  rte_mbuf* m = frame(fr(PEER));
  bond::bond_start_xmit(*w, *bond0, &m, 1);
  w->flush_free();
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(bond0, DropReason::bond_no_member), 1u);
  EXPECT_EQ(dp->counters(bond0->index).tx_dropped, 1u);
}

// broadcast: a copy to every member that is up with link UP; no member → dropped.
TEST_F(BondTest, BroadcastCopies) {
  build(cfg("broadcast", {"p0", "p1", "p2"}));
  xmit(fr(PEER), 2);
  auto o = outs();
  std::sort(o.begin(), o.end());
  EXPECT_EQ(o, (V{"p0", "p0", "p1", "p1", "p2", "p2"}));
  carrier(2, false);  // the last member: its copy is skipped, the original freed
  tick();
  xmit(fr(PEER));
  o = outs();
  std::sort(o.begin(), o.end());
  EXPECT_EQ(o, (V{"p0", "p1"}));
  carrier(0, false);
  carrier(1, false);
  tick();
  rte_mbuf* m = frame(fr(PEER));
  bond::bond_start_xmit(*w, *bond0, &m, 1);
  w->flush_free();
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(bond0, DropReason::bond_no_member), 1u);
}

// ---- receive ------------------------------------------------------------------------------------

// BOND-01 / BOND-02 / §3.8: active-backup RX on the active and on the backup member.
TEST_F(BondTest, ActiveBackupReceive) {
  build(cfg("active-backup"));
  Probe* any = probe("any");
  Probe* t0 = probe("p0");
  Probe* t1 = probe("p1");
  Probe* tb = probe("bond0");
  Probe* ip = probe("ip");
  dp->net.add_tap(nullptr, probe_tap, any);
  dp->net.add_tap(p[0], probe_tap, t0);
  dp->net.add_tap(p[1], probe_tap, t1);
  dp->net.add_tap(bond0, probe_tap, tb);
  dp->net.add_ptype(0x0800, nullptr, probe_proto, ip, "ip");
  EXPECT_EQ(p[1]->mac.addr_bytes[5], 0x01);  // fail_over_mac none: members carry the bond's MAC

  rx(p[0], fr(BOND_MAC));
  EXPECT_EQ(rec.of("p0").size(), 1u);
  EXPECT_EQ(rec.of("bond0").size(), 1u);
  auto a = rec.of("any");
  ASSERT_EQ(a.size(), 2u);  // the p0 round, then the bond0 round
  EXPECT_EQ(a[0].dev, p[0]->index);
  EXPECT_EQ(a[1].dev, bond0->index);
  auto s = rec.of("ip");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].dev, bond0->index);
  EXPECT_EQ(s[0].orig_dev, p[0]->index);
  EXPECT_EQ(s[0].pkt_type, PktType::host);

  rec.seen.clear();
  rx(p[1], fr(BOND_MAC));  // the backup: EXACT, nobody bound to p1 → rx_nohandler
  EXPECT_EQ(rec.of("p1").size(), 1u);
  EXPECT_EQ(rec.of("any").size(), 1u);
  EXPECT_EQ(rec.of("bond0").size(), 0u);
  EXPECT_EQ(rec.of("ip").size(), 0u);
  EXPECT_EQ(dp->counters(p[1]->index).rx_nohandler, 1u);
  EXPECT_EQ(dp->counters(bond0->index).rx_nohandler, 1u);  // folded (§3.9)
  EXPECT_EQ(drops(p[1], DropReason::unhandled_proto), 1u);

  // Link-local on the backup: PASS, delivered with dev = the member (LLDP daemons see it).
  Probe* lldp = probe("lldp");
  dp->net.add_ptype(0x88cc, nullptr, probe_proto, lldp, "lldp");
  rx(p[1], fr("01:80:c2:00:00:0e", 0x88cc));
  auto l = rec.of("lldp");
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].dev, p[1]->index);
  // A handler bound to the backup member gets its EXACT frames.
  Probe* on1 = probe("on_p1");
  dp->net.add_ptype(0x0800, p[1], probe_proto, on1, "on_p1");
  rx(p[1], fr(BOND_MAC));
  EXPECT_EQ(rec.of("on_p1").size(), 1u);
  EXPECT_EQ(rec.of("ip").size(), 0u);

  // Counters fold: every frame the members received is the bond's too.
  const DevCounters c = dp->counters(bond0->index);
  EXPECT_EQ(c.rx_packets, 4u);
  EXPECT_EQ(c.rx_packets,
            dp->counters(p[0]->index).rx_packets + dp->counters(p[1]->index).rx_packets);
}

// An active member with nothing of its own to do (no tap, no ingress
// action, no tag, no trace) makes its round and the bond's in one pass
// (Device::rx_through): the same packets, metadata and counters as two
// rounds, one netif-receive call. Anything on the member, a tag or a
// backup member makes both rounds.
TEST_F(BondTest, ActiveMemberGoesStraightToTheBondRound) {
  build(cfg("active-backup"));
  EXPECT_EQ(p[0]->rx_through.load(), bond0->index);
  EXPECT_EQ(p[1]->rx_through.load(), kNoDev);  // the backup: EXACT, looked at per frame
  Probe* ip = probe("ip");
  Probe* tb = probe("bond0");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, ip, "ip");
  dp->net.add_tap(bond0, probe_tap, tb);
  const StageStats* st = w->runtime.stats;
  auto rounds_made = [&](const FrameSpec& f, int count) {
    const uint64_t before = st[stage::netif_receive].calls;
    std::vector<rte_mbuf*> v;
    for (int i = 0; i < count; i++) v.push_back(frame(f));
    port_receive(*w, *p[0], v.data(), static_cast<uint16_t>(v.size()));
    w->flush_free();
    return st[stage::netif_receive].calls - before;
  };
  const uint64_t handler_calls = st[p[0]->rx_handler_stage].calls;
  EXPECT_EQ(rounds_made(fr(BOND_MAC), 4), 1u);
  EXPECT_EQ(st[p[0]->rx_handler_stage].calls, handler_calls + 1);  // show runtime still counts it
  auto s = rec.of("ip");
  ASSERT_EQ(s.size(), 4u);
  for (const Seen& x : s) {
    EXPECT_EQ(x.dev, bond0->index);
    EXPECT_EQ(x.orig_dev, p[0]->index);
    EXPECT_EQ(x.rounds, 2);
    EXPECT_EQ(x.pkt_type, PktType::host);
  }
  EXPECT_EQ(rec.of("bond0").size(), 4u);  // the bond's own taps see its round

  // A tap on the member: it sees the member's round, then the bond's.
  rec.seen.clear();
  Probe* t0 = probe("p0");
  uint32_t tap = dp->net.add_tap(p[0], probe_tap, t0);
  EXPECT_EQ(rounds_made(fr(BOND_MAC), 2), 2u);
  ASSERT_EQ(rec.of("p0").size(), 2u);
  EXPECT_EQ(rec.of("p0")[0].dev, p[0]->index);
  EXPECT_EQ(rec.of("ip").size(), 2u);
  EXPECT_EQ(rec.of("ip")[0].rounds, 2);
  dp->net.remove_tap(tap);

  // A tagged frame: the member's round untags it, then the bond's (no VLAN
  // device: OTHERHOST, the tag cleared, as 6.x), as two rounds.
  rec.seen.clear();
  FrameSpec tagged = fr(BOND_MAC);
  tagged.tags = {0x81000064};
  EXPECT_EQ(rounds_made(tagged, 1), 2u);
  s = rec.of("ip");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].dev, bond0->index);
  EXPECT_EQ(s[0].rounds, 2);
  EXPECT_EQ(s[0].protocol, 0x0800);
  EXPECT_FALSE(s[0].vlan);
  EXPECT_EQ(s[0].pkt_type, PktType::otherhost);

  // Failover: the new active member goes straight on, the old one no more.
  carrier(0, false);
  for (int i = 0; i < 3 && active() != "p1"; i++) tick();
  ASSERT_EQ(active(), "p1");
  EXPECT_EQ(p[0]->rx_through.load(), kNoDev);
  EXPECT_EQ(p[1]->rx_through.load(), bond0->index);
  // The handler unregistered (bond_release): nothing to go straight on to.
  dp->net.clear_rx_handler(*p[1]);
  EXPECT_EQ(p[1]->rx_through.load(), kNoDev);
}

// With a recv_probe (802.3ad's LACPDUs, the ARP monitor) or alb's receive
// load balancing, bond_handle_frame looks at every frame: no member goes
// straight on.
TEST_F(BondTest, ProbingBondsLookAtEveryFrame) {
  for (const char* mode : {"802.3ad", "balance-alb", "balance-xor"}) {
    SCOPED_TRACE(mode);
    SetUp();
    config::Bond c = cfg(mode);
    const bool arp = std::string(mode) == "balance-xor";
    if (arp) {
      c.miimon_ms.reset();
      c.arp_monitor.interval_ms = 100;
      c.arp_monitor.targets = {"192.0.2.254"};
    }
    build(c);
    for (int i = 0; i < 2; i++) EXPECT_EQ(p[i]->rx_through.load(), kNoDev) << i;
    TearDown();
  }
  SetUp();
  build(cfg("balance-xor"));  // the control: both members straight on
  for (int i = 0; i < 2; i++) EXPECT_EQ(p[i]->rx_through.load(), bond0->index) << i;
}

// Trunk modes: every member receives for the bond; the inactive test never fires.
TEST_F(BondTest, TrunkModesReceiveOnEveryMember) {
  for (const char* mode : {"balance-rr", "balance-xor", "broadcast"}) {
    SCOPED_TRACE(mode);
    SetUp();
    build(cfg(mode, {"p0", "p1", "p2"}));
    Probe* ip = probe("ip");
    dp->net.add_ptype(0x0800, nullptr, probe_proto, ip, "ip");
    for (int i = 0; i < 3; i++) rx(p[i], fr(BOND_MAC));
    auto s = rec.of("ip");
    ASSERT_EQ(s.size(), 3u);
    for (int i = 0; i < 3; i++) {
      EXPECT_EQ(s[i].dev, bond0->index);
      EXPECT_EQ(s[i].orig_dev, p[i]->index);
    }
    rec.seen.clear();
    probes.clear();
    TearDown();
  }
  SetUp();
}

// Outside 802.3ad there is no recv_probe: a LACPDU is an ordinary frame
// (up to the bond on the active member, EXACT on the backup).
TEST_F(BondTest, LacpduIsOrdinaryOutside8023ad) {
  build(cfg("active-backup"));
  FrameSpec lacp = fr("01:80:c2:00:00:02", 0x8809);
  lacp.payload.assign(110, 0);
  lacp.payload[0] = 1;
  rx(p[0], lacp);
  rx(p[1], lacp);
  EXPECT_EQ(w->c(bond0->index).rx_dropped, 1u);           // unhandled on the bond
  EXPECT_EQ(dp->counters(p[1]->index).rx_nohandler, 0u);  // link-local on a backup: PASS
  EXPECT_EQ(dp->counters(p[1]->index).rx_dropped, 1u);
  EXPECT_EQ(dp->counters(bond0->index).rx_dropped, 2u);  // its own and p1's, folded
  EXPECT_EQ(b->ctr.slow_rx, 0u);
}

// ---- the MII monitor ----------------------------------------------------------------------------

// BOND-10: miimon 100, downdelay 200, updelay 300 (2 and 3 ticks).
TEST_F(BondTest, MiiMonitorTickTable) {
  config::Bond c = cfg("active-backup");
  c.downdelay_ms = 200;
  c.updelay_ms = 300;
  build(c);
  EXPECT_EQ(b->downdelay, 2);
  EXPECT_EQ(b->updelay, 3);
  // At start both had carrier: BACK with delay 3. The first run ignores
  // updelay while no member is active (p0 UP at once); p1 waits its 3 ticks.
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(link(1), LinkState::back);
  EXPECT_EQ(active(), "p0");
  tick();
  tick();
  EXPECT_EQ(link(1), LinkState::back);
  tick();
  EXPECT_EQ(link(1), LinkState::up);

  carrier(0, false);
  tick();  // run 1: FAIL, still the active member
  EXPECT_EQ(link(0), LinkState::fail);
  EXPECT_EQ(active(), "p0");
  tick();  // run 2
  EXPECT_EQ(link(0), LinkState::fail);
  EXPECT_EQ(active(), "p0");
  tick();  // run 3: DOWN and failover
  EXPECT_EQ(link(0), LinkState::down);
  EXPECT_EQ(active(), "p1");
  EXPECT_EQ(b->members[0]->link_failure_count, 1u);
  EXPECT_TRUE(b->members[0]->inactive.load());
  EXPECT_FALSE(b->members[1]->inactive.load());

  carrier(0, true);
  tick();  // run 1: BACK
  EXPECT_EQ(link(0), LinkState::back);
  tick();
  tick();
  EXPECT_EQ(link(0), LinkState::back);
  tick();  // run 4: UP; p1 stays active (no primary)
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(active(), "p1");
  EXPECT_EQ(b->ctr.failovers, 2u);  // the first selection at start, then p1
}

// Carrier back while FAIL: "up again", no failover, no failure counted.
TEST_F(BondTest, MiiRecoveredBeforeDowndelay) {
  config::Bond c = cfg("active-backup");
  c.downdelay_ms = 300;
  build(c);
  carrier(0, false);
  tick();
  tick();
  EXPECT_EQ(link(0), LinkState::fail);
  carrier(0, true);
  tick();
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(active(), "p0");
  EXPECT_EQ(b->members[0]->link_failure_count, 0u);
}

// With delay 0 the state changes on the first run; updelay is ignored when
// nothing is up (the first member back becomes active at once).
TEST_F(BondTest, MiiUpdelayIgnoredWhenNothingIsUp) {
  config::Bond c = cfg("active-backup");
  c.updelay_ms = 500;
  build(c);
  tick();
  ASSERT_EQ(active(), "p0");
  carrier(0, false);
  carrier(1, false);
  tick();
  EXPECT_EQ(link(0), LinkState::down);
  EXPECT_EQ(link(1), LinkState::down);
  EXPECT_EQ(active(), "-");
  EXPECT_FALSE(bond0->oper_up.load());
  carrier(1, true);
  tick();
  EXPECT_EQ(link(1), LinkState::up);
  EXPECT_EQ(active(), "p1");
  EXPECT_TRUE(bond0->oper_up.load());
  // Now something is up: p0 waits out its updelay (5 ticks; UP on the 6th run).
  carrier(0, true);
  for (int i = 0; i < 5; i++) {
    tick();
    EXPECT_EQ(link(0), LinkState::back) << i;
  }
  tick();
  EXPECT_EQ(link(0), LinkState::up);
}

// primary with primary_reselect always takes over when it comes back; with failure it does not.
TEST_F(BondTest, PrimaryReselect) {
  for (const char* reselect : {"always", "failure"}) {
    SCOPED_TRACE(reselect);
    SetUp();
    config::Bond c = cfg("active-backup");
    c.primary = "p1";
    c.primary_reselect = reselect;
    build(c);
    EXPECT_EQ(active(), "p1");  // the primary, though enslaved second
    carrier(1, false);
    tick();
    EXPECT_EQ(active(), "p0");
    carrier(1, true);
    tick();
    EXPECT_EQ(link(1), LinkState::up);
    EXPECT_EQ(active(), std::string(reselect) == "always" ? "p1" : "p0");
    TearDown();
  }
  SetUp();
}

// `set link p0 down`: admin down is no carrier for the monitor.
TEST_F(BondTest, SetLinkDownFailsOver) {
  build(cfg("active-backup"));
  ASSERT_EQ(cmd({"set", "link", "p0", "down"}).status, 0);
  tick();
  EXPECT_EQ(active(), "p1");
  xmit(fr(PEER));
  EXPECT_EQ(outs(), V{"p1"});
}

// ---- failover notifications ---------------------------------------------------------------------

// The new active member sends a gratuitous ARP per IPv4 address and an
// unsolicited NA per IPv6 address of the bond (and its peers' switch relearns).
TEST_F(BondTest, FailoverSendsGratuitousArpAndNa) {
  auto& l3 = dp->topo.get<l3::Config>();
  l3.addresses.push_back({});
  l3.addresses.back().dev = "bond0";
  l3.addresses.back().address = "192.0.2.1/24";
  l3.addresses.push_back({});
  l3.addresses.back().dev = "bond0";
  l3.addresses.back().address = "2001:db8::1/64";
  build(cfg("active-backup"));
  drain_inject();
  outs();
  carrier(0, false);
  tick();
  ASSERT_EQ(active(), "p1");
  drain_inject();
  ASSERT_EQ(sink.frames.size(), 2u);
  auto& g = sink.frames[0];
  EXPECT_EQ(dp->net.dev(sink.devs[0])->name, "p1");
  EXPECT_EQ(std::vector<uint8_t>(g.begin(), g.begin() + 6), std::vector<uint8_t>(6, 0xff));
  EXPECT_EQ(g[12], 0x08);
  EXPECT_EQ(g[13], 0x06);
  EXPECT_EQ(g[21], 1);  // request
  EXPECT_EQ(std::vector<uint8_t>(g.begin() + 28, g.begin() + 32),
            (std::vector<uint8_t>{192, 0, 2, 1}));
  EXPECT_EQ(std::vector<uint8_t>(g.begin() + 38, g.begin() + 42),
            (std::vector<uint8_t>{192, 0, 2, 1}));
  EXPECT_EQ(g[22 + 5], 0x01);  // sha = the bond's MAC
  auto& na = sink.frames[1];
  EXPECT_EQ(na[12], 0x86);
  EXPECT_EQ(na[14 + 40], 136);       // neighbour advertisement
  EXPECT_EQ(na[14 + 40 + 4], 0x20);  // override
  EXPECT_EQ(b->ctr.garp_sent, 1u);   // (at start the test pool was not set yet)
  EXPECT_EQ(b->ctr.na_sent, 1u);
  outs();
}

// A bond that is a bridge port also sends a learning frame per MAC of the bridge.
TEST_F(BondTest, FailoverInABridgeSendsLearningFrames) {
  config::Bridge br;
  br.name = "br0";
  br.ports = {"bond0", "p2"};
  dp->topo.get<bridge::Config>().bridges = {br};
  build(cfg("active-backup"));
  bridge::setup(*dp);
  drain_inject();
  outs();
  carrier(0, false);
  tick();
  drain_inject();
  // br0's MAC (the lowest port MAC: the bond's ..:01) and p2's ..:03.
  ASSERT_EQ(sink.frames.size(), 2u);
  for (size_t i = 0; i < 2; i++) {
    EXPECT_EQ(dp->net.dev(sink.devs[i])->name, "p1");
    EXPECT_EQ(sink.frames[i][12], 0x90);
    EXPECT_TRUE(
        std::equal(sink.frames[i].begin(), sink.frames[i].begin() + 6, sink.frames[i].begin() + 6));
  }
  EXPECT_EQ(sink.frames[0][5], 0x01);
  EXPECT_EQ(sink.frames[1][5], 0x03);
  outs();
  dp->find_feature<bridge::BridgeSys>()->run(now);
}

// ---- show bond ----------------------------------------------------------------------------------

// balance-tlb, tlb_dynamic_lb 0: IP unicast by usable[hash % count] of the
// policy (layer3+4 here), everything else by the active member; a frame on
// another member carries that member's own MAC as its source. RX only on
// the active member.
TEST_F(BondTest, TlbStaticChoiceAndSourceMac) {
  config::Bond c = cfg("balance-tlb", {"p0", "p1", "p2"});
  c.xmit_hash_policy = "layer3+4";
  c.tlb_dynamic_lb = false;
  build(c);
  EXPECT_EQ(active(), "p0");
  for (const HashCase& hc : kHashCases) {
    if (hc.tci >= 0) continue;
    SCOPED_TRACE(hc.name);
    const auto bytes = unhex(hc.frame);
    const uint16_t type = static_cast<uint16_t>(bytes[12] << 8 | bytes[13]);
    const bool ip_unicast = (bytes[0] & 1) == 0 && (type == 0x0800 || type == 0x86dd);
    xmit({mbuf_of(bytes)});
    ASSERT_EQ(sink.frames.size(), 1u);
    const unsigned want = ip_unicast ? hc.hash[2] % 3 : 0;
    const std::vector<uint8_t> out = sink.frames[0];
    EXPECT_EQ(outs(), V{p[want]->name});
    const rte_ether_addr& src = b->members[want]->perm_mac;
    if (want != 0)
      EXPECT_EQ(std::memcmp(out.data() + 6, src.addr_bytes, 6), 0);
    else
      EXPECT_EQ(std::memcmp(out.data() + 6, bytes.data() + 6, 6), 0);
  }
  // RX: only the active member delivers to the bond.
  EXPECT_FALSE(mem_(0).inactive.load());
  EXPECT_TRUE(mem_(1).inactive.load());
  EXPECT_TRUE(mem_(2).inactive.load());
  // The active member down: p1 takes over, both RX and non-IP TX.
  carrier(0, false);
  tick();
  EXPECT_EQ(active(), "p1");
  EXPECT_FALSE(mem_(1).inactive.load());
  EXPECT_TRUE(mem_(0).inactive.load());
  xmit(fr("ff:ff:ff:ff:ff:ff", 0x0806));
  EXPECT_EQ(outs(), V{"p1"});
}

// balance-tlb, tlb_dynamic_lb 1: before the first rebalance a flow is
// hashed; at the rebalance the loaded buckets are spread heaviest first so
// the members' byte loads are as even as the buckets allow, and sticky.
TEST_F(BondTest, TlbDynamicRebalance) {
  config::Bond c = cfg("balance-tlb", {"p0", "p1"});
  c.xmit_hash_policy = "layer3+4";
  build(c);
  // Four flows, all in buckets that hash to p0 or p1 alike: count per member.
  std::vector<std::vector<uint8_t>> flows;
  for (const HashCase& hc : kHashCases) {
    const auto bytes = unhex(hc.frame);
    const uint16_t type = static_cast<uint16_t>(bytes[12] << 8 | bytes[13]);
    if (hc.tci < 0 && (bytes[0] & 1) == 0 && (type == 0x0800 || type == 0x86dd))
      flows.push_back(bytes);
  }
  ASSERT_GE(flows.size(), 2u);
  for (auto& f : flows) xmit({mbuf_of(f)});
  outs();
  tick(bond::kTlbRebalanceMs);  // the first rebalance: every seen bucket gets a member
  EXPECT_EQ(b->tlb_rebalances, 1u);
  unsigned assigned = 0;
  for (unsigned i = 0; i < bond::kTlbBuckets; i++) assigned += b->tlb_map[i] != bond::kNoMember;
  EXPECT_GE(assigned, 1u);
  // Every flow now follows its bucket's member.
  for (auto& f : flows) {
    const uint32_t h =
        bond::xmit_hash(HashPolicy::layer34, f.data(), static_cast<uint32_t>(f.size()), false, 0);
    xmit({mbuf_of(f)});
    EXPECT_EQ(outs(), V{p[b->tlb_map[h & 0xff]]->name});
  }
  // show bond --json reports the buckets per member.
  CmdResult r = cmd({"show", "bond", "bond0"});
  const auto& tj = r.json["bond0"]["tlb"];
  EXPECT_EQ(tj["dynamic_lb"], true);
  EXPECT_EQ(tj["rebalances"], 1);
  EXPECT_EQ(tj["buckets"]["p0"].get<unsigned>() + tj["buckets"]["p1"].get<unsigned>(), assigned);
}

TEST(BondTlb, RebalanceSpreadsByLoadAndSpeed) {
  uint64_t load[bond::kTlbBuckets] = {};
  load[1] = 900;
  load[2] = 500;
  load[3] = 400;
  load[7] = 100;
  const uint8_t usable[] = {0, 2};
  uint32_t speed[bond::kMaxMembers] = {1000, 1000, 1000};
  uint8_t out[bond::kTlbBuckets];
  bond::tlb_rebalance(load, usable, 2, speed, out);
  // 900 → 0 (a tie: the first); 500 → 2 (1.4 vs 0.5); 400 → 2 (1.3 vs 0.9);
  // 100 → 0 (1.0 vs 1.0: the first).
  EXPECT_EQ(out[1], 0);
  EXPECT_EQ(out[2], 2);
  EXPECT_EQ(out[3], 2);
  EXPECT_EQ(out[7], 0);
  EXPECT_EQ(out[0], bond::kNoMember);
  EXPECT_EQ(out[200], bond::kNoMember);
  // A member ten times faster takes the heavy buckets first.
  speed[2] = 10000;
  bond::tlb_rebalance(load, usable, 2, speed, out);
  EXPECT_EQ(out[1], 2);
  EXPECT_EQ(out[2], 2);
  bond::tlb_rebalance(load, usable, 0, speed, out);
  EXPECT_EQ(out[1], bond::kNoMember);
}

TEST(BondTlb, ChooseFallsBackToTheHash) {
  bond::TxView v;
  v.n = 3;
  v.n_usable = 2;
  v.usable[0] = 0;
  v.usable[1] = 2;
  v.usable_mask = 0b101;
  v.usable_mod = ~uint64_t(0) / 2 + 1;
  std::fill(std::begin(v.tlb), std::end(v.tlb), bond::kNoMember);
  v.tlb[5] = 2;
  v.tlb[6] = 1;  // no longer usable: hashed
  EXPECT_EQ(bond::tlb_choose(v, 0x105, true), 2);
  EXPECT_EQ(bond::tlb_choose(v, 0x105, false), 2);  // 0x105 odd → usable[1]
  EXPECT_EQ(bond::tlb_choose(v, 0x106, true), 0);   // even → usable[0]
  EXPECT_EQ(bond::tlb_choose(v, 0x104, true), 0);
  v.n_usable = 0;
  EXPECT_EQ(bond::tlb_choose(v, 0x105, true), bond::kNoMember);
}

TEST_F(BondTest, ShowBond) {
  build(cfg("active-backup"));
  carrier(0, false);
  tick();
  CmdResult r = cmd({"show", "bond"});
  ASSERT_EQ(r.status, 0) << r.text;
  auto& j = r.json["bond0"];
  EXPECT_EQ(j["mode"], "active-backup");
  EXPECT_EQ(j["active"], "p1");
  EXPECT_EQ(j["members"]["p0"]["link"], "down");
  EXPECT_EQ(j["members"]["p0"]["state"], "backup");
  EXPECT_EQ(j["members"]["p0"]["link_failure_count"], 1);
  EXPECT_EQ(j["members"]["p1"]["link"], "up");
  EXPECT_EQ(j["members"]["p1"]["state"], "active");
  EXPECT_EQ(j["members"]["p0"]["perm_mac"], "02:00:00:00:00:01");
  EXPECT_EQ(j["members"]["p1"]["perm_mac"], "02:00:00:00:00:02");
  EXPECT_EQ(j["members"]["p1"]["mac"], "02:00:00:00:00:01");
  EXPECT_NE(r.text.find("mode active-backup"), std::string::npos) << r.text;
  EXPECT_EQ(cmd({"show", "bond", "nope"}).status, 1);
  r = cmd({"show", "devices"});
  EXPECT_EQ(r.json["bond0"]["kind"], "bond");
  EXPECT_EQ(r.json["bond0"]["bond_mode"], "active-backup");
  EXPECT_EQ(r.json["bond0"]["bond_active"], "p1");
  EXPECT_EQ(r.json["p0"]["master"], "bond0");
  EXPECT_EQ(r.json["p0"]["rx_handler"], "bond");
  EXPECT_EQ(r.json["p0"]["bond_link"], "down");
  EXPECT_EQ(r.json["p0"]["bond_state"], "backup");
  EXPECT_EQ(r.json["p1"]["bond_state"], "active");
  EXPECT_NE(r.text.find("bond_state=active"), std::string::npos) << r.text;
  // Prometheus: member states next to the (folded) device counters.
  const std::string m = metrics_text(*dp);
  EXPECT_NE(m.find("sluice_bond_member_link_up{bond=\"bond0\",member=\"p0\"} 0"),
            std::string::npos);
  EXPECT_NE(m.find("sluice_bond_member_active{bond=\"bond0\",member=\"p1\"} 1"), std::string::npos);
  EXPECT_NE(m.find("sluice_bond_member_link_failures_total{bond=\"bond0\",member=\"p0\"} 1"),
            std::string::npos);
  EXPECT_NE(m.find("sluice_rx_packets_total{dev=\"bond0\"}"), std::string::npos);
}

// ---- config -------------------------------------------------------------------------------------

TEST(BondConfig, DefaultsAndErrors) {
  const std::string ports =
      "ports:\n  - {name: a, device: net_null0}\n  - {name: b, device: net_null1}\n";
  auto t = config::load_string(ports + "bonds:\n  - {name: bond0, members: [a, b]}\n", "t.yaml");
  const auto& bs = t.get<bond::Config>().bonds;
  ASSERT_EQ(bs.size(), 1u);
  EXPECT_EQ(bs[0].mode, "balance-rr");  // Linux's default mode
  EXPECT_FALSE(bs[0].miimon_ms);        // and no monitor unless asked
  EXPECT_EQ(bs[0].members, (V{"a", "b"}));
  auto error_of = [&](const std::string& bonds) {
    try {
      config::load_string(ports + bonds, "t.yaml");
    } catch (const config::ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(error_of("bonds:\n  - {name: bond0, members: []}\n")
                .find("t.yaml:5:28: bond 'bond0': members: a bond needs at least one member"),
            std::string::npos);
  EXPECT_NE(error_of("bonds:\n  - {name: bond0, mode: round-robin, members: [a]}\n")
                .find("mode must be one of balance-rr, active-backup, balance-xor, broadcast, "
                      "802.3ad, balance-tlb, balance-alb"),
            std::string::npos);
  EXPECT_NE(error_of("bonds:\n  - {name: bond0, members: [a], updelay_ms: 200}\n")
                .find("updelay_ms needs the MII monitor"),
            std::string::npos);
  // balance-tlb and tlb_dynamic_lb: accepted there, refused elsewhere with line:col.
  auto tl = config::load_string(
      ports +
          "bonds:\n  - {name: bond0, mode: balance-tlb, members: [a, b], tlb_dynamic_lb: false}\n",
      "t.yaml");
  EXPECT_FALSE(tl.get<bond::Config>().bonds[0].tlb_dynamic_lb);
  EXPECT_NE(
      error_of("bonds:\n  - {name: bond0, mode: balance-xor, members: [a], tlb_dynamic_lb: true}\n")
          .find("t.yaml:5:"),
      std::string::npos);
  EXPECT_NE(
      error_of("bonds:\n  - {name: bond0, mode: balance-xor, members: [a], tlb_dynamic_lb: true}\n")
          .find("tlb_dynamic_lb is not used in mode balance-xor"),
      std::string::npos);
  // A VLAN sub-device on a bond is accepted; one on a bridge is not.
  auto v = config::load_string(ports +
                                   "bonds:\n  - {name: bond0, members: [a, b]}\nvlans:\n  - {name: "
                                   "bond0.5, link: bond0, id: 5}\n",
                               "t.yaml");
  ASSERT_EQ(v.vlans.size(), 1u);
  EXPECT_EQ(v.vlans[0].link, "bond0");
  EXPECT_NE(
      error_of("bonds:\n  - {name: bond0, members: [a]}\nbridges:\n  - {name: br0, ports: [b]}\n"
               "vlans:\n  - {name: br0.5, link: br0, id: 5}\n")
          .find("t.yaml:9:25: vlan 'br0.5': link 'br0' is not a port, vlan or bond defined in "
                "this file"),
      std::string::npos);
}

}  // namespace

// ---- 802.3ad ------------------------------------------------------------------------------------

namespace {

using bond::kLacpActivity;
using bond::kLacpAggregation;
using bond::kLacpCollecting;
using bond::kLacpDefaulted;
using bond::kLacpDistributing;
using bond::kLacpExpired;
using bond::kLacpSync;
using bond::kLacpTimeout;
using bond::MuxState;
using bond::PortParams;
using bond::RxState;

// A scripted LACP partner (a switch): one system, one key, a port per link.
// It answers what it last heard from us on each link (echoing our actor
// information as its partner information) and claims Synchronization,
// Collecting and Distributing once it has heard us; it sends periodically
// (1 s fast / 30 s slow) and at once when what we advertise changes.
struct Partner {
  rte_ether_addr system = mac("02:00:00:00:0f:0f");
  uint16_t key = 0x21, system_priority = 0x8000, port_base = 0x100;
  bool active = true, fast = false;
  bool silent = false;                // sends nothing at all
  std::vector<int> links;             // member positions it is connected to
  std::vector<bool> stopped;          // per member position: stopped sending
  std::map<int, PortParams> heard;    // our actor info, per member position
  std::map<int, uint64_t> last_sent;  // ms
  uint8_t state(int pos) const {
    uint8_t s = kLacpAggregation | (active ? kLacpActivity : 0) | (fast ? kLacpTimeout : 0);
    if (heard.count(pos)) s |= kLacpSync | kLacpCollecting | kLacpDistributing;
    return s;
  }
};

std::vector<uint8_t> lacpdu_frame(const rte_ether_addr& src, const PortParams& actor,
                                  const PortParams& partner) {
  std::vector<uint8_t> f(14 + bond::kLacpduLen);
  const uint8_t dst[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x02};
  std::memcpy(f.data(), dst, 6);
  std::memcpy(f.data() + 6, src.addr_bytes, 6);
  f[12] = 0x88;
  f[13] = 0x09;
  bond::write_lacpdu(f.data() + 14, actor, partner);
  return f;
}

class LacpTest : public BondTest {
 protected:
  std::vector<Partner> partners;
  std::map<int, int> lacpdus_out;  // per member position: LACPDUs we sent

  config::Bond ad(std::vector<std::string> members = {"p0", "p1"}) {
    config::Bond c = cfg("802.3ad", members);
    c.xmit_hash_policy = "layer2";
    return c;
  }
  bond::Member& mem(int i) { return *b->members[static_cast<size_t>(i)]; }
  bond::AdPort& port(int i) { return mem(i).ad; }
  Partner* partner_of(int pos) {
    for (auto& p : partners)
      for (int l : p.links)
        if (l == pos) return &p;
    return nullptr;
  }
  void rx_bytes(int pos, const std::vector<uint8_t>& f) {
    rte_mbuf* m = mbuf_of(f);
    port_receive(*w, *p[pos], &m, 1);
    w->flush_free();
  }
  // One 100 ms step: our tick, what we sent reaches the partners, they answer.
  void step() {
    tick();
    drain_inject();
    for (size_t i = 0; i < sink.frames.size(); i++) {
      auto& f = sink.frames[i];
      if (f.size() < 14 + bond::kLacpduLen || f[12] != 0x88 || f[13] != 0x09 || f[14] != 1)
        continue;
      const int pos = b->member_of(sink.devs[i])->pos;
      lacpdus_out[pos]++;
      bond::Lacpdu l;
      ASSERT_TRUE(bond::parse_lacpdu(f.data() + 14, &l));
      EXPECT_EQ(std::memcmp(f.data() + 6, mem(pos).perm_mac.addr_bytes, 6), 0)
          << "LACPDUs leave with the member's own MAC";
      Partner* pt = partner_of(pos);
      if (pt == nullptr || pt->silent) continue;
      if (pt->stopped.size() > static_cast<size_t>(pos) && pt->stopped[pos]) continue;
      const bool changed = !pt->heard.count(pos) ||
                           pt->heard[pos].port_state != l.actor.port_state ||
                           pt->heard[pos].key != l.actor.key;
      pt->heard[pos] = l.actor;
      if (changed) pt->last_sent[pos] = 0;  // answer at once
    }
    sink.frames.clear();
    sink.devs.clear();
    for (auto& pt : partners) {
      if (pt.silent) continue;
      for (int pos : pt.links) {
        if (pt.stopped.size() > static_cast<size_t>(pos) && pt.stopped[pos]) continue;
        if (!pt.active && !pt.heard.count(pos)) continue;  // passive: speaks when spoken to
        const uint64_t period = pt.fast ? 1000 : 30000;
        if (pt.last_sent.count(pos) && pt.last_sent[pos] != 0 && now - pt.last_sent[pos] < period)
          continue;
        PortParams actor;
        actor.system = pt.system;
        actor.system_priority = pt.system_priority;
        actor.key = pt.key;
        actor.port_number = static_cast<uint16_t>(pt.port_base + pos);
        actor.port_priority = 0x80;
        actor.port_state = pt.state(pos);
        PortParams echo = pt.heard.count(pos) ? pt.heard[pos] : PortParams{};
        if (!pt.heard.count(pos)) {
          echo.system = rte_ether_addr{};
          echo.port_state = 0;
        }
        rx_bytes(pos, lacpdu_frame(pt.system, actor, echo));
        pt.last_sent[pos] = now;
      }
    }
  }
  void run_s(double seconds) {
    for (int i = 0; i < static_cast<int>(seconds * 10); i++) step();
  }
  bool distributing(int i) {
    return port(i).mux == MuxState::collecting_distributing && !mem(i).inactive.load() &&
           (port(i).actor_oper_state & (kLacpSync | kLacpCollecting | kLacpDistributing)) ==
               (kLacpSync | kLacpCollecting | kLacpDistributing);
  }
};

// Sync: both members reach collecting+distributing in one aggregator with
// the partner's system and key; the bond transmits over both, by the hash.
TEST_F(LacpTest, SyncBothMembers) {
  build(ad());
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  run_s(4);
  for (int i = 0; i < 2; i++) {
    SCOPED_TRACE(i);
    EXPECT_TRUE(distributing(i));
    EXPECT_EQ(port(i).rx, RxState::current);
    EXPECT_EQ(port(i).rx_timer > 800, true);  // current-while: 90 s (our lacp_rate slow)
    EXPECT_TRUE(rte_is_same_ether_addr(&port(i).partner_oper.system, &partners[0].system));
    EXPECT_EQ(port(i).partner_oper.key, 0x21);
    EXPECT_EQ(port(i).aggregator, port(0).aggregator);
    EXPECT_TRUE(port(i).aggregator->is_active);
    EXPECT_EQ(port(i).actor_oper_state & kLacpTimeout, 0);  // slow: we ask for 30 s
  }
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0, 1}));
  EXPECT_TRUE(bond0->oper_up.load());
  // layer2 hash over {p0, p1}: dst ..:02 ^ src ..:aa ^ 0x88b5 → (0xa8 ^ 0x88b5) odd → p1
  xmit(fr("02:00:00:00:00:02", 0x88b5));
  xmit(fr("02:00:00:00:00:03", 0x88b5));
  EXPECT_EQ(outs(), (V{"p1", "p0"}));
  // The partner is slow: we send every 30 s, at most 3 a second.
  lacpdus_out.clear();
  run_s(61);
  EXPECT_GE(lacpdus_out[0], 2);
  EXPECT_LE(lacpdus_out[0], 3);
  EXPECT_EQ(port(0).periodic, bond::PeriodicState::slow_periodic);
}

// BOND-04: a LACPDU is consumed by bonding on every member, in the active
// aggregator or not: taps(member) = 1, taps(bond) = 0, no drop counter.
TEST_F(LacpTest, LacpduConsumedOnEveryMember) {
  build(ad({"p0", "p1", "p2"}));
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  Partner other;
  other.system = mac("02:00:00:00:0e:0e");
  other.key = 0x33;
  other.links = {2};
  partners.push_back(other);
  run_s(4);
  EXPECT_TRUE(distributing(0));
  EXPECT_TRUE(distributing(1));
  EXPECT_FALSE(distributing(2));  // another partner: another aggregator, not the active one
  EXPECT_NE(port(2).aggregator, port(0).aggregator);
  EXPECT_FALSE(port(2).aggregator->is_active);
  EXPECT_TRUE(mem(2).inactive.load());
  EXPECT_EQ(port(2).rx, RxState::current);
  Probe* t2 = probe("p2");
  Probe* tb = probe("bond0");
  dp->net.add_tap(p[2], probe_tap, t2);
  dp->net.add_tap(bond0, probe_tap, tb);
  const uint64_t before2 = port(2).ctr.lacpdu_rx, before0 = port(0).ctr.lacpdu_rx;
  PortParams actor;
  actor.system = other.system;
  actor.key = other.key;
  actor.port_state = kLacpActivity | kLacpAggregation;
  rx_bytes(2, lacpdu_frame(other.system, actor, PortParams{}));
  rx_bytes(0, lacpdu_frame(partners[0].system, actor, PortParams{}));
  tick(10);  // the control thread drains the ring
  EXPECT_EQ(port(2).ctr.lacpdu_rx, before2 + 1);
  EXPECT_EQ(port(0).ctr.lacpdu_rx, before0 + 1);
  EXPECT_EQ(rec.of("p2").size(), 1u);
  EXPECT_EQ(rec.of("bond0").size(), 0u);
  for (int i = 0; i < 3; i++) {
    EXPECT_EQ(dp->counters(p[i]->index).rx_dropped, 0u);
    EXPECT_EQ(dp->counters(p[i]->index).rx_nohandler, 0u);
  }
  // Data on p2 (outside the active aggregator): EXACT.
  rx(p[2], fr(BOND_MAC));
  EXPECT_EQ(dp->counters(p[2]->index).rx_nohandler, 1u);
  // A truncated slow frame is illegal, another subtype unknown: both go on as frames.
  FrameSpec shortf = fr("01:80:c2:00:00:02", 0x8809);
  shortf.payload.assign(46, 0);
  shortf.payload[0] = 1;
  rx(p[0], shortf);
  FrameSpec oam = fr("01:80:c2:00:00:02", 0x8809);
  oam.payload.assign(110, 0);
  oam.payload[0] = 3;
  rx(p[0], oam);
  auto c = sys->member_counters(mem(0));
  EXPECT_EQ(c.lacpdu_illegal_rx, 1u);
  EXPECT_EQ(c.lacpdu_unknown_rx, 1u);
  EXPECT_EQ(rec.of("bond0").size(), 2u);  // they went up to the bond as ordinary frames
}

// The ring to the control thread: a loss is counted, never silent.
TEST_F(LacpTest, SlowRingLossCounted) {
  build(ad());
  PortParams actor;
  actor.system = mac("02:00:00:00:0f:0f");
  for (int i = 0; i < 513; i++) rx_bytes(0, lacpdu_frame(actor.system, actor, PortParams{}));
  EXPECT_EQ(sys->member_counters(mem(0)).slow_ring_full, 1u);
  EXPECT_EQ(drops(p[0], DropReason::bond_slow_ring_full), 1u);
  tick(10);
  EXPECT_EQ(port(0).ctr.lacpdu_rx, 512u);
}

// BOND-06: the partner stops on p1. After 90 s (slow) EXPIRED: partner
// Sync cleared, our Expired bit, a 3 s timer; 3 s later DEFAULTED; p1 leaves
// collecting/distributing, becomes inactive and leaves the usable members.
TEST_F(LacpTest, ExpiryThenDefaulted) {
  build(ad());
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  run_s(4);
  ASSERT_TRUE(distributing(1));
  partners[0].stopped = {false, true};
  run_s(88);
  EXPECT_EQ(port(1).rx, RxState::current);
  EXPECT_TRUE(distributing(1));
  run_s(3);
  EXPECT_EQ(port(1).rx, RxState::expired);
  EXPECT_EQ(port(1).partner_oper.port_state & kLacpSync, 0);
  EXPECT_NE(port(1).partner_oper.port_state & kLacpTimeout, 0);  // asked to hurry
  EXPECT_NE(port(1).actor_oper_state & kLacpExpired, 0);
  EXPECT_FALSE(distributing(1));
  EXPECT_TRUE(mem(1).inactive.load());
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0}));
  run_s(3.1);
  EXPECT_EQ(port(1).rx, RxState::defaulted);
  EXPECT_EQ(port(1).actor_oper_state & kLacpExpired, 0);
  EXPECT_NE(port(1).actor_oper_state & kLacpDefaulted, 0);
  EXPECT_TRUE(rte_is_zero_ether_addr(&port(1).partner_oper.system));
  EXPECT_TRUE(mem(1).inactive.load());
  EXPECT_TRUE(distributing(0));
  rx(p[1], fr(BOND_MAC));
  EXPECT_EQ(dp->counters(p[1]->index).rx_nohandler, 1u);
}

// lacp_rate fast: we set our Timeout bit; current-while is 3 s; a fast
// partner makes us send every second.
TEST_F(LacpTest, FastRate) {
  config::Bond c = ad();
  c.lacp_rate = "fast";
  build(c);
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  partners[0].fast = true;
  run_s(4);
  ASSERT_TRUE(distributing(0));
  EXPECT_NE(port(0).actor_oper_state & kLacpTimeout, 0);
  EXPECT_LE(port(0).rx_timer, 30);
  EXPECT_TRUE(port(0).periodic == bond::PeriodicState::fast_periodic ||
              port(0).periodic == bond::PeriodicState::periodic_tx);
  lacpdus_out.clear();
  run_s(10);
  EXPECT_GE(lacpdus_out[0], 9);
  EXPECT_LE(lacpdus_out[0], 12);
  partners[0].stopped = {true, false};
  run_s(3.2);
  EXPECT_EQ(port(0).rx, RxState::expired);
  run_s(3.2);
  EXPECT_EQ(port(0).rx, RxState::defaulted);
  EXPECT_EQ(usable(), (std::vector<uint8_t>{1}));
}

// No partner at all: EXPIRED after the first 3 s, then DEFAULTED; the
// aggregator has no partner, so its ports are enabled ("no 802.3ad
// response"): one member carries the traffic.
TEST_F(LacpTest, DefaultedWithoutPartner) {
  build(ad());
  run_s(8);
  for (int i = 0; i < 2; i++) EXPECT_EQ(port(i).rx, RxState::defaulted) << i;
  EXPECT_NE(sys->ad_active_agg(*b), nullptr);
  EXPECT_FALSE(sys->ad_active_agg(*b)->has_partner());
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0}));
  EXPECT_FALSE(mem(0).inactive.load());
  EXPECT_TRUE(mem(1).inactive.load());
  EXPECT_TRUE(bond0->oper_up.load());
  xmit(fr(PEER), 2);
  EXPECT_EQ(outs(), (V{"p0", "p0"}));
}

// Churn: the partner never synchronises → after 60 s partner churn is
// detected; a member outside the active aggregator is actor-churned too.
TEST_F(LacpTest, ChurnDetection) {
  build(ad());
  run_s(59);
  EXPECT_EQ(port(0).churn_partner, bond::ChurnState::monitor);
  run_s(3);
  EXPECT_EQ(port(0).churn_partner, bond::ChurnState::churn);
  EXPECT_EQ(port(0).churn_partner_count, 1u);
  EXPECT_EQ(port(0).churn_actor, bond::ChurnState::no_churn);  // ATTACHED in the active aggregator
  EXPECT_EQ(port(1).churn_actor, bond::ChurnState::churn);
  EXPECT_EQ(port(1).churn_actor_count, 1u);
  // A synchronised pair shows no churn.
  SetUp();
  build(ad());
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  run_s(62);
  EXPECT_EQ(port(0).churn_actor, bond::ChurnState::no_churn);
  EXPECT_EQ(port(0).churn_partner, bond::ChurnState::no_churn);
}

// Aggregator change: p0, p1 with partner X (active), p2 with partner Y.
// X goes away: p0 and p1 expire and default, and p2's aggregator (with an
// answering partner) becomes the active one.
TEST_F(LacpTest, AggregatorChange) {
  config::Bond c = ad({"p0", "p1", "p2"});
  c.lacp_rate = "fast";
  build(c);
  Partner x;
  x.fast = true;
  x.links = {0, 1};
  Partner y;
  y.fast = true;
  y.system = mac("02:00:00:00:0e:0e");
  y.links = {2};
  partners = {x, y};
  run_s(4);
  ASSERT_TRUE(distributing(0));
  ASSERT_TRUE(distributing(1));
  EXPECT_FALSE(distributing(2));
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0, 1}));
  partners[0].stopped = {true, true};
  run_s(10);
  EXPECT_EQ(port(0).rx, RxState::defaulted);
  EXPECT_TRUE(distributing(2));
  EXPECT_TRUE(port(2).aggregator->is_active);
  EXPECT_EQ(usable(), (std::vector<uint8_t>{2}));
  EXPECT_TRUE(mem(0).inactive.load());
  // ad_select count: with X back, its two ports outnumber Y's one; stable keeps Y.
  partners[0].stopped = {false, false};
  partners[0].heard.clear();
  run_s(6);
  EXPECT_TRUE(port(2).aggregator->is_active) << "stable keeps an active aggregator with a partner";
}

TEST_F(LacpTest, AdSelectCountPrefersMorePorts) {
  config::Bond c = ad({"p0", "p1", "p2"});
  c.lacp_rate = "fast";
  c.ad_select = "count";
  build(c);
  Partner y;  // p0 alone with Y, selected first
  y.fast = true;
  y.system = mac("02:00:00:00:0e:0e");
  y.links = {0};
  partners = {y};
  run_s(4);
  ASSERT_TRUE(distributing(0));
  Partner x;
  x.fast = true;
  x.links = {1, 2};
  partners.push_back(x);
  run_s(6);
  EXPECT_TRUE(distributing(1));
  EXPECT_TRUE(distributing(2));
  EXPECT_FALSE(distributing(0));
  EXPECT_EQ(usable(), (std::vector<uint8_t>{1, 2}));
}

// Passive/passive: neither side asks, so there is no periodic transmission;
// only the few LACPDUs our own state changes demand (NTT), then silence.
TEST_F(LacpTest, PassivePassive) {
  config::Bond c = ad();
  c.lacp_active = false;
  build(c);
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  partners[0].active = false;
  partners[0].silent = true;
  run_s(10);
  EXPECT_EQ(port(0).periodic, bond::PeriodicState::no_periodic);
  EXPECT_EQ(port(0).actor_oper_state & kLacpActivity, 0);
  const int sent = lacpdus_out[0];
  run_s(60);
  EXPECT_EQ(lacpdus_out[0], sent);
  EXPECT_EQ(port(0).rx, RxState::defaulted);
  // Against an active partner, a passive bond answers and aggregates.
  SetUp();
  lacpdus_out.clear();
  build(c);
  partners.clear();
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  run_s(5);
  EXPECT_TRUE(distributing(0));
  EXPECT_TRUE(distributing(1));
}

// Marker responder: a Marker Information is answered with a Marker
// Response carrying the same requester fields.
TEST_F(LacpTest, MarkerResponder) {
  build(ad());
  std::vector<uint8_t> f(14 + bond::kLacpduLen, 0);
  const uint8_t dst[6] = {0x01, 0x80, 0xc2, 0x00, 0x00, 0x02};
  std::memcpy(f.data(), dst, 6);
  f[6] = 0x02, f[11] = 0x0f;
  f[12] = 0x88, f[13] = 0x09;
  f[14] = 2, f[15] = 1, f[16] = 1, f[17] = 16;             // marker, version, information, length
  f[18] = 0, f[19] = 7;                                    // requester port
  f[26] = 0xde, f[27] = 0xad, f[28] = 0xbe, f[29] = 0xef;  // transaction id
  drain_inject();
  outs();
  rx_bytes(0, f);
  tick(10);
  drain_inject();
  bool found = false;
  for (size_t i = 0; i < sink.frames.size(); i++) {
    auto& g = sink.frames[i];
    if (g[14] != 2) continue;
    found = true;
    EXPECT_EQ(dp->net.dev(sink.devs[i])->name, "p0");
    EXPECT_EQ(g[16], 2);  // response
    EXPECT_TRUE(std::equal(g.begin() + 17, g.begin() + 30, f.begin() + 17));
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(port(0).ctr.marker_rx, 1u);
  EXPECT_EQ(port(0).ctr.marker_tx, 1u);
  outs();
}

// A member losing its link leaves the aggregator at once (is_enabled), and LACP converges again.
TEST_F(LacpTest, LinkDownAndBack) {
  build(ad());
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  run_s(4);
  ASSERT_EQ(usable(), (std::vector<uint8_t>{0, 1}));
  carrier(1, false);
  step();
  EXPECT_EQ(mem(1).link, LinkState::down);
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0}));
  EXPECT_TRUE(mem(1).inactive.load());
  carrier(1, true);
  partners[0].heard.erase(1);
  run_s(4);
  EXPECT_TRUE(distributing(1));
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0, 1}));
}

// show lacp: actor and partner system, key, port, decoded state, machine states, PDU counts.
TEST_F(LacpTest, ShowLacp) {
  build(ad());
  partners.push_back(Partner{});
  partners[0].links = {0, 1};
  run_s(4);
  CmdResult r = cmd({"show", "lacp"});
  ASSERT_EQ(r.status, 0) << r.text;
  auto& j = r.json["bond0"]["p0"];
  EXPECT_EQ(j["mux"], "distributing");
  EXPECT_EQ(j["mux_state"], "collecting_distributing");
  EXPECT_EQ(j["rx"], "current");
  EXPECT_EQ(j["partner"]["system"], "02:00:00:00:0f:0f");
  EXPECT_EQ(j["partner"]["key"], 0x21);
  EXPECT_EQ(j["partner"]["port"], 0x100);
  EXPECT_EQ(j["actor"]["system"], BOND_MAC);
  EXPECT_EQ(j["actor"]["port"], 1);
  auto st = j["actor"]["state"];
  EXPECT_NE(std::find(st.begin(), st.end(), "activity"), st.end());
  EXPECT_NE(std::find(st.begin(), st.end(), "distributing"), st.end());
  EXPECT_GT(j["pdus"]["lacpdu_rx"].get<int>(), 0);
  EXPECT_GT(j["pdus"]["lacpdu_tx"].get<int>(), 0);
  EXPECT_EQ(cmd({"show", "bond", "bond0"}).json["bond0"]["mode"], "802.3ad");
}

}  // namespace

// ---- the ARP monitor
// ------------------------------------------------------------------------------

namespace {

constexpr const char* TARGET_MAC = "02:00:00:00:00:fe";

class ArpMonTest : public BondTest {
 protected:
  config::Bond arp(const char* mode, const char* validate) {
    config::Bond c = cfg(mode);
    c.miimon_ms.reset();
    c.arp_monitor.interval_ms = 100;
    c.arp_monitor.targets = {"192.0.2.254"};
    c.arp_monitor.validate = validate;
    auto& l3 = dp->topo.get<l3::Config>();
    l3.addresses.push_back({});
    l3.addresses.back().dev = "bond0";
    l3.addresses.back().address = "192.0.2.1/24";
    return c;
  }
  // ARP (op 1 request, 2 reply) from sip to tip as a member receives it.
  FrameSpec arp_frame(uint16_t op, const char* src_mac, const char* dst_mac, uint32_t sip,
                      uint32_t tip) {
    FrameSpec f = fr(dst_mac, 0x0806, src_mac);
    f.payload.assign(46, 0);
    uint8_t* a = f.payload.data();
    a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = static_cast<uint8_t>(op);
    rte_ether_addr sm = mac(src_mac);
    std::memcpy(a + 8, sm.addr_bytes, 6);
    std::memcpy(a + 14, &sip, 4);
    std::memcpy(a + 24, &tip, 4);
    return f;
  }
  static uint32_t ip(const char* s) {
    in_addr a{};
    inet_pton(AF_INET, s, &a);
    return a.s_addr;
  }
  // The probes the bond sent since the last call: (member, sip, tip).
  std::vector<std::tuple<std::string, uint32_t, uint32_t>> probes() {
    drain_inject();
    std::vector<std::tuple<std::string, uint32_t, uint32_t>> r;
    for (size_t i = 0; i < sink.frames.size(); i++) {
      auto& g = sink.frames[i];
      if (g[12] != 0x08 || g[13] != 0x06 || g[21] != 1) continue;
      uint32_t s, t;
      std::memcpy(&s, g.data() + 28, 4);
      std::memcpy(&t, g.data() + 38, 4);
      r.emplace_back(dp->net.dev(sink.devs[i])->name, s, t);
    }
    outs();
    return r;
  }
  // One interval in which the target answers on `reply_on` (-1: nobody) and
  // the backup sees the active member's request through the switch.
  void interval(int reply_on, int request_seen_on = -1) {
    tick();
    probes();
    if (reply_on >= 0)
      rx(p[reply_on], arp_frame(2, TARGET_MAC, BOND_MAC, ip("192.0.2.254"), ip("192.0.2.1")));
    if (request_seen_on >= 0)
      rx(p[request_seen_on],
         arp_frame(1, BOND_MAC, "ff:ff:ff:ff:ff:ff", ip("192.0.2.1"), ip("192.0.2.254")));
  }
};

// active-backup, arp_validate all: probes leave through the active member
// with the bond's address; its validated replies keep it up, the backup is
// validated by the request it sees through the switch; without replies the
// active member goes down after missed_max (2) intervals and the bond fails
// over; the new active member probes.
TEST_F(ArpMonTest, ActiveBackupValidated) {
  build(arp("active-backup", "all"));
  EXPECT_EQ(b->miimon_ms, 0u);
  ASSERT_EQ(active(), "p0");
  probes();  // the first run's, at build
  tick();
  auto pr = probes();
  ASSERT_EQ(pr.size(), 1u);
  EXPECT_EQ(std::get<0>(pr[0]), "p0");
  EXPECT_EQ(std::get<1>(pr[0]), ip("192.0.2.1"));
  EXPECT_EQ(std::get<2>(pr[0]), ip("192.0.2.254"));
  for (int i = 0; i < 20; i++) interval(0, 1);
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(link(1), LinkState::up);
  EXPECT_EQ(active(), "p0");
  EXPECT_GT(sys->member_counters(mem_(0)).arp_validated, 15u);
  EXPECT_GT(sys->member_counters(mem_(1)).arp_validated, 15u);
  // A reply that is not from a target validates nothing.
  rx(p[0], arp_frame(2, TARGET_MAC, BOND_MAC, ip("192.0.2.77"), ip("192.0.2.1")));
  EXPECT_EQ(sys->member_counters(mem_(0)).arp_not_validated, 1u);
  // The path through p0 breaks (carrier stays: af_packet never reports its loss).
  interval(-1, 1);
  interval(-1, 1);
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(active(), "p0");
  interval(-1, 1);
  EXPECT_EQ(link(0), LinkState::down);
  EXPECT_EQ(active(), "p1");
  EXPECT_EQ(mem_(0).link_failure_count, 1u);
  tick();
  pr = probes();
  ASSERT_EQ(pr.size(), 1u);
  EXPECT_EQ(std::get<0>(pr[0]), "p1");
  // p1 answers; p0 comes back once it receives again (validated: the
  // request p1 sent, seen through the switch).
  for (int i = 0; i < 3; i++) interval(1, 0);
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(active(), "p1");
}

// No validation: any frame counts as a sign of life.
TEST_F(ArpMonTest, ActiveBackupUnvalidated) {
  build(arp("active-backup", "none"));
  for (int i = 0; i < 10; i++) {
    tick();
    probes();
    rx(p[0], fr(BOND_MAC));
    rx(p[1], fr("ff:ff:ff:ff:ff:ff"));
  }
  EXPECT_EQ(link(0), LinkState::up);
  EXPECT_EQ(link(1), LinkState::up);
  for (int i = 0; i < 3; i++) {
    tick();
    probes();
    rx(p[1], fr("ff:ff:ff:ff:ff:ff"));
  }
  EXPECT_EQ(link(0), LinkState::down);
  EXPECT_EQ(active(), "p1");
}

// Load-balancing modes: every member probes; one that stops receiving goes
// down (and leaves the usable array), and comes back up with traffic.
TEST_F(ArpMonTest, LoadBalance) {
  build(arp("balance-xor", "none"));
  probes();
  tick();
  auto pr = probes();
  EXPECT_EQ(pr.size(), 2u);  // one per member
  for (int i = 0; i < 5; i++) {
    tick();
    probes();
    rx(p[0], fr(BOND_MAC));
    rx(p[1], fr(BOND_MAC));
  }
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0, 1}));
  for (int i = 0; i < 3; i++) {
    tick();
    probes();
    rx(p[0], fr(BOND_MAC));
  }
  EXPECT_EQ(link(1), LinkState::down);
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0}));
  tick();
  probes();
  rx(p[1], fr(BOND_MAC));
  rx(p[0], fr(BOND_MAC));
  tick();
  probes();
  EXPECT_EQ(link(1), LinkState::up);
  EXPECT_EQ(usable(), (std::vector<uint8_t>{0, 1}));
}

}  // namespace
