// Kernel peers (src/core/rx_csum.hh) on crafted frames: partial checksums
// completed, good and bad ones left alone, UDP/IPv4 without a checksum,
// IPv4/IPv6, TCP/UDP, VLAN and QinQ tags, IPv6 options headers; TCP GSO
// frames cut into segments; truncated and oversize frames dropped and
// reported once; frames from the 64 KB landing pool copied out of it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <rte_ip.h>
#include <rte_mempool.h>

#include "core/netif.hh"
#include "core/rx_csum.hh"
#include "support/frames.hh"

using namespace sluice;
using namespace sluice::test;
using sluice::rx_csum::Csum;

namespace {

struct Pkt {
  int ip = 4;                  // 4 or 6
  int proto = 6;               // 6 TCP, 17 UDP
  std::vector<uint32_t> tags;  // (tpid << 16) | tci, outermost first
  size_t payload = 100;
  bool v6_hbh = false;       // an 8-byte hop-by-hop options header before L4
  uint8_t tcp_flags = 0x18;  // PSH ACK
  bool tcp_ts = true;        // 12 bytes of options (NOP NOP timestamps)
  uint32_t seq = 1000;
};

void set16(std::vector<uint8_t>& f, size_t o, uint16_t v) {
  f[o] = static_cast<uint8_t>(v >> 8);
  f[o + 1] = static_cast<uint8_t>(v);
}

// Ethernet [tags] IP [HBH] TCP/UDP payload, with a correct checksum.
std::vector<uint8_t> build(const Pkt& k) {
  std::vector<uint8_t> f;
  auto put = [&](std::initializer_list<int> b) {
    for (int x : b) f.push_back(static_cast<uint8_t>(x));
  };
  auto put16 = [&](unsigned v) { put({int(v >> 8 & 0xff), int(v & 0xff)}); };
  put({0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0xaa});
  for (uint32_t t : k.tags) put16(t >> 16), put16(t & 0xffff);
  put16(k.ip == 4 ? 0x0800 : 0x86dd);
  size_t l3 = f.size();
  unsigned l4_hdr = k.proto == 6 ? (k.tcp_ts ? 32 : 20) : 8;
  unsigned ext = k.v6_hbh ? 8 : 0;
  unsigned l4_len = static_cast<unsigned>(l4_hdr + k.payload);
  if (k.ip == 4) {
    unsigned tot = 20 + l4_len;
    put({0x45, 0});
    put16(tot);
    put({0x12, 0x34, 0x40, 0x00, 64, k.proto, 0, 0, 10, 0, 1, 2, 10, 0, 2, 2});
  } else {
    put({0x60, 0, 0, 0});
    put16(ext + l4_len);
    put({k.v6_hbh ? 0 : k.proto, 64});
    for (int i = 0; i < 16; i++) f.push_back(i == 0 ? 0x20 : i == 1 ? 0x01 : i == 15 ? 2 : 0);
    for (int i = 0; i < 16; i++) f.push_back(i == 0 ? 0x20 : i == 1 ? 0x01 : i == 15 ? 3 : 0);
    if (k.v6_hbh) put({k.proto, 0, 1, 4, 0, 0, 0, 0});  // PadN
  }
  size_t l4 = f.size();
  if (k.proto == 6) {
    put({0x30, 0x39, 0x14, 0x51});
    put16(k.seq >> 16), put16(k.seq & 0xffff);
    put({0, 0, 0, 1, int(l4_hdr / 4) << 4, k.tcp_flags, 0xff, 0xff, 0, 0, 0, 0});
    if (k.tcp_ts) put({1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9});
  } else {
    put({0x30, 0x39, 0x14, 0x51});
    put16(l4_len);
    put({0, 0});
  }
  for (size_t i = 0; i < k.payload; i++) f.push_back(static_cast<uint8_t>(i * 7 + 3));
  if (k.ip == 4) {
    auto* ip = reinterpret_cast<rte_ipv4_hdr*>(f.data() + l3);
    ip->hdr_checksum = rte_ipv4_cksum(ip);
  }
  // The L4 checksum, summed byte by byte (RFC 1071) over the pseudo-header
  // and the segment with its field zero.
  uint64_t sum = k.proto + l4_len;
  const uint8_t* addrs = f.data() + l3 + (k.ip == 4 ? 12 : 8);
  size_t alen = k.ip == 4 ? 8 : 32;
  for (size_t i = 0; i < alen; i++) sum += (i % 2 == 0) ? uint64_t(addrs[i]) << 8 : addrs[i];
  for (size_t i = 0; i < l4_len; i++) sum += (i % 2 == 0) ? uint64_t(f[l4 + i]) << 8 : f[l4 + i];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint16_t c = static_cast<uint16_t>(~sum);
  if (k.proto == 6 || k.proto == 17) set16(f, l4 + (k.proto == 6 ? 16 : 6), c == 0 ? 0xffff : c);
  return f;
}

size_t l4_offset(const std::vector<uint8_t>& f) {
  rx_csum::Hdrs h = rx_csum::parse(f.data(), static_cast<uint32_t>(f.size()));
  return h.l4_off;
}
size_t csum_off(const std::vector<uint8_t>& f, int proto) {
  return l4_offset(f) + (proto == 6 ? 16 : 6);
}
uint16_t get16(const std::vector<uint8_t>& f, size_t o) {
  return static_cast<uint16_t>(f[o] << 8 | f[o + 1]);
}

// An independent check: the ones' complement sum of the pseudo-header and
// the whole L4 segment is 0xffff (RFC 1071), summed byte by byte.
bool l4_verifies(const std::vector<uint8_t>& f) {
  rx_csum::Hdrs h = rx_csum::parse(f.data(), static_cast<uint32_t>(f.size()));
  uint64_t s = 0;
  auto add = [&](const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i++) s += (i % 2 == 0) ? uint64_t(p[i]) << 8 : p[i];
  };
  uint32_t l4_len = h.ip_end - h.l4_off;
  if (h.ip == 4)
    add(f.data() + h.l3_off + 12, 8);
  else
    add(f.data() + h.l3_off + 8, 32);
  s += h.proto + l4_len;
  add(f.data() + h.l4_off, l4_len);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return s == 0xffff;
}

