// The receive path on synthetic mbufs: eth_type_trans, rounds, rx_handler
// results, taps, VLAN demux, protocol delivery, drop accounting, xmit.
// Spec references are to ../shared/spec/linux-rx.md.
#include <gtest/gtest.h>

#include <memory>

#include <rte_mempool.h>

#include "core/netif.hh"
#include "support/frames.hh"

using namespace sluice;
using namespace sluice::test;

namespace {

class Netif : public ::testing::Test {
 protected:
  Rcu rcu;
  Net net{rcu};
  std::unique_ptr<Worker> w;
  XmitSink sink;
  Recorder rec;
  Device* p0 = nullptr;
  Device* p1 = nullptr;
  unsigned avail_before = 0;
  std::vector<std::unique_ptr<Probe>> probes;

  void SetUp() override {
    avail_before = rte_mempool_avail_count(pool());
    w = std::make_unique<Worker>(net, 0);
    p0 = add_dev("p0", "02:00:00:00:00:01");
    p1 = add_dev("p1", "02:00:00:00:00:02");
  }
  void TearDown() override {
    w->flush_free();
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }
  Device* add_dev(const char* name, const char* m, DevKind kind = DevKind::port) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->kind = kind;
    d->mac = mac(m);
    d->xmit = sink_xmit;
    d->xmit_ctx = &sink;
    return net.add_device(std::move(d));
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
  DevCounters& c(Device* d) { return w->c(d->index); }
  uint64_t drops(Device* d, DropReason r) { return w->drops[d->index][static_cast<unsigned>(r)]; }
};

// ---- eth_type_trans (§2) -------------------------------------------------

struct ClassCase {
  const char* name;
  const char* dst;
  uint16_t type;
  std::vector<uint8_t> payload_head;
  PktType want_type;
  uint16_t want_proto;
};

TEST_F(Netif, ClassificationTable) {  // CORE-02, CORE-05 (a)-(c)
  const std::vector<ClassCase> cases = {
      {"unicast to us", "02:00:00:00:00:01", 0x0800, {}, PktType::host, 0x0800},
      {"broadcast", "ff:ff:ff:ff:ff:ff", 0x0806, {}, PktType::broadcast, 0x0806},
      {"ipv4 multicast", "01:00:5e:00:00:01", 0x0800, {}, PktType::multicast, 0x0800},
      {"ipv6 multicast", "33:33:00:00:00:01", 0x86dd, {}, PktType::multicast, 0x86dd},
      {"other host", "02:00:00:00:00:bb", 0x0800, {}, PktType::otherhost, 0x0800},
      {"802.2 LLC (length + AA AA)",
       "02:00:00:00:00:01",
       0x002e,
       {0xaa, 0xaa},
       PktType::host,
       0x0004},
      {"802.3 raw (length + FF FF)",
       "02:00:00:00:00:01",
       0x002e,
       {0xff, 0xff},
       PktType::host,
       0x0001},
      {"0x05ff is a length", "02:00:00:00:00:01", 0x05ff, {0x42, 0x42}, PktType::host, 0x0004},
      {"0x0600 is an ethertype", "02:00:00:00:00:01", 0x0600, {}, PktType::host, 0x0600},
      {"STP BPDU to link-local group",
       "01:80:c2:00:00:00",
       0x0026,
       {0x42, 0x42},
       PktType::multicast,
       0x0004},
  };
  uint16_t types[] = {0x0800, 0x0806, 0x86dd, 0x0004, 0x0001, 0x0600};
  Probe* pr = probe("h");
  for (uint16_t t : types) net.add_ptype(t, nullptr, probe_proto, pr, "probe");
  for (auto& k : cases) {
    rec.seen.clear();
    FrameSpec f;
    f.dst = k.dst;
    f.type = k.type;
    for (size_t i = 0; i < k.payload_head.size(); i++) f.payload[i] = k.payload_head[i];
    rx(p0, f);
    ASSERT_EQ(rec.seen.size(), 1u) << k.name;
    EXPECT_EQ(rec.seen[0].pkt_type, k.want_type) << k.name;
    EXPECT_EQ(rec.seen[0].protocol, k.want_proto) << k.name;
    EXPECT_EQ(rec.seen[0].dev, p0->index) << k.name;
    EXPECT_EQ(rec.seen[0].orig_dev, p0->index) << k.name;
    EXPECT_EQ(rec.seen[0].rounds, 1) << k.name;
  }
  EXPECT_EQ(c(p0).rx_packets, cases.size());
  EXPECT_EQ(c(p0).multicast, 3u);  // broadcast is not counted as multicast
  EXPECT_EQ(c(p0).rx_dropped, 0u);
}

TEST_F(Netif, TaggedFramesWithoutSubDevice) {
  Probe* pr = probe("ip");
  net.add_ptype(0x0800, nullptr, probe_proto, pr, "ip");
  FrameSpec f;
  f.tags = {0x81000064};  // VID 100, no p0.100: residual tag → OTHERHOST (§1.2 step 11)
  rx(p0, f);
  f.tags = {0x8100a000};  // priority tag (PCP 5, VID 0): treated as untagged
  rx(p0, f);
  f.tags = {0x88a80005};  // 802.1ad VID 5
  rx(p0, f);
  auto s = rec.of("ip");
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].pkt_type, PktType::otherhost);
  EXPECT_EQ(s[0].protocol, 0x0800);
  EXPECT_FALSE(s[0].vlan);
  EXPECT_EQ(s[1].pkt_type, PktType::host);
  EXPECT_EQ(s[1].protocol, 0x0800);
  EXPECT_EQ(s[2].pkt_type, PktType::otherhost);
  // The tag left the frame: the IP header follows the MAC header.
  EXPECT_EQ(s[0].m->pkt_len, 14u + 46u);
}

