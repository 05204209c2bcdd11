// The pcapng writer: block structure (checked by walking the file), and what
// tshark reads back (interface names, VLAN tag re-inserted from metadata,
// direction flags, nanosecond timestamps that are "now", not year 2251).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <rte_mbuf.h>

#include "capture/pcapng.hh"
#include "core/meta.hh"
#include "support/eal_env.hh"

namespace sluice {
namespace {

std::string temp_path(const std::string& name) {
  return ::testing::TempDir() + "sluice-" + std::to_string(getpid()) + "-" + name;
}

// One line per packet, fields split on tabs.
std::vector<std::vector<std::string>> tshark(const std::string& file, const std::string& fields,
                                             const std::string& extra = "") {
  std::string cmd = "tshark -r '" + file + "' " + extra + " -T fields " + fields + " 2>/dev/null";
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

// A minimal pcapng reader for structure checks.
struct Blk {
  uint32_t type;
  std::vector<uint8_t> body;  // between the length fields
  std::map<uint16_t, std::vector<std::string>> opts;
};

std::vector<Blk> read_blocks(const std::string& file, size_t opt_offset_of(uint32_t)) {
  std::ifstream in(file, std::ios::binary);
  std::vector<uint8_t> d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<Blk> out;
  size_t off = 0;
  while (off + 12 <= d.size()) {
    uint32_t type, len, len2;
    std::memcpy(&type, &d[off], 4);
    std::memcpy(&len, &d[off + 4], 4);
    EXPECT_EQ(len % 4, 0u) << "block at " << off;
    EXPECT_GE(len, 12u);
    if (len < 12 || off + len > d.size()) {
      ADD_FAILURE() << "truncated block at " << off;
      break;
    }
    std::memcpy(&len2, &d[off + len - 4], 4);
    EXPECT_EQ(len, len2) << "trailing length of block at " << off;
    Blk b;
    b.type = type;
    b.body.assign(d.begin() + off + 8, d.begin() + off + len - 4);
    size_t o = opt_offset_of(type);
    if (type == 6 && b.body.size() >= 20) {  // EPB: skip the padded packet data
      uint32_t cap;
      std::memcpy(&cap, &b.body[12], 4);
      o = 20 + ((cap + 3) & ~3u);
    }
    while (o + 4 <= b.body.size()) {
      uint16_t code, olen;
      std::memcpy(&code, &b.body[o], 2);
      std::memcpy(&olen, &b.body[o + 2], 2);
      if (code == 0) break;
      EXPECT_LE(o + 4 + olen, b.body.size());
      b.opts[code].push_back(std::string(b.body.begin() + o + 4, b.body.begin() + o + 4 + olen));
      o += 4 + ((olen + 3) & ~3u);
    }
    out.push_back(std::move(b));
    off += len;
  }
  EXPECT_EQ(off, d.size()) << "trailing bytes";
  return out;
}

size_t opt_offset(uint32_t type) {
  switch (type) {
    case 0x0A0D0D0A:
      return 16;  // magic, versions, section length
    case 1:
      return 8;  // linktype, reserved, snaplen
    case 5:
      return 12;  // interface id, timestamp
    default:
      return 0;
  }
}

uint64_t u64_of(const std::string& s) {
  uint64_t v = 0;
  if (s.size() == 8) std::memcpy(&v, s.data(), 8);
  return v;
}

rte_mbuf* make_frame(const rte_ether_addr& dst, uint16_t len, uint16_t ethertype = 0x88b5) {
  rte_mbuf* m = rte_pktmbuf_alloc(test::pool());
  if (m == nullptr) return nullptr;
  auto* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_append(m, len));
  for (uint16_t i = 0; i < len; i++) p[i] = static_cast<uint8_t>(i);
  auto* eh = reinterpret_cast<rte_ether_hdr*>(p);
  eh->dst_addr = dst;
  eh->src_addr = rte_ether_addr{{0x02, 0, 0, 0, 0, 0xaa}};
  eh->ether_type = rte_cpu_to_be_16(ethertype);
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  return m;
}

const rte_ether_addr kDst1{{0x02, 0, 0, 0, 0, 0x01}};
const rte_ether_addr kBcast{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};

// "1700000000.123456789" → ns.
uint64_t epoch_ns(const std::string& s) {
  auto dot = s.find('.');
  uint64_t sec = std::stoull(s.substr(0, dot));
  std::string frac = dot == std::string::npos ? "" : s.substr(dot + 1);
  frac.resize(9, '0');
  return sec * 1000000000ull + std::stoull(frac);
}

TEST(Pcapng, TwoInterfacesVlanFromMetadataDirectionAndTime) {
  std::string path = temp_path("two.pcapng");
  PcapngWriter w;
  std::string err;
  ASSERT_TRUE(w.open(path, &err, "unit test")) << err;
  PcapngInterface a;
  a.name = "eth0";
  a.description = "port";
  a.mac = rte_ether_addr{{0x02, 0, 0, 0, 0, 0x10}};
  PcapngInterface b;
  b.name = "br0";
  b.description = "bridge";
  b.snaplen = 9000;
  EXPECT_EQ(w.add_interface(a), 0u);
  EXPECT_EQ(w.add_interface(b), 1u);

  rte_mbuf* tagged = make_frame(kDst1, 60);
  ASSERT_NE(tagged, nullptr);
  PktMeta& md = meta(tagged);
  md.flags = kFlagVlan;
  md.vlan_proto = 0x8100;
  md.vlan_tci = (3 << 13) | 10;  // PCP 3, VID 10
  rte_mbuf* plain = make_frame(kBcast, 100);
  ASSERT_NE(plain, nullptr);

  uint64_t t1 = realtime_ns();
  uint64_t t2 = t1 + 1234567;  // +1.234567 ms
  w.write_mbuf(0, t1, tagged, Direction::ingress);
  w.write_mbuf(1, t2, plain, Direction::egress);
  PcapngStats st;
  st.start_ns = t1;
  st.end_ns = t2;
  st.ifrecv = 7;
  st.ifdrop = 2;
  st.usrdeliv = 1;
  w.write_stats(0, t2, st);
  EXPECT_EQ(w.packets(), 2u);
  ASSERT_TRUE(w.close()) << w.error();
  rte_pktmbuf_free(tagged);
  rte_pktmbuf_free(plain);

  auto rows =
      tshark(path,
             "-e frame.interface_name -e vlan.id -e eth.dst -e frame.time_epoch "
             "-e frame.packet_flags_direction -e frame.len -e frame.cap_len -e vlan.priority "
             "-e vlan.etype -e eth.type");
  ASSERT_EQ(rows.size(), 2u);
  ASSERT_GE(rows[0].size(), 10u);
  ASSERT_GE(rows[1].size(), 10u);
  EXPECT_EQ(rows[0][0], "eth0");
  EXPECT_EQ(rows[0][1], "10");
  EXPECT_EQ(rows[0][2], "02:00:00:00:00:01");
  EXPECT_EQ(rows[0][5], "64");  // 60 bytes + the re-inserted tag
  EXPECT_EQ(rows[0][6], "64");
  EXPECT_EQ(rows[0][7], "3");
  EXPECT_EQ(rows[0][8], "0x88b5");
  EXPECT_EQ(rows[0][9], "0x8100");
  EXPECT_EQ(rows[1][0], "br0");
  EXPECT_EQ(rows[1][1], "");
  EXPECT_EQ(rows[1][2], "ff:ff:ff:ff:ff:ff");
  EXPECT_EQ(rows[1][5], "100");
  EXPECT_EQ(rows[1][9], "0x88b5");
  // epb_flags: inbound = 1, outbound = 2.
  EXPECT_EQ(std::stoul(rows[0][4], nullptr, 0), 1u);
  EXPECT_EQ(std::stoul(rows[1][4], nullptr, 0), 2u);
  // Nanosecond resolution, exactly what was written, and "now" (not 2251).
  EXPECT_EQ(epoch_ns(rows[0][3]), t1);
  EXPECT_EQ(epoch_ns(rows[1][3]), t2);
  uint64_t now = realtime_ns();
  EXPECT_LT(now - epoch_ns(rows[0][3]), 5ull * 1000000000ull);

  // Structure: SHB, IDB, IDB, EPB, EPB, ISB; options where expected.
  auto blocks = read_blocks(path, opt_offset);
  ASSERT_EQ(blocks.size(), 6u);
  std::vector<uint32_t> types;
  for (auto& bl : blocks) types.push_back(bl.type);
  EXPECT_EQ(types, (std::vector<uint32_t>{0x0A0D0D0A, 1, 1, 6, 6, 5}));
  const Blk& shb = blocks[0];
  uint32_t magic;
  std::memcpy(&magic, shb.body.data(), 4);
  EXPECT_EQ(magic, 0x1A2B3C4Du);
  ASSERT_EQ(shb.opts.count(4), 1u);
  EXPECT_EQ(shb.opts.at(4)[0].rfind("sluice", 0), 0u);  // shb_userappl
  EXPECT_EQ(shb.opts.count(3), 1u);                     // shb_os
  EXPECT_EQ(shb.opts.count(2), 1u);                     // shb_hardware
  EXPECT_EQ(shb.opts.at(1)[0], "unit test");
  const Blk& idb0 = blocks[1];
  uint16_t linktype;
  std::memcpy(&linktype, idb0.body.data(), 2);
  EXPECT_EQ(linktype, 1);
  EXPECT_EQ(idb0.opts.at(2)[0], "eth0");
  EXPECT_EQ(idb0.opts.at(3)[0], "port");
  EXPECT_EQ(idb0.opts.at(9)[0], std::string(1, '\x09'));
  EXPECT_EQ(idb0.opts.at(6)[0], std::string("\x02\x00\x00\x00\x00\x10", 6));
  EXPECT_EQ(blocks[2].opts.at(2)[0], "br0");
  EXPECT_EQ(blocks[2].opts.count(6), 0u);
  const Blk& isb = blocks[5];
  EXPECT_EQ(u64_of(isb.opts.at(4)[0]), 7u);
  EXPECT_EQ(u64_of(isb.opts.at(5)[0]), 2u);
  EXPECT_EQ(u64_of(isb.opts.at(8)[0]), 1u);
  unlink(path.c_str());
}

TEST(Pcapng, SnaplenAndMultiSegmentTaggedMbuf) {
  std::string path = temp_path("seg.pcapng");
  PcapngWriter w;
  std::string err;
  ASSERT_TRUE(w.open(path, &err)) << err;
  PcapngInterface a;
  a.name = "eth1";
  a.snaplen = 40;
  w.add_interface(a);
  PcapngInterface b;
  b.name = "eth2";
  w.add_interface(b);

  // Tagged, 200 bytes: written as 204 on the wire, 40 captured.
  rte_mbuf* big = make_frame(kDst1, 200);
  ASSERT_NE(big, nullptr);
  meta(big).flags = kFlagVlan;
  meta(big).vlan_proto = 0x88a8;
  meta(big).vlan_tci = 42;
  w.write_mbuf(0, realtime_ns(), big, Direction::ingress);

  // Two segments split inside the MAC addresses (8 + 52 bytes), tagged.
  rte_mbuf* whole = make_frame(kDst1, 60);
  rte_mbuf* s1 = rte_pktmbuf_alloc(test::pool());
  rte_mbuf* s2 = rte_pktmbuf_alloc(test::pool());
  ASSERT_TRUE(whole && s1 && s2);
  std::memcpy(rte_pktmbuf_append(s1, 8), rte_pktmbuf_mtod(whole, uint8_t*), 8);
  std::memcpy(rte_pktmbuf_append(s2, 52), rte_pktmbuf_mtod(whole, uint8_t*) + 8, 52);
  ASSERT_EQ(rte_pktmbuf_chain(s1, s2), 0);
  std::memset(rte_mbuf_to_priv(s1), 0, sizeof(PktMeta));
  meta(s1).flags = kFlagVlan;
  meta(s1).vlan_proto = 0x8100;
  meta(s1).vlan_tci = 7;
  w.write_mbuf(1, realtime_ns(), s1, Direction::egress);

  // Raw bytes, no direction.
  w.write_packet(1, realtime_ns(), rte_pktmbuf_mtod(whole, uint8_t*), 60, 60, Direction::both);
  ASSERT_TRUE(w.close()) << w.error();
  rte_pktmbuf_free(big);
  rte_pktmbuf_free(s1);
  rte_pktmbuf_free(whole);

  auto rows =
      tshark(path,
             "-e frame.interface_name -e frame.len -e frame.cap_len -e ieee8021ad.id -e vlan.id "
             "-e eth.dst -e eth.src -e vlan.etype -e frame.packet_flags_direction");
  ASSERT_EQ(rows.size(), 3u);
  for (auto& r : rows) ASSERT_GE(r.size(), 8u);
  EXPECT_EQ(rows[0][0], "eth1");
  EXPECT_EQ(rows[0][1], "204");
  EXPECT_EQ(rows[0][2], "40");
  EXPECT_EQ(rows[0][3], "42");  // 802.1ad tag
  EXPECT_EQ(rows[1][0], "eth2");
  EXPECT_EQ(rows[1][1], "64");
  EXPECT_EQ(rows[1][4], "7");
  EXPECT_EQ(rows[1][5], "02:00:00:00:00:01");
  EXPECT_EQ(rows[1][6], "02:00:00:00:00:aa");
  EXPECT_EQ(rows[1][7], "0x88b5");
  EXPECT_EQ(rows[2][1], "60");
  EXPECT_EQ(rows[2][4], "");
  // No epb_flags at all for an unknown direction.
  EXPECT_TRUE(rows[2].size() < 9 || rows[2][8].empty() || std::stoul(rows[2][8], nullptr, 0) == 0);

  // Byte-exact: the tag sits after the MAC addresses, the rest follows.
  auto blocks = read_blocks(path, opt_offset);
  ASSERT_EQ(blocks.size(), 6u);
  const Blk& epb = blocks[4];
  ASSERT_EQ(epb.type, 6u);
  const uint8_t* pkt = epb.body.data() + 20;
  const uint8_t expect_tag[4] = {0x81, 0x00, 0x00, 0x07};
  EXPECT_EQ(pkt[0], 0x02);
  EXPECT_EQ(pkt[5], 0x01);
  EXPECT_EQ(pkt[11], 0xaa);
  EXPECT_EQ(std::memcmp(pkt + 12, expect_tag, 4), 0);
  EXPECT_EQ(pkt[16], 0x88);
  EXPECT_EQ(pkt[17], 0xb5);
  EXPECT_EQ(pkt[63], 59);  // last payload byte of the 60-byte frame
  unlink(path.c_str());
}

TEST(Pcapng, OpenFailureReportsPath) {
  PcapngWriter w;
  std::string err;
  EXPECT_FALSE(w.open("/nonexistent-dir/x.pcapng", &err));
  EXPECT_NE(err.find("/nonexistent-dir/x.pcapng"), std::string::npos) << err;
  EXPECT_FALSE(w.is_open());
}

TEST(Pcapng, WriteErrorIsReported) {
  PcapngWriter w;
  std::string err;
  EXPECT_FALSE(w.open("/dev/full", &err));  // the SHB is flushed at open
  EXPECT_NE(err.find("No space"), std::string::npos) << err;
  EXPECT_FALSE(w.is_open());
}

}  // namespace
}  // namespace sluice
