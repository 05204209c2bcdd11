"""bridge-l3: a bridge with an L3 address routing to another port.

p0 is a port of bridge br0; br0 has an address, so frames for br0's MAC go
up the bridge (local delivery, RX_HANDLER_ANOTHER to br0) into IPv4, are
routed (the `ipv4` routes) and leave p1, which is not in the bridge.
"""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "bridge br0{p0} with an address, routed to p1 (10 000 routes, 4096 destinations)"
NEEDS = "the bridge and L3"
ORDER = 80
BR_MAC = "02:00:00:00:00:10"
TRAFFIC = dict(_ipv4.TRAFFIC, dst_mac={"base": BR_MAC, "count": 1})
RATE = ("p1", "tx_packets")


def topology(ctx):
    t = _ipv4.topology(ctx)
    t["bridges"] = [{"name": "br0", "ports": list(ctx.ingress_names), "mac": BR_MAC}]
    t["addresses"] = [{"dev": "br0", "address": "10.1.255.254/16"}, {"dev": "p1", "address": "10.255.0.1/24"}]
    return t
