#!/usr/bin/python3
"""End-to-end: sluice's bonding with kernel peers (spec §3, BOND-01/02, §3.8).

The "switch" is a namespace whose kernel bridge joins the peers of both
members' veth pairs, with a host address on the bridge; sluiced opens the
root sides with net_af_packet as the members of bond0 (10.77.0.1/24).

  * active-backup: a 20 ms ping from the switch survives `set link` down of
    the active member; the packets lost and the failover time are printed
    (the goal: one miimon interval plus the switch relearning from the
    gratuitous ARP);
  * captures on the active member, the backup and the bond during a ping
    show §3.8's table: the active member and the bond see each request in
    and each reply out, the backup sees none of them;
  * 802.3ad interop: sluice's bond against DPDK's net_bonding mode 4
    (dpdk-testpmd, flowgen, in a second process) over two veth pairs, with
    lacp_rate fast and slow: both sides reach collecting+distributing on both
    links; traffic flows on both; frames from a host behind a sluice bridge
    over the bond split over the members exactly as the layer3+4 formula
    says; `set link` down of one member keeps everything on the other, and
    LACP converges again when it comes back.

Kernel peers keep their default veth offloads.
"""
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "unit"))
from bond_hash_ref import bond_hash  # noqa: E402  (the formulas of §3.4, independent of sluice)
from lab import PY, Lab, Runner, sh  # noqa: E402

BOND_MAC = "02:00:00:00:b0:01"
M2_MAC = "02:00:00:00:b0:02"
BOND_IP, SW_IP = "10.77.0.1", "10.77.0.2"
VLAN_IP, SW_VLAN_IP = "10.78.0.1", "10.78.0.2"  # on bond0.77 / the switch's br0.77


class Switch:
    """Namespace sw with kernel bridge br0 over the peers sw0, sw1 of the
    root-side veths that sluiced opens (returned as self.ifs)."""

    def __init__(self, lab, members=2):
        self.lab = lab
        self.ns = "sl-%s-sw" % lab.tag
        sh("ip netns add %s" % self.ns)
        lab.netns.append(self.ns)
        for c in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
            self.ex("sysctl -qw %s" % c)
        self.ex("ip link set lo up")
        self.ex("ip link add br0 type bridge stp_state 0 forward_delay 0")
        self.ifs = []
        for i in range(members):
            root = ("b%s%d" % (lab.tag, i))[:15]
            sh("ip link add %s type veth peer name sw%d netns %s" % (root, i, self.ns))
            lab.links.append(root)
            sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % root)
            sh("ip link set %s up" % root)
            self.ex("ip link set sw%d master br0" % i)
            self.ex("ip link set sw%d up" % i)
            self.ifs.append(root)
        self.ex("ip link set br0 up")
        self.ex("ip addr add %s/24 dev br0" % SW_IP)


    def ex(self, cmd, **kw):
        return self.lab.ns_exec(self.ns, cmd, **kw)


def bond_lab(lab, bond_extra="    miimon_ms: 100\n", mode="active-backup"):
    sw = Switch(lab)
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
bonds:
  - name: bond0
    mode: %s
    members: [p1, p2]
%svlans:
  - {name: bond0.77, link: bond0, id: 77}
addresses:
  - {dev: bond0, address: %s/24}
  - {dev: bond0.77, address: %s/24}
