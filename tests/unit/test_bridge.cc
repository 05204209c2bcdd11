// The bridge on synthetic mbufs (spec §4, cases BR-01…BR-12 of §8.4): flood
// and learn, moves, ageing with a fake clock, every link-local address, every
// STP state, flood sets, hairpin, local delivery and pkt_type, VLAN ingress
// and egress, hook call sites and order, br_dev_xmit, the inject path, the
// FDB limit, the CLI, and bursts that mix all of these. Topology T3: br0 with
// p0, p1, p2 (MACs ..:01/..:02/..:03) added in that order; br0 MAC = ..:01.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include <rte_mempool.h>

#include "bridge/bridge.hh"
#include "bridge/config.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/netif.hh"
#include "hooks/hooks.hh"
#include "support/frames.hh"

using namespace sluice;
using namespace sluice::test;
using sluice::bridge::Bridge;
using sluice::bridge::BridgeSys;
using sluice::bridge::PortState;

namespace {

constexpr const char* A0 = "02:00:00:00:00:a0";
constexpr const char* B0 = "02:00:00:00:00:b0";
constexpr const char* C0 = "02:00:00:00:00:c0";
constexpr const char* BR_MAC = "02:00:00:00:00:01";

class BridgeTest : public ::testing::Test {
 protected:
  std::unique_ptr<Dataplane> dp;
  Worker* w = nullptr;
  XmitSink sink;
  Recorder rec;
  Device* p[3] = {};
  Device* br0 = nullptr;
  BridgeSys* sys = nullptr;
  Bridge* br = nullptr;
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
    if (sys != nullptr) sys->run(now);  // BPDUs queued for the control thread
    w->flush_free();
    dp.reset();
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }

  config::Bridge t3() {
    config::Bridge b;
    b.name = "br0";
    b.ports = {"p0", "p1", "p2"};
    return b;
  }
  void build(config::Bridge b) {
    dp->topo.get<bridge::Config>().bridges = {b};
    bridge::setup(*dp);
    sys = &dp->feature<BridgeSys>();
    sys->pool = pool();  // for the BPDUs the control side sends
    br = sys->find("br0");
    ASSERT_NE(br, nullptr);
    br0 = br->dev;
    sys->run(now);
  }
  void tick(uint64_t dt = 20) {
    now += dt;
    sys->run(now);
  }
  Probe* probe(const std::string& who) {
    probes.push_back(std::make_unique<Probe>(Probe{&rec, who}));
    return probes.back().get();
  }
  void rx(Device* d, std::vector<rte_mbuf*> v) {
    port_receive(*w, *d, v.data(), static_cast<uint16_t>(v.size()));
    w->flush_free();
  }
  void rx(Device* d, const FrameSpec& f) { rx(d, std::vector<rte_mbuf*>{frame(f)}); }
  FrameSpec fr(const char* src, const char* dst, uint16_t type = 0x0800) {
    FrameSpec f;
    f.src = src;
    f.dst = dst;
    f.type = type;
    return f;
  }
  // Names of the devices the sink saw, in order; clears the sink.
  std::vector<std::string> outs() {
    std::vector<std::string> r;
    for (uint16_t d : sink.devs) r.push_back(dp->net.dev(d)->name);
    sink.frames.clear();
    sink.devs.clear();
    return r;
  }
  uint64_t drops(Device* d, DropReason r) { return w->drops[d->index][static_cast<unsigned>(r)]; }
  bridge::FdbEntry* fdb(const char* m, uint16_t vid = 0) { return br->fdb->lookup(mac(m), vid); }
  uint16_t fdb_port(const char* m, uint16_t vid = 0) {
    auto* e = fdb(m, vid);
    return e == nullptr ? kNoDev : e->port.load();
  }
  CmdResult cmd(std::vector<std::string> argv) {
    return CommandRegistry::instance().run(*dp, argv);
  }
};

using V = std::vector<std::string>;

// BR-01: unknown unicast floods newest port first, never back, no local delivery; learned.
TEST_F(BridgeTest, UnknownUnicastFloodsAndLearns) {
  build(t3());
  Probe* pr = probe("ip");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, pr, "ip");
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
  EXPECT_TRUE(rec.seen.empty());
  EXPECT_EQ(w->c(br0->index).rx_packets, 0u);
  tick();
  EXPECT_EQ(fdb_port(A0), p[0]->index);
  EXPECT_FALSE(fdb(A0)->is_static());
  // The reply is forwarded to p0 only; B0 is learned on p2.
  rx(p[2], fr(B0, A0));
  EXPECT_EQ(outs(), (V{"p0"}));
  tick();
  EXPECT_EQ(fdb_port(B0), p[2]->index);
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(outs(), (V{"p2"}));
  auto c = sys->counters(*br);
  EXPECT_EQ(c.flooded, 1u);
  EXPECT_EQ(c.forwarded, 2u);
  EXPECT_EQ(br->learned, 2u);
  // `clear stats` zeroes what `show bridge` prints; counting goes on.
  dp->clear_stats();
  EXPECT_EQ(sys->counters(*br).forwarded, 0u);
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(outs(), (V{"p2"}));
  EXPECT_EQ(sys->counters(*br).forwarded, 1u);
  EXPECT_EQ(sys->counters(*br).flooded, 0u);
}

