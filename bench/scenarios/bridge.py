"""bridge: L2 forwarding with learning, every destination known.

1024 source MACs arrive on p0 and are learned there; the 1024 destination
MACs are static FDB entries on p1, so every frame is a known-unicast forward
p0 -> p1 (br_handle_frame, learning, FDB lookup, br_forward, port xmit).
The rate is what leaves p1.
"""

DESCRIPTION = "bridge p0->p1: 1024 learned source MACs, 1024 known (static) destinations"
NEEDS = "the bridge"
ORDER = 30

SRC, DST, N = "02:10:00:00:00:00", "02:20:00:00:00:00", 1024

TRAFFIC = {
    "frames": 1024,
    "src_mac": {"base": SRC, "count": N},
    "dst_mac": {"base": DST, "count": N},
    "src_ip": {"base": "10.1.0.1", "count": 1024},
}

RATE = ("p1", "tx_packets")
REPORT = ["show bridge br0"]


def topology(ctx):
    ports = ctx.ingress() + [ctx.sink("p1")]
    return {
        "ports": ports,
        "bridges": [{
            "name": "br0",
            "ports": ctx.ingress_names + ["p1"],
            "ageing_s": 300,
            "fdb_static": [{"mac": m, "port": "p1"} for m in ctx.macs(DST, N)],
        }],
    }
