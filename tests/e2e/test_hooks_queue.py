#!/usr/bin/python3
"""End-to-end hook queues (NFQUEUE): a rule list queues ICMP echo requests to
queue 3 at a forward point, a second list at a later priority drops ICMP.
A control-socket consumer (`sluicectl queue bind/read/verdict`, as a
userspace nfnetlink_queue program) answers:

* no consumer: the echo requests are dropped (nfqueue_nolistener) and
  nothing reaches the peer; with `bypass: true` they go on (fail-open) and
  meet the drop list;
* accept: the rest of the point runs, so the drop list drops them
  (netfilter_drop), the ping fails;
* stop: the rest of the point is skipped, the packet goes on to the wire,
  the ping works; the bytes read are the real echo request;
* a mark set with the verdict is seen by a later rule (mark match);
* unbind drops what is held.

Once routed (ipv4/forward: A → sluice router → B) and once bridged
(bridge/forward: A and B on br0). Also arp/forward on a bridge."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, Runner  # noqa: E402

P1_MAC = "02:00:00:00:05:01"
P2_MAC = "02:00:00:00:05:02"
A_MAC = "02:00:00:00:0a:05"
B_MAC = "02:00:00:00:0b:05"


def hooks(point, bypass=False, drop_prio=10):
    return """hooks:
  - point: %s
    priority: -10
    name: to-queue
    rules:
      - match: {proto: icmp, icmp_type: 8}
        verdict: queue
        queue: 3%s
  - point: %s
    priority: %d
    name: drop-icmp
    rules:
      - match: {proto: icmp, icmp_type: 8, mark: 7}
        verdict: accept
      - match: {proto: icmp, icmp_type: 8}
        verdict: drop
""" % (point, "\n        bypass: true" if bypass else "", point, drop_prio)


def routed(lab, extra):
    a, b, _ = lab.router((P1_MAC, P2_MAC, A_MAC, B_MAC), extra)
    return a, b, "10.0.2.2"


def bridged(lab, hooks_text=None):
    a, if_a = lab.host("a", addr="10.0.9.2/24", mac=A_MAC)
    b, if_b = lab.host("b", addr="10.0.9.3/24", mac=B_MAC)
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s", promiscuous: true}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s", promiscuous: true}
bridges:
  - name: br0
    ports: [p1, p2]
""" % (if_a, P1_MAC, if_b, P2_MAC) + (hooks_text or hooks("bridge/forward")))
    lab.start(cfg)
    lab.cfg = cfg
    return a, b, "10.0.9.3"


class Consumer:
    """A userspace consumer on the control socket: reads queue 3 and answers
    every packet with `verdict` (and optional mark) until stopped."""

    def __init__(self, lab, verdict, mark=None):
        self.lab, self.verdict, self.mark = lab, verdict, mark
        self.seen = []
        self.done = False
        self.t = threading.Thread(target=self.loop, daemon=True)

    def loop(self):
        while not self.done:
            pkts = self.lab.ctl("queue", "read", "3", "32")
            for p in pkts:
                self.seen.append(p)
                extra = ["mark", str(self.mark)] if self.mark is not None else []
                self.lab.ctl("queue", "verdict", "3", str(p["id"]), self.verdict, *extra)
            if not pkts:
                time.sleep(0.05)

    def __enter__(self):
        self.t.start()
        return self

    def __exit__(self, *exc):
        self.done = True
        self.t.join(timeout=10)


def ping(lab, ns, dst, n=3):
    r = lab.ns_exec(ns, "ping -c %d -i 0.3 -W 2 %s" % (n, dst), check=False, timeout=30)
    for line in r.stdout.splitlines():
        if "received" in line:
            return int(line.split(",")[1].split()[0])
    raise AssertionError(r.stdout + r.stderr)


def entry(lab, point, name):
    for e in lab.ctl("show", "hooks", point)[point]:
        if e["name"] == name:
            return e
    raise AssertionError("no %s at %s" % (name, point))


def queue3(lab):
    for q in lab.ctl("show", "queues"):
        if q["queue"] == 3:
            return q
    return None


