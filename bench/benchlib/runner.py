"""The measurement of one scenario: topology, probe, sluiced, window, testpmd.
Shared by bench/run and bench/compare."""
from __future__ import annotations

import datetime
import os
import re
import time

from . import common, scenarios, testpmd, traffic
from .common import log
from .sluice import Build, CtlError, Sluiced, tsc_hz, write_topology

MEMORY_MB = 768
MBUFS_TESTPMD = 32767
INGRESS_MAC = "02:00:00:00:00:01"


def lcores_for(workers: int, override: str | None) -> tuple[str, list[int], list[int]]:
    """(eal.lcores string, worker lcore ids, the CPU of each worker)."""
    cpus = os.cpu_count() or 1
    lcs = list(range(1, workers + 1))
    if override:
        s = override
    elif workers + 1 <= cpus:
        s = f"0-{workers}"
    else:
        # More lcores than CPUs: EAL's --lcores mapping. The control lcore
        # shares CPU 0 with the first workers; the last worker gets CPU 1...
        cpu_of = {0: 0}
        for lc in lcs:
            cpu_of[lc] = max(0, cpus - 1 - (workers - lc)) if cpus > 1 else 0
        s = ",".join(f"{lc}@{cpu_of[lc]}" for lc in [0] + lcs)
    wcpu = []
    for lc in lcs:
        cpu = lc
        for part in s.split(","):
            if part.startswith(f"{lc}@"):
                cpu = int(part.split("@")[1])
        wcpu.append(cpu)
    return s, lcs, wcpu


def measure_sluice(d: Sluiced, sc, ctx, a, wcpu: int) -> dict:
    res = {}
    time.sleep(a.warmup)
    watch = common.CpuWatch(d.proc.pid, common.worker_thread_names(ctx.worker_lcores[0]), wcpu)
    ta = time.monotonic()
    d.ctl("clear stats", want_json=False)
    tb = time.monotonic()
    # `show runtime` ignores `clear stats` in this build (it reads the workers'
    # raw counters), so the window's stage counters are a difference.
    rt0 = d.ctl("show runtime")
    rep0 = {}
    for cmd in sc.report:
        try:
            rep0[cmd] = d.ctl(cmd.format(**subst(ctx)))
        except CtlError:
            pass
    watch.start()
    prof = start_perf(a, d.proc.pid, common.worker_thread_names(ctx.worker_lcores[0]), ctx.tmp)
    time.sleep(a.seconds)
    tc = time.monotonic()
    ports = d.ctl("show port stats")
    td = time.monotonic()
    rt1 = d.ctl("show runtime")
    res["cpu"] = watch.stop()
    before = {x["stage"]: x for x in rt0}
    runtime = []
    for x in rt1:
        b = before.get(x["stage"], {})
        runtime.append({"stage": x["stage"], **{k: int(x[k]) - int(b.get(k, 0))
                                                 for k in ("calls", "packets", "cycles")}})
    res["window_s"] = (tc + td) / 2 - (ta + tb) / 2
    res["ports"] = ports
    res["runtime"] = runtime
    res["drops"] = d.ctl("show drops")
    res["report"] = {}
    for cmd in sc.report:
        try:
            end = d.ctl(cmd.format(**subst(ctx)))
            res["report"][cmd] = {"end": end, "delta": delta(rep0.get(cmd), end)}
        except CtlError as e:
            res["report"][cmd] = {"error": str(e)}
    if prof:
        res["profile"] = finish_perf(prof)
    hz, src = tsc_hz(d)
    res["tsc_hz"], res["tsc_source"] = hz, src
    return res


