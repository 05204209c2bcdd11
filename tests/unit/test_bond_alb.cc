// balance-alb on synthetic mbufs (spec §3.1 steps 4/6, §3.3, BOND-09): the
// members' MACs, the RLB client table (hash of the client's IP, the
// rotation over the members), the rewrite of ARP replies the bond sends,
// entries from ARP requests completed by the client's reply, the updates
// (RLB_ARP_BURST_SIZE replies, RLB_UPDATE_DELAY, the retries after a
// member failure), the MAC swap on failover, RX by the member's current
// MAC, and `show bond`. Topology: bond0 over p0, p1, p2 with their own
// MACs ..:01, ..:02, ..:03; the bond takes p0's.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <rte_mempool.h>

#include "bond/bond.hh"
#include "bond/config.hh"
#include "bridge/bridge.hh"
#include "bridge/config.hh"
#include "control/command.hh"
#include "control/metrics.hh"
#include "core/dataplane.hh"
#include "core/format.hh"
#include "core/netif.hh"
#include "support/frames.hh"

using namespace sluice;
using namespace sluice::test;
using sluice::bond::Bond;
using sluice::bond::BondSys;

namespace {

constexpr const char* M0 = "02:00:00:00:00:01";  // p0's, and the bond's
constexpr const char* M1 = "02:00:00:00:00:02";
constexpr const char* M2 = "02:00:00:00:00:03";
constexpr const char* BOND_IP = "10.0.0.1";

uint32_t ip(const char* s) {
  in_addr a{};
  inet_pton(AF_INET, s, &a);
  return a.s_addr;
}
std::string client_ip(int i) {
  return "10.0.0." + std::to_string(10 + i);
}
std::string client_mac(int i) {
  char b[32];
  snprintf(b, sizeof b, "02:00:00:00:0c:%02x", 0x10 + i);
  return b;
}

// An ARP frame: eth dst/src, op, sender hw/ip, target hw/ip.
FrameSpec arp(const std::string& dst, const std::string& src, uint16_t op, const std::string& sha,
              const std::string& sip, const std::string& tha, const std::string& tip) {
  FrameSpec f;
  f.dst = dst;
  f.src = src;
  f.type = 0x0806;
  std::vector<uint8_t> a(28, 0);
  a[1] = 1, a[2] = 0x08, a[4] = 6, a[5] = 4, a[7] = static_cast<uint8_t>(op);
  rte_ether_addr m = mac(sha.c_str());
  std::memcpy(&a[8], m.addr_bytes, 6);
  uint32_t v = ip(sip.c_str());
  std::memcpy(&a[14], &v, 4);
  m = mac(tha.c_str());
  std::memcpy(&a[18], m.addr_bytes, 6);
  v = ip(tip.c_str());
  std::memcpy(&a[24], &v, 4);
  a.resize(46, 0);
  f.payload = a;
  return f;
}

std::string mac_at(const std::vector<uint8_t>& f, size_t off) {
  rte_ether_addr a;
  std::memcpy(a.addr_bytes, f.data() + off, 6);
  return mac_to_string(a);
}
std::string ip_at(const std::vector<uint8_t>& f, size_t off) {
  char b[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, f.data() + off, b, sizeof b);
  return b;
}

class AlbTest : public ::testing::Test {
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
    const char* macs[] = {M0, M1, M2};
    for (int i = 0; i < 3; i++) {
      auto d = std::make_unique<Device>();
      d->name = std::string("p") + char('0' + i);
      d->mac = mac(macs[i]);
      d->promiscuous = false;
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
  void build(bool dynamic = true, std::vector<std::string> members = {"p0", "p1", "p2"}) {
    config::Bond c;
    c.name = "bond0";
    c.mode = "balance-alb";
    c.members = members;
    c.member_at.resize(members.size());
    c.miimon_ms = 100;
    c.tlb_dynamic_lb = dynamic;
    dp->topo.get<bond::Config>().bonds = {c};
    bond::setup(*dp);
    sys = &dp->feature<BondSys>();
    sys->pool = pool();
    b = sys->find("bond0");
    ASSERT_NE(b, nullptr);
    bond0 = b->dev;
    sys->tick(now);
    drain_inject();
    clear();
  }
  void tick(uint64_t dt = 100) {
    now += dt;
    sys->tick(now);
    drain_inject();
  }
  void drain_inject() {
    if (w->inject == nullptr) return;
    while (rte_ring_count(w->inject) != 0) inject_xmit(*w);
    w->flush_free();
  }
  void clear() {
    sink.frames.clear();
    sink.devs.clear();
  }
  std::string out_dev(size_t i) { return dp->net.dev(sink.devs.at(i))->name; }
  // The ARP frames sent (learning frames and others left out): (member, frame).
  struct Out {
    std::string dev;
    std::vector<uint8_t> f;
  };
  std::vector<Out> arps() {
    std::vector<Out> r;
    for (size_t i = 0; i < sink.frames.size(); i++)
      if (sink.frames[i][12] == 0x08 && sink.frames[i][13] == 0x06)
        r.push_back({out_dev(i), sink.frames[i]});
    return r;
  }
  // A frame as a protocol hands it down: clean metadata.
  rte_mbuf* mk(const FrameSpec& f) {
    rte_mbuf* m = frame(f);
    meta(m) = PktMeta{};
    return m;
  }
  void xmit(const FrameSpec& f) {
    rte_mbuf* m = mk(f);
    dev_queue_xmit(*w, *bond0, &m, 1);
    w->flush_free();
  }
  void rx(Device* d, const FrameSpec& f) {
    rte_mbuf* m = frame(f);
    port_receive(*w, *d, &m, 1);
    w->flush_free();
  }
  Probe* probe(const std::string& who) {
    probes.push_back(std::make_unique<Probe>(Probe{&rec, who}));
    return probes.back().get();
  }
  // The bond answers client i's request: an ARP reply as L3 builds it.
  void reply_to(int i) {
    xmit(arp(client_mac(i), M0, 2, M0, BOND_IP, client_mac(i), client_ip(i)));
  }
  const bond::RlbClient& entry(int i) {
    return b->alb->client[bond::rlb_index(ip(client_ip(i).c_str()))];
  }
  std::string member_of(int i) {
    const auto& c = entry(i);
    return c.assigned && c.pos < 3 ? p[c.pos]->name : "-";
  }
  CmdResult cmd(std::vector<std::string> argv) {
    return CommandRegistry::instance().run(*dp, argv);
  }
};

// alb_hash is _simple_hash: the XOR of the address's bytes.
TEST(BondAlbHash, XorOfTheBytes) {
  EXPECT_EQ(bond::rlb_index(ip("10.0.0.10")), 10 ^ 10);
  EXPECT_EQ(bond::rlb_index(ip("192.168.1.7")), 192 ^ 168 ^ 1 ^ 7);
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2};
  EXPECT_EQ(bond::alb_hash(v6, 16), 0x20 ^ 0x01 ^ 0x0d ^ 0xb8 ^ 2);
}

// `mode: balance-alb` loads (with tlb_dynamic_lb and primary); the ARP
// monitor is refused there with line:col, as in balance-tlb.
TEST(BondAlbConfig, LoadsAndRefuses) {
  const std::string ports =
      "ports:\n  - {name: a, device: net_null0}\n  - {name: b, device: net_null1}\n";
  auto t = config::load_string(ports +
                                   "bonds:\n  - {name: bond0, mode: balance-alb, members: [a, b], "
                                   "primary: b, tlb_dynamic_lb: false}\n",
                               "t.yaml");
  const auto& bs = t.get<bond::Config>().bonds;
  ASSERT_EQ(bs.size(), 1u);
  EXPECT_EQ(bs[0].mode, "balance-alb");
  EXPECT_FALSE(bs[0].tlb_dynamic_lb);
  std::string err = "no error";
  try {
    config::load_string(ports +
                            "bonds:\n  - {name: bond0, mode: balance-alb, members: [a, b], "
                            "arp_monitor: {interval_ms: 100, targets: [10.0.0.2]}}\n",
                        "t.yaml");
  } catch (const config::ConfigError& e) {
    err = e.what();
  }
  EXPECT_NE(err.find("t.yaml:5:"), std::string::npos) << err;
  EXPECT_NE(err.find("arp_monitor"), std::string::npos) << err;
}

// Members keep their own MACs (the active one: the bond's), are
// promiscuous, and a member whose MAC repeats another's gets a unique one.
TEST_F(AlbTest, MembersKeepDistinctMacs) {
  build();
  EXPECT_EQ(b->curr_active->dev->name, "p0");
  EXPECT_EQ(mac_to_string(bond0->mac), M0);
  EXPECT_EQ(mac_to_string(b->alb->mac[0]), M0);
  EXPECT_EQ(mac_to_string(b->alb->mac[1]), M1);
  EXPECT_EQ(mac_to_string(b->alb->mac[2]), M2);
  EXPECT_EQ(mac_to_string(p[1]->mac), M1);
  for (auto* d : p) EXPECT_TRUE(d->promiscuous);
  // RX only through the active member for broadcast; TX on every up member.
  EXPECT_FALSE(b->members[0]->inactive.load());
  EXPECT_TRUE(b->members[1]->inactive.load());
  EXPECT_EQ(b->usable.size(), 3u);
}

TEST_F(AlbTest, RepeatedMacIsMadeUnique) {
  p[1]->mac = mac(M0);  // p1 arrives with p0's MAC (the bond's)
  build();
  const std::string m1 = mac_to_string(b->alb->mac[1]);
  EXPECT_NE(m1, M0);
  EXPECT_NE(m1, M2);
  EXPECT_EQ(b->alb->mac[1].addr_bytes[0] & 0x03, 0x02);  // locally administered unicast
  EXPECT_EQ(mac_to_string(b->alb->mac[2]), M2);
}

// Three clients ARP the bond: each reply leaves through the next member of
// the rotation with that member's MAC as sender hardware (and Ethernet
// source) address; the table names client, MAC and member; a second reply
// to a client keeps its member. Each new client then gets
// RLB_ARP_BURST_SIZE (2) updates at the next tick, once.
TEST_F(AlbTest, RepliesNameTheClientsMember) {
  build();
  const char* want[] = {M0, M1, M2};
  for (int i = 0; i < 3; i++) {
    reply_to(i);
    ASSERT_EQ(sink.frames.size(), 1u);
    const auto& f = sink.frames[0];
    EXPECT_EQ(out_dev(0), p[i]->name) << i;
    EXPECT_EQ(mac_at(f, 6), want[i]) << "Ethernet source";
    EXPECT_EQ(mac_at(f, 14 + 8), want[i]) << "ARP sender hardware address";
    EXPECT_EQ(ip_at(f, 14 + 14), BOND_IP);
    EXPECT_EQ(mac_at(f, 0), client_mac(i));
    clear();
  }
  reply_to(1);  // sticky
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(out_dev(0), "p1");
  EXPECT_EQ(mac_at(sink.frames[0], 22), M1);
  clear();

  sys->tick(now + 1);  // the events reach the control thread
  drain_inject();
  for (int i = 0; i < 3; i++) {
    EXPECT_TRUE(entry(i).assigned);
    EXPECT_EQ(member_of(i), p[i]->name);
    EXPECT_EQ(mac_to_string(entry(i).mac_dst), client_mac(i));
    EXPECT_EQ(entry(i).ip_src, ip(BOND_IP));
  }
  tick();  // alb_monitor: the new entries' updates
  auto u = arps();
  ASSERT_EQ(u.size(), 6u);
  for (size_t k = 0; k < 6; k++) {
    const auto& f = u[k].f;
    const int i = f[14 + 27] - 10;  // the client's last address byte
    ASSERT_GE(i, 0);
    ASSERT_LT(i, 3);
    EXPECT_EQ(u[k].dev, p[i]->name);
    EXPECT_EQ(f[14 + 7], 2) << "reply";
    EXPECT_EQ(mac_at(f, 22), want[i]);
    EXPECT_EQ(mac_at(f, 0), client_mac(i));
    EXPECT_EQ(mac_at(f, 32), client_mac(i)) << "target hardware address";
  }
  clear();
  for (int t = 0; t < 30; t++) tick();
  EXPECT_EQ(arps().size(), 0u) << "no more updates without a change";
  EXPECT_GE(sink.frames.size(), 6u) << "learning frames, every second from each member";

  // show bond --json: the client table and the members' MACs.
  CmdResult r = cmd({"show", "bond", "bond0"});
  ASSERT_EQ(r.status, 0);
  const auto& j = r.json["bond0"];
  ASSERT_EQ(j["rlb"].size(), 3u);
  for (const auto& e : j["rlb"]) {
    const int i = std::stoi(e["ip"].get<std::string>().substr(7)) - 10;
    EXPECT_EQ(e["mac"], client_mac(i));
    EXPECT_EQ(e["member"], p[i]->name);
    EXPECT_EQ(e["member_mac"], want[i]);
    EXPECT_EQ(e["bond_ip"], BOND_IP);
  }
  EXPECT_EQ(j["members"]["p1"]["mac"], M1);
  EXPECT_EQ(j["alb"]["updates_sent"], 6);
  EXPECT_NE(r.text.find("rlb: 3 client(s)"), std::string::npos) << r.text;
  // Prometheus: clients per member, updates sent.
  const std::string m = metrics_text(*dp);
  EXPECT_NE(m.find("sluice_bond_rlb_clients{bond=\"bond0\",member=\"p1\"} 1"), std::string::npos)
      << m;
  EXPECT_NE(m.find("sluice_bond_rlb_updates_total{bond=\"bond0\"} 6"), std::string::npos);
}

// Two clients whose addresses hash alike (10.0.0.10 and 10.0.1.11: XOR 0):
// the newer takes the entry, the older goes back to the active member and
// is told the bond's MAC at once.
TEST_F(AlbTest, CollidingClientTakesTheEntry) {
  build();
  const std::string a_mac = "02:00:00:00:0c:aa", c_mac = "02:00:00:00:0c:cc";
  xmit(arp(client_mac(9), M0, 2, M0, BOND_IP, client_mac(9), "10.0.0.20"));  // → p0
  xmit(arp(a_mac, M0, 2, M0, BOND_IP, a_mac, "10.0.0.10"));                  // → p1
  ASSERT_EQ(sink.frames.size(), 2u);
  EXPECT_EQ(out_dev(1), "p1");
  sys->tick(now + 1);
  drain_inject();
  clear();
  ASSERT_EQ(bond::rlb_index(ip("10.0.1.11")), bond::rlb_index(ip("10.0.0.10")));
  xmit(arp(c_mac, M0, 2, M0, BOND_IP, c_mac, "10.0.1.11"));  // → p2, into A's entry
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(out_dev(0), "p2");
  EXPECT_EQ(mac_at(sink.frames[0], 22), M2);
  clear();
  sys->tick(now + 2);
  drain_inject();
  auto u = arps();
  ASSERT_EQ(u.size(), 2u);  // RLB_ARP_BURST_SIZE replies to A
  for (auto& o : u) {
    EXPECT_EQ(o.dev, "p0");
    EXPECT_EQ(mac_at(o.f, 0), a_mac);
    EXPECT_EQ(mac_at(o.f, 22), M0);
    EXPECT_EQ(ip_at(o.f, 38), "10.0.0.10");
  }
  const bond::RlbClient& e = b->alb->client[0];
  EXPECT_EQ(e.ip_dst, ip("10.0.1.11"));
  EXPECT_EQ(e.pos, 2);
  EXPECT_EQ(mac_to_string(e.mac_dst), c_mac);
}

// An ARP request from the bond creates the entry (the request itself keeps
// the bond's MAC as sender); the client's reply, received on any member,
// completes it; the update then waits RLB_UPDATE_DELAY (2 s).
TEST_F(AlbTest, RequestThenReplyFillsTheEntry) {
  build();
  reply_to(0);  // a first client on p0, so the request's client lands on p1
  clear();
  xmit(arp("ff:ff:ff:ff:ff:ff", M0, 1, M0, BOND_IP, "00:00:00:00:00:00", client_ip(1)));
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(out_dev(0), "p1");
  EXPECT_EQ(mac_at(sink.frames[0], 6), M1) << "sent by p1";
  EXPECT_EQ(mac_at(sink.frames[0], 22), M0) << "a request names the bond's MAC";
  clear();
  sys->tick(now + 1);
  EXPECT_EQ(member_of(1), "p1");
  EXPECT_EQ(mac_to_string(entry(1).mac_dst), "00:00:00:00:00:00");
  EXPECT_FALSE(entry(1).ntt);
  // The client's reply arrives (on the active member, as replies to a broadcast do).
  rx(p[0], arp(M0, client_mac(1), 2, client_mac(1), client_ip(1), M0, BOND_IP));
  tick();
  EXPECT_EQ(mac_to_string(entry(1).mac_dst), client_mac(1));
  EXPECT_TRUE(entry(1).ntt);
  EXPECT_EQ(arps().size(), 0u) << "the update waits for the delay";
  int ticks = 1;
  while (arps().empty() && ticks < 40) {
    tick();
    ticks++;
  }
  EXPECT_GE(ticks, 20);
  EXPECT_LE(ticks, 22);
  // Both clients' updates went out together (2 replies each): the one on
  // p1 is told p1's MAC, the one on p0 the bond's.
  auto u = arps();
  ASSERT_EQ(u.size(), 4u);
  std::map<std::string, int> per;
  for (auto& o : u) {
    const int i = o.f[14 + 27] - 10;
    EXPECT_EQ(o.dev, p[i]->name);
    EXPECT_EQ(mac_at(o.f, 22), i == 0 ? M0 : M1);
    EXPECT_EQ(mac_at(o.f, 0), client_mac(i));
    per[o.dev]++;
  }
  EXPECT_EQ(per["p0"], 2);
  EXPECT_EQ(per["p1"], 2);
}

// BOND-09 on the inactive p1: unicast to p1's MAC goes up through bond0 as
// HOST; broadcast is EXACT (rx_nohandler); unicast to another member's MAC
// is OTHERHOST.
TEST_F(AlbTest, InactiveMemberReceivesItsUnicast) {
  build();
  Probe* ipp = probe("ip");
  Probe* arpp = probe("arp");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, ipp, "ip");
  dp->net.add_ptype(0x0806, nullptr, probe_proto, arpp, "arp");
  FrameSpec f;
  f.dst = M1;
  rx(p[1], f);
  auto s = rec.of("ip");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].dev, bond0->index);
  EXPECT_EQ(s[0].orig_dev, p[1]->index);
  EXPECT_EQ(s[0].pkt_type, PktType::host);
  rec.seen.clear();
  rx(p[1], arp("ff:ff:ff:ff:ff:ff", client_mac(0), 1, client_mac(0), client_ip(0),
               "00:00:00:00:00:00", BOND_IP));
  EXPECT_EQ(rec.of("arp").size(), 0u);
  EXPECT_EQ(dp->counters(p[1]->index).rx_nohandler, 1u);
  f.dst = M2;  // p2's MAC arriving on p1
  rx(p[1], f);
  s = rec.of("ip");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].pkt_type, PktType::otherhost);
}

