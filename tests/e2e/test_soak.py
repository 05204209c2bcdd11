#!/usr/bin/python3
"""End-to-end soak and overload (issue 16, docs/robustness.md, "Soak, overload and flap behaviour").

Soak: a kernel "switch" namespace (kernel bridge over the peers of p1, p2)
sends mixed traffic — bridged, routed, hooked, local, broadcast and
malformed frames (truncated IPv4 headers, IHL < 5, a total length larger
than the frame, 6-deep VLAN stacks, runts, jumbo frames on the 9000-byte
members, which arrive as multi-segment mbufs) — into bond0 (active-backup
over p1, p2), a port of br0 (VLAN filtering) with L3 on br0, a hook list on
ipv4/forward, a filtered capture on br0 and a mirror of p3's ingress to lo;
meanwhile the test flaps p3, fails bond0 over (set link p1/p2 down/up),
flushes the FDB, adds and removes routes and reloads. Afterwards sluiced
still answers, exits 0 on SIGTERM with every mbuf back in its pool, and the
counter identities of every device hold exactly.

Overload: test_overload (below).
"""
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import PY, SLUICECTL, Lab, Runner, sh  # noqa: E402

SOAK_S = float(os.environ.get("SLUICE_SOAK_S", "45"))
BOND_MAC, M2_MAC = "02:00:00:00:5a:01", "02:00:00:00:5a:02"
P3_MAC, P4_MAC = "02:00:00:00:5a:03", "02:00:00:00:5a:04"
BR_MAC = "02:00:00:00:5a:0b"
SW_MAC, H_MAC, R_MAC = "02:00:00:00:5a:a1", "02:00:00:00:5a:a3", "02:00:00:00:5a:a4"


def soak_topology(lab):
    sw = "sl-%s-sw" % lab.tag
    sh("ip netns add %s" % sw)
    lab.netns.append(sw)
    ex = lambda c, **kw: lab.ns_exec(sw, c, **kw)  # noqa: E731
    for c in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
        ex("sysctl -qw %s" % c)
    ex("ip link set lo up")
    ex("ip link add br0 type bridge stp_state 0 forward_delay 0")
    ex("ip link set br0 address %s" % SW_MAC)
    ifs = []
    for i in range(2):
        root = ("b%s%d" % (lab.tag, i))[:15]
        sh("ip link add %s type veth peer name sw%d netns %s" % (root, i, sw))
        lab.links.append(root)
        sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % root)
        sh("ip link set %s mtu 9000 up" % root)
        ex("ip link set sw%d mtu 9000 master br0 up" % i)
        ifs.append(root)
    ex("ip link set br0 mtu 9000 up")
    ex("ip addr add 10.50.0.2/24 dev br0")
    ex("ip route add default via 10.50.0.1")
    h, if_h = lab.host("h", addr="10.50.0.3/24", mac=H_MAC)
    r, if_r = lab.host("r", addr="10.60.0.2/24", mac=R_MAC)
    lab.ns_exec(r, "ip route add default via 10.60.0.1")
    big = "blocksz=16384,framesz=16384,framecnt=512"
    # p5: a net_pcap port whose frames (read once, at start) are bigger than
    # an mbuf's 2048-byte data room: the PMD chains them (multi-segment).
    jumbo_in, jumbo_out = os.path.join(lab.tmp, "jumbo.pcap"), os.path.join(lab.tmp, "p5-out.pcap")
    sh("%s -c \"from scapy.all import *\n"
       "e = Ether(src='02:00:00:00:5a:a5', dst='02:00:00:00:5a:05')\n"
       "a = dict(src='10.80.0.2')\n"
       "wrpcap('%s', [e/IP(dst='10.80.0.1', **a)/ICMP(id=9, seq=i)/Raw(b'P' * 6000) for i in range(20)] +\n"
       "  [e/IP(dst='10.60.0.2', **a)/UDP(dport=4030)/Raw(b'U' * 5000) for i in range(20)] +\n"
       "  [e/IP(dst='10.60.0.2', flags='DF', **a)/UDP(dport=4031)/Raw(b'D' * 3000) for i in range(20)] +\n"
       "  [e/IP(dst='10.60.0.2', **a)/TCP(dport=4032, flags='A')/Raw(b'T' * 7000) for i in range(20)] +\n"
       "  [e/IP(dst='10.80.0.1', len=9000, **a)/UDP(dport=4033)/Raw(b'L' * 4000) for i in range(20)] +\n"
       "  [e/Dot1Q(vlan=i)/Dot1Q(vlan=2)/Dot1Q(vlan=3)/Dot1Q(vlan=4)/Dot1Q(vlan=5)/Dot1Q(vlan=6)/Raw(b'V' * 3000) for i in range(20)])\"" % (PY, jumbo_in))
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s,%s", mac: "%s", mtu: 9000}
  - {name: p2, device: "net_af_packet1,iface=%s,%s", mac: "%s", mtu: 9000}
  - {name: p3, device: "net_af_packet2,iface=%s", mac: "%s"}
  - {name: p4, device: "net_af_packet3,iface=%s", mac: "%s"}
  - {name: p5, device: "net_pcap0,rx_pcap=%s,tx_pcap=%s", mac: "02:00:00:00:5a:05", mtu: 9000}