TEST_F(Netif, NonPromiscuousPortFiltersOtherUnicast) {
  p0->promiscuous = false;
  Probe* tap = probe("tap");
  net.add_tap(p0, probe_tap, tap);
  FrameSpec f;
  f.dst = "02:00:00:00:00:bb";
  rx(p0, f);
  f.dst = "01:00:5e:00:00:05";  // multicast still passes
  rx(p0, f);
  EXPECT_EQ(rec.of("tap").size(), 1u);
  EXPECT_EQ(c(p0).rx_packets, 1u);
  EXPECT_EQ(drops(p0, DropReason::mac_filter), 1u);
}

TEST_F(Netif, ShortFrameDropped) {
  rte_mbuf* m = rte_pktmbuf_alloc(pool());
  rte_pktmbuf_append(m, 10);
  rx(p0, std::vector<rte_mbuf*>{m});
  EXPECT_EQ(drops(p0, DropReason::pkt_too_small), 1u);
  EXPECT_EQ(c(p0).rx_dropped, 1u);
}

// ---- protocol delivery and the unhandled drop (§1.2 steps 12–13, §1.3) ----

TEST_F(Netif, UnhandledProtocolCountsRxDropped) {
  FrameSpec f;
  f.type = 0x88b5;
  rx(p0, f);
  EXPECT_EQ(c(p0).rx_dropped, 1u);
  EXPECT_EQ(c(p0).rx_nohandler, 0u);
  EXPECT_EQ(drops(p0, DropReason::unhandled_proto), 1u);
}

TEST_F(Netif, TapSuppressesUnhandledDropC2) {
  Probe* tap = probe("tap");
  net.add_tap(p0, probe_tap, tap);
  FrameSpec f;
  f.type = 0x88b5;
  rx(p0, f);
  EXPECT_EQ(rec.of("tap").size(), 1u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);  // the tap was pt_prev: delivered
  EXPECT_EQ(drops(p0, DropReason::unhandled_proto), 0u);
  // A global tap does the same.
  Probe* g = probe("any");
  net.add_tap(nullptr, probe_tap, g);
  rx(p1, f);
  EXPECT_EQ(c(p1).rx_dropped, 0u);
}