// A member failure moves its clients to the remaining members and tells
// them (2 replies per round, RLB_UPDATE_RETRY more rounds 2 s apart).
TEST_F(AlbTest, FailedMembersClientsMove) {
  build();
  for (int i = 0; i < 3; i++) reply_to(i);
  clear();
  tick();
  tick();
  clear();  // the new entries' first updates are out
  p[1]->oper_up.store(false);
  tick();  // MII: p1 down, its client moves
  EXPECT_NE(member_of(1), "p1");
  EXPECT_NE(member_of(1), "-");
  const std::string moved = member_of(1);
  EXPECT_EQ(member_of(0), "p0");
  EXPECT_EQ(member_of(2), "p2");
  // The updates wait for what is left of RLB_UPDATE_DELAY after the last round.
  for (int t = 0; t < 30 && arps().empty(); t++) tick();
  auto u = arps();
  ASSERT_EQ(u.size(), 2u);
  for (size_t k = 0; k < 2; k++) {
    EXPECT_EQ(u[k].dev, moved);
    EXPECT_EQ(mac_at(u[k].f, 0), client_mac(1));
    EXPECT_EQ(mac_at(u[k].f, 22), mac_to_string(moved == "p0" ? mac(M0) : mac(M2)));
  }
  // Three retries follow, each RLB_UPDATE_DELAY + 1 ticks later.
  clear();
  int rounds = 0;
  for (int t = 0; t < 120; t++) {
    const size_t before = arps().size();
    tick();
    if (arps().size() > before) rounds++;
  }
  EXPECT_EQ(rounds, 3);
  EXPECT_EQ(arps().size(), 6u);
  // The bond's transmit never uses p1 now.
  clear();
  reply_to(1);
  ASSERT_EQ(arps().size(), 1u);
  EXPECT_EQ(arps()[0].dev, moved);
  // p1 back: every client is rebalanced over the three members.
  clear();
  p[1]->oper_up.store(true);
  tick();
  tick();
  std::set<std::string> used;
  for (int i = 0; i < 3; i++) used.insert(member_of(i));
  EXPECT_EQ(used.size(), 3u);
  EXPECT_EQ(b->alb->rebalances, 2u);  // at enslave, at p1's return
}

