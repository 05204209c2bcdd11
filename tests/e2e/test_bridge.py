#!/usr/bin/python3
"""End-to-end: sluice's bridge with kernel peers. Three hosts in network
namespaces, each joined by a veth pair whose root side sluiced opens with
net_af_packet, all three ports on the sluice bridge br0. Asserts on what the
hosts receive (ping, iperf3, scapy sniffers) and on sluiced's FDB, counters
and drops (spec §4, BR-01/03/08)."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import PY, Lab, Runner, sh  # noqa: E402

HOSTS = {  # short name → (address, MAC)
    "a": ("10.0.0.1/24", "02:00:00:00:0a:01"),
    "b": ("10.0.0.2/24", "02:00:00:00:0a:02"),
    "c": ("10.0.0.3/24", "02:00:00:00:0a:03"),
}
PORT_MAC = {"p1": "02:00:00:00:01:01", "p2": "02:00:00:00:01:02", "p3": "02:00:00:00:01:03"}


def three_hosts(lab, bridge_extra=""):
    ns = {}
    ifs = {}
    for short, (addr, mac) in HOSTS.items():
        # hosts as they come: veth TX checksum offload, TSO and GSO on
        ns[short], ifs[short] = lab.host(short, addr=addr, mac=mac)
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
  - {name: p3, device: "net_af_packet2,iface=%s", mac: "%s"}
bridges:
  - name: br0
    ports: [p1, p2, p3]
%s""" % (ifs["a"], PORT_MAC["p1"], ifs["b"], PORT_MAC["p2"], ifs["c"], PORT_MAC["p3"], bridge_extra))
    lab.start(cfg)
    return ns


def ip(short):
    return HOSTS[short][0].split("/")[0]


def fdb_map(lab):
    return {(e["mac"], e["vlan"]): e for e in lab.ctl("show", "fdb", "br0")}


class Sniffer:
    """scapy sniffer in a namespace: counts frames matching a BPF filter."""

    def __init__(self, lab, ns, bpf, seconds=4):
        self.path = os.path.join(lab.tmp, "sniff_%s_%d.py" % (ns, int(time.time() * 1e6)))
        with open(self.path, "w") as f:
            f.write("from scapy.all import *\nconf.verb = 0\n"
                    "p = sniff(iface='eth0', filter=%r, timeout=%d)\nprint(len(p))\n" % (bpf, seconds))
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, PY, self.path],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def count(self):
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, err
        return int(out.strip().splitlines()[-1])


def start_sniffers(lab, nss, bpf, seconds=4):
    s = [Sniffer(lab, n, bpf, seconds) for n in nss]
    time.sleep(1.5)  # scapy needs a moment to open its socket
    return s


