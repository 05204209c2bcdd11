#!/usr/bin/python3
"""Reference for tests/unit/test_bond.cc's xmit_hash table: builds the test
flows with scapy and computes Linux 6.x's bond_xmit_hash for each policy
from the formulas of the spec (§3.4) and bond_main.c, independently of
src/bond/hash.cc. Prints the C++ table rows:

    /usr/bin/python3 tests/unit/bond_hash_ref.py
"""
import struct

from scapy.all import (ARP, GRE, ICMP, IP, TCP, UDP, Dot1Q, Ether, ICMPv6EchoRequest, IPv6,
                       Raw, raw)

M1, M2 = "02:00:00:00:00:01", "02:00:00:00:00:02"


def le32(b):
    return struct.unpack("<I", bytes(b[:4]).ljust(4, b"\0"))[0]


def be16(b):
    return struct.unpack(">H", bytes(b[:2]))[0]


def eth_hash(f):
    return (f[5] ^ f[11]) ^ be16(f[12:14])


def v6fold(a):
    return le32(a[0:4]) ^ le32(a[4:8]) ^ le32(a[8:12]) ^ le32(a[12:16])


def ports_at(f, off, proto):
    po = {6: 0, 17: 0, 33: 0, 50: 0, 132: 0, 136: 0, 51: 4}.get(proto)
    if po is None or off + po + 4 > len(f):
        return 0
    return le32(f[off + po:off + po + 4])


def icmp_key(f, off):
    if off + 8 > len(f):
        return None
    t, c = f[off], f[off + 1]
    if t in (0, 8, 13, 14, 128, 129):
        ident = be16(f[off + 4:off + 6]) or 1
    else:
        ident = 0
    return t, c, ident


def flow_ip(f, l2, off, l34, k):
    """bond_flow_ip: returns (ok, new offset, proto)."""
    proto = k.get("proto", -1)
    if l2 == 0x0800:
        if off + 20 > len(f):
            return False, off, proto
        k["src"], k["dst"] = le32(f[off + 12:]), le32(f[off + 16:])
        frag = be16(f[off + 6:off + 8]) & 0x3fff
        if not frag:
            proto = f[off + 9]
        off += (f[off] & 15) * 4
    elif l2 == 0x86dd:
        if off + 40 > len(f):
            return False, off, proto
        k["src"], k["dst"] = v6fold(f[off + 8:off + 24]), v6fold(f[off + 24:off + 40])
        proto = f[off + 6]
        off += 40
    else:
        return False, off, proto
    k["proto"] = proto
    if l34 and proto >= 0:
        k["ports"] = ports_at(f, off, proto)
    return True, off, proto


def dissect_l3(f, l34):
    k = {"src": 0, "dst": 0, "ports": 0, "icmp": (0, 0, 0)}
    l2 = be16(f[12:14])
    ok, off, proto = flow_ip(f, l2, 14, l34, k)
    if not ok:
        return None
    if proto in (1, 58):
        ic = icmp_key(f, off)
        if ic:
            k["icmp"] = ic
        t = k["icmp"][0]
        err = t in (3, 4, 5, 11, 12) if proto == 1 else t in (1, 2, 3, 4)
        if not err:
            return k
        ok, _, _ = flow_ip(f, l2, off + 8, l34, k)
        return k if ok else None
    return k


def dissect_full(f):
    k = {"src": 0, "dst": 0, "ports": 0, "icmp": (0, 0, 0)}
    proto, off = be16(f[12:14]), 14
    for _ in range(15):
        if proto in (0x8100, 0x88a8):
            if off + 4 > len(f):
                return None
            proto, off = be16(f[off + 2:off + 4]), off + 4
            continue
        if proto == 0x0800:
            if off + 20 > len(f) or (f[off] & 15) < 5:
                return None
            ipp = f[off + 9]
            k["src"], k["dst"] = le32(f[off + 12:]), le32(f[off + 16:])
            frag = be16(f[off + 6:off + 8]) & 0x3fff
            off += (f[off] & 15) * 4
            if frag:
                return k
        elif proto == 0x86dd:
            if off + 40 > len(f):
                return None
            ipp = f[off + 6]
            k["src"], k["dst"] = v6fold(f[off + 8:off + 24]), v6fold(f[off + 24:off + 40])
            off += 40
        elif proto in (0x0806, 0x8035, 0x8847, 0x8848, 0x8906):
            return k
        else:
            return None
        while True:
            if ipp == 47:
                flags, inner = be16(f[off:off + 2]), be16(f[off + 2:off + 4])
                if flags & 0x4000 or flags & 7:
                    return k
                o = 4 + 4 * bool(flags & 0x8000) + 4 * bool(flags & 0x2000) + 4 * bool(flags & 0x1000)
                if inner == 0x6558:
                    inner = be16(f[off + o + 12:off + o + 14])
                    o += 14
                off += o
                proto = inner
                break
            if ipp == 4:
                proto = 0x0800
                break
            if ipp == 41:
                proto = 0x86dd
                break
            if ipp in (1, 58):
                ic = icmp_key(f, off)
                if ic:
                    k["icmp"] = ic
            k["ports"] = ports_at(f, off, ipp)
            return k
    return k