// BR-03: broadcast: copies on p2 and p1, then local delivery on br0 (dev and orig_dev = br0).
TEST_F(BridgeTest, BroadcastFloodsThenDeliversLocally) {
  build(t3());
  Probe* tap = probe("tap");
  dp->net.add_tap(nullptr, probe_tap, tap);
  Probe* arp = probe("arp");
  dp->net.add_ptype(0x0806, nullptr, probe_proto, arp, "arp");
  rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff", 0x0806));
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
  auto taps = rec.of("tap");
  ASSERT_EQ(taps.size(), 4u);  // taps(any) = 4: in p0, out p2, out p1, in br0
  EXPECT_EQ(taps[0].dev, p[0]->index);
  EXPECT_EQ(taps[0].dir, Direction::ingress);
  EXPECT_EQ(taps[1].dev, p[2]->index);
  EXPECT_EQ(taps[1].dir, Direction::egress);
  EXPECT_EQ(taps[2].dev, p[1]->index);
  EXPECT_EQ(taps[3].dev, br0->index);
  EXPECT_EQ(taps[3].dir, Direction::ingress);
  auto a = rec.of("arp");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].dev, br0->index);
  EXPECT_EQ(a[0].orig_dev, br0->index);
  EXPECT_EQ(a[0].pkt_type, PktType::broadcast);
  EXPECT_EQ(w->c(br0->index).rx_packets, 1u);
  EXPECT_EQ(w->c(br0->index).multicast, 0u);
  // Multicast: same flood + local, and the bridge's multicast counter.
  rx(p[0], fr(A0, "01:00:5e:00:00:01"));
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
  EXPECT_EQ(w->c(br0->index).multicast, 1u);
  EXPECT_EQ(w->c(br0->index).rx_packets, 2u);
  // Both were flooded and passed up: counted in `flooded`, `local` and
  // `flooded_local` (the overlap, so that frames in = forwarded + flooded +
  // local - flooded_local + drops holds exactly; test_soak asserts it).
  auto c = sys->counters(*br);
  EXPECT_EQ(c.flooded, 2u);
  EXPECT_EQ(c.local, 2u);
  EXPECT_EQ(c.flooded_local, 2u);
  // An unknown unicast is flooded, not passed up.
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
  c = sys->counters(*br);
  EXPECT_EQ(c.flooded, 3u);
  EXPECT_EQ(c.flooded_local, 2u);
}

// Local delivery: the bridge MAC → HOST; another port's MAC → passed up, still OTHERHOST.
TEST_F(BridgeTest, LocalDeliveryAndPktType) {
  build(t3());
  Probe* ip = probe("ip");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, ip, "ip");
  rx(p[1], fr(A0, BR_MAC));
  EXPECT_TRUE(outs().empty());
  rx(p[0], fr(A0, "02:00:00:00:00:03"));  // p2's own MAC, arriving on p0
  EXPECT_TRUE(outs().empty());
  auto s = rec.of("ip");
  ASSERT_EQ(s.size(), 2u);
  EXPECT_EQ(s[0].pkt_type, PktType::host);
  EXPECT_EQ(s[0].dev, br0->index);
  EXPECT_EQ(s[1].pkt_type, PktType::otherhost);
  EXPECT_EQ(s[1].dev, br0->index);
  EXPECT_EQ(w->c(br0->index).rx_packets, 2u);
  EXPECT_EQ(sys->counters(*br).local, 2u);
  // A handler bound to the port does not see bridged traffic (orig_dev is the bridge).
  rec.seen.clear();
  Probe* onp = probe("on_p1");
  dp->net.add_ptype(0x0800, p[1], probe_proto, onp, "on_p1");
  rx(p[1], fr(A0, BR_MAC));
  EXPECT_EQ(rec.of("on_p1").size(), 0u);
  EXPECT_EQ(rec.of("ip").size(), 1u);
}

// BR-07 (c): invalid sources are dropped before anything else, and not learned.
TEST_F(BridgeTest, InvalidSourceDropped) {
  build(t3());
  rx(p[0], fr("01:00:5e:00:00:01", B0));
  rx(p[0], fr("00:00:00:00:00:00", B0));
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(p[0], DropReason::mac_invalid_source), 2u);
  tick();
  EXPECT_EQ(br->fdb->size(), 3u);  // only the local entries
}

// Every link-local address, STP off: 00 floods (+ local), 01 dropped, others PASS to the port.
TEST_F(BridgeTest, LinkLocalStpOff) {
  build(t3());
  Probe* any = probe("any");
  for (uint16_t t : {0x0004, 0x8809, 0x888e, 0x88cc, 0x88b5})
    dp->net.add_ptype(t, nullptr, probe_proto, any, "any");
  for (unsigned x = 0; x < 16; x++) {
    SCOPED_TRACE("01:80:c2:00:00:" + std::to_string(x));
    rec.seen.clear();
    char dst[32];
    std::snprintf(dst, sizeof dst, "01:80:c2:00:00:%02x", x);
    FrameSpec f = fr(A0, dst, 0x88b5);
    if (x == 0) {  // an STP BPDU: 802.3 length + LLC 42 42 03
      f.type = 38;
      f.payload[0] = f.payload[1] = 0x42;
      f.payload[2] = 0x03;
    }
    rx(p[0], f);
    if (x == 0) {
      EXPECT_EQ(outs(), (V{"p2", "p1"}));
      ASSERT_EQ(rec.seen.size(), 1u);  // and delivered on br0 (multicast, no querier)
      EXPECT_EQ(rec.seen[0].dev, br0->index);
    } else if (x == 1) {
      EXPECT_TRUE(outs().empty());
      EXPECT_TRUE(rec.seen.empty());
    } else {
      EXPECT_TRUE(outs().empty());
      ASSERT_EQ(rec.seen.size(), 1u);
      EXPECT_EQ(rec.seen[0].dev, p[0]->index);  // PASS: the port's own stack
      EXPECT_EQ(rec.seen[0].orig_dev, p[0]->index);
    }
  }
  EXPECT_EQ(drops(p[0], DropReason::bridge_pause), 1u);
  EXPECT_EQ(sys->counters(*br).link_local_pass, 14u);
  tick();
  EXPECT_EQ(fdb_port(A0), p[0]->index);  // link-local frames are learned
}

// group_fwd_mask: bridge-level bits (not 0-2) and per-port bits (not 1) make them data.
TEST_F(BridgeTest, LinkLocalGroupFwdMask) {
  auto b = t3();
  b.group_fwd_mask = (1u << 3) | (1u << 14);  // 802.1X and LLDP
  config::BridgePortSettings ps;
  ps.port = "p0";
  ps.group_fwd_mask = (1u << 2) | (1u << 1);  // LACP forwarded; pause can never be
  b.port_settings = {ps};
  build(b);
  for (unsigned x : {1u, 2u, 3u, 14u, 4u}) {
    char dst[32];
    std::snprintf(dst, sizeof dst, "01:80:c2:00:00:%02x", x);
    rx(p[0], fr(A0, dst, 0x88b5));
  }
  // 01 dropped; 02 (port mask), 03 and 0E (bridge mask) flooded; 04 PASS.
  EXPECT_EQ(outs(), (V{"p2", "p1", "p2", "p1", "p2", "p1"}));
  EXPECT_EQ(drops(p[0], DropReason::bridge_pause), 1u);
  EXPECT_EQ(sys->counters(*br).link_local_pass, 1u);
  // On p1 (no port mask) LACP is not forwarded.
  rx(p[1], fr(B0, "01:80:c2:00:00:02", 0x8809));
  EXPECT_TRUE(outs().empty());
}

