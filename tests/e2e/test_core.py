#!/usr/bin/python3
"""End-to-end: kernel hosts in namespaces send through veth pairs into
sluiced's net_af_packet ports; assert on sluiced's counters, drops, the
capture read back by tshark, the CLI's exit codes and a clean stop."""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lab import SLUICECTL, SLUICED, Lab, Runner, sh  # noqa: E402

P1_MAC = "02:00:00:00:01:01"
P2_MAC = "02:00:00:00:01:02"
H1_MAC = "02:00:00:00:0a:01"


METRICS = "127.0.0.1:%d" % (19000 + os.getpid() % 1000)


def two_hosts(lab):
    h1, if1 = lab.host("a", mac=H1_MAC)
    h2, if2 = lab.host("b")
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
vlans:
  - {name: p1.100, link: p1, id: 100}
""" % (if1, P1_MAC, if2, P2_MAC), metrics=METRICS)
    lab.start(cfg)
    return h1, h2


SEND = """
f = []
f += [Ether(dst="%(p1)s", src="%(h1)s")/IP(src="10.0.0.2", dst="10.0.0.1")/UDP(dport=9)/Raw(b"x"*20)] * 20
f += [Ether(dst="ff:ff:ff:ff:ff:ff", src="%(h1)s")/ARP(psrc="10.0.0.2", pdst="10.0.0.1")] * 5
f += [Ether(dst="%(p1)s", src="%(h1)s")/Dot1Q(vlan=100)/IP(dst="10.1.0.1")/UDP(dport=9)] * 5
sendp(f, iface="eth0")
""" % {"p1": P1_MAC, "h1": H1_MAC}


def test_receive_counts_and_drops():
    lab = Lab("rx")
    try:
        h1, _ = two_hosts(lab)
        lab.scapy(h1, SEND)
        st = lab.wait_until(lambda: (lambda s: s if s["p1"]["rx_packets"] >= 30 else None)(
            lab.ctl("show", "port", "stats", "all")), what="30 frames on p1")
        assert st["p1"]["rx_packets"] == 30, st["p1"]
        # veth carries frames unpadded: UDP 62 B, ARP 42 B, tagged UDP 46 B
        assert st["p1"]["rx_bytes"] == 20 * 62 + 5 * 42 + 5 * 46, st["p1"]
        # No protocol handler in the core alone: every frame is unhandled.
        assert st["p1"]["rx_dropped"] == 25, st["p1"]
        assert st["p1.100"]["rx_packets"] == 5, st["p1.100"]
        assert st["p1.100"]["rx_dropped"] == 5, st["p1.100"]
        assert st["p2"]["rx_packets"] == 0, st["p2"]
        for k in ("rx_packets", "rx_bytes", "rx_dropped", "rx_nohandler", "rx_otherhost_dropped",
                  "tx_packets", "tx_bytes", "tx_dropped"):
            assert isinstance(st["p1"][k], int), k
        drops = lab.ctl("show", "drops")
        assert drops["p1"]["unhandled_proto"] == 25, drops
        assert drops["p1.100"]["unhandled_proto"] == 5, drops
        one = lab.ctl("show", "port", "stats", "p1.100")
        assert list(one.keys()) == ["p1.100"], one
        devs = lab.ctl("show", "devices")
        assert devs["p1"]["kind"] == "port" and devs["p1"]["mac"] == P1_MAC, devs["p1"]
        assert devs["p1.100"]["kind"] == "vlan", devs["p1.100"]
        assert devs["p1"]["oper_up"] is True and devs["p1"]["master"] is None, devs["p1"]
        ports = lab.ctl("show", "ports")
        assert ports["p1"]["driver"] == "net_af_packet", ports["p1"]
        assert ports["p1"]["link_up"] is True, ports["p1"]
        import urllib.request
        body = urllib.request.urlopen("http://%s/metrics" % METRICS, timeout=5).read().decode()
        assert 'sluice_rx_dropped_total{dev="p1"} 25' in body, body[:2000]
        assert 'sluice_drops_total{dev="p1.100",reason="unhandled_proto"} 5' in body, body[:2000]
        # clear stats zeroes what show prints
        lab.ctl("clear", "stats")
        st = lab.ctl("show", "port", "stats", "all")
        assert st["p1"]["rx_packets"] == 0 and st["p1"]["rx_dropped"] == 0, st["p1"]
        rt = lab.ctl("show", "runtime")
        assert any(r["stage"] == "netif-receive" for r in rt), rt
        assert lab.stop() == 0
        log = lab.read_log()
        assert re.search(r"final p1: rx_packets 0", log), log[-2000:]
        assert re.search(r"mbuf pool \S+: all \d+ mbufs back", log), log[-2000:]
    finally:
        lab.close()


def test_capture_reads_back_with_tshark():
    lab = Lab("cap")
    try:
        h1, h2 = two_hosts(lab)
        path = os.path.join(lab.tmp, "p1.pcapng")
        lab.ctl("capture", "start", "p1", "both", "file", path)
        lab.scapy(h1, SEND)
        lab.wait_until(lambda: lab.ctl("show", "captures")[0]["accepted"] >= 30, what="30 captured")
        caps = lab.ctl("show", "captures")
        assert caps[0]["dev"] == "p1" and caps[0]["direction"] == "both", caps
        assert caps[0]["ringfull"] == 0 and caps[0]["nombuf"] == 0, caps
        # C-2: a tap on the last round's device makes the frame "delivered".
        st = lab.ctl("show", "port", "stats", "all")
        assert st["p1"]["rx_dropped"] == 0, st["p1"]
        assert st["p1.100"]["rx_dropped"] == 5, st["p1.100"]  # its round had no tap
        lab.ctl("capture", "stop")
        r = sh("tshark -r %s -T fields -e frame.interface_name -e eth.type -e vlan.id" % path)
        rows = [l.split("\t") for l in r.stdout.strip().splitlines()]
        assert len(rows) == 30, rows
        assert all(row[0] == "p1" for row in rows), rows
        vlan_rows = [row for row in rows if len(row) > 2 and row[2] == "100"]
        assert len(vlan_rows) == 5, rows  # the tag held as metadata is written back
        r = sh("tshark -r %s -T fields -e frame.time_epoch" % path)
        import time
        for t in r.stdout.split():
            assert abs(float(t) - time.time()) < 120, t  # not the 22.11 year-2251 bug
        # count N stops by itself
        path2 = os.path.join(lab.tmp, "any.pcapng")
        lab.ctl("capture", "start", "any", "ingress", "file", path2, "count", "7")
        lab.scapy(h1, SEND)
        lab.scapy(h2, 'sendp([Ether(dst="ff:ff:ff:ff:ff:ff")/ARP()]*3, iface="eth0")')
        lab.wait_until(lambda: any(c["file"] == path2 and not c["running"] for c in lab.ctl("show", "captures")),
                       what="count-limited capture to finish")
        r = sh("tshark -r %s -T fields -e frame.interface_name" % path2)
        assert len(r.stdout.split()) == 7, r.stdout
    finally:
        lab.close()


def test_cli_exit_codes_and_admin_state():
    lab = Lab("cli")
    try:
        h1, _ = two_hosts(lab)
        r = lab.ctl_raw("no", "such", "command")
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        r = lab.ctl_raw("show", "port", "stats", "nosuchdev")
        assert r.returncode == 1 and "nosuchdev" in r.stderr, (r.returncode, r.stderr)
        r = subprocess.run([SLUICECTL, "-s", os.path.join(lab.tmp, "nope.sock"), "version"],
                           capture_output=True, text=True)
        assert r.returncode == 2, r
        r = lab.ctl_raw("show", "port", "stats")
        assert r.returncode == 0 and "p1" in r.stdout, r
        v = lab.ctl("version")
        assert v["version"] and v["dpdk"].startswith("DPDK"), v
        # set link down: frames on the port are discarded, counted as link_down
        lab.ctl("set", "link", "p1", "down")
        assert lab.ctl("show", "devices")["p1"]["admin_up"] is False
        lab.scapy(h1, SEND)
        lab.wait_until(lambda: lab.ctl("show", "drops").get("p1", {}).get("link_down", 0) >= 30,
                       what="link_down drops")
        assert lab.ctl("show", "port", "stats", "p1")["p1"]["rx_packets"] == 0
        lab.ctl("set", "link", "p1", "up")
        lab.scapy(h1, SEND)
        lab.wait_until(lambda: lab.ctl("show", "port", "stats", "p1")["p1"]["rx_packets"] == 30,
                       what="frames after link up")
        sock_mode = os.stat(lab.sock).st_mode & 0o777
        assert sock_mode == 0o660, oct(sock_mode)
    finally:
        lab.close()


def test_check_bad_config_and_daemon_mode():
    lab = Lab("chk")
    try:
        _, if1 = lab.host("a")
        good = lab.config('ports:\n  - {name: p1, device: "net_af_packet0,iface=%s"}\n' % if1)
        r = subprocess.run([SLUICED, "--check", "-c", good], capture_output=True, text=True)
        assert r.returncode == 0, r
        bad = os.path.join(lab.tmp, "bad.yaml")
        with open(bad, "w") as f:
            f.write(open(good).read().replace("ports:", "prots:"))
        r = subprocess.run([SLUICED, "-c", bad, "--foreground"], capture_output=True, text=True, timeout=20)
        assert r.returncode == 2, r
        assert re.search(re.escape(bad) + r":\d+:\d+: .*prots", r.stderr), r.stderr
        assert not os.path.exists(lab.sock)
        # Without --foreground sluiced returns once it serves.
        r = subprocess.run([SLUICED, "-c", good], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r
        assert lab.ctl("show", "devices")["p1"]["kind"] == "port"
        pid = int(sh("pgrep -f -- '%s -c %s$'" % (SLUICED, good)).stdout.split()[0])
        os.kill(pid, 15)
        lab.wait_until(lambda: not os.path.exists("/proc/%d" % pid) or
                       open("/proc/%d/stat" % pid).read().split()[2] == "Z", what="daemon exit")
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_receive_counts_and_drops, test_capture_reads_back_with_tshark,
              test_cli_exit_codes_and_admin_state, test_check_bad_config_and_daemon_mode):
        r.run(t)
    r.finish()