// The active member fails: p1 takes over and swaps MACs with p0, so p1
// now receives the bond's MAC and p0 (down) carries p1's old one; p1's
// clients are told its new MAC; p0's clients moved.
TEST_F(AlbTest, FailoverSwapsMacs) {
  build();
  for (int i = 0; i < 3; i++) reply_to(i);
  tick();
  tick();
  clear();
  p[0]->oper_up.store(false);
  tick();
  EXPECT_EQ(b->curr_active->dev->name, "p1");
  EXPECT_EQ(mac_to_string(b->alb->mac[1]), M0);
  EXPECT_EQ(mac_to_string(b->alb->mac[0]), M1);
  const bond::TxView& v = *b->view.load();
  EXPECT_EQ(mac_to_string(v.mac[1]), M0);
  // Learning frames for the bond's MAC out of p1 (dst = src, ETH_P_LOOPBACK).
  bool learned = false;
  for (size_t k = 0; k < sink.frames.size(); k++)
    learned = learned || (out_dev(k) == "p1" && mac_at(sink.frames[k], 0) == M0 &&
                          mac_at(sink.frames[k], 6) == M0 && sink.frames[k][12] == 0x00 &&
                          sink.frames[k][13] == 0x60);
  EXPECT_TRUE(learned);
  for (int t = 0; t < 30 && arps().empty(); t++) tick();
  // Updates: every client now on p1 or p2 is told its member's MAC.
  EXPECT_NE(member_of(0), "p0");
  std::map<int, std::string> told;
  for (auto& o : arps()) {
    EXPECT_NE(o.dev, "p0");
    told[o.f[14 + 27] - 10] = mac_at(o.f, 22);
  }
  EXPECT_EQ(told[1], M0) << "p1's client learns p1's new MAC, the bond's";
  EXPECT_EQ(told[0], member_of(0) == "p1" ? M0 : M2);
  // RX: the bond's MAC is HOST on p1 now, p1's old MAC is not.
  Probe* ipp = probe("ip");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, ipp, "ip");
  FrameSpec f;
  f.dst = M0;
  rx(p[1], f);
  f.dst = M1;
  rx(p[1], f);
  auto s = rec.of("ip");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].pkt_type, PktType::host);
  EXPECT_EQ(s[1].pkt_type, PktType::otherhost);
  // IP leaving by p1 keeps the bond's MAC as source (p1 is the active member).
  clear();
  FrameSpec u;
  u.dst = client_mac(0);
  u.src = M0;
  xmit(u);
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(mac_at(sink.frames[0], 6), out_dev(0) == "p1" ? M0 : M2);
  EXPECT_NE(out_dev(0), "p0");
}