// BR-05 with STP on: a BPDU is not forwarded, its source is learned, it goes to STP.
TEST_F(BridgeTest, BpduWithStpOn) {
  auto b = t3();
  b.stp = true;
  build(b);
  for (auto& port : br->ports) port->state.store(static_cast<uint8_t>(PortState::forwarding));
  FrameSpec f = fr(A0, "01:80:c2:00:00:00", 38);
  f.payload[0] = f.payload[1] = 0x42;
  f.payload[2] = 0x03;
  rx(p[0], f);
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(sys->counters(*br).bpdu_rx, 1u);
  tick();
  EXPECT_EQ(fdb_port(A0), p[0]->index);
}

// BR-07 (a), (b), (d): each STP state gates learning and forwarding.
TEST_F(BridgeTest, EachStpState) {
  build(t3());
  struct Case {
    PortState st;
    bool learns, forwards;
    DropReason reason;
  };
  const Case cases[] = {
      {PortState::disabled, false, false, DropReason::bridge_ingress_stp_state},
      {PortState::listening, false, false, DropReason::bridge_ingress_stp_state},
      {PortState::blocking, false, false, DropReason::bridge_ingress_stp_state},
      {PortState::learning, true, false, DropReason::bridge_learning_state},
      {PortState::forwarding, true, true, DropReason::not_specified},
  };
  auto& bp0 = *br->ports[0];
  for (const Case& k : cases) {
    SCOPED_TRACE(bridge::port_state_name(k.st));
    cmd({"fdb", "flush", "br0"});
    bp0.state.store(static_cast<uint8_t>(k.st));
    bp0.admin_state = k.st;
    uint64_t before = drops(p[0], k.reason);
    rx(p[0], fr(A0, B0));
    tick(200);
    EXPECT_EQ(fdb(A0) != nullptr, k.learns);
    EXPECT_EQ(!outs().empty(), k.forwards);
    if (!k.forwards) {
      EXPECT_EQ(drops(p[0], k.reason), before + 1);
    }
  }
  // (d) nothing is ever sent to a non-forwarding port.
  bp0.state.store(static_cast<uint8_t>(PortState::forwarding));
  bp0.admin_state = PortState::forwarding;
  for (PortState st :
       {PortState::disabled, PortState::listening, PortState::learning, PortState::blocking}) {
    br->ports[2]->state.store(static_cast<uint8_t>(st));
    rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff"));
    rx(p[0], fr(A0, C0));
    EXPECT_EQ(outs(), (V{"p1", "p1"})) << bridge::port_state_name(st);
  }
}

// A MAC that moves is updated in place and counted; static entries never move.
TEST_F(BridgeTest, MacMoves) {
  build(t3());
  rx(p[0], fr(A0, B0));
  tick();
  EXPECT_EQ(fdb_port(A0), p[0]->index);
  rx(p[1], fr(A0, B0));
  EXPECT_EQ(fdb_port(A0), p[1]->index);
  EXPECT_EQ(sys->counters(*br).moves, 1u);
  outs();
  rx(p[2], fr(B0, A0));
  EXPECT_EQ(outs(), (V{"p1"}));
  ASSERT_EQ(cmd({"fdb", "add", "br0", C0, "p2"}).status, 0);
  rx(p[0], fr(C0, B0));
  EXPECT_EQ(fdb_port(C0), p[2]->index);
  EXPECT_EQ(sys->counters(*br).moves, 1u);
}

// The workers' cache of verified sources never hides a move or a deletion.
TEST_F(BridgeTest, VerifiedSourceCacheInvalidation) {
  build(t3());
  rx(p[0], fr(A0, B0));
  tick();
  rx(p[0], fr(A0, B0));  // verified: cached
  rx(p[1], fr(A0, B0));  // moves to p1 (bumps the generation)
  EXPECT_EQ(fdb_port(A0), p[1]->index);
  rx(p[0], fr(A0, B0));  // back within the second: still a move
  EXPECT_EQ(fdb_port(A0), p[0]->index);
  EXPECT_EQ(sys->counters(*br).moves, 2u);
  ASSERT_EQ(cmd({"fdb", "flush", "br0"}).status, 0);
  rx(p[0], fr(A0, B0));  // learned again at once, not a second later
  tick();
  EXPECT_EQ(fdb_port(A0), p[0]->index);
  outs();
}

// BR-08: ageing on the control thread with a fake clock; static entries stay.
TEST_F(BridgeTest, AgeingWithFakeClock) {
  auto b = t3();
  b.ageing_s = 300;
  build(b);
  ASSERT_EQ(cmd({"fdb", "add", "br0", C0, "p1"}).status, 0);
  rx(p[2], fr(B0, A0));
  tick();
  const uint64_t t0 = now;
  EXPECT_EQ(fdb_port(B0), p[2]->index);
  outs();
  // Refreshed at most once a second: a frame 0.5 s later does not move updated_ms.
  now += 500;
  rx(p[2], fr(B0, A0));
  EXPECT_EQ(fdb(B0)->updated_ms.load(), t0);
  now = t0 + 299000;
  sys->run(now);
  EXPECT_NE(fdb(B0), nullptr);
  now = t0 + 300000;
  sys->run(now);
  EXPECT_EQ(fdb(B0), nullptr);
  EXPECT_EQ(br->aged, 1u);
  EXPECT_NE(fdb(C0), nullptr);  // static
  outs();
  rx(p[0], fr(A0, B0));  // unknown again: flooded
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
  // During a topology change the hold time is forward_delay (15 s).
  tick();
  rx(p[2], fr(B0, A0));
  tick();
  br->stp.topology_change = true;
  now += 15000;
  sys->run(now);
  sys->run(now + 1000);
  EXPECT_EQ(fdb(B0), nullptr);
  br->stp.topology_change = false;
}