// What Linux leaves in the field of a CHECKSUM_PARTIAL packet, computed with
// DPDK's pseudo-header helpers (~csum_tcpudp_magic(.., 0) / ~csum_ipv6_magic).
uint16_t partial_value(const std::vector<uint8_t>& f) {
  rx_csum::Hdrs h = rx_csum::parse(f.data(), static_cast<uint32_t>(f.size()));
  if (h.ip == 4)
    return rte_be_to_cpu_16(
        rte_ipv4_phdr_cksum(reinterpret_cast<const rte_ipv4_hdr*>(f.data() + h.l3_off), 0));
  // rte_ipv6_phdr_cksum takes payload_len as the L4 length: right without
  // extension headers only, so the HBH cases compute it themselves.
  return rte_be_to_cpu_16(
      rte_ipv6_phdr_cksum(reinterpret_cast<const rte_ipv6_hdr*>(f.data() + h.l3_off), 0));
}

// 64 KB buffers, as sluice makes for net_af_packet RX (the landing pool).
rte_mempool* big_pool() {
  static rte_mempool* mp =
      rte_pktmbuf_pool_create("test_rx64k", 63, 0, kMbufPrivSize,
                              static_cast<uint16_t>(rx_csum::kFrameSize - 32 + 128), SOCKET_ID_ANY);
  return mp;
}