def bond_hash(policy, f, vlan_tci=None):
    if policy == "vlan+srcmac":
        s = f[6:12]
        return (vlan_tci or 0) ^ (s[0] << 16 | s[1] << 8 | s[2]) ^ (s[3] << 16 | s[4] << 8 | s[5])
    if policy == "layer2":
        return eth_hash(f)
    k = dissect_full(f) if policy.startswith("encap") else dissect_l3(f, policy == "layer3+4")
    if k is None:
        return eth_hash(f)
    if policy in ("layer2+3", "encap2+3"):
        h = eth_hash(f)
    elif k["icmp"][2]:
        t, c, i = k["icmp"]
        h = t | c << 8 | i << 16
    else:
        h = k["ports"]
    h ^= k["dst"] ^ k["src"]
    h &= 0xffffffff
    h ^= h >> 16
    h ^= h >> 8
    if policy in ("layer3+4", "encap3+4"):
        h >>= 1
    return h


FLOWS = [
    ("worked example: UDP 10.0.0.1:1000 -> 10.0.0.2:2000",
     Ether(src=M1, dst=M2) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000), None),
    ("second example: dst ..:03",
     Ether(src=M1, dst="02:00:00:00:00:03") / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000), None),
    ("TCP 10.1.2.3:40000 -> 192.168.7.9:443",
     Ether(src="02:00:00:00:00:aa", dst="02:00:00:00:00:17") / IP(src="10.1.2.3", dst="192.168.7.9") / TCP(sport=40000, dport=443), None),
    ("IPv4 first fragment (MF): no ports",
     Ether(src=M1, dst=M2) / IP(src="10.0.0.1", dst="10.0.0.2", flags="MF") / UDP(sport=1000, dport=2000), None),
    ("IPv4 later fragment (offset 185): no ports",
     Ether(src=M1, dst=M2) / IP(src="10.0.0.1", dst="10.0.0.2", frag=185, proto=17) / Raw(b"\x03\xe8\x07\xd0" + b"x" * 20), None),
    ("ICMP echo id 0x1234",
     Ether(src=M1, dst=M2) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=0x1234, seq=1), None),
    ("ICMP echo id 0 (counts as id 1)",
     Ether(src=M1, dst=M2) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP(type=8, id=0, seq=1), None),
    ("ICMP port unreachable: the inner flow's addresses and ports",
     Ether(src=M1, dst=M2) / IP(src="10.0.0.9", dst="10.0.0.1") / ICMP(type=3, code=3) /
     IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000), None),
    ("IPv6 TCP 2001:db8::1:5000 -> 2001:db8::2:80 (addresses folded)",
     Ether(src=M1, dst=M2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / TCP(sport=5000, dport=80), None),
    ("ICMPv6 echo request id 7",
     Ether(src=M1, dst=M2) / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest(id=7, seq=1), None),
    ("ARP: layer2+3 falls back to layer2, encap2+3 folds",
     Ether(src=M1, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="10.0.0.1", pdst="10.0.0.2", hwsrc=M1), None),
    ("GRE 192.0.2.1 -> 192.0.2.2 carrying UDP 10.9.0.1:53 -> 10.9.0.2:33333",
     Ether(src=M1, dst=M2) / IP(src="192.0.2.1", dst="192.0.2.2") / GRE(proto=0x0800) /
     IP(src="10.9.0.1", dst="10.9.0.2") / UDP(sport=53, dport=33333), None),
    ("IPIP 192.0.2.1 -> 192.0.2.2 carrying TCP 10.9.0.1:1234 -> 10.9.0.2:80",
     Ether(src=M1, dst=M2) / IP(src="192.0.2.1", dst="192.0.2.2", proto=4) /
     IP(src="10.9.0.1", dst="10.9.0.2") / TCP(sport=1234, dport=80), None),
    ("in-band 802.1Q tag: layer2+3/3+4 fall back to layer2, encap looks inside",
     Ether(src=M1, dst=M2) / Dot1Q(vlan=100) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000), None),
    ("vlan+srcmac: out-of-band TCI 0x2064, source 00:1b:21:3c:4d:5e",
     Ether(src="00:1b:21:3c:4d:5e", dst=M2) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=1000, dport=2000), 0x2064),
    ("LLDP (0x88cc): every policy falls back to layer2",
     Ether(src=M1, dst="01:80:c2:00:00:0e", type=0x88cc) / Raw(b"\x02\x07\x04" + b"\0" * 40), None),
]

POLICIES = ["layer2", "layer2+3", "layer3+4", "encap2+3", "encap3+4", "vlan+srcmac"]

if __name__ == "__main__":
    for name, pkt, tci in FLOWS:
        f = raw(pkt)
        hashes = ", ".join("0x%08x" % bond_hash(p, f, tci) for p in POLICIES)
        print("    {%s,\n     \"%s\",\n     %s,\n     {%s}}," % (
            '"' + name + '"', f.hex(), "0x%04x" % tci if tci is not None else "-1", hashes))