// Hairpin: a frame for a MAC behind its own ingress port goes back only in hairpin mode.
TEST_F(BridgeTest, Hairpin) {
  auto b = t3();
  config::BridgePortSettings ps;
  ps.port = "p1";
  ps.hairpin = true;
  b.port_settings = {ps};
  build(b);
  rx(p[0], fr(A0, B0));
  rx(p[1], fr(C0, B0));
  tick();
  outs();
  rx(p[0], fr(B0, A0));  // A0 behind p0: p0 has no hairpin → dropped
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(p[0], DropReason::no_tx_target), 1u);
  rx(p[1], fr(B0, C0));  // C0 behind p1: hairpin → back out of p1
  EXPECT_EQ(outs(), (V{"p1"}));
  EXPECT_EQ(sys->counters(*br).hairpin, 1u);
  rx(p[1], fr(B0, "ff:ff:ff:ff:ff:ff"));  // floods include the hairpin ingress port
  EXPECT_EQ(outs(), (V{"p2", "p1", "p0"}));
  // A burst asks should_deliver once per run of one (port, VID): each frame
  // still gets its own port's answer, in either order.
  std::vector<rte_mbuf*> burst;
  for (int rep = 0; rep < 3; rep++) {
    burst.push_back(frame(fr(B0, A0)));  // A0 behind p0 itself, no hairpin: dropped
    burst.push_back(frame(fr(B0, A0)));
    burst.push_back(frame(fr(B0, C0)));  // C0 behind p1: out of p1
  }
  rx(p[0], burst);
  EXPECT_EQ(outs(), (V{"p1", "p1", "p1"}));
  EXPECT_EQ(drops(p[0], DropReason::no_tx_target), 1u + 6u);
  burst.clear();
  for (int rep = 0; rep < 3; rep++) {
    burst.push_back(frame(fr(B0, C0)));  // from p1 to C0 behind p1: hairpin, back out
    burst.push_back(frame(fr(B0, A0)));  // A0 behind p0: out of p0
  }
  rx(p[1], burst);
  EXPECT_EQ(outs(), (V{"p1", "p1", "p1", "p0", "p0", "p0"}));  // staged per port
  EXPECT_EQ(sys->counters(*br).hairpin, 1u + 3u);
}

// Flood sets follow the per-port flood / mcast_flood / bcast_flood flags.
TEST_F(BridgeTest, FloodFlags) {
  auto b = t3();
  config::BridgePortSettings s1, s2;
  s1.port = "p1";
  s1.flood = false;
  s2.port = "p2";
  s2.mcast_flood = false;
  s2.bcast_flood = false;
  b.port_settings = {s1, s2};
  build(b);
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(outs(), (V{"p2"}));
  rx(p[0], fr(A0, "01:00:5e:00:00:05"));
  EXPECT_EQ(outs(), (V{"p1"}));
  rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff"));
  EXPECT_EQ(outs(), (V{"p1"}));
  // The bridge's own frames ignore mcast/bcast flags.
  rte_mbuf* m = frame(fr(BR_MAC, "ff:ff:ff:ff:ff:ff"));
  meta(m) = PktMeta{};
  dev_queue_xmit(*w, *br0, &m, 1);
  EXPECT_EQ(outs(), (V{"p2", "p1", "p0"}));
  // Learning off: nothing learned from p0.
  br->ports[0]->flags.fetch_and(~bridge::kPortLearning);
  rx(p[0], fr(C0, B0));
  tick();
  EXPECT_EQ(fdb(C0), nullptr);
}

// BR-10: VLAN filtering ingress/egress rules.
TEST_F(BridgeTest, VlanFiltering) {
  auto b = t3();
  b.vlan_filtering = true;
  config::BridgePortSettings s0, s1, s2;
  s0.port = "p0";
  s0.pvid = 10;
  s0.vlans = {10};
  s0.untagged = {10};
  s1.port = "p1";
  s1.vlans = {10};
  s2.port = "p2";
  s2.vlans = {20};
  b.port_settings = {s0, s1, s2};
  build(b);
  Probe* any = probe("any");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, any, "ip");
  // (a) untagged on p0 → VID 10 → out of p1 tagged 10, not p2, no local copy.
  rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff"));
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0][12], 0x81);
  EXPECT_EQ(sink.frames[0][13], 0x00);
  EXPECT_EQ(sink.frames[0][15], 10);
  EXPECT_EQ(outs(), (V{"p1"}));
  EXPECT_TRUE(rec.seen.empty());
  EXPECT_EQ(drops(br0, DropReason::bridge_vlan_filter), 1u);
  tick();
  EXPECT_EQ(fdb_port(A0, 10), p[0]->index);  // learned at VID 10
  // Tagged 10 on p1 to A0 → out of p0 untagged.
  FrameSpec f = fr(B0, A0);
  f.tags = {0x8100000a};
  rx(p[1], f);
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0][12], 0x08);  // untagged: the ethertype follows the MACs
  EXPECT_EQ(outs(), (V{"p0"}));
  // (b) VID 30 on p1 → dropped.
  f.tags = {0x8100001e};
  rx(p[1], f);
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(p[1], DropReason::bridge_vlan_filter), 1u);
  // (c) untagged on p1 (no PVID) → dropped.
  rx(p[1], fr(B0, A0));
  EXPECT_EQ(drops(p[1], DropReason::bridge_no_pvid), 1u);
  // Priority-tagged (VID 0) on p0 → PVID, PCP kept.
  f = fr(A0, B0);
  f.tags = {0x8100a000};
  rx(p[0], f);
  ASSERT_EQ(sink.frames.size(), 1u);  // unknown B0 at VID 10: flood to p1 only
  EXPECT_EQ(sink.frames[0][14], 0xa0);
  EXPECT_EQ(sink.frames[0][15], 10);
  outs();
  // Default VLANs: the bridge gets VID 1; an untagged frame to the bridge MAC on a
  // PVID-1 port would be delivered; here p0's PVID 10 is not the bridge's → not delivered.
  rx(p[0], fr(A0, BR_MAC));
  EXPECT_TRUE(rec.seen.empty());
}

// With filtering off, tags pass unchanged and are learned at VID 0.
TEST_F(BridgeTest, TagsUnchangedWithoutFiltering) {
  build(t3());
  FrameSpec f = fr(A0, B0);
  f.tags = {0x81000064};
  rx(p[0], f);
  ASSERT_EQ(sink.frames.size(), 2u);
  EXPECT_EQ(sink.frames[0][12], 0x81);
  EXPECT_EQ(sink.frames[0][15], 100);
  EXPECT_EQ(sink.frames[1][15], 100);
  outs();
  tick();
  EXPECT_EQ(fdb_port(A0, 0), p[0]->index);
}

