#!/usr/bin/python3
"""End-to-end, running sluiced for real: /metrics over IPv4 and IPv6 read by
a real Prometheus parser, the DPDK telemetry socket read by dpdk-telemetry.py
(the /sluice/ commands), and systemd's readiness protocol (NOTIFY_SOCKET)."""
import json
import os
import socket
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from lab import SLUICED, Lab, Runner  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

P1_MAC = "02:00:00:00:05:01"
P2_MAC = "02:00:00:00:05:02"
H1_MAC = "02:00:00:00:05:0a"
PORT = 19500 + os.getpid() % 400


def bridged(lab, metrics="", telemetry=False):
    h1, if1 = lab.host("a", addr="10.9.0.1/24", mac=H1_MAC)
    h2, if2 = lab.host("b", addr="10.9.0.2/24")
    cfg = lab.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
bridges:
  - {name: br0, ports: [p1, p2]}
""" % (if1, P1_MAC, if2, P2_MAC), metrics=metrics, telemetry=telemetry)
    lab.start(cfg)
    return h1, h2


def families(url):
    body = urllib.request.urlopen(url, timeout=5).read().decode()
    out = {}
    for fam in text_string_to_metric_families(body):
        for s in fam.samples:
            out.setdefault(s.name, []).append((s.labels, s.value))
    return out


def value(fams, name, **labels):
    for lab_, v in fams.get(name, []):
        if all(lab_.get(k) == w for k, w in labels.items()):
            return v
    raise AssertionError("no sample %s%r in %s" % (name, labels, sorted(fams)))


def test_metrics_ipv4_ipv6_parsed():
    lab = Lab("met")
    try:
        h1, _ = bridged(lab, metrics="[::]:%d" % PORT)
        lab.ns_exec(h1, "ping -c 5 -i 0.05 -W 1 10.9.0.2")
        for url in ("http://127.0.0.1:%d/metrics" % PORT, "http://[::1]:%d/metrics" % PORT):
            fams = families(url)
            # 5 echo requests + the ARP request (and maybe the host's ARP reply)
            assert value(fams, "sluice_rx_packets_total", dev="p1") >= 6, fams["sluice_rx_packets_total"]
            assert value(fams, "sluice_tx_packets_total", dev="p2") >= 6
            assert "sluice_stage_cycles_total" in fams or "sluice_runtime_cycles_total" in fams, sorted(fams)
            assert value(fams, "sluice_bridge_fdb_entries", bridge="br0") >= 2
            assert value(fams, "sluice_bridge_forwarded_total", bridge="br0") >= 3
            assert value(fams, "sluice_bridge_port_state", bridge="br0", port="p1", state="forwarding") == 1
        # The index page, an unknown path, curl as operators use it
        r = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}",
                            "http://127.0.0.1:%d/nope" % PORT], capture_output=True, text=True)
        assert r.stdout == "404", r
        r = subprocess.run(["curl", "-sS", "http://127.0.0.1:%d/" % PORT], capture_output=True, text=True)
        assert "/metrics" in r.stdout, r
        # The control socket keeps answering while scrapes run.
        assert lab.ctl("show", "devices")["br0"]["kind"] == "bridge"
        assert lab.stop() == 0
    finally:
        lab.close()


def test_metrics_of_features():
    """A router with a hook rule list, a mirror and a filtered capture: their
    families are in /metrics with the numbers `show` prints, and a label
    value with a quote in it is escaped as the format says."""
    lab = Lab("mfe")
    try:
        a, b, _ = lab.router(("02:00:00:00:06:01", "02:00:00:00:06:02", "02:00:00:00:06:0a",
                              "02:00:00:00:06:0b"), metrics="127.0.0.1:%d" % PORT, extra="""
hooks:
  - point: ipv4/forward
    priority: filter
    name: 'block "9091"'
    rules:
      - match: {proto: tcp, dst_port: 9091}
        verdict: drop
        counter: true
mirrors:
  - name: m0
    source: {dev: p1, direction: ingress}
    filter: "icmp"
    to: {dev: p2}
