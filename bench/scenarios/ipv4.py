"""ipv4: IPv4 forwarding through 10 000 routes to 4096 destinations.

Every frame arrives on p0 addressed to p0's MAC, is routed (FIB lookup of
10 000 /24 routes via 16 next hops on p1, TTL decrement, checksum, neighbour
MACs) and leaves p1. Each destination sits in its own /24, so the 4096
destinations hit 4096 different routes. bench/compare's `l3` case runs
OVS-DPDK on this same traffic.
"""

DESCRIPTION = "IPv4 forwarding p0->p1: 10 000 /24 routes, 4096 destinations, 16 next hops"
NEEDS = "L3 (addresses, routes, neighbours)"
ORDER = 50

ROUTES, NEXT_HOPS = 10000, 16

TRAFFIC = {
    "frames": 4096,
    "dst_mac": {"base": "02:00:00:00:00:01", "count": 1},          # p0's MAC
    "src_ip": {"base": "10.1.0.1", "count": 1024},
    "dst_ip": {"base": "10.2.0.1", "count": 4096, "step": 256},     # 10.2.0.1, 10.2.1.1, ...
}

RATE = ("p1", "tx_packets")
REPORT = ["show drops"]


def routes():
    return [{"prefix": f"10.{2 + i // 256}.{i % 256}.0/24", "via": f"10.255.0.{2 + i % NEXT_HOPS}"}
            for i in range(ROUTES)]


def topology(ctx):
    return {
        "ports": ctx.ingress() + [ctx.sink("p1", mac="02:00:00:00:00:02")],
        "addresses": [{"dev": n, "address": "10.1.255.254/16"} for n in ctx.ingress_names[:1]]
                     + [{"dev": "p1", "address": "10.255.0.1/24"}],
        "neighbours": [{"dev": "p1", "address": f"10.255.0.{2 + i}", "mac": f"02:00:00:aa:00:{i:02x}"}
                       for i in range(NEXT_HOPS)],
        "routes": routes(),
    }
