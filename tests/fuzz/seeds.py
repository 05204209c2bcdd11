#!/usr/bin/python3
"""Seed corpora of the fuzz targets: tests/fuzz/seeds.py OUT_DIR

Writes OUT_DIR/{rx,loader,control,filter}/ (one file per seed) and
OUT_DIR/control.dict, from what the repository has:
  rx       every frame of the test pcaps (tests/**/*.pcap), on each port
           choice, and frames for the protocols of topo/rx.yaml (ARP, ICMP,
           IPv6 ND, TCP/UDP to the L3 addresses, tagged frames, STP, LACP,
           fragments) built with scapy
  loader   config/*.yaml, tests/config/bad/*.yaml, tests/fuzz/topo/*.yaml
  control  one request line per command of the CLI (docs/cli.md)
  filter   the filter expressions of the tests and configs, each with a
           frame of the pcaps
"""
import glob
import os
import struct
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def read_pcap(path):
    """Frames of a classic pcap file (either byte order, us or ns)."""
    with open(path, "rb") as f:
        b = f.read()
    if len(b) < 24:
        return []
    magic = struct.unpack("<I", b[:4])[0]
    e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    off, out = 24, []
    while off + 16 <= len(b):
        _, _, incl, _ = struct.unpack(e + "IIII", b[off:off + 16])
        off += 16
        out.append(b[off:off + incl])
        off += incl
    return out


def pcap_frames():
    frames = []
    for p in sorted(glob.glob(os.path.join(ROOT, "tests", "**", "*.pcap"), recursive=True)):
        frames += read_pcap(p)
    return frames


