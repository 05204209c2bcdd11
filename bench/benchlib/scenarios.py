"""Scenario discovery and the context a scenario's topology is written against.

A scenario is one file, bench/scenarios/NAME.py, with:

    DESCRIPTION = "one line"
    NEEDS = "the bridge"            # shown as "skipped: needs the bridge" when the
                                    # build refuses the topology ("not supported")
    TRAFFIC = {...}                 # benchlib/traffic.py spec (64-byte or IMIX sizes
                                    # are chosen by bench/run, not here)
    def topology(ctx): return {"ports": [...], "bridges": [...], ...}
                                    # the topology body; eal/control/logging are the
                                    # harness's. ctx.ingress() / ctx.sink(name) make
                                    # the pcap and net_null ports.
    COMMANDS = ["capture start {ingress} ingress file /dev/null"]   # optional:
                                    # sluicectl commands after start, before warm-up;
                                    # {ingress}, {tmp}, {run} are substituted
    REPORT = ["show captures"]      # optional: sluicectl --json commands whose
                                    # replies go into the results (end of the window)
    RATE = ("ingress", "rx_packets")  # optional: which device's counter is the rate;
                                    # "ingress" = the sum over the ingress ports
    def requires(ctx): return None  # optional extra probe: None, or why it cannot run
    ORDER = 10                      # optional: position in the default list
"""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from typing import Any, Callable

from . import traffic as traffic_mod


@dataclass
class Scenario:
    name: str
    path: str
    description: str
    traffic: dict
    topology: Callable[["Ctx"], dict]
    needs: str = ""
    commands: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)
    rate: tuple[str, str] = ("ingress", "rx_packets")
    requires: Callable[["Ctx"], str | None] | None = None
    order: int = 100


def load(path: str) -> Scenario:
    name = os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(f"bench_scenario_{name.replace('-', '_')}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for req in ("DESCRIPTION", "TRAFFIC", "topology"):
        if not hasattr(mod, req):
            raise ValueError(f"{path}: a scenario must define {req}")
    traffic_mod.normalize(mod.TRAFFIC)  # unknown keys fail here, not mid-run
    return Scenario(name=getattr(mod, "NAME", name), path=path, description=mod.DESCRIPTION,
                    traffic=mod.TRAFFIC, topology=mod.topology, needs=getattr(mod, "NEEDS", ""),
                    commands=list(getattr(mod, "COMMANDS", [])),
                    report=list(getattr(mod, "REPORT", [])),
                    rate=tuple(getattr(mod, "RATE", ("ingress", "rx_packets"))),
                    requires=getattr(mod, "requires", None), order=getattr(mod, "ORDER", 100))


def discover(directory: str) -> dict[str, Scenario]:
    found = {}
    for f in sorted(os.listdir(directory)):
        if f.endswith(".py") and not f.startswith("_"):
            s = load(os.path.join(directory, f))
            found[s.name] = s
    return dict(sorted(found.items(), key=lambda kv: (kv[1].order, kv[0])))


class Ctx:
    """What a scenario's topology() is written against.

    ctx.ingress()      the ingress port(s): one net_pcap infinite_rx port per
                       worker, named p0 (then p0w2, p0w3, ... with --workers N),
                       each polled by its own worker
    ctx.ingress_names  their names
    ctx.sink(name)     a net_null no-rx=1 port (what is sent there is counted
                       and freed)
    ctx.macs(base, n)  the MAC addresses of a traffic range (for fdb_static, ...)
    ctx.traffic        the normalized traffic spec; ctx.pcap its file
    ctx.tmp            a scratch directory for this scenario's run
    """

    def __init__(self, pcap: str, spec: dict, worker_lcores: list[int], tmp: str, mac: str,
                 pcaps: list[str] | None = None):
        self.pcap, self.traffic, self.tmp = pcap, traffic_mod.normalize(spec), tmp
        self.pcaps = pcaps or [pcap] * len(worker_lcores)  # one file per ingress port
        self.worker_lcores = worker_lcores
        self.ingress_mac = mac
        self._null = 0
        self.ingress_names = ["p0"] + [f"p0w{i + 1}" for i in range(1, len(worker_lcores))]
        self.sinks: list[str] = []
        self.vdevs: dict[str, str] = {}

    def ingress(self, **extra: Any) -> list[dict]:
        ports = []
        for i, (name, lc) in enumerate(zip(self.ingress_names, self.worker_lcores)):
            dev = f"net_pcap{i},rx_pcap={self.pcaps[i]},infinite_rx=1"
            self.vdevs[name] = dev
            p = {"name": name, "device": dev, "mac": self.ingress_mac}
            if len(self.worker_lcores) > 1:
                p["workers"] = [lc]
            p.update(extra)
            ports.append(p)
        return ports

    def sink(self, name: str, **extra: Any) -> dict:
        dev = f"net_null{self._null},no-rx=1"
        self._null += 1
        self.vdevs[name] = dev
        self.sinks.append(name)
        p = {"name": name, "device": dev}
        p.update(extra)
        return p

    @staticmethod
    def macs(base: str, n: int) -> list[str]:
        return traffic_mod.macs(base, n)
