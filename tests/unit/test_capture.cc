// Captures: CaptureManager and its commands on a Dataplane with fake devices.
// The tap is called the way the core calls it (the registered TapList's
// function pointer, per direction), and the files are read back with tshark.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <rte_mbuf.h>

#include "capture/capture.hh"
#include "capture/pcapng.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/meta.hh"
#include "core/netif.hh"
#include "core/worker.hh"
#include "support/eal_env.hh"

namespace sluice {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "sluice-cap-" + std::to_string(getpid()) + "-" + name;
}

std::vector<std::vector<std::string>> tshark(const std::string& file, const std::string& fields) {
  std::string cmd = "tshark -r '" + file + "' -T fields " + fields + " 2>/dev/null";
  std::vector<std::vector<std::string>> rows;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return rows;
  char line[4096];
  while (std::fgets(line, sizeof(line), p) != nullptr) {
    std::string s(line);
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    std::vector<std::string> row;
    std::stringstream ss(s);
    std::string cell;
    while (std::getline(ss, cell, '\t')) row.push_back(cell);
    if (!s.empty() && s.back() == '\t') row.push_back("");
    rows.push_back(row);
  }
  pclose(p);
  return rows;
}

// Does tshark read the whole file without complaint?
bool tshark_reads(const std::string& file) {
  std::string cmd = "tshark -r '" + file + "' -q >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

unsigned dir_of(const std::string& cell) {
  return cell.empty() ? 0 : static_cast<unsigned>(std::stoul(cell, nullptr, 0));
}

class CaptureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    eth0 = add_dev("eth0", 0x10);
    eth1 = add_dev("eth1", 0x11);
    ASSERT_NE(eth0, nullptr);
    ASSERT_NE(eth1, nullptr);
  }
  void TearDown() override {
    for (auto& p : paths) unlink(p.c_str());
  }

  Device* add_dev(const std::string& name, uint8_t mac_last) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->kind = DevKind::port;
    d->mac = rte_ether_addr{{0x02, 0, 0, 0, 0, mac_last}};
    return dp.net.add_device(std::move(d));
  }

  std::string path(const std::string& name) {
    paths.push_back(temp_path(name));
    return paths.back();
  }

  rte_mbuf* frame(uint8_t dst_last, uint16_t len = 60, uint16_t vid = 0) {
    rte_mbuf* m = rte_pktmbuf_alloc(test::pool());
    EXPECT_NE(m, nullptr);
    auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, len));
    for (uint16_t i = 0; i < len; i++) p[i] = static_cast<uint8_t>(i);
    auto* eh = reinterpret_cast<rte_ether_hdr*>(p);
    eh->dst_addr = rte_ether_addr{{0x02, 0, 0, 0, 0, dst_last}};
    eh->src_addr = rte_ether_addr{{0x02, 0, 0, 0, 0, 0xaa}};
    eh->ether_type = rte_cpu_to_be_16(0x88b5);
    std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
    meta(m).protocol = 0x88b5;
    if (vid != 0) {
      meta(m).flags = kFlagVlan;
      meta(m).vlan_proto = 0x8100;
      meta(m).vlan_tci = vid;
    }
    return m;
  }

  // What netif_receive (ingress) and dev_queue_xmit (egress) do with taps:
  // namespace-wide list first, then the device's own.
  void run_taps(Device& dev, std::vector<rte_mbuf*>& pkts, Direction dir) {
    run_taps_on(w, dev, pkts, dir);
  }
  void run_taps_on(Worker& wk, Device& dev, std::vector<rte_mbuf*>& pkts, Direction dir) {
    for (const TapList* tl : {dp.net.taps(), dev.taps.load(std::memory_order_acquire)}) {
      if (tl == nullptr) continue;
      for (const Tap& t : tl->taps)
        t.fn(wk, dev, t.ctx, pkts.data(), static_cast<uint16_t>(pkts.size()), dir);
    }
  }
  // n fresh frames through the taps, then freed (the tap must have copied).
  void inject(Device& dev, unsigned n, Direction dir, uint8_t dst_last = 1, uint16_t len = 60,
              uint16_t vid = 0) {
    std::vector<rte_mbuf*> pkts;
    for (unsigned i = 0; i < n; i++) pkts.push_back(frame(dst_last, len, vid));
    run_taps(dev, pkts, dir);
    rte_pktmbuf_free_bulk(pkts.data(), static_cast<unsigned>(pkts.size()));
  }

  CaptureManager& mgr() { return dp.feature<CaptureManager>(); }
  CaptureInfo info(uint32_t id) {
    CaptureInfo c;
    if (mgr().info(id, &c)) return c;
    ADD_FAILURE() << "no capture " << id;
    return {};
  }
  bool wait_written(uint32_t id, uint64_t n) {
    for (int i = 0; i < 2000; i++) {
      if (info(id).written >= n) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  }
  uint32_t start(CaptureOptions o) {
    std::string err;
    uint32_t id = mgr().start(o, &err);
    EXPECT_NE(id, 0u) << err;
    return id;
  }
  CmdResult cli(const std::vector<std::string>& argv) {
    return CommandRegistry::instance().run(dp, argv);
  }

  Dataplane dp;
  Worker w{dp.net, 0};
  Device* eth0 = nullptr;
  Device* eth1 = nullptr;
  std::vector<std::string> paths;
};

