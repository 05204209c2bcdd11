// Live reload (src/control/reload.cc): what each reload makes live, checked
// on the running tables the workers read (device table, VID tables, the
// published FIB snapshots, neighbours, rx_handler slots), with devices that
// record what they send in place of the ports.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <string>

#include <rte_fib.h>
#include <rte_fib6.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "bond/bond.hh"
#include "bridge/bridge.hh"
#include "config/topology.hh"
#include "control/reload.hh"
#include "core/dataplane.hh"
#include "core/netif.hh"
#include "l3/l3.hh"
#include "support/frames.hh"
#include "support/l3_fixture.hh"

using namespace sluice;
using namespace sluice::test;

namespace {

const char* kPorts =
    "ports:\n"
    "  - {name: p0, device: net_null0}\n"
    "  - {name: p1, device: net_null1}\n"
    "  - {name: p2, device: net_null2}\n"
    "  - {name: p3, device: net_null3}\n";

// A dataplane built from a topology file, as sluiced builds it after the
// ports (which are recording devices here), and reloaded from other files.
class ReloadTest : public ::testing::Test {
 protected:
  std::unique_ptr<Dataplane> dp;
  XmitSink sink;
  Worker* w = nullptr;
  Device* p[4] = {};
  unsigned avail_before = 0;
  std::string file;

  void SetUp() override {
    avail_before = rte_mempool_avail_count(pool());
    file = "/tmp/sluice-unit-reload-" + std::to_string(getpid()) + ".yaml";
  }
  void TearDown() override {
    if (w != nullptr) {
      while (w->inject != nullptr && rte_ring_count(w->inject) != 0) inject_xmit(*w);
      w->flush_free();
    }
    dp.reset();
    std::remove(file.c_str());
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }
  void write(const std::string& body) { std::ofstream(file) << kPorts << body; }
  void start(const std::string& body) {
    write(body);
    dp = std::make_unique<Dataplane>();
    dp->pools[0] = pool();
    dp->workers.push_back(std::make_unique<Worker>(dp->net, 0));
    w = dp->workers[0].get();
    dp->topo = config::load_file(file);
    for (int i = 0; i < 4; i++) {
      auto d = std::make_unique<Device>();
      d->name = "p" + std::to_string(i);
      d->mac = mac(("02:00:00:00:00:0" + std::to_string(i + 1)).c_str());
      d->xmit = sink_xmit;
      d->xmit_ctx = &sink;
      p[i] = dp->net.add_device(std::move(d));
    }
    dp->build();
  }
  ReloadResult reload(const std::string& body) {
    write(body);
    return reload_topology(*dp, file);
  }
  l3::L3& l3() { return *dp->find_feature<l3::L3>(); }
  // What a worker's IPv4 / IPv6 lookup gives now: the next hop's device, or "-".
  std::string route4(const char* dst) {
    const l3::Snapshot* s = l3().snap();
    uint32_t a = ip4(dst);
    uint64_t nh = 0;
    rte_fib_lookup_bulk(s->fib, &a, &nh, 1);
    if (nh == 0 || nh >= s->nh.size() || s->nh[nh].dev == kNoDev) return "-";
    Device* d = dp->net.dev(s->nh[nh].dev);
    return d == nullptr ? "?" : d->name;
  }
  std::string route6(const char* dst) {
    const l3::Snapshot* s = l3().snap();
    if (s->fib6 == nullptr) return "-";
    auto a = ip6(dst);
    uint8_t ips[1][16];
    std::memcpy(ips[0], a.data(), 16);
    uint64_t nh = 0;
    rte_fib6_lookup_bulk(s->fib6, ips, &nh, 1);
    if (nh == 0 || nh >= s->nh6.size() || s->nh6[nh].dev == kNoDev) return "-";
    Device* d = dp->net.dev(s->nh6[nh].dev);
    return d == nullptr ? "?" : d->name;
  }
  int neighbours_on(uint16_t dev) {
    int n = 0;
    for (const l3::NeighEntry* e : l3().neighbours()) n += e->key.dev == dev;
    return n;
  }
  bool has_neighbour(const std::string& dev, const std::string& ip) {
    Device* d = dp->net.find(dev);
    for (const l3::NeighEntry* e : l3().neighbours())
      if (d != nullptr && e->key.dev == d->index && !e->v6 && l3::ipv4_str(e->key.ip) == ip)
        return true;
    return false;
  }
};

const char* kVlanTopo =
    "vlans:\n"
    "  - {name: v10, link: p0, id: 10}\n"
    "  - {name: v20, link: p0, id: 20}\n"
    "addresses:\n"
    "  - {dev: v10, address: 10.0.10.1/24}\n"
    "  - {dev: v10, address: 2001:db8:10::1/64}\n"
    "  - {dev: v20, address: 10.0.20.1/24}\n"
    "  - {dev: p1, address: 10.0.1.1/24}\n"
    "  - {dev: p1, address: 2001:db8:1::1/64}\n"
    "routes:\n"
    "  - {prefix: 10.9.0.0/16, via: 10.0.10.2}\n"
    "  - {prefix: 10.8.0.0/16, via: 10.0.1.2}\n"
    "neighbours:\n"
    "  - {dev: v10, address: 10.0.10.2, mac: '02:00:00:00:10:02'}\n"
    "  - {dev: p1, address: 10.0.1.7, mac: '02:00:00:00:01:07'}\n";

}  // namespace