// A frame in an mbuf of mp (of the 64 KB pool when it is too big for mp's).
rte_mbuf* to_mbuf(const std::vector<uint8_t>& f, rte_mempool* mp = pool()) {
  if (f.size() + RTE_PKTMBUF_HEADROOM > rte_pktmbuf_data_room_size(mp)) mp = big_pool();
  rte_mbuf* m = rte_pktmbuf_alloc(mp);
  if (m == nullptr) return nullptr;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, static_cast<uint16_t>(f.size())));
  if (p == nullptr) {
    rte_pktmbuf_free(m);
    return nullptr;
  }
  std::memcpy(p, f.data(), f.size());
  return m;
}
std::vector<uint8_t> bytes(const rte_mbuf* m) {
  const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
  return std::vector<uint8_t>(p, p + m->data_len);
}

Csum run_complete(std::vector<uint8_t>& f) {
  rx_csum::Hdrs h = rx_csum::parse(f.data(), static_cast<uint32_t>(f.size()));
  return rx_csum::complete(f.data(), static_cast<uint32_t>(f.size()), h);
}

struct Case {
  const char* name;
  Pkt k;
};
const std::vector<Case> kCases = {
    {"tcp4", {4, 6, {}, 100}},
    {"udp4", {4, 17, {}, 100}},
    {"tcp6", {6, 6, {}, 100}},
    {"udp6", {6, 17, {}, 100}},
    {"tcp4 vlan", {4, 6, {0x81000064}, 77}},
    {"udp6 vlan", {6, 17, {0x81000064}, 77}},
    {"tcp6 qinq", {6, 6, {0x88a8000a, 0x81000064}, 1}},
    {"udp4 qinq", {4, 17, {0x88a8000a, 0x81000064}, 0}},
    {"tcp4 syn, no payload", {4, 6, {}, 0, false, 0x02, false}},
    {"tcp4 odd length", {4, 6, {}, 1401}},
    {"udp6 odd length", {6, 17, {}, 1}},
};

TEST(RxCsum, PartialChecksumsAreCompleted) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> good = build(c.k);
    ASSERT_TRUE(l4_verifies(good));
    std::vector<uint8_t> f = good;
    set16(f, csum_off(f, c.k.proto), partial_value(f));
    ASSERT_FALSE(l4_verifies(f));
    EXPECT_EQ(run_complete(f), Csum::completed);
    EXPECT_TRUE(l4_verifies(f));
    EXPECT_EQ(f, good) << "the completed frame is the correctly checksummed one";
  }
}

TEST(RxCsum, GoodAndBadChecksumsAreLeftAlone) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.name);
    std::vector<uint8_t> good = build(c.k);
    std::vector<uint8_t> f = good;
    EXPECT_EQ(run_complete(f), Csum::kept);
    EXPECT_EQ(f, good);
    // Genuinely bad: forwarded as a router would, byte for byte.
    size_t o = csum_off(f, c.k.proto);
    set16(f, o, static_cast<uint16_t>(get16(f, o) ^ 0x1234));
    std::vector<uint8_t> bad = f;
    EXPECT_EQ(run_complete(f), Csum::kept);
    EXPECT_EQ(f, bad);
    // Bad data under a partial-looking field is still completed (the
    // signature is all a receiver without the kernel's metadata can see).
    f = good;
    set16(f, o, partial_value(f));
    f[l4_offset(f)] ^= 0x40;  // corrupt the source port
    EXPECT_EQ(run_complete(f), Csum::completed);
    EXPECT_TRUE(l4_verifies(f));
  }
}

TEST(RxCsum, Udp4WithoutChecksumStaysWithout) {
  Pkt k{4, 17};
  std::vector<uint8_t> f = build(k);
  set16(f, csum_off(f, 17), 0);
  std::vector<uint8_t> before = f;
  EXPECT_EQ(run_complete(f), Csum::none);
  EXPECT_EQ(f, before);
  // Over IPv6 a zero UDP checksum is just wrong (RFC 8200): not the
  // signature either, so left for the receiver to drop.
  Pkt k6{6, 17};
  f = build(k6);
  set16(f, csum_off(f, 17), 0);
  before = f;
  EXPECT_EQ(run_complete(f), Csum::kept);
  EXPECT_EQ(f, before);
}

