"""capture-nomatch: ipv4 with a capture on the ingress port whose filter
matches nothing (the traffic is UDP, the filter `tcp port 9091`).

A filtered-out packet costs one filter run (the eBPF JIT) and nothing else:
no copy, no ring. Compare with `ipv4` (goal: at most +10 cycles/packet) and
`ipv4-capture` (the same capture without a filter: every packet copied)."""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "ipv4 + `capture start p0 ingress tcp port 9091 file /dev/null` (matches nothing)"
NEEDS = _ipv4.NEEDS
ORDER = 61
TRAFFIC = _ipv4.TRAFFIC
RATE = _ipv4.RATE
COMMANDS = ["capture start {ingress} ingress tcp port 9091 file /dev/null"]
REPORT = ["show captures"]
topology = _ipv4.topology