TEST_F(CaptureTest, BothDirectionsOnOneDevice) {
  CaptureOptions o;
  o.dev = "eth0";
  o.path = path("both.pcapng");
  uint32_t id = start(o);
  ASSERT_NE(dp.net.find("eth0")->taps.load(), nullptr);
  EXPECT_EQ(dp.net.taps(), nullptr);  // a device capture is on the device's list only

  inject(*eth0, 3, Direction::ingress, 1);
  inject(*eth0, 2, Direction::egress, 2);
  ASSERT_TRUE(wait_written(id, 5));
  EXPECT_TRUE(info(id).running);
  ASSERT_TRUE(mgr().stop(id));
  EXPECT_EQ(eth0->taps.load(), nullptr);
  EXPECT_FALSE(mgr().stop(id));  // already stopped

  CaptureInfo ci = info(id);
  EXPECT_FALSE(ci.running);
  EXPECT_EQ(ci.accepted, 5u);
  EXPECT_EQ(ci.written, 5u);
  EXPECT_EQ(ci.nombuf, 0u);
  EXPECT_EQ(ci.ringfull, 0u);
  EXPECT_EQ(ci.filtered, 0u);
  EXPECT_EQ(ci.snaplen, kCaptureSnaplenMax);
  EXPECT_TRUE(ci.error.empty()) << ci.error;

  auto rows = tshark(o.path,
                     "-e frame.interface_name -e frame.packet_flags_direction -e eth.dst "
                     "-e frame.time_epoch -e frame.len");
  ASSERT_EQ(rows.size(), 5u);
  double now = static_cast<double>(realtime_ns()) / 1e9;
  for (size_t i = 0; i < rows.size(); i++) {
    ASSERT_GE(rows[i].size(), 5u);
    EXPECT_EQ(rows[i][0], "eth0");
    EXPECT_EQ(dir_of(rows[i][1]), i < 3 ? 1u : 2u) << "packet " << i;
    EXPECT_EQ(rows[i][2], i < 3 ? "02:00:00:00:00:01" : "02:00:00:00:00:02");
    double t = std::stod(rows[i][3]);
    EXPECT_LT(std::abs(now - t), 10.0) << rows[i][3];  // not year 2251
    EXPECT_EQ(rows[i][4], "60");
  }
}

TEST_F(CaptureTest, DirectionFilterIngressOnlyAndEgressOnly) {
  CaptureOptions in;
  in.dev = "eth0";
  in.dir = Direction::ingress;
  in.path = path("in.pcapng");
  CaptureOptions out = in;
  out.dir = Direction::egress;
  out.path = path("out.pcapng");
  uint32_t a = start(in);
  uint32_t b = start(out);
  inject(*eth0, 2, Direction::ingress);
  inject(*eth0, 4, Direction::egress);
  ASSERT_TRUE(wait_written(a, 2));
  ASSERT_TRUE(wait_written(b, 4));
  EXPECT_EQ(mgr().stop_all(), 2u);
  EXPECT_EQ(info(a).accepted, 2u);
  EXPECT_EQ(info(b).accepted, 4u);
  auto ra = tshark(in.path, "-e frame.packet_flags_direction");
  auto rb = tshark(out.path, "-e frame.packet_flags_direction");
  ASSERT_EQ(ra.size(), 2u);
  ASSERT_EQ(rb.size(), 4u);
  for (auto& r : ra) EXPECT_EQ(dir_of(r.at(0)), 1u);
  for (auto& r : rb) EXPECT_EQ(dir_of(r.at(0)), 2u);
}

