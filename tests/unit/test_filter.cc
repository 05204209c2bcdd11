// Packet filters (capture/filter.hh): pcap-filter(7) expressions compiled by
// libpcap, converted to eBPF and JIT-compiled, run on crafted frames; tags
// held in the metadata match as libpcap's `vlan` expects; bad expressions
// fail with libpcap's message.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include <pcap/pcap.h>
#include <rte_mbuf.h>

#include "capture/filter.hh"
#include "core/meta.hh"
#include "support/eal_env.hh"

namespace sluice {
namespace {

// Frame bytes: Ethernet (optionally 802.1Q tagged in the data), then IPv4
// or IPv6, then TCP or UDP with the given ports and TCP flags.
struct Pkt {
  bool v6 = false;
  uint8_t proto = 6;  // 6 TCP, 17 UDP
  uint16_t sport = 40000, dport = 9091;
  uint8_t tcp_flags = 0x10;  // ACK
  int tag = -1;              // VID of an in-data 802.1Q tag, -1: none
  size_t payload = 20;
  uint8_t fill = 0;
};

std::vector<uint8_t> bytes(const Pkt& p) {
  std::vector<uint8_t> b = {0x02, 0, 0, 0, 0, 0x01, 0x02, 0, 0, 0, 0, 0xaa};
  if (p.tag >= 0) {
    b.insert(b.end(), {0x81, 0x00, static_cast<uint8_t>(p.tag >> 8), static_cast<uint8_t>(p.tag)});
  }
  size_t l4len = (p.proto == 6 ? 20 : 8) + p.payload;
  if (p.v6) {
    b.insert(b.end(), {0x86, 0xdd, 0x60, 0, 0, 0, static_cast<uint8_t>(l4len >> 8),
                       static_cast<uint8_t>(l4len), p.proto, 64});
    for (int i = 0; i < 32; i++) b.push_back(i == 15 || i == 31 ? 1 : (i < 2 ? 0x20 : 0));
  } else {
    size_t tot = 20 + l4len;
    b.insert(b.end(), {0x08,
                       0x00,
                       0x45,
                       0,
                       static_cast<uint8_t>(tot >> 8),
                       static_cast<uint8_t>(tot),
                       0,
                       1,
                       0,
                       0,
                       64,
                       p.proto,
                       0,
                       0,
                       10,
                       0,
                       1,
                       2,
                       10,
                       0,
                       2,
                       2});
  }
  b.push_back(static_cast<uint8_t>(p.sport >> 8));
  b.push_back(static_cast<uint8_t>(p.sport));
  b.push_back(static_cast<uint8_t>(p.dport >> 8));
  b.push_back(static_cast<uint8_t>(p.dport));
  if (p.proto == 6) {
    b.insert(b.end(), {0, 0, 0, 1, 0, 0, 0, 0, 0x50, p.tcp_flags, 0xff, 0xff, 0, 0, 0, 0});
  } else {
    b.insert(b.end(), {static_cast<uint8_t>(l4len >> 8), static_cast<uint8_t>(l4len), 0, 0});
  }
  for (size_t i = 0; i < p.payload; i++) b.push_back(static_cast<uint8_t>(p.fill + i));
  return b;
}

rte_mbuf* mbuf(const std::vector<uint8_t>& b) {
  rte_mbuf* m = rte_pktmbuf_alloc(test::pool());
  EXPECT_NE(m, nullptr);
  if (!b.empty())  // an empty frame: nothing to copy (memcpy's pointers must not be null)
    std::memcpy(rte_pktmbuf_append(m, static_cast<uint16_t>(b.size())), b.data(), b.size());
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  return m;
}

// The frame in two segments, the second from byte `at` on; nullptr if the
// chain could not be made.
rte_mbuf* chained(const std::vector<uint8_t>& b, uint16_t at) {
  rte_mbuf* m1 = rte_pktmbuf_alloc(test::pool());
  rte_mbuf* m2 = rte_pktmbuf_alloc(test::pool());
  if (m1 == nullptr || m2 == nullptr) {
    rte_pktmbuf_free(m1);  // (null is fine)
    rte_pktmbuf_free(m2);
    return nullptr;
  }
  std::memcpy(rte_pktmbuf_append(m1, at), b.data(), at);
  std::memcpy(rte_pktmbuf_append(m2, static_cast<uint16_t>(b.size() - at)), b.data() + at,
              b.size() - at);
  std::memset(rte_mbuf_to_priv(m1), 0, sizeof(PktMeta));
  if (rte_pktmbuf_chain(m1, m2) != 0) {
    rte_pktmbuf_free(m1);
    rte_pktmbuf_free(m2);
    return nullptr;
  }
  return m1;
}

// The same frame with its tag held in the metadata (what vlan_untag leaves).
rte_mbuf* untagged_meta(Pkt p, uint16_t vid) {
  p.tag = -1;
  rte_mbuf* m = mbuf(bytes(p));
  meta(m).flags = kFlagVlan;
  meta(m).vlan_proto = 0x8100;
  meta(m).vlan_tci = vid;
  return m;
}

class Filter : public ::testing::Test {
 protected:
  std::unique_ptr<PacketFilter> f(const std::string& e) {
    std::string err;
    auto p = PacketFilter::compile(e, &err);
    EXPECT_NE(p, nullptr) << e << ": " << err;
    return p;
  }
  bool matches(const std::string& e, rte_mbuf* m) {
    auto p = f(e);
    bool r = p && p->match(m);
    rte_pktmbuf_free(m);
    return r;
  }
  bool matches(const std::string& e, const Pkt& p) { return matches(e, mbuf(bytes(p))); }
};

TEST_F(Filter, CompilesToJitAndReportsSize) {
  auto p = f("tcp port 9091");
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(p->jitted());
  EXPECT_GT(p->cbpf_insns(), 5u);
  EXPECT_EQ(p->expr(), "tcp port 9091");
}

TEST_F(Filter, TcpAndUdpPortsOnIpv4AndIpv6) {
  Pkt p;
  EXPECT_TRUE(matches("tcp port 9091", p));
  p.dport = 80;
  EXPECT_FALSE(matches("tcp port 9091", p));
  p.sport = 9091;
  EXPECT_TRUE(matches("tcp port 9091", p));  // either port
  EXPECT_FALSE(matches("tcp dst port 9091", p));
  EXPECT_TRUE(matches("tcp src port 9091", p));
  Pkt u;
  u.proto = 17;
  EXPECT_FALSE(matches("tcp port 9091", u));
  EXPECT_TRUE(matches("udp port 9091", u));
  EXPECT_TRUE(matches("udp", u));
  EXPECT_TRUE(matches("ip", u));
  EXPECT_FALSE(matches("ip6", u));

  Pkt t6;
  t6.v6 = true;
  EXPECT_TRUE(matches("tcp port 9091", t6));
  EXPECT_TRUE(matches("ip6 and tcp", t6));
  EXPECT_FALSE(matches("ip", t6));
  Pkt u6 = t6;
  u6.proto = 17;
  EXPECT_FALSE(matches("tcp port 9091", u6));
  EXPECT_TRUE(matches("udp dst port 9091", u6));
}

TEST_F(Filter, AddressesAndLengths) {
  Pkt p;
  EXPECT_TRUE(matches("host 10.0.1.2", p));
  EXPECT_TRUE(matches("src net 10.0.1.0/24 and dst host 10.0.2.2", p));
  EXPECT_FALSE(matches("dst host 10.0.1.2", p));
  EXPECT_TRUE(matches("ether src 02:00:00:00:00:aa", p));
  EXPECT_TRUE(matches("len > 60", p));  // 14 + 20 + 20 + 20 = 74 bytes
  EXPECT_FALSE(matches("len > 74", p));
  EXPECT_FALSE(matches("ether broadcast", p));
}

TEST_F(Filter, TcpFlagsByteOffset) {
  Pkt syn;
  syn.tcp_flags = 0x02;
  Pkt ack;
  ack.tcp_flags = 0x10;
  EXPECT_TRUE(matches("tcp[13] & 2 != 0", syn));
  EXPECT_FALSE(matches("tcp[13] & 2 != 0", ack));
  EXPECT_TRUE(matches("tcp[tcpflags] & tcp-syn != 0", syn));
  Pkt syn6 = syn;
  syn6.v6 = true;
  // libpcap's tcp[] is IPv4 only (it says so for IPv6 transport offsets).
  EXPECT_FALSE(matches("tcp[13] & 2 != 0", syn6));
}

TEST_F(Filter, VlanTagInTheData) {
  Pkt p;
  p.dport = 80;
  p.tag = 100;
  EXPECT_TRUE(matches("vlan 100 and tcp port 80", p));
  EXPECT_TRUE(matches("vlan", p));
  EXPECT_FALSE(matches("vlan 200 and tcp port 80", p));
  EXPECT_FALSE(matches("tcp port 80", p));  // without `vlan`, libpcap looks at offset 12
}

TEST_F(Filter, VlanTagHeldInMetadataMatchesTheSame) {
  Pkt p;
  p.dport = 80;
  EXPECT_TRUE(matches("vlan 100 and tcp port 80", untagged_meta(p, 100)));
  EXPECT_TRUE(matches("vlan", untagged_meta(p, 100)));
  EXPECT_FALSE(matches("vlan 200 and tcp port 80", untagged_meta(p, 100)));
  EXPECT_FALSE(matches("tcp port 80", untagged_meta(p, 100)));
  // A PCP in the TCI is not the VID.
  EXPECT_TRUE(matches("vlan 100", untagged_meta(p, static_cast<uint16_t>(5 << 13 | 100))));
  // The length counts the tag, as the frame on the wire and in a capture.
  auto plain = bytes(p);
  EXPECT_TRUE(matches("len = " + std::to_string(plain.size() + 4), untagged_meta(p, 100)));
  // Untagged frames do not match `vlan`.
  EXPECT_FALSE(matches("vlan", p));
}

TEST_F(Filter, TaggedFrameLongerThanTheCopiedHead) {
  // A byte past the first 128 of the frame is read from the mbuf itself.
  Pkt p;
  p.proto = 17;
  p.payload = 300;
  p.fill = 0;
  auto plain = bytes(p);
  // ether[200] of the tagged frame is byte 196 of the untagged one.
  std::string e = "vlan 100 and ether[200] = " + std::to_string(plain[196]) +
                  " and ether[300] = " + std::to_string(plain[296]);
  EXPECT_TRUE(matches(e, untagged_meta(p, 100)));
  std::string wrong = "vlan 100 and ether[200] = " + std::to_string(plain[200]);
  ASSERT_NE(plain[196], plain[200]);
  EXPECT_FALSE(matches(wrong, untagged_meta(p, 100)));
  // In-data tagged version: the same expression.
  Pkt t = p;
  t.tag = 100;
  EXPECT_TRUE(matches(e, t));
}

TEST_F(Filter, MultiSegmentFrames) {
  Pkt p;
  // Split after 20 bytes: the IPv4 header and the ports are in segment 2.
  rte_mbuf* m1 = chained(bytes(p), 20);
  ASSERT_NE(m1, nullptr);
  auto ff = f("tcp dst port 9091 and host 10.0.2.2");
  EXPECT_TRUE(ff->match(m1));
  // Tagged in the metadata and segmented.
  meta(m1).flags = kFlagVlan;
  meta(m1).vlan_proto = 0x8100;
  meta(m1).vlan_tci = 7;
  auto fv = f("vlan 7 and tcp dst port 9091");
  EXPECT_TRUE(fv->match(m1));
  EXPECT_FALSE(ff->match(m1));
  rte_pktmbuf_free(m1);
}

TEST_F(Filter, SelectKeepsTheMatchesInOrder) {
  auto ff = f("udp");
  std::vector<rte_mbuf*> in;
  for (int i = 0; i < 10; i++) {
    Pkt p;
    p.proto = i % 3 == 0 ? 17 : 6;
    p.sport = static_cast<uint16_t>(1000 + i);
    in.push_back(mbuf(bytes(p)));
  }
  rte_mbuf* out[10];
  uint16_t k = ff->select(in.data(), 10, out);
  ASSERT_EQ(k, 4u);
  EXPECT_EQ(out[0], in[0]);
  EXPECT_EQ(out[1], in[3]);
  EXPECT_EQ(out[2], in[6]);
  EXPECT_EQ(out[3], in[9]);
  rte_pktmbuf_free_bulk(in.data(), 10);
}

// DPDK's converter and x86 JIT had bugs on exactly these programs (indirect
// loads after `ldxb 4*([14]&0xf)`, `jset` with a small immediate): the
// repaired program gives the same answer JIT-compiled and interpreted, and
// the answer a reading of the frame gives.
TEST_F(Filter, JitAgreesWithTheInterpreterAndTheFrames) {
  const char* exprs[] = {
      "tcp port 9091",        "tcp dst port 9091",
      "udp port 9091",        "tcp[13] & 2 != 0",
      "tcp[13] & 0x10 != 0",  "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0",
      "ip[6:2] & 0x1fff = 0", "ip and not tcp",
      "ip6 or vlan",          "portrange 9000-9100",
      "udp[8] = 5",           "tcp[0:2] > 1000",
      "ip[1] & 0xfc = 0",     "less 80",
      "greater 80",           "ip[0] & 0xf != 5",
  };
  std::vector<Pkt> pkts;
  for (uint8_t flags : {0x02, 0x10, 0x12, 0x01}) {
    for (bool v6 : {false, true}) {
      for (uint8_t proto : {6, 17}) {
        Pkt p;
        p.tcp_flags = flags;
        p.v6 = v6;
        p.proto = proto;
        p.fill = 5;
        pkts.push_back(p);
        p.dport = 80;
        p.sport = 9050;
        pkts.push_back(p);
      }
    }
  }
  for (const char* e : exprs) {
    auto ff = f(e);
    ASSERT_NE(ff, nullptr) << e;
    EXPECT_TRUE(ff->jitted()) << e << ": the JIT's code was refused (jit_is_sound)";
    for (const Pkt& p : pkts) {
      for (bool df : {false, true}) {
        auto b = bytes(p);
        if (df && !p.v6) b[20] = 0x40;  // DF, as Linux sends TCP
        rte_mbuf* m = mbuf(b);
        EXPECT_EQ(ff->match(m), ff->run_interpreter(m) != 0) << e;
        rte_pktmbuf_free(m);
      }
    }
  }
  // And the answers themselves, with DF set.
  Pkt syn;
  syn.tcp_flags = 0x02;
  auto b = bytes(syn);
  b[20] = 0x40;
  EXPECT_TRUE(matches("tcp port 9091", mbuf(b)));
  EXPECT_TRUE(matches("tcp[13] & 2 != 0", mbuf(b)));
  EXPECT_FALSE(matches("tcp[13] & 0x10 != 0", mbuf(b)));
  EXPECT_TRUE(matches("tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", mbuf(b)));
  EXPECT_TRUE(matches("portrange 9000-9100", mbuf(b)));
}

// The direct-load program (first segment read straight, the full program
// for what it cannot decide) gives the full program's answer for every
// frame cut at every length and split into two segments at every offset.
TEST_F(Filter, DirectLoadsAgreeWithTheFullProgram) {
  const char* exprs[] = {
      "tcp port 9091",        "udp port 9091",  "tcp[13] & 2 != 0",    "ip6 and tcp dst port 80",
      "ip[6:2] & 0x1fff = 0", "vlan 100",       "portrange 9000-9100", "ether[60] = 0x0b",
      "ip and len > 70",      "tcp[20] = 0x10", "ip[0] & 0xf != 5",
  };
  std::vector<Pkt> pkts;
  for (bool v6 : {false, true}) {
    for (uint8_t proto : {6, 17}) {
      Pkt p;
      p.v6 = v6;
      p.proto = proto;
      p.fill = 0x0b;
      pkts.push_back(p);
      p.tag = 100;
      pkts.push_back(p);
    }
  }
  for (const char* e : exprs) {
    auto ff = f(e);
    ASSERT_NE(ff, nullptr) << e;
    EXPECT_TRUE(ff->direct()) << e << ": no direct-load program";
    for (const Pkt& p : pkts) {
      const auto b = bytes(p);
      // Whole, in one segment: the direct program decides on its own.
      rte_mbuf* whole = mbuf(b);
      const uint64_t want = ff->run_interpreter(whole);
      if (ff->direct()) {
        EXPECT_NE(ff->run_direct_only(whole), PacketFilter::kNeedsFullRun) << e;
        EXPECT_EQ(ff->run_direct_only(whole) != 0, want != 0) << e;
      }
      EXPECT_EQ(ff->run_full_program(whole) != 0, want != 0) << e;
      rte_pktmbuf_free(whole);
      for (size_t len = 0; len <= b.size(); len++) {
        std::vector<uint8_t> cut(b.begin(), b.begin() + static_cast<long>(len));
        rte_mbuf* m = mbuf(cut);
        EXPECT_EQ(ff->match(m), ff->run_interpreter(m) != 0) << e << " cut at " << len;
        rte_pktmbuf_free(m);
      }
      for (size_t at = 1; at < b.size(); at++) {
        rte_mbuf* m1 = rte_pktmbuf_alloc(test::pool());
        rte_mbuf* m2 = rte_pktmbuf_alloc(test::pool());
        ASSERT_NE(m1, nullptr);
        ASSERT_NE(m2, nullptr);
        std::memcpy(rte_pktmbuf_append(m1, static_cast<uint16_t>(at)), b.data(), at);
        std::memcpy(rte_pktmbuf_append(m2, static_cast<uint16_t>(b.size() - at)), b.data() + at,
                    b.size() - at);
        std::memset(rte_mbuf_to_priv(m1), 0, sizeof(PktMeta));
        ASSERT_EQ(rte_pktmbuf_chain(m1, m2), 0);
        EXPECT_EQ(ff->match(m1), want != 0) << e << " split at " << at;
        rte_pktmbuf_free(m1);
      }
    }
  }
  // Filters without packet loads keep the full program only.
  auto less = f("less 80");
  ASSERT_NE(less, nullptr);
  EXPECT_FALSE(less->direct());
}

TEST_F(Filter, BadExpressionsGiveLibpcapsMessage) {
  struct Case {
    const char* expr;
    const char* want;  // a part of libpcap's message
  } cases[] = {
      {"tcp port", "syntax error"},
      {"tcp prot 80", "syntax error"},
      {"port 99999", "illegal port number 99999 > 65535"},
      {"host 10.0.0.300", ""},
      {"ether host 02:00", ""},
  };
  for (const Case& c : cases) {
    std::string err;
    EXPECT_EQ(PacketFilter::compile(c.expr, &err), nullptr) << c.expr;
    EXPECT_FALSE(err.empty()) << c.expr;
    EXPECT_NE(err.find(c.want), std::string::npos) << c.expr << ": " << err;
    EXPECT_EQ(filter_check(c.expr), err) << c.expr;  // the same message without the EAL path
  }
  EXPECT_EQ(filter_check("tcp port 9091"), "");
  EXPECT_EQ(filter_check("vlan 100 and tcp port 80"), "");
}

// Division and modulo by a divisor read from the packet: zero gives 0 (the
// frame does not match), as cBPF says. And the JIT's jumps back to its
// epilogue (filter.cc, bug 3): chains of negations move the exits across
// the 129/130-byte distance the JIT encoded wrong (the fuzz_filter input
// is the last expression); every program must agree with the interpreter.
TEST_F(Filter, DivisionByZeroAndEveryExitDistance) {
  std::vector<std::string> exprs = {
      "ether[78] % ether[78] = 1", "ether[78] / ether[78] = 1", "ether[20] % ether[78] = 0",
      "ether[20] / ether[78] = 0",
      "----------------------------------ether[78]%----------------------------ether[78]----"
      "--------ether[78]----ether[78]= 1"};
  for (int n = 1; n <= 80; n++) exprs.push_back(std::string(n, '-') + "ether[78] % ether[70] = 1");
  for (const std::string& e : exprs) {
    auto ff = f(e);
    ASSERT_NE(ff, nullptr) << e;
    EXPECT_TRUE(ff->jitted()) << e;  // division, modulo, every exit distance: decoded and kept
    for (size_t len : {60, 79, 100}) {
      for (uint8_t fill : {0, 3}) {
        std::vector<uint8_t> b(len, fill);
        rte_mbuf* m = mbuf(b);
        const bool want = ff->run_interpreter(m) != 0;
        EXPECT_EQ(ff->match(m), want) << e << " len " << len;
        EXPECT_EQ(ff->run_full_program(m) != 0, want) << e << " len " << len;
        rte_pktmbuf_free(m);
      }
    }
  }
}

// Loads whose offset wraps 32 bits: `ether[ether[0] - 1]` with ether[0] = 0
// makes X + k = 0xffffffff, and 0xffffffff + 1 passes DPDK's
// __rte_pktmbuf_read bound check (off + len > pkt_len, in 32 bits) and
// walks past the last segment (SEGV, found by fuzz_filter). libpcap says
// such a load rejects the frame; every program must say so too. The
// oracle is libpcap's own bpf_filter on the same bytes.
TEST_F(Filter, LoadsWhoseOffsetWrapsRejectTheFrame) {
  const std::vector<std::string> exprs = {"ether[ether[0] - 1] = 1",
                                          "ether[ether[0] - 2:2] = 1",
                                          "ether[ether[0] - 4:4] = 1",
                                          "ether[ether[0] + 4294967295] = 0",
                                          "ether[ether[0] + 4294967294:2] = 0",
                                          "ether[4294967295] = 0",
                                          "ether[4294967294:2] = 0",
                                          "ether[4294967292:4] = 0",
                                          "ether[2147483648] = 0",
                                          "ether[ether[0] + 2147483648] = 0",
                                          "ether[ether[0] * 16777216 + 4278190080] = 0",
                                          "not ether[ether[0] - 1] = 1",
                                          "ether[ether[1] - 1] = 0 or ether[0] = 0"};
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  ASSERT_NE(dead, nullptr);
  for (const std::string& e : exprs) {
    auto ff = f(e);
    ASSERT_NE(ff, nullptr) << e;
    bpf_program prog{};
    ASSERT_EQ(pcap_compile(dead, &prog, e.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0) << e;
    for (size_t len : {1, 14, 60, 100}) {
      for (uint8_t first : {0, 1, 2, 5}) {
        std::vector<uint8_t> b(len, 0);
        b[0] = first;
        const bool want = bpf_filter(prog.bf_insns, b.data(), static_cast<u_int>(len),
                                     static_cast<u_int>(len)) != 0;
        rte_mbuf* m = mbuf(b);
        EXPECT_EQ(ff->match(m), want) << e << " len " << len << " first " << int(first);
        EXPECT_EQ(ff->run_full_program(m) != 0, want) << e << " len " << len;
        EXPECT_EQ(ff->run_interpreter(m) != 0, want) << e << " len " << len;
        rte_pktmbuf_free(m);
      }
    }
    pcap_freecode(&prog);
  }
  pcap_close(dead);
}

// DPDK's JIT can stop sizing its jumps before their offsets settle (bug 5
// in filter.cc): for this expression (fuzz_filter's find) its code had
// jumps into the middle of an instruction and one onto itself, and every
// frame that reached the end of the program spun the CPU forever. The code
// is decoded before use; a program whose jumps do not all go forward to an
// instruction runs on rte_bpf's interpreter, with libpcap's answers. The
// frame is the fuzzer's, in two segments, and frames that take the other
// paths (a failed load, the match).
TEST_F(Filter, JitCodeWithJumpsThatDoNotLandIsNotUsed) {
  auto from_hex = [](const std::string& h) {
    std::vector<uint8_t> b;
    for (size_t i = 0; i + 1 < h.size(); i += 2)
      b.push_back(static_cast<uint8_t>(std::stoi(h.substr(i, 2), nullptr, 16)));
    return b;
  };
  const std::string e = "vlan 00 and tcp port 13100 and --------ether[78]----ether[78]= 1";
  auto ff = f(e);
  ASSERT_NE(ff, nullptr);
  EXPECT_FALSE(ff->on_libpcap());
  pcap_t* dead = pcap_open_dead(DLT_EN10MB, 262144);
  ASSERT_NE(dead, nullptr);
  bpf_program prog{};
  ASSERT_EQ(pcap_compile(dead, &prog, e.c_str(), 1, PCAP_NETMASK_UNKNOWN), 0);
  std::vector<std::vector<uint8_t>> frames = {
      from_hex("2d2d2d2d65746865725b65746865725b335d202d20315d205d2d202d31205d3d2032"
               "002d2d2d2d2d2d002d6502c00101740068"),
      std::vector<uint8_t>(60, 0), std::vector<uint8_t>(100, 0)};
  Pkt p;  // VLAN 0, IPv4 TCP to port 13100: reaches the ether[78] arithmetic
  p.tag = 0;
  p.dport = 13100;
  frames.push_back(bytes(p));
  std::vector<uint8_t> longer = bytes(p);
  longer.resize(100, 1);  // ether[78] - ether[78] = 0: no match, loads succeed
  frames.push_back(longer);
  for (const auto& b : frames) {
    const bool want = bpf_filter(prog.bf_insns, b.data(), static_cast<u_int>(b.size()),
                                 static_cast<u_int>(b.size())) != 0;
    for (int segs = 1; segs <= 2; segs++) {
      rte_mbuf* m = segs == 1 ? mbuf(b) : chained(b, static_cast<uint16_t>(b.size() / 2));
      ASSERT_NE(m, nullptr);
      EXPECT_EQ(ff->match(m), want) << b.size() << " bytes, " << segs << " segments";
      EXPECT_EQ(ff->run_full_program(m) != 0, want) << b.size() << " bytes";
      rte_pktmbuf_free(m);
    }
  }
  pcap_freecode(&prog);
  pcap_close(dead);
}

// A program longer than DPDK's verifier is given (kMaxVerifiedInsns) runs
// on libpcap's interpreter: the same answers, on one segment, a chain and
// a tag held in the metadata. The second expression is fuzz_filter's
// find: 453 instructions that kept rte_bpf_load busy for 18 s.
TEST_F(Filter, LongProgramsRunOnLibpcapsInterpreter) {
  std::string hosts;
  for (int i = 1; i <= 120; i++)
    hosts += (i > 1 ? " or host 10.0.9." : "host 10.0.9.") + std::to_string(i);
  auto longf = f("(" + hosts + " or host 10.0.2.2) and tcp dst port 9091");
  ASSERT_NE(longf, nullptr);
  EXPECT_GT(longf->cbpf_insns(), PacketFilter::kMaxVerifiedInsns);
  EXPECT_TRUE(longf->on_libpcap());
  EXPECT_FALSE(longf->jitted());
  EXPECT_TRUE(matches("(" + hosts + " or host 10.0.2.2) and tcp dst port 9091", Pkt{}));
  Pkt other;
  other.dport = 9092;
  rte_mbuf* o = mbuf(bytes(other));
  EXPECT_FALSE(longf->match(o));
  rte_pktmbuf_free(o);
  // A chain: the IPv4 header and the ports in the second segment.
  rte_mbuf* m1 = chained(bytes(Pkt{}), 20);
  ASSERT_NE(m1, nullptr);
  EXPECT_TRUE(longf->match(m1));
  EXPECT_EQ(longf->run_interpreter(m1), longf->run_full_program(m1));
  // Tagged in the metadata: `vlan 7` in a long program sees the tag.
  auto longv = f("vlan 7 and (" + hosts + " or host 10.0.2.2)");
  ASSERT_TRUE(longv->on_libpcap());
  meta(m1).flags = kFlagVlan;
  meta(m1).vlan_proto = 0x8100;
  meta(m1).vlan_tci = 7;
  EXPECT_TRUE(longv->match(m1));
  EXPECT_FALSE(longf->match(m1));  // tagged: the ports moved by 4
  meta(m1).vlan_tci = 8;
  EXPECT_FALSE(longv->match(m1));
  rte_pktmbuf_free(m1);
  // The fuzz find, against libpcap on a few frames.
  const std::string slow =
      "portrange 9 or 9 or(port 3 and! 6)or portrange 9 or 99  or portrange 9 or 99  or(port 3 "
      "and!tcp )or 9 or(3 )or 9 or 9 or(port 3 and! 6)or portrange 9 or 99  or portrange 9 or 99  "
      "or(port 3 and!tcp )or 9 or(3 )or  9 or(0)";
  auto sf = f(slow);
  ASSERT_NE(sf, nullptr);
  EXPECT_TRUE(sf->on_libpcap());
  for (uint16_t port : {3, 9, 53, 99, 9091}) {
    Pkt p;
    p.proto = 17;
    p.dport = port;
    const bool want = port == 3 || port == 9 || port == 99;
    EXPECT_EQ(matches(slow, p), want) << port;
  }
  // A short program stays on rte_bpf and the JIT.
  EXPECT_FALSE(f("tcp port 9091")->on_libpcap());
}

}  // namespace
}  // namespace sluice