// One burst, a tap, a protocol nobody handles: the untagged frame was
// delivered to the tap (pt_prev); the frame with a tag but no VLAN device
// flushed pt_prev at the VLAN step (§1.2 step 9), so it counts rx_dropped.
// Interleaved, so the mixed vector keeps each packet's own answer.
TEST_F(Netif, TagFlushesPtPrevInAMixedBurst) {
  Probe* tap = probe("tap");
  net.add_tap(p0, probe_tap, tap);
  FrameSpec plain;
  plain.type = 0x88b5;
  FrameSpec tagged = plain;
  tagged.tags = {0x81000064};  // VID 100, no p0.100
  rx(p0, std::vector<rte_mbuf*>{frame(plain), frame(tagged), frame(plain), frame(tagged),
                                frame(tagged), frame(plain)});
  EXPECT_EQ(rec.of("tap").size(), 6u);
  EXPECT_EQ(c(p0).rx_dropped, 3u);
  EXPECT_EQ(drops(p0, DropReason::unhandled_proto), 3u);
  // All untagged: none dropped; all tagged: every one.
  rx(p0, std::vector<rte_mbuf*>{frame(plain), frame(plain)});
  EXPECT_EQ(c(p0).rx_dropped, 3u);
  rx(p0, std::vector<rte_mbuf*>{frame(tagged), frame(tagged)});
  EXPECT_EQ(c(p0).rx_dropped, 5u);
}

TEST_F(Netif, HandlersRunInLinuxOrderAndShareThePacket) {
  Probe* a = probe("base-old");
  Probe* b = probe("base-new");
  Probe* bound = probe("bound-p0");
  Probe* other = probe("bound-p1");
  net.add_ptype(0x0800, nullptr, probe_proto, a, "a");
  net.add_ptype(0x0800, nullptr, probe_proto, b, "b");
  net.add_ptype(0x0800, p0, probe_proto, bound, "bound");
  net.add_ptype(0x0800, p1, probe_proto, other, "other");
  net.add_ptype(0x86dd, nullptr, probe_proto, probe("v6"), "v6");
  rx(p0, FrameSpec{});
  ASSERT_EQ(rec.seen.size(), 3u);
  EXPECT_EQ(rec.seen[0].who, "base-new");  // ptype_base newest first
  EXPECT_EQ(rec.seen[1].who, "base-old");
  EXPECT_EQ(rec.seen[2].who, "bound-p0");   // then orig_dev's bound handlers
  EXPECT_EQ(rec.seen[0].m, rec.seen[2].m);  // one packet, shared (refcnt)
}

TEST_F(Netif, RemovedHandlerIsNotCalled) {
  Probe* a = probe("a");
  uint32_t id = net.add_ptype(0x0800, nullptr, probe_proto, a, "a");
  EXPECT_TRUE(net.remove_ptype(id));
  rx(p0, FrameSpec{});
  EXPECT_TRUE(rec.seen.empty());
  EXPECT_EQ(c(p0).rx_dropped, 1u);
  EXPECT_FALSE(net.remove_ptype(id));
}

// ---- taps (§1.2 step 5) ----------------------------------------------------

TEST_F(Netif, TapOrderNewestFirstGlobalBeforeDevice) {
  net.add_tap(p0, probe_tap, probe("dev-old"));
  net.add_tap(nullptr, probe_tap, probe("any-old"));
  net.add_tap(p0, probe_tap, probe("dev-new"));
  net.add_tap(nullptr, probe_tap, probe("any-new"));
  net.add_tap(p1, probe_tap, probe("p1"));
  rx(p0, FrameSpec{});
  ASSERT_EQ(rec.seen.size(), 4u);
  EXPECT_EQ(rec.seen[0].who, "any-new");
  EXPECT_EQ(rec.seen[1].who, "any-old");
  EXPECT_EQ(rec.seen[2].who, "dev-new");
  EXPECT_EQ(rec.seen[3].who, "dev-old");
  for (auto& s : rec.seen) EXPECT_EQ(s.dir, Direction::ingress);
}

