#!/usr/bin/python3
"""Differential: the same scapy traffic through a Linux kernel bridge (in a
namespace) and through sluice's bridge must give the same frames out of each
port. Three hosts per side; the traffic mixes learned and unknown unicast,
broadcast, multicast, every interesting link-local address, invalid sources,
a tagged frame, a frame back to its own port and a MAC move. Each host
records every frame carrying the test marker; the two recordings must be
identical, host by host, frame by frame."""
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import PY, Lab, Runner, sh  # noqa: E402

MACS = ["02:00:00:00:0d:01", "02:00:00:00:0d:02", "02:00:00:00:0d:03"]
MARK = b"DIFFTEST"

SNIFF = """
from scapy.all import *
import json
conf.verb = 0
out = []
def keep(p):
    b = bytes(p)
    if %(mark)r in b:
        out.append(b.hex())
sniff(iface="eth0", prn=keep, store=False, timeout=%(secs)d)
print(json.dumps(out))
"""

# (sender index, scapy expression); the marker and a sequence number are appended.
M1, M2, M3 = MACS
TRAFFIC = [
    # learning: every host speaks once
    (0, 'Ether(src="%s", dst="ff:ff:ff:ff:ff:ff", type=0x88b5)' % M1),
    (1, 'Ether(src="%s", dst="ff:ff:ff:ff:ff:ff", type=0x88b5)' % M2),
    (2, 'Ether(src="%s", dst="ff:ff:ff:ff:ff:ff", type=0x88b5)' % M3),
    (0, 'Ether(src="%s", dst="%s", type=0x88b5)' % (M1, M2)),                  # known unicast
    (0, 'Ether(src="%s", dst="02:00:00:00:99:99", type=0x88b5)' % M1),         # unknown unicast
    (0, 'Ether(src="%s", dst="01:00:5e:01:02:03", type=0x88b5)' % M1),         # IPv4 multicast MAC
    (0, 'Ether(src="%s", dst="33:33:00:00:00:01", type=0x88b5)' % M1),         # IPv6 multicast MAC
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:00")/LLC(dsap=0x42, ssap=0x42, ctrl=3)' % M1),  # BPDU, STP off
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:01", type=0x8808)' % M1),         # pause: dropped
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:02", type=0x8809)' % M1),         # slow protocols
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:03", type=0x888e)' % M1),         # 802.1X
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:0e", type=0x88cc)' % M1),         # LLDP
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:05", type=0x88b5)' % M1),
    (0, 'Ether(src="%s", dst="01:80:c2:00:00:10", type=0x88b5)' % M1),         # not link-local
    (0, 'Ether(src="03:00:00:00:00:01", dst="%s", type=0x88b5)' % M2),         # multicast source
    (0, 'Ether(src="00:00:00:00:00:00", dst="%s", type=0x88b5)' % M2),         # zero source
    (0, 'Ether(src="%s", dst="%s")/Dot1Q(vlan=100)/Raw(b"\\x88\\xb5")' % (M1, M3)),  # tagged
    (0, 'Ether(src="%s", dst="%s", type=0x88b5)' % (M1, M1)),                  # back to its own port
    (2, 'Ether(src="%s", dst="%s", type=0x88b5)' % (M3, M1)),                  # known unicast back
    (0, 'Ether(src="%s", dst="02:00:00:00:99:98", type=0x88b5)' % M2),         # M2 moves to port 1
    (2, 'Ether(src="%s", dst="%s", type=0x88b5)' % (M3, M2)),                  # → port 1 now
    (1, 'Ether(src="%s", dst="ff:ff:ff:ff:ff:ff", type=0x88b5)' % M2),         # M2 moves back
    (2, 'Ether(src="%s", dst="%s", type=0x88b5)' % (M3, M2)),                  # → port 2 again
]


