// Real DPDK vdevs under the real PMD glue and a real worker lcore:
//  * net_pcap in → pcap out, compared with golden files (make_golden.py)
//  * net_ring ports that loop TX back to RX
// A protocol handler registered through the C++ API forwards IPv4 the way
// make_golden.py describes; everything else is the core's own behaviour.
#include <gtest/gtest.h>
#include <pcap/pcap.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include <rte_ethdev.h>
#include <rte_mempool.h>

#include "core/dataplane.hh"
#include "core/netif.hh"
#include "pmd_glue/pmd.hh"
#include "alloc_counter.hh"
#include "support/frames.hh"

using namespace sluice;

namespace {

std::string src_dir() {
  return getenv("SLUICE_SOURCE_DIR") ? getenv("SLUICE_SOURCE_DIR") : ".";
}
std::string tmp_dir() {
  std::string d = getenv("SLUICE_TEST_TMP") ? getenv("SLUICE_TEST_TMP") : "/tmp/sluice-test";
  mkdir(d.c_str(), 0755);
  return d;
}

std::vector<std::vector<uint8_t>> read_pcap(const std::string& path) {
  char err[PCAP_ERRBUF_SIZE];
  pcap_t* p = pcap_open_offline(path.c_str(), err);
  EXPECT_NE(p, nullptr) << err;
  std::vector<std::vector<uint8_t>> v;
  if (p == nullptr) return v;
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) v.emplace_back(d, d + h->caplen);
  pcap_close(p);
  return v;
}

void write_empty_pcap(const std::string& path) {
  pcap_t* p = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t* d = pcap_dump_open(p, path.c_str());
  pcap_dump_close(d);
  pcap_close(p);
}

// The forwarding handler of the test (see make_golden.py).
struct Fwd {
  Device* p0;
  Device* p0_100;
  Device* p1;
  Device* p1_200;
  std::atomic<uint64_t> seen{0};
};

void fwd_ipv4(Worker& w, void* ctx, rte_mbuf** pkts, uint16_t n) {
  auto* f = static_cast<Fwd*>(ctx);
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    f->seen++;
    const PktMeta& md = meta(m);
    if (md.pkt_type == static_cast<uint8_t>(PktType::otherhost)) {
      w.c(md.dev).rx_otherhost_dropped++;
      w.drop(m, md.dev, DropReason::otherhost);
      continue;
    }
    Device* out = md.dev == f->p0_100->index ? f->p1_200 : md.dev == f->p0->index ? f->p1 : f->p0;
    dev_queue_xmit(w, *out, &m, 1);
  }
}