""" % (sw.ifs[0], BOND_MAC, sw.ifs[1], M2_MAC, mode, bond_extra, BOND_IP, VLAN_IP),
                     memory_mb=512)  # L3's tables and a capture pool need more than the lab's default
    lab.start(cfg)
    lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["active"] == "p1",
                   what="p1 active")
    return sw


def ping(sw, count, interval="0.02", timeout=60):
    """ping from the switch host: (sent, received, sequence numbers answered)."""
    r = sw.ex("ping -n -i %s -c %d -W 1 %s" % (interval, count, BOND_IP), check=False, timeout=timeout)
    seqs = [int(m) for m in re.findall(r"icmp_seq=(\d+)", r.stdout)]
    m = re.search(r"(\d+) packets transmitted, (\d+) received", r.stdout)
    assert m, r.stdout + r.stderr
    return int(m.group(1)), int(m.group(2)), seqs


def max_gap_ms(times):
    """The longest silence between consecutive replies (20 ms when none is lost)."""
    return max((b - a for a, b in zip(times, times[1:])), default=0) * 1000


def tshark_rows(path, fields):
    r = sh("tshark -r %s -T fields %s" % (path, " ".join("-e " + f for f in fields)))
    return [l.split("\t") for l in r.stdout.splitlines() if l.strip()]


def test_captures_show_the_table_of_3_8():
    lab = Lab("bondcap")
    try:
        sw = bond_lab(lab)
        ping(sw, 3)  # ARP resolved both ways, the switch learned the bond's MAC on p1
        path = os.path.join(lab.tmp, "any.pcapng")  # tcpdump -i any: every round of every device
        lab.ctl("capture", "start", "any", "both", "file", path)
        sent, got, _ = ping(sw, 20)
        time.sleep(0.3)
        lab.ctl("capture", "stop")
        assert sent == got == 20, (sent, got)
        rows = tshark_rows(path, ["frame.interface_name", "frame.packet_flags_direction",
                                  "icmp.type"])
        icmp = [r for r in rows if len(r) > 2 and r[2] in ("0", "8")]
        dirs = {}
        for dev in ("p1", "p2", "bond0"):
            mine = [r for r in icmp if r[0] == dev]
            dirs[dev] = (sum(1 for r in mine if r[2] == "8" and int(r[1], 0) & 3 == 1),
                         sum(1 for r in mine if r[2] == "0" and int(r[1], 0) & 3 == 2),
                         len(mine))
        assert len(icmp) == 80, rows  # any = 2 per frame: the member's round and the bond's
        # §3.8: requests in and replies out on the active member and on the
        # bond; nothing of the ping on the backup.
        assert dirs["p1"] == (20, 20, 40), dirs
        assert dirs["bond0"] == (20, 20, 40), dirs
        assert dirs["p2"] == (0, 0, 0), dirs
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["members"]["p1"]["state"] == "active" and b["members"]["p2"]["state"] == "backup", b
        st = lab.ctl("show", "port", "stats", "all")
        for k in ("rx_packets", "tx_packets", "rx_nohandler", "rx_dropped"):
            assert st["bond0"][k] >= st["p1"][k] + st["p2"][k], (k, st)  # folded (+ its own)
        # A VLAN sub-device on the bond: a tagged ARP request from the switch
        # is answered tagged (this kernel has no 8021q module: scapy speaks VLAN).
        r = lab.scapy(sw.ns, '''
r = srp1(Ether(dst="ff:ff:ff:ff:ff:ff")/Dot1Q(vlan=77)/ARP(pdst=%r, psrc=%r), iface="br0", timeout=5)
print("reply", r is not None and r.haslayer(ARP) and r[ARP].op == 2 and r[ARP].psrc == %r and
      r[ARP].hwsrc == %r)
''' % (VLAN_IP, SW_VLAN_IP, VLAN_IP, BOND_MAC))
        assert "reply True" in r.stdout, r.stdout + r.stderr
        st = lab.ctl("show", "port", "stats", "bond0.77")["bond0.77"]
        assert st["rx_packets"] >= 1 and st["tx_packets"] >= 1, st
        devs = lab.ctl("show", "devices")
        assert devs["bond0.77"]["kind"] == "vlan" and devs["bond0.77"]["link"] == "bond0", devs
        assert devs["bond0"]["kind"] == "bond", devs["bond0"]
        assert devs["p1"]["master"] == "bond0" and devs["p1"]["rx_handler"] == "bond", devs["p1"]
        assert devs["p1"]["bond_state"] == "active" and devs["p2"]["bond_state"] == "backup", devs
        assert devs["bond0"]["bond_active"] == "p1", devs["bond0"]
        assert devs["p2"]["mac"] == BOND_MAC, devs["p2"]  # fail_over_mac none
        assert lab.stop() == 0
    finally:
        lab.close()


def test_active_backup_failover_with_set_link():
    lab = Lab("bondab")
    try:
        sw = bond_lab(lab)
        ping(sw, 3)
        count, interval = 250, 0.02
        proc = subprocess.Popen(["ip", "netns", "exec", sw.ns, "ping", "-n", "-D", "-i", str(interval),
                                 "-c", str(count), "-W", "1", BOND_IP],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        t_down = time.time()
        lab.ctl("set", "link", "p1", "down")
        out, err = proc.communicate(timeout=60)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m, out + err
        sent, got = int(m.group(1)), int(m.group(2))
        replies = [float(t) for t in re.findall(r"\[(\d+\.\d+)\].*icmp_seq=", out)]
        lost = sent - got
        assert any(t > t_down for t in replies), out
        print("  active-backup, set link p1 down: %d of %d pings lost, longest reply gap %.0f ms"
              % (lost, sent, max_gap_ms(replies)), flush=True)
        assert lost <= 15, (lost, out)  # 300 ms at 20 ms: miimon 100 + the tick + relearning
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["active"] == "p2", b
        assert b["members"]["p1"]["link"] == "down" and b["members"]["p1"]["link_failure_count"] == 1, b
        assert b["garp_sent"] >= 2, b  # at start (p1) and at the failover (p2)
        # Back up: p1 returns as a backup (no primary), traffic stays on p2.
        lab.ctl("set", "link", "p1", "up")
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["members"]["p1"]["link"] == "up",
                       what="p1 up again")
        sent, got, _ = ping(sw, 20)
        assert got == sent, (sent, got)
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["active"] == "p2" and b["members"]["p1"]["state"] == "backup", b
        drops = lab.ctl("show", "drops")
        assert "bond_no_member" not in drops.get("bond0", {}), drops
        assert lab.stop() == 0
    finally:
        lab.close()


def test_arp_monitor_failover_with_the_link_broken_at_the_peer():
    """The ARP monitor (arp_validate all) notices a link whose carrier never
    drops on sluice's side: the switch's end of the active member's veth
    goes down (`ip link set down` in the namespace); af_packet reports
    nothing, the MII monitor would see nothing, the ARP replies stop."""
    lab = Lab("bondarp")
    try:
        sw = bond_lab(lab, "    arp_monitor: {interval_ms: 100, targets: [%s], validate: all}\n" % SW_IP)
        ping(sw, 3)
        lab.wait_until(lambda: all(m["link"] == "up" for m in
                                   lab.ctl("show", "bond", "bond0")["bond0"]["members"].values()),
                       what="both members up by the ARP monitor")
        count, interval = 250, 0.02
        proc = subprocess.Popen(["ip", "netns", "exec", sw.ns, "ping", "-n", "-D", "-i", str(interval),
                                 "-c", str(count), "-W", "1", BOND_IP],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        t_down = time.time()
        sw.ex("ip link set sw0 down")
        out, err = proc.communicate(timeout=60)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m, out + err
        sent, got = int(m.group(1)), int(m.group(2))
        replies = [float(t) for t in re.findall(r"\[(\d+\.\d+)\].*icmp_seq=", out)]
        assert any(t > t_down for t in replies), out
        print("  ARP monitor (100 ms, missed_max 2), link broken at the peer: %d of %d pings lost, "
              "longest reply gap %.0f ms" % (sent - got, sent, max_gap_ms(replies)), flush=True)
        assert sent - got <= 30, (sent - got, out)
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["active"] == "p2" and b["members"]["p1"]["link"] == "down", b
        assert b["members"]["p1"]["carrier"] is True, b  # sluice's side never lost carrier
        assert b["arp_monitor"]["probes_sent"] > 0, b
        # The peer's end back: p1 returns as a backup (validated by the
        # request p2 sends, which the switch floods to it).
        sw.ex("ip link set sw0 up")
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["members"]["p1"]["link"] == "up",
                       timeout=15, what="p1 up again by the ARP monitor")
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["active"] == "p2" and b["members"]["p1"]["state"] == "backup", b
        assert b["members"]["p1"]["arp_validated"] > 0, b
        sent, got, _ = ping(sw, 20)
        assert got == sent, (sent, got)
        assert lab.stop() == 0
    finally:
        lab.close()


# ---- balance-tlb and balance-alb with several clients behind the switch ----------------------

def clients(lab, sw, n):
    """n client namespaces on the switch's bridge: [(ns, ip, mac)], 10.77.0.11.."""
    cs = []
    for i in range(n):
        ns = "sl-%s-c%d" % (lab.tag, i)
        ip, mac = "10.77.0.%d" % (11 + i), "02:00:00:00:c1:%02x" % (0x11 + i)
        sh("ip netns add %s" % ns)
        lab.netns.append(ns)
        for c in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
            lab.ns_exec(ns, "sysctl -qw %s" % c)
        sw.ex("ip link add c%d type veth peer name eth0 netns %s" % (i, ns))
        sw.ex("ip link set c%d master br0" % i)
        sw.ex("ip link set c%d up" % i)
        sh("ip -n %s link set eth0 address %s" % (ns, mac))
        sh("ip -n %s link set lo up" % ns)
        sh("ip -n %s link set eth0 up" % ns)
        sh("ip -n %s addr add %s/24 dev eth0" % (ns, ip))
        cs.append((ns, ip, mac))
    return cs


