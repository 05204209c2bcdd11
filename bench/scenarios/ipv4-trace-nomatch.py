"""ipv4-trace-nomatch: ipv4 with a packet trace armed on the ingress port
whose filter matches nothing (the traffic is UDP, the filter `tcp port
9091`): every packet's first round runs the trace's filter and none is
marked. Compare with `ipv4` in the same run (the cost of an armed trace),
and `ipv4` of a build without the record sites (`bench/trace-cost`: the
cost of tracing being compiled in at all)."""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "ipv4 + `trace add 1 p0 tcp port 9091` (armed, matches nothing)"
NEEDS = _ipv4.NEEDS
ORDER = 62
TRAFFIC = _ipv4.TRAFFIC
RATE = _ipv4.RATE
COMMANDS = ["trace add 1 {ingress} tcp port 9091"]
REPORT = ["show trace"]
topology = _ipv4.topology