bonds:
  - name: bond0
    mode: active-backup
    members: [p1, p2]
    primary: p1
    miimon_ms: 50
bridges:
  - name: br0
    ports: [bond0, p3]
    mac: "%s"
    vlan_filtering: true
    port_settings:
      bond0: {pvid: 1, vlans: [1, 20], untagged: [1]}
      p3: {pvid: 1, vlans: [1], untagged: [1]}
addresses:
  - {dev: br0, address: 10.50.0.1/24}
  - {dev: p4, address: 10.60.0.1/24}
  - {dev: p5, address: 10.80.0.1/24}
neighbours:
  - {dev: p5, address: 10.80.0.2, mac: "02:00:00:00:5a:a5"}
hooks:
  - point: ipv4/forward
    priority: 0
    name: soak-hook
    rules:
      - match: {proto: udp, dst_port: 9091}
        verdict: drop
        counter: true
      - match: {src: 10.50.0.0/24}
        verdict: accept
mirrors:
  - name: m0
    source: {dev: p3, direction: ingress}
    filter: "icmp"
    to: {dev: lo}
""" % (ifs[0], big, BOND_MAC, ifs[1], big, M2_MAC, if_h, P3_MAC, if_r, P4_MAC, jumbo_in, jumbo_out, BR_MAC))
    with open(cfg) as f:
        text = f.read().replace("memory_mb: 256", "memory_mb: 512")
    with open(cfg, "w") as f:
        f.write(text)
    lab.start(cfg)
    lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["active"] == "p1", what="p1 active")
    return sw, h, r, cfg


# The switch's mixed traffic: built once, sent in rounds until the deadline;
# prints the number of frames sent and of malformed ones.
TRAFFIC = r"""
import time
SW, BR, H = %r, %r, %r
def e(dst=BR, t=None): return Ether(src=SW, dst=dst) if t is None else Ether(src=SW, dst=dst, type=t)
good = [
    e(H)/IP(src="10.50.0.2", dst="10.50.0.3")/UDP(sport=4000, dport=4001)/Raw(b"b" * 60),   # bridged
    e()/IP(src="10.50.0.2", dst="10.60.0.2")/UDP(sport=4000, dport=4002)/Raw(b"r" * 60),    # routed
    e()/IP(src="10.50.0.2", dst="10.60.0.2")/UDP(sport=4000, dport=9091)/Raw(b"d" * 20),    # hook drop
    e()/IP(src="10.50.0.2", dst="10.50.0.1")/ICMP(id=7, seq=1),                            # local
    e("ff:ff:ff:ff:ff:ff")/ARP(psrc="10.50.0.2", hwsrc=SW, pdst="10.50.0.1"),               # flood+local
    e(H)/Dot1Q(vlan=20)/IP(src="10.50.0.2", dst="10.50.0.3")/UDP(dport=4003),              # VID 20: not on p3
    e(H)/Dot1Q(vlan=30)/IP(src="10.50.0.2", dst="10.50.0.3")/UDP(dport=4004),              # VID 30: filtered
    e("02:00:00:00:5a:ee")/IP(src="10.50.0.2", dst="10.50.0.9")/UDP(dport=4005),           # unknown: flood
    e("01:00:5e:00:00:fb")/IP(src="10.50.0.2", dst="224.0.0.251")/UDP(dport=5353),          # multicast
    e()/IP(src="10.50.0.2", dst="10.99.0.1")/UDP(dport=4006),                              # no route
    e()/IP(src="10.50.0.2", dst="10.60.0.2", ttl=1)/UDP(dport=4007),                       # ttl exceeded
]
ip_ok = bytes(IP(src="10.50.0.2", dst="10.60.0.2")/UDP(dport=4010)/Raw(b"m" * 40))
bad = [
    bytes(e(t=0x0800)) + b"\x45\x00\x00",                                   # truncated IPv4 header
    bytes(e(t=0x0800)) + bytes([0x43]) + ip_ok[1:],                         # IHL 3
    bytes(e(t=0x0800)) + ip_ok[:2] + (1400).to_bytes(2, "big") + ip_ok[4:], # total length > frame
    bytes(e()/Dot1Q(vlan=1)/Dot1Q(vlan=2)/Dot1Q(vlan=3)/Dot1Q(vlan=4)/Dot1Q(vlan=5)/Dot1Q(vlan=6)/
          IP(src="10.50.0.2", dst="10.50.0.1")/ICMP()),             # 6-deep VLAN stack
    bytes(e(H)/Dot1Q(vlan=1)/Dot1Q(vlan=2)/Dot1Q(vlan=3)/Dot1Q(vlan=4)/Dot1Q(vlan=5)/Dot1Q(vlan=6)/
          Raw(b"q" * 30)),                                          # 6 tags, bridged
    bytes(e())[:10],                                                # runt: no EtherType
    bytes(e(t=0x86dd)) + b"\x60\x00",                              # IPv6, 2 bytes of header
    bytes(e()/IP(src="10.50.0.2", dst="10.60.0.2", ihl=15)/UDP()),  # IHL 15 > the header there
    bytes(e()/IP(src="10.50.0.2", dst="10.60.0.2", frag=5, flags=1)/Raw(b"f" * 16)),  # fragment
]
jumbo = [bytes(e()/IP(src="10.50.0.2", dst="10.50.0.1")/UDP(dport=4020)/Raw(b"J" * 8000)),  # local
         bytes(e(H)/IP(src="10.50.0.2", dst="10.50.0.3")/UDP(dport=4021)/Raw(b"j" * 7000)),  # too big for p3
         bytes(e()/IP(src="10.50.0.2", dst="10.60.0.2")/UDP(dport=4022)/Raw(b"k" * 5000))]  # routed: > p4's MTU
