#!/usr/bin/python3
"""End-to-end, the installed sluice: `cmake --install` into a DESTDIR (file
list, no build-tree paths left in the binaries), the generated
sluiced.service checked by `systemd-analyze verify` against that root, and the
unit's own ExecStartPre/ExecStart/ExecReload command lines, parsed from the
installed unit and run as systemd runs them (NOTIFY_SOCKET, LimitMEMLOCK,
KillSignal, TimeoutStopSec): READY=1, the control socket answers, reload goes
to the daemon, SIGTERM gives STOPPING=1 and a clean exit with every mbuf back.
(test_ops.py covers the notify protocol of the build-tree daemon.)"""
import glob
import os
import re
import resource
import shlex
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from lab import BUILD, Lab, Runner  # noqa: E402

SRC = os.environ.get("SLUICE_SOURCE_DIR", os.path.join(os.path.dirname(__file__), "../.."))
PREFIX = "/usr/local"
UNIT_REL = "lib/systemd/system/sluiced.service"


def install(destdir, prefix=PREFIX):
    env = dict(os.environ, DESTDIR=destdir)
    r = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix, "--component", "sluice"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    files = set()
    for d, _, names in os.walk(destdir):
        for n in names:
            files.add(os.path.relpath(os.path.join(d, n), destdir))
    return files


def unit_fields(path):
    """The unit as systemd reads it: section → key → list of values."""
    out = {}
    sec = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                sec = out.setdefault(line.strip("[]"), {})
                continue
            k, v = line.split("=", 1)
            sec.setdefault(k.strip(), []).append(v.strip())
    return out


