// What the L3 and hook unit tests (test_l3.cc, test_hooks.cc) share: IPv4
// and IPv6 packet builders with their checksums, and a dataplane with one
// worker and two recording devices, p0 and p1, on which L3 can be set up
// with topology T4 of the spec.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <memory>
#include <vector>

#include <rte_mempool.h>

#include "core/dataplane.hh"
#include "l3/config.hh"
#include "l3/l3.hh"
#include "support/frames.hh"

namespace sluice::test {

// The Internet checksum of n bytes (16-bit big-endian words), complemented:
// 0 over data that carries a correct one.
inline uint16_t csum(const uint8_t* p, size_t n) {
  uint32_t s = 0;
  for (size_t i = 0; i + 1 < n; i += 2) s += uint32_t(p[i]) << 8 | p[i + 1];
  if (n & 1) s += uint32_t(p[n - 1]) << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

inline uint32_t ip4(const char* s) {  // host order
  in_addr a;
  inet_pton(AF_INET, s, &a);
  return ntohl(a.s_addr);
}

inline std::array<uint8_t, 16> ip6(const char* s) {
  std::array<uint8_t, 16> a{};
  inet_pton(AF_INET6, s, a.data());
  return a;
}

// An IPv4 packet: a header from these fields (checksummed unless bad_csum),
// then l4 as it is.
struct Ip {
  const char* src = "192.0.2.100";
  const char* dst = "198.51.100.7";
  uint8_t ttl = 64;
  uint8_t proto = 17;
  uint16_t frag = 0;  // flags + offset
  uint8_t ihl = 5;
  uint8_t version = 4;
  uint16_t id = 0x1234;
  int tot_delta = 0;  // added to the correct total length
  bool bad_csum = false;
  std::vector<uint8_t> l4 = std::vector<uint8_t>(26, 0x42);
};

inline std::vector<uint8_t> ip_bytes(const Ip& s) {
  std::vector<uint8_t> p(20 + s.l4.size());
  uint16_t tot = static_cast<uint16_t>(p.size() + s.tot_delta);
  p[0] = static_cast<uint8_t>(s.version << 4 | s.ihl);
  p[2] = tot >> 8;
  p[3] = tot & 0xff;
  p[4] = s.id >> 8;
  p[5] = s.id & 0xff;
  p[6] = s.frag >> 8;
  p[7] = s.frag & 0xff;
  p[8] = s.ttl;
  p[9] = s.proto;
  uint32_t a = ip4(s.src), b = ip4(s.dst);
  for (int i = 0; i < 4; i++) {
    p[12 + i] = static_cast<uint8_t>(a >> (24 - 8 * i));
    p[16 + i] = static_cast<uint8_t>(b >> (24 - 8 * i));
  }
  uint16_t c = csum(p.data(), 20);
  if (s.bad_csum) c ^= 0x5555;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  std::copy(s.l4.begin(), s.l4.end(), p.begin() + 20);
  return p;
}

// An IPv6 packet: the header, then l4 as it is (no checksum computed).
inline std::vector<uint8_t> ip6_bytes(const char* src, const char* dst, uint8_t next, uint8_t hop,
                                      const std::vector<uint8_t>& l4) {
  std::vector<uint8_t> p(40 + l4.size());
  p[0] = 0x60;
  p[4] = static_cast<uint8_t>(l4.size() >> 8);
  p[5] = static_cast<uint8_t>(l4.size());
  p[6] = next;
  p[7] = hop;
  auto s6 = ip6(src), d6 = ip6(dst);
  std::copy(s6.begin(), s6.end(), p.begin() + 8);
  std::copy(d6.begin(), d6.end(), p.begin() + 24);
  std::copy(l4.begin(), l4.end(), p.begin() + 40);
  return p;
}

// One worker and two devices whose frames land in `sink`: p0
// (02:00:00:00:00:01) and p1 (…:02). TearDown fails the test when an mbuf
// leaked.
class TwoPortTest : public ::testing::Test {
 protected:
  std::unique_ptr<Dataplane> dp;
  XmitSink sink;
  Worker* w = nullptr;
  Device* p0 = nullptr;
  Device* p1 = nullptr;
  l3::L3* l3 = nullptr;  // after start_l3()
  unsigned avail_before = 0;

  void SetUp() override {
    avail_before = rte_mempool_avail_count(pool());
    dp = std::make_unique<Dataplane>();
    dp->pools[0] = pool();
    dp->workers.push_back(std::make_unique<Worker>(dp->net, 0));
    w = dp->workers[0].get();
    p0 = add_dev("p0", "02:00:00:00:00:01");
    p1 = add_dev("p1", "02:00:00:00:00:02");
  }
  void TearDown() override {
    w->flush_free();
    dp.reset();
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
  }
  Device* add_dev(const char* name, const char* m) {
    auto d = std::make_unique<Device>();
    d->name = name;
    d->mac = mac(m);
    d->xmit = sink_xmit;
    d->xmit_ctx = &sink;
    return dp->net.add_device(std::move(d));
  }

  // T4: 192.0.2.1/24 on p0 (peer 192.0.2.100, 02:00:00:00:00:aa),
  // 198.51.100.1/24 on p1 (neighbour 198.51.100.7, 02:00:00:00:00:77).
  void t4_addresses() {
    dp->topo.get<l3::Config>().addresses = {{{}, "p0", "192.0.2.1/24", {}, {}},
                                            {{}, "p1", "198.51.100.1/24", {}, {}}};
  }
  void t4_neighbours() {
    dp->topo.get<l3::Config>().neighbours = {
        {{}, "p1", "198.51.100.7", "02:00:00:00:00:77", {}, {}},
        {{}, "p0", "192.0.2.100", "02:00:00:00:00:aa", {}, {}}};
  }
  // L3 from dp->topo (l3::setup), its clock at now.
  void start_l3(uint64_t now) {
    l3::setup(*dp);
    l3 = dp->find_feature<l3::L3>();
    ASSERT_NE(l3, nullptr);
    l3->fake_now_ms = now;
  }
};

}  // namespace sluice::test