rnd = [bytes(e(t=t)) + bytes(RandString(n)) for t, n in ((0x0800, 1), (0x0806, 7), (0x0800, 19), (0x86dd, 40), (0x88cc, 90))]
frames = [bytes(p) for p in good] + bad + jumbo + rnd
nbad = len(bad) + len(rnd)
s = conf.L2socket(iface="br0")
deadline = time.time() + %f
rounds = 0
while time.time() < deadline:
    for f in frames:
        s.send(f)
    rounds += 1
    time.sleep(0.002)
print(rounds * len(frames), rounds * nbad, rounds * len(jumbo), flush=True)
"""


PRE_STACK = ("link_down", "rx_oversize", "rx_truncated", "mac_filter", "nomem")


def check_identities(lab):
    """Asserts the counter identities of docs/robustness.md, "Soak, overload and flap behaviour" exactly;
    returns how many were checked and the figures they were checked on."""
    ps = lab.ctl("show", "port", "stats", "all")
    dr = lab.ctl("show", "drops")
    d = lambda dev, r: dr.get(dev, {}).get(r, 0)  # noqa: E731
    n = 0
    # 1. Per port: every frame the PMD gave sluice is counted in rx_packets
    #    or dropped before the stack (by reason).
    for p in ("p1", "p2", "p3", "p4", "p5"):
        x = lab.ctl("show", "port", "xstats", p)
        pre = sum(d(p, r) for r in PRE_STACK)
        assert x["rx_good_packets"] == ps[p]["rx_packets"] + pre, (p, x["rx_good_packets"], ps[p], dr.get(p))
        assert x["tx_good_packets"] == ps[p]["tx_packets"], (p, x, ps[p])
        n += 2
    # 2. The bond's counters are its members' sums (as Linux's bond_get_stats).
    for k in ("rx_packets", "rx_bytes", "rx_nohandler", "rx_dropped", "tx_packets", "tx_bytes", "tx_dropped"):
        assert ps["bond0"][k] == ps["p1"][k] + ps["p2"][k], (k, ps["bond0"], ps["p1"], ps["p2"])
        n += 1
    # 3. Members: what the bond passes EXACT (the backup's frames) nobody
    #    handles: rx_nohandler == unhandled_proto; tx_dropped == dev_ready + txq_full.
    for p in ("p1", "p2", "p3", "p4", "p5"):
        assert ps[p]["rx_nohandler"] + ps[p]["rx_dropped"] == d(p, "unhandled_proto"), (p, ps[p], dr.get(p))
        assert ps[p]["tx_dropped"] == d(p, "dev_ready") + d(p, "txq_full"), (p, ps[p], dr.get(p))
        n += 2
    # 4. IPv4 on each L3 device: every datagram received is an error, a drop
    #    by reason, forwarded or delivered. ForwDatagrams is counted before
    #    the DF/MTU check and the FORWARD hook (Linux 6.x, FWD-06), so what
    #    those two drop (pkt_too_big, and netfilter_drop: this topology's
    #    only hook is ipv4/forward) is inside it.
    ip = lab.ctl("show", "ip", "stats")
    for dev in ("br0", "p4", "p5"):
        m = ip[dev]
        out = (m["InHdrErrors"] + m["InAddrErrors"] + m["InNoRoutes"] + m["InTruncatedPkts"] + m["InDiscards"]
               + m["InUnknownProtos"] + m["InCsumErrors"] + d(dev, "ip_invalid_dest")
               + m["ForwDatagrams"] + m["InDelivers"])
        assert m["ForwDatagrams"] >= d(dev, "netfilter_drop") + d(dev, "pkt_too_big"), (dev, m, dr.get(dev))
        assert m["InReceives"] == out, (dev, m["InReceives"], out, m, dr.get(dev))
        assert m["InHdrErrors"] == d(dev, "ip_inhdr") and m["InNoRoutes"] == d(dev, "ip_innoroutes"), (m, dr)
        n += 2
    # 5. The bridge device: rx_dropped == its unhandled_proto; what br0
    #    received is what the bridge passed up.
    br = lab.ctl("show", "bridge", "br0")["counters"]
    assert ps["br0"]["rx_dropped"] + ps["br0"]["rx_nohandler"] == d("br0", "unhandled_proto"), (ps["br0"], dr["br0"])
    assert ps["br0"]["rx_packets"] == br["local"], (ps["br0"], br)
    n += 2
    # 6. The bridge: frames in (from bond0 and p3) plus br0's own = forwarded
    #    + flooded + passed up + dropped by a bridge reason, less the frames
    #    both flooded and passed up (`flooded_local`, added for this identity).
    into = sum(ps[p]["rx_packets"] - d(p, "unhandled_proto") for p in ("p1", "p2", "p3"))
    brdrop = sum(d(dv, r) for dv in ("bond0", "p3", "br0")
                 for r in ("bridge_vlan_filter", "no_tx_target", "bridge_learning_state", "bridge_no_pvid"))
    both = br["forwarded"] + br["flooded"] + br["local"] + brdrop - into - ps["br0"]["tx_packets"]
    assert both == br["flooded_local"], (both, into, br, ps["br0"], brdrop)
    assert ps["br0"]["multicast"] <= both <= br["flooded"], (both, br)
    n += 1
    # 7. The mirror to lo: each copy is received on lo and dropped as OTHERHOST.
    mi = lab.ctl("show", "mirrors")["m0"]
    lo = ps["lo"]
    assert mi["hits"] == mi["copies"] + mi["copies_failed"], mi
    assert mi["copies"] == lo["tx_packets"] == lo["rx_packets"] == lo["rx_otherhost_dropped"] == d("lo", "otherhost"), (mi, lo)
    n += 2
    # 8. The hook's drop rule: every hit is a netfilter_drop on br0 (in_dev).
    hk = [e for e in lab.ctl("show", "hooks")["ipv4/forward"] if e["name"] == "soak-hook"][0]
    assert hk["rules"][0]["hits"] == d("br0", "netfilter_drop") == hk["drops"], (hk, dr["br0"])
    n += 1
    return n, ps, dr, br, both


def test_soak():
    lab = Lab("soak")
    try:
        sw, h, r, cfg = soak_topology(lab)
        cap = os.path.join(lab.tmp, "br0.pcapng")
        lab.ctl("capture", "start", "br0", "both", "udp", "file", cap)
        path = os.path.join(lab.tmp, "traffic.py")
        with open(path, "w") as f:
            f.write("from scapy.all import *\nconf.verb = 0\n" + TRAFFIC % (SW_MAC, BR_MAC, H_MAC, SOAK_S))
        gen = subprocess.Popen(["ip", "netns", "exec", sw, PY, path], stdout=subprocess.PIPE, text=True)
        # Kernel traffic beside it: pings both ways through the bridge and the router.
        pings = [subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-q", "-i", "0.01", "-w", str(int(SOAK_S)),
                                   dst], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                 for ns, dst in ((sw, "10.50.0.3"), (h, "10.60.0.2"), (r, "10.50.0.2"))]
        ops = {"flap": 0, "failover": 0, "fdb_flush": 0, "route": 0, "reload": 0, "capture": 0}
        slow = []
        t_end = time.time() + SOAK_S - 2
        i = 0
        while time.time() < t_end:
            step = i % 6
            t0 = time.time()
            if step == 0:
                lab.ctl("set", "link", "p3", "down")
                time.sleep(0.2)
                lab.ctl("set", "link", "p3", "up")
                ops["flap"] += 1
            elif step == 1:
                active = lab.ctl("show", "bond", "bond0")["bond0"]["active"]
                lab.ctl("set", "link", active, "down")
                lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["active"] not in (active, None),
                               what="failover from %s" % active)
                lab.ctl("set", "link", active, "up")
                ops["failover"] += 1
            elif step == 2:
                lab.ctl("fdb", "flush", "br0")
                ops["fdb_flush"] += 1
            elif step == 3:
                lab.ctl("route", "add", "10.70.%d.0/24" % (i % 200), "via", "10.60.0.2")
                lab.ctl("route", "add", "10.99.0.0/16", "dev", "p4")
                time.sleep(0.3)
                lab.ctl("route", "del", "10.99.0.0/16", "dev", "p4")
                lab.ctl("route", "del", "10.70.%d.0/24" % (i % 200), "via", "10.60.0.2")
                ops["route"] += 4
            elif step == 4:
                lab.ctl("reload")
                ops["reload"] += 1
            else:
                lab.ctl("capture", "stop")
                lab.ctl("capture", "start", "br0", "both", "udp", "file", cap + str(i))
                ops["capture"] += 1
            t1 = time.time()
            t_show = time.time()
            lab.ctl("show", "port", "stats", "all")
            slow.append(time.time() - t_show)
            time.sleep(max(0.0, 0.5 - (time.time() - t0)))
            i += 1
        out, _ = gen.communicate(timeout=SOAK_S + 30)
        for p in pings:
            p.wait(timeout=SOAK_S + 10)
        sent, nbad, njumbo = (int(x) for x in out.split())
        lab.ctl("capture", "stop")
        time.sleep(1.0)  # everything in flight has been counted
        n_id, ps, dr, br, both = check_identities(lab)
        print("soak: %.0f s, %d frames sent by scapy (%d malformed, %d jumbo), ops %s, slowest show %.3f s"
              % (SOAK_S, sent, nbad, njumbo, ops, max(slow)), flush=True)
        malformed_drops = sum(v for dv in dr.values() for r, v in dv.items()
                              if r in ("ip_inhdr", "rx_truncated", "rx_oversize", "unhandled_proto"))
        print("soak: %d identities hold; rx %s; drops %s; bridge %s; flooded+up %d; malformed-ish drops %d"
              % (n_id, {k: v["rx_packets"] for k, v in ps.items()}, dr, br, both, malformed_drops), flush=True)
        assert ops["failover"] >= 3 and ops["reload"] >= 3 and ops["flap"] >= 3, ops
        assert max(slow) < 1.0, slow
        assert lab.ctl_raw("version").returncode == 0
        rc = lab.stop()
        assert rc == 0, "sluiced exit %s (99 = mbufs missing)\n%s" % (rc, lab.read_log()[-3000:])
    finally:
        lab.close()


OVL_S = float(os.environ.get("SLUICE_OVERLOAD_S", "12"))


def test_overload():
    """A net_pcap port replaying a pcap of 64-byte frames in a loop
    (infinite_rx: as fast as the worker polls) is bridged by br0 to p1, an
    af_packet port on a veth (a kernel queue that takes a few hundred
    thousand frames a second, with a 64-frame ring). The overflow is dropped
    at p1's TX as txq_full, counted in tx_dropped. On the same worker br1
    (STP on, 1 s hello) bridges two hosts: a ping between them keeps
    flowing; br1's ports stay forwarding with no topology change and its
    hello timer keeps sending BPDUs; `sluicectl show port stats` answers in
    under a second."""
    lab = Lab("ovl")
    labs = [lab]
    try:
        a, if_a = lab.host("a", addr="10.61.0.1/24")
        b, if_b = lab.host("b", addr="10.61.0.2/24")
        # LACP: bond0 (802.3ad, fast rate) over m1, m2 against a second
        # sluiced's bond over the other ends of the two veth pairs.
        peer = Lab("ovlp")
        labs.append(peer)
        lx = []
        for i in range(2):
            x, y = ("la%s%d" % (lab.tag, i))[:15], ("lb%s%d" % (lab.tag, i))[:15]
            sh("ip link add %s type veth peer name %s" % (x, y))
            lab.links.append(x)
            for v in (x, y):
                sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % v)
                sh("ip link set %s up" % v)
            lx.append((x, y))
        pcfg = peer.config("""ports:
  - {name: n1, device: "net_af_packet0,iface=%s"}
  - {name: n2, device: "net_af_packet1,iface=%s"}