// IP unicast: tlb_dynamic_lb hashes the destination address's bytes (before
// the first rebalance: usable[hash % count]); a frame leaving by another
// member than the active one carries that member's MAC. Broadcast, IGMP and
// non-IP go to the active member.
TEST_F(AlbTest, IpTransmitByDestinationHash) {
  build();
  const char* macs[] = {M0, M1, M2};
  for (int last = 1; last < 12; last++) {
    FrameSpec f;
    f.dst = "02:00:00:00:0d:01";
    f.src = M0;
    std::vector<uint8_t> ipv4 = {0x45, 0, 0,  46, 0, 0, 0,  0, 64, 17,
                                 0,    0, 10, 0,  0, 1, 10, 9, 8,  static_cast<uint8_t>(last)};
    ipv4.resize(46, 0);
    f.payload = ipv4;
    xmit(f);
    ASSERT_EQ(sink.frames.size(), 1u);
    const unsigned want = static_cast<uint8_t>(10 ^ 9 ^ 8 ^ last) % 3;
    EXPECT_EQ(out_dev(0), p[want]->name) << last;
    EXPECT_EQ(mac_at(sink.frames[0], 6), macs[want]);
    clear();
  }
  FrameSpec bc;
  bc.dst = "ff:ff:ff:ff:ff:ff";
  bc.src = M0;
  xmit(bc);
  FrameSpec lldp;
  lldp.dst = "02:00:00:00:0d:01";
  lldp.type = 0x88cc;
  xmit(lldp);
  ASSERT_EQ(sink.frames.size(), 2u);
  EXPECT_EQ(out_dev(0), "p0");
  EXPECT_EQ(out_dev(1), "p0");
}

