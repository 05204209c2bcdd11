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


def _nonzero_numbers(v, path="") -> list[tuple[str, int]]:
    """The non-zero numeric leaves of a reply (ids and settings excluded)."""
    out = []
    if isinstance(v, dict):
        for k, x in v.items():
            if k in ("id", "count", "snaplen", "port_no", "port_id", "priority", "path_cost"):
                continue
            out += _nonzero_numbers(x, f"{path}.{k}" if path else k)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            out += _nonzero_numbers(x, f"{path}[{i}]")
    elif isinstance(v, (int, float)) and not isinstance(v, bool) and v:
        out.append((path, v))
    return out


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
            rows.append([r["scenario"]] + ["-"] * 8 + ["", "", f"{r['status']}: {r.get('reason', '')}"[:60]])
            continue
        tp = r.get("testpmd", {})
        tpm = tp.get("mpps") if tp.get("status") == "ok" else None
        flag = "*" if r.get("contended") or tp.get("contended") else ""
        rows.append([
            r["scenario"] + flag,
            _f(r["mpps"]),
            _f(r.get("cycles_per_packet_runtime"), "{:.1f}"),
            _f(r.get("cycles_per_packet_tsc"), "{:.1f}"),
            _f(r.get("cycles_per_packet_cputime"), "{:.1f}"),
            _f(tpm) if tp else "n/a",
            _f(tp.get("cycles_per_packet_tsc"), "{:.1f}") if tp else "n/a",
            _f(tp.get("cycles_per_packet_cputime"), "{:.1f}") if tp else "n/a",
            _f(r.get("ratio_vs_testpmd"), "{:.2f}"),
            cpu_note(r.get("cpu")),
            cpu_note(tp.get("cpu")) if tp.get("status") == "ok" else "",
            "" if not tp or tp.get("status") == "ok" else f"testpmd: {tp.get('reason', '')}"[:60],
        ])
    out.append(_table(["SCENARIO", "Mpps", "CYC/PKT(rt)", "CYC/PKT(tsc)", "(cpu)", "TESTPMD Mpps",
                       "TESTPMD CYC/PKT", "(cpu)", "RATIO", "SLUICE CPU", "TESTPMD CPU", "NOTE"], rows,
                      right={1, 2, 3, 4, 5, 6, 7, 8}))
    out.append("CYC/PKT(rt): sum of show runtime's stages; (tsc): tsc_hz x window / packets, all-in; "
               "(cpu): the same over the CPU time the worker really had")
    if any(r.get("contended") or r.get("testpmd", {}).get("contended") for r in doc["results"]):
        out.append("* measured while other processes used the worker's CPU, or the hypervisor stole "
                   "time from it: the numbers are low")
    for r in doc["results"]:
        if r["status"] != "ok":
            out.append(f"{r['scenario']}: {r['status']}: {r.get('reason', '')}")
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
        prof = r.get("profile")
        if prof and prof.get("top"):
            out.append("  profile of the worker's CPU (perf, % of samples):")
            for x in prof["top"][:15]:
                out.append(f"    {x['percent']:5.1f}%  {x['symbol']}  ({x['dso']})")
        elif prof:
            out.append(f"  profile: {prof.get('error')}")
        for cmd, rep in (r.get("report") or {}).items():
            leaves = _nonzero_numbers(rep.get("delta", rep))
            out.append(f"  {cmd}, change over the window: " + (", ".join(f"{k} {v}" for k, v in leaves[:14])
                                                                or "no counter moved"))
    return "\n".join(out)


def compare_table(doc: dict) -> str:
    m = doc["machine"]
    out = [f"machine: {m.get('model')} ({m.get('cpus')} CPUs, {_f(m.get('mhz'), '{:.0f}')} MHz); "
           f"{'64-byte frames' if doc['traffic_mode'] == '64' else 'IMIX'}; window {doc['seconds']} s "
           f"after {doc['warmup']} s; load at start {doc['load_at_start']}", ""]
    rows, notes = [], []
    for c in doc["cases"]:
        s, o = c["sluice"], c["ovs"]
        sok, ook = s.get("status") == "ok", o.get("status") == "ok"
        flag = "*" if (sok and s.get("contended")) or (ook and o.get("contended")) else ""
        rows.append([
            c["case"] + flag, c["scenario"],
            _f(s.get("mpps")) if sok else s.get("status", "-"),
            _f(s.get("cycles_per_packet_tsc"), "{:.1f}") if sok else "-",
            _f(s.get("cycles_per_packet_cputime"), "{:.1f}") if sok else "-",
            _f(o.get("mpps")) if ook else o.get("status", "-"),
            _f(o.get("cycles_per_packet_tsc"), "{:.1f}") if ook else "-",
            _f(o.get("cycles_per_packet_cputime"), "{:.1f}") if ook else "-",
            _f(o.get("pmd_cycles_per_packet"), "{:.1f}") if ook else "-",
            _f(c.get("ratio_sluice_ovs"), "{:.2f}"),
            cpu_note(o.get("cpu")) if ook else "",
        ])
        if not sok:
            notes.append(f"{c['case']}: sluice `{c['scenario']}` {s.get('status')}: {s.get('reason', '')}")
        if not ook:
            notes.append(f"{c['case']}: OVS {o.get('status')}: {o.get('reason', '')}")
    out.append(_table(["CASE", "SLUICE SCENARIO", "SLUICE Mpps", "SLUICE CYC/PKT", "(cpu)", "OVS Mpps",
                       "OVS CYC/PKT(tsc)", "(cpu)", "OVS CYC/PKT(pmd)", "SLUICE/OVS", "OVS CPU"], rows,
                      right={2, 3, 4, 5, 6, 7, 8, 9}))
    if any(r[0].endswith("*") for r in rows):
        out.append("* measured while other processes used CPU 1, or the hypervisor stole time from it")
    out += notes
    return "\n".join(out)