def start_perf(a, pid: int, names: list[str], tmp: str):
    """--perf: sample the worker thread during the window (perf record -t)."""
    if not getattr(a, "perf", False):
        return None
    import glob
    import subprocess
    tid = None
    for task in glob.glob(f"/proc/{pid}/task/*"):
        try:
            with open(f"{task}/comm") as f:
                if f.read().strip() in names:
                    tid = os.path.basename(task)
        except OSError:
            pass
    if tid is None:
        return None
    out = os.path.join(tmp, "perf.data")
    p = subprocess.Popen(["perf", "record", "-q", "-F", "2999", "-t", tid, "-o", out, "--",
                          "sleep", str(a.seconds)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return p, out


def finish_perf(prof) -> dict:
    import subprocess
    p, out = prof
    try:
        err = p.communicate(timeout=60)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        return {"error": "perf record did not finish"}
    if p.returncode != 0:
        return {"error": f"perf record: {err.strip()[-300:]}"}
    r = subprocess.run(["perf", "report", "-i", out, "--stdio", "--no-children", "--sort", "dso,symbol",
                        "--percent-limit", "0.5"], capture_output=True, text=True, timeout=120)
    rows = []
    for line in r.stdout.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].endswith("%"):
            sym = parts[2].replace("[.] ", "").replace("[k] ", "[kernel] ")
            rows.append({"percent": float(parts[0][:-1]), "dso": parts[1],
                         "symbol": re.split(r"\s{2,}", sym.strip())[0]})
    # Stripped DSOs (the Debian PMDs) show raw addresses: one line per DSO.
    merged, stripped = [], {}
    for x in rows:
        if x["symbol"].startswith("0x"):
            stripped[x["dso"]] = stripped.get(x["dso"], 0.0) + x["percent"]
        else:
            merged.append(x)
    merged += [{"percent": round(v, 2), "dso": k, "symbol": "(no symbols: all of the DSO)"}
               for k, v in stripped.items()]
    merged.sort(key=lambda x: -x["percent"])
    return {"top": merged[:25], "file": out}


def delta(a, b):
    """b - a for every number in two replies of the same shape (others: b)."""
    if isinstance(b, bool) or a is None:
        return b
    if isinstance(b, (int, float)) and isinstance(a, (int, float)) and not isinstance(a, bool):
        return b - a
    if isinstance(b, dict) and isinstance(a, dict):
        return {k: v if k in ("id", "count", "snaplen") else delta(a.get(k), v) for k, v in b.items()}
    if isinstance(b, list) and isinstance(a, list) and len(a) == len(b):
        return [delta(x, y) for x, y in zip(a, b)]
    return b


def subst(ctx) -> dict:
    return {"ingress": ctx.ingress_names[0], "tmp": ctx.tmp, "run": ctx.tmp}


def derive(res: dict, sc, ctx, workers: int, mode: str) -> dict:
    """Rates and cycles from the raw replies."""
    ports, rt, dt = res["ports"], res["runtime"], res["window_s"]
    dev, counter = sc.rate
    devs = ctx.ingress_names if dev == "ingress" else [dev]
    rate_pkts = sum(int(ports.get(x, {}).get(counter, 0)) for x in devs)
    rx_pkts = sum(int(ports.get(x, {}).get("rx_packets", 0)) for x in ctx.ingress_names)
    out = {
        "packets": rate_pkts,
        "rate_counter": f"{dev}.{counter}",
        "mpps": rate_pkts / dt / 1e6,
        "gbps_wire": rate_pkts / dt * traffic.mean_wire_size(mode) * 8 / 1e9,
        "per_worker_mpps": [int(ports.get(x, {}).get("rx_packets", 0)) / dt / 1e6 for x in ctx.ingress_names],
        "rx_packets": rx_pkts,
    }
    stages = []
    rx_stage = next((s for s in rt if s["stage"] == "port-rx"), None)
    denom = rx_stage["packets"] if rx_stage and rx_stage["packets"] else rx_pkts
    total = sum(int(s["cycles"]) for s in rt)
    for s in rt:
        stages.append({
            "stage": s["stage"], "calls": s["calls"], "packets": s["packets"], "cycles": s["cycles"],
            "cycles_per_packet": s["cycles"] / s["packets"] if s["packets"] else 0.0,
            "cycles_per_rx_packet": s["cycles"] / denom if denom else 0.0,
            "packets_per_call": s["packets"] / s["calls"] if s["calls"] else 0.0,
        })
    out["stages"] = stages
    out["cycles_per_packet_runtime"] = total / denom if denom else None
    hz = res.get("tsc_hz")
    out["cycles_per_packet_tsc"] = hz * dt * workers / rx_pkts if hz and rx_pkts else None
    if out["cycles_per_packet_tsc"] and out["cycles_per_packet_runtime"]:
        out["loop_overhead_cycles"] = out["cycles_per_packet_tsc"] - out["cycles_per_packet_runtime"]
    share = res["cpu"].get("worker_share")
    if hz and rx_pkts and share:
        # What the worker really had: its own CPU time, not the wall clock.
        out["cycles_per_packet_cputime"] = hz * dt * share * workers / rx_pkts
    return out


def testpmd_mbufs(frames: int, workers: int) -> int:
    """testpmd's --total-num-mbufs: MBUFS_TESTPMD, or room for the
    infinite_rx preload of every ingress file and 16 384 more."""
    need = frames * workers + 16384
    n = MBUFS_TESTPMD
    while n < need:
        n = n * 2 + 1
    return n


def run_testpmd(ctx, a, lcores: str, workers: int, wcpu: int, run_dir: str, name: str) -> dict:
    vdevs = []
    for i in range(workers):
        vdevs += [f"net_pcap{i},rx_pcap={ctx.pcaps[i]},infinite_rx=1", f"net_null{i},no-rx=1"]
    prefix = f"bench-tpmd-{os.getpid()}"
    try:
        r = testpmd.run(lcores, vdevs, workers, prefix, a.warmup, a.seconds, not a.no_huge,
                        MEMORY_MB, testpmd_mbufs(int(ctx.traffic["frames"]), workers),
                        os.path.join(run_dir, f"{name}.testpmd.log"), wcpu)
    except Exception as e:  # noqa: BLE001 — report it, keep going
        return {"status": "error", "reason": str(e)}
    rx = sum(v.get("rx_packets", 0) for k, v in r["per_port"].items() if k % 2 == 0)
    out = {"status": "ok", "rx_packets": rx, "window_s": r["seconds"], "mpps": rx / r["seconds"] / 1e6,
           "per_port": r["per_port"], "cpu": r["cpu"], "command": "dpdk-testpmd " + " ".join(r["args"])}
    out["per_worker_mpps"] = [r["per_port"].get(2 * i, {}).get("rx_packets", 0) / r["seconds"] / 1e6
                              for i in range(workers)]
    return out


def topology(sc, ctx, lcores: str, hugepages: bool, prefix: str, sock: str) -> dict:
    """The scenario's topology body with the harness's eal, control and logging."""
    topo = {"eal": {"lcores": lcores, "hugepages": hugepages, "memory_mb": MEMORY_MB,
                    "file_prefix": prefix}}
    topo.update(sc.topology(ctx))
    topo["control"] = {"socket": sock, "telemetry": False}
    topo["logging"] = {"level": "info", "file": ""}
    return topo


def run_scenario(sc, a, build: Build, run_dir: str, mode: str) -> dict:
    res = {"scenario": sc.name, "description": sc.description, "status": "ok", "traffic_mode": mode,
           "workers": a.workers, "started": datetime.datetime.now().isoformat(timespec="seconds")}
    lcores, wl, wcpus = lcores_for(a.workers, a.lcores)
    res["lcores"] = lcores
    pcap, frames, fresh = traffic.ensure(a.cache, sc.traffic, mode)
    if fresh:
        log(f"{sc.name}: generated {frames} frames into {pcap}")
    res["traffic"] = {"file": pcap, "frames": frames, "mean_wire_bytes": traffic.mean_wire_size(mode)}
    tmp = os.path.join(run_dir, sc.name)
    os.makedirs(tmp, exist_ok=True)
    # Worker k > 0 gets its own file: the same traffic from other source MACs
    # (its own hosts). With one file, a bridge would see every source move
    # between the ingress ports on every frame, as in a loop.
    pcaps = [pcap]
    for k in range(1, len(wl)):
        spec = traffic.normalize(sc.traffic)
        spec["src_mac"] = dict(spec["src_mac"], base=traffic.mac_add(spec["src_mac"]["base"], k << 24))
        pcaps.append(traffic.ensure(a.cache, spec, mode)[0])
    ctx = scenarios.Ctx(pcap, sc.traffic, wl, tmp, INGRESS_MAC, pcaps)
    prefix = f"sluice-bench-{os.getpid()}"
    sock = f"/run/sluice/bench-{os.getpid()}.sock"
    topo_path = os.path.join(tmp, "topology.yaml")
    write_topology(topo_path, topology(sc, ctx, lcores, not a.no_huge, prefix, sock))
    res["topology"] = topo_path
    # sluiced sizes its pool for the infinite_rx preload too (src/pmd_glue/pmd.cc).

    # Probe: does this build accept the topology?
    rc, msg = build.check(topo_path)
    if rc != 0:
        if "not supported" in msg and sc.needs:
            return dict(res, status="skipped", reason=f"needs {sc.needs}", detail=msg)
        if "@" in lcores and "lcores" in msg:
            return dict(res, status="skipped", detail=msg, reason=(
                f"{a.workers} workers need {a.workers + 1} lcores on {os.cpu_count()} CPUs: "
                f"eal.lcores does not take EAL's lcore@cpu mapping ('{lcores}') and sluiced "
                f"always passes -l (EAL refuses --lcores after -l, and -l {0}-{a.workers} "
                f"fails with 'lcore {a.workers} unavailable')"))
        return dict(res, status="error" if "not supported" not in msg else "skipped",
                    reason=f"sluiced --check refused the topology: {msg}")
    if sc.requires:
        why = sc.requires(ctx)
        if why:
            return dict(res, status="skipped", reason=why)

    log(f"{sc.name}: sluiced on lcores {lcores}, {frames} {mode} frames, "
        f"warm-up {a.warmup} s, window {a.seconds} s")
    d = Sluiced(build, topo_path, sock, prefix, os.path.join(tmp, "sluiced.log"))
    try:
        d.start()
        for cmd in sc.commands:
            try:
                d.ctl(cmd.format(**subst(ctx)), want_json=False)
            except CtlError as e:
                if "unknown command" in str(e):
                    return dict(res, status="skipped", reason=f"needs {sc.needs or cmd}: {e}")
                raise
        raw = measure_sluice(d, sc, ctx, a, wcpus[0])
    except Exception as e:  # noqa: BLE001
        return dict(res, status="error", reason=str(e), log=d.log_tail(12))
    finally:
        stopped = d.stop()
    res["sluiced_exit"] = stopped
    res.update({k: raw[k] for k in ("window_s", "ports", "drops", "report", "tsc_hz", "tsc_source", "cpu",
                                    "profile") if k in raw})
    res.update(derive(raw, sc, ctx, a.workers, mode))
    res["contended"] = common.contended(raw["cpu"])
    if stopped.get("mbufs_missing"):
        res["warnings"] = [f"{stopped['mbufs_missing']} mbufs missing at exit"]
    if res["rx_packets"] == 0:
        res["status"] = "error"
        res["reason"] = "no packet received in the window: " + d.log_tail(8)

    if not a.no_testpmd:
        if getattr(a, "wait_idle", 0) > 0:
            res["idle_before_testpmd"] = common.wait_idle(a.wait_idle)
        log(f"{sc.name}: dpdk-testpmd io-forward on the same vdevs and lcores")
        tp = run_testpmd(ctx, a, lcores, a.workers, wcpus[0], tmp, sc.name)
        if tp["status"] == "ok" and res.get("tsc_hz"):
            tp["cycles_per_packet_tsc"] = res["tsc_hz"] * tp["window_s"] * a.workers / tp["rx_packets"] \
                if tp["rx_packets"] else None
            tp["contended"] = common.contended(tp["cpu"])
            if tp["rx_packets"] and tp["cpu"].get("worker_share"):
                tp["cycles_per_packet_cputime"] = res["tsc_hz"] * tp["window_s"] * tp["cpu"]["worker_share"] \
                    * a.workers / tp["rx_packets"]
        res["testpmd"] = tp
        if tp["status"] == "ok" and tp["mpps"]:
            # Ingress rates compared: both process every packet they receive.
            res["ratio_vs_testpmd"] = (res["rx_packets"] / res["window_s"] / 1e6) / tp["mpps"]
    return res


