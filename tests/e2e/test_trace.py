#!/usr/bin/python3
"""End-to-end packet trace and per-stage runtime (issue 15), with kernel
peers in namespaces on net_af_packet ports. `trace add N [DEV] [FILTER]`
marks live packets; `show trace` must tell each one's path and fate exactly:

* a bridged frame: rx_handler of the port (bridge), FDB hit to the egress
  port, br_forward, dev_queue_xmit, `sent p2`;
* a flooded frame (unknown unicast on a 3-port bridge): one entry per copy,
  the copy naming its parent, fates `sent p2` and `sent p3`;
* a routed one: ip_rcv, ip_route_input (forward), the FIB's route and
  device, the neighbour, `sent p2`;
* a hook-dropped one: the rule, the NF_DROP of entry block-9091 at
  ipv4/forward, fate `dropped: netfilter_drop` at ipv4/forward;
* a packet for sluice itself (ping of its address): `delivered`, and its
  echo reply traced as its copy with `sent p1`;
* an IPv6 one: ipv6_rcv, fib6_lookup, `sent p2`.
Text and JSON, `show trace summary` grouping, `clear trace`, and `show
runtime` listing the stages these paths went through with their counts."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, Runner  # noqa: E402

P1_MAC = "02:00:00:00:07:01"
P2_MAC = "02:00:00:00:07:02"
A_MAC = "02:00:00:00:0a:07"
B_MAC = "02:00:00:00:0b:07"
C_MAC = "02:00:00:00:0c:07"

HOOKS = """hooks:
  - point: ipv4/forward
    priority: filter
    name: block-9091
    rules:
      - match: {proto: tcp, dst_port: 9091}
        verdict: drop
        counter: true
