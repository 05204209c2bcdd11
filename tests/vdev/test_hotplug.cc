// Ports hot-plugged by a reload (src/control/reload_ports.cc) on real
// net_ring vdevs and a real worker lcore: a port added while the worker runs
// is probed, started and polled from the resume on (what its ring loops back
// is counted on it), a removed one leaves the poll list, the ethdev and the
// device table (and can be probed again), a port that does not probe is
// refused and changes nothing, a changed port is refused with the setting.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include <rte_ethdev.h>
#include <rte_mbuf.h>

#include "control/reload_ports.hh"
#include "core/dataplane.hh"
#include "pmd_glue/pmd.hh"
#include "vdev_util.hh"

using namespace sluice;
using sluice::test::vdev_port;
using sluice::test::wait_for;

namespace {

// Sends n frames to the port's own MAC on its TX queue `q`; net_ring loops
// them back to its RX.
void loop_frames(Dataplane& dp, const Device& d, uint16_t q, int n) {
  rte_mempool* mp = dp.pool_for_socket(0);
  std::vector<rte_mbuf*> v;
  for (int i = 0; i < n; i++) {
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, 60));
    std::memset(p, 0, 60);
    std::memcpy(p, &d.mac, 6);
    p[12] = 0x88;  // no handler: counted, dropped
    p[13] = 0xb5;
    v.push_back(m);
  }
  ASSERT_EQ(rte_eth_tx_burst(d.port_id, q, v.data(), static_cast<uint16_t>(v.size())), v.size());
}

size_t polls_of(Dataplane& dp, uint16_t port_id) {
  size_t n = 0;
  for (auto& w : dp.workers)
    for (auto& p : w->polls) n += p.port == port_id;
  return n;
}

// The reload's order: check, prepare (workers running), attach and detach
// with the workers paused.
std::string hotplug(Dataplane& dp, const config::Topology& next) {
  PortPlan plan;
  std::string e = check_ports(dp, next, &plan);
  if (e.empty()) e = prepare_ports(dp, plan);
  if (!e.empty()) return e;
  if (!dp.pause_workers()) {
    cancel_ports(dp, plan);
    return "no pause";
  }
  attach_ports(dp, plan);
  detach_ports(dp, plan);
  dp.topo = next;
  dp.resume_workers();
  close_removed_ports(dp, plan);
  return "";
}

}  // namespace

TEST(Hotplug, RingPortAddedPolledRemovedAndAddedAgain) {
  Dataplane dp;
  dp.topo.eal.lcores = "0-1";
  dp.topo.ports.push_back(vdev_port("h0", "net_ring30", "02:00:00:00:30:01"));
  pmd::setup(dp);
  dp.build();
  Device* h0 = dp.net.find("h0");
  ASSERT_NE(h0, nullptr);
  dp.start_workers();
  const size_t ndev = dp.net.devices().size();

  // Added: probed, started, registered, polled.
  config::Topology two = dp.topo;
  two.ports.push_back(vdev_port("h1", "net_ring31", "02:00:00:00:30:02"));
  ASSERT_EQ(hotplug(dp, two), "");
  Device* h1 = dp.net.find("h1");
  ASSERT_NE(h1, nullptr);
  EXPECT_EQ(dp.ports.size(), 2u);
  EXPECT_EQ(dp.net.devices().size(), ndev + 1);
  EXPECT_EQ(polls_of(dp, h1->port_id), 1u);
  EXPECT_EQ(polls_of(dp, h0->port_id), 1u);
  EXPECT_TRUE(h1->oper_up.load());  // link read at attach
  ASSERT_GE(h1->tx_queues, 1);
  uint16_t q = 0;
  dp.pause_workers();  // queue 0 is the worker's: send while it is paused
  loop_frames(dp, *h1, q, 20);
  dp.resume_workers();
  ASSERT_TRUE(wait_for([&] { return dp.counters(h1->index).rx_packets == 20; }))
      << dp.counters(h1->index).rx_packets;

  // A changed port: refused, the setting named, nothing changed.
  config::Topology changed = two;
  changed.ports[1].rx_desc = 512;
  std::string e = hotplug(dp, changed);
  EXPECT_NE(e.find("port 'h1' changed (rx_desc)"), std::string::npos) << e;
  EXPECT_NE(e.find("restart"), std::string::npos) << e;

  // A port that does not probe: refused, nothing changed.
  config::Topology bad = two;
  bad.ports.push_back(vdev_port("h2", "net_bogus7", "02:00:00:00:30:03"));
  e = hotplug(dp, bad);
  EXPECT_NE(e.find("port 'h2'"), std::string::npos) << e;
  EXPECT_NE(e.find("probe"), std::string::npos) << e;
  EXPECT_EQ(dp.net.find("h2"), nullptr);
  EXPECT_EQ(dp.ports.size(), 2u);

  // Removed: out of the polls, the ethdev gone, the device unplugged.
  const uint16_t h1_index = h1->index, h1_port = h1->port_id;
  config::Topology one = dp.topo;
  one.ports.pop_back();
  ASSERT_EQ(hotplug(dp, one), "");
  EXPECT_EQ(dp.net.find("h1"), nullptr);
  EXPECT_EQ(dp.net.dev(h1_index), nullptr);
  EXPECT_EQ(dp.ports.size(), 1u);
  EXPECT_EQ(polls_of(dp, h1_port), 0u);
  EXPECT_EQ(dp.net.devices().size(), ndev);
  uint16_t pid;
  EXPECT_NE(rte_eth_dev_get_port_by_name("net_ring31", &pid), 0) << "the vdev was not removed";
  // h0 went on untouched.
  dp.pause_workers();
  loop_frames(dp, *h0, 0, 5);
  dp.resume_workers();
  ASSERT_TRUE(wait_for([&] { return dp.counters(h0->index).rx_packets == 5; }));

  // The same port again: a new device (new index, counters from zero).
  ASSERT_EQ(hotplug(dp, two), "");
  Device* again = dp.net.find("h1");
  ASSERT_NE(again, nullptr);
  EXPECT_NE(again->index, h1_index);
  EXPECT_EQ(dp.counters(again->index).rx_packets, 0u);
  EXPECT_EQ(polls_of(dp, again->port_id), 1u);

  dp.stop_workers();
  EXPECT_EQ(pmd::close_ports(dp), 0u) << "every mbuf must be back in its pool";
}
