"""Traffic files for the benchmarks: pcap files generated with scapy from a
small declarative spec (a scenario's TRAFFIC dict), cached by content.

A spec (every key optional):

    {
      "frames":  1024,                                   # distinct frames in the file
      "src_mac": {"base": "02:10:00:00:00:00", "count": 1024},
      "dst_mac": {"base": "02:20:00:00:00:00", "count": 1},
      "src_ip":  {"base": "10.1.0.1", "count": 1024},
      "dst_ip":  {"base": "10.2.0.1", "count": 1},
      "sport":   {"base": 1024, "count": 1},
      "dport":   {"base": 9, "count": 1},
    }

Frame i uses element (i % count) of each range; a range may also have a
"step" (default 1): element k is base + k * step (e.g. dst_ip step 256 puts
every destination in its own /24). Every frame is
Ether / IPv4 / UDP, padded to its size (Ether / IPv6 / UDP when the
addresses are IPv6: then "64" means 66 bytes, the smallest such frame):

  * "64":   every frame is 64 bytes on the wire = 60 bytes in the file
            (the 4-byte FCS is not part of an mbuf, as in testpmd/pktgen);
  * "imix": the simple IMIX 7:4:1 of 64/594/1518-byte frames (with FCS),
            interleaved in a fixed 12-frame pattern.
"""
from __future__ import annotations

import hashlib
import ipaddress
import json
import os
from typing import Iterable

FCS = 4
SIZES = {
    "64": [64],
    "imix": [64, 594, 64, 64, 594, 64, 1518, 64, 594, 64, 64, 594],
}
GENERATOR_VERSION = 1  # bump when the bytes a spec produces change

DEFAULT_SPEC = {
    "frames": 1024,
    "src_mac": {"base": "02:10:00:00:00:00", "count": 1},
    "dst_mac": {"base": "02:20:00:00:00:00", "count": 1},
    "src_ip": {"base": "10.1.0.1", "count": 1},
    "dst_ip": {"base": "10.2.0.1", "count": 1},
    "sport": {"base": 1024, "count": 1},
    "dport": {"base": 9, "count": 1},
}


def mac_add(base: str, i: int) -> str:
    v = int(base.replace(":", ""), 16) + i
    s = f"{v:012x}"
    return ":".join(s[k:k + 2] for k in range(0, 12, 2))


def macs(base: str, count: int) -> list[str]:
    """The MAC addresses a {"base", "count"} range generates (for topologies)."""
    return [mac_add(base, i) for i in range(count)]


def ip_add(base: str, i: int) -> str:
    a = ipaddress.ip_address(base)
    return str(type(a)(int(a) + i))


def normalize(spec: dict | None) -> dict:
    out = json.loads(json.dumps(DEFAULT_SPEC))
    for k, v in (spec or {}).items():
        if k not in out:
            raise ValueError(f"traffic: unknown key '{k}' (known: {', '.join(out)})")
        if isinstance(out[k], dict):
            out[k].update(v)
        else:
            out[k] = v
    return out


def wire_sizes(mode: str) -> list[int]:
    if mode not in SIZES:
        raise ValueError(f"traffic size mode '{mode}' (known: {', '.join(SIZES)})")
    return SIZES[mode]


def mean_wire_size(mode: str) -> float:
    s = wire_sizes(mode)
    return sum(s) / len(s)


def cache_path(cache_dir: str, spec: dict, mode: str) -> str:
    key = json.dumps({"v": GENERATOR_VERSION, "spec": normalize(spec), "mode": mode}, sort_keys=True)
    h = hashlib.sha1(key.encode()).hexdigest()[:12]
    return os.path.join(cache_dir, f"traffic-{mode}-{h}.pcap")


def _frames(spec: dict, mode: str) -> Iterable[bytes]:
    # scapy is imported lazily: listing scenarios must not pay for it.
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether
    from scapy.packet import Raw

    sizes = wire_sizes(mode)

    def pick(r, i):
        return (i % max(1, int(r["count"]))) * int(r.get("step", 1))

    v6 = ":" in spec["dst_ip"]["base"]

    def l3(src, dst):
        return IPv6(src=src, dst=dst, hlim=64) if v6 else IP(src=src, dst=dst, ttl=64)

    for i in range(int(spec["frames"])):
        hdr = (Ether(src=mac_add(spec["src_mac"]["base"], pick(spec["src_mac"], i)),
                     dst=mac_add(spec["dst_mac"]["base"], pick(spec["dst_mac"], i)))
               / l3(src=ip_add(spec["src_ip"]["base"], pick(spec["src_ip"], i)),
                    dst=ip_add(spec["dst_ip"]["base"], pick(spec["dst_ip"], i)))
               / UDP(sport=int(spec["sport"]["base"]) + pick(spec["sport"], i),
                     dport=int(spec["dport"]["base"]) + pick(spec["dport"], i)))
        want = sizes[i % len(sizes)] - FCS
        if v6:  # Ether/IPv6/UDP is 62 bytes: the smallest such frame is 66 on the wire
            want = max(want, len(hdr))
        pad = want - len(hdr)
        if pad < 0:
            raise ValueError(f"frame {i}: headers ({len(hdr)} B) exceed {want} B")
        yield bytes(hdr / Raw(b"\x00" * pad))


def _write_pcap(path: str, frames: Iterable[bytes]) -> int:
    import struct

    n = 0
    tmp = path + f".tmp{os.getpid()}"
    with open(tmp, "wb") as f:
        # Classic pcap, microsecond timestamps, LINKTYPE_ETHERNET.
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, b in enumerate(frames):
            f.write(struct.pack("<IIII", 1_700_000_000, i % 1_000_000, len(b), len(b)))
            f.write(b)
            n += 1
    os.replace(tmp, path)
    return n


def ensure(cache_dir: str, spec: dict, mode: str) -> tuple[str, int, bool]:
    """Returns (path, frames, generated_now)."""
    os.makedirs(cache_dir, exist_ok=True)
    spec = normalize(spec)
    path = cache_path(cache_dir, spec, mode)
    if os.path.exists(path):
        return path, int(spec["frames"]), False
    n = _write_pcap(path, _frames(spec, mode))
    return path, n, True