TEST_F(CaptureTest, CountWritesExactlyNAndTheTimerFinishes) {
  CaptureOptions o;
  o.dev = "eth1";
  o.path = path("count.pcapng");
  o.count = 3;
  uint32_t id = start(o);
  inject(*eth1, 10, Direction::ingress);
  inject(*eth1, 10, Direction::egress);
  ASSERT_TRUE(wait_written(id, 3));
  // The writer only raises a flag; the control-thread timer removes the tap.
  bool finished = false;
  for (int i = 0; i < 2000 && !finished; i++) {
    dp.run_timers(1000000 + static_cast<uint64_t>(i) * 100);
    finished = !info(id).running;
    if (!finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_TRUE(finished);
  EXPECT_EQ(eth1->taps.load(), nullptr);
  CaptureInfo ci = info(id);
  EXPECT_EQ(ci.written, 3u);
  EXPECT_EQ(ci.count, 3u);
  EXPECT_EQ(ci.accepted, 3u);  // one worker stops copying once it queued `count`
  auto rows = tshark(o.path, "-e frame.interface_name");
  EXPECT_EQ(rows.size(), 3u);
  EXPECT_TRUE(tshark_reads(o.path));
}

TEST_F(CaptureTest, RingFullIsCountedNotBlocking) {
  CaptureOptions o;
  o.dev = "eth0";
  o.path = path("ringfull.pcapng");
  o.ring_size = 4;
  uint32_t id = start(o);
  inject(*eth0, 32, Direction::ingress);  // one burst: 4 fit, 28 do not
  ASSERT_TRUE(wait_written(id, 4));
  mgr().stop(id);
  CaptureInfo ci = info(id);
  EXPECT_EQ(ci.accepted, 32u);
  EXPECT_EQ(ci.ringfull, 28u);
  EXPECT_EQ(ci.written, 4u);
  EXPECT_EQ(ci.nombuf, 0u);
  EXPECT_EQ(tshark(o.path, "-e frame.number").size(), 4u);
}

TEST_F(CaptureTest, PoolExhaustedIsNombuf) {
  CaptureOptions o;
  o.dev = "eth0";
  o.path = path("nombuf.pcapng");
  o.pool_size = 8;
  uint32_t id = start(o);
  inject(*eth0, 32, Direction::ingress);
  CaptureInfo ci = info(id);
  EXPECT_GT(ci.nombuf, 0u);
  EXPECT_EQ(ci.accepted + ci.nombuf, 32u);
  ASSERT_TRUE(wait_written(id, ci.accepted));
  mgr().stop(id);
  ci = info(id);
  EXPECT_EQ(ci.written, ci.accepted);
  EXPECT_EQ(tshark(o.path, "-e frame.number").size(), ci.accepted);
}

TEST_F(CaptureTest, AnyCaptureHasOneInterfacePerDeviceSeen) {
  Device* eth2 = add_dev("eth2", 0x12);  // never sends: gets no IDB
  ASSERT_NE(eth2, nullptr);
  CaptureOptions o;
  o.dev = "any";
  o.path = path("any.pcapng");
  uint32_t id = start(o);
  ASSERT_NE(dp.net.taps(), nullptr);  // namespace-wide list
  inject(*eth1, 2, Direction::ingress, 1);
  inject(*eth0, 1, Direction::egress, 2);
  inject(*eth1, 1, Direction::egress, 3);
  ASSERT_TRUE(wait_written(id, 4));
  mgr().stop(id);
  EXPECT_EQ(dp.net.taps(), nullptr);
  auto rows = tshark(o.path,
                     "-e frame.interface_id -e frame.interface_name "
                     "-e frame.packet_flags_direction");
  ASSERT_EQ(rows.size(), 4u);
  // IDBs in order of first appearance: eth1 = 0, eth0 = 1.
  EXPECT_EQ(rows[0][0], "0");
  EXPECT_EQ(rows[0][1], "eth1");
  EXPECT_EQ(rows[1][1], "eth1");
  EXPECT_EQ(rows[2][0], "1");
  EXPECT_EQ(rows[2][1], "eth0");
  EXPECT_EQ(dir_of(rows[2][2]), 2u);
  EXPECT_EQ(rows[3][0], "0");
  EXPECT_EQ(dir_of(rows[3][2]), 2u);
  std::set<std::string> names;
  for (auto& r : rows) names.insert(r[1]);
  EXPECT_EQ(names, (std::set<std::string>{"eth0", "eth1"}));
}

TEST_F(CaptureTest, VlanTagFromMetadataAndSnaplen) {
  CaptureOptions o;
  o.dev = "eth0";
  o.path = path("vlan.pcapng");
  o.snaplen = 64;
  uint32_t id = start(o);
  EXPECT_EQ(info(id).snaplen, 64u);
  inject(*eth0, 1, Direction::ingress, 1, 200, 100);  // tagged: 204 on the wire
  inject(*eth0, 1, Direction::ingress, 1, 200, 0);
  inject(*eth0, 1, Direction::ingress, 1, 60, 5);
  ASSERT_TRUE(wait_written(id, 3));
  mgr().stop(id);
  auto rows = tshark(o.path, "-e vlan.id -e frame.len -e frame.cap_len -e vlan.etype");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "100");
  EXPECT_EQ(rows[0][1], "204");
  EXPECT_EQ(rows[0][2], "64");
  EXPECT_EQ(rows[0][3], "0x88b5");
  EXPECT_EQ(rows[1][0], "");
  EXPECT_EQ(rows[1][1], "200");
  EXPECT_EQ(rows[1][2], "64");
  EXPECT_EQ(rows[2][0], "5");
  EXPECT_EQ(rows[2][1], "64");
  EXPECT_EQ(rows[2][2], "64");
}

TEST_F(CaptureTest, ErrorsRegisterNothing) {
  std::string err;
  CaptureOptions o;
  o.dev = "nosuch0";
  o.path = path("never.pcapng");
  EXPECT_EQ(mgr().start(o, &err), 0u);
  EXPECT_NE(err.find("nosuch0"), std::string::npos) << err;
  EXPECT_NE(access(o.path.c_str(), F_OK), 0);  // no file created

  o.dev = "eth0";
  o.path = "/nonexistent-dir/cap.pcapng";
  err.clear();
  EXPECT_EQ(mgr().start(o, &err), 0u);
  EXPECT_NE(err.find("/nonexistent-dir/cap.pcapng"), std::string::npos) << err;

  o.path = path("filter.pcapng");
  o.filter = "tcp port";
  err.clear();
  EXPECT_EQ(mgr().start(o, &err), 0u);
  EXPECT_EQ(err, "bad filter 'tcp port': can't parse filter expression: syntax error");
  EXPECT_NE(access(o.path.c_str(), F_OK), 0);  // no file created

  o.filter.clear();
  o.snaplen = 1;
  EXPECT_EQ(mgr().start(o, &err), 0u);

  EXPECT_TRUE(mgr().list().empty());
  EXPECT_EQ(eth0->taps.load(), nullptr);
  EXPECT_EQ(dp.net.taps(), nullptr);
}

TEST_F(CaptureTest, ShutdownStopsEveryCaptureCleanly) {
  CaptureOptions a;
  a.dev = "eth0";
  a.path = path("sd-a.pcapng");
  CaptureOptions b;
  b.dev = "any";
  b.path = path("sd-b.pcapng");
  uint32_t ia = start(a);
  uint32_t ib = start(b);
  inject(*eth0, 3, Direction::ingress);
  dp.run_shutdown();
  EXPECT_FALSE(info(ia).running);
  EXPECT_FALSE(info(ib).running);
  EXPECT_EQ(info(ia).written, 3u);  // the ring is drained before the file closes
  EXPECT_EQ(info(ib).written, 3u);
  EXPECT_EQ(eth0->taps.load(), nullptr);
  EXPECT_EQ(dp.net.taps(), nullptr);
  EXPECT_TRUE(tshark_reads(a.path));
  EXPECT_TRUE(tshark_reads(b.path));
  EXPECT_EQ(tshark(b.path, "-e frame.number").size(), 3u);
}

TEST_F(CaptureTest, ConcurrentWorkersLoseNothingUncounted) {
  CaptureOptions o;
  o.dev = "any";
  o.path = path("mt.pcapng");
  uint32_t id = start(o);
  Worker w1(dp.net, 1);
  Worker w2(dp.net, 2);
  constexpr unsigned kRounds = 100;
  auto body = [&](Worker& wk, Device& dev, Direction dir) {
    for (unsigned r = 0; r < kRounds; r++) {
      std::vector<rte_mbuf*> pkts;
      for (unsigned i = 0; i < kBurst; i++) pkts.push_back(frame(static_cast<uint8_t>(r)));
      run_taps_on(wk, dev, pkts, dir);
      rte_pktmbuf_free_bulk(pkts.data(), static_cast<unsigned>(pkts.size()));
    }
  };
  std::thread t1(body, std::ref(w1), std::ref(*eth0), Direction::ingress);
  std::thread t2(body, std::ref(w2), std::ref(*eth1), Direction::egress);
  t1.join();
  t2.join();
  CaptureInfo ci = info(id);
  EXPECT_EQ(ci.accepted + ci.nombuf, 2u * kRounds * kBurst);
  ASSERT_TRUE(wait_written(id, ci.accepted - ci.ringfull));
  mgr().stop(id);
  ci = info(id);
  EXPECT_EQ(ci.written, ci.accepted - ci.ringfull);
  auto rows = tshark(o.path, "-e frame.interface_name -e frame.packet_flags_direction");
  ASSERT_EQ(rows.size(), ci.written);
  for (auto& r : rows) EXPECT_EQ(dir_of(r.at(1)), r.at(0) == "eth0" ? 1u : 2u);
}

TEST_F(CaptureTest, ThroughTheCoreTransmitPath) {
  // A device whose xmit frees: dev_queue_xmit runs the egress taps first.
  eth1->xmit = [](Worker& wk, Device&, rte_mbuf** pkts, uint16_t n) {
    for (uint16_t i = 0; i < n; i++) wk.free_later(pkts[i]);
  };
  CaptureOptions o;
  o.dev = "eth1";
  o.path = path("xmit.pcapng");
  uint32_t id = start(o);
  std::vector<rte_mbuf*> pkts;
  for (int i = 0; i < 5; i++) pkts.push_back(frame(9));
  dev_queue_xmit(w, *eth1, pkts.data(), static_cast<uint16_t>(pkts.size()));
  w.flush_free();
  ASSERT_TRUE(wait_written(id, 5));
  mgr().stop(id);
  auto rows = tshark(o.path, "-e frame.interface_name -e frame.packet_flags_direction");
  ASSERT_EQ(rows.size(), 5u);
  for (auto& r : rows) {
    EXPECT_EQ(r.at(0), "eth1");
    EXPECT_EQ(dir_of(r.at(1)), 2u);
  }
}

TEST_F(CaptureTest, Commands) {
  std::string file = path("cli.pcapng");
  auto r = cli({"capture", "start", "eth0", "tcp", "prot", "80", "file", file});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.text, "bad filter 'tcp prot 80': can't parse filter expression: syntax error");
  r = cli({"capture", "start", "eth0", "ingress", "port", "99999", "file", file});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.text, "bad filter 'port 99999': illegal port number 99999 > 65535");
  EXPECT_EQ(cli({"capture", "start", "eth0", "file", file, "seconds", "x"}).status, 1);
  EXPECT_EQ(cli({"capture", "start", "eth0"}).status, 1);
  EXPECT_EQ(cli({"capture", "start", "eth0", "file", file, "count"}).status, 1);
  EXPECT_EQ(cli({"capture", "start", "eth0", "file", file, "count", "x"}).status, 1);
  EXPECT_EQ(cli({"capture", "start", "eth0", "file", file, "bogus", "1"}).status, 1);
  EXPECT_EQ(cli({"capture", "start", "nosuch", "file", file}).status, 1);

  r = cli({"capture", "start", "eth0", "egress", "file", file, "count", "2", "snaplen", "128"});
  ASSERT_EQ(r.status, 0) << r.text;
  uint32_t id = r.json.at("id").get<uint32_t>();
  inject(*eth0, 1, Direction::egress);
  ASSERT_TRUE(wait_written(id, 1));

  r = cli({"show", "captures"});
  ASSERT_EQ(r.status, 0) << r.text;
  ASSERT_TRUE(r.json.is_array());
  ASSERT_EQ(r.json.size(), 1u);
  auto& j = r.json[0];
  for (const char* k : {"id", "dev", "direction", "file", "accepted", "filtered", "nombuf",
                        "ringfull", "written", "count", "running"})
    EXPECT_TRUE(j.contains(k)) << k;
  EXPECT_EQ(j["id"], id);
  EXPECT_EQ(j["dev"], "eth0");
  EXPECT_EQ(j["direction"], "egress");
  EXPECT_EQ(j["file"], file);
  EXPECT_EQ(j["accepted"], 1);
  EXPECT_EQ(j["written"], 1);
  EXPECT_EQ(j["count"], 2);
  EXPECT_EQ(j["snaplen"], 128);
  EXPECT_EQ(j["running"], true);
  EXPECT_NE(r.text.find("eth0"), std::string::npos);
  EXPECT_NE(r.text.find("RINGFULL"), std::string::npos);

  EXPECT_EQ(cli({"capture", "stop", "99"}).status, 1);
  EXPECT_EQ(cli({"capture", "stop", "x"}).status, 1);
  r = cli({"capture", "stop"});
  EXPECT_EQ(r.status, 0) << r.text;
  EXPECT_EQ(r.json.at("stopped"), 1);

  // Finished captures stay listed with their final counters until the next start.
  r = cli({"show", "captures"});
  ASSERT_EQ(r.json.size(), 1u);
  EXPECT_EQ(r.json[0]["running"], false);
  EXPECT_EQ(r.json[0]["written"], 1);
  EXPECT_EQ(tshark(file, "-e frame.number").size(), 1u);

  std::string file2 = path("cli2.pcapng");
  r = cli({"capture", "start", "any", "file", file2});
  ASSERT_EQ(r.status, 0) << r.text;
  uint32_t id2 = r.json.at("id").get<uint32_t>();
  EXPECT_GT(id2, id);
  r = cli({"show", "captures"});
  ASSERT_EQ(r.json.size(), 1u);  // the finished one is forgotten
  EXPECT_EQ(r.json[0]["dev"], "any");
  EXPECT_EQ(r.json[0]["direction"], "both");
  EXPECT_TRUE(r.json[0]["filter_engine"].is_null());  // no filter
  EXPECT_EQ(cli({"capture", "stop", std::to_string(id2)}).status, 0);

  // A filter: the words before `file`, shown in the list.
  std::string file3 = path("cli3.pcapng");
  r = cli({"capture", "start", "eth0", "ingress", "ether", "dst", "02:00:00:00:00:01", "file",
           file3, "seconds", "100"});
  ASSERT_EQ(r.status, 0) << r.text;
  EXPECT_NE(r.text.find("\"ether dst 02:00:00:00:00:01\""), std::string::npos) << r.text;
  uint32_t id3 = r.json.at("id").get<uint32_t>();
  inject(*eth0, 2, Direction::ingress, 1);
  inject(*eth0, 3, Direction::ingress, 2);
  ASSERT_TRUE(wait_written(id3, 2));
  r = cli({"show", "captures"});
  ASSERT_EQ(r.json.size(), 1u);
  EXPECT_EQ(r.json[0]["filter"], "ether dst 02:00:00:00:00:01");
  EXPECT_EQ(r.json[0]["seconds"], 100);
  EXPECT_EQ(r.json[0]["accepted"], 2);
  EXPECT_EQ(r.json[0]["filtered"], 3);
  EXPECT_EQ(r.json[0]["filter_engine"], "jit");
  EXPECT_NE(r.text.find("ether dst 02:00:00:00:00:01"), std::string::npos) << r.text;
  EXPECT_EQ(cli({"capture", "stop", std::to_string(id3)}).status, 0);
}

