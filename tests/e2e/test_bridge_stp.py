#!/usr/bin/python3
"""STP interop: a Linux kernel bridge (stp_state 1, kernel STP) in a
namespace and sluice's bridge joined by two links — a loop. The kernel
bridge has the better priority and becomes root; sluice must elect one link
as its root port and block the other, hosts on both sides must reach each
other, and a broadcast must arrive exactly once (no storm). Then the root
link goes down and the blocked one takes over."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, Runner, sh  # noqa: E402

H1 = ("10.0.0.1/24", "02:00:00:00:0b:01")  # behind sluice's br0
H2 = ("10.0.0.2/24", "02:00:00:00:0b:02")  # behind the kernel bridge
# Short timers on both bridges (the root's are used anyway): hello 1 s, max age 6 s, fwd delay 4 s.
STP_CFG = "    stp: true\n    hello_s: 1\n    max_age_s: 6\n    forward_delay_s: 4\n"


def loop_lab(lab):
    h1, if_h1 = lab.host("h1", addr=H1[0], mac=H1[1])
    kb = "sl-%s-kb" % lab.tag
    sh("ip netns add %s" % kb)
    lab.netns.append(kb)
    lab.ns_exec(kb, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
    lab.ns_exec(kb, "sysctl -qw net.ipv6.conf.default.disable_ipv6=1")
    lab.ns_exec(kb, "ip link add kbr0 type bridge stp_state 1 priority 4096 hello_time 100 "
                    "max_age 600 forward_delay 400")
    links = []
    for i in (1, 2):  # the two links of the loop: root side for sluice, kb side on kbr0
        root_if = ("s%s%s%d" % (lab.tag, "l", i))[:15]
        sh("ip link add %s type veth peer name l%d netns %s" % (root_if, i, kb))
        lab.links.append(root_if)
        sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % root_if)
        sh("ip link set %s up" % root_if)
        lab.ns_exec(kb, "ip link set l%d master kbr0" % i)
        lab.ns_exec(kb, "ip link set l%d up" % i)
        links.append(root_if)
    # h2 hangs off the kernel bridge.
    h2 = "sl-%s-h2" % lab.tag
    sh("ip netns add %s" % h2)
    lab.netns.append(h2)
    lab.ns_exec(h2, "sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
    lab.ns_exec(kb, "ip link add hk type veth peer name eth0 netns %s" % h2)
    lab.ns_exec(kb, "ip link set hk master kbr0")
    lab.ns_exec(kb, "ip link set hk up")
    lab.ns_exec(h2, "ip link set eth0 address %s" % H2[1])
    lab.ns_exec(h2, "ip addr add %s dev eth0" % H2[0])
    lab.ns_exec(h2, "ip link set eth0 up")
    lab.ns_exec(h2, "ip link set lo up")
    lab.ns_exec(kb, "ip link set kbr0 up")
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "02:00:00:00:0c:01"}
  - {name: s1, device: "net_af_packet1,iface=%s", mac: "02:00:00:00:0c:02"}
  - {name: s2, device: "net_af_packet2,iface=%s", mac: "02:00:00:00:0c:03"}
bridges:
  - name: br0
    ports: [p1, s1, s2]
%s""" % (if_h1, links[0], links[1], STP_CFG))
    lab.start(cfg)
    return h1, h2, kb, links


def kernel_state(lab, kb, dev):
    return int(lab.ns_exec(kb, "cat /sys/class/net/%s/brport/state" % dev).stdout.strip())


def kernel_bridge_id(lab, kb):
    return lab.ns_exec(kb, "cat /sys/class/net/kbr0/bridge/bridge_id").stdout.strip()


def converged(lab):
    br = lab.ctl("show", "bridge", "br0")
    states = {p: br["ports"][p]["state"] for p in ("p1", "s1", "s2")}
    ok = (not br["stp_state"]["is_root"] and states["p1"] == "forwarding" and
          sorted([states["s1"], states["s2"]]) == ["blocking", "forwarding"])
    return br if ok else None


def count_sniffed(lab, ns, bpf, send_ns, send_code, seconds=4):
    import subprocess
    path = os.path.join(lab.tmp, "sniff_%d.py" % int(time.time() * 1e6))
    with open(path, "w") as f:
        f.write("from scapy.all import *\nconf.verb = 0\n"
                "p = sniff(iface='eth0', filter=%r, timeout=%d)\nprint(len(p))\n" % (bpf, seconds))
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "/usr/bin/python3", path],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    lab.scapy(send_ns, send_code)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    return int(out.strip().splitlines()[-1])


