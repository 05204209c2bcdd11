"""rx-drop: the core's cost per packet, nothing after it.

Every frame arrives on the pcap port addressed to the port's own MAC
(pkt_type HOST), is classified (eth_type_trans), makes one round (no taps,
no rx_handler, no VLAN) and, as no protocol handler is bound for IPv4 in this
build, is dropped as unhandled_proto: port rx + classify + round + drop.
"""

DESCRIPTION = "rx + eth_type_trans + one round + unhandled drop (UDP to the port's MAC)"
ORDER = 10

TRAFFIC = {
    "frames": 1024,
    "dst_mac": {"base": "02:00:00:00:00:01", "count": 1},  # = ctx.ingress_mac
    "src_ip": {"base": "10.1.0.1", "count": 1024},
}


def topology(ctx):
    return {"ports": ctx.ingress() + [ctx.sink("p1")]}