TEST(RxCsum, Ipv6HopByHopOptions) {
  for (int proto : {6, 17}) {
    Pkt k{6, proto, {}, 50, true};
    std::vector<uint8_t> good = build(k);
    rx_csum::Hdrs h = rx_csum::parse(good.data(), static_cast<uint32_t>(good.size()));
    ASSERT_EQ(h.proto, proto);
    ASSERT_EQ(h.l4_off, 14 + 40 + 8);
    // build() wrote the checksum with the L4 length; fill it in.
    size_t o = csum_off(good, proto);
    set16(good, o, 0);
    uint64_t s = 0;
    for (size_t i = 0; i < 32; i++)
      s += (i % 2 == 0) ? uint64_t(good[14 + 8 + i]) << 8 : good[14 + 8 + i];
    uint32_t l4_len = h.ip_end - h.l4_off;
    s += proto + l4_len;
    uint64_t pseudo = s;
    while (pseudo >> 16) pseudo = (pseudo & 0xffff) + (pseudo >> 16);
    for (size_t i = 0; i < l4_len; i++)
      s += (i % 2 == 0) ? uint64_t(good[h.l4_off + i]) << 8 : good[h.l4_off + i];
    while (s >> 16) s = (s & 0xffff) + (s >> 16);
    set16(good, o, static_cast<uint16_t>(~s));
    ASSERT_TRUE(l4_verifies(good));
    std::vector<uint8_t> f = good;
    set16(f, o, static_cast<uint16_t>(pseudo));
    EXPECT_EQ(run_complete(f), Csum::completed);
    EXPECT_EQ(f, good);
  }
}

TEST(RxCsum, NotTouched) {
  // An IPv4 fragment, a routing header, ICMP, ARP: not_l4, bytes unchanged.
  std::vector<std::vector<uint8_t>> frames;
  Pkt k{4, 17};
  std::vector<uint8_t> frag = build(k);
  frag[14 + 6] = 0x20;  // MF
  frames.push_back(frag);
  Pkt k6{6, 6, {}, 40, true};
  std::vector<uint8_t> rh = build(k6);
  rh[14 + 6] = 43;  // the options header becomes a routing header
  frames.push_back(rh);
  Pkt ki{4, 1};
  std::vector<uint8_t> icmp = build(ki);
  frames.push_back(icmp);
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08, arp[13] = 0x06;
  frames.push_back(arp);
  for (auto& f : frames) {
    std::vector<uint8_t> before = f;
    EXPECT_EQ(run_complete(f), Csum::not_l4);
    EXPECT_EQ(f, before);
  }
}

// ---- segmentation ----------------------------------------------------------

