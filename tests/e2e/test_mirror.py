#!/usr/bin/python3
"""End-to-end: mirrors (tc mirred) and filtered captures with kernel peers.

Host A (10.0.1.2) behind p1, host B (10.0.2.2) behind p2, sluiced routing
between them; an analyzer namespace M behind p3 runs tcpdump. Frames are
made by scapy (full checksums): the kernel peers keep their default veth
offloads, and until sluice completes partial checksums on af_packet ports a
kernel TCP stream would arrive with bad checksums; crafted TCP segments are
matched by `tcp port 9091` just the same."""
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import SLUICED, Lab, Runner, sh  # noqa: E402

P1_MAC = "02:00:00:00:21:01"
P2_MAC = "02:00:00:00:21:02"
P3_MAC = "02:00:00:00:21:03"
A_MAC = "02:00:00:00:2a:01"
B_MAC = "02:00:00:00:2b:01"
M_MAC = "02:00:00:00:2c:01"


def lab3(lab, mirrors, extra="", m_addr=None):
    """A and B routed through sluiced, M on p3; `mirrors` is the mirrors:
    section. Returns (A, B, M)."""
    a, if_a = lab.host("a", addr="10.0.1.2/24", mac=A_MAC)
    b, if_b = lab.host("b", addr="10.0.2.2/24", mac=B_MAC)
    m, if_m = lab.host("m", addr=m_addr, mac=M_MAC)
    lab.ns_exec(a, "ip route add default via 10.0.1.1")
    lab.ns_exec(b, "ip route add default via 10.0.2.1")
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
  - {name: p3, device: "net_af_packet2,iface=%s", mac: "%s"}
addresses:
  - {dev: p1, address: 10.0.1.1/24}
  - {dev: p2, address: 10.0.2.1/24}
%s
mirrors:
%s""" % (if_a, P1_MAC, if_b, P2_MAC, if_m, P3_MAC, extra, mirrors))
    lab.start(cfg)
    # Resolve B once so that nothing of the test waits in a neighbour queue.
    lab.ns_exec(a, "ping -c 1 -W 2 10.0.2.2")
    return a, b, m


class Tcpdump:
    """tcpdump -w on iface in a namespace, stopped with SIGINT (it flushes)."""

    def __init__(self, lab, ns, path, expr="", direction=None, iface="eth0"):
        self.path = path
        q = "-Q %s" % direction if direction else ""
        cmd = "ip netns exec %s tcpdump -i %s --immediate-mode -U -n -s 0 %s -w %s %s" % (
            ns, iface, q, path, expr)
        self.proc = subprocess.Popen(cmd, shell=True, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True)
        deadline = time.time() + 10
        line = ""
        while time.time() < deadline:
            line = self.proc.stderr.readline()
            if "listening on" in line:
                return
            if self.proc.poll() is not None:
                break
        raise RuntimeError("tcpdump did not start: %s" % line)

    def stop(self):
        if self.proc is None:
            return
        time.sleep(0.3)
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


def frames(path):
    """The frames of a pcap file, as bytes (scapy, read in a child)."""
    r = sh("%s -c 'from scapy.all import rdpcap; import sys\n"
           "for p in rdpcap(sys.argv[1]): print(bytes(p).hex())' %s" % ("/usr/bin/python3", path))
    return [bytes.fromhex(l) for l in r.stdout.split()]


SEND_TCP = """
f = []
for i in range(5):
    f.append(Ether(dst="%(p1)s", src="%(a)s")/IP(src="10.0.1.2", dst="10.0.2.2", flags="DF")/
             TCP(sport=40000+i, dport=9091, flags="S")/Raw(b"m%%d" %% i))
for i in range(3):
    f.append(Ether(dst="%(p1)s", src="%(a)s")/IP(src="10.0.1.2", dst="10.0.2.2")/
             TCP(sport=41000+i, dport=80, flags="S"))
for i in range(2):
    f.append(Ether(dst="%(p1)s", src="%(a)s")/IP(src="10.0.1.2", dst="10.0.2.2")/
             UDP(sport=42000+i, dport=9091)/Raw(b"u"))
sendp(f, iface="eth0", inter=0.01)
""" % {"p1": P1_MAC, "a": A_MAC}


def test_egress_mirror_tcp_9091_byte_for_byte():
    lab = Lab("mrmi")
    dumps = []
    try:
        a, b, m = lab3(lab, """  - name: m0
    source: {dev: p2, direction: egress}
    filter: "tcp port 9091"
    to: {dev: p3}