def test_install_file_list_and_unit():
    lab = Lab("inst")
    try:
        root = os.path.join(lab.tmp, "root")
        files = install(root)
        p = PREFIX.lstrip("/")
        want = {p + "/bin/sluiced", p + "/bin/sluicectl", p + "/" + UNIT_REL,
                p + "/share/doc/sluice/README.md", p + "/share/bash-completion/completions/sluicectl"}
        want |= {p + "/share/doc/sluice/" + os.path.basename(d) for d in glob.glob(SRC + "/docs/*.md")}
        want |= {p + "/share/doc/sluice/examples/" + os.path.basename(c) for c in glob.glob(SRC + "/config/*.yaml")}
        assert p + "/share/doc/sluice/operations.md" in want
        assert p + "/share/doc/sluice/examples/vfio-pci.yaml" in want
        missing = want - files
        assert not missing, "not installed: %s (installed: %s)" % (sorted(missing), sorted(files))
        outside = [f for f in files if not f.startswith(p + "/")]
        assert not outside, outside
        for b in ("sluiced", "sluicectl"):
            exe = os.path.join(root, p, "bin", b)
            assert os.access(exe, os.X_OK), exe
            ldd = subprocess.run(["ldd", exe], capture_output=True, text=True).stdout
            assert "not found" not in ldd, ldd
            # No RUNPATH into the build tree: the installed binary stands alone.
            dyn = subprocess.run(["readelf", "-d", exe], capture_output=True, text=True).stdout
            assert os.path.realpath(BUILD) not in dyn, dyn
        unit = os.path.join(root, p, UNIT_REL)
        u = unit_fields(unit)
        svc = u["Service"]
        assert svc["Type"] == ["notify"], svc
        assert svc["ExecStart"] == [PREFIX + "/bin/sluiced -c /etc/sluice/topology.yaml --foreground"], svc
        assert svc["ExecReload"] == [PREFIX + "/bin/sluicectl -s /run/sluice/sluice.sock reload"], svc
        assert svc["Restart"] == ["on-failure"] and svc["LimitMEMLOCK"] == ["infinity"], svc
        assert svc["RuntimeDirectory"] == ["sluice"] and svc["KillSignal"] == ["SIGTERM"], svc
        assert u["Install"]["WantedBy"] == ["multi-user.target"], u
        assert "@SLUICE" not in open(unit).read()
        # systemd's own check, on the DESTDIR copy, with the DESTDIR as root
        # (so the ExecStart binaries it looks up are the installed ones); the
        # root gets the host's units (sysinit.target, ...) the unit depends on.
        shutil.copytree("/lib/systemd/system", os.path.join(root, "lib/systemd/system"), symlinks=True)
        r = subprocess.run(["systemd-analyze", "verify", "--root=" + root, unit],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        noise = [l for l in (r.stdout + r.stderr).splitlines() if "sluiced.service" in l]
        assert not noise, noise
        # The unit is generated at install time: another --prefix, other paths.
        other = os.path.join(lab.tmp, "opt")
        install(other, "/opt/sluice")
        svc2 = unit_fields(os.path.join(other, "opt/sluice", UNIT_REL))["Service"]
        assert svc2["ExecStart"] == ["/opt/sluice/bin/sluiced -c /etc/sluice/topology.yaml --foreground"], svc2
        # Without the installed binaries the same check fails: it does look.
        os.rename(os.path.join(root, p, "bin/sluiced"), os.path.join(root, p, "bin/sluiced.x"))
        r = subprocess.run(["systemd-analyze", "verify", "--root=" + root, unit],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and "sluiced" in r.stdout + r.stderr, r.stdout + r.stderr
    finally:
        lab.close()


def systemd_argv(cmdline, root, subst):
    """A unit's Exec line as argv, its binary looked up in the DESTDIR root
    and the system paths (topology, socket) mapped to the lab's."""
    argv = shlex.split(cmdline)
    assert argv[0].startswith("/"), argv  # systemd wants absolute paths here
    argv[0] = root + argv[0]
    return [subst.get(a, a) for a in argv]


def test_unit_commands_run_as_systemd_runs_them():
    lab = Lab("unit")
    try:
        root = os.path.join(lab.tmp, "root")
        install(root)
        svc = unit_fields(os.path.join(root, PREFIX.lstrip("/"), UNIT_REL))["Service"]
        _, if1 = lab.host("a")
        cfg = lab.config('ports:\n  - {name: p1, device: "net_af_packet0,iface=%s"}\n' % if1)
        subst = {"/etc/sluice/topology.yaml": cfg, "/run/sluice/sluice.sock": lab.sock}
        ctl = os.path.join(root, PREFIX.lstrip("/"), "bin/sluicectl")

        # LimitMEMLOCK as systemd sets it; a container without
        # CAP_SYS_RESOURCE cannot raise the hard limit: then the hard limit.
        lim = svc["LimitMEMLOCK"][0]
        want = resource.RLIM_INFINITY if lim == "infinity" else int(lim)
        probe = subprocess.run([sys.executable, "-c", "import resource; resource.setrlimit(resource.RLIMIT_MEMLOCK, "
                                "(%d, %d))" % (want, want)], capture_output=True)
        if probe.returncode != 0:
            want = resource.getrlimit(resource.RLIMIT_MEMLOCK)[1]

        def limits():
            resource.setrlimit(resource.RLIMIT_MEMLOCK, (want, want))

        for pre in svc.get("ExecStartPre", []):
            r = subprocess.run(systemd_argv(pre, root, subst), capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, (pre, r.stdout, r.stderr)
        path = os.path.join(lab.tmp, "notify.sock")
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        s.settimeout(float(svc["TimeoutStartSec"][0].rstrip("s")))
        env = dict(os.environ, NOTIFY_SOCKET=path)
        env.pop("SLUICE_SOCKET", None)
        logf = open(lab.log, "w")
        p = subprocess.Popen(systemd_argv(svc["ExecStart"][0], root, subst), env=env,
                             preexec_fn=limits, stdout=logf, stderr=subprocess.STDOUT)
        try:
            fields = {}
            while "READY" not in fields:
                msg = s.recv(4096).decode()
                fields.update(l.split("=", 1) for l in msg.strip().splitlines())
            assert fields["READY"] == "1" and fields.get("MAINPID") == str(p.pid), fields
            # Type=notify: ready means the control socket serves, to the installed client.
            r = subprocess.run([ctl, "-s", lab.sock, "--json", "show", "devices"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and '"p1"' in r.stdout, r.stdout + r.stderr
            with open("/proc/%d/limits" % p.pid) as f:
                lim = [l for l in f if l.startswith("Max locked memory")][0]
            assert lim.split()[3] == ("unlimited" if want == resource.RLIM_INFINITY else str(want)), lim
            # ExecReload, as systemctl reload runs it: the installed client
            # reaches the daemon over the unit's socket and the unchanged file
            # reloads as "no change".
            r = subprocess.run(systemd_argv(svc["ExecReload"][0], root, subst), capture_output=True,
                               text=True, timeout=60)
            out = r.stdout + r.stderr
            assert r.returncode == 0 and "no change" in out, out
            r = subprocess.run([ctl, "-s", lab.sock, "--json", "show", "devices"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0 and '"p1"' in r.stdout, r.stdout + r.stderr
            assert p.poll() is None, "sluiced exited on reload"
            # systemctl stop: KillSignal to the main process, then TimeoutStopSec.
            p.send_signal(getattr(signal, svc["KillSignal"][0]))
            msg = s.recv(4096).decode()
            assert "STOPPING=1" in msg, msg
            rc = p.wait(timeout=float(svc["TimeoutStopSec"][0].rstrip("s")))
            assert rc == 0, (rc, lab.read_log())
            log = lab.read_log()
            assert re.search(r"mbuf pool .*: all \d+ mbufs back", log), log
            assert "(mbufs missing)" not in log and not re.search(r"\(\d+ missing\)", log), log
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            s.close()
            logf.close()
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_install_file_list_and_unit, test_unit_commands_run_as_systemd_runs_them):
        r.run(t)
    r.finish()
