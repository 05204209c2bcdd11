#!/usr/bin/python3
"""End-to-end live reload: hosts A and B ping each other every 10 ms across
sluiced's bridge br0 while `sluicectl reload` adds a bridge port (host C on
p3), a route and a hook list, then removes them again: not one echo is
lost, the FDB and counters stay, C is reachable once its port is in. A bad
file changes nothing and returns the loader's FILE:LINE:COL error; SIGHUP
re-reads the start file as `reload` does; a change that needs a restart is
refused with the reason. A port is hot-plugged into the bridge and
unplugged again under the same ping; one that does not probe is refused."""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import SLUICED, Lab, Runner  # noqa: E402
from test_bond import Switch  # noqa: E402  (a kernel bridge over two veths: the bond's peer)

MACS = {"p1": "02:00:00:00:08:01", "p2": "02:00:00:00:08:02", "p3": "02:00:00:00:08:03",
        "a": "02:00:00:00:08:0a", "b": "02:00:00:00:08:0b", "c": "02:00:00:00:08:0c"}

BASE = """ports:
  - {name: p1, device: "net_af_packet0,iface=%(if_a)s", mac: "%(p1)s"}
  - {name: p2, device: "net_af_packet1,iface=%(if_b)s", mac: "%(p2)s"}
  - {name: p3, device: "net_af_packet2,iface=%(if_c)s", mac: "%(p3)s"}
bridges:
  - {name: br0, ports: [%(ports)s]}
addresses:
  - {dev: br0, address: 10.0.0.1/24}
"""

ROUTE = """routes:
  - {prefix: 10.9.0.0/24, via: 10.0.0.3}
"""

HOOK = """hooks:
  - point: bridge/forward
    priority: filter_bridged
    name: count-icmp
    rules:
      - match: {proto: icmp}
        verdict: accept
        counter: true
"""


def lab_up(lab):
    a, if_a = lab.host("a", addr="10.0.0.2/24", mac=MACS["a"])
    b, if_b = lab.host("b", addr="10.0.0.3/24", mac=MACS["b"])
    c, if_c = lab.host("c", addr="10.0.0.4/24", mac=MACS["c"])
    v = dict(MACS, if_a=if_a, if_b=if_b, if_c=if_c)

    def text(ports="p1, p2", extra=""):
        return BASE % dict(v, ports=ports) + extra

    cfg = lab.config(text(), memory_mb=512)  # room for a capture pool beside a hot-added port
    lab.start(cfg)
    return a, b, c, cfg, text


def rewrite(cfg, body):
    """Replaces the topology part of the file (the lab's eal/control header stays)."""
    head = open(cfg).read().split("ports:\n")[0]
    with open(cfg, "w") as f:
        f.write(head + body)


