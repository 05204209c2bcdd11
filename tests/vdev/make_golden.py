#!/usr/bin/python3
"""Writes the golden files of the net_pcap test (run with /usr/bin/python3,
which has scapy). in.pcap is what enters p0; expected.pcap is what must leave
p1, computed here from the rules of the test's forwarding handler, not from
sluice:
  * IPv4 on p0 (pkt_type host/broadcast/multicast)  -> out p1 unchanged
  * IPv4 on p0.100 (VLAN 100 sub-device of p0)      -> out p1.200: tag 200
  * IPv4 with another host's MAC                    -> not forwarded (the handler
    drops OTHERHOST, as ip_rcv does)
  * VLAN 300 (no sub-device)                        -> residual tag: OTHERHOST
  * ARP, an unknown ethertype, 802.2 LLC            -> no handler: rx_dropped
"""
import os
import sys

from scapy.all import ARP, IP, LLC, UDP, Dot1Q, Ether, Raw, wrpcap

P0 = "02:00:00:00:00:01"
PEER = "02:00:00:00:00:aa"
here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "golden")

inp, exp = [], []
for i in range(40):
    kind = i % 8
    payload = Raw(bytes([i]) * 18)
    ip = IP(src="192.0.2.100", dst="192.0.2.%d" % (1 + i)) / UDP(sport=1000 + i, dport=9) / payload
    if kind in (0, 1):
        f = Ether(dst=P0, src=PEER) / ip
        inp.append(f)
        exp.append(f)
    elif kind == 2:
        f = Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ip
        inp.append(f)
        exp.append(f)
    elif kind == 3:
        f = Ether(dst=P0, src=PEER) / Dot1Q(vlan=100) / ip
        inp.append(f)
        exp.append(Ether(dst=P0, src=PEER) / Dot1Q(vlan=200) / ip)
    elif kind == 4:
        inp.append(Ether(dst="02:00:00:00:00:bb", src=PEER) / ip)
    elif kind == 5:
        inp.append(Ether(dst=P0, src=PEER) / Dot1Q(vlan=300) / ip)
    elif kind == 6:
        inp.append(Ether(dst="ff:ff:ff:ff:ff:ff", src=PEER) / ARP(pdst="192.0.2.1", psrc="192.0.2.100"))
    else:
        inp.append(Ether(dst=P0, src=PEER, type=0x88B5) / payload if i % 16 == 7
                   else Ether(dst=P0, src=PEER) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / payload)

# Frames shorter than 60 bytes are padded as they would be on a wire.
def pad(f):
    b = bytes(f)
    return Ether(b + b"\0" * max(0, 60 - len(b)))

wrpcap(os.path.join(out, "in.pcap"), [pad(f) for f in inp])
wrpcap(os.path.join(out, "expected.pcap"), [pad(f) for f in exp])
print("in: %d frames, expected out: %d frames" % (len(inp), len(exp)), file=sys.stderr)
