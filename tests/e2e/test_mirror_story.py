#!/usr/bin/python3
"""End-to-end: the operator's story of issue #14, part one (docs/mirror.md).

A sends TCP to B's port 9091 through sluiced; an egress mirror on p2 with
the filter `tcp port 9091` copies those frames to lo. As in Linux, lo
receives them again and classifies them against its all-zero MAC: they are
OTHERHOST and ip_rcv drops them, counted as rx_otherhost_dropped on lo —
exactly one per mirrored frame. A capture on lo (ingress) sees every copy,
byte for byte as B received the original. (The sluice way on, a VXLAN
remote mirror to an analyzer, is in test_mirror_remote*.)"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, Runner, sh  # noqa: E402
from test_mirror import A_MAC, P1_MAC, SEND_TCP, Tcpdump, frames, lab3  # noqa: E402,F401


def test_mirror_to_lo_is_dropped_as_otherhost():
    lab = Lab("mrlo")
    dumps = []
    try:
        a, b, m = lab3(lab, """  - name: tolo
    source: {dev: p2, direction: egress}
    filter: "tcp port 9091"
    to: {dev: lo}
""")
        devs = lab.ctl("show", "devices")
        lo = devs["lo"] if isinstance(devs, dict) else [d for d in devs if d["name"] == "lo"][0]
        assert lo["kind"] == "loopback" and lo["mac"] == "00:00:00:00:00:00" and lo["mtu"] == 65536, lo
        cap = os.path.join(lab.tmp, "lo.pcapng")
        lab.ctl("clear", "stats")
        lab.ctl("capture", "start", "lo", "ingress", "file", cap, "snaplen", "2048")
        at_b = Tcpdump(lab, b, os.path.join(lab.tmp, "b.pcap"), "tcp dst port 9091", "in")
        dumps.append(at_b)
        lab.scapy(a, SEND_TCP)
        lab.wait_until(lambda: lab.ctl("show", "port", "stats", "lo")["lo"]["rx_otherhost_dropped"] >= 5,
                       what="5 OTHERHOST drops on lo")
        at_b.stop()
        lab.ctl("capture", "stop")
        st = lab.ctl("show", "mirrors")["tolo"]
        assert st["hits"] == 5 and st["copies"] == 5 and st["copies_failed"] == 0, st
        ps = lab.ctl("show", "port", "stats", "lo")["lo"]
        # Exactly the mirrored frames: sent to lo, received on lo, dropped by IP.
        assert ps["tx_packets"] == 5 and ps["rx_packets"] == 5, ps
        assert ps["rx_otherhost_dropped"] == 5 and ps["rx_dropped"] == 0, ps
        seen_b = frames(at_b.path)
        assert len(seen_b) == 5, len(seen_b)
        seen_lo = frames(cap)
        assert seen_lo == seen_b, ([f.hex() for f in seen_lo][:2], [f.hex() for f in seen_b][:2])
        drops = lab.ctl_raw("show", "drops").stdout
        assert "otherhost" in drops, drops
        assert lab.stop() == 0
    finally:
        for d in dumps:
            d.stop()
        lab.close()


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        sys.exit(1)
    r = Runner()
    r.run(test_mirror_to_lo_is_dropped_as_otherhost)
    r.finish()