struct HookLog {
  std::vector<std::string>* log;
  std::string tag;
  uint32_t verdict = SLUICE_ACCEPT;
};
// Logs the tag and the ports a bridge point's entry sees (at local_in, out
// is the bridge device, for a queued frame's resumption: not logged).
void log_hook(Worker& w, const hooks::State& st, void* priv, rte_mbuf**, uint16_t n, uint32_t* v) {
  auto* h = static_cast<HookLog*>(priv);
  for (uint16_t i = 0; i < n; i++) {
    std::string s = h->tag;
    if (st.in != kNoDev) {
      s += " in=";
      s += w.net.dev(st.in)->name;
    }
    if (st.out != kNoDev && st.point != SLUICE_BRIDGE_LOCAL_IN) {
      s += " out=";
      s += w.net.dev(st.out)->name;
    }
    h->log->push_back(s);
    v[i] = h->verdict;
  }
}

// BR-11: hook call sites and order (priority, equal priorities newest first).
TEST_F(BridgeTest, HookOrder) {
  build(t3());
  std::vector<std::string> log;
  std::vector<std::unique_ptr<HookLog>> hs;
  auto add = [&](hooks::Point pt, int pri, const std::string& tag) {
    hs.push_back(std::make_unique<HookLog>(HookLog{&log, tag}));
    return sys->hooks.add(pt, pri, tag, log_hook, hs.back().get(), hooks::Owner::builtin);
  };
  add(SLUICE_BRIDGE_PRE_ROUTING, bridge::kPriNatDstBridged, "nat-pre");
  add(SLUICE_BRIDGE_PRE_ROUTING, bridge::kPriFirst, "broute");
  add(SLUICE_BRIDGE_FORWARD, bridge::kPriFilterBridged, "filter-fwd");
  add(SLUICE_BRIDGE_POST_ROUTING, bridge::kPriNatSrc, "nat-post");
  add(SLUICE_BRIDGE_LOCAL_IN, bridge::kPriFilterBridged, "filter-in");
  add(SLUICE_BRIDGE_LOCAL_OUT, bridge::kPriNatDstOther, "nat-out");
  add(SLUICE_BRIDGE_LOCAL_OUT, bridge::kPriFilterOther, "filter-out");
  rx(p[0], fr(A0, B0));  // forwarded (flooded)
  EXPECT_EQ(log, (V{"broute in=p0", "nat-pre in=p0", "filter-fwd in=p0 out=p2", "nat-post out=p2",
                    "filter-fwd in=p0 out=p1", "nat-post out=p1"}));
  log.clear();
  rx(p[0], fr(A0, BR_MAC));  // local
  EXPECT_EQ(log, (V{"broute in=p0", "nat-pre in=p0", "filter-in in=p0"}));
  log.clear();
  tick();
  rte_mbuf* m = frame(fr(BR_MAC, A0));  // sent by the host through br0
  meta(m) = PktMeta{};
  dev_queue_xmit(*w, *br0, &m, 1);
  EXPECT_EQ(log, (V{"nat-out out=p0", "filter-out out=p0", "nat-post out=p0"}));
  log.clear();
  rx(p[0], fr(A0, "01:80:c2:00:00:03", 0x888e));  // link-local: local_in only, no bridge
  EXPECT_EQ(log, (V{"filter-in in=p0"}));
  log.clear();
  // Equal priority: the newest runs first (6.x).
  add(SLUICE_BRIDGE_PRE_ROUTING, bridge::kPriNatDstBridged, "nat-pre-2");
  rx(p[0], fr(A0, BR_MAC));
  EXPECT_EQ(log, (V{"broute in=p0", "nat-pre-2 in=p0", "nat-pre in=p0", "filter-in in=p0"}));
  outs();
}

// BR-12 and drops: broute PASSes to the port's stack; a drop verdict is counted.
TEST_F(BridgeTest, HookVerdicts) {
  build(t3());
  std::vector<std::string> log;
  HookLog broute{&log, "broute", hooks::kBroute};
  uint32_t id = sys->hooks.add(SLUICE_BRIDGE_PRE_ROUTING, bridge::kPriFirst, "broute", log_hook,
                               &broute, hooks::Owner::builtin);
  Probe* ip = probe("ip");
  dp->net.add_ptype(0x0800, nullptr, probe_proto, ip, "ip");
  rx(p[0], fr(A0, B0));
  EXPECT_TRUE(outs().empty());
  ASSERT_EQ(rec.seen.size(), 1u);
  EXPECT_EQ(rec.seen[0].dev, p[0]->index);
  EXPECT_EQ(rec.seen[0].pkt_type, PktType::otherhost);
  EXPECT_TRUE(sys->hooks.remove(id));
  HookLog drop{&log, "drop", SLUICE_DROP};
  sys->hooks.add(SLUICE_BRIDGE_FORWARD, 0, "drop", log_hook, &drop, hooks::Owner::builtin);
  rx(p[0], fr(A0, B0));
  EXPECT_TRUE(outs().empty());
  EXPECT_EQ(drops(p[2], DropReason::netfilter_drop), 1u);
  EXPECT_EQ(drops(p[1], DropReason::netfilter_drop), 1u);
}

// br_dev_xmit: FDB lookup or flood; the bridge counts tx.
TEST_F(BridgeTest, BridgeDeviceXmit) {
  build(t3());
  rx(p[1], fr(A0, B0));
  tick();
  outs();
  rte_mbuf* m[2] = {frame(fr(BR_MAC, A0)), frame(fr(BR_MAC, C0))};
  meta(m[0]) = PktMeta{};
  meta(m[1]) = PktMeta{};
  dev_queue_xmit(*w, *br0, m, 2);
  // A0 → p1; C0 unknown → every port (sent by the bridge itself). Copies are staged per
  // port for the burst and sent in flood order (newest port first).
  EXPECT_EQ(outs(), (V{"p2", "p1", "p1", "p0"}));
  EXPECT_EQ(w->c(br0->index).tx_packets, 2u);
}

// The control thread's frames reach ports through the worker's inject ring.
TEST_F(BridgeTest, InjectPath) {
  build(t3());
  rte_mbuf* m = frame(fr(BR_MAC, "01:80:c2:00:00:00", 38));
  meta(m) = PktMeta{};
  meta(m).dev = p[2]->index;
  ASSERT_TRUE(sys->inject(m));
  EXPECT_TRUE(outs().empty());
  sys->poll_inject(*w);
  EXPECT_EQ(outs(), (V{"p2"}));
}

