"""vxlan-mirror-10pct: ipv4 with an ingress mirror on p0 copying 1 packet in
10 (`sample: 10`) to a remote analyzer over VXLAN (VNI 42) through L3: the
outer IPv4/UDP/VXLAN headers go in a new first segment chained to a clone
of the frame, routed out of p2 to a static neighbour."""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "ipv4 + mirror of p0 ingress, 1 in 10, to VXLAN 10.254.0.2 VNI 42 out of p2"
NEEDS = "mirrors (tc mirred) and L3"
ORDER = 63
TRAFFIC = _ipv4.TRAFFIC
RATE = _ipv4.RATE
REPORT = ["show mirrors", "show drops"]


def topology(ctx):
    t = _ipv4.topology(ctx)
    t["ports"].append(ctx.sink("p2", mac="02:00:00:00:00:03"))
    t["addresses"].append({"dev": "p2", "address": "10.254.0.1/24"})
    t["neighbours"].append({"dev": "p2", "address": "10.254.0.2", "mac": "02:00:00:bb:00:01"})
    t["mirrors"] = [{"name": "vx10", "source": {"dev": ctx.ingress_names[0], "direction": "ingress"},
                     "action": "mirror", "sample": 10,
                     "to": {"vxlan": {"remote": "10.254.0.2", "vni": 42}}}]
    return t
