// Mirrors (src/mirror): the `mirrors:` section and its loop check on a table
// of topologies; the actions on a Dataplane of fake devices, called the way
// the core calls them (port_receive for ingress, dev_queue_xmit for
// egress): selection by direction and filter, copies that share the
// payload, redirect semantics (MIR-02), the nest limit (MIR-03), a copy
// never mirrored again (MIR-04a), sampling, snaplen, a down target; the
// outer headers of VXLAN, GRE and ERSPAN; `show mirrors`.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include <rte_mbuf.h>

#include "config/loader.hh"
#include "control/command.hh"
#include "core/dataplane.hh"
#include "core/meta.hh"
#include "core/netif.hh"
#include "core/worker.hh"
#include "mirror/config.hh"
#include "mirror/mirror.hh"
#include "support/frames.hh"

namespace sluice {
namespace {

using config::ConfigError;
using test::FrameSpec;

const char* const kPorts =
    "ports:\n"
    "  - {name: p0, device: net_null0, mac: \"02:00:00:00:00:01\"}\n"
    "  - {name: p1, device: net_null1, mac: \"02:00:00:00:00:02\"}\n"
    "  - {name: p2, device: net_null2}\n"
    "  - {name: p3, device: net_null3}\n"
    "  - {name: p4, device: net_null4}\n"
    "  - {name: p5, device: net_null5}\n";

std::string error_of(const std::string& yaml) {
  try {
    config::load_string(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// ---- config ----------------------------------------------------------------------

TEST(MirrorConfig, ParsesEveryKey) {
  auto t = config::load_string(std::string(kPorts) +
                                   "mirrors:\n"
                                   "  - name: m0\n"
                                   "    source: {dev: p0, direction: egress}\n"
                                   "    filter: \"tcp port 9091\"\n"
                                   "    action: mirror\n"
                                   "    snaplen: 128\n"
                                   "    sample: 10\n"
                                   "    to: {dev: p1, at: ingress}\n"
                                   "  - name: m1\n"
                                   "    source: {dev: p2, direction: both}\n"
                                   "    action: redirect\n"
                                   "    to: {pcapng: /tmp/x.pcapng, max_bytes: 100000}\n",
                               "t.yaml");
  auto& ms = t.get<mirror::Config>().mirrors;
  ASSERT_EQ(ms.size(), 2u);
  EXPECT_EQ(ms[0].name, "m0");
  EXPECT_EQ(ms[0].source, "p0");
  EXPECT_EQ(ms[0].direction, 2);
  EXPECT_EQ(ms[0].filter, "tcp port 9091");
  EXPECT_FALSE(ms[0].redirect);
  EXPECT_EQ(ms[0].snaplen, 128u);
  EXPECT_EQ(ms[0].sample, 10u);
  EXPECT_EQ(ms[0].to, config::MirrorTarget::dev);
  EXPECT_EQ(ms[0].dev, "p1");
  EXPECT_TRUE(ms[0].at_ingress);
  EXPECT_EQ(ms[1].direction, 3);
  EXPECT_TRUE(ms[1].redirect);
  EXPECT_EQ(ms[1].to, config::MirrorTarget::pcapng);
  EXPECT_EQ(ms[1].max_bytes, 100000u);
}

TEST(MirrorConfig, RemoteDestinationsAreRoutedByL3) {
  const std::string l3 =
      "addresses:\n"
      "  - {dev: p0, address: 10.0.1.1/24}\n"
      "  - {dev: p3, address: 10.9.0.1/24}\n"
      "routes:\n"
      "  - {prefix: 10.8.0.0/16, via: 10.9.0.254}\n";
  auto t = config::load_string(std::string(kPorts) + l3 +
                                   "mirrors:\n"
                                   "  - name: vx\n"
                                   "    source: {dev: p0, direction: ingress}\n"
                                   "    to: {vxlan: {remote: 10.9.0.2, vni: 42}}\n"
                                   "  - name: gr\n"
                                   "    source: {dev: p0, direction: ingress}\n"
                                   "    to: {gre: {remote: 10.8.1.1, key: 7, dev: p3}}\n"
                                   "  - name: er\n"
                                   "    source: {dev: p0, direction: ingress}\n"
                                   "    to: {erspan: {remote: 10.9.0.2, session: 5}}\n",
                               "t.yaml");
  auto& ms = t.get<mirror::Config>().mirrors;
  ASSERT_EQ(ms.size(), 3u);
  EXPECT_EQ(ms[0].via, "p3");  // the connected subnet
  EXPECT_EQ(ms[0].vni, 42u);
  EXPECT_EQ(ms[0].dst_port, 4789u);
  EXPECT_EQ(ms[1].via, "p3");  // the static route's next hop
  EXPECT_EQ(*ms[1].key, 7u);
  EXPECT_EQ(ms[2].session, 5u);
}

TEST(MirrorConfig, BadInputIsRefusedWithLineAndColumn) {
  const std::string m = std::string(kPorts) + "mirrors:\n  - name: m0\n";
  struct Case {
    std::string body;  // after "  - name: m0\n"
    std::string want;
  } cases[] = {
      {"    source: {dev: p0, direction: egress}\n    filter: \"tcp prot 80\"\n    to: {dev: p1}\n",
       "t.yaml:11:13: mirror 'm0': filter: can't parse filter expression: syntax error"},
      {"    source: {dev: p0, direction: sideways}\n    to: {dev: p1}\n",
       "t.yaml:10:34: mirror 'm0': source: direction must be ingress, egress or both, got "
       "'sideways'"},
      {"    source: {dev: p0}\n    to: {dev: p1}\n",
       "t.yaml:10:13: mirror 'm0': source: missing required key 'direction'"},
      {"    source: {dev: p0, direction: egress}\n",
       "t.yaml:9:5: mirror 'm0': missing required key 'to'"},
      {"    source: {dev: nope, direction: egress}\n    to: {dev: p1}\n",
       "t.yaml:10:19: mirror 'm0': source dev 'nope' is not a port, vlan or bridge defined in "
       "this file, nor lo"},
      {"    source: {dev: p0, direction: egress}\n    to: {dev: p9}\n",
       "t.yaml:11:15: mirror 'm0': to dev 'p9' is not a port, vlan or bridge defined in this "
       "file, nor lo"},
      {"    source: {dev: p0, direction: egress}\n    to: {dev: p1, pcapng: /x}\n",
       "t.yaml:11:9: mirror 'm0': to names more than one destination (dev, pcapng)"},
      {"    source: {dev: p0, direction: egress}\n    to: {}\n",
       "t.yaml:11:9: mirror 'm0': to names no destination (dev, vxlan, gre, erspan or pcapng)"},
      {"    source: {dev: p0, direction: egress}\n    to: {dev: p1, at: middle}\n",
       "t.yaml:11:23: mirror 'm0': to: at must be egress or ingress, got 'middle'"},
      {"    source: {dev: p0, direction: egress}\n    action: copy\n    to: {dev: p1}\n",
       "t.yaml:11:13: mirror 'm0': action must be mirror or redirect, got 'copy'"},
      {"    source: {dev: p0, direction: egress}\n    sample: 0\n    to: {dev: p1}\n",
       "t.yaml:11:13: mirror 'm0': sample must be 1 in N 1..1000000, got '0'"},
      {"    source: {dev: p0, direction: egress}\n    to: {vxlan: {remote: 10.9.0.2, vni: 1}}\n",
       "t.yaml:11:26: mirror 'm0': a vxlan destination needs L3 (addresses:): sluice builds the "
       "outer IPv4 packet and sends it through its routes and neighbours"},
      {"    source: {dev: p0, direction: egress}\n    to: {vxlan: {remote: 10.9.0.2}}\n",
       "t.yaml:11:17: mirror 'm0': to: vxlan: missing required key 'vni'"},
      {"    source: {dev: p0, direction: egress}\n    to: {gre: {remote: 300.1.1.1}}\n",
       "t.yaml:11:24: mirror 'm0': to: gre: remote must be an IPv4 address, got '300.1.1.1'"},
      {"    source: {dev: p0, direction: egress}\n    bogus: 1\n    to: {dev: p1}\n",
       "t.yaml:11:5: mirror 'm0': unknown key 'bogus' (expected one of: name, source, filter, "
       "action, snaplen, sample, to)"},
  };
  for (const Case& c : cases) EXPECT_EQ(error_of(m + c.body), c.want) << c.body;

  // Routed destinations.
  const std::string l3 = "addresses:\n  - {dev: p3, address: 10.9.0.1/24}\n";
  EXPECT_EQ(error_of(std::string(kPorts) + l3 +
                     "mirrors:\n  - name: m0\n    source: {dev: p0, direction: egress}\n"
                     "    to: {erspan: {remote: 192.0.2.9, session: 1}}\n"),
            "t.yaml:13:27: mirror 'm0': no route to 192.0.2.9 (see addresses and routes)");
  EXPECT_EQ(error_of(std::string(kPorts) + l3 +
                     "mirrors:\n  - name: m0\n    source: {dev: p0, direction: egress}\n"
                     "    to: {gre: {remote: 10.9.0.2, dev: p2}}\n"),
            "t.yaml:13:39: mirror 'm0': 10.9.0.2 is routed out of p3, not p2 (dev names the "
            "device the tunnel leaves through)");
  // Names.
  EXPECT_EQ(error_of(m + "    source: {dev: p0, direction: egress}\n    to: {dev: p1}\n" +
                     "  - name: m0\n    source: {dev: p1, direction: egress}\n    to: {dev: p2}\n"),
            "t.yaml:12:11: duplicate mirror name 'm0' (first defined at 9:11)");
  // A port may not take lo's name.
  EXPECT_NE(error_of("ports:\n  - {name: lo, device: net_null0}\n")
                .find("'lo' is the loopback device every topology has"),
            std::string::npos);
}

// ---- the loop check ----------------------------------------------------------------

config::Mirror mk(const std::string& name, const std::string& src, uint8_t dir, bool redirect,
                  const std::string& to, bool at_ingress = false) {
  config::Mirror m;
  m.name = name;
  m.source = src;
  m.direction = dir;
  m.redirect = redirect;
  m.to = config::MirrorTarget::dev;
  m.dev = to;
  m.at_ingress = at_ingress;
  return m;
}
config::Mirror mk_remote(const std::string& name, const std::string& src, uint8_t dir,
                         const std::string& via) {
  config::Mirror m;
  m.name = name;
  m.source = src;
  m.direction = dir;
  m.to = config::MirrorTarget::vxlan;
  m.remote = "10.9.0.2";
  m.via = via;
  return m;
}

TEST(MirrorLoops, TableOfTopologies) {
  using G = mirror::GraphDevice;
  std::vector<G> devs = {
      G{"lo", "", {}, true, {}},
      G{"eth0", "", {}, false, {}},
      G{"eth1", "", {}, false, {}},
      G{"eth2", "", {}, false, {}},
      G{"eth0.100", "eth0", {}, false, {}},
      G{"br0", "", {"eth1", "eth2"}, false, {}},
      G{"eth3", "", {}, false, {}},
      G{"eth4", "", {}, false, {}},
      G{"bond0", "", {}, false, {"eth3", "eth4"}},
  };
  constexpr uint8_t in = 1, eg = 2, both = 3;
  struct Case {
    const char* what;
    std::vector<config::Mirror> ms;
    std::string loop;  // "" = accepted
    size_t culprit = 0;
  } cases[] = {
      {"mirror to another port", {mk("m0", "eth0", eg, false, "eth1")}, ""},
      {"redirect chain without a cycle (MIR-03)",
       {mk("a", "eth0", in, true, "eth1", true), mk("b", "eth1", in, true, "eth2", true)},
       ""},
      {"mirror to itself: its copies are flagged (MIR-04a)",
       {mk("m0", "eth0", eg, false, "eth0")},
       ""},
      {"redirect to itself",
       {mk("r0", "eth0", eg, true, "eth0")},
       "eth0 egress -(r0)-> eth0 egress"},
      {"mirror to lo: lo's egress comes back at its ingress, nothing there",
       {mk("m0", "eth0", eg, false, "lo")},
       ""},
      {"the story: eth0 → lo → vxlan → eth0",
       {mk("m0", "eth0", eg, false, "lo"), mk_remote("m1", "lo", in, "eth0")},
       "lo ingress -(m1 vxlan 10.9.0.2)-> eth0 egress -(m0)-> lo egress -> lo ingress",
       1},
      {"the story the sluice way: one mirror, remote over its own source device",
       {mk_remote("m0", "eth0", eg, "eth0")},
       ""},
      {"two mirrors feeding each other",
       {mk("a", "eth0", eg, false, "eth1"), mk("b", "eth1", eg, false, "eth0")},
       "eth1 egress -(b)-> eth0 egress -(a)-> eth1 egress",
       1},
      {"ingress ping-pong through lo (MIR-04c)",
       {mk("a", "eth0", in, true, "lo"), mk("b", "lo", in, true, "eth0", true)},
       "lo ingress -(b)-> eth0 ingress -(a)-> lo egress -> lo ingress",
       1},
      {"through a VLAN: its egress leaves by its link",
       {mk("a", "eth0", eg, true, "eth0.100")},
       "eth0 egress -(a)-> eth0.100 egress -> eth0 egress"},
      {"through a VLAN's link ingress",
       {mk("a", "eth0.100", in, true, "eth0", true)},
       "eth0.100 ingress -(a)-> eth0 ingress -> eth0.100 ingress"},
      {"through a bridge: a port's ingress is forwarded to the other ports",
       {mk("a", "eth2", eg, true, "eth1", true)},
       "eth2 egress -(a)-> eth1 ingress -> eth2 egress"},
      {"bridge egress floods its ports",
       {mk("a", "eth1", eg, false, "eth2"), mk("b", "eth2", eg, false, "br0")},
       "eth2 egress -(b)-> br0 egress -> eth1 egress -(a)-> eth2 egress",
       1},
      {"both directions, the egress side loops",
       {mk("a", "eth1", both, true, "eth1")},
       "eth1 egress -(a)-> eth1 egress"},
      {"a remote whose underlay is another mirrored device",
       {mk("a", "eth1", eg, false, "eth0"), mk_remote("b", "eth0", eg, "eth1")},
       "eth0 egress -(b vxlan 10.9.0.2)-> eth1 egress -(a)-> eth0 egress",
       1},
      {"a bond's egress leaves by a member",
       {mk("a", "eth3", eg, true, "bond0")},
       "eth3 egress -(a)-> bond0 egress -> eth3 egress"},
      {"a member's ingress is the bond's",
       {mk("a", "bond0", in, true, "eth4", true)},
       "bond0 ingress -(a)-> eth4 ingress -> bond0 ingress"},
      {"bond to another port: no loop", {mk("a", "bond0", both, false, "eth0")}, ""},
      {"pcapng is a sink",
       {[] {
         config::Mirror m = mk("p", "eth0", both, true, "");
         m.to = config::MirrorTarget::pcapng;
         return m;
       }()},
       ""},
  };
  for (const Case& c : cases) {
    size_t culprit = 99;
    EXPECT_EQ(mirror::find_loop(devs, c.ms, &culprit), c.loop) << c.what;
    if (!c.loop.empty()) {
      EXPECT_EQ(culprit, c.culprit) << c.what;
    }
  }
}

TEST(MirrorLoops, RefusedAtLoadNamingTheCycle) {
  const std::string l3 = "addresses:\n  - {dev: p0, address: 10.9.0.1/24}\n";
  std::string y = std::string(kPorts) + l3 +
                  "mirrors:\n"
                  "  - name: m0\n"
                  "    source: {dev: p0, direction: egress}\n"
                  "    filter: \"tcp port 9091\"\n"
                  "    to: {dev: lo}\n"
                  "  - name: m1\n"
                  "    source: {dev: lo, direction: ingress}\n"
                  "    to: {vxlan: {remote: 10.9.0.2, vni: 42}}\n";
  EXPECT_EQ(error_of(y),
            "t.yaml:15:5: mirror 'm1' closes a loop: lo ingress -(m1 vxlan 10.9.0.2)-> p0 egress "
            "-(m0)-> lo egress -> lo ingress (a packet would come back to where it was mirrored; "
            "Linux hangs on such loops, sluice refuses them)");
  // The sluice way: one mirror, straight to the analyzer over the same port.
  EXPECT_EQ(error_of(std::string(kPorts) + l3 +
                     "mirrors:\n"
                     "  - name: m0\n"
                     "    source: {dev: p0, direction: egress}\n"
                     "    filter: \"tcp port 9091\"\n"
                     "    to: {vxlan: {remote: 10.9.0.2, vni: 42}}\n"),
            "");
}

// ---- the actions -----------------------------------------------------------------

struct Sent {
  std::string dev;
  std::vector<uint8_t> bytes;
  bool indirect;  // shares its payload
  PktMeta md;
};

struct Recorder {
  std::vector<Sent> sent;
};

void rec_xmit(Worker& w, Device& dev, rte_mbuf** pkts, uint16_t n) {
  auto* r = static_cast<Recorder*>(dev.xmit_ctx);
  for (uint16_t i = 0; i < n; i++) {
    rte_mbuf* m = pkts[i];
    Sent s{dev.name, {}, !RTE_MBUF_DIRECT(m) || (m->next && !RTE_MBUF_DIRECT(m->next)), meta(m)};
    if (meta(m).flags & kFlagVlan) {
      const uint8_t* p = rte_pktmbuf_mtod(m, const uint8_t*);
      s.bytes.assign(p, p + 12);
      s.bytes.push_back(static_cast<uint8_t>(meta(m).vlan_proto >> 8));
      s.bytes.push_back(static_cast<uint8_t>(meta(m).vlan_proto));
      s.bytes.push_back(static_cast<uint8_t>(meta(m).vlan_tci >> 8));
      s.bytes.push_back(static_cast<uint8_t>(meta(m).vlan_tci));
      for (uint32_t k = 12; k < m->pkt_len; k++)
        s.bytes.push_back(*rte_pktmbuf_mtod_offset(m, const uint8_t*, k));
    } else {
      for (rte_mbuf* g = m; g; g = g->next) {
        const uint8_t* p = rte_pktmbuf_mtod(g, const uint8_t*);
        s.bytes.insert(s.bytes.end(), p, p + g->data_len);
      }
    }
    r->sent.push_back(std::move(s));
    w.free_later(m);
  }
}

// A UDP/IPv4 frame to port dport with a payload marker.
rte_mbuf* udp_frame(uint16_t dport, uint8_t marker = 0, const char* dst = "02:00:00:00:00:01",
                    size_t payload = 18) {
  FrameSpec f;
  f.dst = dst;
  f.type = 0x0800;
  std::vector<uint8_t> b = {0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, 10, 0, 1, 2, 10, 0, 2, 2};
  size_t tot = 20 + 8 + payload;
  b[2] = static_cast<uint8_t>(tot >> 8);
  b[3] = static_cast<uint8_t>(tot);
  b.insert(b.end(),
           {0x9c, 0x40, static_cast<uint8_t>(dport >> 8), static_cast<uint8_t>(dport),
            static_cast<uint8_t>((8 + payload) >> 8), static_cast<uint8_t>(8 + payload), 0, 0});
  for (size_t i = 0; i < payload; i++) b.push_back(static_cast<uint8_t>(marker + i));
  f.payload = b;
  return test::frame(f);
}

class MirrorRun : public ::testing::Test {
 protected:
  void SetUp() override { avail_before = rte_mempool_avail_count(test::pool()); }
  void TearDown() override {
    for (auto& w : workers) w->flush_free();
    if (dp) {
      dp->run_shutdown();
      mirror::shutdown(*dp);
    }
    workers.clear();
    dp.reset();
    EXPECT_EQ(rte_mempool_avail_count(test::pool()), avail_before) << "an mbuf leaked";
  }

  // Loads the mirrors (after kPorts) into a Dataplane whose ports are fake
  // devices recording what they send; builds them.
  void start(const std::string& mirrors, const std::string& extra = "") {
    dp = std::make_unique<Dataplane>();
    dp->topo = config::load_string(std::string(kPorts) + extra + "mirrors:\n" + mirrors, "t.yaml");
    for (auto& p : dp->topo.ports) {
      auto d = std::make_unique<Device>();
      d->name = p.name;
      d->kind = DevKind::port;
      rte_ether_unformat_addr(p.mac.value_or("02:00:00:00:00:99").c_str(), &d->mac);
      d->xmit = rec_xmit;
      d->xmit_ctx = &rec;
      devs.push_back(dp->net.add_device(std::move(d)));
    }
    workers.push_back(std::make_unique<Worker>(dp->net, 0));
    w = workers.back().get();
    mirror::setup(*dp);
    sys = dp->find_feature<mirror::MirrorSys>();
    ASSERT_NE(sys, nullptr);
  }
  Device* dev(const char* n) { return dp->net.find(n); }
  void rx(const char* d, std::vector<rte_mbuf*> v) {
    port_receive(*w, *dev(d), v.data(), static_cast<uint16_t>(v.size()));
    w->flush_free();
  }
  void tx(const char* d, std::vector<rte_mbuf*> v) {
    for (rte_mbuf* m : v) std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
    dev_queue_xmit(*w, *dev(d), v.data(), static_cast<uint16_t>(v.size()));
    w->flush_free();
  }
  std::vector<Sent> sent_on(const std::string& d) {
    std::vector<Sent> v;
    for (auto& s : rec.sent)
      if (s.dev == d) v.push_back(s);
    return v;
  }
  mirror::Counters ctr(const char* name) { return sys->find(name)->total(); }
  uint64_t drops(const char* d, DropReason r) {
    return w->drops[dev(d)->index][static_cast<unsigned>(r)];
  }
  test::Probe* probe(const std::string& who) {
    probes.push_back(std::make_unique<test::Probe>(test::Probe{&seen, who}));
    return probes.back().get();
  }
  void add_probe(uint16_t type, Device* d, test::Probe* p) {
    dp->net.add_ptype(type, d, test::probe_proto, p, p->who.c_str());
  }

  unsigned avail_before = 0;
  std::unique_ptr<Dataplane> dp;
  std::vector<std::unique_ptr<Worker>> workers;
  Worker* w = nullptr;
  mirror::MirrorSys* sys = nullptr;
  std::vector<Device*> devs;
  Recorder rec;
  test::Recorder seen;
  std::vector<std::unique_ptr<test::Probe>> probes;
};

TEST_F(MirrorRun, EgressMirrorCopiesWhatTheFilterSelectsSharingThePayload) {
  start(
      "  - name: m0\n"
      "    source: {dev: p0, direction: egress}\n"
      "    filter: \"udp port 9091\"\n"
      "    to: {dev: p1}\n");
  tx("p0", {udp_frame(9091, 1), udp_frame(80, 2), udp_frame(9091, 3)});
  auto orig = sent_on("p0");
  auto copies = sent_on("p1");
  ASSERT_EQ(orig.size(), 3u);
  ASSERT_EQ(copies.size(), 2u);
  EXPECT_EQ(copies[0].bytes, orig[0].bytes);  // byte for byte
  EXPECT_EQ(copies[1].bytes, orig[2].bytes);
  EXPECT_TRUE(copies[0].indirect);  // a clone: the payload is shared
  EXPECT_TRUE(copies[0].md.flags & kFlagMirrored);
  EXPECT_EQ(copies[0].md.mirror_depth, 1);
  EXPECT_FALSE(orig[0].md.flags & kFlagMirrored);
  auto c = ctr("m0");
  EXPECT_EQ(c.hits, 2u);
  EXPECT_EQ(c.copies, 2u);
  EXPECT_EQ(c.copies_failed, 0u);
  EXPECT_EQ(c.bytes, 2u * orig[0].bytes.size());
}

TEST_F(MirrorRun, DirectionSelectsTheSide) {
  start(
      "  - name: in\n"
      "    source: {dev: p0, direction: ingress}\n"
      "    to: {dev: p1}\n"
      "  - name: out\n"
      "    source: {dev: p0, direction: egress}\n"
      "    to: {dev: p2}\n"
      "  - name: both\n"
      "    source: {dev: p3, direction: both}\n"
      "    to: {dev: p4}\n");
  test::Probe ip{&seen, "ip"};
  add_probe(0x0800, nullptr, &ip);
  rx("p0", {udp_frame(1), udp_frame(2)});
  tx("p0", {udp_frame(3)});
  EXPECT_EQ(sent_on("p1").size(), 2u);  // the ingress ones
  EXPECT_EQ(sent_on("p2").size(), 1u);  // the egress one
  EXPECT_EQ(seen.of("ip").size(), 2u);  // a mirror leaves the original alone
  rx("p3", {udp_frame(4, 0, "02:00:00:00:00:99")});
  tx("p3", {udp_frame(5)});
  EXPECT_EQ(sent_on("p4").size(), 2u);
  EXPECT_EQ(ctr("in").hits, 2u);
  EXPECT_EQ(ctr("out").hits, 1u);
  EXPECT_EQ(ctr("both").hits, 2u);
}

TEST_F(MirrorRun, IngressCopyKeepsTheVlanTagOnTheWire) {
  start(
      "  - name: m0\n"
      "    source: {dev: p0, direction: ingress}\n"
      "    filter: \"vlan 100 and udp\"\n"
      "    to: {dev: p1}\n");
  // A UDP frame tagged 100 in the data: the round takes the tag into metadata.
  rte_mbuf* m = udp_frame(53);
  uint8_t* p = reinterpret_cast<uint8_t*>(rte_pktmbuf_prepend(m, 4));
  std::memmove(p, p + 4, 12);
  p[12] = 0x81;
  p[13] = 0;
  p[14] = 0;
  p[15] = 100;
  std::vector<uint8_t> wire(p, p + m->pkt_len);
  rx("p0", {m, udp_frame(53)});
  auto copies = sent_on("p1");
  ASSERT_EQ(copies.size(), 1u);  // only the tagged one matched `vlan 100`
  EXPECT_EQ(copies[0].bytes, wire);
}

TEST_F(MirrorRun, RedirectMovesThePacket) {  // MIR-02 (a)
  start(
      "  - name: r0\n"
      "    source: {dev: p0, direction: ingress}\n"
      "    action: redirect\n"
      "    to: {dev: p1}\n");
  test::Probe ip{&seen, "ip"};
  add_probe(0x0800, nullptr, &ip);
  dp->net.add_tap(dev("p0"), test::probe_tap, probe("tap_p0"));
  dp->net.add_tap(dev("p1"), test::probe_tap, probe("tap_p1"));
  rx("p0", {udp_frame(1, 7)});
  EXPECT_EQ(seen.of("ip").size(), 0u);  // p0's stack gets nothing
  EXPECT_EQ(seen.of("tap_p0").size(), 1u);
  auto out = sent_on("p1");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_FALSE(out[0].indirect);  // the packet itself
  EXPECT_FALSE(out[0].md.flags & kFlagMirrored);
  auto t1 = seen.of("tap_p1");
  ASSERT_EQ(t1.size(), 1u);
  EXPECT_EQ(t1[0].dir, Direction::egress);
  EXPECT_EQ(ctr("r0").copies, 1u);
}

TEST_F(MirrorRun, RedirectToADownDeviceDropsAndCounts) {
  start(
      "  - name: r0\n"
      "    source: {dev: p0, direction: ingress}\n"
      "    action: redirect\n"
      "    to: {dev: p1}\n"
      "  - name: m0\n"
      "    source: {dev: p2, direction: egress}\n"
      "    to: {dev: p1}\n");
  dev("p1")->oper_up.store(false);
  test::Probe ip{&seen, "ip"};
  add_probe(0x0800, nullptr, &ip);
  rx("p0", {udp_frame(1)});
  EXPECT_EQ(seen.of("ip").size(), 0u);
  EXPECT_EQ(drops("p0", DropReason::mirred_target_down), 1u);
  EXPECT_EQ(ctr("r0").copies_failed, 1u);  // overlimits
  EXPECT_EQ(ctr("r0").drops[mirror::kDropTargetDown], 1u);
  tx("p2", {udp_frame(2)});
  EXPECT_EQ(sent_on("p2").size(), 1u);  // a mirror keeps its verdict
  EXPECT_EQ(ctr("m0").copies_failed, 1u);
  EXPECT_TRUE(sent_on("p1").empty());
}

TEST_F(MirrorRun, IngressRedirectToIngressRunsTheReceivePathThere) {  // MIR-02 (b)
  start(
      "  - name: r0\n"
      "    source: {dev: p0, direction: ingress}\n"
      "    action: redirect\n"
      "    to: {dev: p1, at: ingress}\n");
  test::Probe ip{&seen, "ip"};
  add_probe(0x0800, nullptr, &ip);
  dp->net.add_tap(dev("p1"), test::probe_tap, probe("tap_p1"));
  // To p0's MAC: HOST on p0, and still HOST on p1 (pkt_type is not recomputed).
  rx("p0", {udp_frame(1, 0, "02:00:00:00:00:01")});
  auto t = seen.of("tap_p1");
  ASSERT_EQ(t.size(), 1u);
  EXPECT_EQ(t[0].dir, Direction::ingress);
  auto d = seen.of("ip");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].dev, dev("p1")->index);
  EXPECT_EQ(d[0].orig_dev, dev("p1")->index);
  EXPECT_EQ(d[0].pkt_type, PktType::host);
}

TEST_F(MirrorRun, NestLimitStopsARedirectChain) {  // MIR-03
  start(
      "  - {name: r0, source: {dev: p0, direction: ingress}, action: redirect, to: {dev: p1, at: "
      "ingress}}\n"
      "  - {name: r1, source: {dev: p1, direction: ingress}, action: redirect, to: {dev: p2, at: "
      "ingress}}\n"
      "  - {name: r2, source: {dev: p2, direction: ingress}, action: redirect, to: {dev: p3, at: "
      "ingress}}\n"
      "  - {name: r3, source: {dev: p3, direction: ingress}, action: redirect, to: {dev: p4, at: "
      "ingress}}\n"
      "  - {name: r4, source: {dev: p4, direction: ingress}, action: redirect, to: {dev: p5, at: "
      "ingress}}\n");
  test::Probe ip{&seen, "ip"};
  add_probe(0x0800, nullptr, &ip);
  for (const char* p : {"p1", "p2", "p3", "p4", "p5"})
    dp->net.add_tap(dev(p), test::probe_tap, probe(std::string("tap_") + p));
  rx("p0", {udp_frame(1)});
  for (const char* p : {"tap_p1", "tap_p2", "tap_p3", "tap_p4"})
    EXPECT_EQ(seen.of(p).size(), 1u) << p;
  EXPECT_EQ(seen.of("tap_p5").size(), 0u);
  EXPECT_EQ(seen.of("ip").size(), 0u);
  EXPECT_EQ(drops("p4", DropReason::mirred_nest_limit), 1u);
  EXPECT_EQ(ctr("r4").drops[mirror::kDropNest], 1u);
  EXPECT_EQ(ctr("r3").copies, 1u);
  // The next packet goes the same way: nothing is stuck.
  rx("p0", {udp_frame(2)});
  EXPECT_EQ(drops("p4", DropReason::mirred_nest_limit), 2u);
}

TEST_F(MirrorRun, ACopyIsNeverMirroredAgain) {  // MIR-04 (a): one copy, not four
  start(
      "  - name: self\n"
      "    source: {dev: p0, direction: egress}\n"
      "    to: {dev: p0}\n"
      "  - name: next\n"
      "    source: {dev: p0, direction: egress}\n"
      "    to: {dev: p1}\n");
  tx("p0", {udp_frame(1)});
  EXPECT_EQ(sent_on("p0").size(), 2u);  // the original and one copy
  EXPECT_EQ(sent_on("p1").size(), 1u);  // `next` copies the original only
  EXPECT_EQ(ctr("self").copies, 1u);
  EXPECT_EQ(ctr("self").skipped, 1u);  // its own copy came back and was passed on
  EXPECT_EQ(ctr("next").skipped, 1u);
}

TEST_F(MirrorRun, SamplingAndSnaplen) {
  start(
      "  - name: m0\n"
      "    source: {dev: p0, direction: egress}\n"
      "    sample: 4\n"
      "    snaplen: 30\n"
      "    to: {dev: p1}\n");
  std::vector<rte_mbuf*> v;
  for (int i = 0; i < 9; i++) v.push_back(udp_frame(1, static_cast<uint8_t>(i)));
  tx("p0", v);
  auto c = ctr("m0");
  EXPECT_EQ(c.hits, 9u);
  EXPECT_EQ(c.copies, 3u);  // the 1st, 5th and 9th
  EXPECT_EQ(c.sampled_out, 6u);
  auto copies = sent_on("p1");
  ASSERT_EQ(copies.size(), 3u);
  auto orig = sent_on("p0");
  for (size_t k = 0; k < 3; k++) {
    ASSERT_EQ(copies[k].bytes.size(), 30u);
    EXPECT_TRUE(
        std::equal(copies[k].bytes.begin(), copies[k].bytes.end(), orig[k * 4].bytes.begin()));
  }
}

TEST_F(MirrorRun, EgressToIngressGoesThroughTheBacklog) {
  start(
      "  - name: m0\n"
      "    source: {dev: p0, direction: egress}\n"
      "    to: {dev: p1, at: ingress}\n");
  test::Probe ip{&seen, "ip"};
  add_probe(0x0800, nullptr, &ip);
  tx("p0", {udp_frame(1, 0, "02:00:00:00:00:02")});
  EXPECT_EQ(seen.of("ip").size(), 0u);  // not yet: netif_rx
  mirror::MirrorSys::poll(*w, sys);
  auto d = seen.of("ip");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].dev, dev("p1")->index);
}

TEST_F(MirrorRun, ShowMirrors) {
  start(
      "  - name: m0\n"
      "    source: {dev: p0, direction: egress}\n"
      "    filter: \"udp\"\n"
      "    to: {dev: p1}\n");
  tx("p0", {udp_frame(1), udp_frame(2)});
  auto r = CommandRegistry::instance().run(*dp, {"show", "mirrors"});
  ASSERT_EQ(r.status, 0) << r.text;
  auto& j = r.json.at("m0");
  EXPECT_EQ(j["source"], "p0");
  EXPECT_EQ(j["direction"], "egress");
  EXPECT_EQ(j["action"], "mirror");
  EXPECT_EQ(j["filter"], "udp");
  EXPECT_EQ(j["filter_engine"], "jit");
  EXPECT_EQ(j["to"], "p1 egress");
  EXPECT_EQ(j["hits"], 2);
  EXPECT_EQ(j["copies"], 2);
  EXPECT_EQ(j["copies_failed"], 0);
  EXPECT_EQ(j["sampled_out"], 0);
  EXPECT_TRUE(j["bytes"].get<uint64_t>() > 0);
  EXPECT_TRUE(j["drops"].is_object());
  EXPECT_NE(r.text.find("m0"), std::string::npos);
  dp->clear_stats();
  mirror::clear_stats(*dp);
  r = CommandRegistry::instance().run(*dp, {"show", "mirrors", "m0"});
  EXPECT_EQ(r.json.at("m0")["hits"], 0);
  EXPECT_EQ(CommandRegistry::instance().run(*dp, {"show", "mirrors", "nope"}).status, 1);
}

// ---- outer headers ------------------------------------------------------------------

class Encap : public ::testing::Test {
 protected:
  mirror::Mirror mi;
  void make(config::MirrorTarget t) {
    mi.cfg.to = t;
    mi.cfg.vni = 42;
    mi.cfg.dst_port = 4789;
    mi.cfg.session = 7;
    mi.src_ip = 0x0a090001;
    mi.dst_ip = 0x0a090002;
    mi.source = 3;
    mi.underlay_mtu = 1500;
    mirror::build_encap(mi);
  }
  std::vector<uint8_t> linear(rte_mbuf* m) {
    std::vector<uint8_t> v;
    for (rte_mbuf* g = m; g; g = g->next) {
      const uint8_t* p = rte_pktmbuf_mtod(g, const uint8_t*);
      v.insert(v.end(), p, p + g->data_len);
    }
    return v;
  }
  static uint16_t be16(const std::vector<uint8_t>& b, size_t o) {
    return static_cast<uint16_t>(b[o] << 8 | b[o + 1]);
  }
  static uint32_t be32(const std::vector<uint8_t>& b, size_t o) {
    return uint32_t(be16(b, o)) << 16 | be16(b, o + 2);
  }
};

TEST_F(Encap, VxlanAroundASharedClone) {
  make(config::MirrorTarget::vxlan);
  rte_mbuf* m = udp_frame(9091, 3);
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  std::vector<uint8_t> inner = linear(m);
  rte_mbuf* e = mirror::encapsulate(mi, m, false, 5, m->pkt_len);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->nb_segs, 2);
  EXPECT_FALSE(RTE_MBUF_DIRECT(e->next));  // the payload is shared
  auto b = linear(e);
  ASSERT_EQ(b.size(), 14 + 20 + 8 + 8 + inner.size());
  EXPECT_EQ(b[14], 0x45);
  EXPECT_EQ(be16(b, 16), 20 + 8 + 8 + inner.size());
  EXPECT_EQ(be16(b, 20) & 0x4000, 0);  // no DF
  EXPECT_EQ(b[23], 17);
  EXPECT_EQ(be32(b, 26), 0x0a090001u);
  EXPECT_EQ(be32(b, 30), 0x0a090002u);
  EXPECT_GE(be16(b, 34), 32768);
  EXPECT_EQ(be16(b, 36), 4789);
  EXPECT_EQ(be16(b, 38), 8 + 8 + inner.size());
  EXPECT_EQ(b[42], 0x08);
  EXPECT_EQ(be32(b, 46) >> 8, 42u);
  EXPECT_TRUE(std::equal(inner.begin(), inner.end(), b.begin() + 50));
  EXPECT_TRUE(meta(e).flags & kFlagMirrored);
  // The IPv4 header checksum verifies.
  uint32_t sum = 0;
  for (size_t i = 14; i < 34; i += 2) sum += be16(b, i);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  EXPECT_EQ(sum, 0xffffu);
  rte_pktmbuf_free(e);
  rte_pktmbuf_free(m);
}