TEST_F(Netif, RemovedTapStopsSeeing) {
  uint32_t id = net.add_tap(p0, probe_tap, probe("t"));
  rx(p0, FrameSpec{});
  EXPECT_TRUE(net.remove_tap(id));
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("t").size(), 1u);
}

// ---- rx_handler results (§1.2 step 10) ------------------------------------

struct HandlerCtl {
  RxResult result = RxResult::pass;
  uint16_t to = kNoDev;           // for ANOTHER
  std::vector<RxResult> per_pkt;  // overrides result when non-empty
  bool whole = false;             // ANOTHER for all: return `to`, write nothing per packet
  unsigned calls = 0;
  std::vector<uint16_t> burst_sizes;
};

uint16_t test_handler(Worker&, Device&, void* ctx, rte_mbuf** pkts, uint16_t n, RxResult* res) {
  auto* h = static_cast<HandlerCtl*>(ctx);
  h->calls++;
  h->burst_sizes.push_back(n);
  if (h->whole) return h->to;
  for (uint16_t i = 0; i < n; i++) {
    RxResult r = h->per_pkt.empty() ? h->result : h->per_pkt[i % h->per_pkt.size()];
    res[i] = r;
    if (r == RxResult::consumed) rte_pktmbuf_free(pkts[i]);
    if (r == RxResult::another) meta(pkts[i]).dev = h->to;
  }
  return kNoDev;
}

TEST_F(Netif, RxHandlerConsumed) {
  HandlerCtl h{RxResult::consumed};
  ASSERT_TRUE(net.set_rx_handler(*p0, test_handler, &h, "test"));
  EXPECT_FALSE(net.set_rx_handler(*p0, test_handler, &h, "second"));  // one per device (EBUSY)
  net.add_tap(p0, probe_tap, probe("tap"));
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("tap").size(), 1u);  // C-1: taps see what the handler consumes
  EXPECT_EQ(rec.of("ip").size(), 0u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);
}

TEST_F(Netif, RxHandlerAnotherMakesNewRoundOnUpperDevice) {
  Device* bond = add_dev("bond0", "02:00:00:00:00:01", DevKind::bond);
  HandlerCtl h{RxResult::another, bond->index};
  net.set_rx_handler(*p0, test_handler, &h, "bond");
  net.add_tap(p0, probe_tap, probe("tap-p0"));
  net.add_tap(bond, probe_tap, probe("tap-bond"));
  net.add_tap(nullptr, probe_tap, probe("tap-any"));
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("tap-p0").size(), 1u);
  EXPECT_EQ(rec.of("tap-bond").size(), 1u);
  EXPECT_EQ(rec.of("tap-any").size(), 2u);  // one per round
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 1u);
  EXPECT_EQ(ip[0].dev, bond->index);
  EXPECT_EQ(ip[0].orig_dev, p0->index);  // orig_dev never changes
  EXPECT_EQ(ip[0].rounds, 2);
}

// A handler that passes the whole burst on by returning the device (and
// writes nothing per packet): the same round on the upper device as
// per-packet ANOTHER — taps there, dev set, rounds counted, orig_dev kept.
TEST_F(Netif, RxHandlerWholeBurstAnotherMakesTheSameNewRound) {
  Device* bond = add_dev("bond0", "02:00:00:00:00:01", DevKind::bond);
  HandlerCtl h{RxResult::another, bond->index};
  h.whole = true;
  net.set_rx_handler(*p0, test_handler, &h, "bond");
  net.add_tap(p0, probe_tap, probe("tap-p0"));  // flushed by the rx_handler
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec arp;
  arp.type = 0x0806;  // no handler: counted on the bond, the last round's device
  std::vector<rte_mbuf*> v;
  for (int i = 0; i < 32; i++) v.push_back(frame(i % 4 == 3 ? arp : FrameSpec{}));
  rx(p0, v);
  EXPECT_EQ(h.burst_sizes, std::vector<uint16_t>{32});
  EXPECT_EQ(rec.of("tap-p0").size(), 32u);
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 24u);
  for (const Seen& s : ip) {
    EXPECT_EQ(s.dev, bond->index);
    EXPECT_EQ(s.orig_dev, p0->index);
    EXPECT_EQ(s.rounds, 2);
  }
  EXPECT_EQ(c(bond).rx_dropped, 8u);
  EXPECT_EQ(drops(bond, DropReason::unhandled_proto), 8u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);
}