def lb_lab(lab, mode, n=4):
    """bond_lab in a load-balancing mode with n clients that have ARPed the bond."""
    sw = bond_lab(lab, mode=mode)
    cs = clients(lab, sw, n)
    for ns, _, _ in cs:
        lab.ns_exec(ns, "ping -n -c 1 -W 2 %s" % BOND_IP)
    return sw, cs


def neigh_mac(ns):
    """The MAC a client's ARP cache holds for the bond's address (or None)."""
    r = sh("ip -n %s neigh show %s" % (ns, BOND_IP), check=False)
    m = re.search(r"lladdr ([0-9a-f:]{17})", r.stdout)
    return m.group(1) if m else None


def start_pings(cs, count, interval):
    """Starts a ping of the bond from every client at once."""
    return [(ip, subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-n", "-D", "-i", str(interval),
                                   "-c", str(count), "-W", "1", BOND_IP],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            for ns, ip, _ in cs]


def finish_pings(procs, timeout=60):
    """{ip: (sent, received, [reply times])} of start_pings' pings."""
    r = {}
    for ip, p in procs:
        out, err = p.communicate(timeout=timeout)
        m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
        assert m, out + err
        r[ip] = (int(m.group(1)), int(m.group(2)),
                 [float(t) for t in re.findall(r"\[(\d+\.\d+)\].*icmp_seq=", out)])
    return r