TEST_F(Encap, GreWithKeyAndErspanWithTheTagAndSequence) {
  make(config::MirrorTarget::gre);
  mi.cfg.key = 0x1234;
  mirror::build_encap(mi);
  rte_mbuf* m = udp_frame(1);
  std::memset(rte_mbuf_to_priv(m), 0, sizeof(PktMeta));
  rte_mbuf* e = mirror::encapsulate(mi, m, false, 0, m->pkt_len);
  auto b = linear(e);
  EXPECT_EQ(b[23], 47);
  EXPECT_EQ(be16(b, 34), 0x2000);  // K
  EXPECT_EQ(be16(b, 36), 0x6558);
  EXPECT_EQ(be32(b, 38), 0x1234u);
  EXPECT_EQ(b.size(), 14 + 20 + 8 + m->pkt_len);
  rte_pktmbuf_free(e);

  mirror::Mirror er;
  er.cfg.to = config::MirrorTarget::erspan;
  er.cfg.session = 7;
  er.src_ip = 1;
  er.dst_ip = 2;
  er.source = 3;
  mirror::build_encap(er);
  meta(m).flags = kFlagVlan;
  meta(m).vlan_proto = 0x8100;
  meta(m).vlan_tci = static_cast<uint16_t>(5 << 13 | 100);
  e = mirror::encapsulate(er, m, false, 77, 30);  // snaplen 30: truncated
  b = linear(e);
  EXPECT_EQ(be16(b, 34), 0x1000);  // S
  EXPECT_EQ(be16(b, 36), 0x88be);
  EXPECT_EQ(be32(b, 38), 77u);  // the sequence number
  uint32_t w0 = be32(b, 42);
  EXPECT_EQ(w0 >> 28, 1u);              // version 1: type II
  EXPECT_EQ((w0 >> 16) & 0xfff, 100u);  // VLAN
  EXPECT_EQ((w0 >> 13) & 7, 5u);        // COS
  EXPECT_EQ((w0 >> 11) & 3, 3u);        // En: the tag is in the frame
  EXPECT_EQ((w0 >> 10) & 1, 1u);        // T: truncated
  EXPECT_EQ(w0 & 0x3ff, 7u);            // session
  EXPECT_EQ(be32(b, 46), 3u);           // index
  // The inner frame carries the tag: 12 bytes of MACs, 0x8100, the TCI.
  EXPECT_EQ(be16(b, 50 + 12), 0x8100);
  EXPECT_EQ(be16(b, 50 + 14), 5 << 13 | 100);
  EXPECT_EQ(b.size(), 50u + 30 + 4);
  rte_pktmbuf_free(e);
  rte_pktmbuf_free(m);
}

}  // namespace
}  // namespace sluice