// A removed VLAN leaves the device table and its lower device's VID table;
// its addresses, their connected routes (both families), the routes through
// it and its neighbours (static and learned) go with it; the other VLAN and
// p1 keep everything.
TEST_F(ReloadTest, RemovedVlanTakesItsAddressesRoutesAndNeighbours) {
  start(kVlanTopo);
  Device* v10 = dp->net.find("v10");
  ASSERT_NE(v10, nullptr);
  const uint16_t v10i = v10->index;
  EXPECT_EQ(p[0]->vlan_dev(0x8100, 10), v10i);
  EXPECT_EQ(route4("10.0.10.5"), "v10");
  EXPECT_EQ(route4("10.9.1.1"), "v10");
  EXPECT_EQ(route6("2001:db8:10::5"), "v10");
  // A neighbour learned on v10 (an ARP request for us), besides the static one.
  l3::NeighEvent ev{};
  ev.ip = ip4("10.0.10.3");
  ev.dev = v10i;
  ev.kind = l3::kEvRequestForUs;
  ev.mac[0] = 2;
  l3().neigh.event(ev, l3().now_ms());
  EXPECT_EQ(neighbours_on(v10i), 2);
  const uint64_t gen = l3().neigh.gen.load();

  ReloadResult r = reload(
      "vlans:\n"
      "  - {name: v20, link: p0, id: 20}\n"
      "addresses:\n"
      "  - {dev: v20, address: 10.0.20.1/24}\n"
      "  - {dev: p1, address: 10.0.1.1/24}\n"
      "  - {dev: p1, address: 2001:db8:1::1/64}\n"
      "routes:\n"
      "  - {prefix: 10.8.0.0/16, via: 10.0.1.2}\n"
      "neighbours:\n"
      "  - {dev: p1, address: 10.0.1.7, mac: '02:00:00:00:01:07'}\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(dp->net.find("v10"), nullptr);
  EXPECT_FALSE(dp->net.registered(*v10));
  EXPECT_EQ(dp->net.dev(v10i), nullptr);
  EXPECT_EQ(p[0]->vlan_dev(0x8100, 10), 0xffff);
  ASSERT_NE(dp->net.find("v20"), nullptr);
  EXPECT_EQ(p[0]->vlan_dev(0x8100, 20), dp->net.find("v20")->index);
  EXPECT_EQ(route4("10.0.10.5"), "-");
  EXPECT_EQ(route4("10.9.1.1"), "-");
  EXPECT_EQ(route6("2001:db8:10::5"), "-");
  EXPECT_EQ(route4("10.0.20.5"), "v20");
  EXPECT_EQ(route4("10.8.1.1"), "p1");
  EXPECT_EQ(route6("2001:db8:1::5"), "p1");
  for (const l3::Address& a : l3().addresses()) EXPECT_NE(a.dev, v10i);
  EXPECT_EQ(neighbours_on(v10i), 0);
  EXPECT_TRUE(has_neighbour("p1", "10.0.1.7"));
  EXPECT_GT(l3().neigh.gen.load(), gen) << "workers' neighbour caches must be emptied";
  // An event a worker queued before the removal names no device now: ignored.
  l3().neigh.event(ev, l3().now_ms());
  EXPECT_EQ(neighbours_on(v10i), 0);
  // A tagged frame for VID 10 is no longer v10's.
  sink.frames.clear();
  FrameSpec f;
  f.dst = "02:00:00:00:00:01";
  f.src = "02:00:00:00:00:aa";
  f.tags = {0x8100u << 16 | 10};
  f.type = 0x0800;
  rte_mbuf* m = frame(f);
  port_receive(*w, *p[0], &m, 1);
  w->flush_free();
  EXPECT_EQ(dp->counters(v10i).rx_packets, 0u);
  // The name is free again: a VLAN added later gets a new index.
  r =
      reload(std::string("vlans:\n"
                         "  - {name: v20, link: p0, id: 20}\n"
                         "  - {name: v10, link: p0, id: 10}\n"
                         "addresses:\n"
                         "  - {dev: v20, address: 10.0.20.1/24}\n"
                         "  - {dev: p1, address: 10.0.1.1/24}\n"
                         "  - {dev: p1, address: 2001:db8:1::1/64}\n"
                         "  - {dev: v10, address: 10.0.10.1/24}\n"
                         "routes:\n"
                         "  - {prefix: 10.8.0.0/16, via: 10.0.1.2}\n"
                         "neighbours:\n"
                         "  - {dev: p1, address: 10.0.1.7, mac: '02:00:00:00:01:07'}\n"));
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_NE(dp->net.find("v10"), nullptr);
  EXPECT_NE(dp->net.find("v10")->index, v10i);
  EXPECT_EQ(route4("10.0.10.5"), "v10");
}

// A new VLAN may not take the VID of one removed by the same reload.
TEST_F(ReloadTest, VidOfARemovedVlanIsRefusedInTheSameReload) {
  start(kVlanTopo);
  ReloadResult r = reload(
      "vlans:\n"
      "  - {name: v20, link: p0, id: 20}\n"
      "  - {name: v11, link: p0, id: 10}\n"
      "addresses:\n"
      "  - {dev: v20, address: 10.0.20.1/24}\n"
      "  - {dev: p1, address: 10.0.1.1/24}\n"
      "  - {dev: p1, address: 2001:db8:1::1/64}\n"
      "routes:\n"
      "  - {prefix: 10.8.0.0/16, via: 10.0.1.2}\n"
      "neighbours:\n"
      "  - {dev: p1, address: 10.0.1.7, mac: '02:00:00:00:01:07'}\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("takes the VLAN id of 'v10'"), std::string::npos) << r.error;
  EXPECT_NE(dp->net.find("v10"), nullptr);
  EXPECT_EQ(route4("10.0.10.5"), "v10");
}

// Addresses removed on a device that stays: the connected route goes (and
// a route whose gateway was in it); an IPv6 address added installs its
// connected route, as at start; a static neighbour removed goes, one
// changed gets its new MAC.
TEST_F(ReloadTest, AddressesAndStaticNeighboursRemovedAndChanged) {
  start(
      "addresses:\n"
      "  - {dev: p1, address: 10.0.1.1/24}\n"
      "  - {dev: p1, address: 10.0.2.1/24}\n"
      "  - {dev: p2, address: 2001:db8:1::1/64}\n"
      "  - {dev: p2, address: 2001:db8:2::1/64}\n"
      "neighbours:\n"
      "  - {dev: p1, address: 10.0.1.7, mac: '02:00:00:00:01:07'}\n"
      "  - {dev: p1, address: 10.0.1.8, mac: '02:00:00:00:01:08'}\n");
  EXPECT_EQ(route4("10.0.2.5"), "p1");
  EXPECT_EQ(route6("2001:db8:2::5"), "p2");
  // A route added with `route add` through the subnet that goes.
  ASSERT_EQ(l3().add_route("10.7.0.0/16", "10.0.2.9", ""), "");
  l3().commit();
  EXPECT_EQ(route4("10.7.1.1"), "p1");

  ReloadResult r = reload(
      "addresses:\n"
      "  - {dev: p1, address: 10.0.1.1/24}\n"
      "  - {dev: p2, address: 2001:db8:1::1/64}\n"
      "  - {dev: p2, address: 2001:db8:3::1/64}\n"
      "neighbours:\n"
      "  - {dev: p1, address: 10.0.1.7, mac: '02:00:00:00:01:77'}\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(route4("10.0.2.5"), "-");
  EXPECT_EQ(route4("10.7.1.1"), "-") << "its gateway is off-link now";
  EXPECT_EQ(route4("10.0.1.5"), "p1");
  EXPECT_EQ(route6("2001:db8:2::5"), "-");
  EXPECT_EQ(route6("2001:db8:3::5"), "p2") << "an IPv6 address added on reload has its route";
  EXPECT_EQ(route6("2001:db8:1::5"), "p2");
  EXPECT_FALSE(has_neighbour("p1", "10.0.1.8"));
  ASSERT_TRUE(has_neighbour("p1", "10.0.1.7"));
  for (const l3::NeighEntry* e : l3().neighbours())
    if (!e->v6 && l3::ipv4_str(e->key.ip) == "10.0.1.7") {
      rte_ether_addr m;
      l3::neigh_mac(e->hw.load(), &m);
      EXPECT_EQ(l3::mac_str(m), "02:00:00:00:01:77");
      EXPECT_EQ(e->state, l3::kNudPermanent);
    }
  bool left = false;
  for (const l3::Address& a : l3().addresses()) left |= !a.v6 && l3::ipv4_str(a.addr) == "10.0.2.1";
  EXPECT_FALSE(left);
}

// Two addresses in one subnet on two devices: the connected route follows
// the one that stays.
TEST_F(ReloadTest, ConnectedRouteMovesToTheAddressThatStays) {
  start(
      "addresses:\n"
      "  - {dev: p1, address: 10.0.1.1/24}\n"
      "  - {dev: p2, address: 10.0.1.2/24}\n");
  EXPECT_EQ(route4("10.0.1.5"), "p1");
  ReloadResult r = reload(
      "addresses:\n"
      "  - {dev: p2, address: 10.0.1.2/24}\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(route4("10.0.1.5"), "p2");
}

// ---- bridges ----------------------------------------------------------------------------------

namespace {
const char* kBr0 =
    "bridges:\n"
    "  - {name: br0, ports: [p0, p1]}\n";
const char* kBr0Br1 =
    "bridges:\n"
    "  - {name: br0, ports: [p0, p1]}\n"
    "  - {name: br1, ports: [p2, p3]}\n";

FrameSpec from(const char* src, const char* dst = "02:00:00:00:99:99") {
  FrameSpec f;
  f.src = src;
  f.dst = dst;
  return f;
}
}  // namespace

// A new bridge takes its ports' rx_handler slots and floods between them;
// removing it gives the ports back (plain devices, no master), frees its
// FDB, and a learn request a worker queued for it before the removal is
// not taken by another bridge; br0 keeps its FDB throughout.
TEST_F(ReloadTest, BridgeAddedThenRemoved) {
  start(kBr0);
  auto* sys = dp->find_feature<bridge::BridgeSys>();
  ASSERT_NE(sys, nullptr);
  sys->pool = pool();
  auto rx = [&](Device* d, const FrameSpec& f) {
    rte_mbuf* m = frame(f);
    port_receive(*w, *d, &m, 1);
    w->flush_free();
  };
  rx(p[0], from("02:00:00:00:aa:01"));
  sys->run(1000);
  const unsigned br0_entries = sys->find("br0")->fdb->size();
  EXPECT_EQ(p[2]->rx_handler.load(), nullptr);

  ReloadResult r = reload(kBr0Br1);
  ASSERT_TRUE(r.ok) << r.error;
  bridge::Bridge* br1 = sys->find("br1");
  ASSERT_NE(br1, nullptr);
  Device* br1dev = dp->net.find("br1");
  ASSERT_NE(br1dev, nullptr);
  EXPECT_EQ(br1dev->kind, DevKind::bridge);
  EXPECT_NE(br1->idx, sys->find("br0")->idx);
  for (Device* d : {p[2], p[3]}) {
    EXPECT_EQ(d->rx_handler.load(), bridge::br_handle_frame);
    EXPECT_EQ(d->master.load(), br1dev->index);
  }
  // An unknown destination from p2 floods to p3 only.
  sink.frames.clear();
  sink.devs.clear();
  rx(p[2], from("02:00:00:00:cc:02"));
  ASSERT_EQ(sink.devs.size(), 1u);
  EXPECT_EQ(sink.devs[0], p[3]->index);
  sys->run(1100);
  EXPECT_EQ(sys->find("br0")->fdb->size(), br0_entries);

  // A learn request queued for br1 (p3's source), then br1 goes before the
  // control thread drains it.
  rx(p[3], from("02:00:00:00:cc:03"));
  const uint16_t br1_idx = br1->idx;
  r = reload(kBr0);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(sys->find("br1"), nullptr);
  EXPECT_EQ(sys->by_idx(br1_idx), nullptr);
  EXPECT_EQ(dp->net.find("br1"), nullptr);
  EXPECT_FALSE(dp->net.registered(*br1dev));
  for (Device* d : {p[2], p[3]}) {
    EXPECT_EQ(d->rx_handler.load(), nullptr);
    EXPECT_EQ(d->master.load(), kNoDev);
  }
  sys->run(1200);
  EXPECT_EQ(sys->find("br0")->fdb->size(), br0_entries) << "br0 took br1's learn request";
  ASSERT_FALSE(sys->retired_bridges.empty());
  EXPECT_TRUE(sys->retired_bridges.back()->fdb == nullptr) << "the FDB is freed";
  // p2 is a plain port again: a frame on it goes to no bridge.
  sink.frames.clear();
  rx(p[2], from("02:00:00:00:cc:02"));
  EXPECT_TRUE(sink.frames.empty());

  // Added again: a new number, working as before.
  r = reload(kBr0Br1);
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_NE(sys->find("br1"), nullptr);
  EXPECT_NE(sys->find("br1")->idx, br1_idx);
  sink.devs.clear();
  rx(p[2], from("02:00:00:00:cc:02"));
  ASSERT_EQ(sink.devs.size(), 1u);
  EXPECT_EQ(sink.devs[0], p[3]->index);
}

// Settings that apply in place do; the others are refused with the reason,
// changing nothing.
TEST_F(ReloadTest, BridgeSettingsInPlaceOrRefused) {
  start(kBr0);
  auto* sys = dp->find_feature<bridge::BridgeSys>();
  bridge::Bridge* br0 = sys->find("br0");
  ReloadResult r = reload(
      "bridges:\n"
      "  - name: br0\n"
      "    ports: [p0, p1]\n"
      "    ageing_s: 30\n"
      "    port_settings:\n"
      "      p1: {flood: false, hairpin: true}\n");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(sys->find("br0"), br0) << "changed in place, not rebuilt";
  EXPECT_EQ(br0->ageing_ms, 30000u);
  const bridge::BridgePort* bp1 = br0->port_of(p[1]->index);
  ASSERT_NE(bp1, nullptr);
  EXPECT_FALSE(bp1->has(bridge::kPortFlood));
  EXPECT_TRUE(bp1->has(bridge::kPortHairpin));
  EXPECT_TRUE(bp1->has(bridge::kPortLearning));

  r = reload(
      "bridges:\n"
      "  - {name: br0, ports: [p0, p1], max_fdb_entries: 100}\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("max_fdb_entries"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("restart"), std::string::npos) << r.error;
  EXPECT_EQ(br0->ageing_ms, 30000u);
  r = reload(
      "bridges:\n"
      "  - {name: br0, ports: [p0, p1], mac: '02:00:00:00:77:77'}\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("mac"), std::string::npos) << r.error;
  // A new bridge over a port another bridge keeps: EBUSY, with where.
  r = reload(
      "bridges:\n"
      "  - {name: br0, ports: [p0, p1]}\n"
      "  - {name: br1, ports: [p1, p2]}\n");
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(sys->find("br1"), nullptr);
  // … unless that bridge lets it go in the same reload.
  r = reload(
      "bridges:\n"
      "  - {name: br0, ports: [p0]}\n"
      "  - {name: br1, ports: [p1, p2]}\n");
  ASSERT_TRUE(r.ok) << r.error;
  ASSERT_NE(sys->find("br1"), nullptr);
  EXPECT_EQ(p[1]->master.load(), sys->find("br1")->dev->index);
}

// ---- bonds ------------------------------------------------------------------------------------

namespace {
const char* kBond =
    "bonds:\n"
    "  - {name: bond0, mode: active-backup, members: [p2, p3], miimon_ms: 100}\n";
}

// A new bond takes its members' rx_handler slots and gives them its MAC;
// removing it gives each member its own MAC and slot back, and its
// counters stop folding into the (gone) bond.
TEST_F(ReloadTest, BondAddedThenRemoved) {
  start("");
  const rte_ether_addr m2 = p[2]->mac, m3 = p[3]->mac;
  ReloadResult r = reload(kBond);
  ASSERT_TRUE(r.ok) << r.error;
  auto* sys = dp->find_feature<bond::BondSys>();
  ASSERT_NE(sys, nullptr);
  bond::Bond* b = sys->find("bond0");
  ASSERT_NE(b, nullptr);
  Device* bond0 = dp->net.find("bond0");
  ASSERT_NE(bond0, nullptr);
  EXPECT_EQ(bond0->kind, DevKind::bond);
  for (Device* d : {p[2], p[3]}) {
    EXPECT_EQ(d->rx_handler.load(), bond::bond_handle_frame);
    EXPECT_EQ(d->master.load(), bond0->index);
    EXPECT_TRUE(rte_is_same_ether_addr(&d->mac, &bond0->mac));
  }
  EXPECT_TRUE(rte_is_same_ether_addr(&bond0->mac, &m2));
  sys->tick(1000);
  sys->tick(1200);
  ASSERT_NE(b->curr_active, nullptr);
  EXPECT_EQ(b->curr_active->dev, p[2]);
  const uint16_t idx = b->idx;

  r = reload("");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(sys->find("bond0"), nullptr);
  EXPECT_EQ(sys->by_idx(idx), nullptr);
  EXPECT_EQ(dp->net.find("bond0"), nullptr);
  EXPECT_TRUE(sys->all_members.empty());
  for (Device* d : {p[2], p[3]}) {
    EXPECT_EQ(d->rx_handler.load(), nullptr);
    EXPECT_EQ(d->master.load(), kNoDev);
  }
  EXPECT_TRUE(rte_is_same_ether_addr(&p[2]->mac, &m2));
  EXPECT_TRUE(rte_is_same_ether_addr(&p[3]->mac, &m3)) << "p3's own MAC is back";
  sys->tick(1400);  // nothing left that names it

  // A bond changed in place is refused; a new one gets a new number.
  r = reload(kBond);
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_NE(sys->find("bond0")->idx, idx);
  r = reload(
      "bonds:\n"
      "  - {name: bond0, mode: active-backup, members: [p2, p3], miimon_ms: 50}\n");
  EXPECT_FALSE(r.ok);
  EXPECT_NE(r.error.find("bond 'bond0' changed"), std::string::npos) << r.error;
}

// A bond can be a port of a bridge the same reload adds.
TEST_F(ReloadTest, NewBondAsPortOfNewBridge) {
  start("");
  ReloadResult r = reload(std::string(kBond) +
                          "bridges:\n"
                          "  - {name: br0, ports: [bond0, p0]}\n");
  ASSERT_TRUE(r.ok) << r.error;
  Device* bond0 = dp->net.find("bond0");
  Device* br0 = dp->net.find("br0");
  ASSERT_NE(bond0, nullptr);
  ASSERT_NE(br0, nullptr);
  EXPECT_EQ(bond0->master.load(), br0->index);
  EXPECT_EQ(bond0->rx_handler.load(), bridge::br_handle_frame);
  r = reload("");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(dp->net.find("bond0"), nullptr);
  EXPECT_EQ(dp->net.find("br0"), nullptr);
  EXPECT_EQ(p[0]->rx_handler.load(), nullptr);
  EXPECT_EQ(p[2]->rx_handler.load(), nullptr);
}