// A client behind a VLAN of the bond: its entry keeps the VLAN and the
// updates it gets are tagged.
TEST_F(AlbTest, VlanClientsUpdatesAreTagged) {
  config::Vlan vl;
  vl.name = "bond0.77";
  vl.link = "bond0";
  vl.id = 77;
  dp->topo.vlans = {vl};
  build();
  Device* sub = dp->net.find("bond0.77");
  ASSERT_NE(sub, nullptr);
  rte_mbuf* m = mk(arp(client_mac(0), M0, 2, M0, BOND_IP, client_mac(0), client_ip(0)));
  dev_queue_xmit(*w, *sub, &m, 1);
  w->flush_free();
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0][12], 0x81);
  EXPECT_EQ(sink.frames[0][15], 77);
  EXPECT_EQ(out_dev(0), "p0");
  EXPECT_EQ(mac_at(sink.frames[0], 4 + 22), M0);  // p0 first: the bond's MAC
  clear();
  m = mk(arp(client_mac(1), M0, 2, M0, BOND_IP, client_mac(1), client_ip(1)));
  dev_queue_xmit(*w, *sub, &m, 1);
  w->flush_free();
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(out_dev(0), "p1");
  EXPECT_EQ(mac_at(sink.frames[0], 4 + 22), M1);
  clear();
  sys->tick(now + 1);
  EXPECT_EQ(entry(1).vlan, 77);
  tick();
  size_t tagged = 0;
  for (size_t k = 0; k < sink.frames.size(); k++)
    if (sink.frames[k][12] == 0x81 && sink.frames[k][16] == 0x08 && sink.frames[k][17] == 0x06) {
      EXPECT_EQ(sink.frames[k][15], 77);
      tagged++;
    }
  EXPECT_EQ(tagged, 4u);  // 2 updates for each of the two clients
}

