"""full: every feature on one packet's path (issue 17's chain).

p0 is a member of bond0 (802.3ad, layer3+4, with p1; no LACP partner, so
the aggregator is an individual one and p0 its active port, as Linux enables
an individual aggregator's port); bond0 is the one port of br0 with VLAN
filtering on (untagged frames take PVID 1, br0 itself is in VLAN 1); br0 has
the address, so frames for br0's MAC go member → bond (ANOTHER) → bridge
(VLAN ingress filter, local delivery, ANOTHER) → IPv4 → the `ipv4` routes
(10 000 /24s, 16 next hops) → out of p2. On the way: ipv4/pre_routing,
forward and post_routing with 100 non-matching rules and an accept each, a
capture on p0 whose filter matches nothing (`tcp port 9091`; the traffic is
UDP) and an ingress mirror of p0 copying 1 packet in 100 to p3.

Target (issue 17): <= 150 cycles/packet on a day when testpmd io is ~24
cycles/packet. The rate counted is p2's (the routed originals).
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = ("802.3ad member -> bond -> VLAN-filtering bridge -> L3 -> 3 x 100-rule hooks -> p2, "
               "+ a capture matching nothing and a 1-in-100 mirror")
NEEDS = "bonding, the bridge, L3, hooks, captures and mirrors"
ORDER = 90

BR_MAC = "02:00:00:00:00:10"
RULES = 100
TRAFFIC = dict(_ipv4.TRAFFIC, dst_mac={"base": BR_MAC, "count": 1})
RATE = ("p2", "tx_packets")
COMMANDS = ["capture start {ingress} ingress tcp port 9091 file /dev/null"]
REPORT = ["show bond bond0", "show mirrors", "show captures", "show drops"]


def topology(ctx):
    t = _ipv4.topology(ctx)
    member = ctx.ingress_names[0]
    t["ports"] = ctx.ingress() + [ctx.sink("p1"), ctx.sink("p2", mac="02:00:00:00:00:02"),
                                  ctx.sink("p3", mac="02:00:00:00:00:03")]
    t["bonds"] = [{
        "name": "bond0",
        "mode": "802.3ad",
        "xmit_hash_policy": "layer3+4",
        "members": [member, "p1"],
        "miimon_ms": 100,
        "lacp_rate": "fast",
    }]
    t["bridges"] = [{"name": "br0", "ports": ["bond0"], "mac": BR_MAC, "vlan_filtering": True}]
    # The ipv4 scenario's p1 (next hops, their neighbours) is p2 here.
    t["addresses"] = [{"dev": "br0", "address": "10.1.255.254/16"}, {"dev": "p2", "address": "10.255.0.1/24"}]
    for n in t["neighbours"]:
        n["dev"] = "p2"
    t["hooks"] = [{
        "point": f"ipv4/{point}", "priority": 0, "name": f"bench-{point}",
        "rules": [{"match": {"proto": "tcp", "dst_port": 10000 + i}, "verdict": "drop"} for i in range(RULES)]
                 + [{"match": {"src": "0.0.0.0/0"}, "verdict": "accept"}],
    } for point in ("pre_routing", "forward", "post_routing")]
    t["mirrors"] = [{"name": "m100", "source": {"dev": member, "direction": "ingress"},
                     "action": "mirror", "sample": 100, "to": {"dev": "p3", "at": "egress"}}]
    return t