void check_segments(const Pkt& k, uint16_t mtu) {
  std::vector<uint8_t> big = build(k);
  set16(big, csum_off(big, 6), partial_value(big));  // a TSO frame is CHECKSUM_PARTIAL
  rte_mbuf* m = to_mbuf(big);
  ASSERT_NE(m, nullptr);
  rx_csum::Hdrs h = rx_csum::parse(big.data(), static_cast<uint32_t>(big.size()));
  unsigned thl = k.tcp_ts ? 32 : 20;
  unsigned l3 = h.l4_off - h.l3_off;
  unsigned mss = mtu - l3 - thl;
  unsigned want = static_cast<unsigned>((k.payload + mss - 1) / mss);
  std::vector<rte_mbuf*> segs;
  uint32_t off = 0;
  bool nomem = false;
  while (off < k.payload) {  // in small bites, as receive() does when its burst fills
    rte_mbuf* out[3];
    unsigned n = rx_csum::segment(m, h, mtu, pool(), &off, out, 3, &nomem);
    ASSERT_GT(n, 0u);
    segs.insert(segs.end(), out, out + n);
  }
  EXPECT_FALSE(nomem);
  ASSERT_EQ(segs.size(), want);
  std::vector<uint8_t> payload;
  for (size_t i = 0; i < segs.size(); i++) {
    SCOPED_TRACE("segment " + std::to_string(i));
    std::vector<uint8_t> s = bytes(segs[i]);
    rx_csum::Hdrs sh = rx_csum::parse(s.data(), static_cast<uint32_t>(s.size()));
    ASSERT_TRUE(sh.l4_ok);
    EXPECT_EQ(sh.ip_end, s.size());
    EXPECT_LE(sh.ip_end - sh.l3_off, mtu);
    EXPECT_TRUE(l4_verifies(s));
    if (k.ip == 4) {
      EXPECT_EQ(rte_raw_cksum(s.data() + sh.l3_off, 20), 0xffff) << "IPv4 header checksum";
      EXPECT_EQ(get16(s, sh.l3_off + 4), 0x1234 + i) << "IP ID";
    }
    EXPECT_TRUE(std::equal(s.begin(), s.begin() + sh.l3_off, big.begin()));  // Ethernet, tags
    uint32_t seq = uint32_t(get16(s, sh.l4_off + 4)) << 16 | get16(s, sh.l4_off + 6);
    EXPECT_EQ(seq, static_cast<uint32_t>(k.seq + i * mss));  // wraps
    uint8_t fl = s[sh.l4_off + 13];
    bool last = i + 1 == segs.size();
    EXPECT_EQ(fl & 0x09, last ? (k.tcp_flags & 0x09) : 0) << "FIN/PSH on the last only";
    EXPECT_EQ(fl & 0x80, i == 0 ? (k.tcp_flags & 0x80) : 0) << "CWR on the first only";
    EXPECT_EQ(fl & 0x10, k.tcp_flags & 0x10) << "ACK on every one";
    EXPECT_TRUE(std::equal(s.begin() + sh.l4_off + 20, s.begin() + sh.l4_off + thl,
                           big.begin() + h.l4_off + 20))
        << "options copied";
    payload.insert(payload.end(), s.begin() + sh.l4_off + thl, s.end());
    rte_pktmbuf_free(segs[i]);
  }
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), big.begin() + h.l4_off + thl));
  EXPECT_EQ(payload.size(), k.payload);
  rte_pktmbuf_free(m);
}

TEST(RxCsum, TcpGsoFramesAreCut) {
  {
    SCOPED_TRACE("v4, timestamps, FIN PSH ACK CWR");
    check_segments(Pkt{4, 6, {}, 6000, false, 0x99, true}, 1500);
  }
  {
    SCOPED_TRACE("v6, vlan");
    check_segments(Pkt{6, 6, {0x81000064}, 1448 * 4, false, 0x10, true, 0xfffff000}, 1500);
  }
  {
    SCOPED_TRACE("v4 qinq, no options, small MTU");
    check_segments(Pkt{4, 6, {0x88a8000a, 0x81000064}, 1999, false, 0x18, false}, 576);
  }
}

// ---- receive(): the port's burst path ----------------------------------------

struct Collected {
  std::vector<std::vector<uint8_t>> frames;
  std::vector<rte_mempool*> pools;
};
void collect(Worker&, void* ctx, rte_mbuf** pkts, uint16_t n) {
  auto* c = static_cast<Collected*>(ctx);
  for (uint16_t i = 0; i < n; i++) {
    std::vector<uint8_t> b = bytes(pkts[i]);
    c->frames.push_back(b);
    c->pools.push_back(pkts[i]->pool);
    rte_pktmbuf_free(pkts[i]);
  }
}

class RxFixupPort : public ::testing::Test {
 protected:
  Rcu rcu;
  Net net{rcu};
  std::unique_ptr<Worker> w;
  Device* p0 = nullptr;
  Collected got;
  rte_mempool* landing = big_pool();
  std::unique_ptr<rx_csum::RxFixup> fix;
  unsigned avail_before = 0, landing_before = 0;