// The carried round still counts rounds per packet: a device that passes
// everything back to itself stops at the round limit.
TEST_F(Netif, RxHandlerWholeBurstLoopStopsAtTheRoundLimit) {
  HandlerCtl h{RxResult::another, p0->index};
  h.whole = true;
  net.set_rx_handler(*p0, test_handler, &h, "loop");
  net.add_tap(p0, probe_tap, probe("tap"));
  rx(p0, std::vector<rte_mbuf*>{frame(FrameSpec{}), frame(FrameSpec{})});
  EXPECT_EQ(rec.of("tap").size(), 2u * kRoundLimit);
  EXPECT_EQ(drops(p0, DropReason::round_limit), 2u);
}

// A tagged frame passed on whole: its tag (held since round 1, no VLAN
// device on the member) goes to the upper device's VLAN demux (CORE-07).
TEST_F(Netif, RxHandlerWholeBurstKeepsAHeldTagForTheUpperDevice) {
  Device* bond = add_dev("bond0", "02:00:00:00:00:01", DevKind::bond);
  std::string err;
  Device* v100 = net.add_vlan(*bond, "bond0.100", 100, 0x8100, &err);
  ASSERT_NE(v100, nullptr) << err;
  HandlerCtl h{RxResult::another, bond->index};
  h.whole = true;
  net.set_rx_handler(*p0, test_handler, &h, "bond");
  net.add_tap(bond, probe_tap, probe("tap-bond"));
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec f;
  f.tags = {0x81000064};
  rx(p0, std::vector<rte_mbuf*>{frame(f), frame(FrameSpec{})});
  auto tb = rec.of("tap-bond");
  ASSERT_EQ(tb.size(), 2u);
  EXPECT_TRUE(tb[0].vlan);
  EXPECT_EQ(tb[1].dev, bond->index);  // the tap runs after the round's bookkeeping
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 2u);
  EXPECT_EQ(ip[0].dev, bond->index);  // delivered on the bond's round
  EXPECT_EQ(ip[0].rounds, 2);
  EXPECT_EQ(ip[1].dev, v100->index);  // the VLAN device's round comes after it
  EXPECT_EQ(ip[1].rounds, 3);
  EXPECT_EQ(c(v100).rx_packets, 1u);
}

TEST_F(Netif, UnhandledAfterAnotherCountsOnLastRoundDevice) {
  Device* bond = add_dev("bond0", "02:00:00:00:00:01", DevKind::bond);
  HandlerCtl h{RxResult::another, bond->index};
  net.set_rx_handler(*p0, test_handler, &h, "bond");
  FrameSpec f;
  f.type = 0x88b5;
  rx(p0, f);
  EXPECT_EQ(c(bond).rx_dropped, 1u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);
  EXPECT_EQ(drops(bond, DropReason::unhandled_proto), 1u);
}