bonds:
  - {name: bond0, mode: 802.3ad, members: [n1, n2], mac: "02:00:00:00:6f:b2", lacp_rate: fast}
""" % (lx[0][1], lx[1][1]))
        peer.start(pcfg)
        pcap = os.path.join(lab.tmp, "flood.pcap")
        sh("%s -c \"from scapy.all import *; wrpcap('%s', [Ether(src='02:00:00:00:6f:%%02x' %% i, dst='02:00:00:00:6f:ff')/"
           "IP(src='10.62.0.%%d' %% i, dst='10.62.1.1')/UDP(sport=1000 + i, dport=9)/Raw(b'o' * 18) for i in range(64)])\""
           % (PY, pcap))
        cfg = lab.config("""ports:
  - {name: p0, device: "net_pcap0,rx_pcap=%s,infinite_rx=1"}
  - {name: p4, device: "net_pcap1,rx_pcap=%s,infinite_rx=1"}
  - {name: p1, device: "net_ring0", mac: "02:00:00:00:6f:01", tx_desc: 64}
  - {name: p2, device: "net_af_packet1,iface=%s"}
  - {name: p3, device: "net_af_packet2,iface=%s"}
  - {name: m1, device: "net_af_packet3,iface=%s"}
  - {name: m2, device: "net_af_packet4,iface=%s"}