def scapy_frames():
    try:
        from scapy.all import (ARP, GRE, ICMP, IP, LLC, STP, TCP, UDP, Dot1Q, Ether,
                               ICMPv6EchoRequest, ICMPv6ND_NS, IPv6, Raw, fragment)
        from scapy.layers.vxlan import VXLAN
    except ImportError:
        return []
    bond0, br0, p6, bond1 = "02:00:00:00:01:01", "02:00:00:00:02:01", "02:00:00:00:00:07", \
        "02:00:00:00:01:02"
    h = "02:00:00:00:aa:01"
    f = [
        Ether(src=h, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.2", pdst="10.0.0.1", hwsrc=h),
        Ether(src=h, dst=br0) / IP(src="10.0.0.2", dst="10.0.0.1") / ICMP(),
        Ether(src=h, dst=br0) / IP(src="10.0.0.2", dst="198.51.100.7") / TCP(dport=22, flags="S"),
        Ether(src=h, dst=br0) / IP(src="10.0.0.2", dst="10.0.0.1") / UDP(dport=7) / Raw(b"x" * 20),
        Ether(src=h, dst="02:00:00:00:00:99") / Dot1Q(vlan=20) / IP(dst="10.0.0.9") / UDP(dport=53),
        Ether(src=h, dst=br0) / Dot1Q(vlan=10) / Dot1Q(vlan=20) / IP(dst="10.0.0.1") / ICMP(),
        Ether(src=h, dst=p6) / IP(src="10.6.0.2", dst="203.0.113.5", ttl=1) / UDP(dport=33434),
        Ether(src=h, dst=p6) / IP(src="10.6.0.2", dst="10.6.0.1") / TCP(dport=9091, flags="S"),
        Ether(src=h, dst=p6) / Dot1Q(vlan=100) / IP(src="10.100.0.2", dst="10.100.0.1") / ICMP(),
        Ether(src=h, dst=p6) / IPv6(src="2001:db8:0:6::2", dst="2001:db8:0:6::1") /
        ICMPv6EchoRequest(),
        Ether(src=h, dst="33:33:ff:00:00:01") /
        IPv6(src="2001:db8:0:6::2", dst="ff02::1:ff00:1", hlim=255) /
        ICMPv6ND_NS(tgt="2001:db8:0:6::1"),
        Ether(src=h, dst=p6) / IPv6(src="2001:db8:0:6::2", dst="2001:db8:99::1") / UDP(),
        Ether(src=h, dst=bond1) / IP(src="10.1.0.2", dst="10.1.0.1") / GRE() / IP() / ICMP(),
        Ether(src=h, dst=bond1) / Dot1Q(vlan=50) / IP(src="10.50.0.2", dst="10.50.0.1") / ICMP(),
        Ether(src=h, dst=p6) / IP(src="10.6.0.2", dst="10.6.0.1") / UDP(dport=4789) / VXLAN(vni=42) /
        Ether() / IP() / ICMP(),
        Ether(src=h, dst="01:80:c2:00:00:00") / LLC() / STP(),
        Ether(src=h, dst="01:80:c2:00:00:0e", type=0x88cc) / Raw(b"\x02\x07\x04" + b"\0" * 40),
        Ether(src=h, dst=bond0) / IP(src="10.0.0.2", dst="10.0.0.1", ihl=15) / Raw(b"\0" * 60),
    ]
    f += fragment(Ether(src=h, dst=p6) / IP(src="10.6.0.2", dst="198.51.100.3") /
                  UDP(dport=9) / Raw(b"y" * 3000), fragsize=1400)
    # LACPDU (slow protocols): subtype 1, version 1, actor/partner TLVs.
    lacp = bytes([1, 1, 1, 20]) + b"\x80\x00" + bytes.fromhex("020000000501") + \
        b"\x00\x01\x80\x00\x00\x01\x3d\x00\x00\x00" + bytes([2, 20]) + b"\0" * 18 + \
        bytes([3, 16]) + b"\0" * 14 + b"\0\0" + b"\0" * 50
    f.append(Ether(src=h, dst="01:80:c2:00:00:02", type=0x8809) / Raw(lacp))
    # A jumbo TCP segment into the net_af_packet-like port (GSO).
    f.append(Ether(src=h, dst=p6) / IP(src="10.6.0.2", dst="198.51.100.4") / TCP(dport=80) /
             Raw(b"z" * 6000))
    return [bytes(x) for x in f]


def rx_record(frame, port, segs=1, tci=None, csum=None, small=False):
    ctl = port | (segs - 1) << 3 | (0x20 if tci is not None else 0) | (0x40 if small else 0) | \
        (0x80 if csum is not None else 0)
    b = bytes([ctl]) + struct.pack(">H", min(len(frame), 0xFFFF))
    if tci is not None:
        b += struct.pack(">H", tci)
    if csum is not None:
        b += bytes([csum])
    return b + frame


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# port choices (fuzz_rx.cc): p0/p1 bond0 members, p2/p3 bridge ports, p4/p5
# bond1 members, p6 L3 (rx fixup), p7 mirror target (redirected)
def rx_seeds(out):
    frames = pcap_frames()
    for i, fr in enumerate(frames):
        write(out, "pcap-%03d" % i, rx_record(fr, i % 8, segs=1 + (i // 8) % 3))
    for i, fr in enumerate(scapy_frames()):
        for port in (0, 2, 3, 4, 6):
            segs = 1 if len(fr) <= 2048 else 4
            write(out, "gen-%03d-p%d" % (i, port), rx_record(fr, port, segs=segs))
        write(out, "gen-%03d-multi" % i, rx_record(fr, 6, segs=3, small=True, csum=5))
    if frames:
        burst = b"".join(rx_record(fr, 2) for fr in frames[:8])
        write(out, "burst-p2", burst)
        write(out, "tagged-p3", rx_record(frames[0], 3, tci=20))


CONTROL_COMMANDS = [
    "help", "version", "show devices", "show ports", "show port stats all", "show port stats p0",
    "show port xstats p0", "show port rx-fixup all", "show drops", "show runtime", "show queues",
    "show bond", "show bond bond0", "show lacp bond1", "show bridge br0", "show fdb br0",
    "show addresses", "show routes", "show neigh", "show ip stats p6", "show hooks",
    "show hooks ipv4/forward", "show mirrors", "show mirrors m-in", "show captures",
    "clear stats", "fdb add br0 02:00:00:00:00:42 p2 vlan 20", "fdb del br0 02:00:00:00:00:42 p2",
    "fdb flush br0", "route add 192.0.2.0/24 via 10.6.0.2", "route del 192.0.2.0/24",
    "route add 2001:db8:7::/48 dev p6", "set link p1 down", "set link p1 up", "capture stop",
    "queue bind 3", "queue read 3 10", "queue verdict 3 all accept", "queue unbind 3",
    "complete show p", "table main", "table local",
]


def control_seeds(out):
    import json
    for i, c in enumerate(CONTROL_COMMANDS):
        req = {"argv": c.split(), "json": i % 2 == 0}
        write(out, "cmd-%02d" % i, (json.dumps(req) + "\n").encode())
    write(out, "pipelined", b"".join((json.dumps({"argv": c.split(), "id": i}) + "\n").encode()
                                     for i, c in enumerate(CONTROL_COMMANDS[:6])))
    write(out, "garbage", b'{"argv": [1, 2]}\n{]\n\n{"argv": ["show"], "json": 3}\r\n')
    words = set()
    for c in CONTROL_COMMANDS:
        words.update(c.split())
    words.update(['{"argv": [', '"json": true', '"id": ', "all", "any", "ingress", "egress",
                  "both", "vlan", "via", "dev", "bond0", "bond1", "br0", "p0", "p6", "m-both"])
    with open(out + ".dict", "w") as f:
        for w in sorted(words):
            f.write('"%s"\n' % w.replace("\\", "\\\\").replace('"', '\\"'))


FILTERS = [
    "tcp port 9091", "udp", "ip", "ip6", "arp", "vlan", "vlan 100 and tcp port 80",
    "tcp[13] & 2 != 0", "tcp[tcpflags] & (tcp-syn|tcp-fin) != 0", "portrange 9000-9100",
    "host 10.0.1.2", "src net 10.0.1.0/24 and dst host 10.0.2.2", "ether src 02:00:00:00:00:aa",
    "len > 60", "ether broadcast", "ip6 and tcp", "udp dst port 9091", "icmp or icmp6",
    "udp or (vlan and tcp)", "ip[6:2] & 0x1fff != 0", "greater 100", "ether[12:2] = 0x8100",
    "not ip and not arp", "mpls", "pppoes", "vlan and vlan 20", "ip proto 47",
    # A JIT jump back to the epilogue 129 bytes away (src/capture/filter.cc, bug 3).
    "----------------------------------ether[78]%----------------------------ether[78]----"
    "--------ether[78]----ether[78]= 1",
    # Load offsets that wrap 32 bits (filter.cc, bug 4).
    "ether[ether[0] - 1] = 1", "ether[4294967295] = 0", "ether[ether[0] + 2147483648:2] = 0",
    # JIT jumps sized before their offsets settled: one onto itself (filter.cc, bug 5).
    "vlan 00 and tcp port 13100 and --------ether[78]----ether[78]= 1",
]


def filter_seeds(out):
    exprs = list(FILTERS)
    for y in glob.glob(os.path.join(ROOT, "config", "*.yaml")):
        for line in open(y):
            line = line.strip()
            if line.startswith("filter:"):
                exprs.append(line.split(":", 1)[1].strip().strip('"'))
    frames = pcap_frames() + scapy_frames()
    for i, e in enumerate(exprs):
        for j in range(3):
            fr = frames[(i * 3 + j) % len(frames)] if frames else b""
            write(out, "f-%02d-%d" % (i, j), e.encode() + b"\0" + bytes([j]) + fr)


def loader_seeds(out):
    files = glob.glob(os.path.join(ROOT, "config", "*.yaml")) + \
        glob.glob(os.path.join(ROOT, "tests", "config", "bad", "*.yaml")) + \
        glob.glob(os.path.join(ROOT, "tests", "fuzz", "topo", "*.yaml"))
    for p in sorted(files):
        with open(p, "rb") as f:
            write(out, os.path.relpath(p, ROOT).replace("/", "_"), f.read())


def main():
    out = sys.argv[1]
    rx_seeds(os.path.join(out, "rx"))
    loader_seeds(os.path.join(out, "loader"))
    control_seeds(os.path.join(out, "control"))
    filter_seeds(os.path.join(out, "filter"))


if __name__ == "__main__":
    main()
