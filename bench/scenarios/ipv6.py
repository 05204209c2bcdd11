"""ipv6: IPv6 forwarding through 10 000 routes to 4096 destinations.

The IPv6 twin of `ipv4`: every frame arrives on p0 addressed to p0's MAC, is
routed (rte_fib6 lookup of 10 000 /64 routes via 16 next hops on p1, hop
limit decrement, neighbour MACs from the per-worker cache) and leaves p1.
Each destination sits in its own /64, so the 4096 destinations hit 4096
different routes. Frames are 66 bytes on the wire, the smallest
Ether/IPv6/UDP frame (issue 17's target: <= 95 cycles/packet, <= 3.5 x
testpmd io).
"""

DESCRIPTION = "IPv6 forwarding p0->p1: 10 000 /64 routes, 4096 destinations, 16 next hops"
NEEDS = "L3 (IPv6 addresses, routes, neighbours)"
ORDER = 51

ROUTES, NEXT_HOPS = 10000, 16

TRAFFIC = {
    "frames": 4096,
    "dst_mac": {"base": "02:00:00:00:00:01", "count": 1},             # p0's MAC
    "src_ip": {"base": "2001:db8:1::1", "count": 1024},
    "dst_ip": {"base": "2001:db8:2::1", "count": 4096, "step": 1 << 64},  # 2001:db8:2::1, 2001:db8:2:1::1, ...
}

RATE = ("p1", "tx_packets")
REPORT = ["show drops"]


def routes():
    return [{"prefix": f"2001:db8:{2 + i // 65536:x}:{i % 65536:x}::/64", "via": f"2001:db8:ff::{2 + i % NEXT_HOPS:x}"}
            for i in range(ROUTES)]


def topology(ctx):
    return {
        "ports": ctx.ingress() + [ctx.sink("p1", mac="02:00:00:00:00:02")],
        "addresses": [{"dev": n, "address": "2001:db8:1::ffff/64"} for n in ctx.ingress_names[:1]]
                     + [{"dev": "p1", "address": "2001:db8:ff::1/64"}],
        "neighbours": [{"dev": "p1", "address": f"2001:db8:ff::{2 + i:x}", "mac": f"02:00:00:aa:00:{i:02x}"}
                       for i in range(NEXT_HOPS)],
        "routes": routes(),
    }