  void SetUp() override {
    avail_before = rte_mempool_avail_count(pool());
    landing_before = rte_mempool_avail_count(landing);
    w = std::make_unique<Worker>(net, 0);
    auto d = std::make_unique<Device>();
    d->name = "p0";
    d->mac = mac("02:00:00:00:00:01");
    p0 = net.add_device(std::move(d));
    fix = std::make_unique<rx_csum::RxFixup>(pool(), landing, rx_csum::kFrameSize, 1, "veth0");
    p0->rx_fixup = fix.get();
    net.add_ptype(0x0800, nullptr, collect, &got, "v4");
    net.add_ptype(0x86dd, nullptr, collect, &got, "v6");
  }
  void TearDown() override {
    w->flush_free();
    EXPECT_EQ(rte_mempool_avail_count(pool()), avail_before) << "an mbuf leaked";
    EXPECT_EQ(rte_mempool_avail_count(landing), landing_before) << "a landing mbuf leaked";
  }
  void rx(std::vector<rte_mbuf*> v) {
    rx_csum::receive(*w, *p0, v.data(), static_cast<uint16_t>(v.size()));
  }
  uint64_t drops(DropReason r) { return w->drops[p0->index][static_cast<unsigned>(r)]; }
};

TEST_F(RxFixupPort, CompletesCopiesAndKeepsOrder) {
  std::vector<std::vector<uint8_t>> want;
  std::vector<rte_mbuf*> burst;
  for (int i = 0; i < 20; i++) {
    Pkt k{i % 2 ? 6 : 4, i % 3 ? 6 : 17,
          i % 4 ? std::vector<uint32_t>{} : std::vector<uint32_t>{0x81000007},
          static_cast<size_t>(10 + 50 * i)};
    std::vector<uint8_t> good = build(k);
    want.push_back(good);
    std::vector<uint8_t> f = good;
    if (i % 5 != 0) set16(f, csum_off(f, k.proto), partial_value(f));  // most are partial
    burst.push_back(to_mbuf(f, i % 2 ? landing : pool()));
  }
  rx(burst);
  // Delivery groups a burst by protocol (v4, then v6), and the receive path
  // takes VLAN tags out of the frame: compare untagged, in any order.
  for (auto& f : want)
    if (f[12] == 0x81) f.erase(f.begin() + 12, f.begin() + 16);
  ASSERT_EQ(got.frames.size(), want.size());
  std::sort(want.begin(), want.end());
  std::vector<std::vector<uint8_t>> have = got.frames;
  std::sort(have.begin(), have.end());
  EXPECT_EQ(have, want);
  for (rte_mempool* mp : got.pools) EXPECT_EQ(mp, pool()) << "copied out of the landing pool";
  rx_csum::FixCounters c = fix->sum();
  EXPECT_EQ(c.completed, 16u);
  EXPECT_EQ(c.copied, 10u);
  EXPECT_EQ(c.gso_frames, 0u);
}

TEST_F(RxFixupPort, GsoFrameBecomesSegmentsAcrossBursts) {
  // Two 40-segment TCP frames and a small one: 81 frames out of 3, in order,
  // through more than one port_receive burst.
  Pkt k{4, 6, {}, 1448 * 40};
  std::vector<uint8_t> big = build(k);
  set16(big, csum_off(big, 6), partial_value(big));
  Pkt small{4, 17, {}, 10};
  std::vector<uint8_t> s = build(small);
  rx({to_mbuf(big, landing), to_mbuf(s, landing), to_mbuf(big, landing)});
  ASSERT_EQ(got.frames.size(), 81u);
  EXPECT_EQ(got.frames[40], s);
  for (size_t i = 0; i < got.frames.size(); i++) {
    EXPECT_TRUE(l4_verifies(got.frames[i])) << i;
    EXPECT_LE(got.frames[i].size(), 1514u) << i;
  }
  rx_csum::FixCounters c = fix->sum();
  EXPECT_EQ(c.gso_frames, 2u);
  EXPECT_EQ(c.gso_segments, 80u);
  EXPECT_EQ(w->c(p0->index).rx_packets, 81u);
}

