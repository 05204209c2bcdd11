"""mirror-10pct: ipv4 with an ingress mirror on p0 copying 1 packet in 10
(`sample: 10`) to a third port p2 (mirred egress).

The copy is a clone sharing the payload (refcount), sent out of p2 besides
the routed original out of p1. The rate counted is p1's (the originals)."""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "ipv4 + mirror of p0 ingress, 1 in 10 (sample: 10), to port p2"
NEEDS = "mirrors (tc mirred)"
ORDER = 62
TRAFFIC = _ipv4.TRAFFIC
RATE = _ipv4.RATE
REPORT = ["show mirrors", "show drops"]


def topology(ctx):
    t = _ipv4.topology(ctx)
    t["ports"].append(ctx.sink("p2", mac="02:00:00:00:00:03"))
    t["mirrors"] = [{"name": "m10", "source": {"dev": ctx.ingress_names[0], "direction": "ingress"},
                     "action": "mirror", "sample": 10, "to": {"dev": "p2", "at": "egress"}}]
    return t