"""


def steps(pkt):
    return [(s["stage"], s["dev"], s["decision"]) for s in pkt["path"]]


def find_step(pkt, stage, decision=None):
    for s in pkt["path"]:
        if s["stage"] == stage and (decision is None or s["decision"] == decision):
            return s
    raise AssertionError("no step %s/%s in %s" % (stage, decision, steps(pkt)))


def traced(lab, n, timeout=10):
    return lab.wait_until(lambda: (lambda t: t if len(t) >= n and all(p["fate"] != "in flight" for p in t)
                                   else None)(lab.ctl("show", "trace")),
                          timeout=timeout, what="%d traced packets with a fate" % n)


def bridge_lab(lab, ports=2):
    hosts = [("a", "10.0.0.1/24", A_MAC), ("b", "10.0.0.2/24", B_MAC), ("c", "10.0.0.3/24", C_MAC)][:ports]
    ns, ifs = {}, {}
    for short, addr, mac in hosts:
        ns[short], ifs[short] = lab.host(short, addr=addr, mac=mac)
    body = "ports:\n"
    names = []
    for i, (short, _, _) in enumerate(hosts):
        body += '  - {name: p%d, device: "net_af_packet%d,iface=%s", mac: "02:00:00:00:07:1%d"}\n' % (
            i + 1, i, ifs[short], i + 1)
        names.append("p%d" % (i + 1))
    body += "bridges:\n  - name: br0\n    ports: [%s]\n" % ", ".join(names)
    lab.start(lab.config(body))
    return ns


def test_bridged_frame():
    lab = Lab("trbr")
    try:
        ns = bridge_lab(lab)
        # Learn both MACs first, so the traced frame is an FDB hit.
        r = lab.ns_exec(ns["a"], "ping -c 2 -i 0.2 -W 2 10.0.0.2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        lab.ctl("trace", "add", "1", "p1", "icmp")
        r = lab.ns_exec(ns["a"], "ping -c 1 -W 2 10.0.0.2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        t = traced(lab, 1)
        assert len(t) == 1, t  # exactly the one packet asked for
        p = t[0]
        assert p["packet"] == 1 and p["dev"] == "p1" and p["parent"] is None, p
        assert "10.0.0.1 > 10.0.0.2" in p["summary"] and "ICMP echo request" in p["summary"], p
        s = steps(p)
        assert s[0] == ("netif_receive_skb", "p1", "round"), s
        assert ("rx_handler", "p1", "bridge") in s, s
        hit = find_step(p, "br_handle_frame_finish", "fdb hit")
        assert hit["dev"] == "br0" and hit["to"] == "p2", hit
        assert find_step(p, "br_forward")["to"] == "p2"
        assert ("dev_queue_xmit", "p2", "xmit") in s, s
        assert s.index(("rx_handler", "p1", "bridge")) < s.index(("dev_queue_xmit", "p2", "xmit")), s
        assert p["fate"] == "sent p2" and p["fate_kind"] == "sent", p
        # To B's MAC: OTHERHOST on the port (the bridge forwards it, nobody re-classifies it).
        assert find_step(p, "netif_receive_skb")["pkt_type"] == "otherhost"
        assert find_step(p, "netif_receive_skb")["protocol"] == "0x0800"
        # The text tells the same path and fate.
        text = lab.ctl_raw("show", "trace").stdout
        assert "Packet 1" in text and "fdb hit" in text and "fate: sent p2" in text, text
        # Only one packet was asked for: more pings trace nothing more.
        lab.ns_exec(ns["a"], "ping -c 2 -i 0.2 -W 2 10.0.0.2", check=False)
        assert len(lab.ctl("show", "trace")) == 1
        # Runtime: the stages of this path ran, with packets counted.
        rt = {x["stage"]: x for x in lab.ctl("show", "runtime")}
        for st in ("port-rx", "eth-type-trans", "netif-receive", "rx_handler/bridge", "bridge-input",
                   "bridge-forward", "dev-queue-xmit", "port-xmit", "port-tx"):
            assert rt[st]["calls"] > 0 and rt[st]["packets"] > 0, (st, rt.get(st))
        assert rt["bridge-input"]["packets"] >= 5, rt["bridge-input"]
        text = lab.ctl_raw("show", "runtime").stdout
        assert "rx_handler/bridge" in text and "CYCLES/PKT" in text, text
        lab.ctl("clear", "runtime")
        rt = {x["stage"]: x for x in lab.ctl("show", "runtime")}
        assert rt["bridge-input"]["packets"] == 0, rt["bridge-input"]
        lab.ctl("clear", "trace")
        assert lab.ctl("show", "trace") == []
        assert lab.stop() == 0
    finally:
        lab.close()


def test_flooded_frame():
    lab = Lab("trfl")
    try:
        ns = bridge_lab(lab, ports=3)
        lab.ctl("trace", "add", "1", "p1", "ether", "dst", "02:00:00:00:99:99")
        lab.scapy(ns["a"], 'sendp(Ether(src="%s", dst="02:00:00:00:99:99")/IP(src="10.0.0.1", '
                           'dst="10.0.0.9")/UDP(sport=1000, dport=2000), iface="eth0")' % A_MAC)
        t = traced(lab, 2)
        assert len(t) == 2, t
        parent = [p for p in t if p["parent"] is None]
        copies = [p for p in t if p["parent"] is not None]
        assert len(parent) == 1 and len(copies) == 1, t
        assert copies[0]["parent"] == parent[0]["packet"], t
        assert sorted(p["fate"] for p in t) == ["sent p2", "sent p3"], [p["fate"] for p in t]
        for p in t:
            fl = find_step(p, "br_flood", "flood (unknown unicast)")
            assert fl["dev"] == "br0", fl
            assert ("br_handle_frame_finish", "br0", "fdb miss") in steps(p), steps(p)
        # The copy's path starts with its parent's.
        n = steps(parent[0]).index(("br_handle_frame_finish", "br0", "fdb miss"))
        assert steps(copies[0])[:n + 1] == steps(parent[0])[:n + 1]
        summ = lab.ctl("show", "trace", "summary")
        assert sum(g["count"] for g in summ) == 2 and len(summ) == 2, summ
        assert lab.stop() == 0
    finally:
        lab.close()


def test_routed_dropped_and_local():
    lab = Lab("trrt")
    try:
        a, b, _ = lab.router((P1_MAC, P2_MAC, A_MAC, B_MAC), HOOKS)
        r = lab.ns_exec(a, "ping -c 2 -i 0.2 -W 2 10.0.2.2", check=False)  # neighbours resolved
        assert r.returncode == 0, r.stdout + r.stderr
        # A routed packet.
        lab.ctl("trace", "add", "1", "p1", "icmp and dst host 10.0.2.2")
        r = lab.ns_exec(a, "ping -c 1 -W 2 10.0.2.2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        p = traced(lab, 1)[0]
        s = steps(p)
        assert ("deliver_skb", "p1", "ip_rcv") in s, s
        assert ("ip_route_input", "p1", "not local: forward") in s, s
        rt = find_step(p, "fib_lookup", "route")
        assert rt["to"] == "p2" and rt["detail"] == "directly connected", rt
        assert find_step(p, "ipv4/forward")["decision"] == "NF_ACCEPT"
        nb = find_step(p, "neigh_output", "neighbour valid")
        assert nb["dev"] == "p2" and B_MAC in nb["detail"], nb
        assert p["fate"] == "sent p2", p
        lab.ctl("clear", "trace")

        # A hook-dropped one: the SYN to 9091.
        lab.ctl("trace", "add", "1", "p1", "tcp", "port", "9091")
        lab.scapy(a, 'sendp(Ether(dst="%s", src="%s")/IP(src="10.0.1.2", dst="10.0.2.2")/'
                     'TCP(sport=40000, dport=9091, flags="S"), iface="eth0")' % (P1_MAC, A_MAC))
        p = traced(lab, 1)[0]
        assert p["fate"] == "dropped: netfilter_drop", p
        assert p["reason"] == "netfilter_drop" and p["fate_stage"] == "ipv4/forward", p
        assert "block-9091" in p["fate_detail"], p
        rule = find_step(p, "rule", "rule: drop")
        assert rule["detail"] == "block-9091 rule 1", rule
        hook = find_step(p, "ipv4/forward", "NF_DROP")
        assert "block-9091" in hook["detail"], hook
        assert not any(x[0] == "dev_queue_xmit" for x in steps(p)), steps(p)
        text = lab.ctl_raw("show", "trace").stdout
        assert "dropped: netfilter_drop at ipv4/forward" in text and "block-9091" in text, text
        lab.ctl("clear", "trace")

        # A ping of sluice's own address: delivered; the reply is its copy, sent back.
        lab.ctl("trace", "add", "1", "p1", "icmp and dst host 10.0.1.1")
        r = lab.ns_exec(a, "ping -c 1 -W 2 10.0.1.1", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        t = traced(lab, 2)
        req = [p for p in t if p["parent"] is None][0]
        rep = [p for p in t if p["parent"] == req["packet"]][0]
        assert req["fate"] == "delivered" and req["fate_stage"] == "icmp_rcv", req
        assert ("ip_route_input", "p1", "local table: local") in steps(req), steps(req)
        assert rep["fate"] == "sent p1", rep
        assert ("icmp_reply", "p1", "echo reply") in steps(rep), steps(rep)

        # Runtime names the stages of these paths.
        rt = {x["stage"]: x for x in lab.ctl("show", "runtime")}
        for st in ("ip_rcv", "ip-route-input", "ip-forward", "hook ipv4/forward", "neigh-output",
                   "ip-local-deliver", "arp_rcv"):
            assert rt[st]["calls"] > 0, (st, rt.get(st))
        # Errors: bad filter, bad count, no such packet.
        r = lab.ctl_raw("trace", "add", "1", "p1", "tcp", "port", "nope")
        assert r.returncode == 1 and "bad filter" in (r.stdout + r.stderr), r
        r = lab.ctl_raw("trace", "add", "0")
        assert r.returncode == 1, r
        r = lab.ctl_raw("show", "trace", "packet", "99")
        assert r.returncode == 1, r
        assert lab.stop() == 0
    finally:
        lab.close()


def test_ipv6_routed():
    lab = Lab("tr6")
    try:
        a, b, _ = lab.router6((P1_MAC, P2_MAC, A_MAC, B_MAC))
        r = lab.ns_exec(a, "ping -6 -c 2 -i 0.2 -W 2 2001:db8:2::2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        lab.ctl("trace", "add", "1", "p1", "icmp6 and dst host 2001:db8:2::2")
        r = lab.ns_exec(a, "ping -6 -c 1 -W 2 2001:db8:2::2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        p = traced(lab, 1)[0]
        assert "IPv6 2001:db8:1::2 > 2001:db8:2::2" in p["summary"], p
        s = steps(p)
        assert ("deliver_skb", "p1", "ipv6_rcv") in s, s
        assert ("ip6_route_input", "p1", "not local: forward") in s, s
        assert find_step(p, "fib6_lookup", "route")["to"] == "p2"
        assert find_step(p, "netif_receive_skb")["protocol"] == "0x86dd"
        assert p["fate"] == "sent p2", p
        rt = {x["stage"]: x for x in lab.ctl("show", "runtime")}
        assert rt["ipv6_rcv"]["packets"] >= 3, rt["ipv6_rcv"]
        assert lab.stop() == 0
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_bridged_frame, test_flooded_frame, test_routed_dropped_and_local, test_ipv6_routed):
        r.run(t)
    r.finish()
