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

#include "bridge/config.hh"
#include "hooks/config.hh"
#include "l3/config.hh"
#include "core/dataplane.hh"
#include "core/netif.hh"
#include "hooks/hooks.hh"
#include "hooks/rules.hh"
#include "pmd_glue/pmd.hh"
#include "vdev_util.hh"
#include "alloc_counter.hh"
#include "support/frames.hh"

using namespace sluice;
using sluice::test::vdev_port;
using sluice::test::wait_for;

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

TEST(Vdev, PcapInPcapOutMatchesGolden) {
  std::string in = src_dir() + "/tests/vdev/golden/in.pcap";
  std::string out = tmp_dir() + "/golden-out.pcap";
  std::string empty = tmp_dir() + "/empty.pcap";
  write_empty_pcap(empty);
  unlink(out.c_str());

  Dataplane dp;
  dp.topo.eal.lcores = "0-1";
  dp.topo.ports.push_back(
      vdev_port("p0", "net_pcap10,rx_pcap=" + in + ",tx_pcap=/dev/null", "02:00:00:00:00:01"));
  dp.topo.ports.push_back(
      vdev_port("p1", "net_pcap11,rx_pcap=" + empty + ",tx_pcap=" + out, "02:00:00:00:00:02"));
  dp.topo.vlans.push_back(config::Vlan{{}, "p0.100", "p0", 100, "802.1Q"});
  dp.topo.vlans.push_back(config::Vlan{{}, "p1.200", "p1", 200, "802.1Q"});
  pmd::setup(dp);
  dp.build();
  Fwd f{dp.net.find("p0"), dp.net.find("p0.100"), dp.net.find("p1"), dp.net.find("p1.200")};
  dp.net.add_ptype(0x0800, nullptr, fwd_ipv4, &f, "test-fwd");
  test::g_worker_allocs = 0;
  dp.start_workers();
  Device* p0 = f.p0;
  ASSERT_TRUE(wait_for([&] { return dp.counters(p0->index).rx_packets == 40; }));
  dp.stop_workers();
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
  dp.topo.ports.push_back(vdev_port("r0", "net_ring20", "02:00:00:00:00:01"));
  dp.topo.ports.push_back(vdev_port("r1", "net_ring21", "02:00:00:00:00:02"));
  pmd::setup(dp);
  dp.build();
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

  dp.start_workers();
  ASSERT_TRUE(
      wait_for([&] { return f.seen.load() == kN && dp.counters(r1->index).rx_packets == kN; }));
  dp.stop_workers();

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

// An Ethernet/IPv4/UDP frame with a valid header checksum.
std::vector<uint8_t> udp_frame(const uint8_t dmac[6], uint32_t src, uint32_t dst, uint16_t dport) {
  std::vector<uint8_t> f(14 + 20 + 8 + 18, 0);
  std::memcpy(f.data(), dmac, 6);
  const uint8_t smac[6] = {2, 0, 0, 0, 0x0a, 0x01};
  std::memcpy(f.data() + 6, smac, 6);
  f[12] = 0x08;
  uint8_t* ip = f.data() + 14;
  ip[0] = 0x45;
  ip[3] = 20 + 8 + 18;
  ip[8] = 64;
  ip[9] = 17;
  for (int i = 0; i < 4; i++) {
    ip[12 + i] = static_cast<uint8_t>(src >> (24 - 8 * i));
    ip[16 + i] = static_cast<uint8_t>(dst >> (24 - 8 * i));
  }
  uint32_t sum = 0;
  for (int i = 0; i < 20; i += 2) sum += uint32_t(ip[i]) << 8 | ip[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  ip[10] = static_cast<uint8_t>(~sum >> 8);
  ip[11] = static_cast<uint8_t>(~sum);
  uint8_t* udp = ip + 20;
  udp[0] = 0x9c, udp[1] = 0x40;
  udp[2] = static_cast<uint8_t>(dport >> 8), udp[3] = static_cast<uint8_t>(dport);
  udp[5] = 8 + 18;
  return f;
}

void write_pcap(const std::string& path, const std::vector<std::vector<uint8_t>>& frames) {
  pcap_t* p = pcap_open_dead(DLT_EN10MB, 65535);
  pcap_dumper_t* d = pcap_dump_open(p, path.c_str());
  for (const auto& f : frames) {
    pcap_pkthdr h{};
    h.caplen = h.len = static_cast<bpf_u_int32>(f.size());
    pcap_dump(reinterpret_cast<u_char*>(d), &h, f.data());
  }
  pcap_dump_close(d);
  pcap_close(p);
}

// The real features on real vdevs: L3 forwarding through a forward rule list
// of 200 rules (rte_acl), a queue whose packets the test answers while the
// worker runs (the resume path), and a bridge flooding between two ports.
// The worker allocates nothing on the heap on any of these paths.
TEST(Vdev, RoutedHookedQueuedAndBridgedPathsAllocateNothing) {
  std::string dir = tmp_dir();
  std::string in = dir + "/feat-in.pcap", in_br = dir + "/feat-br-in.pcap";
  std::string out = dir + "/feat-out.pcap", out_br = dir + "/feat-br-out.pcap";
  std::string empty = dir + "/empty2.pcap";
  write_empty_pcap(empty);
  unlink(out.c_str());
  unlink(out_br.c_str());
  const uint8_t p0mac[6] = {2, 0, 0, 0, 0, 1};
  std::vector<std::vector<uint8_t>> frames;
  constexpr int kFwd = 60, kBlocked = 10, kQueued = 20;
  for (int i = 0; i < kFwd; i++)
    frames.push_back(udp_frame(p0mac, 0x0a000102, 0x0a000202 + (i % 3) * 0x100, 5000));
  for (int i = 0; i < kBlocked; i++) frames.push_back(udp_frame(p0mac, 0x0a000102, 0x0a000202, 9));
  for (int i = 0; i < kQueued; i++) frames.push_back(udp_frame(p0mac, 0x0a000102, 0x0a000202, 7));
  write_pcap(in, frames);
  const uint8_t unknown[6] = {2, 0, 0, 0, 0, 0x55};
  constexpr int kBridged = 40;
  std::vector<std::vector<uint8_t>> bf(kBridged, udp_frame(unknown, 0x0a090001, 0x0a090002, 1));
  write_pcap(in_br, bf);

  Dataplane dp;
  dp.topo.eal.lcores = "0-1";
  dp.topo.ports.push_back(
      vdev_port("p0", "net_pcap30,rx_pcap=" + in + ",tx_pcap=/dev/null", "02:00:00:00:00:01"));
  dp.topo.ports.push_back(
      vdev_port("p1", "net_pcap31,rx_pcap=" + empty + ",tx_pcap=" + out, "02:00:00:00:00:02"));
  dp.topo.ports.push_back(
      vdev_port("b0", "net_pcap32,rx_pcap=" + in_br + ",tx_pcap=/dev/null", "02:00:00:00:00:03"));
  dp.topo.ports.push_back(
      vdev_port("b1", "net_pcap33,rx_pcap=" + empty + ",tx_pcap=" + out_br, "02:00:00:00:00:04"));
  dp.topo.ports[2].promiscuous = true;
  config::Bridge br;
  br.name = "br0";
  br.ports = {"b0", "b1"};
  dp.topo.get<bridge::Config>().bridges = {br};
  dp.topo.get<l3::Config>().addresses = {{{}, "p0", "10.0.1.1/24", {}, {}},
                                         {{}, "p1", "10.0.2.1/16", {}, {}}};
  dp.topo.get<l3::Config>().neighbours = {{{}, "p1", "10.0.2.2", "02:00:00:00:0b:02", {}, {}},
                                          {{}, "p1", "10.0.3.2", "02:00:00:00:0b:03", {}, {}},
                                          {{}, "p1", "10.0.4.2", "02:00:00:00:0b:04", {}, {}}};
  config::HookListCfg h;
  h.name = "fwd";
  h.point = "ipv4/forward";
  auto rule = [](std::initializer_list<std::pair<const char*, std::string>> kv, const char* v) {
    hooks::Rule r;
    for (auto& [k, val] : kv) {
      bool unknown_key = false;
      EXPECT_EQ(hooks::parse_match(k, val, &r.match, &unknown_key), "");
    }
    EXPECT_TRUE(hooks::parse_rule_verdict(v, &r.verdict));
    return r;
  };
  for (int i = 0; i < 200; i++)
    h.rules.push_back(rule({{"proto", "tcp"}, {"dst_port", std::to_string(10000 + i)}}, "drop"));
  h.rules.push_back(rule({{"proto", "udp"}, {"dst_port", "9"}}, "drop"));
  hooks::Rule q = rule({{"proto", "udp"}, {"dst_port", "7"}}, "queue");
  q.queue = 1;
  q.has_queue = true;
  h.rules.push_back(q);
  dp.topo.get<hooks::Config>().hooks = {h};
  pmd::setup(dp);
  dp.build();
  auto& reg = dp.feature<hooks::Registry>();
  ASSERT_TRUE(reg.bind(1, true));
  Device* p0 = dp.net.find("p0");
  Device* p1 = dp.net.find("p1");
  Device* b1 = dp.net.find("b1");
  test::g_worker_allocs = 0;
  dp.start_workers();
  // The consumer: answers every queued packet with accept, while the worker runs.
  unsigned answered = 0;
  ASSERT_TRUE(wait_for([&] {
    hooks::Queued got[16];
    unsigned n = reg.read(1, got, 16);
    for (unsigned i = 0; i < n; i++) reg.verdict(got[i], SLUICE_ACCEPT);
    answered += n;
    return answered == kQueued && dp.counters(p1->index).tx_packets == uint64_t(kFwd + kQueued) &&
           dp.counters(b1->index).tx_packets == uint64_t(kBridged);
  }));
  dp.stop_workers();
  EXPECT_EQ(test::g_worker_allocs.load(), 0u);
  EXPECT_EQ(dp.counters(p0->index).rx_packets, uint64_t(kFwd + kBlocked + kQueued));
  EXPECT_EQ(dp.drops(p0->index)[static_cast<unsigned>(DropReason::netfilter_drop)],
            uint64_t(kBlocked));
  EXPECT_EQ(reg.queue_stats(1).queued, uint64_t(kQueued));
  EXPECT_EQ(reg.queue_stats(1).answered, uint64_t(kQueued));
  EXPECT_EQ(pmd::close_ports(dp), 0u) << "every mbuf must be back in its pool";
  // What left p1: forwarded (TTL 63) to the neighbours' MACs.
  auto got = read_pcap(out);
  ASSERT_EQ(got.size(), size_t(kFwd + kQueued));
  for (const auto& f : got) {
    EXPECT_EQ(f[14 + 8], 63);
    EXPECT_EQ(f[0], 2);
    EXPECT_EQ(f[4], 0x0b);
  }
  EXPECT_EQ(read_pcap(out_br).size(), size_t(kBridged));
}

}  // namespace