// max_fdb_entries: learning stops at the limit and counts it.
TEST_F(BridgeTest, FdbLimit) {
  auto b = t3();
  b.max_fdb_entries = 5;  // 3 local entries (br0 shares p0's MAC) + 2
  build(b);
  for (const char* s : {A0, B0, C0, "02:00:00:00:00:d0"}) rx(p[0], fr(s, "ff:ff:ff:ff:ff:ff"));
  tick();
  outs();
  EXPECT_EQ(br->fdb->size(), 5u);
  EXPECT_EQ(br->learned, 2u);
  EXPECT_EQ(br->fdb_full, 2u);
}

// Without carrier a port is DISABLED (STP off too) and its learned entries go;
// with carrier back it forwards at once (br_port_carrier_check).
TEST_F(BridgeTest, CarrierLossDisablesPort) {
  build(t3());
  rx(p[2], fr(B0, A0));
  tick();
  outs();
  EXPECT_EQ(fdb_port(B0), p[2]->index);
  p[2]->oper_up.store(false);
  tick();
  EXPECT_EQ(br->ports[2]->get_state(), PortState::disabled);
  EXPECT_EQ(fdb(B0), nullptr);
  rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff"));
  EXPECT_EQ(outs(), (V{"p1"}));
  EXPECT_EQ(w->c(p[2]->index).tx_dropped, 0u);
  p[2]->oper_up.store(true);
  tick();
  EXPECT_EQ(br->ports[2]->get_state(), PortState::forwarding);
  rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff"));
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
}

// A VLAN sub-device can be a bridge port: tagged frames reach the bridge
// through VLAN demux, frames leave through vlan_xmit (tag pushed) on the lower port.
TEST_F(BridgeTest, VlanSubDeviceAsPort) {
  std::string err;
  Device* v = dp->net.add_vlan(*p[0], "p0.100", 100, 0x8100, &err);
  ASSERT_NE(v, nullptr) << err;
  auto b = t3();
  b.ports = {"p0.100", "p1"};
  build(b);
  FrameSpec f = fr(A0, B0);
  f.tags = {0x81000064};
  rx(p[0], f);  // on p0 with tag 100 → p0.100 → bridge → p1 untagged
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0][12], 0x08);
  EXPECT_EQ(outs(), (V{"p1"}));
  tick();
  EXPECT_EQ(fdb_port(A0), v->index);
  rx(p[1], fr(B0, A0));  // back: bridge → p0.100 → tag 100 → p0
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.frames[0][12], 0x81);
  EXPECT_EQ(sink.frames[0][15], 100);
  EXPECT_EQ(outs(), (V{"p0"}));
  rx(p[0], fr(A0, B0));  // untagged on p0: not the bridge's (p0 is not a port)
  EXPECT_TRUE(outs().empty());
}

// br_manage_promisc: a non-promiscuous port (and a VLAN port's lower device)
// becomes promiscuous when enslaved, so unicast for other hosts is bridged.
TEST_F(BridgeTest, PortsBecomePromiscuous) {
  p[0]->promiscuous = false;
  p[1]->promiscuous = false;
  std::string err;
  ASSERT_NE(dp->net.add_vlan(*p[1], "p1.7", 7, 0x8100, &err), nullptr) << err;
  auto b = t3();
  b.ports = {"p0", "p1.7", "p2"};
  build(b);
  EXPECT_TRUE(p[0]->promiscuous);
  EXPECT_TRUE(p[1]->promiscuous);
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(outs(), (V{"p2", "p1"}));
  EXPECT_EQ(drops(p[0], DropReason::mac_filter), 0u);
}

// The CLI: show fdb / show bridge / show devices JSON, fdb add/del/flush.
TEST_F(BridgeTest, Commands) {
  build(t3());
  rx(p[1], fr(A0, B0));
  tick();
  outs();
  ASSERT_EQ(cmd({"fdb", "add", "br0", C0, "p2", "vlan", "5"}).status, 0);
  auto r = cmd({"show", "fdb", "br0"});
  ASSERT_EQ(r.status, 0) << r.text;
  ASSERT_TRUE(r.json.is_array());
  bool saw_a0 = false, saw_c0 = false;
  for (auto& e : r.json) {
    if (e["mac"] == A0) {
      saw_a0 = true;
      EXPECT_EQ(e["port"], "p1");
      EXPECT_EQ(e["vlan"], 0);
      EXPECT_EQ(e["static"], false);
      EXPECT_TRUE(e["age_s"].is_number_integer());
    }
    if (e["mac"] == C0) {
      saw_c0 = true;
      EXPECT_EQ(e["static"], true);
      EXPECT_EQ(e["vlan"], 5);
    }
  }
  EXPECT_TRUE(saw_a0 && saw_c0) << r.json.dump();
  r = cmd({"show", "bridge", "br0"});
  ASSERT_EQ(r.status, 0);
  EXPECT_EQ(r.json["name"], "br0");
  EXPECT_EQ(r.json["ports"]["p1"]["state"], "forwarding");
  EXPECT_EQ(r.json["mac"], BR_MAC);
  r = cmd({"show", "devices"});
  EXPECT_EQ(r.json["p0"]["master"], "br0");
  EXPECT_EQ(r.json["br0"]["kind"], "bridge");
  EXPECT_EQ(r.json["p0"]["rx_handler"], "bridge");
  EXPECT_EQ(r.json["p0"]["promiscuous"], true);
  EXPECT_EQ(cmd({"fdb", "del", "br0", C0, "p2", "vlan", "5"}).status, 0);
  EXPECT_EQ(fdb(C0, 5), nullptr);
  EXPECT_NE(cmd({"fdb", "del", "br0", C0, "p2"}).status, 0);
  EXPECT_NE(cmd({"fdb", "add", "br0", "zz", "p2"}).status, 0);
  EXPECT_NE(cmd({"fdb", "add", "br0", C0, "nope"}).status, 0);
  EXPECT_NE(cmd({"show", "fdb", "nobr"}).status, 0);
  r = cmd({"fdb", "flush", "br0"});
  EXPECT_EQ(r.json["flushed"], 1);
  EXPECT_EQ(fdb(A0), nullptr);
  EXPECT_EQ(br->fdb->size(), 3u);
}

