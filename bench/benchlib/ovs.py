"""OVS-DPDK (Debian openvswitch-switch-dpdk) in a private directory, on the
same vdevs and cores as sluice: ovsdb-server + ovs-vswitchd-dpdk with their
own database, sockets, pid and log files, torn down afterwards. Nothing of the
system's Open vSwitch (service, /etc/openvswitch, /var/run/openvswitch) is
touched, and the system's ovs-vswitchd alternative is not switched.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time

from .common import CpuWatch, cleanup_prefix, log

VSWITCHD_DPDK = "/usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk"
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
PACKAGE = "openvswitch-switch-dpdk"


def installed() -> bool:
    return os.access(VSWITCHD_DPDK, os.X_OK) and shutil.which("ovsdb-server") is not None


def install() -> str | None:
    """apt-get install the package when it is missing; None on success, else why not."""
    if installed():
        return None
    if os.geteuid() != 0:
        return f"{PACKAGE} is not installed and installing it needs root"
    log(f"installing {PACKAGE} (apt-get; services are not started: policy-rc.d)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGE],
                       env=env, capture_output=True, text=True)
    if p.returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        p = subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", PACKAGE],
                           env=env, capture_output=True, text=True)
    if p.returncode != 0 or not installed():
        return f"apt-get install {PACKAGE} failed: {(p.stderr or p.stdout).strip()[-400:]}"
    return None


class Ovs:
    """ovsdb-server + ovs-vswitchd-dpdk in directory d."""

    def __init__(self, d: str, prefix: str, pmd_cpu: int = 1, main_cpu: int = 0,
                 socket_mem: int = 512, hugepages: bool = True):
        self.d, self.prefix = d, prefix
        self.pmd_cpu, self.main_cpu = pmd_cpu, main_cpu
        self.socket_mem, self.hugepages = socket_mem, hugepages
        self.db = f"unix:{d}/db.sock"
        self.env = dict(os.environ, OVS_RUNDIR=d, OVS_LOGDIR=d, OVS_DBDIR=d, OVS_SYSCONFDIR=d)
        self.started = []

    # -- plumbing --
    def run(self, *args, check=True, timeout=60) -> str:
        p = subprocess.run(list(args), env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:4])}…: {(p.stderr or p.stdout).strip()[-600:]}")
        return p.stdout

    def vsctl(self, *args, **kw) -> str:
        return self.run("ovs-vsctl", f"--db={self.db}", "--timeout=60", *args, **kw)

    def ofctl(self, *args, **kw) -> str:
        return self.run("ovs-ofctl", *args, **kw)

    def appctl(self, *args, **kw) -> str:
        return self.run("ovs-appctl", "-t", f"{self.d}/ovs-vswitchd.ctl", *args, **kw)

    def log_tail(self, n=8) -> str:
        try:
            with open(f"{self.d}/ovs-vswitchd.log", errors="replace") as f:
                lines = [l.rstrip() for l in f if "|WARN|" in l or "|ERR|" in l or "|EMER|" in l]
            return " | ".join(lines[-n:])
        except OSError:
            return ""

    def start(self) -> None:
        os.makedirs(self.d, exist_ok=True)
        self.run("ovsdb-tool", "create", f"{self.d}/conf.db", SCHEMA)
        self.run("ovsdb-server", f"{self.d}/conf.db", f"--remote=punix:{self.d}/db.sock",
                 f"--pidfile={self.d}/ovsdb-server.pid", "--detach",
                 f"--log-file={self.d}/ovsdb-server.log", f"--unixctl={self.d}/ovsdb-server.ctl")
        self.started.append("ovsdb-server")
        self.vsctl("--no-wait", "init")
        extra = f"--no-pci --file-prefix={self.prefix}" + ("" if self.hugepages else " --no-huge")
        cfg = [f"other_config:dpdk-init=true",
               f"other_config:dpdk-lcore-mask={1 << self.main_cpu:#x}",
               f"other_config:pmd-cpu-mask={1 << self.pmd_cpu:#x}",
               f'other_config:dpdk-extra="{extra}"',
               "other_config:n-handler-threads=1", "other_config:n-revalidator-threads=1"]
        if self.hugepages:
            cfg += [f"other_config:dpdk-socket-mem={self.socket_mem}",
                    f"other_config:dpdk-socket-limit={self.socket_mem}"]
        self.vsctl("--no-wait", "set", "Open_vSwitch", ".", *cfg)
        # Every thread but the PMD stays on the control CPU (the PMD pins itself).
        self.run("taskset", "-c", str(self.main_cpu), VSWITCHD_DPDK, self.db,
                 f"--pidfile={self.d}/ovs-vswitchd.pid", "--detach",
                 f"--log-file={self.d}/ovs-vswitchd.log", f"--unixctl={self.d}/ovs-vswitchd.ctl",
                 "-vconsole:off", "-vfile:info", timeout=120)
        self.started.append("ovs-vswitchd")
        ok = self.vsctl("get", "Open_vSwitch", ".", "dpdk_initialized", check=False).strip()
        if ok != "true":
            raise RuntimeError(f"ovs-vswitchd: DPDK not initialised (dpdk_initialized={ok or '?'}): "
                               f"{self.log_tail()}")

    def pid(self, name: str) -> int | None:
        try:
            with open(f"{self.d}/{name}.pid") as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def add_bridge(self, br: str) -> None:
        self.vsctl("add-br", br, "--", "set", "bridge", br, "datapath_type=netdev")

    def add_ports(self, br: str, ports: list[tuple[str, str]]) -> None:
        """ports: [(name, devargs)], OpenFlow port numbers 1, 2, ... in order.
        Traffic starts as soon as the pcap port is added: configure the
        bridge (flows, FDB) before, not under a 60 Mpps upcall storm."""
        for i, (name, devargs) in enumerate(ports, 1):
            self.vsctl("add-port", br, name, "--", "set", "Interface", name, "type=dpdk",
                       f"options:dpdk-devargs={devargs}", f"ofport_request={i}")
        for name, _ in ports:
            err = self.vsctl("get", "Interface", name, "error", check=False).strip()
            if err and err != "[]":
                raise RuntimeError(f"ovs: interface {name}: {err}: {self.log_tail()}")

    def port_stats(self, br: str) -> dict[str, dict[str, int]]:
        """OpenFlow port statistics read live from ovs-vswitchd (ovs-ofctl dump-ports)."""
        out = self.ofctl("dump-ports", br)
        res, cur = {}, None
        for line in out.splitlines():
            m = re.match(r'\s*port\s+"?([^:"]+)"?:\s*rx pkts=(\d+).*?drop=(\d+)', line)
            if m:
                cur = m.group(1).strip()
                res[cur] = {"rx_packets": int(m.group(2)), "rx_dropped": int(m.group(3))}
                continue
            m = re.match(r"\s*tx pkts=(\d+).*?drop=(\d+)", line)
            if m and cur:
                res[cur]["tx_packets"] = int(m.group(1))
                res[cur]["tx_dropped"] = int(m.group(2))
        return res

    def measure(self, br: str, warmup: float, seconds: float) -> dict:
        time.sleep(warmup)
        pmd = self.pid("ovs-vswitchd")
        watch = CpuWatch(pmd, [f"pmd-c{self.pmd_cpu:02d}/id:*"], self.pmd_cpu)
        ta = time.monotonic()
        s0 = self.port_stats(br)
        tb = time.monotonic()
        self.appctl("dpif-netdev/pmd-stats-clear", check=False)
        watch.start()
        time.sleep(seconds)
        tc = time.monotonic()
        s1 = self.port_stats(br)
        td = time.monotonic()
        cpu = watch.stop()
        dt = (tc + td) / 2 - (ta + tb) / 2
        ports = {p: {k: v - s0.get(p, {}).get(k, 0) for k, v in c.items()} for p, c in s1.items()}
        return {"window_s": dt, "ports": ports, "cpu": cpu,
                "pmd_stats": self.appctl("dpif-netdev/pmd-stats-show", check=False)}

    def stop(self) -> None:
        for name in ("ovs-vswitchd", "ovsdb-server"):
            pid = self.pid(name)
            if name in self.started:
                subprocess.run(["ovs-appctl", "-t", f"{self.d}/{name}.ctl", "exit"], env=self.env,
                               capture_output=True, timeout=60)
            if pid:
                for _ in range(100):
                    if not os.path.exists(f"/proc/{pid}"):
                        break
                    time.sleep(0.1)
                else:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
        self.started = []
        cleanup_prefix(self.prefix)