TEST_F(CaptureTest, FilterRejectsWithoutCopyingAndCounts) {
  CaptureOptions o;
  o.dev = "eth0";
  o.path = path("filter.pcapng");
  o.filter = "ether dst 02:00:00:00:00:01 or vlan 100";
  o.pool_size = 4;  // a rejected packet takes no copy: 10 rejected + 3 accepted fit
  o.ring_size = 4;
  uint32_t id = start(o);
  EXPECT_EQ(info(id).filter, o.filter);
  inject(*eth0, 10, Direction::ingress, 2);         // rejected
  inject(*eth0, 2, Direction::ingress, 1);          // accepted
  inject(*eth0, 1, Direction::egress, 3, 60, 100);  // tagged in the metadata: accepted
  inject(*eth0, 1, Direction::egress, 3, 60, 200);  // another VID: rejected
  ASSERT_TRUE(wait_written(id, 3));
  mgr().stop(id);
  CaptureInfo ci = info(id);
  EXPECT_EQ(ci.accepted, 3u);
  EXPECT_EQ(ci.filtered, 11u);
  EXPECT_EQ(ci.nombuf, 0u);
  EXPECT_EQ(ci.ringfull, 0u);
  EXPECT_EQ(ci.written, 3u);
  auto rows = tshark(o.path, "-e eth.dst -e vlan.id");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0][0], "02:00:00:00:00:01");
  EXPECT_EQ(rows[2][0], "02:00:00:00:00:03");
  EXPECT_EQ(rows[2][1], "100");
}