def check_verdicts(lab, a, dst, point):
    # 1. No consumer: dropped at the queue, the drop list never sees them.
    assert ping(lab, a, dst) == 0
    q = queue3(lab)
    assert q is not None and q["nolistener"] >= 3 and q["queued"] == 0, q
    assert lab.ctl("show", "drops")["p1"]["nfqueue_nolistener"] >= 3
    assert entry(lab, point, "drop-icmp")["rules"][1]["hits"] == 0
    # 2. accept: the rest of the point runs → the drop list drops them.
    assert lab.ctl("queue", "bind", "3") == {"queue": 3, "bound": True}
    r = lab.ctl_raw("queue", "bind", "3")
    assert r.returncode != 0 and "already bound" in (r.stdout + r.stderr), r
    with Consumer(lab, "accept") as c:
        assert ping(lab, a, dst) == 0
    assert len(c.seen) >= 3, c.seen
    d = entry(lab, point, "drop-icmp")
    assert d["drops"] >= 3 and d["rules"][1]["hits"] >= 3, d
    # What was read is the real echo request (IPv4, ICMP type 8, to dst).
    p = c.seen[0]
    data = bytes.fromhex(p["data"])
    assert p["point"] == point and p["in"] == "p1" and p["out"] == "p2", p
    assert data[12:14] == b"\x08\x00" and data[14 + 9] == 1 and data[34] == 8, data[:40].hex()
    assert data[30:34] == bytes(int(x) for x in dst.split(".")), data[:40].hex()
    # 3. stop: the rest of the point is skipped → the ping works.
    before = entry(lab, point, "drop-icmp")["rules"][1]["hits"]
    with Consumer(lab, "stop") as c:
        assert ping(lab, a, dst) == 3
    assert len(c.seen) >= 3
    assert entry(lab, point, "drop-icmp")["rules"][1]["hits"] == before
    # 4. accept with mark 7: the drop list's first rule (mark 7) accepts.
    with Consumer(lab, "accept", mark=7) as c:
        assert ping(lab, a, dst) == 3
    assert entry(lab, point, "drop-icmp")["rules"][0]["hits"] >= 3
    q = queue3(lab)
    assert q["consumer"] == "socket" and q["queued"] == q["answered"] and q["held"] == 0, q
    # 5. Held packets are dropped on unbind.
    lab.ns_exec(a, "ping -c 2 -i 0.2 -W 1 %s" % dst, check=False)
    lab.wait_until(lambda: queue3(lab)["waiting"] >= 2, what="two requests waiting")
    held = lab.ctl("queue", "read", "3", "1")
    assert len(held) == 1
    r = lab.ctl("queue", "unbind", "3")
    assert r["dropped"] >= 2, r
    q = queue3(lab)
    assert not q["bound"] and q["held"] == 0 and q["waiting"] == 0, q
    assert lab.stop() == 0  # every mbuf came back


def test_queue_routed():
    lab = Lab("hq")
    try:
        a, b, dst = routed(lab, hooks("ipv4/forward"))
        check_verdicts(lab, a, dst, "ipv4/forward")
    finally:
        lab.close()


def test_queue_bypass_routed():
    lab = Lab("hqb")
    try:
        a, b, dst = routed(lab, hooks("ipv4/forward", bypass=True))
        assert ping(lab, a, dst) == 0  # fail-open: on to the drop list
        q = queue3(lab)
        assert q["bypassed"] >= 3 and q["nolistener"] >= 3, q
        assert entry(lab, "ipv4/forward", "drop-icmp")["drops"] >= 3
        assert lab.stop() == 0
    finally:
        lab.close()


def test_queue_bridged():
    lab = Lab("hqbr")
    try:
        a, b, dst = bridged(lab)
        check_verdicts(lab, a, dst, "bridge/forward")
    finally:
        lab.close()