TEST_F(RxFixupPort, TruncatedFramesAreDroppedNamedAndReportedOnce) {
  // What framesz=2048 does to a 3 KB TSO frame: 1982 bytes of it arrive.
  fix = std::make_unique<rx_csum::RxFixup>(pool(), nullptr, 2048, 1, "veth0");
  p0->rx_fixup = fix.get();
  ASSERT_EQ(fix->snap_max, 1982u);
  Pkt k{4, 6, {}, 2896};
  std::vector<uint8_t> big = build(k);
  std::vector<uint8_t> cut(big.begin(), big.begin() + 1982);
  std::vector<uint8_t> ip_cut(big.begin(), big.begin() + 1000);  // the IP length says more
  std::vector<uint8_t> raw(1982, 0);  // not IP, but as long as a ring frame
  raw[12] = 0x88, raw[13] = 0xb5;
  rx({to_mbuf(cut), to_mbuf(ip_cut), to_mbuf(raw), to_mbuf(build(Pkt{}))});
  EXPECT_EQ(drops(DropReason::rx_truncated), 3u);
  EXPECT_EQ(got.frames.size(), 1u);
  EXPECT_EQ(fix->seen.load(), rx_csum::RxFixup::kTruncated);
  EXPECT_EQ(fix->trunc_len.load(), 1982u);
  EXPECT_EQ(fix->trunc_claimed.load(), big.size());
  std::string msg = rx_csum::truncated_message(*p0, *fix, 1982, 2962);
  EXPECT_NE(msg.find("port p0: dropped a frame that arrived truncated (1982 of the 2962 bytes"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("ethtool -K PEER tso off gso off"), std::string::npos) << msg;
  EXPECT_NE(msg.find("framesz=65424"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rx_truncated"), std::string::npos) << msg;
}

TEST_F(RxFixupPort, OversizeNonTcpIsDroppedNamed) {
  Pkt k{6, 17, {}, 8000};  // a UDP GSO frame: sluice does not know its gso_size
  rx({to_mbuf(build(k), landing)});
  EXPECT_EQ(drops(DropReason::rx_oversize), 1u);
  EXPECT_TRUE(got.frames.empty());
  EXPECT_EQ(fix->seen.load(), rx_csum::RxFixup::kOversize);
  EXPECT_EQ(fix->over_proto.load(), 17u);
}

TEST(RxCsumSetup, DevargsAndDriverChoice) {
  EXPECT_TRUE(rx_csum::is_af_packet("net_af_packet0,iface=veth0"));
  EXPECT_TRUE(rx_csum::is_af_packet("eth_af_packet1,iface=x"));
  EXPECT_FALSE(rx_csum::is_af_packet("net_tap0,iface=x"));
  EXPECT_FALSE(rx_csum::is_af_packet("net_pcap0,rx_pcap=a.pcap"));
  EXPECT_FALSE(rx_csum::is_af_packet("0000:03:00.0"));
  EXPECT_EQ(rx_csum::port_devargs("net_af_packet0,iface=veth0"),
            "net_af_packet0,iface=veth0,blocksz=16748544,framesz=65424,framecnt=256");
  EXPECT_EQ(rx_csum::port_devargs("net_af_packet0,iface=veth0,framesz=2048"),
            "net_af_packet0,iface=veth0,framesz=2048");
  EXPECT_EQ(rx_csum::port_devargs("net_null0"), "net_null0");
  EXPECT_EQ(rx_csum::kBlockSize % rx_csum::kFrameSize, 0u);
  EXPECT_EQ(rx_csum::kBlockSize % 4096, 0u);
  EXPECT_LE(rx_csum::kFrameSize - 32 + RTE_PKTMBUF_HEADROOM, 65535u);
}

}  // namespace
