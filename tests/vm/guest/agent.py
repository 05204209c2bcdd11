"""The guest half of the VM harness (runs as PID 1's child in the guest).

The host writes requests as /share/cmd/NNNNNN.json (atomically: write, then
rename); the agent runs them in order and writes the answer to
/share/res/NNNNNN.json the same way. Results, logs and captures come back to
the host only through the share. Requests:

  {"op": "sh", "cmd": "...", "timeout": s}          → {"rc", "out", "err"}
  {"op": "start", "config": PATH, "log": PATH}      → {"rc": 0} once sluicectl answers,
                                                       else {"rc": exit status or -1, "err"}
  {"op": "ctl", "args": [...]}                       → {"rc", "json", "err"} (sluicectl --json)
  {"op": "stop", "timeout": s}                       → {"rc": sluiced's exit status}
  {"op": "poweroff"}                                 → {"rc": 0}, then the guest powers off
"""
import json
import os
import signal
import subprocess
import sys
import time

SHARE = "/share"
BIN = "/tmp/sluice-bin"
CMD, RES = os.path.join(SHARE, "cmd"), os.path.join(SHARE, "res")
SOCK = "/run/sluice/vm.sock"

daemon = None


def ctl(args, timeout=30):
    r = subprocess.run([os.path.join(BIN, "sluicectl"), "-s", SOCK, "--json"] + list(args),
                       capture_output=True, text=True, timeout=timeout)
    try:
        j = json.loads(r.stdout) if r.stdout.strip() else None
    except ValueError:
        j = None
    return {"rc": r.returncode, "json": j, "out": r.stdout, "err": r.stderr}


def start(req):
    global daemon
    if daemon is not None and daemon.poll() is None:
        return {"rc": -1, "err": "sluiced already running"}
    logf = open(req["log"], "w")
    daemon = subprocess.Popen([os.path.join(BIN, "sluiced"), "-c", req["config"], "--foreground"]
                              + req.get("args", []), stdout=logf, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL)
    deadline = time.time() + req.get("timeout", 120)
    while time.time() < deadline:
        if daemon.poll() is not None:
            return {"rc": daemon.returncode, "err": "sluiced exited"}
        if os.path.exists(SOCK) and ctl(["version"], timeout=10)["rc"] == 0:
            return {"rc": 0}
        time.sleep(0.2)
    return {"rc": -1, "err": "sluiced did not answer in time"}


def stop(req):
    global daemon
    if daemon is None:
        return {"rc": None}
    if daemon.poll() is None:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=req.get("timeout", 60))
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
    rc = daemon.returncode
    daemon = None
    return {"rc": rc}


def handle(req):
    op = req.get("op")
    if op == "sh":
        try:
            r = subprocess.run(req["cmd"], shell=True, capture_output=True, text=True,
                               timeout=req.get("timeout", 120))
            return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}
        except subprocess.TimeoutExpired as e:
            return {"rc": -1, "out": str(e.stdout or ""), "err": "timeout"}
    if op == "start":
        return start(req)
    if op == "stop":
        return stop(req)
    if op == "ctl":
        return ctl(req["args"], req.get("timeout", 30))
    if op == "poweroff":
        return {"rc": 0}
    return {"rc": -1, "err": "unknown op %r" % op}


def main():
    os.makedirs(CMD, exist_ok=True)
    os.makedirs(RES, exist_ok=True)
    with open(os.path.join(SHARE, "out", "ready.tmp"), "w") as f:
        json.dump({"uptime": float(open("/proc/uptime").read().split()[0])}, f)
    os.rename(os.path.join(SHARE, "out", "ready.tmp"), os.path.join(SHARE, "out", "ready"))
    while True:
        names = sorted(n for n in os.listdir(CMD) if n.endswith(".json"))
        if not names:
            time.sleep(0.05)
            continue
        for n in names:
            p = os.path.join(CMD, n)
            try:
                req = json.load(open(p))
            except ValueError:
                time.sleep(0.05)  # not completely there yet (rename makes this rare)
                break
            os.unlink(p)
            try:
                res = handle(req)
            except Exception as e:  # report, never die: the host is waiting
                res = {"rc": -1, "err": "agent: %r" % e}
            tmp = os.path.join(RES, n + ".tmp")
            with open(tmp, "w") as f:
                json.dump(res, f)
            os.rename(tmp, os.path.join(RES, n))
            if req.get("op") == "poweroff":
                stop({"timeout": 20})
                return


if __name__ == "__main__":
    main()
    sys.exit(0)