BUILD = os.environ.get("SLUICE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
NFQMARK = os.path.abspath(os.path.join(BUILD, "examples/plugins/libsluice_nfqmark.so"))


def test_plugin_consumer_routed():
    """The example consumer plugin (examples/plugins/nfqmark.cc) binds queue
    4 from its own thread, marks what it reads 94 and accepts: the drop list
    after the queue lets marked echo requests through, so the ping works."""
    lab = Lab("hqp")
    try:
        text = hooks("ipv4/forward").replace("queue: 3", "queue: 4").replace("mark: 7", "mark: 94")
        a, b, dst = routed(lab, text + """plugins:
  - {path: %s, args: "queue=4 mark=94"}
""" % NFQMARK)
        assert ping(lab, a, dst) == 3
        q = [x for x in lab.ctl("show", "queues") if x["queue"] == 4][0]
        assert q["consumer"] == "plugin" and q["answered"] >= 3 and q["queued"] == q["answered"], q
        assert entry(lab, "ipv4/forward", "drop-icmp")["rules"][0]["hits"] >= 3
        r = lab.ctl_raw("queue", "bind", "4")
        assert r.returncode != 0 and "another consumer" in (r.stdout + r.stderr), r
        lab.wait_until(lambda: "nfqmark: queue 4 packet" in lab.read_log(), what="the plugin's log")
        assert lab.stop() == 0  # the plugin's fini ran, every mbuf came back
    finally:
        lab.close()


ARP_FWD = """hooks:
  - point: arp/forward
    priority: filter
    name: no-arp-for-b
    rules:
      - match: {dst: %s/32}
        verdict: drop
"""


def test_arp_forward_on_bridge():
    """arp/forward runs for ARP frames the bridge forwards (br_netfilter's
    bridge-nf-call-arptables): a rule on the ARP target address stops
    resolution of B across br0; after `hooks reload` with another address,
    A reaches B."""
    lab = Lab("hqa")
    try:
        a, b, dst = bridged(lab, ARP_FWD % "10.0.9.3")
        assert ping(lab, a, dst, n=2) == 0
        e = entry(lab, "arp/forward", "no-arp-for-b")
        assert e["drops"] >= 1 and e["rules"][0]["hits"] == e["drops"], e
        assert lab.ctl("show", "drops")["p1"]["netfilter_drop"] == e["drops"]
        with open(lab.cfg) as f:
            text = f.read()
        with open(lab.cfg, "w") as f:
            f.write(text.replace("10.0.9.3/32", "10.0.9.99/32"))
        assert lab.ctl("hooks", "reload") == {"reloaded": 1}
        lab.ns_exec(a, "ip neigh flush dev eth0")  # A's entry for B gave up (FAILED)
        got = ping(lab, a, dst, n=2)
        e2 = entry(lab, "arp/forward", "no-arp-for-b")
        assert got == 2, (got, e, e2, lab.ctl("show", "drops"), lab.ctl("show", "hooks"))
        assert e2["drops"] == e["drops"] and e2["hits"] > e["hits"], (e, e2)
        assert lab.stop() == 0
    finally:
        lab.close()


def test_arp_forward_added_by_reload():
    """The first arp/forward list arriving by `reload` (not at start) puts
    br_netfilter's step on the bridge: before it ARP crosses br0 and A
    reaches B; after it the rule on B's address stops B's resolution. The
    list leaving by the next reload takes the step away: A reaches B again."""
    lab = Lab("hqr")
    try:
        a, b, dst = bridged(lab, "\n")
        assert ping(lab, a, dst, n=2) == 2
        with open(lab.cfg) as f:
            plain = f.read()
        with open(lab.cfg, "w") as f:
            f.write(plain + ARP_FWD % "10.0.9.3")
        r = lab.ctl("reload")
        assert "hooks" in r["changed"], r
        lab.ns_exec(a, "ip neigh flush dev eth0")
        assert ping(lab, a, dst, n=2) == 0
        e = entry(lab, "arp/forward", "no-arp-for-b")
        assert e["drops"] >= 1 and e["rules"][0]["hits"] == e["drops"], e
        with open(lab.cfg, "w") as f:
            f.write(plain)
        r = lab.ctl("reload")
        assert "hooks" in r["changed"], r
        lab.ns_exec(a, "ip neigh flush dev eth0")
        assert ping(lab, a, dst, n=2) == 2
        assert lab.stop() == 0
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_queue_routed, test_queue_bypass_routed, test_queue_bridged,
              test_arp_forward_on_bridge, test_arp_forward_added_by_reload,
              test_plugin_consumer_routed):
        r.run(t)
    r.finish()
