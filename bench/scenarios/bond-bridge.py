"""bond-bridge: the bridge scenario with a bond as the bridge port.

bond0 = {p0, p1}, balance-xor with xmit_hash_policy layer3+4 (the transmit
path of 802.3ad, without needing an LACP partner), is the bridge's port:
1024 source MACs arrive on the member p0 (bond_handle_frame → ANOTHER to
bond0 → br_handle_frame) and are learned on bond0; the 1024 destination
MACs are static FDB entries on bond0 itself (hairpin on), so every frame is
forwarded back out of the bond, each hashed over the members by its IPv4
addresses and UDP ports (1024 flows). The rate is what leaves the bond (its
counters fold its members', as Linux's bond_get_stats).

Compare with `bridge`: the difference is the bond's receive round and its
transmit hash. Goal (issue 13): at most 10 cycles/packet more.
"""

DESCRIPTION = "bridge over a 2-member layer3+4 bond: RX on a member, TX hashed over both"
NEEDS = "bonding"
ORDER = 31

SRC, DST, N = "02:10:00:00:00:00", "02:20:00:00:00:00", 1024

TRAFFIC = {
    "frames": 1024,
    "src_mac": {"base": SRC, "count": N},
    "dst_mac": {"base": DST, "count": N},
    "src_ip": {"base": "10.1.0.1", "count": 1024},
}

RATE = ("bond0", "tx_packets")
REPORT = ["show bridge br0", "show bond bond0"]


def topology(ctx):
    ports = ctx.ingress() + [ctx.sink("p1")]
    return {
        "ports": ports,
        "bonds": [{
            "name": "bond0",
            "mode": "balance-xor",
            "xmit_hash_policy": "layer3+4",
            "members": ctx.ingress_names + ["p1"],
            "miimon_ms": 100,
        }],
        "bridges": [{
            "name": "br0",
            "ports": ["bond0"],
            "ageing_s": 300,
            "port_settings": {"bond0": {"hairpin": True}},
            "fdb_static": [{"mac": m, "port": "bond0"} for m in ctx.macs(DST, N)],
        }],
    }