bonds:
  - {name: bond0, mode: 802.3ad, members: [m1, m2], mac: "02:00:00:00:6f:b1", lacp_rate: fast}
bridges:
  - name: br0
    ports: [p0, p4, p1]
    fdb_static: [{mac: "02:00:00:00:6f:ff", port: p1}]
  - name: br1
    ports: [p2, p3]
    stp: true
    hello_s: 1
    forward_delay_s: 2
""" % (pcap, pcap, if_a, if_b, lx[0][0], lx[1][0]))
        with open(cfg) as f:
            text = f.read().replace("memory_mb: 256", "memory_mb: 512")
        with open(cfg, "w") as f:
            f.write(text)
        lab.start(cfg)
        lab.wait_until(lambda: all(p["state"] == "forwarding"
                                   for p in lab.ctl("show", "bridge", "br1")["ports"].values()),
                       timeout=15, what="br1 forwarding")
        def lacp_ok(l):
            j = l.ctl("show", "lacp", "bond0")["bond0"]
            return all(m["mux"] == "distributing" and "distributing" in m["actor"]["state"] for m in j.values())
        lab.wait_until(lambda: lacp_ok(lab) and lacp_ok(peer), timeout=20, what="LACP distributing on both sides")
        time.sleep(1.0)
        lacp0 = lab.ctl("show", "lacp", "bond0")["bond0"]
        before = lab.ctl("show", "bridge", "br1")
        ps0 = lab.ctl("show", "port", "stats", "all")
        t0 = time.time()
        ping = subprocess.Popen(["ip", "netns", "exec", a, "ping", "-n", "-i", "0.05", "-w", str(int(OVL_S)),
                                 "10.61.0.2"], stdout=subprocess.PIPE, text=True)
        times, lacp_checks = [], []
        while time.time() - t0 < OVL_S - 1:
            t = time.time()
            r = subprocess.run([SLUICECTL, "-s", lab.sock, "--json", "show", "port", "stats"],
                               capture_output=True, text=True, timeout=10)
            times.append(time.time() - t)
            assert r.returncode == 0, r
            lacp_checks.append(lacp_ok(lab) and lacp_ok(peer))
            time.sleep(0.2)
        out, _ = ping.communicate(timeout=OVL_S + 10)
        ps1 = lab.ctl("show", "port", "stats", "all")
        dt = time.time() - t0
        # Quiesce the input (frames read on a down port are dropped link_down)
        # so that p1's counters can be compared exactly.
        lab.ctl("set", "link", "p0", "down")
        lab.ctl("set", "link", "p4", "down")
        time.sleep(0.5)
        psq = lab.ctl("show", "port", "stats", "all")
        after = lab.ctl("show", "bridge", "br1")
        lacp1 = lab.ctl("show", "lacp", "bond0")["bond0"]
        dr = lab.ctl("show", "drops")
        import re
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        sent, recv = int(m.group(1)), int(m.group(2))
        rin = sum(ps1[p]["rx_packets"] - ps0[p]["rx_packets"] for p in ("p0", "p4")) / dt
        rout = (ps1["p1"]["tx_packets"] - ps0["p1"]["tx_packets"]) / dt
        rdrop = (ps1["p1"]["tx_dropped"] - ps0["p1"]["tx_dropped"]) / dt
        print("overload: in %.0f pps on p0, out %.0f pps on p1, tx_dropped %.0f pps (txq_full %d); ping %d/%d; "
              "show port stats max %.3f s median %.3f s; LACP ok at %d/%d checks, m1 LACPDUs rx %d tx %d; br1 bpdu_tx %d -> %d, tc %d -> %d"
              % (rin, rout, rdrop, dr.get("p1", {}).get("txq_full", 0), recv, sent, max(times),
                 sorted(times)[len(times) // 2], sum(lacp_checks), len(lacp_checks),
                 lacp1["m1"]["pdus"]["lacpdu_rx"] - lacp0["m1"]["pdus"]["lacpdu_rx"],
                 lacp1["m1"]["pdus"]["lacpdu_tx"] - lacp0["m1"]["pdus"]["lacpdu_tx"], before["counters"]["bpdu_tx"], after["counters"]["bpdu_tx"],
                 before["stp_state"]["topology_change_count"], after["stp_state"]["topology_change_count"]), flush=True)
        assert rin >= 1.9 * rout and rdrop >= 0.45 * rin, (rin, rout, rdrop)  # the ring takes one burst in two
        assert psq["p1"]["tx_dropped"] == dr["p1"]["txq_full"] + dr["p1"].get("dev_ready", 0), (psq["p1"], dr["p1"])
        # What p1 counted as sent is what the PMD took.
        assert lab.ctl("show", "port", "xstats", "p1")["tx_good_packets"] == psq["p1"]["tx_packets"]
        # Frames in = frames out or dropped at TX (txq_full) or back from the
        # ring on p1 (to its own static MAC: no_tx_target).
        fwd = lab.ctl("show", "bridge", "br0")["counters"]["forwarded"]
        assert fwd == psq["p1"]["tx_packets"] + psq["p1"]["tx_dropped"], (fwd, psq["p1"])
        assert psq["p0"]["rx_packets"] + psq["p4"]["rx_packets"] + psq["p1"]["rx_packets"] == \
            fwd + dr["p1"]["no_tx_target"], (psq, dr)
        assert recv >= sent - 2 and sent >= OVL_S / 0.05 * 0.8, out  # the other path keeps flowing
        assert max(times) < 1.0, times
        for p in ("p2", "p3"):
            assert after["ports"][p]["state"] == "forwarding", after["ports"]
            assert after["ports"][p]["stp"]["transitions"] == before["ports"][p]["stp"]["transitions"], (before, after)
        # LACP kept its 1 s timers: both members of both bonds distributing
        # at every check, no churn.
        assert all(lacp_checks) and len(lacp_checks) >= OVL_S * 2, lacp_checks
        for mem in ("m1", "m2"):
            u, v = lacp0[mem], lacp1[mem]
            assert v["pdus"]["lacpdu_rx"] - u["pdus"]["lacpdu_rx"] >= OVL_S - 2, (u, v)  # fast: 1/s
            assert v["pdus"]["lacpdu_tx"] - u["pdus"]["lacpdu_tx"] >= OVL_S - 2, (u, v)
            assert v["churn"] == u["churn"] and v["pdus"]["tx_failed"] == u["pdus"]["tx_failed"], (u, v)
            assert v["pdus"]["ring_full"] == u["pdus"]["ring_full"], (u, v)
        assert after["stp_state"]["topology_change_count"] == before["stp_state"]["topology_change_count"], (before, after)
        # The hello timer ran on time: one BPDU per designated port per second.
        assert after["counters"]["bpdu_tx"] - before["counters"]["bpdu_tx"] >= 2 * (OVL_S - 2), (before, after)
        for l in (lab, peer):
            rc = l.stop()
            assert rc == 0, "sluiced exit %s (99 = mbufs missing)\n%s" % (rc, l.read_log()[-3000:])
    finally:
        for l in reversed(labs):
            l.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        sys.exit(1)
    r = Runner()
    if os.environ.get("SLUICE_ONLY") != "overload":
        r.run(test_soak)
    r.run(test_overload)
    r.finish()
