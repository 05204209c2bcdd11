"""rx-capture: rx-drop with a running capture on the ingress port.

The tap copies each packet into the capture's own pool and ring and the
writer thread drains it into /dev/null. At tens of Mpps the writer (off the
lcores, on the control CPU) cannot keep up, so most copies are refused as
`ringfull`: the number shows the tap's cost on the worker (copy or refuse)
and `show captures` in the results shows how much was written.
"""

DESCRIPTION = "rx-drop + `capture start p0 ingress file /dev/null` (tap cost, ringfull)"
ORDER = 20

TRAFFIC = {
    "frames": 1024,
    "dst_mac": {"base": "02:00:00:00:00:01", "count": 1},
    "src_ip": {"base": "10.1.0.1", "count": 1024},
}

COMMANDS = ["capture start {ingress} ingress file /dev/null"]
REPORT = ["show captures"]


def topology(ctx):
    return {"ports": ctx.ingress() + [ctx.sink("p1")]}