def test_ping_all_pairs_fdb_and_counters():
    lab = Lab("brp")
    try:
        ns = three_hosts(lab)
        cap = os.path.join(lab.tmp, "br0.pcapng")  # the bridge is a device: it can be captured on
        lab.ctl("capture", "start", "br0", "ingress", "file", cap)
        for a in HOSTS:
            for b in HOSTS:
                if a != b:
                    lab.ns_exec(ns[a], "ping -c 2 -i 0.2 -W 2 %s" % ip(b), timeout=20)
        lab.ctl("capture", "stop")
        rows = sh("tshark -r %s -T fields -e frame.interface_name -e eth.dst -e arp.opcode" % cap
                  ).stdout.split("\n")
        rows = [r.split("\t") for r in rows if r.strip()]
        # br0 receives (local delivery) the ARP broadcasts, never the bridged unicast pings.
        assert rows and all(r[0] == "br0" and r[1] == "ff:ff:ff:ff:ff:ff" and r[2] == "1"
                            for r in rows), rows
        fdb = lab.wait_until(lambda: (lambda f: f if all((HOSTS[h][1], 0) in f for h in HOSTS) else None)(
            fdb_map(lab)), what="every host learned")
        for h, port in (("a", "p1"), ("b", "p2"), ("c", "p3")):
            e = fdb[(HOSTS[h][1], 0)]
            assert e["port"] == port and e["static"] is False, e
            assert isinstance(e["age_s"], int) and e["age_s"] < 30, e
        for port, mac in PORT_MAC.items():  # local entries of the ports
            assert fdb[(mac, 0)]["port"] == port and fdb[(mac, 0)]["static"] is True, fdb[(mac, 0)]
        br = lab.ctl("show", "bridge", "br0")
        assert br["name"] == "br0" and br["mac"] == PORT_MAC["p1"], br  # lowest port MAC
        assert all(br["ports"][p]["state"] == "forwarding" for p in ("p1", "p2", "p3")), br
        assert br["counters"]["learned"] >= 3 and br["counters"]["forwarded"] > 0, br["counters"]
        devs = lab.ctl("show", "devices")
        assert devs["br0"]["kind"] == "bridge", devs["br0"]
        for p in ("p1", "p2", "p3"):
            assert devs[p]["master"] == "br0" and devs[p]["rx_handler"] == "bridge", devs[p]
        st = lab.ctl("show", "port", "stats", "all")
        # 6 ping pairs x 2 echo + 2 replies, plus ARP; every frame came in and went out somewhere.
        for p in ("p1", "p2", "p3"):
            assert st[p]["rx_packets"] >= 8 and st[p]["tx_packets"] >= 8, (p, st[p])
        assert st["br0"]["rx_packets"] >= 3, st["br0"]  # ARP broadcasts pass up to br0 as well
        drops = lab.ctl("show", "drops")
        for p in ("p1", "p2", "p3"):
            bad = {k: v for k, v in drops.get(p, {}).items() if k not in ("unhandled_proto",)}
            assert not bad, drops
        txt = lab.ctl_raw("show", "fdb", "br0")
        assert txt.returncode == 0 and HOSTS["a"][1] in txt.stdout, txt
        assert lab.stop() == 0
        assert "all" in lab.read_log() and "mbufs back" in lab.read_log()
    finally:
        lab.close()