TEST_F(Netif, RxHandlerExactReachesOnlyBoundHandlers) {
  HandlerCtl h{RxResult::exact};
  net.set_rx_handler(*p0, test_handler, &h, "inactive-member");
  net.add_ptype(0x0800, nullptr, probe_proto, probe("wild"), "wild");
  net.add_ptype(0x0800, p0, probe_proto, probe("bound"), "bound");
  net.add_ptype(0x0806, nullptr, probe_proto, probe("arp-wild"), "arp");
  net.add_tap(p0, probe_tap, probe("tap"));
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("wild").size(), 0u);
  EXPECT_EQ(rec.of("bound").size(), 1u);
  // ARP has only a wildcard handler: EXACT leaves nobody → rx_nohandler,
  // and the tap cannot suppress it (the rx_handler flushed pt_prev).
  FrameSpec arp;
  arp.type = 0x0806;
  rx(p0, arp);
  EXPECT_EQ(rec.of("arp-wild").size(), 0u);
  EXPECT_EQ(c(p0).rx_nohandler, 1u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);
  EXPECT_EQ(rec.of("tap").size(), 2u);
}

TEST_F(Netif, RxHandlerPass) {
  HandlerCtl h{RxResult::pass};
  net.set_rx_handler(*p0, test_handler, &h, "pass");
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("ip").size(), 1u);
  net.clear_rx_handler(*p0);
  rx(p0, FrameSpec{});
  EXPECT_EQ(h.calls, 1u);
  EXPECT_EQ(rec.of("ip").size(), 2u);
}

TEST_F(Netif, RoundLimitStopsDeviceLoops) {
  HandlerCtl h{RxResult::another, p0->index};  // p0 → p0 → … forever
  net.set_rx_handler(*p0, test_handler, &h, "loop");
  net.add_tap(p0, probe_tap, probe("tap"));
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("tap").size(), kRoundLimit);
  EXPECT_EQ(drops(p0, DropReason::round_limit), 1u);
}

TEST_F(Netif, BurstSizes) {
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  for (uint16_t n : {0, 1, 31, 32}) {
    rec.seen.clear();
    std::vector<rte_mbuf*> v;
    for (uint16_t i = 0; i < n; i++) v.push_back(frame(FrameSpec{}));
    port_receive(*w, *p0, v.data(), n);
    EXPECT_EQ(rec.of("ip").size(), n);
  }
  EXPECT_EQ(c(p0).rx_packets, 64u);
}

TEST_F(Netif, MixedBurstIsRegroupedPerDevice) {
  Device* up1 = add_dev("up1", "02:00:00:00:00:01", DevKind::bond);
  HandlerCtl h;
  h.to = up1->index;
  h.per_pkt = {RxResult::another, RxResult::pass, RxResult::consumed, RxResult::exact};
  net.set_rx_handler(*p0, test_handler, &h, "mix");
  HandlerCtl h2;  // on up1: everything passes
  net.set_rx_handler(*up1, test_handler, &h2, "up");
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  net.add_ptype(0x0800, p0, probe_proto, probe("ip-p0"), "ip-p0");
  std::vector<rte_mbuf*> v;
  for (int i = 0; i < 32; i++) v.push_back(frame(FrameSpec{}));
  rx(p0, v);
  EXPECT_EQ(h.burst_sizes, std::vector<uint16_t>{32});
  EXPECT_EQ(h2.burst_sizes, std::vector<uint16_t>{8});  // the 8 ANOTHER packets, one vector
  auto ip = rec.of("ip");
  auto ipb = rec.of("ip-p0");
  EXPECT_EQ(ip.size(), 16u);   // 8 PASS on p0 + 8 on up1
  EXPECT_EQ(ipb.size(), 24u);  // bound to orig_dev p0: PASS + EXACT + the up1 round
}

// ---- VLAN sub-devices (§1.2 step 9, CORE-07) ------------------------------