""")
        path = os.path.join(lab.tmp, "icmp.pcapng")
        cap = lab.ctl("capture", "start", "p2", "egress", "icmp", "file", path)["id"]
        lab.ns_exec(a, "ping -c 4 -i 0.05 -W 1 10.0.2.2")
        lab.scapy(a, 'send([IP(dst="10.0.2.2")/TCP(dport=9091, flags="S")] * 3)')
        lab.wait_until(lambda: lab.ctl("show", "hooks")["ipv4/forward"][0]["rules"][0]["hits"] == 3,
                       what="3 rule hits")
        fams = families("http://127.0.0.1:%d/metrics" % PORT)
        entry = 'block "9091"'
        hooks = lab.ctl("show", "hooks")["ipv4/forward"][0]
        assert value(fams, "sluice_hook_hits_total", point="ipv4/forward", entry=entry) == hooks["hits"]
        assert value(fams, "sluice_hook_rule_hits_total", point="ipv4/forward", entry=entry, rule="0") == 3
        mir = lab.ctl("show", "mirrors")["m0"]
        assert mir["copies"] >= 4
        assert value(fams, "sluice_mirror_copies_total", mirror="m0") == mir["copies"]
        caps = lab.ctl("show", "captures")[0]
        # 4 forwarded echo requests + their 4 mirrored copies leave p2; TCP was dropped before it
        assert caps["accepted"] == 8, caps
        assert value(fams, "sluice_capture_accepted_total", id=str(cap), dev="p2") == caps["accepted"]
        ip = lab.ctl("show", "ip", "stats")
        assert value(fams, "sluice_ip_mib_total", dev="p1", counter="ForwDatagrams") == \
            ip["p1"]["ForwDatagrams"]
        assert value(fams, "sluice_neigh_entries", dev="p2", state="reachable") >= 1
        assert value(fams, "sluice_routes", table="main", type="unicast") == 2
        assert lab.stop() == 0
    finally:
        lab.close()


def telemetry(prefix, *cmds):
    r = subprocess.run(["dpdk-telemetry.py", "-f", prefix], input="\n".join(cmds) + "\n",
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r
    out = []
    # A JSON document per command (and, on a terminal only, a banner).
    dec = json.JSONDecoder()
    text = r.stdout
    i = 0
    while True:
        j = text.find("{", i)
        if j < 0:
            break
        obj, i = dec.raw_decode(text, j)
        out.append(obj)
    return out


def test_telemetry_sluice_commands():
    lab = Lab("tel")
    try:
        h1, _ = bridged(lab, telemetry=True)
        lab.ns_exec(h1, "ping -c 3 -i 0.05 -W 1 10.9.0.2")
        prefix = "sl-" + lab.tag
        docs = telemetry(prefix, "/", "/sluice/devices", "/sluice/show/port_stats,p1",
                         "/sluice/show/fdb,br0", "/sluice/show/bridge", "/sluice/show/nosuch")
        got = {}
        for d in docs:
            got.update(d)
        assert "/sluice/show/devices" in got["/"] and "/sluice/show/port_stats" in got["/"], got["/"]
        st = got["/sluice/show/port_stats"]
        assert st["p1"]["rx_packets"] >= 4, st
        # The same numbers as sluicectl --json (nothing moves: the hosts are quiet).
        assert st["p1"]["rx_packets"] == lab.ctl("show", "port", "stats", "p1")["p1"]["rx_packets"]
        # FDB rows by index, each a flat dict
        fdb = got["/sluice/show/fdb"]
        rows = list(fdb.values())
        assert any(r.get("mac", "").lower() == H1_MAC for r in rows), fdb
        # nested values flattened into path keys, booleans as 0/1
        br = got["/sluice/show/bridge"]["br0"]
        assert br["fdb_entries"] >= 2 and br["counters/forwarded"] >= 3, br
        assert br["ports/p1/learning"] == 1, br
        # an unknown command: the library answers null, the daemon lives on
        assert got["/sluice/show/nosuch"] is None, got
        assert lab.ctl("show", "devices")["p1"]["kind"] == "port"
        assert lab.stop() == 0
    finally:
        lab.close()


def test_systemd_notify_ready():
    lab = Lab("ntf")
    try:
        _, if1 = lab.host("a")
        cfg = lab.config('ports:\n  - {name: p1, device: "net_af_packet0,iface=%s"}\n' % if1)
        path = os.path.join(lab.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(30)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        p = subprocess.Popen([SLUICED, "-c", cfg, "--foreground"], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            msg = s.recv(4096).decode()
            fields = dict(l.split("=", 1) for l in msg.strip().splitlines())
            assert fields.get("READY") == "1", msg
            assert fields.get("MAINPID") == str(p.pid), msg
            # Ready means ready: the control socket answers now.
            assert lab.ctl("show", "devices")["p1"]["kind"] == "port"
            p.terminate()
            msg = s.recv(4096).decode()
            assert "STOPPING=1" in msg, msg
            assert p.wait(timeout=20) == 0
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            s.close()
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_metrics_ipv4_ipv6_parsed, test_metrics_of_features, test_telemetry_sluice_commands, test_systemd_notify_ready):
        r.run(t)
    r.finish()