// The bond as a bridge port (§3.1 step 6): a frame HOST on a member (to its
// own MAC) reaches the bond with the bond's MAC as destination, so the
// bridge takes it as local; the bridge's ARP through the bond is not RLB's.
TEST_F(AlbTest, BridgePortGetsTheBondsMacAsDestination) {
  config::Bridge br;
  br.name = "br0";
  br.ports = {"bond0", "p2"};
  dp->topo.get<bridge::Config>().bridges = {br};
  build(true, {"p0", "p1"});
  bridge::setup(*dp);
  drain_inject();
  clear();
  Probe* tb = probe("bond0");
  dp->net.add_tap(bond0, probe_tap, tb);
  FrameSpec f;
  f.dst = M1;
  rx(p[1], f);
  auto s = rec.of("bond0");
  ASSERT_EQ(s.size(), 1u);
  ASSERT_GE(s[0].head.size(), 6u);
  EXPECT_EQ(mac_at(s[0].head, 0), M0);
  EXPECT_EQ(s[0].pkt_type, PktType::host);
  for (size_t k = 0; k < sink.frames.size(); k++) EXPECT_NE(out_dev(k), "p2") << "not forwarded";
  clear();
  reply_to(0);
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(out_dev(0), "p0");
  EXPECT_EQ(mac_at(sink.frames[0], 22), M0);
  sys->tick(now + 1);
  EXPECT_FALSE(entry(0).assigned);
  dp->find_feature<bridge::BridgeSys>()->run(now);
}

// ARP with a foreign sender (forwarded through the bond) is not RLB's: not
// rewritten, to the active member, no entry.
TEST_F(AlbTest, ForeignArpIsNotRewritten) {
  build();
  xmit(arp(client_mac(0), "02:00:00:00:0e:01", 2, "02:00:00:00:0e:01", "10.0.0.99", client_mac(0),
           client_ip(0)));
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(out_dev(0), "p0");
  EXPECT_EQ(mac_at(sink.frames[0], 22), "02:00:00:00:0e:01");
  sys->tick(now + 1);
  EXPECT_FALSE(entry(0).assigned);
}

}  // namespace