TEST_F(CaptureTest, SecondsFinishTheCaptureFromTheTimer) {
  CaptureOptions o;
  o.dev = "eth0";
  o.path = path("seconds.pcapng");
  o.seconds = 1;
  uint32_t id = start(o);
  inject(*eth0, 2, Direction::ingress);
  ASSERT_TRUE(wait_written(id, 2));
  dp.run_timers(5000000);
  EXPECT_TRUE(info(id).running);  // not yet a second
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  dp.run_timers(6000000);
  EXPECT_FALSE(info(id).running);
  EXPECT_EQ(eth0->taps.load(), nullptr);
  EXPECT_EQ(tshark(o.path, "-e frame.number").size(), 2u);
}

TEST_F(CaptureTest, SinkIsFedByItsOwnerAndHidden) {
  CaptureOptions o;
  o.dev = "eth1";
  o.path = path("sink.pcapng");
  o.tap = false;
  o.label = "mirror m0";
  o.max_bytes = 2000;
  uint32_t id = start(o);
  EXPECT_EQ(eth1->taps.load(), nullptr);  // no tap
  EXPECT_TRUE(mgr().list().empty());      // not in show captures
  ASSERT_EQ(mgr().list(true).size(), 1u);
  void* ctx = mgr().sink(id);
  ASSERT_NE(ctx, nullptr);
  EXPECT_EQ(mgr().stop_all(), 0u);  // `capture stop` leaves it alone
  EXPECT_FALSE(mgr().stop(id));
  // 40 frames of 100 bytes: max_bytes stops the file before it passes 2000.
  unsigned queued = 0;
  for (int batch = 0; batch < 8; batch++) {
    for (int i = 0; i < 5; i++) {
      rte_mbuf* m = frame(1, 100);
      queued += CaptureManager::feed(w, *eth1, ctx, &m, 1, Direction::egress);
      rte_pktmbuf_free(m);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // the writer catches up
  }
  dp.run_timers(7000000);
  EXPECT_TRUE(mgr().list(true)[0].running);  // the timer leaves a sink to its owner
  EXPECT_TRUE(mgr().stop(id, true));
  struct stat st;
  ASSERT_EQ(stat(o.path.c_str(), &st), 0);
  EXPECT_LE(st.st_size, 2000 + 200);  // + the ISB written at close
  CaptureInfo ci = info(id);
  EXPECT_GT(ci.written, 5u);
  EXPECT_LT(ci.written, 20u);
  EXPECT_LT(queued, 40u);  // a full sink refuses copies (its owner counts them as failed)
  EXPECT_TRUE(tshark_reads(o.path));
  auto rows = tshark(o.path, "-e frame.interface_name");
  EXPECT_EQ(rows.size(), ci.written);
}

}  // namespace
}  // namespace sluice
