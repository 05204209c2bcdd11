"""The human-readable tables of bench/run and bench/compare."""
from __future__ import annotations


def _f(v, fmt="{:.2f}", dash="-"):
    return dash if v is None else fmt.format(v)


def _table(headers, rows, right=None):
    right = right or set()
    w = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            w[i] = max(w[i], len(str(c)))

    def line(cells):
        return "  ".join(str(c).rjust(w[i]) if i in right else str(c).ljust(w[i])
                         for i, c in enumerate(cells)).rstrip()
    return "\n".join([line(headers), line(["-" * x for x in w])] + [line(r) for r in rows])


def cpu_note(cpu: dict | None) -> str:
    if not cpu:
        return ""
    parts = []
    if "worker_share" in cpu:
        parts.append(f"cpu {cpu['worker_share'] * 100:.0f}%")
    if cpu.get("steal_share", 0) > 0.005:
        parts.append(f"steal {cpu['steal_share'] * 100:.0f}%")
    if cpu.get("others_share", 0) > 0.005:
        parts.append(f"others {cpu['others_share'] * 100:.0f}%")
    parts.append(f"load {cpu.get('load_before', ['?'])[0]}")
    return ", ".join(parts)


def table(doc: dict) -> str:
    m = doc["machine"]
    out = [f"machine: {m.get('model')} ({m.get('cpus')} CPUs, {_f(m.get('mhz'), '{:.0f}')} MHz, "
           f"{m.get('hypervisor', 'bare metal')}), DPDK {m.get('dpdk', '?')}; "
           f"{doc['traffic_mode']}-byte frames" if doc["traffic_mode"] == "64" else
           f"machine: {m.get('model')} ({m.get('cpus')} CPUs), IMIX 7:4:1",
           f"window {doc['seconds']} s after {doc['warmup']} s warm-up, {doc['workers']} worker(s), "
           f"hugepages {'on' if doc['hugepages'] else 'off'}, load at start {doc['load_at_start']}", ""]
    rows = []
    for r in doc["results"]:
        if r["status"] != "ok":
            rows.append([r["scenario"], f"{r['status']}: {r.get('reason', '')}"[:110]] + [""] * 7)
            continue
        tp = r.get("testpmd", {})
        tpm = tp.get("mpps") if tp.get("status") == "ok" else None
        flag = "*" if r.get("contended") or tp.get("contended") else ""
        rows.append([
            r["scenario"] + flag,
            _f(r["mpps"]),
            _f(r.get("cycles_per_packet_runtime"), "{:.1f}"),
            _f(r.get("cycles_per_packet_tsc"), "{:.1f}"),
            _f(tpm) if tp else "n/a",
            _f(tp.get("cycles_per_packet_tsc"), "{:.1f}") if tp else "n/a",
            _f(r.get("ratio_vs_testpmd"), "{:.2f}"),
            cpu_note(r.get("cpu")),
            cpu_note(tp.get("cpu")) if tp.get("status") == "ok" else (tp.get("reason", "")[:60] if tp else ""),
        ])
    out.append(_table(["SCENARIO", "Mpps", "CYC/PKT(rt)", "CYC/PKT(tsc)", "TESTPMD Mpps",
                       "TESTPMD CYC/PKT", "RATIO", "SLUICE CPU", "TESTPMD CPU"], rows, right={1, 2, 3, 4, 5, 6}))
    if any(r.get("contended") or r.get("testpmd", {}).get("contended") for r in doc["results"]):
        out.append("* measured while other processes used the worker's CPU, or the hypervisor stole "
                   "time from it: the numbers are low")
    for r in doc["results"]:
        if r["status"] != "ok":
            continue
        out.append("")
        hz = r.get("tsc_hz")
        out.append(f"{r['scenario']}: {r['packets']} packets ({r['rate_counter']}) in {r['window_s']:.3f} s; "
                   f"TSC {_f(hz and hz / 1e6, '{:.0f}')} MHz from {r.get('tsc_source')}")
        if doc["workers"] > 1:
            out.append("  per worker Mpps: " + ", ".join(_f(x) for x in r["per_worker_mpps"]))
        rows = [[s["stage"], s["calls"], s["packets"], _f(s["packets_per_call"], "{:.1f}"),
                 _f(s["cycles_per_packet"], "{:.1f}"), _f(s["cycles_per_rx_packet"], "{:.1f}")]
                for s in r["stages"]]
        rows.append(["(sum of stages)", "", "", "", "", _f(r.get("cycles_per_packet_runtime"), "{:.1f}")])
        rows.append(["(loop: polls, flush, rcu)", "", "", "", "", _f(r.get("loop_overhead_cycles"), "{:.1f}")])
        out.append(_table(["  STAGE", "CALLS", "PACKETS", "PKTS/CALL", "CYC/PKT(own)", "CYC/RX-PKT"],
                          [["  " + str(x[0])] + x[1:] for x in rows], right={1, 2, 3, 4, 5}))
        if r.get("drops"):
            out.append("  drops: " + ", ".join(f"{d}: " + ", ".join(f"{k} {v}" for k, v in rs.items())
                                               for d, rs in r["drops"].items()))
        for cmd, rep in (r.get("report") or {}).items():
            out.append(f"  {cmd}: {rep}")
    return "\n".join(out)