TEST_F(Netif, VlanSubDeviceRound) {
  std::string err;
  Device* v100 = net.add_vlan(*p0, "p0.100", 100, 0x8100, &err);
  ASSERT_NE(v100, nullptr) << err;
  net.add_tap(p0, probe_tap, probe("tap-p0"));
  net.add_tap(v100, probe_tap, probe("tap-v"));
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec f;
  f.tags = {0x81000064};
  rx(p0, f);
  auto t0 = rec.of("tap-p0");
  ASSERT_EQ(t0.size(), 1u);
  EXPECT_TRUE(t0[0].vlan);  // round 1: tag as metadata
  EXPECT_EQ(t0[0].vid, 100);
  auto tv = rec.of("tap-v");
  ASSERT_EQ(tv.size(), 1u);
  EXPECT_FALSE(tv[0].vlan);
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 1u);
  EXPECT_EQ(ip[0].dev, v100->index);
  EXPECT_EQ(ip[0].orig_dev, p0->index);
  EXPECT_EQ(ip[0].pkt_type, PktType::host);
  EXPECT_EQ(ip[0].rounds, 2);
  EXPECT_EQ(c(v100).rx_packets, 1u);
  EXPECT_EQ(c(p0).rx_packets, 1u);
}

TEST_F(Netif, VlanSubDeviceDownFreesWithoutCoreCounter) {
  std::string err;
  Device* v100 = net.add_vlan(*p0, "p0.100", 100, 0x8100, &err);
  v100->admin_up = false;
  net.add_tap(p0, probe_tap, probe("tap-p0"));
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec f;
  f.tags = {0x81000064};
  rx(p0, f);
  EXPECT_EQ(rec.of("tap-p0").size(), 1u);
  EXPECT_EQ(rec.of("ip").size(), 0u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);
  EXPECT_EQ(c(v100).rx_dropped, 0u);
  EXPECT_EQ(drops(v100, DropReason::vlan_dev_down), 1u);
}

TEST_F(Netif, VlanDeviceTurnsOtherhostIntoHostForItsMac) {
  std::string err;
  Device* v = net.add_vlan(*p0, "p0.7", 7, 0x8100, &err);
  v->mac = mac("02:00:00:00:07:07");
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec f;
  f.dst = "02:00:00:00:07:07";
  f.tags = {0x81000007};
  rx(p0, f);
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 1u);
  EXPECT_EQ(ip[0].pkt_type, PktType::host);
}

TEST_F(Netif, QinQMakesThreeRounds) {
  std::string err;
  Device* outer = net.add_vlan(*p0, "p0.10", 10, 0x88a8, &err);
  ASSERT_NE(outer, nullptr) << err;
  Device* inner = net.add_vlan(*outer, "p0.10.20", 20, 0x8100, &err);
  ASSERT_NE(inner, nullptr) << err;
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec f;
  f.tags = {0x88a8000a, 0x81000014};
  rx(p0, f);
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 1u);
  EXPECT_EQ(ip[0].dev, inner->index);
  EXPECT_EQ(ip[0].rounds, 3);
}

TEST_F(Netif, PriorityTaggedQinQRetriesDemux) {
  std::string err;
  Device* v = net.add_vlan(*p0, "p0.30", 30, 0x8100, &err);
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  FrameSpec f;
  f.tags = {0x81000000, 0x8100001e};  // priority tag, then VID 30
  rx(p0, f);
  auto ip = rec.of("ip");
  ASSERT_EQ(ip.size(), 1u);
  EXPECT_EQ(ip[0].dev, v->index);
}

TEST_F(Netif, VlanAddRejectsDuplicatesAndBadIds) {
  std::string err;
  ASSERT_NE(net.add_vlan(*p0, "p0.5", 5, 0x8100, &err), nullptr);
  EXPECT_EQ(net.add_vlan(*p0, "p0.5b", 5, 0x8100, &err), nullptr);
  EXPECT_EQ(net.add_vlan(*p0, "p0.0", 0, 0x8100, &err), nullptr);
  EXPECT_EQ(net.add_vlan(*p0, "p0.4095", 4095, 0x8100, &err), nullptr);
  EXPECT_EQ(net.add_vlan(*p1, "p0.5", 6, 0x8100, &err), nullptr);  // name taken
}

// ---- ingress actions (tc ingress, §1.2 step 6, CORE-09) -------------------

