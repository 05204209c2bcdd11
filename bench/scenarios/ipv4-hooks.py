"""ipv4-hooks: ipv4 with three netfilter-style hook points of 1000 rules each.

ipv4/pre_routing, ipv4/forward and ipv4/post_routing each hold 1000 rules
that do not match the traffic (TCP to ports 10000-10999; the traffic is UDP
to port 9) and a last rule that accepts: every packet is classified against
all three lists. Target: <= 1.5 x the cycles of `ipv4`.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "ipv4 + pre_routing/forward/post_routing hooks, 1000 non-matching rules each"
NEEDS = "L3 and hooks"
ORDER = 70
TRAFFIC = _ipv4.TRAFFIC
RATE = _ipv4.RATE
RULES = 1000


def topology(ctx):
    t = _ipv4.topology(ctx)
    t["hooks"] = [{
        "point": f"ipv4/{point}", "priority": 0, "name": f"bench-{point}",
        "rules": [{"match": {"proto": "tcp", "dst_port": 10000 + i}, "verdict": "drop"} for i in range(RULES)]
                 + [{"match": {"src": "0.0.0.0/0"}, "verdict": "accept"}],
    } for point in ("pre_routing", "forward", "post_routing")]
    return t