def pings(cs, count, interval, timeout=60):
    return finish_pings(start_pings(cs, count, interval), timeout)


def member_counts(lab, what):
    st = lab.ctl("show", "port", "stats", "all")
    return {p: st[p][what] for p in ("p1", "p2")}


def delta(a, b):
    return {k: b[k] - a[k] for k in a}


def rlb_table(lab):
    return {e["ip"]: e for e in lab.ctl("show", "bond", "bond0")["bond0"]["rlb"]}


def rlb_converged(lab, cs):
    """Every client's ARP cache names the MAC of the member the table gives it."""
    t = rlb_table(lab)
    if not all(ip in t and t[ip]["member"] is not None for _, ip, _ in cs):
        return None
    if all(neigh_mac(ns) == t[ip]["member_mac"] for ns, ip, _ in cs):
        return t
    return None


def rx_split_matches(lab, cs, t, n=100):
    """n pings from each client at once; each member's rx grows by n per
    client the table puts on it (plus the odd ARP). Returns the deltas."""
    want = {"p1": 0, "p2": 0}
    for _, ip, _ in cs:
        want[t[ip]["member"]] += n
    before = member_counts(lab, "rx_packets")
    res = pings(cs, n, 0.01)
    got = delta(before, member_counts(lab, "rx_packets"))
    for ip, (sent, recv, _) in res.items():
        assert recv == sent, (ip, sent, recv)
    for p in ("p1", "p2"):
        assert want[p] <= got[p] <= want[p] + 10, (want, got, t)
    return want, got


def test_balance_alb_rlb_spreads_clients_and_moves_them_on_failure():
    """balance-alb: four clients ARP the bond; the replies name both members'
    MACs (the table's choice), each client's traffic arrives on its member;
    `set link p2 down` moves p2's clients to p1 (updated ARP replies, their
    pings keep working, now arriving on p1); p2 back: rebalanced; `set link
    p1 down` (the active member): p2 takes the bond's MAC, every client ends
    up on p2."""
    lab = Lab("bondalb")
    try:
        _, cs = lb_lab(lab, "balance-alb")
        t = lab.wait_until(lambda: rlb_converged(lab, cs), timeout=10, what="the clients' ARP caches")
        for _, ip, mac in cs:
            assert t[ip]["mac"] == mac, t
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["members"]["p1"]["mac"] == BOND_MAC and b["members"]["p2"]["mac"] == M2_MAC, b
        macs = {neigh_mac(ns) for ns, _, _ in cs}
        assert macs == {BOND_MAC, M2_MAC}, macs
        want, got = rx_split_matches(lab, cs, t)
        print("  balance-alb: 4 clients, ARP caches %s; 100 pings each arrive p1 %d / p2 %d (table %d / %d)"
              % (sorted(neigh_mac(ns) for ns, _, _ in cs), got["p1"], got["p2"], want["p1"], want["p2"]),
              flush=True)

        # p2 down: its clients move to p1 and are told so.
        on_p2 = [c for c in cs if t[c[1]]["member"] == "p2"]
        assert on_p2
        procs = start_pings(on_p2, 400, 0.02)
        time.sleep(1)
        t_down = time.time()
        lab.ctl("set", "link", "p2", "down")
        for ip, (sent, recv, times) in finish_pings(procs).items():
            after = [x for x in times if x > t_down]
            gap = max_gap_ms(times)
            print("  balance-alb, set link p2 down: client %s lost %d of %d pings, longest gap %.0f ms"
                  % (ip, sent - recv, sent, gap), flush=True)
            assert len(after) > 150, (ip, len(after))  # it answers again, well before the end
            assert gap < 4000, (ip, gap)  # RLB_UPDATE_DELAY (2 s) + the update's way back
        for ns, ip, _ in on_p2:
            assert neigh_mac(ns) == BOND_MAC, (ip, neigh_mac(ns))
        t = rlb_table(lab)
        assert all(e["member"] == "p1" for e in t.values()), t
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["alb"]["clients_moved"] >= len(on_p2) and b["alb"]["updates_sent"] > 0, b
        before = member_counts(lab, "rx_packets")
        res = pings(cs, 20, 0.02)
        assert all(r[0] == r[1] for r in res.values()), res
        d = delta(before, member_counts(lab, "rx_packets"))
        assert d["p1"] >= 80 and d["p2"] <= 2, d

        # p2 back: the clients are rebalanced over both members again.
        lab.ctl("set", "link", "p2", "up")
        t = lab.wait_until(lambda: (lambda t: t if t and {e["member"] for e in t.values()} == {"p1", "p2"}
                                    else None)(rlb_converged(lab, cs)),
                           timeout=15, what="the clients rebalanced over p1 and p2")
        rx_split_matches(lab, cs, t, 50)

        # The active member down: p2 takes over with the bond's MAC.
        procs = start_pings(cs, 400, 0.02)
        time.sleep(1)
        t_down = time.time()
        lab.ctl("set", "link", "p1", "down")
        per = []
        for ip, (sent, recv, times) in sorted(finish_pings(procs).items()):
            assert len([x for x in times if x > t_down]) > 150, ip
            per.append("%s (was on %s) lost %d, gap %.0f ms" % (ip, t[ip]["member"], sent - recv,
                                                                max_gap_ms(times)))
        print("  balance-alb, set link p1 (active) down: " + "; ".join(per), flush=True)
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["active"] == "p2" and b["members"]["p2"]["mac"] == BOND_MAC, b
        assert b["members"]["p1"]["mac"] == M2_MAC, b  # the swap
        for ns, ip, _ in cs:
            assert neigh_mac(ns) == BOND_MAC, (ip, neigh_mac(ns))
        before = member_counts(lab, "rx_packets")
        res = pings(cs, 20, 0.02)
        assert all(r[0] == r[1] for r in res.values()), res
        d = delta(before, member_counts(lab, "rx_packets"))
        assert d["p2"] >= 80 and d["p1"] == 0, d
        # Only replies the bond hashed to a member downed by `set link` before
        # the MII monitor's next run saw it (Linux drops those too,
        # bond_do_alb_xmit): at most ~100 ms of 200 replies/s, twice.
        drops = lab.ctl("show", "drops")
        assert drops.get("bond0", {}).get("bond_no_member", 0) <= 40, drops
        assert lab.stop() == 0
    finally:
        lab.close()