def _md(headers, rows) -> str:
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def _cpu_md(cpu):
    if not cpu:
        return ""
    s = f"{cpu.get('worker_share', 0) * 100:.0f} %"
    if cpu.get("others_share", 0) > 0.005 or cpu.get("steal_share", 0) > 0.005:
        s += f" (others {cpu.get('others_share', 0) * 100:.0f} %, steal {cpu.get('steal_share', 0) * 100:.0f} %)"
    return s


def markdown(doc: dict) -> str:
    """docs/performance.md tables of a bench/run result."""
    rows, stages = [], []
    for r in doc["results"]:
        if r["status"] != "ok":
            rows.append([f"`{r['scenario']}`", f"{r['status']}: {r.get('reason', '')}"] + [""] * 7)
            continue
        tp = r.get("testpmd", {})
        ok = tp.get("status") == "ok"
        mark = " \\*" if r.get("contended") or tp.get("contended") else ""
        rows.append([f"`{r['scenario']}`{mark}", _f(r["mpps"]), _f(r.get("cycles_per_packet_runtime"), "{:.1f}"),
                     _f(r.get("cycles_per_packet_tsc"), "{:.1f}"), _f(r.get("cycles_per_packet_cputime"), "{:.1f}"),
                     _f(tp.get("mpps")) if ok else "-", _f(tp.get("cycles_per_packet_tsc"), "{:.1f}") if ok else "-",
                     _f(r.get("ratio_vs_testpmd"), "{:.2f}"),
                     f"sluice {_cpu_md(r.get('cpu'))}; testpmd {_cpu_md(tp.get('cpu')) if ok else '-'}"])
        names = [s["stage"] for s in r["stages"]]
        stages.append((r["scenario"], {s["stage"]: s for s in r["stages"]}, names, r))
    out = [_md(["scenario", "Mpps", "cyc/pkt (runtime)", "cyc/pkt (TSC, all-in)", "cyc/pkt (worker CPU time)",
                "testpmd Mpps", "testpmd cyc/pkt", "sluice / testpmd", "CPU 1 during the window"], rows)]
    if stages:
        names = stages[0][2]
        hdr = ["stage (cycles per received packet)"] + [f"`{s[0]}`" for s in stages]
        srows = [[n] + [_f(s[1].get(n, {}).get("cycles_per_rx_packet"), "{:.1f}") for s in stages] for n in names]
        srows.append(["sum of stages"] + [_f(s[3].get("cycles_per_packet_runtime"), "{:.1f}") for s in stages])
        srows.append(["loop (empty polls, flush, RCU, timers)"] +
                     [_f(s[3].get("loop_overhead_cycles"), "{:.1f}") for s in stages])
        srows.append(["all-in (TSC)"] + [_f(s[3].get("cycles_per_packet_tsc"), "{:.1f}") for s in stages])
        out += ["", "STAGES", _md(hdr, srows)]
        for s in stages:
            prof = s[3].get("profile")
            if prof and prof.get("top"):
                out += ["", f"PROFILE {s[0]}", _md(["% of worker samples", "symbol", "object"],
                                                    [[f"{x['percent']:.1f}", f"`{x['symbol']}`", x["dso"]]
                                                     for x in prof["top"][:10]])]
    return "\n".join(out)


def compare_markdown(doc: dict) -> str:
    rows = []
    for c in doc["cases"]:
        s, o = c["sluice"], c["ovs"]
        sok, ook = s.get("status") == "ok", o.get("status") == "ok"
        mark = " \\*" if (sok and s.get("contended")) or (ook and o.get("contended")) else ""
        rows.append([f"`{c['case']}`{mark}", f"`{c['scenario']}`",
                     _f(s.get("mpps")) if sok else s.get("status", "-") + ": " + s.get("reason", "")[:50],
                     _f(s.get("cycles_per_packet_tsc"), "{:.1f}") if sok else "-",
                     _f(o.get("mpps")) if ook else "error: " + o.get("reason", "")[:60],
                     _f(o.get("cycles_per_packet_tsc"), "{:.1f}") if ook else "-",
                     _f(o.get("cycles_per_packet_cputime"), "{:.1f}") if ook else "-",
                     _f(c.get("ratio_sluice_ovs"), "{:.2f}"),
                     f"sluice {_cpu_md(s.get('cpu')) if sok else '-'}; OVS {_cpu_md(o.get('cpu')) if ook else '-'}"])
    return _md(["case", "sluice scenario", "sluice Mpps", "sluice cyc/pkt", "OVS Mpps", "OVS cyc/pkt (TSC)",
                "OVS cyc/pkt (PMD CPU time)", "sluice / OVS", "CPU 1 during the windows"], rows)
