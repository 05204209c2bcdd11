"""A small lab for end-to-end tests: network namespaces joined to sluiced by
veth pairs (the root side is opened by net_af_packet), sluiced started in the
foreground, sluicectl --json, scapy senders inside the namespaces, tshark.

Everything a Lab creates is removed by close(), also when a test fails.
Run with /usr/bin/python3 (it has scapy), as root.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback

BUILD = os.environ.get("SLUICE_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SLUICED = os.path.join(BUILD, "sluiced")
SLUICECTL = os.path.join(BUILD, "sluicectl")
PY = "/usr/bin/python3"


def sh(cmd, check=True, capture=True, timeout=60):
    r = subprocess.run(cmd, shell=True, text=True, capture_output=capture, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (r.returncode, cmd, r.stdout, r.stderr))
    return r


class Lab:
    def __init__(self, name):
        self.tag = "%s%d" % (name[:4], os.getpid() % 10000)  # short: interface names are <= 15
        self.tmp = tempfile.mkdtemp(prefix="sluice-e2e-%s-" % name)
        self.netns = []
        self.links = []
        self.proc = None
        self.sock = os.path.join(self.tmp, "sluice.sock")
        self.log = os.path.join(self.tmp, "sluiced.log")

    # ---- topology -------------------------------------------------------
    def host(self, short, addr=None, mac=None):
        """A namespace with one veth 'eth0' (optionally addressed); returns
        (namespace, root-side interface name)."""
        ns = "sl-%s-%s" % (self.tag, short)
        root_if = "s%s%s" % (self.tag, short)[:15]
        root_if = root_if[:15]
        sh("ip netns add %s" % ns)
        self.netns.append(ns)
        sh("ip link add %s type veth peer name eth0 netns %s" % (root_if, ns))
        self.links.append(root_if)
        # Quiet hosts: no IPv6 autoconf chatter, so counts are exact.
        for c in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
            sh("ip netns exec %s sysctl -qw %s" % (ns, c))
        sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % root_if)
        if mac:
            sh("ip -n %s link set eth0 address %s" % (ns, mac))
        sh("ip -n %s link set lo up" % ns)
        sh("ip -n %s link set eth0 up" % ns)
        sh("ip link set %s up" % root_if)
        if addr:
            sh("ip -n %s addr add %s dev eth0" % (ns, addr))
        return ns, root_if

    def ns_exec(self, ns, cmd, **kw):
        return sh("ip netns exec %s %s" % (ns, cmd), **kw)

    def scapy(self, ns, code, timeout=60):
        """Runs scapy code inside a namespace."""
        path = os.path.join(self.tmp, "send_%d.py" % int(time.time() * 1e6))
        with open(path, "w") as f:
            f.write("from scapy.all import *\nconf.verb = 0\n" + code + "\n")
        return self.ns_exec(ns, "%s %s" % (PY, path), timeout=timeout)

    def tcp_transfer(self, src_ns, dst_ns, dst_addr, nbytes, port=5599, timeout=60):
        """Sends nbytes of pseudo-random data from a socket in src_ns to a
        listener in dst_ns (dst_addr, IPv4 or IPv6) over one TCP connection
        (a namespace of None: the host's own, e.g. behind a punt TAP).
        Returns (bytes received, whether their SHA-256 is the sender's)."""
        fam = "AF_INET6" if ":" in dst_addr else "AF_INET"
        server = ("import hashlib, socket\n"
                  "s = socket.socket(socket.%s); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                  "s.bind(('%s', %d)); s.listen(1); s.settimeout(%d)\n"
                  "print('ready', flush=True)\n"
                  "c, _ = s.accept(); c.settimeout(%d); h = hashlib.sha256(); n = 0\n"
                  "while True:\n"
                  "    d = c.recv(65536)\n"
                  "    if not d: break\n"
                  "    h.update(d); n += len(d)\n"
                  "print(n, h.hexdigest(), flush=True)\n" % (fam, dst_addr, port, timeout, timeout))
        client = ("import hashlib, random, socket, sys\n"
                  "data = random.Random(%d).randbytes(%d)\n"
                  "c = socket.create_connection(('%s', %d), %d); c.sendall(data); c.shutdown(socket.SHUT_WR)\n"
                  "c.settimeout(%d); c.recv(1); c.close()\n"
                  "print(hashlib.sha256(data).hexdigest())\n" % (nbytes, nbytes, dst_addr, port, timeout, timeout))
        paths = []
        for name, code in (("srv", server), ("cli", client)):
            path = os.path.join(self.tmp, "tcp_%s_%d.py" % (name, int(time.time() * 1e6)))
            with open(path, "w") as f:
                f.write(code)
            paths.append(path)
        srv = subprocess.Popen((["ip", "netns", "exec", dst_ns] if dst_ns else []) + [PY, paths[0]],
                               stdout=subprocess.PIPE, text=True)
        try:
            assert srv.stdout.readline().strip() == "ready"
            cmd = "%s %s" % (PY, paths[1])
            cli = (self.ns_exec(src_ns, cmd, check=False, timeout=timeout + 10) if src_ns
                   else sh(cmd, check=False, timeout=timeout + 10))
            out, _ = srv.communicate(timeout=timeout + 10)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        parts = out.split()
        if len(parts) != 2:
            return 0, False
        return int(parts[0]), cli.returncode == 0 and parts[1] == cli.stdout.strip()

    # ---- sluiced ----------------------------------------------------------
    def offloads_off(self, ns, root_if):
        """Switches the veth pair's offloads off on both ends, so every frame
        is wire-sized with its checksum done. Hosts come with them on (TX
        checksum offload, TSO, GSO); only the test that covers this setting
        calls it (test_l3.test_truncated_frames_then_offloads_off)."""
        self.ns_exec(ns, "ethtool -K eth0 tx off tso off gso off gro off")
        sh("ethtool -K %s tx off tso off gso off gro off" % root_if)

    def router(self, macs, extra="", offloads=True, metrics=""):
        """The routed lab: host A (10.0.1.2/24) behind p1, host B (10.0.2.2/24)
        behind p2, sluiced routing between them (p1 10.0.1.1, p2 10.0.2.1, on
        net_af_packet over the veths; the hosts as they come, with their veth
        offloads on, unless offloads=False), with `extra` appended to the
        topology. macs: (p1, p2, A, B). Starts sluiced; returns (A, B, config
        path)."""
        p1_mac, p2_mac, a_mac, b_mac = macs
        a, if_a = self.host("a", addr="10.0.1.2/24", mac=a_mac)
        b, if_b = self.host("b", addr="10.0.2.2/24", mac=b_mac)
        self.router_ifs = (if_a, if_b)
        for ns, gw, i in ((a, "10.0.1.1", if_a), (b, "10.0.2.1", if_b)):
            self.ns_exec(ns, "ip route add default via %s" % gw)
            if not offloads:
                self.offloads_off(ns, i)
        cfg = self.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
addresses:
  - {dev: p1, address: 10.0.1.1/24}
  - {dev: p2, address: 10.0.2.1/24}
""" % (if_a, p1_mac, if_b, p2_mac) + extra, metrics=metrics)
        self.start(cfg)
        return a, b, cfg

    def router6(self, macs):
        """The routed lab in IPv6: host A (2001:db8:1::2/64) behind p1, host B
        (2001:db8:2::2/64) behind p2, sluiced routing between them (p1
        2001:db8:1::1, p2 2001:db8:2::1). macs: (p1, p2, A, B). Starts
        sluiced; returns (A, B, config path)."""
        p1_mac, p2_mac, a_mac, b_mac = macs
        a, if_a = self.host("a", mac=a_mac)
        b, if_b = self.host("b", mac=b_mac)
        for ns, addr, gw in ((a, "2001:db8:1::2/64", "2001:db8:1::1"), (b, "2001:db8:2::2/64", "2001:db8:2::1")):
            self.ns_exec(ns, "sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.eth0.disable_ipv6=0")
            self.ns_exec(ns, "ip addr add %s dev eth0 nodad" % addr)
            self.ns_exec(ns, "ip -6 route add default via %s" % gw)
        # two rte_fib and two rte_fib6 (double-buffered) need 4 x 32 MB besides the mbufs
        cfg = self.config("""ports:
  - {name: p1, device: "net_af_packet0,iface=%s", mac: "%s"}
  - {name: p2, device: "net_af_packet1,iface=%s", mac: "%s"}
addresses:
  - {dev: p1, address: "2001:db8:1::1/64"}
  - {dev: p2, address: "2001:db8:2::1/64"}
""" % (if_a, p1_mac, if_b, p2_mac), memory_mb=512)
        self.start(cfg)
        return a, b, cfg

    def config(self, body, lcores="0-1", metrics="", telemetry=False, memory_mb=256):
        text = ("eal:\n  lcores: \"%s\"\n  hugepages: false\n  memory_mb: %d\n"
                "  file_prefix: %s\ncontrol:\n  socket: %s\n  telemetry: %s\n"
                "  metrics: \"%s\"\nlogging:\n  level: info\n"
                % (lcores, memory_mb, "sl-" + self.tag, self.sock, "true" if telemetry else "false",
                   metrics)) + body
        path = os.path.join(self.tmp, "topology.yaml")
        with open(path, "w") as f:
            f.write(text)
        return path

    def start(self, config_path, wait=20):
        logf = open(self.log, "w")
        self.proc = subprocess.Popen([SLUICED, "-c", config_path, "--foreground"],
                                     stdout=logf, stderr=subprocess.STDOUT)
        deadline = time.time() + wait
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("sluiced exited with %d:\n%s" % (self.proc.returncode, self.read_log()))
            if os.path.exists(self.sock):
                r = subprocess.run([SLUICECTL, "-s", self.sock, "version"], capture_output=True, text=True)
                if r.returncode == 0:
                    return
            time.sleep(0.1)
        raise RuntimeError("sluiced did not come up:\n" + self.read_log())

    def stop(self, timeout=20):
        """SIGTERM; returns the exit status, or 99 when the daemon's last log
        line says mbufs did not come back to their pool (a leak)."""
        if self.proc is None:
            return None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc = None
        log = self.read_log()
        if rc == 0 and ("(mbufs missing)" in log or re.search(r"mbufs back \(\d+ missing\)", log)):
            return 99
        return rc

    def read_log(self):
        try:
            with open(self.log) as f:
                return f.read()
        except OSError:
            return ""

    def ctl(self, *args, check=True):
        """sluicectl ARGS --json → parsed JSON."""
        r = subprocess.run([SLUICECTL, "-s", self.sock, "--json"] + list(args),
                           capture_output=True, text=True, timeout=30)
        if check and r.returncode != 0:
            raise RuntimeError("sluicectl %s → %d: %s%s" % (" ".join(args), r.returncode, r.stdout, r.stderr))
        return json.loads(r.stdout) if r.stdout.strip() else None

    def ctl_raw(self, *args):
        return subprocess.run([SLUICECTL, "-s", self.sock] + list(args), capture_output=True,
                              text=True, timeout=30)

    def wait_until(self, cond, timeout=10, what="condition"):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            last = cond()
            if last:
                return last
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))

    # ---- teardown --------------------------------------------------------
    def close(self):
        if self.proc is not None:
            self.stop()
        for l in self.links:
            sh("ip link del %s" % l, check=False)
        for ns in self.netns:
            sh("ip netns del %s" % ns, check=False)
        sh("rm -rf /var/run/dpdk/sl-%s" % self.tag, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


class Runner:
    """Runs test functions, prints one line each and the closing count."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def run(self, fn, *args):
        name = fn.__name__
        t0 = time.time()
        try:
            fn(*args)
            self.passed += 1
            print("PASS %s (%.1fs)" % (name, time.time() - t0), flush=True)
        except Exception:
            self.failed += 1
            print("FAIL %s (%.1fs)" % (name, time.time() - t0), flush=True)
            traceback.print_exc()
            sys.stdout.flush()

    def finish(self):
        print("%d passed, %d failed" % (self.passed, self.failed))
        sys.exit(1 if self.failed or not self.passed else 0)