def test_balance_tlb_spreads_tx_and_fails_over():
    """balance-tlb: the bond's replies to four clients leave on both members
    (RX stays on the active one); after a rebalance the loaded buckets are
    split 2 / 2; `set link p1 down` (the active member): p2 takes over
    receive and transmit, pings keep working."""
    lab = Lab("bondtlb")
    try:
        _, cs = lb_lab(lab, "balance-tlb")
        for ns, ip, _ in cs:
            assert neigh_mac(ns) == BOND_MAC, ip  # TLB: every client sends to the bond's MAC
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["tlb"]["rebalances"] >= 1,
                       timeout=15, what="the first rebalance")
        res = pings(cs, 100, 0.01)  # loads the buckets
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["tlb"]["rebalances"] >= 2,
                       timeout=15, what="a rebalance with load")
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["tlb"]["buckets"]["p1"] >= 1 and b["tlb"]["buckets"]["p2"] >= 1, b["tlb"]
        tx0, rx0 = member_counts(lab, "tx_packets"), member_counts(lab, "rx_packets")
        res = pings(cs, 100, 0.01)
        assert all(r[0] == r[1] for r in res.values()), res
        tx, rx = delta(tx0, member_counts(lab, "tx_packets")), delta(rx0, member_counts(lab, "rx_packets"))
        print("  balance-tlb: 4 clients x 100 pings, replies p1 %d / p2 %d, requests in p1 %d / p2 %d, "
              "buckets %s" % (tx["p1"], tx["p2"], rx["p1"], rx["p2"], b["tlb"]["buckets"]), flush=True)
        # The four equal flows, heaviest first onto the least loaded member: 2 / 2.
        assert 200 <= tx["p1"] <= 210 and 200 <= tx["p2"] <= 210, tx
        assert rx["p1"] >= 400 and rx["p2"] <= 10, rx  # receive only on the active member

        procs = start_pings(cs, 250, 0.02)
        time.sleep(1)
        t_down = time.time()
        lab.ctl("set", "link", "p1", "down")
        worst, lost = 0, 0
        for ip, (sent, recv, times) in finish_pings(procs).items():
            assert len([x for x in times if x > t_down]) > 150, ip
            worst, lost = max(worst, max_gap_ms(times)), lost + sent - recv
        print("  balance-tlb, set link p1 (active) down: %d pings lost over 4 clients, longest gap %.0f ms"
              % (lost, worst), flush=True)
        assert worst < 500, worst  # miimon 100 + the learning frame
        b = lab.ctl("show", "bond", "bond0")["bond0"]
        assert b["active"] == "p2" and b["learning_sent"] >= 1, b
        tx0, rx0 = member_counts(lab, "tx_packets"), member_counts(lab, "rx_packets")
        res = pings(cs, 20, 0.02)
        assert all(r[0] == r[1] for r in res.values()), res
        tx, rx = delta(tx0, member_counts(lab, "tx_packets")), delta(rx0, member_counts(lab, "rx_packets"))
        assert tx["p1"] == 0 and tx["p2"] >= 80 and rx["p2"] >= 80 and rx["p1"] == 0, (tx, rx)
        assert lab.stop() == 0
    finally:
        lab.close()