void shoot_all(Worker&, Device&, void*, rte_mbuf**, uint16_t n, ActVerdict* v) {
  for (uint16_t i = 0; i < n; i++) v[i] = ActVerdict::shot;
}

TEST_F(Netif, IngressDropAfterTapsWithoutRxDropped) {
  net.add_tap(p0, probe_tap, probe("tap"));
  net.add_action(*p0, Direction::ingress, shoot_all, nullptr, 0);
  net.add_ptype(0x0800, nullptr, probe_proto, probe("ip"), "ip");
  rx(p0, FrameSpec{});
  EXPECT_EQ(rec.of("tap").size(), 1u);
  EXPECT_EQ(rec.of("ip").size(), 0u);
  EXPECT_EQ(c(p0).rx_dropped, 0u);
  EXPECT_EQ(drops(p0, DropReason::tc_ingress), 1u);
}

// ---- transmit ---------------------------------------------------------------

TEST_F(Netif, XmitRunsEgressTapsThenDevice) {
  net.add_tap(p1, probe_tap, probe("tap"));
  rte_mbuf* m = frame(FrameSpec{});
  dev_queue_xmit(*w, *p1, &m, 1);
  auto t = rec.of("tap");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].dir, Direction::egress);
  ASSERT_EQ(sink.frames.size(), 1u);
  EXPECT_EQ(sink.devs[0], p1->index);
}

TEST_F(Netif, XmitOnVlanDevicePushesTheTag) {
  std::string err;
  Device* v = net.add_vlan(*p0, "p0.100", 100, 0x8100, &err);
  net.add_tap(v, probe_tap, probe("tap-v"));
  net.add_tap(p0, probe_tap, probe("tap-p0"));
  rte_mbuf* m = frame(FrameSpec{});
  dev_queue_xmit(*w, *v, &m, 1);
  ASSERT_EQ(sink.frames.size(), 1u);
  auto& fr = sink.frames[0];
  ASSERT_GE(fr.size(), 18u);
  EXPECT_EQ(fr[12], 0x81);
  EXPECT_EQ(fr[13], 0x00);
  EXPECT_EQ(((fr[14] << 8) | fr[15]) & 0xfff, 100);
  EXPECT_EQ(fr[16], 0x08);
  EXPECT_FALSE(rec.of("tap-v")[0].vlan);  // egress taps of p0.100 see it untagged
  EXPECT_TRUE(rec.of("tap-p0")[0].vlan);  // p0's see the tag
  EXPECT_EQ(c(v).tx_packets, 1u);
}

TEST_F(Netif, XmitOnDownDeviceCountsTxDropped) {
  p1->admin_up = false;
  rte_mbuf* m = frame(FrameSpec{});
  dev_queue_xmit(*w, *p1, &m, 1);
  w->flush_free();
  EXPECT_TRUE(sink.frames.empty());
  EXPECT_EQ(c(p1).tx_dropped, 1u);
  EXPECT_EQ(drops(p1, DropReason::dev_ready), 1u);
}

TEST_F(Netif, VlanUntagInsertRoundTrip) {
  FrameSpec f;
  f.tags = {0x8100e123};
  rte_mbuf* m = frame(f);
  std::vector<uint8_t> before(rte_pktmbuf_mtod(m, uint8_t*),
                              rte_pktmbuf_mtod(m, uint8_t*) + m->data_len);
  meta(m) = PktMeta{};
  ASSERT_TRUE(vlan_untag(m));
  EXPECT_EQ(meta(m).vlan_tci, 0xe123);
  EXPECT_EQ(meta(m).protocol, 0x0800);
  EXPECT_EQ(m->data_len, before.size() - 4);
  ASSERT_TRUE(vlan_insert(m));
  std::vector<uint8_t> after(rte_pktmbuf_mtod(m, uint8_t*),
                             rte_pktmbuf_mtod(m, uint8_t*) + m->data_len);
  EXPECT_EQ(before, after);
  rte_pktmbuf_free(m);
}

}  // namespace