""")
        at_b = Tcpdump(lab, b, os.path.join(lab.tmp, "b.pcap"), "tcp dst port 9091", "in")
        at_m = Tcpdump(lab, m, os.path.join(lab.tmp, "m.pcap"))
        dumps += [at_b, at_m]
        lab.scapy(a, SEND_TCP)
        lab.wait_until(lambda: lab.ctl("show", "mirrors")["m0"]["copies"] >= 5, what="5 copies")
        for d in dumps:
            d.stop()
        seen_b = frames(at_b.path)
        seen_m = frames(at_m.path)
        assert len(seen_b) == 5, len(seen_b)
        # Exactly the matching frames, byte for byte as B received them.
        assert seen_m == seen_b, (len(seen_m), [f.hex() for f in seen_m][:2], [f.hex() for f in seen_b][:2])
        st = lab.ctl("show", "mirrors")["m0"]
        assert st["hits"] == 5 and st["copies"] == 5 and st["copies_failed"] == 0, st
        assert st["source"] == "p2" and st["direction"] == "egress" and st["action"] == "mirror", st
        assert st["bytes"] == sum(len(f) for f in seen_b), st
        # B got everything that was routed (the mirror leaves the originals alone).
        ps = lab.ctl("show", "port", "stats", "p3")
        assert ps["p3"]["tx_packets"] == 5, ps
        text = lab.ctl_raw("show", "mirrors").stdout
        assert "m0" in text and "tcp port 9091" in text, text
        assert lab.stop() == 0
    finally:
        for d in dumps:
            d.stop()
        lab.close()


SEND_UDP = """
f = []
for i in range(4):
    f.append(Ether(dst="%(p1)s", src="%(a)s")/IP(src="10.0.1.2", dst="10.0.2.2")/
             UDP(sport=43000+i, dport=7777)/Raw(b"r%%d" %% i))
for i in range(3):
    f.append(Ether(dst="%(p1)s", src="%(a)s")/IP(src="10.0.1.2", dst="10.0.2.2")/
             UDP(sport=44000+i, dport=7778)/Raw(b"k%%d" %% i))
sendp(f, iface="eth0", inter=0.01)
wrpcap("%(out)s", f)
"""


def test_ingress_redirect_moves_frames_and_filtered_capture():
    lab = Lab("mrrd")
    dumps = []
    try:
        a, b, m = lab3(lab, """  - name: r0
    source: {dev: p1, direction: ingress}
    filter: "udp port 7777"
    action: redirect
    to: {dev: p3, at: egress}
