"""bridge-flood: unknown unicast flooded to two ports.

1024 source MACs learned on p0; every destination is unknown, so each frame
is flooded to p1 and p2 (one clone per extra port). The rate is the ingress
rate; p1 and p2 each send it once.
"""

DESCRIPTION = "bridge p0->{p1,p2}: 1024 learned source MACs, unknown destinations (flood)"
NEEDS = "the bridge"
ORDER = 40

TRAFFIC = {
    "frames": 1024,
    "src_mac": {"base": "02:10:00:00:00:00", "count": 1024},
    "dst_mac": {"base": "02:30:00:00:00:00", "count": 1024},
    "src_ip": {"base": "10.1.0.1", "count": 1024},
}

RATE = ("ingress", "rx_packets")
REPORT = ["show bridge br0"]


def topology(ctx):
    ports = ctx.ingress() + [ctx.sink("p1"), ctx.sink("p2")]
    return {
        "ports": ports,
        "bridges": [{"name": "br0", "ports": ctx.ingress_names + ["p1", "p2"], "ageing_s": 300}],
    }