# ---- 802.3ad against dpdk-testpmd's net_bonding mode 4 ---------------------------------------

TESTPMD = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"
AD_MAC = "02:00:00:00:bd:01"
HOST_MAC = "02:00:00:00:bd:0a"
FAR_MAC = "02:00:00:00:bd:ff"  # unknown to the bridge: flooded, i.e. sent through the bond


class TestPmd:
    """dpdk-testpmd in a namespace: net_bonding mode 4 (port 2) over
    net_af_packet on b0, b1; flowgen forwarding, which calls rx and tx every
    loop as mode 4 needs, sending 64 UDP flows to sluice's bond MAC."""

    def __init__(self, lab, ns, ifaces):
        self.lines = []
        self.cv = threading.Condition()
        vdevs = ["net_af_packet%d,iface=%s" % (i, f) for i, f in enumerate(ifaces)]
        vdevs.append("net_bonding0,mode=4,%s,xmit_policy=l34" %
                     ",".join("slave=net_af_packet%d" % i for i in range(len(ifaces))))
        args = (["ip", "netns", "exec", ns, "stdbuf", "-oL", TESTPMD, "--lcores=0@0,1@0", "--no-pci",
                 "--no-huge", "-m", "512", "--file-prefix=bdtp%d" % os.getpid()]
                + ["--vdev=" + v for v in vdevs]
                + ["--", "-i", "--total-num-mbufs=16384", "--forward-mode=flowgen",
                   "--flowgen-flows=64", "--eth-peer=2,%s" % AD_MAC])
        self.log = open(os.path.join(lab.tmp, "testpmd.log"), "w")
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, bufsize=1)
        threading.Thread(target=self._read, daemon=True).start()
        self.wait(r"^Done", 0, 60)  # after "Checking link statuses..."
        self.send("set portlist 2")  # forward on the bond only (its members are ports 0, 1)
        self.cmd("start", "flowgen packet forwarding")

    def _read(self):
        for line in self.p.stdout:
            self.log.write(line)
            self.log.flush()
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()

    def send(self, text):
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def wait(self, pattern, start, timeout):
        rx = re.compile(pattern)
        deadline = time.time() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i]):
                        return i
                    i += 1
                left = deadline - time.time()
                if left <= 0 or self.p.poll() is not None:
                    raise RuntimeError("testpmd: no %r: %s" % (pattern, " | ".join(self.lines[-10:])))
                self.cv.wait(left)

    def cmd(self, text, until):
        start = len(self.lines)
        self.send(text)
        end = self.wait(until, start, 30)
        return self.lines[start:end + 1]

    def lacp(self):
        """Per member port: {actor, partner (states), actor_mac, partner_mac}."""
        start = len(self.lines)
        self.send("show bonding lacp info 2")
        i = self.wait(r"Slave Port: 1", start, 30)
        i = self.wait(r"port state:", i, 30)  # slave 1's actor ...
        end = self.wait(r"port state:", i + 1, 30)  # ... and partner: the end of the report
        out = self.lines[start:end + 1]
        ports, cur, side = {}, None, None
        for line in out:
            line = line.strip()
            m = re.match(r"Slave Port: (\d+)", line)
            if m:
                cur = ports.setdefault(int(m.group(1)), {})
            elif line.startswith("Actor detail"):
                side = "actor"
            elif line.startswith("Partner detail"):
                side = "partner"
            elif cur is not None and line.startswith("system mac address:") and side:
                cur[side + "_mac"] = line.split(": ")[1].lower()
            elif cur is not None and line.startswith("port state:") and side:
                cur[side] = line.split(": ", 1)[1].split()
        return ports

    def close(self):
        if self.p.poll() is None:
            try:
                self.p.stdin.write("stop\nquit\n")
                self.p.stdin.flush()
                self.p.wait(timeout=20)
            except Exception:
                self.p.kill()
                self.p.wait()
        sh("rm -rf /var/run/dpdk/bdtp%d" % os.getpid(), check=False)