def test_stp_interop_with_kernel_bridge():
    lab = Lab("stp")
    try:
        h1, h2, kb, links = loop_lab(lab)
        br = lab.wait_until(lambda: converged(lab), timeout=40, what="STP convergence")
        kid = kernel_bridge_id(lab, kb)  # e.g. "1000.xxxxxxxxxxxx"
        assert br["stp_state"]["root_id"] == kid, (br["stp_state"], kid)
        root_port = br["stp_state"]["root_port"]
        blocked = "s2" if root_port == "s1" else "s1"
        assert br["ports"][root_port]["stp"]["role"] == "root", br["ports"]
        assert br["ports"][blocked]["state"] == "blocking", br["ports"]
        assert br["ports"][blocked]["stp"]["bpdu_rx"] > 0, br["ports"]
        # The kernel bridge is root: all its ports designated and forwarding.
        for dev in ("l1", "l2", "hk"):
            lab.wait_until(lambda: kernel_state(lab, kb, dev) == 3, timeout=15,
                           what="kernel %s forwarding" % dev)
        # Hosts on both sides reach each other through the loop.
        lab.ns_exec(h1, "ping -c 3 -i 0.2 -W 2 %s" % H2[0].split("/")[0], timeout=20)
        # No storm: 5 broadcasts from h1 arrive at h2 exactly 5 times.
        st0 = lab.ctl("show", "port", "stats", "all")
        dr0 = lab.ctl("show", "drops").get(blocked, {}).get("bridge_ingress_stp_state", 0)
        n = count_sniffed(lab, h2, "ether src %s and ether proto 0x88b5" % H1[1], h1,
                          'sendp([Ether(dst="ff:ff:ff:ff:ff:ff", src="%s", type=0x88b5)/Raw(b"x"*50)]*5, '
                          'iface="eth0")' % H1[1])
        assert n == 5, n
        st1 = lab.ctl("show", "port", "stats", "all")
        # Over the ~5 s window the loop carried only those frames and BPDUs (a storm would be
        # thousands): the blocked port sends nothing but its ... nothing at all.
        for p in ("s1", "s2"):
            assert st1[p]["rx_packets"] - st0[p]["rx_packets"] < 60, (p, st0[p], st1[p])
        assert st1[blocked]["tx_packets"] - st0[blocked]["tx_packets"] == 0, (st0[blocked], st1[blocked])
        # The kernel bridge (root, both links designated) floods the 5
        # broadcasts back into the loop on the blocked link: the blocked port
        # receives each of them and drops it there (bridge_ingress_stp_state),
        # and only those and the little else the hosts sent in the window.
        dr1 = lab.ctl("show", "drops").get(blocked, {}).get("bridge_ingress_stp_state", 0)
        assert 5 <= dr1 - dr0 < 60, (dr0, dr1, lab.ctl("show", "drops"))
        # The root link fails: the blocked link takes over after max age + 2 x forward delay.
        lab.ctl("set", "link", root_port, "down")
        lab.wait_until(lambda: lab.ctl("show", "bridge", "br0")["ports"][blocked]["state"] == "forwarding",
                       timeout=30, what="the alternate port forwarding")
        br = lab.ctl("show", "bridge", "br0")
        assert br["stp_state"]["root_port"] == blocked, br["stp_state"]
        assert br["ports"][root_port]["state"] == "disabled", br["ports"]
        lab.ns_exec(h1, "ping -c 2 -i 0.2 -W 3 %s" % H2[0].split("/")[0], timeout=30)
    finally:
        lab.close()


def test_sluice_as_root_kernel_blocks():
    lab = Lab("stq")
    try:
        global STP_CFG
        saved = STP_CFG
        STP_CFG = saved + "    priority: 0\n"  # better than the kernel's 4096
        try:
            h1, h2, kb, links = loop_lab(lab)
        finally:
            STP_CFG = saved

        def kernel_blocked():
            s = sorted([kernel_state(lab, kb, "l1"), kernel_state(lab, kb, "l2")])
            return s == [3, 4]  # one forwarding, one blocking
        lab.wait_until(kernel_blocked, timeout=40, what="the kernel bridge blocking one link")
        # The root's ports are all designated: listening → learning → forwarding.
        br = lab.wait_until(lambda: (lambda b: b if all(b["ports"][p]["state"] == "forwarding"
                                                        for p in ("p1", "s1", "s2")) else None)(
            lab.ctl("show", "bridge", "br0")), timeout=20, what="sluice's ports forwarding")
        assert br["stp_state"]["is_root"] is True, br["stp_state"]
        assert kernel_blocked(), "the kernel unblocked a link"
        assert lab.ns_exec(kb, "cat /sys/class/net/kbr0/bridge/root_id").stdout.strip() == \
            br["stp_state"]["bridge_id"], br["stp_state"]
        lab.ns_exec(h1, "ping -c 3 -i 0.2 -W 2 %s" % H2[0].split("/")[0], timeout=20)
        n = count_sniffed(lab, h2, "ether src %s and ether proto 0x88b5" % H1[1], h1,
                          'sendp([Ether(dst="ff:ff:ff:ff:ff:ff", src="%s", type=0x88b5)]*5, '
                          'iface="eth0")' % H1[1])
        assert n == 5, n
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_stp_interop_with_kernel_bridge, test_sluice_as_root_kernel_blocks):
        r.run(t)
    r.finish()