def test_iperf3_tcp():
    """iperf3 both ways between hosts with their default offloads."""
    lab = Lab("bri")
    try:
        ns = three_hosts(lab)
        for rev in ("", " -R"):
            srv = subprocess.Popen(["ip", "netns", "exec", ns["b"], "iperf3", "-s", "-1", "-J"],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            r = lab.ns_exec(ns["a"], "iperf3 -c %s -t 3 -J%s" % (ip("b"), rev), timeout=30)
            srv.communicate(timeout=20)
            import json
            res = json.loads(r.stdout)
            bps = res["end"]["sum_received"]["bits_per_second"]
            print("  iperf3 TCP h1%sh2 through sluice br0: %.1f Mbit/s" % ("←" if rev else "→", bps / 1e6))
            assert bps > 5e6, bps
            assert res["end"]["sum_sent"]["bytes"] > 0
        fx = lab.ctl("show", "port", "rx-fixup")
        assert fx["p1"]["gso_frames"] > 0 and fx["p2"]["gso_frames"] > 0, fx
        bad = {d: r for d, r in lab.ctl("show", "drops").items() if "rx_truncated" in r or "rx_oversize" in r}
        assert not bad, bad
    finally:
        lab.close()


UDP_ECHO = r"""
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 5600)); s.settimeout(20)
print("ready", flush=True)
for _ in range(int(sys.argv[2])):
    d, peer = s.recvfrom(65536)
    s.sendto(d, peer)
"""


def udp_echo(lab, srv_ns, cli_ns, addr, sizes):
    """Datagrams of the given sizes from cli_ns to an echo in srv_ns and
    back; returns how many came back intact. The kernel drops a datagram
    whose checksum is wrong, so each one that returns was checksummed right
    on both legs."""
    path = os.path.join(lab.tmp, "udp_echo.py")
    with open(path, "w") as f:
        f.write(UDP_ECHO)
    srv = subprocess.Popen(["ip", "netns", "exec", srv_ns, PY, path, addr, str(len(sizes))],
                           stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        r = lab.ns_exec(cli_ns, PY + " -c \"import socket\n"
                        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(3); ok = 0\n"
                        "for n in %r:\n"
                        "    d = bytes((i * 13) & 255 for i in range(n)); s.sendto(d, ('%s', 5600))\n"
                        "    try: ok += s.recv(65536) == d\n"
                        "    except OSError: pass\n"
                        "print(ok)\"" % (sizes, addr), check=False, timeout=60)
        return int(r.stdout.strip() or 0)
    finally:
        srv.kill()
        srv.wait()


def test_tcp_and_udp_bridged_hosts_as_they_come():
    """Hosts with veth offloads on, as they come: their frames reach sluice
    with partial checksums and as 64 KB TSO frames; TCP of 10 B and 4 MB
    both ways and UDP datagrams arrive intact."""
    lab = Lab("brt")
    try:
        ns = three_hosts(lab)
        for src, dst in (("a", "b"), ("b", "a"), ("c", "a")):
            for n in (10, 4 << 20):
                got, same = lab.tcp_transfer(ns[src], ns[dst], ip(dst), n)
                assert got == n and same, (src, dst, n, got, same)
        assert udp_echo(lab, ns["b"], ns["a"], ip("b"), [10, 100, 1000, 1472, 0, 1]) == 6
        fx = lab.ctl("show", "port", "rx-fixup")
        for p in ("p1", "p2", "p3"):
            assert fx[p]["completed"] > 0 and fx[p]["gso_frames"] > 0, fx
            assert fx[p]["gso_segments"] > fx[p]["gso_frames"], fx
        drops = lab.ctl("show", "drops")
        bad = {d: r for d, r in drops.items() if "rx_truncated" in r or "rx_oversize" in r or "nomem" in r}
        assert not bad, drops
        assert lab.stop() == 0
    finally:
        lab.close()


def test_arp_broadcast_and_unknown_unicast_flood():
    lab = Lab("brf")
    try:
        ns = three_hosts(lab)
        h1 = HOSTS["a"][1]
        sn = start_sniffers(lab, [ns["b"], ns["c"]], "arp and ether src %s" % h1)
        lab.scapy(ns["a"], 'sendp([Ether(dst="ff:ff:ff:ff:ff:ff", src="%s")/ARP(psrc="10.0.0.1", '
                           'pdst="10.0.0.99")]*5, iface="eth0")' % h1)
        counts = [s.count() for s in sn]
        assert counts == [5, 5], counts
        unknown = "02:00:00:00:99:99"
        sn = start_sniffers(lab, [ns["b"], ns["c"]], "ether dst %s" % unknown)
        lab.scapy(ns["a"], 'sendp([Ether(dst="%s", src="%s")/IP(dst="10.0.0.99")/UDP(dport=9)]*7, '
                           'iface="eth0")' % (unknown, h1))
        counts = [s.count() for s in sn]
        assert counts == [7, 7], counts
        st = lab.ctl("show", "port", "stats", "all")
        assert st["br0"]["rx_packets"] >= 5, st["br0"]  # the broadcasts, not the unknown unicast
        # A known destination is not flooded: h3 sees nothing of h1 → h2 once h2 is learned.
        lab.scapy(ns["b"], 'sendp([Ether(dst="ff:ff:ff:ff:ff:ff", src="%s")/ARP()], iface="eth0")'
                  % HOSTS["b"][1])
        lab.wait_until(lambda: (HOSTS["b"][1], 0) in fdb_map(lab), what="h2 learned")
        sn = start_sniffers(lab, [ns["b"], ns["c"]], "udp port 7777")
        lab.scapy(ns["a"], 'sendp([Ether(dst="%s", src="%s")/IP(dst="10.0.0.2")/UDP(dport=7777)]*4, '
                           'iface="eth0")' % (HOSTS["b"][1], h1))
        counts = [s.count() for s in sn]
        assert counts == [4, 0], counts
    finally:
        lab.close()


def test_entries_age_out():
    lab = Lab("bra")
    try:
        ns = three_hosts(lab, "    ageing_s: 2\n")
        lab.ns_exec(ns["a"], "ping -c 1 -W 2 %s" % ip("b"), timeout=20)
        lab.wait_until(lambda: (HOSTS["a"][1], 0) in fdb_map(lab), what="h1 learned")
        t0 = time.time()
        lab.wait_until(lambda: (HOSTS["a"][1], 0) not in fdb_map(lab) and
                       (HOSTS["b"][1], 0) not in fdb_map(lab), timeout=10, what="entries aged out")
        assert time.time() - t0 < 5, time.time() - t0
        br = lab.ctl("show", "bridge", "br0")
        assert br["ageing_s"] == 2 and br["counters"]["aged"] >= 2, br["counters"]
        f = fdb_map(lab)
        assert all(e["static"] for e in f.values()), f  # only local entries left
        # static entries added by the CLI stay; fdb flush removes learned ones only
        lab.ctl("fdb", "add", "br0", "02:00:00:00:00:77", "p3")
        lab.ns_exec(ns["a"], "ping -c 1 -W 2 %s" % ip("c"), timeout=20)
        time.sleep(3)
        assert ("02:00:00:00:00:77", 0) in fdb_map(lab)
        lab.ns_exec(ns["a"], "ping -c 1 -W 2 %s" % ip("c"), timeout=20)
        lab.wait_until(lambda: (HOSTS["c"][1], 0) in fdb_map(lab), what="h3 learned")
        r = lab.ctl("fdb", "flush", "br0")
        assert r["flushed"] >= 1, r
        f = fdb_map(lab)
        assert ("02:00:00:00:00:77", 0) in f and (HOSTS["c"][1], 0) not in f, f
    finally:
        lab.close()


VSNIFF = """
from scapy.all import *
conf.verb = 0
out = []
def keep(p):
    if b"VLANTEST" in bytes(p):
        out.append("%s:%s" % (bytes(p)[bytes(p).find(b"VLANTEST") + 8:][:2].decode(),
                              p[Dot1Q].vlan if p.haslayer(Dot1Q) else "-"))
sniff(iface="eth0", prn=keep, store=False, timeout=SECS)
print(" ".join(out))
"""


def test_vlan_filtering():
    lab = Lab("brv")
    try:
        ns = three_hosts(lab, """    vlan_filtering: true
    port_settings:
      p1: {pvid: 10, vlans: [10], untagged: [10]}
      p2: {vlans: [10, 20]}
      p3: {pvid: 20, vlans: [20], untagged: [20]}
""")
        br = lab.ctl("show", "bridge", "br0")
        assert br["vlan_filtering"] is True
        assert br["ports"]["p1"]["pvid"] == 10 and br["ports"]["p1"]["untagged"] == [10], br["ports"]
        assert br["ports"]["p2"]["pvid"] is None and br["ports"]["p2"]["vlans"] == [10, 20], br["ports"]
        procs = []
        for h in ("a", "b", "c"):
            path = os.path.join(lab.tmp, "vsniff_%s.py" % h)
            with open(path, "w") as f:
                f.write(VSNIFF.replace("SECS", "12"))
            procs.append(subprocess.Popen(["ip", "netns", "exec", ns[h], PY, path],
                                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(2)
        bc = "ff:ff:ff:ff:ff:ff"
        # untagged on p1 → VID 10 → p2 tagged 10; not p3
        lab.scapy(ns["a"], 'sendp(Ether(src="%s", dst="%s", type=0x88b5)/Raw(b"VLANTEST01"), iface="eth0")'
                  % (HOSTS["a"][1], bc))
        # From B, in one scapy run (each start costs a second or more on a busy machine):
        # tagged 20 on p2 → p3 untagged, not p1; tagged 30 → not a member: dropped;
        # untagged on p2 → no PVID: dropped; tagged 10 to h1 (learned at VID 10 on p1)
        # → p1 untagged only.
        lab.scapy(ns["b"], 'sendp([Ether(src="%(b)s", dst="%(bc)s")/Dot1Q(vlan=20, type=0x88b5)/Raw(b"VLANTEST02"), '
                           'Ether(src="%(b)s", dst="%(bc)s")/Dot1Q(vlan=30, type=0x88b5)/Raw(b"VLANTEST03"), '
                           'Ether(src="%(b)s", dst="%(bc)s", type=0x88b5)/Raw(b"VLANTEST04"), '
                           'Ether(src="%(b)s", dst="%(a)s")/Dot1Q(vlan=10, type=0x88b5)/Raw(b"VLANTEST05")], '
                           'iface="eth0")' % {"b": HOSTS["b"][1], "a": HOSTS["a"][1], "bc": bc})
        got = {}
        for h, p in zip(("a", "b", "c"), procs):
            out, err = p.communicate(timeout=30)
            assert p.returncode == 0, err
            got[h] = out.split()
        # Each host also sees what it sent itself (outgoing); count what arrived from others.
        assert "05:-" in got["a"] and "02:-" not in got["a"], got
        assert "01:10" in got["b"], got
        assert "02:-" in got["c"] and not any(x.startswith("01:") for x in got["c"]), got
        assert not any(x.startswith(("03:", "04:")) for h in ("a", "c") for x in got[h]), got
        drops = lab.ctl("show", "drops")
        assert drops["p2"]["bridge_vlan_filter"] == 1 and drops["p2"]["bridge_no_pvid"] == 1, drops
        fdb = fdb_map(lab)
        assert fdb[(HOSTS["a"][1], 10)]["port"] == "p1", fdb
        assert fdb[(HOSTS["b"][1], 20)]["port"] == "p2", fdb
    finally:
        lab.close()


def test_port_without_link_is_disabled():
    lab = Lab("brd")
    try:
        ns = three_hosts(lab)
        lab.ns_exec(ns["a"], "ping -c 1 -W 2 %s" % ip("c"), timeout=20)
        lab.wait_until(lambda: (HOSTS["c"][1], 0) in fdb_map(lab), what="h3 learned")
        lab.ctl("set", "link", "p3", "down")
        lab.wait_until(lambda: lab.ctl("show", "bridge", "br0")["ports"]["p3"]["state"] == "disabled",
                       what="p3 disabled")
        assert (HOSTS["c"][1], 0) not in fdb_map(lab)  # its learned entries went with it
        st0 = lab.ctl("show", "port", "stats", "p3")["p3"]
        lab.scapy(ns["a"], 'sendp([Ether(dst="ff:ff:ff:ff:ff:ff", src="%s", type=0x88b5)]*5, iface="eth0")'
                  % HOSTS["a"][1])
        time.sleep(0.5)
        st1 = lab.ctl("show", "port", "stats", "p3")["p3"]
        assert st1["tx_packets"] == st0["tx_packets"] and st1["tx_dropped"] == st0["tx_dropped"], (st0, st1)
        lab.ctl("set", "link", "p3", "up")
        lab.wait_until(lambda: lab.ctl("show", "bridge", "br0")["ports"]["p3"]["state"] == "forwarding",
                       what="p3 forwarding again")
        lab.ns_exec(ns["a"], "ping -c 2 -i 0.2 -W 2 %s" % ip("c"), timeout=20)
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_ping_all_pairs_fdb_and_counters, test_iperf3_tcp, test_tcp_and_udp_bridged_hosts_as_they_come,
              test_arp_broadcast_and_unknown_unicast_flood, test_entries_age_out,
              test_vlan_filtering, test_port_without_link_is_disabled):
        r.run(t)
    r.finish()