def ad_lab(lab, rate, mode="802.3ad", policy="layer3+4"):
    """sluice: bond0 (802.3ad, layer3+4, or `mode`/`policy`) over p1, p2
    (veths to the testpmd namespace) and a bridge br0 over bond0 and p3 (a
    host namespace)."""
    ns = "sl-%s-tp" % lab.tag
    sh("ip netns add %s" % ns)
    lab.netns.append(ns)
    ifs = []
    for i in range(2):
        root = ("a%s%d" % (lab.tag, i))[:15]
        sh("ip link add %s type veth peer name b%d netns %s" % (root, i, ns))
        lab.links.append(root)
        sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % root)
        sh("ip link set %s up" % root)
        sh("ip -n %s link set b%d up" % (ns, i))
        ifs.append(root)
    host, host_if = lab.host("h", mac=HOST_MAC)
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s"}
  - {name: p2, device: "net_af_packet1,iface=%s"}
  - {name: p3, device: "net_af_packet2,iface=%s"}
bonds:
  - name: bond0
    mode: %s
    members: [p1, p2]
    mac: "%s"
%s    xmit_hash_policy: %s
bridges:
  - {name: br0, ports: [bond0, p3]}
""" % (ifs[0], ifs[1], host_if, mode, AD_MAC, "    lacp_rate: %s\n" % rate if rate else "", policy))
    lab.start(cfg)
    return ns, host


def lacp_sides_ok(lab, tp, members=(0, 1)):
    """Both sides collecting+distributing on the given links (0 = p1/b0)."""
    ours = lab.ctl("show", "lacp", "bond0")["bond0"]
    theirs = tp.lacp()
    for i in members:
        o = ours["p%d" % (i + 1)]
        if o["mux"] != "distributing" or "distributing" not in o["actor"]["state"]:
            return None
        t = theirs.get(i, {})
        if "DISTRIBUTING" not in t.get("actor", []) or "DISTRIBUTING" not in t.get("partner", []):
            return None
        if t.get("partner_mac") != AD_MAC or o["partner"]["system"] != t.get("actor_mac"):
            return None
    return ours, theirs


FLOWS = 256


def host_flows(lab, host, policy="layer3+4"):
    """FLOWS UDP flows from the host to a MAC behind the bond; returns the
    number each member must carry by the policy's formula over {p1, p2}."""
    lab.scapy(host, """
fs = [Ether(src=%r, dst=%r)/IP(src="10.99.0.%%d" %% (1 + i %% 200), dst="10.99.1.1")/
      UDP(sport=1024 + 7 * i, dport=5000)/Raw(b"x" * 18) for i in range(%d)]
sendp(fs, iface="eth0")
""" % (HOST_MAC, FAR_MAC, FLOWS))
    from scapy.all import IP, UDP, Ether, Raw, raw  # noqa: E402
    want = [0, 0]
    for i in range(FLOWS):
        f = raw(Ether(src=HOST_MAC, dst=FAR_MAC) / IP(src="10.99.0.%d" % (1 + i % 200), dst="10.99.1.1") /
                UDP(sport=1024 + 7 * i, dport=5000) / Raw(b"x" * 18))
        want[bond_hash(policy, f) % 2] += 1
    return want


def test_balance_xor_spreads_flows_by_the_formula():
    """balance-xor as a bridge port: 256 flows flooded through the bond leave
    on the member §3.4's formula names, for layer3+4 and layer2+3 (the
    counts, exactly, against the independent Python formulas)."""
    for policy in ("layer3+4", "layer2+3"):
        lab = Lab("bondx")
        try:
            _, host = ad_lab(lab, None, mode="balance-xor", policy=policy)
            st = lab.ctl("show", "port", "stats", "all")
            before = [st[p]["tx_packets"] for p in ("p1", "p2")]
            want = host_flows(lab, host, policy)
            def tx():
                s = lab.ctl("show", "port", "stats", "all")
                t = [s[p]["tx_packets"] - before[i] for i, p in enumerate(("p1", "p2"))]
                return t if sum(t) >= FLOWS else None
            got = lab.wait_until(tx, what="the flows through the bond")
            time.sleep(0.3)
            got = tx()
            print("  balance-xor %s: %d flows split p1 %d / p2 %d (formula %d / %d)"
                  % (policy, FLOWS, got[0], got[1], want[0], want[1]), flush=True)
            assert got == want and min(want) > 0, (policy, got, want)
            assert lab.ctl("show", "bond", "bond0")["bond0"]["xmit_hash_policy"] == policy
            assert lab.stop() == 0
        finally:
            lab.close()