def make_host(lab, name, mac):
    ns = "sl-%s-%s" % (lab.tag, name)
    sh("ip netns add %s" % ns)
    lab.netns.append(ns)
    for c in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
        lab.ns_exec(ns, "sysctl -qw %s" % c)
    return ns


def kernel_side(lab):
    kb = make_host(lab, "kb", None)
    lab.ns_exec(kb, "ip link add kbr0 type bridge stp_state 0")
    hosts = []
    for i, mac in enumerate(MACS):
        ns = make_host(lab, "k%d" % i, mac)
        lab.ns_exec(kb, "ip link add kp%d type veth peer name eth0 netns %s" % (i, ns))
        lab.ns_exec(kb, "ip link set kp%d master kbr0" % i)
        lab.ns_exec(kb, "ip link set kp%d up" % i)
        lab.ns_exec(ns, "ip link set eth0 address %s" % mac)
        lab.ns_exec(ns, "ip link set eth0 up")
        hosts.append(ns)
    lab.ns_exec(kb, "ip link set kbr0 up")
    return hosts


def sluice_side(lab):
    hosts, ifs = [], []
    for i, mac in enumerate(MACS):
        ns, root_if = lab.host("s%d" % i, mac=mac)
        hosts.append(ns)
        ifs.append(root_if)
    ports = "".join('  - {name: p%d, device: "net_af_packet%d,iface=%s", mac: "02:00:00:00:0e:0%d"}\n'
                    % (i, i, ifs[i], i + 1) for i in range(3))
    cfg = lab.config("ports:\n%sbridges:\n  - name: br0\n    ports: [p0, p1, p2]\n" % ports)
    lab.start(cfg)
    return hosts


def run_traffic(lab, hosts):
    secs = 5 + int(len(TRAFFIC) * 1.3)  # one scapy start per frame: about a second each
    procs = []
    for i, ns in enumerate(hosts):
        path = os.path.join(lab.tmp, "sniff_%s.py" % ns)
        with open(path, "w") as f:
            f.write(SNIFF % {"mark": MARK, "secs": secs})
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, PY, path], stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    time.sleep(2)
    t0 = time.time()
    for seq, (who, expr) in enumerate(TRAFFIC):
        lab.scapy(hosts[who], 'sendp(%s/Raw(%r + b"%%03d" %% %d), iface="eth0")' % (expr, MARK, seq))
        time.sleep(0.15)  # learning settles between frames on both bridges
    assert time.time() - t0 < secs - 3, "sending took longer than the sniffers listen"
    seen = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        seen.append(json.loads(out.strip().splitlines()[-1]))
    return seen


def describe(frames):
    r = []
    for h in frames:
        b = bytes.fromhex(h)
        i = b.find(MARK)
        r.append("%s→%s #%s" % (b[6:12].hex(":"), b[0:6].hex(":"), b[i + len(MARK):i + len(MARK) + 3].decode()))
    return r


def test_same_frames_as_the_kernel_bridge():
    lab = Lab("dif")
    try:
        kh = kernel_side(lab)
        sh_ = sluice_side(lab)
        kernel = run_traffic(lab, kh)
        sluice = run_traffic(lab, sh_)
        for i in range(3):
            print("  host %d: kernel %d frames, sluice %d frames" % (i, len(kernel[i]), len(sluice[i])))
            assert describe(sluice[i]) == describe(kernel[i]), \
                "host %d differs:\n kernel %s\n sluice %s" % (i, describe(kernel[i]), describe(sluice[i]))
            assert sluice[i] == kernel[i], "host %d: same frames, different bytes" % i
        total = sum(len(k) for k in kernel)
        assert total > 30, total  # the comparison is not vacuous
        drops = lab.ctl("show", "drops")
        assert drops["p0"]["bridge_pause"] == 1 and drops["p0"]["mac_invalid_source"] == 2, drops
        br = lab.ctl("show", "bridge", "br0")
        assert br["counters"]["moves"] >= 2, br["counters"]
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    r.run(test_same_frames_as_the_kernel_bridge)
    r.finish()