// A burst that mixes known, unknown, broadcast, pause, invalid source, local and
// link-local frames: each gets its own fate, no mbuf leaks.
TEST_F(BridgeTest, MixedBurst) {
  build(t3());
  rx(p[2], fr(B0, A0));
  tick();
  outs();
  Probe* any = probe("any");
  for (uint16_t t : {0x0800, 0x0806, 0x88b5, 0x8808})
    dp->net.add_ptype(t, nullptr, probe_proto, any, "any");
  std::vector<rte_mbuf*> burst;
  for (int rep = 0; rep < 4; rep++) {
    burst.push_back(frame(fr(A0, B0)));                           // known → p2
    burst.push_back(frame(fr(A0, C0)));                           // unknown → p2, p1
    burst.push_back(frame(fr(A0, "ff:ff:ff:ff:ff:ff", 0x0806)));  // → p2, p1, local
    burst.push_back(frame(fr(A0, "01:80:c2:00:00:01", 0x8808)));  // pause: dropped
    burst.push_back(frame(fr("00:00:00:00:00:00", B0)));          // invalid source
    burst.push_back(frame(fr(A0, BR_MAC)));                       // local
    burst.push_back(frame(fr(A0, "01:80:c2:00:00:05", 0x88b5)));  // PASS on p0
    burst.push_back(frame(fr(A0, "02:00:00:00:00:02")));          // p1's MAC: local
  }
  rx(p[0], burst);
  auto o = outs();
  EXPECT_EQ(std::count(o.begin(), o.end(), "p2"), 4 * 3);
  EXPECT_EQ(std::count(o.begin(), o.end(), "p1"), 4 * 2);
  EXPECT_EQ(std::count(o.begin(), o.end(), "p0"), 0);
  EXPECT_EQ(drops(p[0], DropReason::bridge_pause), 4u);
  EXPECT_EQ(drops(p[0], DropReason::mac_invalid_source), 4u);
  int on_br = 0, on_p0 = 0;
  for (auto& s : rec.of("any")) (s.dev == br0->index ? on_br : on_p0)++;
  EXPECT_EQ(on_br, 4 * 3);
  EXPECT_EQ(on_p0, 4);
  EXPECT_EQ(w->c(br0->index).rx_packets, 12u);
}

// Measures the bridge path (eth_type_trans → br_handle_frame → FDB bulk
// lookup → dev_queue_xmit) on 64-byte frames from 1024 learned source MACs
// to 1024 learned destinations, bursts of 32, one worker. Prints cycles per
// packet; asserts only that every frame went out of the right port.
uint64_t g_sent = 0;
void free_xmit(Worker&, Device&, rte_mbuf** pkts, uint16_t n) {
  g_sent += n;
  rte_pktmbuf_free_bulk(pkts, n);
}

TEST_F(BridgeTest, BurstCost) {
  build(t3());
  for (auto* d : p) d->xmit = free_xmit;
  auto mac_n = [](unsigned side, unsigned i) {
    char b[32];
    std::snprintf(b, sizeof b, "02:%02x:00:00:%02x:%02x", side, (i >> 8) & 0xff, i & 0xff);
    return std::string(b);
  };
  // Learn 1024 hosts on p0 and 1024 on p1.
  for (unsigned i = 0; i < 1024; i += 32) {
    std::vector<rte_mbuf*> a, b;
    for (unsigned j = 0; j < 32; j++) {
      a.push_back(frame(fr(mac_n(0xa, i + j).c_str(), "ff:ff:ff:ff:ff:ff")));
      b.push_back(frame(fr(mac_n(0xb, i + j).c_str(), "ff:ff:ff:ff:ff:ff")));
    }
    rx(p[0], a);
    rx(p[1], b);
    tick();
  }
  ASSERT_EQ(br->fdb->size(), 3u + 2048u);
  Probe* sinkp = probe("drop");  // the broadcasts' local copies
  (void)sinkp;
  // Templates: 64-byte frames p0 → p1.
  std::vector<rte_mbuf*> tmpl;
  for (unsigned i = 0; i < 1024; i++) {
    FrameSpec f = fr(mac_n(0xa, i).c_str(), mac_n(0xb, (i * 7) & 1023).c_str(), 0x88b5);
    f.payload.assign(50, 0x5a);
    tmpl.push_back(frame(f));
  }
  g_sent = 0;
  const unsigned kBursts = 8192;
  uint64_t cycles = 0;
  for (unsigned b = 0; b < kBursts; b++) {
    rte_mbuf* burst[32];
    for (unsigned j = 0; j < 32; j++) {
      rte_mbuf* t = tmpl[(b * 32 + j) & 1023];
      burst[j] = rte_pktmbuf_copy(t, pool(), 0, UINT32_MAX);
    }
    if (b % 64 == 0) now += 50, sys->now_ms.store(now);  // the clock moves: refresh writes happen
    uint64_t t0 = rte_rdtsc();
    port_receive(*w, *p[0], burst, 32);
    w->flush_free();
    cycles += rte_rdtsc() - t0;
  }
  for (auto* t : tmpl) rte_pktmbuf_free(t);
  EXPECT_EQ(g_sent, uint64_t(kBursts) * 32);
  EXPECT_EQ(sys->counters(*br).forwarded, uint64_t(kBursts) * 32);
  double cpp = double(cycles) / (kBursts * 32.0);
  double mpps = rte_get_tsc_hz() / cpp / 1e6;
  std::printf(
      "[bridge] 64 B, 1024 src MACs learned, known unicast p0→p1, bursts of 32: "
      "%.1f cycles/packet (%.1f Mpps at %.2f GHz TSC, one core)\n",
      cpp, mpps, rte_get_tsc_hz() / 1e9);
}

// ---- 802.1D STP -------------------------------------------------------------------------------

// A config BPDU body (after LLC) as a peer bridge would send it.
std::vector<uint8_t> config_bpdu(uint64_t root, uint32_t cost, uint64_t bridge, uint16_t port,
                                 uint16_t age_256 = 256, uint8_t flags = 0) {
  std::vector<uint8_t> b(35, 0);
  b[4] = flags;
  for (int i = 0; i < 8; i++) b[5 + i] = uint8_t(root >> (56 - 8 * i));
  for (int i = 0; i < 4; i++) b[13 + i] = uint8_t(cost >> (24 - 8 * i));
  for (int i = 0; i < 8; i++) b[17 + i] = uint8_t(bridge >> (56 - 8 * i));
  b[25] = uint8_t(port >> 8);
  b[26] = uint8_t(port);
  auto put = [&](int o, unsigned v) {
    b[o] = uint8_t(v >> 8);
    b[o + 1] = uint8_t(v);
  };
  put(27, age_256);
  put(29, 20 * 256);
  put(31, 2 * 256);
  put(33, 15 * 256);
  return b;
}

