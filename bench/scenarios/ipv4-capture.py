"""ipv4-capture: ipv4 with a running capture on the ingress port (the tap's
cost on a forwarding path; the writer drains to /dev/null)."""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location("_ipv4", os.path.join(os.path.dirname(__file__), "ipv4.py"))
_ipv4 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ipv4)

DESCRIPTION = "ipv4 + `capture start p0 ingress file /dev/null`"
NEEDS = _ipv4.NEEDS
ORDER = 60
TRAFFIC = _ipv4.TRAFFIC
RATE = _ipv4.RATE
COMMANDS = ["capture start {ingress} ingress file /dev/null"]
REPORT = ["show captures"]
topology = _ipv4.topology