""")
        cap = os.path.join(lab.tmp, "p1.pcapng")
        lab.ctl("capture", "start", "p1", "ingress", "udp", "and", "port", "7777", "file", cap,
                "snaplen", "256")
        at_b = Tcpdump(lab, b, os.path.join(lab.tmp, "b.pcap"), "udp", "in")
        at_m = Tcpdump(lab, m, os.path.join(lab.tmp, "m.pcap"))
        dumps += [at_b, at_m]
        sent = os.path.join(lab.tmp, "sent.pcap")
        lab.ctl("clear", "stats")
        t0 = time.time()
        lab.scapy(a, SEND_UDP % {"p1": P1_MAC, "a": A_MAC, "out": sent})
        lab.wait_until(lambda: lab.ctl("show", "mirrors")["r0"]["copies"] >= 4, what="4 redirected")
        lab.wait_until(lambda: lab.ctl("show", "port", "stats", "p2")["p2"]["tx_packets"] >= 3,
                       what="3 routed to B")
        for d in dumps:
            d.stop()
        t1 = time.time()
        seen_b = frames(at_b.path)
        seen_m = frames(at_m.path)
        orig = frames(sent)
        # The 7777 ones left p3 as they came in; B never saw them.
        assert seen_m == orig[:4], ([f.hex() for f in seen_m], [f.hex() for f in orig[:4]])
        assert len(seen_b) == 3, (len(seen_b), sh("tcpdump -n -r %s" % at_b.path, check=False).stdout,
                                  lab.ctl("show", "port", "stats", "all"), lab.ctl("show", "drops"))
        assert all(f[36:38] == b"\x1e\x62" for f in seen_b), [f.hex() for f in seen_b]  # port 7778
        st = lab.ctl("show", "mirrors")["r0"]
        assert st["action"] == "redirect" and st["hits"] == 4 and st["copies"] == 4, st
        # The capture's filter: 4 accepted, the rest of p1's ingress filtered.
        lab.ctl("capture", "stop")
        caps = lab.ctl("show", "captures")
        assert caps[0]["filter"] == "udp and port 7777", caps
        assert caps[0]["accepted"] == 4 and caps[0]["filtered"] >= 3, caps
        r = sh("tshark -r %s -T fields -e frame.interface_name -e udp.dstport -e frame.time_epoch" % cap)
        rows = [l.split("\t") for l in r.stdout.strip().splitlines()]
        assert len(rows) == 4, rows
        for name, port, ts in rows:
            assert name == "p1" and port == "7777", rows
            assert t0 - 1 <= float(ts) <= t1 + 1, (ts, t0, t1)  # within a second of the wall clock
        assert lab.stop() == 0
    finally:
        for d in dumps:
            d.stop()
        lab.close()


def test_nest_limit_stops_a_redirect_chain_and_forwarding_goes_on():
    lab = Lab("mrnl")
    dumps = []
    try:
        chain = ""
        hops = ["p1", "p1.11", "p1.12", "p1.13", "p1.14"]
        for i, src in enumerate(hops):
            to = "{dev: %s, at: ingress}" % hops[i + 1] if i + 1 < len(hops) else "{dev: p3}"
            chain += "  - {name: r%d, source: {dev: %s, direction: ingress}, %saction: redirect, to: %s}\n" % (
                i, src, 'filter: "udp port 5555", ' if i == 0 else "", to)
        vlans = "vlans:\n" + "".join("  - {name: p1.%d, link: p1, id: %d}\n" % (v, v) for v in range(11, 15))
        a, b, m = lab3(lab, chain, extra=vlans)
        at_m = Tcpdump(lab, m, os.path.join(lab.tmp, "m.pcap"))
        dumps.append(at_m)
        lab.scapy(a, """
sendp([Ether(dst="%s", src="%s")/IP(src="10.0.1.2", dst="10.0.2.2")/UDP(dport=5555)]*3, iface="eth0")
""" % (P1_MAC, A_MAC))
        lab.wait_until(lambda: lab.ctl("show", "drops").get("p1.14", {}).get("mirred_nest_limit", 0) >= 3,
                       what="3 nest-limit drops on p1.14")
        ms = lab.ctl("show", "mirrors")
        assert ms["r3"]["copies"] == 3 and ms["r4"]["drops"] == {"mirred_nest_limit": 3}, ms
        # Forwarding goes on.
        r = lab.ns_exec(a, "ping -c 3 -i 0.2 -W 2 10.0.2.2", check=False)
        assert r.returncode == 0, r.stdout
        at_m.stop()
        assert frames(at_m.path) == [], "the 5th hop must not send"
        assert lab.stop() == 0
    finally:
        for d in dumps:
            d.stop()
        lab.close()


def test_configured_loop_is_refused():
    lab = Lab("mrlp")
    try:
        cfg = lab.config("""ports:
  - {name: eth0, device: net_null0}
addresses:
  - {dev: eth0, address: 10.9.0.1/24}
mirrors:
  - name: m0
    source: {dev: eth0, direction: egress}
    filter: "tcp port 9091"
    to: {dev: lo}
  - name: onward
    source: {dev: lo, direction: ingress}
    to: {vxlan: {remote: 10.9.0.2, vni: 42}}
""")
        for args in ([SLUICED, "--check", "-c", cfg], [SLUICED, "-c", cfg, "--foreground"]):
            r = subprocess.run(args, capture_output=True, text=True, timeout=30)
            assert r.returncode == 2, (args, r.returncode, r.stderr)
            assert "mirror 'onward' closes a loop: lo ingress -(onward vxlan 10.9.0.2)-> eth0 egress " \
                   "-(m0)-> lo egress -> lo ingress" in r.stderr, r.stderr
            assert "topology.yaml:21:5:" in r.stderr, r.stderr
    finally:
        lab.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        sys.exit(1)
    r = Runner()
    for t in (test_egress_mirror_tcp_9091_byte_for_byte,
              test_ingress_redirect_moves_frames_and_filtered_capture,
              test_nest_limit_stops_a_redirect_chain_and_forwarding_goes_on,
              test_configured_loop_is_refused):
        r.run(t)
    r.finish()
