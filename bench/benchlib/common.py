"""Machine facts, CPU accounting, hugepages and DPDK leftovers."""
from __future__ import annotations

import glob
import os
import re
import shutil
import signal
import subprocess
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True, file=__import__("sys").stderr)


# ---- machine -------------------------------------------------------------------------------

def machine() -> dict:
    info = {"model": "?", "cpus": os.cpu_count(), "mhz": None, "kernel": os.uname().release}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            k, _, v = line.partition(":")
            v = v.strip()
            if k == "Model name":
                info["model"] = v
            elif k == "Hypervisor vendor":
                info["hypervisor"] = v
            elif k == "BogoMIPS":
                info["bogomips"] = float(v)
    except (OSError, subprocess.SubprocessError):
        pass
    mhz = cpuinfo_mhz()
    if mhz:
        info["mhz"] = mhz
    try:
        info["dpdk"] = subprocess.run(["pkg-config", "--modversion", "libdpdk"], capture_output=True,
                                      text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def cpuinfo_mhz() -> float | None:
    try:
        with open("/proc/cpuinfo") as f:
            vals = [float(m.group(1)) for m in re.finditer(r"^cpu MHz\s*:\s*([\d.]+)", f.read(), re.M)]
        return sum(vals) / len(vals) if vals else None
    except OSError:
        return None


def loadavg() -> list[float]:
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


# ---- CPU accounting: who really had the worker's CPU during a measurement ------------------

def cpu_times() -> dict[int, list[int]]:
    """Per CPU: [user, nice, system, idle, iowait, irq, softirq, steal] in ticks."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+)\s+(.*)", line)
            if m:
                out[int(m.group(1))] = [int(x) for x in m.group(2).split()[:8]]
    return out


def worker_thread_names(lcore: int) -> list[str]:
    """What EAL 22.11 calls the thread of a worker lcore (name varies by release)."""
    return [f"rte-worker-{lcore}", f"lcore-worker-{lcore}", f"dpdk-worker{lcore}"]


def thread_ticks(pid: int, comm: str | list[str]) -> int | None:
    """utime+stime (ticks) of the thread of pid whose name is comm (or one of
    them; a name ending in '*' is a prefix)."""
    names = [comm] if isinstance(comm, str) else comm
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/comm") as f:
                c = f.read().strip()
            if not any(c == n or (n.endswith("*") and c.startswith(n[:-1])) for n in names):
                continue
            with open(f"{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            return int(fields[11]) + int(fields[12])
        except OSError:
            continue
    return None


class CpuWatch:
    """Samples, over a measurement, how much of `cpu` the worker thread got,
    how much went to other work on that CPU, and the hypervisor's steal."""

    def __init__(self, pid: int, comm: str | list[str], cpu: int):
        self.pid, self.comm, self.cpu = pid, comm, cpu

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = cpu_times().get(self.cpu)
        self.w0 = thread_ticks(self.pid, self.comm)
        self.l0 = loadavg()

    def stop(self) -> dict:
        t = time.monotonic() - self.t0
        c1 = cpu_times().get(self.cpu)
        w1 = thread_ticks(self.pid, self.comm)
        res = {"load_before": self.l0, "load_after": loadavg(), "cpu": self.cpu}
        ticks = t * CLK_TCK
        if self.w0 is not None and w1 is not None and ticks > 0:
            res["worker_share"] = round((w1 - self.w0) / ticks, 3)
        if self.c0 and c1 and ticks > 0:
            d = [b - a for a, b in zip(self.c0, c1)]
            busy = d[0] + d[1] + d[2] + d[5] + d[6]
            res["steal_share"] = round(d[7] / ticks, 3)
            if "worker_share" in res:
                res["others_share"] = round(max(0.0, busy / ticks - res["worker_share"]), 3)
        return res


def contended(cpu: dict) -> bool:
    return (cpu.get("worker_share", 1.0) < 0.97 or cpu.get("steal_share", 0.0) > 0.02
            or cpu.get("others_share", 0.0) > 0.02)


# ---- hugepages and DPDK leftovers ----------------------------------------------------------

def hugepages_free_mb() -> int:
    free, size_kb = 0, 2048
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("HugePages_Free:"):
                free = int(line.split()[1])
            elif line.startswith("Hugepagesize:"):
                size_kb = int(line.split()[1])
    return free * size_kb // 1024


def ensure_hugepages(need_mb: int, repo: str) -> str | None:
    """None when enough hugepages are free (reserving them with scripts/setup
    if needed), else a sentence saying why not."""
    if hugepages_free_mb() >= need_mb:
        return None
    setup = os.path.join(repo, "scripts", "setup")
    if os.geteuid() == 0 and os.access(setup, os.X_OK):
        log(f"only {hugepages_free_mb()} MB of hugepages free, running scripts/setup")
        env = dict(os.environ, SLUICE_HUGEPAGES=str(max(512, need_mb // 2 + 64)))
        subprocess.run([setup], env=env, check=False)
    if hugepages_free_mb() >= need_mb:
        return None
    return (f"{hugepages_free_mb()} MB of 2 MB hugepages free, {need_mb} MB needed "
            f"(run scripts/setup as root, or use --no-huge)")


def cleanup_prefix(prefix: str) -> None:
    """Removes what a DPDK process with --file-prefix=prefix leaves behind."""
    assert "bench" in prefix
    for f in glob.glob(f"/dev/hugepages/{prefix}map_*") + glob.glob(f"/dev/hugepages/{prefix}*"):
        try:
            os.unlink(f)
        except OSError:
            pass
    shutil.rmtree(f"/var/run/dpdk/{prefix}", ignore_errors=True)


def stop_process(p: subprocess.Popen, grace: float = 10.0) -> int | None:
    if p.poll() is not None:
        return p.returncode
    p.send_signal(signal.SIGTERM)
    try:
        return p.wait(grace)
    except subprocess.TimeoutExpired:
        p.kill()
        return p.wait(5)


class bench_lock:
    """One benchmark at a time on this machine (bench/run and bench/compare)."""

    PATH = "/run/sluice-bench.lock"

    def __enter__(self):
        import fcntl
        self.f = open(self.PATH, "w")
        try:
            fcntl.flock(self.f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"another benchmark holds {self.PATH}; waiting for it")
            fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.f.close()


def wait_idle(max_wait: float, idle: float = 0.9, sample: float = 2.0) -> dict:
    """Waits (up to max_wait s) for a sample of `sample` s in which every CPU
    is at least `idle` idle: other people's compilers off the cores before a
    measurement. Returns {"waited_s", "idle": per-CPU idle share of the last sample}."""
    t0 = time.monotonic()
    while True:
        a = cpu_times()
        time.sleep(sample)
        b = cpu_times()
        shares = {}
        for cpu, x in b.items():
            d = [q - p for p, q in zip(a.get(cpu, x), x)]
            tot = sum(d) or 1
            shares[cpu] = round(d[3] / tot, 3)
        waited = time.monotonic() - t0
        if all(s >= idle for s in shares.values()) or waited >= max_wait:
            return {"waited_s": round(waited, 1), "idle": shares, "quiet": all(s >= idle for s in shares.values())}