def member_tx(lab):
    """tx_packets of p1, p2 without the LACPDUs they sent."""
    st = lab.ctl("show", "port", "stats", "all")
    ad = lab.ctl("show", "lacp", "bond0")["bond0"]
    return [st[p]["tx_packets"] - ad[p]["pdus"]["lacpdu_tx"] - ad[p]["pdus"]["marker_tx"]
            for p in ("p1", "p2")]


def lacp_interop(rate):
    lab = Lab("bondad")
    tp = None
    try:
        ns, host = ad_lab(lab, rate)
        tp = TestPmd(lab, ns, ["b0", "b1"])
        t0 = time.time()
        lab.wait_until(lambda: lacp_sides_ok(lab, tp), timeout=30, what="LACP on both links, both sides")
        print("  lacp_rate %s: both links collecting+distributing on both sides after %.1f s"
              % (rate, time.time() - t0), flush=True)
        ours = lab.ctl("show", "lacp", "bond0")["bond0"]
        want_timeout = rate == "fast"
        assert ("timeout" in ours["p1"]["actor"]["state"]) == want_timeout, ours["p1"]
        # Traffic flows on both: testpmd's flows arrive on both members ...
        st0 = lab.ctl("show", "port", "stats", "all")
        time.sleep(2)
        st1 = lab.ctl("show", "port", "stats", "all")
        for p in ("p1", "p2"):
            assert st1[p]["rx_packets"] - st0[p]["rx_packets"] > 1000, (p, st0[p], st1[p])
        # ... and ours leave on both, exactly as the formula says.
        before = member_tx(lab)
        want = host_flows(lab, host)
        got = lab.wait_until(lambda: (lambda t: t if sum(t) - sum(before) >= FLOWS else None)(member_tx(lab)),
                             what="the host's flows through the bond")
        got = [got[i] - before[i] for i in range(2)]
        print("  lacp_rate %s: %d flows split p1 %d / p2 %d (formula %d / %d)"
              % (rate, FLOWS, got[0], got[1], want[0], want[1]), flush=True)
        assert got == want, (got, want)
        # One link down: everything on the other; the partner's traffic still arrives there.
        lab.ctl("set", "link", "p1", "down")
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["usable"] == ["p2"],
                       what="p1 out of the usable members")
        before = member_tx(lab)
        host_flows(lab, host)
        got = lab.wait_until(lambda: (lambda t: t if sum(t) - sum(before) >= FLOWS else None)(member_tx(lab)),
                             what="the host's flows on p2")
        assert [got[0] - before[0], got[1] - before[1]] == [0, FLOWS], (before, got)
        st0 = lab.ctl("show", "port", "stats", "p2")
        time.sleep(1)
        st1 = lab.ctl("show", "port", "stats", "p2")
        assert st1["p2"]["rx_packets"] - st0["p2"]["rx_packets"] > 500, (st0, st1)
        assert lacp_sides_ok(lab, tp, members=(1,)), "p2 stays in the aggregate"
        # Back up: LACP converges again on both links.
        lab.ctl("set", "link", "p1", "up")
        t0 = time.time()
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["usable"] == ["p1", "p2"]
                       and lacp_sides_ok(lab, tp), timeout=40, what="LACP again on both links")
        print("  lacp_rate %s: p1 back in the aggregate %.1f s after set link up"
              % (rate, time.time() - t0), flush=True)
        p1 = lab.ctl("show", "lacp", "bond0")["bond0"]["p1"]
        assert p1["rx"] == "current", p1
        drops = lab.ctl("show", "drops")
        for p in ("p1", "p2"):
            assert "bond_slow_ring_full" not in drops.get(p, {}), drops
        tp.close()
        tp = None
        assert lab.stop() == 0
    finally:
        if tp is not None:
            tp.close()
        lab.close()


def test_lacp_interop_fast():
    lacp_interop("fast")


def test_lacp_interop_slow():
    lacp_interop("slow")


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("SKIP: needs root (network namespaces)")
        sys.exit(0)
    r = Runner()
    tests = [test_captures_show_the_table_of_3_8, test_active_backup_failover_with_set_link,
             test_arp_monitor_failover_with_the_link_broken_at_the_peer,
             test_balance_xor_spreads_flows_by_the_formula,
             test_balance_alb_rlb_spreads_clients_and_moves_them_on_failure,
             test_balance_tlb_spreads_tx_and_fails_over]
    if os.access(TESTPMD, os.X_OK):
        tests += [test_lacp_interop_fast, test_lacp_interop_slow]
    else:
        print("SKIP 802.3ad interop: %s not found (Debian package dpdk)" % TESTPMD)
    if sys.argv[1:]:  # only the tests named (substrings)
        tests = [t for t in tests if any(a in t.__name__ for a in sys.argv[1:])]
    for t in tests:
        r.run(t)
    r.finish()
