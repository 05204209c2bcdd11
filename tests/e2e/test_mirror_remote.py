#!/usr/bin/python3
"""End-to-end: remote mirrors (VXLAN, GRE, ERSPAN type II) to an analyzer
namespace M behind p3, decapsulated by the kernel's vxlan device or decoded
by tshark (GRE: this kernel has no gretap; ERSPAN); a filtered egress capture
read by tshark.

The lab is test_mirror.py's: host A behind p1, host B behind p2, sluiced
routing between them, M (10.0.3.2) behind p3 (10.0.3.1). The mirror copies
p2's egress `tcp port 9091`; the originals are the frames B received."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, Runner, sh  # noqa: E402
from test_mirror import SEND_TCP, Tcpdump, frames, lab3  # noqa: E402

P3_ADDR = "  - {dev: p3, address: 10.0.3.1/24}\n"


def remote_case(name, to, m_setup, m_iface, m_expr="", check=None, capture=False):
    """Mirror p2 egress `tcp port 9091` to `to`; M's kernel set up by
    m_setup (commands run in M); tcpdump on M's m_iface. Returns what
    check(lab, seen_m, seen_b) returns."""
    lab = Lab(name)
    dumps = []
    try:
        a, b, m = lab3(lab, """  - name: rm
    source: {dev: p2, direction: egress}
    filter: "tcp port 9091"
    to: %s
""" % to, extra=P3_ADDR, m_addr="10.0.3.2/24")
        lab.ns_exec(m, "ip route add default via 10.0.3.1")
        for c in m_setup:
            lab.ns_exec(m, c)
        cap = os.path.join(lab.tmp, "p2.pcapng")
        if capture:
            lab.ctl("capture", "start", "p2", "egress", "tcp", "port", "9091", "file", cap)
        at_b = Tcpdump(lab, b, os.path.join(lab.tmp, "b.pcap"), "tcp dst port 9091", "in")
        at_m = Tcpdump(lab, m, os.path.join(lab.tmp, "m.pcap"), m_expr, iface=m_iface)
        dumps += [at_b, at_m]
        lab.ctl("clear", "stats")
        t0 = time.time()
        lab.scapy(a, SEND_TCP)
        lab.wait_until(lambda: lab.ctl("show", "mirrors")["rm"]["copies"] >= 5, what="5 copies")
        time.sleep(0.5)
        for d in dumps:
            d.stop()
        t1 = time.time()
        seen_b = frames(at_b.path)
        seen_m = frames(at_m.path)
        assert len(seen_b) == 5, len(seen_b)
        st = lab.ctl("show", "mirrors")["rm"]
        assert st["hits"] == 5 and st["copies"] == 5 and st["copies_failed"] == 0, st
        if capture:
            lab.ctl("capture", "stop")
            caps = lab.ctl("show", "captures")
            assert caps[0]["filter"] == "tcp port 9091", caps
            # 5 matching; the 3 port-80 and 2 UDP 9091 frames were filtered.
            assert caps[0]["accepted"] == 5 and caps[0]["filtered"] >= 5, caps
            r = sh("tshark -r %s -T fields -e frame.interface_name -e tcp.dstport -e frame.time_epoch" % cap)
            rows = [l.split("\t") for l in r.stdout.strip().splitlines()]
            assert len(rows) == 5, rows
            for ifname, port, ts in rows:
                assert ifname == "p2" and port == "9091", rows
                assert t0 - 1 <= float(ts) <= t1 + 1, (ts, t0, t1)
            # The pcapng's interface block names p2 (tshark's capinfos view).
            r = sh("capinfos -I %s" % cap, check=False)
            assert "p2" in r.stdout, r.stdout
            assert frames(cap) == seen_b, "the capture holds the frames B received"
        if check:
            check(lab, at_m.path, seen_m, seen_b)
        assert lab.stop() == 0
    finally:
        for d in dumps:
            d.stop()
        lab.close()


def test_vxlan_remote_mirror_kernel_decap_and_filtered_capture():
    def check(lab, path, seen_m, seen_b):
        # The kernel's vxlan device decapsulated them: the originals, byte for byte.
        assert seen_m == seen_b, ([f.hex() for f in seen_m][:2], [f.hex() for f in seen_b][:2])
    remote_case("mrvx", "{vxlan: {remote: 10.0.3.2, vni: 42}}",
                ["ip link add vx0 type vxlan id 42 dstport 4789 local 10.0.3.2 dev eth0",
                 "ip link set vx0 up"], "vx0", check=check, capture=True)


def test_gre_remote_mirror_decoded_by_tshark():
    """Ethernet over GRE (0x6558, key 77) as Linux's gretap receives it. This
    machine's kernel (6.18.44-fc) is built without GRE (CONFIG_NET_IPGRE_DEMUX
    is not set: `ip link add ... type gretap` says "Unknown device type"), so
    the packets are decoded by tshark and the inner frames compared byte for
    byte instead of being decapsulated by a kernel gretap device."""
    def check(lab, path, seen_m, seen_b):
        r = sh("tshark -r %s -T fields -e gre.proto -e gre.key -e gre.flags.key -e gre.flags.sequence_number "
               "-e tcp.dstport -e ip.src" % path)
        rows = [l.split("\t") for l in r.stdout.strip().splitlines()]
        assert len(rows) == 5, rows
        for proto, key, kflag, sflag, port, src in rows:
            assert proto == "0x6558" and int(key, 0) == 77, rows
            assert kflag in ("1", "True") and sflag in ("0", "False"), rows
            assert port == "9091" and src.startswith("10.0.3.1,"), rows
        # Outer Ethernet 14 + IPv4 20 + GRE with key 8, then the original frame.
        assert [f[42:] for f in seen_m] == seen_b, ([f.hex() for f in seen_m][:2], [f.hex() for f in seen_b][:2])
        assert all(f[23] == 47 and f[34:36] == b"\x20\x00" for f in seen_m), [f.hex() for f in seen_m]
    remote_case("mrgr", "{gre: {remote: 10.0.3.2, key: 77}}", [], "eth0", m_expr="ip proto 47", check=check)


def test_erspan_type2_decoded_by_tshark():
    def check(lab, path, seen_m, seen_b):
        r = sh("tshark -r %s -T fields -e gre.proto -e gre.sequence_number -e erspan.version "
               "-e erspan.spanid -e tcp.dstport -e ip.dst" % path)
        rows = [l.split("\t") for l in r.stdout.strip().splitlines()]
        assert len(rows) == 5, rows
        seqs = []
        for proto, seq, ver, span, port, dst in rows:
            assert proto == "0x88be" and ver == "1" and span == "7", rows
            assert port == "9091" and "10.0.2.2" in dst and "10.0.3.2" in dst, rows
            seqs.append(int(seq))
        assert seqs == sorted(seqs) and len(set(seqs)) == 5, seqs  # increasing
        # The inner frame is the original: it ends each outer packet.
        for outer, orig in zip(seen_m, seen_b):
            assert outer.endswith(orig), (outer.hex(), orig.hex())
    remote_case("mrer", "{erspan: {remote: 10.0.3.2, session: 7}}", [], "eth0",
                m_expr="ip proto 47", check=check)


if __name__ == "__main__":
    if os.geteuid() != 0:
        print("needs root (network namespaces)")
        sys.exit(1)
    r = Runner()
    for t in (test_vxlan_remote_mirror_kernel_decap_and_filtered_capture,
              test_gre_remote_mirror_decoded_by_tshark,
              test_erspan_type2_decoded_by_tshark):
        r.run(t)
    r.finish()