FrameSpec bpdu_frame(const char* src, const std::vector<uint8_t>& body) {
  FrameSpec f;
  f.src = src;
  f.dst = "01:80:c2:00:00:00";
  f.type = static_cast<uint16_t>(3 + body.size());
  f.payload = {0x42, 0x42, 0x03};
  f.payload.insert(f.payload.end(), body.begin(), body.end());
  while (f.payload.size() < 46) f.payload.push_back(0);
  return f;
}

class StpTest : public BridgeTest {
 protected:
  void SetUp() override {
    BridgeTest::SetUp();
    auto b = t3();
    b.stp = true;
    build(b);
  }
  PortState state(int i) { return br->ports[i]->get_state(); }
  // Config BPDUs the bridge sent (through the worker's inject ring), by port.
  std::vector<std::pair<std::string, std::vector<uint8_t>>> sent() {
    sys->poll_inject(*w);
    std::vector<std::pair<std::string, std::vector<uint8_t>>> r;
    for (size_t i = 0; i < sink.frames.size(); i++)
      r.emplace_back(dp->net.dev(sink.devs[i])->name, sink.frames[i]);
    sink.frames.clear();
    sink.devs.clear();
    return r;
  }
  void advance(uint64_t ms) {
    for (uint64_t t = 0; t < ms; t += 100) tick(100);
  }
};

TEST_F(StpTest, RootBridgeBringsPortsUpThroughListeningAndLearning) {
  const uint64_t id = 0x8000020000000001ULL;  // priority 0x8000, MAC ..:01
  EXPECT_EQ(br->stp.bridge_id, id);
  EXPECT_EQ(br->stp.designated_root, id);
  for (int i = 0; i < 3; i++) EXPECT_EQ(state(i), PortState::listening);
  auto s = sent();
  ASSERT_EQ(s.size(), 3u);  // a config BPDU on every designated port
  for (auto& [port, f] : s) {
    EXPECT_EQ(f[0], 0x01);
    EXPECT_EQ(f[5], 0x00);
    EXPECT_EQ(f[12], 0);
    EXPECT_EQ(f[13], 38);  // 802.3 length: LLC + 35
    EXPECT_EQ(f[14], 0x42);
    EXPECT_EQ(f[20], 0x00);  // config BPDU
    EXPECT_EQ(f[22], 0x80);  // root id = our bridge id (priority 0x8000, MAC ..:01)
    EXPECT_EQ(f[29], 0x01);
    EXPECT_EQ(f[34], 0x80);  // bridge id
    EXPECT_EQ(f[42], 0x80);  // port id 0x800N
  }
  // Data is dropped while listening and not learned.
  rx(p[0], fr(A0, B0));
  EXPECT_EQ(drops(p[0], DropReason::bridge_ingress_stp_state), 1u);
  advance(15000);
  for (int i = 0; i < 3; i++) EXPECT_EQ(state(i), PortState::learning);
  advance(15000);
  for (int i = 0; i < 3; i++) EXPECT_EQ(state(i), PortState::forwarding);
  // Hello: BPDUs keep coming every 2 s.
  sent();
  advance(2100);
  EXPECT_GE(sent().size(), 3u);
  auto j = cmd({"show", "bridge", "br0"});
  EXPECT_EQ(j.json["stp_state"]["is_root"], true);
  EXPECT_EQ(j.json["ports"]["p0"]["stp"]["role"], "designated");
}

TEST_F(StpTest, SuperiorRootElectsRootPortAndBlocksTheRedundantLink) {
  const uint64_t root = 0x1000020000000099ULL;
  advance(31000);
  sent();
  // The same root heard on p0 (cost 0, port 0x8001) and on p1 (port 0x8002): p0 wins.
  rx(p[0], bpdu_frame("02:00:00:00:00:99", config_bpdu(root, 0, root, 0x8001)));
  rx(p[1], bpdu_frame("02:00:00:00:00:99", config_bpdu(root, 0, root, 0x8002)));
  tick();
  EXPECT_EQ(br->stp.designated_root, root);
  EXPECT_EQ(br->stp.root_port, 1);
  EXPECT_EQ(br->stp.root_path_cost, 100u);     // no link speed known: 100
  EXPECT_EQ(state(0), PortState::forwarding);  // root port
  EXPECT_EQ(state(1), PortState::blocking);    // alternate: the loop is cut
  EXPECT_EQ(state(2), PortState::forwarding);  // designated towards p2's segment
  // Nothing is forwarded to or from the blocked port.
  outs();
  rx(p[1], fr(A0, B0));
  EXPECT_TRUE(outs().empty());
  rx(p[0], fr(A0, "ff:ff:ff:ff:ff:ff"));
  EXPECT_EQ(outs(), (V{"p2"}));
  // Becoming non-root with a forwarding port going to blocking: a TCN goes up the root port.
  auto s = sent();
  bool tcn = false;
  for (auto& [port, f] : s)
    if (port == "p0" && f.size() >= 21 && f[20] == 0x80) tcn = true;
  EXPECT_TRUE(tcn);
  // The root's BPDUs stop: after max age the bridge is root again and p1 comes back.
  advance(21000);
  EXPECT_EQ(br->stp.designated_root, br->stp.bridge_id);
  EXPECT_NE(state(1), PortState::blocking);
}

TEST_F(StpTest, TcnOnDesignatedPortSetsTopologyChange) {
  advance(31000);
  sent();
  std::vector<uint8_t> tcn = {0, 0, 0, 0x80};
  rx(p[2], bpdu_frame("02:00:00:00:00:77", tcn));
  tick();
  EXPECT_TRUE(br->stp.topology_change);
  EXPECT_EQ(br->hold_ms(), 15000u);  // short ageing during a topology change
  auto s = sent();
  bool ack = false;
  for (auto& [port, f] : s)
    if (port == "p2" && f[20] == 0x00 && (f[21] & 0x80)) ack = true;  // TCA flag
  EXPECT_TRUE(ack);
  advance(36000);  // forward_delay + max_age
  EXPECT_FALSE(br->stp.topology_change);
}

TEST_F(StpTest, LinkDownDisablesPort) {
  advance(31000);
  p[1]->oper_up.store(false);
  tick();
  EXPECT_EQ(state(1), PortState::disabled);
  p[1]->oper_up.store(true);
  tick();
  EXPECT_EQ(state(1), PortState::listening);
}

}  // namespace
