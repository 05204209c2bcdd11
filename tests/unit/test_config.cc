// The YAML topology loader: values, defaults, and line:column errors.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/topology.hh"

namespace sluice::config {
namespace {

// The message of the ConfigError that loading `yaml` throws, or "" if none.
std::string error_of(const std::string& yaml) {
  try {
    load_string(yaml, "t.yaml");
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

const char* const kMinimal =
    "ports:\n"
    "  - name: eth0\n"
    "    device: net_null0\n";

TEST(ConfigLcores, WorkersAreAllButTheFirst) {
  EXPECT_EQ(parse_lcores("0-1"), (std::vector<unsigned>{1}));
  EXPECT_EQ(parse_lcores("0,2-3"), (std::vector<unsigned>{2, 3}));
  EXPECT_EQ(parse_lcores("0"), (std::vector<unsigned>{}));
  EXPECT_EQ(parse_lcores("1-4"), (std::vector<unsigned>{2, 3, 4}));
  EXPECT_EQ(parse_lcores("0,5,7-8"), (std::vector<unsigned>{5, 7, 8}));
  EXPECT_EQ(parse_lcores("3-3"), (std::vector<unsigned>{}));
}

TEST(ConfigLcores, InvalidStringsThrow) {
  for (const char* s : {"", "a", "0-", "-1", "1-0", "0,0", "2,1", "0-2,1", "0,,1", "0,", ",0",
                        "0 1", " 0", "0-1 ", "1.5", "0x1", "99999999999", "128"}) {
    EXPECT_THROW(parse_lcores(s), std::invalid_argument) << "'" << s << "'";
  }
}

TEST(ConfigLcores, EalMappingSyntax) {
  struct Case {
    const char* s;
    std::vector<unsigned> lcores;
  };
  for (const Case& c : {
           Case{"0@0,1@0,2@1", {0, 1, 2}},
           Case{"0,1@0,2@1", {0, 1, 2}},
           Case{"(0-1)@0,2@1", {0, 1, 2}},
           Case{"0-1@0", {0, 1}},
           Case{"0@(0-1),1@(0,1),2@1", {0, 1, 2}},
           Case{"(0,2,4-5)@(0-3)", {0, 2, 4, 5}},
           Case{"(0-1)", {0, 1}},
           Case{"0@0,127@1023", {0, 127}},
           Case{"1@0,3-4@1", {1, 3, 4}},
       }) {
    LcoreSpec spec = parse_lcore_spec(c.s);
    EXPECT_EQ(spec.lcores, c.lcores) << c.s;
    EXPECT_TRUE(spec.mapped) << c.s;
    EXPECT_EQ(parse_lcores(c.s), std::vector<unsigned>(c.lcores.begin() + 1, c.lcores.end()))
        << c.s;
  }
  // Plain lists stay plain (-l).
  for (const char* s : {"0-1", "0,2-3", "0", "3-3"}) EXPECT_FALSE(parse_lcore_spec(s).mapped) << s;
}

TEST(ConfigLcores, BadMappingThrows) {
  for (const char* s :
       {"0@",         "@0",          "0@a",     "0@-1",   "0@(0",   "0@()",    "0@(0,)",
        "0@(,0)",     "0@(0,,1)",    "0@(0)-1", "0@0@1",  "0@1-0",  "0@(3-1)", "0@1024",
        "0@(0-1024)", "(0-1",        "(0-1)x",  "()",     "(0,)@0", "(1,0)@0", "0@0,0@1",
        "1@0,0@1",    "(0-1)@0,1@1", "0@ 1",    "0 @1",   "128@0",  "0@0,",    ",0@0",
        "0@0,,1@1",   "0@(0)(1)",    "((0))@0", "0@0;1@1"}) {
    EXPECT_THROW(parse_lcore_spec(s), std::invalid_argument) << "'" << s << "'";
  }
  auto why = [](const char* s) {
    try {
      parse_lcore_spec(s);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(why("0@x"), "expected a CPU id at 'x'");
  EXPECT_EQ(why("0@(0"), "missing ')' at the end");
  EXPECT_EQ(why("0@(0;1)"), "expected ',' or ')' at ';1)'");
  EXPECT_EQ(why("0@1024"), "CPU 1024 is above the maximum 1023");
  EXPECT_EQ(why("0@0,0@1"), "lcore 0 repeats or is out of increasing order");
  EXPECT_EQ(why("0@0@1"), "unexpected '@1'");
}

TEST(ConfigLoader, FullFile) {
  Topology t = load_string(
      "eal:\n"
      "  lcores: \"0,2-3\"\n"
      "  memory_mb: 256\n"
      "  hugepages: false\n"
      "  file_prefix: test-1\n"
      "  args: [\"--log-level=lib.eal:notice\", -v]\n"
      "ports:\n"
      "  - name: eth0\n"
      "    device: \"0000:03:00.0\"\n"
      "  - name: eth1\n"
      "    device: \"net_af_packet0,iface=veth-a\"\n"
      "    rx_queues: 4\n"
      "    tx_queues: 2\n"
      "    mtu: 9000\n"
      "    mac: \"02:AB:00:00:00:01\"\n"
      "    promiscuous: false\n"
      "    workers: [3, 2]\n"
      "    rx_desc: 512\n"
      "    tx_desc: 2048\n"
      "vlans:\n"
      "  - {name: eth1.100, link: eth1, id: 100}\n"
      "  - {name: outer, link: eth1, id: 100, protocol: 802.1AD}\n"
      "control:\n"
      "  socket: /tmp/sluice.sock\n"
      "  telemetry: no\n"
      "  metrics: \"127.0.0.1:9469\"\n"
      "logging: {level: debug, file: /tmp/sluice.log}\n",
      "full.yaml");
  EXPECT_EQ(t.file, "full.yaml");
  EXPECT_EQ(t.eal.lcores, "0,2-3");
  EXPECT_EQ(t.eal.memory_mb, 256u);
  EXPECT_FALSE(t.eal.hugepages);
  EXPECT_EQ(t.eal.file_prefix, "test-1");
  EXPECT_EQ(t.eal.args, (std::vector<std::string>{"--log-level=lib.eal:notice", "-v"}));

  ASSERT_EQ(t.ports.size(), 2u);
  const Port& p0 = t.ports[0];
  EXPECT_EQ(p0.name, "eth0");
  EXPECT_EQ(p0.device, "0000:03:00.0");
  EXPECT_TRUE(p0.is_pci);
  EXPECT_EQ(p0.mark.line, 8);
  EXPECT_EQ(p0.mark.col, 11);
  EXPECT_EQ(p0.rx_queues, 1u);  // defaults
  EXPECT_EQ(p0.tx_queues, 1u);
  EXPECT_EQ(p0.mtu, 1500u);
  EXPECT_FALSE(p0.mac.has_value());
  EXPECT_TRUE(p0.promiscuous);
  EXPECT_TRUE(p0.workers.empty());
  EXPECT_EQ(p0.rx_desc, 1024u);
  EXPECT_EQ(p0.tx_desc, 1024u);

  const Port& p1 = t.ports[1];
  EXPECT_EQ(p1.name, "eth1");
  EXPECT_EQ(p1.device, "net_af_packet0,iface=veth-a");
  EXPECT_FALSE(p1.is_pci);
  EXPECT_EQ(p1.rx_queues, 4u);
  EXPECT_EQ(p1.tx_queues, 2u);
  EXPECT_EQ(p1.mtu, 9000u);
  EXPECT_EQ(p1.mac, "02:ab:00:00:00:01");
  EXPECT_FALSE(p1.promiscuous);
  EXPECT_EQ(p1.workers, (std::vector<unsigned>{3, 2}));
  EXPECT_EQ(p1.rx_desc, 512u);
  EXPECT_EQ(p1.tx_desc, 2048u);

  ASSERT_EQ(t.vlans.size(), 2u);
  EXPECT_EQ(t.vlans[0].name, "eth1.100");
  EXPECT_EQ(t.vlans[0].link, "eth1");
  EXPECT_EQ(t.vlans[0].id, 100u);
  EXPECT_EQ(t.vlans[0].protocol, "802.1Q");
  EXPECT_EQ(t.vlans[0].mark.line, 21);
  EXPECT_EQ(t.vlans[0].mark.col, 12);
  EXPECT_EQ(t.vlans[1].protocol, "802.1ad");  // same id, other protocol: allowed

  EXPECT_EQ(t.control.socket, "/tmp/sluice.sock");
  EXPECT_FALSE(t.control.telemetry);
  EXPECT_EQ(t.control.metrics, "127.0.0.1:9469");
  EXPECT_EQ(t.logging.level, "debug");
  EXPECT_EQ(t.logging.file, "/tmp/sluice.log");
}

TEST(ConfigLoader, Defaults) {
  Topology t = load_string(kMinimal);
  EXPECT_EQ(t.file, "<string>");
  Eal eal;
  EXPECT_EQ(t.eal.lcores, eal.lcores);
  EXPECT_EQ(t.eal.memory_mb, eal.memory_mb);
  EXPECT_EQ(t.eal.hugepages, eal.hugepages);
  EXPECT_EQ(t.eal.file_prefix, eal.file_prefix);
  EXPECT_TRUE(t.eal.args.empty());
  EXPECT_EQ(t.control.socket, Control{}.socket);
  EXPECT_TRUE(t.control.telemetry);
  EXPECT_EQ(t.control.metrics, "");
  EXPECT_EQ(t.logging.level, "info");
  EXPECT_EQ(t.logging.file, "");
  EXPECT_TRUE(t.vlans.empty());
}

TEST(ConfigLoader, EmptySectionsMeanDefaults) {
  Topology t = load_string(std::string("eal:\ncontrol:\nlogging:\nvlans:\n") + kMinimal);
  EXPECT_EQ(t.eal.lcores, "0-1");
  EXPECT_TRUE(t.vlans.empty());
  ASSERT_EQ(t.ports.size(), 1u);
}

TEST(ConfigLoader, DeviceKinds) {
  struct Case {
    const char* device;
    bool pci;
  };
  for (Case c : {Case{"0000:03:00.0", true}, Case{"03:00.0", true}, Case{"0000:AF:1f.7", true},
                 Case{"net_pcap0,rx_pcap=/tmp/in.pcap", false}, Case{"net_ring0", false},
                 Case{"eth_pcap1", false}, Case{"virtio_user0,path=/dev/vhost-net", false}}) {
    Topology t = load_string(std::string("ports:\n  - {name: p, device: \"") + c.device + "\"}\n");
    EXPECT_EQ(t.ports[0].is_pci, c.pci) << c.device;
  }
  EXPECT_EQ(load_string("ports:\n  - {name: p, device: \"0000:AF:1f.7\"}\n").ports[0].device,
            "0000:af:1f.7");
}

TEST(ConfigLoader, BadDevices) {
  for (const char* d : {"eth0", "af_packet0", "net_", "eth_", "virtio_user", "net pcap0",
                        "0000:03:00.8", "03:20.0", "3:00.0", "0000:03:00", ",net_null0"}) {
    std::string e = error_of(std::string("ports:\n  - {name: p, device: \"") + d + "\"}\n");
    EXPECT_NE(e.find("t.yaml:2:23: port 'p': device '"), std::string::npos) << d << ": " << e;
  }
}

TEST(ConfigLoader, DeviceNames) {
  for (const char* n : {"e", "eth0.100", "br-lan_1", "123456789012345"}) {
    std::string y = std::string("ports:\n  - {name: \"") + n + "\", device: net_null0}\n";
    EXPECT_EQ(error_of(y), "") << n;
  }
  for (const char* n :
       {"", "1234567890123456", "eth0/1", "eth 0", "all", "ANY", ".", "..", "eth0:1"}) {
    std::string y = std::string("ports:\n  - {name: \"") + n + "\", device: net_null0}\n";
    EXPECT_NE(error_of(y).find("t.yaml:2:12: port #1: invalid name"), std::string::npos) << n;
  }
}

TEST(ConfigLoader, VlanOnVlanDefinedLater) {
  Topology t = load_string(std::string(kMinimal) +
                           "vlans:\n"
                           "  - {name: inner, link: outer, id: 20}\n"
                           "  - {name: outer, link: eth0, id: 10, protocol: 802.1ad}\n");
  ASSERT_EQ(t.vlans.size(), 2u);
  EXPECT_EQ(t.vlans[0].link, "outer");
}

TEST(ConfigLoader, ErrorFormatAndPositions) {
  EXPECT_EQ(error_of("prots:\n  - name: eth0\n"),
            "t.yaml:1:1: unknown key 'prots' (expected one of: eal, ports, vlans, bonds, bridges, "
            "control, logging, addresses, routes, neighbours, punt, hooks, plugins, mirrors)");
  EXPECT_EQ(error_of("ports:\n  - name: eth1\n    device: net_null0\n    rx_queues: many\n"),
            "t.yaml:4:16: port 'eth1': rx_queues must be an integer 1..64, got 'many'");
  EXPECT_EQ(error_of(std::string(kMinimal) + "  - name: eth0\n    device: net_null1\n"),
            "t.yaml:4:11: duplicate device name 'eth0' (first defined at 2:11)");
  // An empty value points at its key.
  EXPECT_EQ(error_of(std::string(kMinimal) + "    mtu:\n"),
            "t.yaml:4:5: port 'eth0': mtu must be an integer 68..9600, got nothing");
  EXPECT_EQ(error_of(""), "t.yaml:1:1: no ports defined (the file is empty)");
  EXPECT_EQ(error_of("# nothing\n"), "t.yaml:1:1: no ports defined (the file is empty)");
  EXPECT_EQ(error_of("eal: {}\nports: []\n"), "t.yaml:2:1: no ports defined");
  EXPECT_EQ(error_of("- a\n- b\n"),
            "t.yaml:1:1: the file must be a map of sections (eal, ports, vlans, control, "
            "logging), got a list");
  EXPECT_EQ(error_of("ports:\n  - name: eth0\n   device: x\n"),
            "t.yaml:3:4: YAML syntax error: end of sequence not found");
  // yaml-cpp 0.7's LoadAll never returns on these (jbeder/yaml-cpp#1040).
  EXPECT_EQ(error_of(","), "t.yaml:1:1: YAML syntax error: unexpected ','");
  EXPECT_EQ(error_of(std::string(",eal: {}\n") + kMinimal),
            "t.yaml:1:1: YAML syntax error: unexpected ','");
  EXPECT_EQ(error_of(std::string(kMinimal) + "---\nlogging: {}\n"),
            "t.yaml:4:1: only one YAML document is allowed (found '---' starting another)");
  EXPECT_EQ(error_of(std::string(kMinimal) + "ports: []\n"),
            "t.yaml:4:1: duplicate section 'ports' (first at 1:1)");
}

TEST(ConfigLoader, UnknownKeysEverywhere) {
  EXPECT_NE(error_of(std::string("eal: {lcore: \"0-1\"}\n") + kMinimal)
                .find("t.yaml:1:7: eal: unknown key 'lcore' (expected one of: lcores, memory_mb, "
                      "hugepages, file_prefix, args)"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "    speed: 10G\n")
                .find("t.yaml:4:5: port 'eth0': unknown key 'speed' (expected one of: name, "
                      "device, rx_queues, tx_queues, mtu, mac, promiscuous, workers, rx_desc, "
                      "tx_desc)"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "vlans:\n  - {name: v, link: eth0, id: 1, pcp: 3}\n")
                .find("t.yaml:5:34: vlan 'v': unknown key 'pcp'"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "control: {sock: /x}\n")
                .find("t.yaml:4:11: control: unknown key 'sock'"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "logging: {lvl: info}\n")
                .find("t.yaml:4:11: logging: unknown key 'lvl'"),
            std::string::npos);
}

TEST(ConfigLoader, Ranges) {
  struct Case {
    const char* line;  // appended to the port
    bool ok;
  };
  for (Case c : {Case{"mtu: 68", true},
                 Case{"mtu: 9600", true},
                 Case{"mtu: 67", false},
                 Case{"mtu: 0", false},
                 Case{"mtu: -1", false},
                 Case{"mtu: 9601", false},
                 Case{"mtu: 1500.0", false},
                 Case{"rx_queues: 32", true},  // 64 x 1024 descriptors: more mbufs than memory_mb 512 holds
                 Case{"rx_queues: 0", false},
                 Case{"tx_queues: 65", false},
                 Case{"rx_desc: 32768", true},
                 Case{"tx_desc: 65536", false},
                 Case{"promiscuous: yes", true},
                 Case{"promiscuous: 1", false},
                 Case{"mac: \"02:00:00:00:00:01\"", true},
                 Case{"mac: 02-00-00-00-00-01", false},
                 Case{"mac: \"01:00:00:00:00:01\"", false},
                 Case{"mac: \"00:00:00:00:00:00\"", false},
                 Case{"mac: \"02:00:00:00:00:0g\"", false},
                 Case{"workers: []", true},
                 Case{"workers: [1]", true},
                 Case{"workers: 1", false},
                 Case{"workers: [1, 1]", false},
                 Case{"workers: [x]", false}}) {
    std::string e = error_of(std::string(kMinimal) + "    " + c.line + "\n");
    if (c.ok)
      EXPECT_EQ(e, "") << c.line;
    else
      EXPECT_NE(e.find("t.yaml:4:"), std::string::npos) << c.line << ": " << e;
  }
}

TEST(ConfigLoader, Vlans) {
  auto vlan = [](const std::string& v) {
    return error_of(std::string(kMinimal) + "vlans:\n  - " + v + "\n");
  };
  EXPECT_EQ(vlan("{name: v, link: eth0, id: 1}"), "");
  EXPECT_EQ(vlan("{name: v, link: eth0, id: 4094}"), "");
  EXPECT_EQ(vlan("{name: v, link: eth0, id: 0}"),
            "t.yaml:5:31: vlan 'v': id must be a VLAN id 1..4094, got '0'");
  EXPECT_NE(vlan("{name: v, link: eth0, id: 4095}").find("t.yaml:5:31:"), std::string::npos);
  EXPECT_EQ(vlan("{name: v, link: eth9, id: 1}"),
            "t.yaml:5:21: vlan 'v': link 'eth9' is not a port or vlan defined in this file");
  EXPECT_EQ(vlan("{name: v, link: v, id: 1}"), "t.yaml:5:21: vlan 'v': link is the vlan itself");
  EXPECT_EQ(vlan("{name: v, link: eth0, id: 1, protocol: qinq}"),
            "t.yaml:5:44: vlan 'v': protocol must be 802.1Q or 802.1ad, got 'qinq'");
  EXPECT_EQ(vlan("{name: eth0, link: eth0, id: 1}"),
            "t.yaml:5:12: duplicate device name 'eth0' (first defined at 2:11)");
  auto vlans = [](const std::string& v) {
    return error_of(std::string(kMinimal) + "vlans:\n" + v);
  };
  EXPECT_EQ(vlans("  - {name: a, link: b, id: 1}\n"
                  "  - {name: b, link: c, id: 1}\n"),
            "t.yaml:6:21: vlan 'b': link 'c' is not a port or vlan defined in this file");
  EXPECT_EQ(vlans("  - {name: v, link: a, id: 1}\n"
                  "  - {name: a, link: b, id: 1}\n"
                  "  - {name: b, link: a, id: 2}\n"),
            "t.yaml:6:21: vlan 'a': link loop a -> b -> a");
  EXPECT_EQ(vlans("  - {name: a, link: eth0, id: 1}\n"
                  "  - {name: b, link: a, id: 1}\n"
                  "  - {name: c, link: eth0, id: 1, protocol: 802.1ad}\n"
                  "  - {name: d, link: a, id: 1}\n"),
            "t.yaml:8:28: vlan 'd': 802.1Q id 1 on 'a' is already used by vlan 'b' (at 6:12)");
  EXPECT_EQ(vlan("{link: eth0, id: 1}"), "t.yaml:5:5: vlan #1: missing required key 'name'");
  EXPECT_EQ(vlan("{name: v, id: 1}"), "t.yaml:5:5: vlan 'v': missing required key 'link'");
  EXPECT_EQ(error_of(std::string(kMinimal) + "vlans: {name: v}\n"),
            "t.yaml:4:8: vlans must be a list of vlans (one '- {name: ..., link: ..., id: ...}' "
            "entry per vlan), got a map");
}

TEST(ConfigLoader, WorkerLcores) {
  auto with = [](const std::string& lcores, const std::string& workers) {
    return error_of("eal: {lcores: \"" + lcores + "\"}\n" + kMinimal + "    workers: " + workers +
                    "\n");
  };
  EXPECT_EQ(with("0-2", "[1, 2]"), "");
  EXPECT_EQ(with("0,2-3", "[3]"), "");
  EXPECT_EQ(with("0-1", "[0]"),
            "t.yaml:5:15: port 'eth0': workers: lcore 0 is the main (control) lcore, not a worker "
            "(eal.lcores \"0-1\" has workers: 1)");
  EXPECT_EQ(with("0,2-3", "[2, 1]"),
            "t.yaml:5:18: port 'eth0': workers: lcore 1 is not a worker lcore (eal.lcores "
            "\"0,2-3\" has workers: 2, 3)");
  EXPECT_EQ(with("0", "[1]"),
            "t.yaml:5:15: port 'eth0': workers: lcore 1 is not a worker lcore (eal.lcores \"0\" "
            "has no worker lcores)");
  // Mapped lcores: the workers are all but the first lcore id, wherever they run.
  EXPECT_EQ(with("0@0,1@0,2@1", "[1, 2]"), "");
  EXPECT_EQ(with("(0-1)@0,2@1", "[2]"), "");
  EXPECT_EQ(with("0@0,1@0,2@1", "[0]"),
            "t.yaml:5:15: port 'eth0': workers: lcore 0 is the main (control) lcore, not a worker "
            "(eal.lcores \"0@0,1@0,2@1\" has workers: 1, 2)");
  EXPECT_EQ(error_of(std::string("eal: {lcores: \"0@0,1@x\"}\n") + kMinimal),
            "t.yaml:1:15: eal: lcores must be lcore ids like \"0-1\" or \"0,2-3\", optionally "
            "mapped to CPUs like \"0@0,1@0,2@1\" or \"(0-1)@0,2@1\" (the first is the main "
            "lcore), got '0@0,1@x': expected a CPU id at 'x'");
  // No worker lcores at all is the daemon's business, not the parser's.
  EXPECT_EQ(error_of(std::string("eal: {lcores: \"0\"}\n") + kMinimal), "");
  EXPECT_NE(error_of(std::string("eal: {lcores: \"0-\"}\n") + kMinimal)
                .find("t.yaml:1:15: eal: lcores must be lcore ids like"),
            std::string::npos);
  EXPECT_NE(error_of(std::string("eal: {lcores: [0, 1]}\n") + kMinimal)
                .find("t.yaml:1:15: eal: lcores must be a string, got a list"),
            std::string::npos);
}

TEST(ConfigLoader, OtherSettings) {
  auto with = [](const std::string& tail) { return error_of(std::string(kMinimal) + tail); };
  EXPECT_EQ(with("logging: {level: warn}\n"), "");
  EXPECT_NE(with("logging: {level: warning}\n").find("t.yaml:4:18: logging: level must be one of"),
            std::string::npos);
  EXPECT_EQ(with("control: {metrics: \"\"}\n"), "");
  EXPECT_EQ(with("control: {metrics: \"[::1]:9469\"}\n"), "");
  for (const char* m : {"9469", ":9469", "host:", "host:0", "host:65536", "::1:9469", "[]:1"})
    EXPECT_NE(with(std::string("control: {metrics: \"") + m + "\"}\n")
                  .find("t.yaml:4:20: control: metrics must be"),
              std::string::npos)
        << m;
  EXPECT_NE(with("control: {socket: \"\"}\n").find("t.yaml:4:19: control: socket must be"),
            std::string::npos);
  EXPECT_NE(with("control: {telemetry: maybe}\n").find("t.yaml:4:22: control: telemetry must be"),
            std::string::npos);
  EXPECT_NE(with("eal: {file_prefix: a/b}\n").find("t.yaml:4:20: eal: file_prefix must be"),
            std::string::npos);
  EXPECT_NE(with("eal: {memory_mb: 0}\n").find("t.yaml:4:18: eal: memory_mb must be"),
            std::string::npos);
  EXPECT_NE(
      with("eal: {args: [a, [b]]}\n").find("t.yaml:4:17: eal: args must be a list of strings"),
      std::string::npos);
  EXPECT_NE(with("eal: [lcores]\n").find("t.yaml:4:6: eal must be a map of settings, got a list"),
            std::string::npos);
  EXPECT_NE(with("---\nlogging: {}\n").find("only one YAML document is allowed"),
            std::string::npos);
}

TEST(ConfigLoader, LoadFile) {
  auto dir = std::filesystem::temp_directory_path() / ("sluice-config-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  auto good = (dir / "good.yaml").string();
  std::ofstream(good) << kMinimal;
  Topology t = load_file(good);
  EXPECT_EQ(t.file, good);
  ASSERT_EQ(t.ports.size(), 1u);

  auto bad = (dir / "bad.yaml").string();
  std::ofstream(bad) << kMinimal << "    mtu: 10000\n";
  try {
    load_file(bad);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(bad + ":4:10: port 'eth0': mtu", 0), 0u) << e.what();
  }

  auto missing = (dir / "missing.yaml").string();
  try {
    load_file(missing);
    ADD_FAILURE() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), missing + ": cannot open: No such file or directory");
  }
  std::filesystem::remove_all(dir);
}

// The files of the config suite, through the loader directly: each names its
// position and message on its first line, "# expect: LINE:COL: text".
TEST(ConfigBadFiles, EachGivesItsMessage) {
  auto dir = std::filesystem::path(SLUICE_SOURCE_DIR) / "tests" / "config" / "bad";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " not found";
  int n = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    n++;
    std::string path = entry.path().string();
    std::ifstream in(path);
    std::string first;
    std::getline(in, first);
    const std::string tag = "# expect: ";
    ASSERT_EQ(first.rfind(tag, 0), 0u) << path;
    std::string expect = first.substr(tag.size());
    size_t c1 = expect.find(':'), c2 = expect.find(':', c1 + 1);
    ASSERT_NE(c2, std::string::npos) << path;
    std::string where = path + ":" + expect.substr(0, c2 + 1);
    std::string text = expect.substr(c2 + 2);
    try {
      load_file(path);
      ADD_FAILURE() << path << ": loaded without error";
    } catch (const ConfigError& e) {
      std::string what = e.what();
      EXPECT_EQ(what.rfind(where, 0), 0u) << path << ": " << what;
      EXPECT_NE(what.find(text), std::string::npos) << path << ": " << what;
    }
  }
  EXPECT_GE(n, 15);
}

}  // namespace
}  // namespace sluice::config