def start_ping(lab, ns, dst, seconds):
    """A 10 ms ping for about `seconds` (a count, so the last replies are waited for)."""
    return subprocess.Popen(["ip", "netns", "exec", ns, "ping", "-i", "0.01", "-c", str(seconds * 60),
                             "-W", "2", dst], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def ping_result(p):
    out, _ = p.communicate(timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, out
    seqs = {int(x) for x in re.findall(r"icmp_seq=(\d+)", out)}
    lost = sorted(set(range(1, int(m.group(1)) + 1)) - seqs)
    return int(m.group(1)), int(m.group(2)), "lost icmp_seq %s\n%s" % (lost, out[-500:])


def test_reload_under_ping():
    lab = Lab("rld")
    try:
        a, b, c, cfg, text = lab_up(lab)
        lab.ns_exec(a, "ping -c 2 -W 1 10.0.0.3")  # resolve, learn
        fdb_before = {e["mac"] for e in lab.ctl("show", "fdb", "br0")}
        assert MACS["a"] in fdb_before and MACS["b"] in fdb_before, fdb_before
        # C is not bridged yet: nothing reaches it.
        assert lab.ns_exec(c, "ping -c 1 -W 1 10.0.0.2", check=False).returncode != 0

        ping = start_ping(lab, a, "10.0.0.3", 6)
        time.sleep(1)
        rewrite(cfg, text("p1, p2, p3", ROUTE + HOOK))
        r = lab.ctl("reload")
        assert set(r["changed"]) == {"bridges", "routes", "hooks"}, r
        assert r["paused_us"] < 100000, r
        time.sleep(1.5)
        hooks = lab.ctl("show", "hooks")["bridge/forward"]
        assert hooks[0]["name"] == "count-icmp" and hooks[0]["rules"][0]["hits"] > 50, hooks
        routes = [x["prefix"] for x in lab.ctl("show", "routes")]
        assert "10.9.0.0/24" in routes, routes
        # Back to the start file: port, route and hook list leave again.
        rewrite(cfg, text())
        r = lab.ctl("reload")
        assert set(r["changed"]) == {"bridges", "routes", "hooks"}, r
        sent, got, out = ping_result(ping)
        assert sent > 300 and got == sent, out  # zero loss on the unchanged path
        assert "10.9.0.0/24" not in [x["prefix"] for x in lab.ctl("show", "routes")]
        assert lab.ctl("show", "hooks").get("bridge/forward", []) == []
        # State that did not change stayed: the FDB kept A and B, counters grew.
        fdb = {e["mac"] for e in lab.ctl("show", "fdb", "br0")}
        assert MACS["a"] in fdb and MACS["b"] in fdb, fdb
        st = lab.ctl("show", "port", "stats", "p1")["p1"]
        assert st["rx_packets"] >= sent, st

        # p3 in again, alone: C reaches A through it.
        rewrite(cfg, text("p1, p2, p3"))
        lab.ctl("reload")
        assert "p3" in lab.ctl("show", "bridge", "br0")["ports"]
        assert lab.ctl("show", "devices")["p3"]["master"] == "br0"
        lab.ns_exec(c, "ping -c 3 -i 0.1 -W 1 10.0.0.2")
        assert lab.stop() == 0
    finally:
        lab.close()


def test_bad_file_and_refusals_change_nothing():
    lab = Lab("rlb")
    try:
        a, b, c, cfg, text = lab_up(lab)
        ping = start_ping(lab, a, "10.0.0.3", 3)
        good = open(cfg).read()
        with open(cfg, "w") as f:
            f.write(good.replace("bridges:", "bridgez:"))
        r = lab.ctl_raw("reload")
        assert r.returncode == 1, r
        assert re.search(re.escape(cfg) + r":\d+:\d+: .*bridgez", r.stderr), r.stderr
        # The same error as sluiced --check gives at start
        chk = subprocess.run([SLUICED, "--check", "-c", cfg], capture_output=True, text=True)
        assert chk.returncode == 2 and chk.stderr.strip() == r.stderr.strip(), (chk.stderr, r.stderr)
        # A change that needs a restart: refused, with the reason
        with open(cfg, "w") as f:
            f.write(re.sub(r"memory_mb: \d+", "memory_mb: 300", good))
        r = lab.ctl_raw("reload")
        assert r.returncode == 1 and "'eal'" in r.stderr and "restart" in r.stderr, r.stderr
        with open(cfg, "w") as f:
            f.write(good.replace('mac: "%s"}' % MACS["p3"], 'mac: "02:00:00:00:08:33"}'))
        r = lab.ctl_raw("reload")
        assert r.returncode == 1 and "'ports'" in r.stderr, r.stderr
        # A bridge port that is a bridge: the check says where, nothing changed
        rewrite(cfg, text("p1, p2, br0"))
        r = lab.ctl_raw("reload")
        assert r.returncode == 1 and "br0" in r.stderr, r.stderr
        sent, got, out = ping_result(ping)
        assert got == sent, out
        assert sorted(lab.ctl("show", "bridge", "br0")["ports"]) == ["p1", "p2"]
        assert lab.stop() == 0
    finally:
        lab.close()


MIRRORS = """mirrors:
%s"""
M0 = """  - name: m0
    source: {dev: p1, direction: ingress}
    filter: "icmp"
    to: {dev: lo}
"""
M1 = """  - name: m1
    source: {dev: p2, direction: egress}
    filter: "%s"
    to: {dev: lo}
"""


def test_mirrors_added_kept_changed_removed():
    lab = Lab("rlm")
    try:
        a, b, c, cfg, text = lab_up(lab)
        rewrite(cfg, text("p1, p2", MIRRORS % M0))
        r = lab.ctl("reload")
        assert r["changed"] == ["mirrors"], r
        lab.ns_exec(a, "ping -c 3 -i 0.1 -W 1 10.0.0.3")
        m = lab.ctl("show", "mirrors")
        assert list(m) == ["m0"] and m["m0"]["hits"] == 3 and m["m0"]["copies"] == 3, m
        # m0 unchanged (kept, with its counters), m1 added, under a 10 ms ping.
        ping = start_ping(lab, a, "10.0.0.3", 3)
        time.sleep(0.5)
        rewrite(cfg, text("p1, p2", MIRRORS % (M0 + M1 % "icmp")))
        r = lab.ctl("reload")
        assert r["changed"] == ["mirrors"], r
        sent, got, out = ping_result(ping)
        assert got == sent, out  # the mirrored path lost nothing
        m = lab.ctl("show", "mirrors")
        assert sorted(m) == ["m0", "m1"], m
        assert m["m0"]["hits"] >= 3 + sent, m  # kept: counted from the start
        assert 0 < m["m1"]["hits"] <= sent, m  # new: only what came after the reload
        # m0 removed, m1 changed (new filter: rebuilt, its counters start again).
        rewrite(cfg, text("p1, p2", MIRRORS % (M1 % "icmp[icmptype] = icmp-echo")))
        lab.ctl("reload")
        m = lab.ctl("show", "mirrors")
        assert list(m) == ["m1"] and m["m1"]["hits"] == 0, m
        assert m["m1"]["filter"] == "icmp[icmptype] = icmp-echo", m
        lab.ns_exec(a, "ping -c 2 -i 0.1 -W 1 10.0.0.3")  # requests pass p2's egress
        m = lab.ctl("show", "mirrors")
        assert m["m1"]["hits"] == 2, m
        # All gone.
        rewrite(cfg, text("p1, p2"))
        lab.ctl("reload")
        assert lab.ctl("show", "mirrors") == {}
        lab.ns_exec(a, "ping -c 2 -i 0.1 -W 1 10.0.0.3")
        assert lab.stop() == 0
    finally:
        lab.close()


def test_sighup_reloads_the_start_file():
    lab = Lab("rlh")
    try:
        a, b, c, cfg, text = lab_up(lab)
        rewrite(cfg, text("p1, p2, p3", ROUTE))
        lab.proc.send_signal(signal.SIGHUP)
        lab.wait_until(lambda: "p3" in lab.ctl("show", "bridge", "br0")["ports"], what="p3 bridged")
        assert "10.9.0.0/24" in [x["prefix"] for x in lab.ctl("show", "routes")]
        # A bad file on SIGHUP: logged, the daemon runs on unchanged
        with open(cfg, "a") as f:
            f.write("nonsense: [\n")
        lab.proc.send_signal(signal.SIGHUP)
        lab.wait_until(lambda: "reload failed" in lab.read_log(), what="the failure logged")
        assert re.search(re.escape(cfg) + r":\d+:\d+: ", lab.read_log().split("reload failed")[1])
        assert lab.proc.poll() is None
        lab.ns_exec(c, "ping -c 2 -i 0.1 -W 1 10.0.0.2")
        assert lab.stop() == 0
    finally:
        lab.close()


# ---- bridges, bonds, VLANs added and removed (the ports stay) -----------------------------------

MACS4 = {"p1": "02:00:00:00:09:01", "p2": "02:00:00:00:09:02", "p3": "02:00:00:00:09:03",
         "p4": "02:00:00:00:09:04"}

PORTS4 = """ports:
  - {name: p1, device: "net_af_packet0,iface=%(if_a)s", mac: "%(p1)s"}
  - {name: p2, device: "net_af_packet1,iface=%(if_b)s", mac: "%(p2)s"}
  - {name: p3, device: "net_af_packet2,iface=%(if_c)s", mac: "%(p3)s"}
  - {name: p4, device: "net_af_packet3,iface=%(if_d)s", mac: "%(p4)s"}
"""

BR0 = """bridges:
  - {name: br0, ports: [p1, p2]%s}
"""
BR1 = """  - {name: br1, ports: [p3, p4]}
"""


def test_bridge_added_and_removed_under_ping():
    """br1 over p3, p4 is added while A pings B across br0 every 10 ms (no
    loss), C then reaches D through it; br0's setting change (ageing_s)
    applies in place; removing br1 gives p3 and p4 back as plain ports."""
    lab = Lab("rbr")
    try:
        a, if_a = lab.host("a", addr="10.0.0.2/24")
        b, if_b = lab.host("b", addr="10.0.0.3/24")
        c, if_c = lab.host("c", addr="10.0.5.2/24")
        d, if_d = lab.host("d", addr="10.0.5.3/24")
        ports = PORTS4 % dict(MACS4, if_a=if_a, if_b=if_b, if_c=if_c, if_d=if_d)
        cfg = lab.config(ports + BR0 % "")
        lab.start(cfg)
        lab.ns_exec(a, "ping -c 2 -W 1 10.0.0.3")
        assert lab.ns_exec(c, "ping -c 1 -W 1 10.0.5.3", check=False).returncode != 0
        fdb_before = {e["mac"] for e in lab.ctl("show", "fdb", "br0")}

        ping = start_ping(lab, a, "10.0.0.3", 5)
        time.sleep(1)
        rewrite(cfg, ports + BR0 % ", ageing_s: 120" + BR1)
        r = lab.ctl("reload")
        assert r["changed"] == ["bridges"], r
        br1 = lab.ctl("show", "bridge", "br1")
        assert sorted(br1["ports"]) == ["p3", "p4"], br1
        devs = lab.ctl("show", "devices")
        assert devs["br1"]["kind"] == "bridge", devs["br1"]
        assert devs["p3"]["master"] == "br1" and devs["p3"]["rx_handler"] == "bridge", devs["p3"]
        lab.ns_exec(c, "ping -c 3 -i 0.1 -W 1 10.0.5.3")  # through the new bridge
        assert lab.ctl("show", "bridge", "br0")["ageing_s"] == 120
        sent, got, out = ping_result(ping)
        assert sent > 250 and got == sent, out  # zero loss on the unchanged bridge
        fdb = {e["mac"] for e in lab.ctl("show", "fdb", "br0")}
        assert fdb_before <= fdb, (fdb_before, fdb)  # br0 kept its FDB
        fdb1 = {e["mac"] for e in lab.ctl("show", "fdb", "br1")}
        assert MACS4["p3"] in fdb1, fdb1

        # A setting that cannot change in place: refused with the reason, nothing changed.
        rewrite(cfg, ports + BR0 % ", ageing_s: 120, max_fdb_entries: 100" + BR1)
        r = lab.ctl_raw("reload")
        assert r.returncode == 1 and "max_fdb_entries" in r.stderr and "restart" in r.stderr, r.stderr

        # br1 goes: p3 and p4 are plain ports again, C no longer reaches D.
        ping = start_ping(lab, a, "10.0.0.3", 3)
        time.sleep(0.5)
        rewrite(cfg, ports + BR0 % ", ageing_s: 120")
        r = lab.ctl("reload")
        assert r["changed"] == ["bridges"], r
        devs = lab.ctl("show", "devices")
        assert "br1" not in devs, devs.keys()
        for p in ("p3", "p4"):
            assert devs[p]["master"] is None and devs[p]["rx_handler"] is None, devs[p]
        assert lab.ctl_raw("show", "bridge", "br1").returncode != 0
        assert lab.ns_exec(c, "ping -c 2 -i 0.2 -W 1 10.0.5.3", check=False).returncode != 0
        sent, got, out = ping_result(ping)
        assert got == sent, out
        # And back: a new br1 works as the first did.
        rewrite(cfg, ports + BR0 % ", ageing_s: 120" + BR1)
        lab.ctl("reload")
        lab.ns_exec(c, "ping -c 3 -i 0.1 -W 1 10.0.5.3")
        assert lab.stop() == 0
    finally:
        lab.close()


BOND_PORTS = """ports:
  - {name: p1, device: "net_af_packet0,iface=%(sw0)s", mac: "02:00:00:00:0b:01"}
  - {name: p2, device: "net_af_packet1,iface=%(sw1)s", mac: "02:00:00:00:0b:02"}
  - {name: p3, device: "net_af_packet2,iface=%(if_a)s", mac: "02:00:00:00:0b:03"}
"""
BOND0 = """bonds:
  - name: bond0
    mode: active-backup
    members: [p1, p2]
    miimon_ms: 100
"""


def test_bond_added_and_removed():
    """bond0 (active-backup over p1, p2, whose peer is a kernel bridge) is
    added with an address while host A pings p3 every 10 ms (no loss); the
    switch host pings the bond; removing it gives p1 and p2 their own MACs
    and rx_handler slots back."""
    lab = Lab("rbo")
    try:
        sw = Switch(lab)
        a, if_a = lab.host("a", addr="10.0.0.2/24")
        ports = BOND_PORTS % dict(sw0=sw.ifs[0], sw1=sw.ifs[1], if_a=if_a)
        addr = "addresses:\n  - {dev: p3, address: 10.0.0.1/24}\n"
        cfg = lab.config(ports + addr)
        lab.start(cfg)
        lab.ns_exec(a, "ping -c 2 -W 1 10.0.0.1")
        ping = start_ping(lab, a, "10.0.0.1", 4)
        time.sleep(0.5)
        rewrite(cfg, ports + BOND0 + addr + "  - {dev: bond0, address: 10.77.0.1/24}\n")
        r = lab.ctl("reload")
        assert sorted(r["changed"]) == ["addresses", "bonds"], r
        lab.wait_until(lambda: lab.ctl("show", "bond", "bond0")["bond0"]["active"] == "p1",
                       what="p1 active")
        devs = lab.ctl("show", "devices")
        assert devs["bond0"]["kind"] == "bond", devs["bond0"]
        assert devs["p1"]["master"] == "bond0" and devs["p1"]["rx_handler"] == "bond", devs["p1"]
        assert devs["p2"]["mac"] == devs["bond0"]["mac"] == "02:00:00:00:0b:01", devs
        sw.ex("ping -c 3 -i 0.1 -W 1 10.77.0.1")  # through the new bond
        sent, got, out = ping_result(ping)
        assert sent > 200 and got == sent, out

        # A bond changed in place: refused with the reason.
        rewrite(cfg, ports + BOND0.replace("miimon_ms: 100", "miimon_ms: 50") + addr +
                "  - {dev: bond0, address: 10.77.0.1/24}\n")
        r = lab.ctl_raw("reload")
        assert r.returncode == 1 and "bond 'bond0' changed" in r.stderr, r.stderr

        ping = start_ping(lab, a, "10.0.0.1", 3)
        time.sleep(0.5)
        rewrite(cfg, ports + addr)
        r = lab.ctl("reload")
        assert sorted(r["changed"]) == ["addresses", "bonds"], r
        devs = lab.ctl("show", "devices")
        assert "bond0" not in devs, devs.keys()
        assert devs["p1"]["master"] is None and devs["p1"]["rx_handler"] is None, devs["p1"]
        assert devs["p2"]["mac"] == "02:00:00:00:0b:02", devs["p2"]  # its own MAC back
        assert "10.77.0.0/24" not in [x["prefix"] for x in lab.ctl("show", "routes")]
        assert sw.ex("ping -c 2 -i 0.2 -W 1 10.77.0.1", check=False).returncode != 0
        sent, got, out = ping_result(ping)
        assert got == sent, out
        assert lab.stop() == 0
    finally:
        lab.close()


VLAN_PORTS = """ports:
  - {name: p1, device: "net_af_packet0,iface=%(if_a)s", mac: "02:00:00:00:0a:01"}
  - {name: p2, device: "net_af_packet1,iface=%(if_b)s"}
"""
V10 = """vlans:
  - {name: p1.10, link: p1, id: 10}
"""


def vlan10_arp(lab, ns):
    """A tagged ARP request for 10.0.10.1 on VLAN 10 (this kernel has no 8021q
    module: scapy speaks VLAN); whether a tagged reply came back."""
    r = lab.scapy(ns, '''
a = ARP(pdst="10.0.10.1", psrc="10.0.10.2", hwsrc="02:00:00:00:0a:0a")
r = srp1(Ether(src="02:00:00:00:0a:0a", dst="ff:ff:ff:ff:ff:ff")/Dot1Q(vlan=10)/a, iface="eth0",
         timeout=2)
print("reply", r is not None and r.haslayer(ARP) and r[ARP].op == 2 and r.haslayer(Dot1Q))
''')
    return "reply True" in r.stdout


def test_vlan_and_its_address_removed():
    """Host A talks to sluice on VLAN 10 of p1, host B on p2 (pinging every
    10 ms); removing the VLAN and its address takes the device, its
    connected route and its neighbour away while B loses nothing; adding
    them back works again."""
    lab = Lab("rvl")
    try:
        a, if_a = lab.host("a", mac="02:00:00:00:0a:0a")
        b, if_b = lab.host("b", addr="10.0.2.2/24")
        ports = VLAN_PORTS % dict(if_a=if_a, if_b=if_b)
        addrs = "addresses:\n  - {dev: p2, address: 10.0.2.1/24}\n"
        with_vlan = ports + V10 + addrs + "  - {dev: p1.10, address: 10.0.10.1/24}\n"
        cfg = lab.config(with_vlan)
        lab.start(cfg)
        assert vlan10_arp(lab, a)
        lab.ns_exec(b, "ping -c 2 -W 1 10.0.2.1")
        assert "10.0.10.0/24" in [x["prefix"] for x in lab.ctl("show", "routes")]
        neigh = lab.ctl("show", "neigh")
        assert any(n["address"] == "10.0.10.2" and n["dev"] == "p1.10" for n in neigh), neigh

        ping = start_ping(lab, b, "10.0.2.1", 4)
        time.sleep(1)
        rewrite(cfg, ports + addrs)
        r = lab.ctl("reload")
        assert sorted(r["changed"]) == ["addresses", "vlans"], r
        devs = lab.ctl("show", "devices")
        assert "p1.10" not in devs, devs.keys()
        routes = [x["prefix"] for x in lab.ctl("show", "routes")]
        assert "10.0.10.0/24" not in routes and "10.0.2.0/24" in routes, routes
        assert not any(n["address"] == "10.0.10.2" for n in lab.ctl("show", "neigh"))
        assert not vlan10_arp(lab, a)
        sent, got, out = ping_result(ping)
        assert sent > 200 and got == sent, out  # the other path lost nothing

        rewrite(cfg, with_vlan)
        r = lab.ctl("reload")
        assert sorted(r["changed"]) == ["addresses", "vlans"], r
        assert vlan10_arp(lab, a)
        assert lab.ctl("show", "devices")["p1.10"]["kind"] == "vlan"
        assert lab.stop() == 0
    finally:
        lab.close()


P4 = """  - {name: p4, device: "%s", mac: "02:00:00:00:08:04"}
"""


def test_ports_added_and_removed():
    """A port is hot-plugged into the running bridge under a 10 ms ping on
    the unchanged path (A to B), carries D's ping, and is unplugged again:
    gone from show devices, no echo lost on the unchanged path. A port that
    does not probe is refused with the PMD's reason and changes nothing."""
    lab = Lab("rlp")
    try:
        a, b, c, cfg, text = lab_up(lab)
        d, if_d = lab.host("d", addr="10.0.0.5/24", mac="02:00:00:00:08:0d")

        def with_p4(ports, device="net_af_packet3,iface=%s" % if_d):
            body = text(ports)
            return body.replace("bridges:", P4 % device + "bridges:")

        lab.ns_exec(a, "ping -c 2 -W 1 10.0.0.3")
        devs_before = set(lab.ctl("show", "devices"))
        assert "p4" not in devs_before, devs_before
        p1_before = lab.ctl("show", "port", "stats", "p1")["p1"]["rx_packets"]

        ping = start_ping(lab, a, "10.0.0.3", 3)
        time.sleep(1)
        rewrite(cfg, with_p4("p1, p2, p4"))
        r = lab.ctl("reload")
        assert set(r["changed"]) == {"ports", "bridges"}, r
        assert r["paused_us"] < 100000, r
        devs = lab.ctl("show", "devices")
        assert "p4" in devs and devs["p4"]["master"] == "br0", devs.get("p4")
        assert "p4" in lab.ctl("show", "bridge", "br0")["ports"]
        # D, on the new port, reaches A across the bridge.
        lab.ns_exec(d, "ping -c 3 -i 0.1 -W 1 10.0.0.2")
        st4 = lab.ctl("show", "port", "stats", "p4")["p4"]
        assert st4["rx_packets"] >= 3 and st4["tx_packets"] >= 3, st4
        # A capture on the new port: the port's removal ends it, file closed.
        cap = os.path.join(lab.tmp, "p4.pcapng")
        lab.ctl("capture", "start", "p4", "both", "file", cap)
        lab.ns_exec(d, "ping -c 2 -i 0.1 -W 1 10.0.0.2")
        caps = [c for c in lab.ctl("show", "captures") if c["dev"] == "p4"]
        assert len(caps) == 1 and caps[0]["running"] and caps[0]["accepted"] >= 4, caps
        sent1, got, out = ping_result(ping)
        # Zero loss: the frames the new port's socket took from every
        # interface before it was bound (A's, B's) are dropped before it is
        # polled, so the bridge does not learn A and B on p4.
        assert sent1 > 150 and got == sent1, out
        fdb = {e["mac"]: e for e in lab.ctl("show", "fdb", "br0")}
        assert fdb[MACS["a"]]["port"] == "p1" and fdb[MACS["b"]]["port"] == "p2", fdb

        # Unplugged again: bridge and ports back to the start file.
        ping = start_ping(lab, a, "10.0.0.3", 3)
        time.sleep(1)
        rewrite(cfg, text())
        r = lab.ctl("reload")
        assert set(r["changed"]) == {"ports", "bridges"}, r
        devs = lab.ctl("show", "devices")
        assert "p4" not in devs, sorted(devs)
        assert set(devs) == devs_before, (sorted(devs), sorted(devs_before))
        assert sorted(lab.ctl("show", "bridge", "br0")["ports"]) == ["p1", "p2"]
        caps = [c for c in lab.ctl("show", "captures") if c["dev"] == "p4"]
        assert not any(c["running"] for c in caps), caps  # stopped (or already forgotten)
        assert os.path.getsize(cap) > 0
        assert lab.ns_exec(d, "ping -c 1 -W 1 10.0.0.2", check=False).returncode != 0
        sent, got, out = ping_result(ping)
        assert sent > 150 and got == sent, out  # zero loss on the unchanged path
        # The unchanged port's counters went on.
        assert lab.ctl("show", "port", "stats", "p1")["p1"]["rx_packets"] >= p1_before + sent1 + sent - 1

        # Ports that do not probe: refused with the reason, nothing changed.
        ping = start_ping(lab, a, "10.0.0.3", 2)
        for bad, why in (("net_bogus0", "probe"), ("net_af_packet3,iface=sl-nosuch0", "probe")):
            rewrite(cfg, with_p4("p1, p2, p4", bad))
            r = lab.ctl_raw("reload")
            assert r.returncode == 1, r
            assert "port 'p4'" in r.stderr and why in r.stderr, r.stderr
            assert "nothing was changed" in r.stderr, r.stderr
            assert set(lab.ctl("show", "devices")) == devs_before
            assert sorted(lab.ctl("show", "bridge", "br0")["ports"]) == ["p1", "p2"]
        # A changed port is refused with the setting named.
        rewrite(cfg, text().replace("{name: p3,", "{name: p3, rx_desc: 512,"))
        r = lab.ctl_raw("reload")
        assert r.returncode == 1 and "port 'p3' changed (rx_desc)" in r.stderr, r.stderr
        sent, got, out = ping_result(ping)
        assert got == sent, out

        # The same port again, under its name: it comes back and works.
        rewrite(cfg, with_p4("p1, p2, p4"))
        lab.ctl("reload")
        lab.ns_exec(d, "ping -c 2 -i 0.1 -W 1 10.0.0.2")
        assert lab.stop() == 0
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_reload_under_ping, test_bad_file_and_refusals_change_nothing,
              test_mirrors_added_kept_changed_removed, test_sighup_reloads_the_start_file,
              test_bridge_added_and_removed_under_ping, test_bond_added_and_removed,
              test_vlan_and_its_address_removed, test_ports_added_and_removed):
        r.run(t)
    r.finish()