bool wait_for(const std::function<bool()>& cond, int ms = 5000) {
  for (int i = 0; i < ms / 10; i++) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

config::Port port(const std::string& name, const std::string& devargs, const char* mac) {
  config::Port p;
  p.name = name;
  p.device = devargs;
  p.mac = mac;
  p.rx_desc = 256;
  p.tx_desc = 256;
  return p;
}

TEST(Vdev, PcapInPcapOutMatchesGolden) {
  std::string in = src_dir() + "/tests/vdev/golden/in.pcap";
  std::string out = tmp_dir() + "/golden-out.pcap";
  std::string empty = tmp_dir() + "/empty.pcap";
  write_empty_pcap(empty);
  unlink(out.c_str());

  Dataplane dp;
  dp.topo.eal.lcores = "0-1";
  dp.topo.ports.push_back(
      port("p0", "net_pcap10,rx_pcap=" + in + ",tx_pcap=/dev/null", "02:00:00:00:00:01"));
  dp.topo.ports.push_back(
      port("p1", "net_pcap11,rx_pcap=" + empty + ",tx_pcap=" + out, "02:00:00:00:00:02"));
  dp.topo.vlans.push_back(config::Vlan{{}, "p0.100", "p0", 100, "802.1Q"});
  dp.topo.vlans.push_back(config::Vlan{{}, "p1.200", "p1", 200, "802.1Q"});
  pmd::setup(dp);
  Fwd f{dp.net.find("p0"), dp.net.find("p0.100"), dp.net.find("p1"), dp.net.find("p1.200")};
  dp.net.add_ptype(0x0800, nullptr, fwd_ipv4, &f, "test-fwd");
  test::g_worker_allocs = 0;
  pmd::start_workers(dp);
  Device* p0 = f.p0;
  ASSERT_TRUE(wait_for([&] { return dp.counters(p0->index).rx_packets == 40; }));
  pmd::stop_workers(dp);
  // The packet path (rx, classify, rounds, delivery, xmit, tx) allocates nothing.
  EXPECT_EQ(test::g_worker_allocs.load(), 0u);

  auto c0 = dp.counters(p0->index);
  EXPECT_EQ(c0.rx_packets, 40u);
  EXPECT_EQ(c0.rx_dropped, 10u);            // 5 ARP + 3 unknown ethertype + 2 LLC: no handler
  EXPECT_EQ(c0.rx_otherhost_dropped, 10u);  // 5 to another MAC + 5 with VLAN 300 (residual tag)
  EXPECT_EQ(dp.drops(p0->index)[static_cast<unsigned>(DropReason::unhandled_proto)], 10u);
  EXPECT_EQ(dp.counters(f.p0_100->index).rx_packets, 5u);
  EXPECT_EQ(dp.counters(f.p1_200->index).tx_packets, 5u);
  EXPECT_EQ(dp.counters(f.p1->index).tx_packets, 20u);
  EXPECT_EQ(pmd::close_ports(dp), 0u) << "every mbuf must be back in its pool";

  auto got = read_pcap(out);
  auto want = read_pcap(src_dir() + "/tests/vdev/golden/expected.pcap");
  ASSERT_EQ(got.size(), want.size());
  // Bursts regroup packets by device, so flows interleave differently than
  // on input; each flow's order is kept. Compare as sets.
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(got, want);
}

TEST(Vdev, RingPortsLoopTxToRx) {
  Dataplane dp;
  dp.topo.eal.lcores = "0-1";
  dp.topo.ports.push_back(port("r0", "net_ring20", "02:00:00:00:00:01"));
  dp.topo.ports.push_back(port("r1", "net_ring21", "02:00:00:00:00:02"));
  pmd::setup(dp);
  Device* r0 = dp.net.find("r0");
  Device* r1 = dp.net.find("r1");
  Fwd f{r0, r0, r1, r1};
  sluice::test::Recorder rec;
  sluice::test::Probe bound{&rec, "on-r1"};
  dp.net.add_ptype(0x0800, r0, fwd_ipv4, &f, "fwd-from-r0");
  dp.net.add_ptype(0x0800, r1, sluice::test::probe_proto, &bound, "sink-r1");

  // Before the worker runs, the control thread may use TX queue 0 of r0:
  // what it sends comes back on r0's RX.
  rte_mempool* mp = dp.pool_for_socket(0);
  constexpr int kN = 100;
  std::vector<rte_mbuf*> v;
  for (int i = 0; i < kN; i++) {
    rte_mbuf* m = rte_pktmbuf_alloc(mp);
    auto* p = rte_pktmbuf_mtod(m, uint8_t*);
    rte_pktmbuf_append(m, 60);
    std::memset(p, 0, 60);
    rte_ether_addr d = r0->mac;
    std::memcpy(p, &d, 6);
    p[12] = 0x08;
    p[14] = static_cast<uint8_t>(i);
    v.push_back(m);
  }
  rte_mbuf* arp = rte_pktmbuf_alloc(mp);
  auto* ap = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(arp, 60));
  std::memset(ap, 0xff, 6);
  std::memset(ap + 6, 0, 54);
  ap[12] = 0x08;
  ap[13] = 0x06;
  v.push_back(arp);
  ASSERT_EQ(rte_eth_tx_burst(r0->port_id, 0, v.data(), static_cast<uint16_t>(v.size())), v.size());

  pmd::start_workers(dp);
  ASSERT_TRUE(
      wait_for([&] { return f.seen.load() == kN && dp.counters(r1->index).rx_packets == kN; }));
  pmd::stop_workers(dp);

  EXPECT_EQ(dp.counters(r0->index).rx_packets, kN + 1u);
  EXPECT_EQ(dp.counters(r0->index).rx_dropped, 1u);  // the ARP frame: no handler
  EXPECT_EQ(dp.counters(r1->index).tx_packets, uint64_t(kN));
  ASSERT_EQ(rec.seen.size(), size_t(kN));
  std::vector<int> ids;
  for (auto& s : rec.seen) {
    EXPECT_EQ(s.dev, r1->index);
    EXPECT_EQ(s.orig_dev, r1->index);
    ids.push_back(s.head.at(14));
  }
  // One flow through one worker: order kept.
  for (int i = 0; i < kN; i++) EXPECT_EQ(ids[i], i);
  EXPECT_EQ(pmd::close_ports(dp), 0u);
}

}  // namespace
