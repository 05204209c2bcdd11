"""dpdk-testpmd io-forward on the same vdevs and core as a scenario: the ceiling.

testpmd runs interactively (-i) with its commands written to stdin from here,
so the warm-up and measurement windows are timed exactly as for sluiced:
start, warm up, `clear port stats all` (t0 = when testpmd confirms), sleep,
`show port stats all` (t1 = when the report starts), stop, quit.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
import time

from .common import CpuWatch, cleanup_prefix, stop_process, worker_thread_names

TESTPMD = shutil.which("dpdk-testpmd") or "/usr/bin/dpdk-testpmd"


class _Reader(threading.Thread):
    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.lines, self.cv = stream, [], threading.Condition()

    def run(self):
        for line in self.stream:
            with self.cv:
                self.lines.append((time.monotonic(), line.rstrip("\n")))
                self.cv.notify_all()

    def wait_for(self, pattern: str, start: int, timeout: float) -> tuple[int, float]:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cv:
            i = start
            while True:
                while i < len(self.lines):
                    if rx.search(self.lines[i][1]):
                        return i, self.lines[i][0]
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0 or not self.is_alive():
                    raise RuntimeError(f"testpmd: no '{pattern}' within {timeout} s: "
                                       + " | ".join(l for _, l in self.lines[-8:]))
                self.cv.wait(left)


def run(eal_lcores: str, vdevs: list[str], fwd_cores: int, prefix: str, warmup: float,
        seconds: float, hugepages: bool, memory_mb: int, mbufs: int, log_path: str,
        worker_cpu: int = 1) -> dict:
    """Returns {"mpps", "rx_packets", "seconds", "per_port", "cpu"}; raises on failure."""
    if not os.access(TESTPMD, os.X_OK):
        raise RuntimeError(f"{TESTPMD} not found (Debian package dpdk)")
    lc = ["--lcores", eal_lcores] if "@" in eal_lcores else ["-l", eal_lcores]
    mem = ["--socket-mem", str(memory_mb)] if hugepages else ["--no-huge", "-m", str(memory_mb)]
    # testpmd's stdout is a pipe here: line-buffer it, or nothing arrives until exit.
    stdbuf = [shutil.which("stdbuf") or "/usr/bin/stdbuf", "-oL", "-eL"]
    args = (stdbuf + [TESTPMD] + lc + ["--no-pci", f"--file-prefix={prefix}"] + mem
            + [f"--vdev={v}" for v in vdevs]
            + ["--", "-i", "--forward-mode=io", "--rxd=1024", "--txd=1024", "--burst=32",
               f"--total-num-mbufs={mbufs}", f"--nb-cores={fwd_cores}"])
    logf = open(log_path, "w")
    logf.write(" ".join(args) + "\n")
    p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, bufsize=1)
    rd = _Reader(p.stdout)
    rd.start()

    def send(cmd):
        p.stdin.write(cmd + "\n")
        p.stdin.flush()

    try:
        i, _ = rd.wait_for(r"testpmd>|Done|Checking link statuses", 0, 60)
        send("start")
        rd.wait_for(r"io packet forwarding", i, 30)
        time.sleep(warmup)
        n0 = len(rd.lines)
        watch = CpuWatch(p.pid, worker_thread_names(1), worker_cpu)
        send("clear port stats all")
        i, t0 = rd.wait_for(r"NIC statistics for port \d+ cleared", n0, 30)
        watch.start()
        time.sleep(seconds)
        n1 = len(rd.lines)
        send("show port stats all")
        cpu = watch.stop()
        i, t1 = rd.wait_for(r"NIC statistics for port 0 ", n1, 30)
        nports = len(vdevs)
        rd.wait_for(rf"NIC statistics for port {nports - 1} ", i, 30)
        end, _ = rd.wait_for(r"Tx-bps", i, 30)
        for k in range(nports - 1):
            end, _ = rd.wait_for(r"Tx-bps", end + 1, 30)
        block = [l for _, l in rd.lines[i:end + 1]]
        send("stop")
        rd.wait_for(r"Done\.", end, 30)
        send("quit")
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            pass
    finally:
        if p.poll() is None:
            stop_process(p)
        rd.join(5)
        for _, l in rd.lines:
            logf.write(l + "\n")
        logf.close()
        cleanup_prefix(prefix)

    per_port, port = {}, None
    for l in block:
        m = re.search(r"NIC statistics for port (\d+)", l)
        if m:
            port = int(m.group(1))
            per_port[port] = {}
        m = re.search(r"RX-packets:\s*(\d+)", l)
        if m and port is not None:
            per_port[port]["rx_packets"] = int(m.group(1))
        m = re.search(r"TX-packets:\s*(\d+)", l)
        if m and port is not None:
            per_port[port]["tx_packets"] = int(m.group(1))
    dt = t1 - t0
    return {"per_port": per_port, "seconds": dt, "cpu": cpu, "args": args[len(stdbuf) + 1:]}
