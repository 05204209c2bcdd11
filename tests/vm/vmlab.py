"""The VM lab: sluiced on vfio-pci-bound emulated Intel NICs in a QEMU guest,
with kernel hosts in network namespaces on the NICs' TAP backends.

    host                                   guest (QEMU TCG, q35 + intel-iommu)
    netns slvm-PID-a:  tap ─ netdev n0 ─── e1000e 0000:00:05.0 ─┐
    netns slvm-PID-b:  tap ─ netdev n1 ─── e1000e 0000:00:06.0 ─┤ vfio-pci → sluiced
    netns slvm-PID-c:  tap ─ netdev n2 ─── virtio  0000:00:07.0 ─┤ (optional)
    netns slvm-PID-d:  tap ─ netdev n3 ─── e1000   0000:00:08.0 ─┘ (optional)
    share dir ──────── 9p "share" ──────── /share: binaries in, results out

The guest image comes from scripts/vm-image (built once, cached outside the
checkout). The guest runs tests/vm/guest/run (binds the NICs with
dpdk-devbind.py) and then tests/vm/guest/agent.py, which executes this side's
requests; every answer, log and capture file comes back through the share.
The QEMU monitor is a unix socket (set_link). Nothing here touches the
host's own interfaces: the guest NICs attach only to TAPs this lab creates,
each moved into a namespace it creates; there is no user-mode networking.
close() removes every QEMU, TAP and namespace it made, also on failure, and a
new lab first removes what a killed earlier run left behind.

Environment: SLUICE_BUILD_DIR, SLUICE_SOURCE_DIR (set by ctest),
SLUICE_VM_CACHE (image cache, default /var/cache/sluice-vm),
SLUICE_VM_VIRTIO=0 (no virtio-net NIC), SLUICE_VM_E1000=0 (no e1000 NIC),
SLUICE_VM_SMP (default 2),
SLUICE_VM_RESULTS (where the share's out/ and the console are copied at the
end; default BUILD/test-tmp/vm-last).
"""
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback

SRC = os.environ.get("SLUICE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "../..")))
BUILD = os.path.abspath(os.environ.get("SLUICE_BUILD_DIR", os.path.join(SRC, "build")))
PY = "/usr/bin/python3"
QEMU = "qemu-system-x86_64"

# Guest PCI layout: fixed slots, so the topology can name them as a user would.
NICS = [
    # (netdev id, model, PCI address, MAC, namespace suffix)
    ("n0", "e1000e", "0000:00:05.0", "52:54:00:5c:00:01", "a"),
    ("n1", "e1000e", "0000:00:06.0", "52:54:00:5c:00:02", "b"),
    ("n2", "virtio-net-pci", "0000:00:07.0", "52:54:00:5c:00:03", "c"),   # SLUICE_VM_VIRTIO=0: left out
    ("n3", "e1000", "0000:00:08.0", "52:54:00:5c:00:04", "d"),            # SLUICE_VM_E1000=0: left out
]


def log(msg):
    print("# " + msg, flush=True)


def sh(cmd, check=True, timeout=120):
    r = subprocess.run(cmd, shell=True, text=True, capture_output=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError("command failed (%d): %s\n%s%s" % (r.returncode, cmd, r.stdout, r.stderr))
    return r


def wait_until(cond, timeout=30, what="condition", interval=0.3):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out after %ds waiting for %s (last: %r)" % (timeout, what, last))


# ---- guest image and binaries ----------------------------------------------

def guest_image():
    """scripts/vm-image: builds the image when missing (~3 min), else returns at once."""
    t0 = time.time()
    r = subprocess.run([os.path.join(SRC, "scripts", "vm-image")], capture_output=True, text=True,
                       timeout=1800)
    if r.returncode != 0:
        raise RuntimeError("scripts/vm-image failed:\n" + r.stdout + r.stderr)
    d = r.stdout.strip().splitlines()[-1]
    if r.stderr.strip():
        log(r.stderr.strip())
    log("guest image %s (%.0fs)" % (d, time.time() - t0))
    return d


def _flags_of(build):
    """Compile flags of every translation unit of a build dir."""
    p = os.path.join(build, "compile_commands.json")
    if not os.path.exists(p):
        return None
    return " ".join(e.get("command", " ".join(e.get("arguments", []))) for e in json.load(open(p)))


def guest_binaries():
    """(sluiced, sluicectl) runnable on the guest CPU (QEMU -cpu max under TCG:
    SSE4.2/AVX2, no AVX-512). The tree's build is used when its flags cannot
    produce AVX-512 code (DPDK's pkg-config adds -march=corei7, which is fine);
    otherwise a guest copy is built in BUILD-vm with AVX-512 switched off."""
    flags = _flags_of(BUILD)
    if flags is None:
        raise RuntimeError("%s/compile_commands.json missing: build the tree first (scripts/build)" % BUILD)
    bad = sorted(set(re.findall(r"-march=native|-mtune=native|-mavx512\w*|-march=(?:skylake-avx512|icelake\S*|"
                                r"sapphirerapids|cascadelake|cooperlake|tigerlake|znver4|x86-64-v4)", flags)))
    if not bad:
        return os.path.join(BUILD, "sluiced"), os.path.join(BUILD, "sluicectl"), "tree build (%s)" % (
            ", ".join(sorted(set(re.findall(r"-march=\S+", flags)))) or "no -march")
    vm_build = BUILD.rstrip("/") + "-vm"
    log("tree build uses %s: building a guest-compatible copy in %s" % (" ".join(bad), vm_build))
    sh("cmake -S %s -B %s -DCMAKE_BUILD_TYPE=RelWithDebInfo '-DCMAKE_CXX_FLAGS=-mno-avx512f' "
       "'-DCMAKE_C_FLAGS=-mno-avx512f' >/dev/null" % (SRC, vm_build), timeout=600)
    sh("cmake --build %s -j%d --target sluiced sluicectl" % (vm_build, os.cpu_count() or 2), timeout=3600)
    return os.path.join(vm_build, "sluiced"), os.path.join(vm_build, "sluicectl"), \
        "guest copy in %s (-mno-avx512f)" % vm_build


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def remove_stale():
    """Namespaces (and the TAPs in them) left by a VM lab whose process died."""
    r = sh("ip netns list", check=False)
    for line in r.stdout.splitlines():
        m = re.match(r"(slvm-(\d+)-[a-z])\b", line)
        if m and not _pid_alive(int(m.group(2))):
            ns = m.group(1)
            for l in sh("ip -n %s -o link show type tun" % ns, check=False).stdout.splitlines():
                name = l.split(":")[1].strip().split("@")[0]
                sh("ip -n %s link del %s" % (ns, name), check=False)
            sh("ip netns del %s" % ns, check=False)
            log("removed stale namespace %s" % ns)
    tmp = tempfile.gettempdir()
    for n in os.listdir(tmp):   # shares, monitor sockets, consoles of dead runs
        m = re.match(r"sluice-vm-(\d+)[-.]", n)
        if m and not _pid_alive(int(m.group(1))):
            p = os.path.join(tmp, n)
            shutil.rmtree(p, ignore_errors=True) if os.path.isdir(p) else os.unlink(p)
    for l in sh("ip -o link show type tun", check=False).stdout.splitlines():
        name = l.split(":")[1].strip().split("@")[0]
        m = re.match(r"svm(\d+)[a-z]$", name)
        if m and not _pid_alive(int(m.group(1))):
            sh("ip link del %s" % name, check=False)
            log("removed stale tap %s" % name)


def _die_with_parent():
    """QEMU gets SIGKILL when this test process dies (ctest timeout, kill -9)."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    os.setsid()


# ---- the lab -----------------------------------------------------------------

class VM:
    def __init__(self, virtio=None, e1000=None, smp=None, mem_mb=1536):
        self.pid = os.getpid()
        self.virtio = (os.environ.get("SLUICE_VM_VIRTIO", "1") != "0") if virtio is None else virtio
        self.e1000 = (os.environ.get("SLUICE_VM_E1000", "1") != "0") if e1000 is None else e1000
        self.smp = int(os.environ.get("SLUICE_VM_SMP", smp or 2))
        self.mem_mb = mem_mb
        self.nics = NICS[:2] + ([NICS[2]] if self.virtio else []) + ([NICS[3]] if self.e1000 else [])
        self.share = tempfile.mkdtemp(prefix="sluice-vm-%d-" % self.pid)
        os.chmod(self.share, 0o755)
        self.out = os.path.join(self.share, "out")
        self.monitor_path = os.path.join(tempfile.gettempdir(), "sluice-vm-%d.mon" % self.pid)
        self.console = os.path.join(tempfile.gettempdir(), "sluice-vm-%d.console" % self.pid)
        self.qemu = None
        self.netns = {}    # suffix → namespace
        self.taps = {}     # suffix → tap name
        self.seq = 0
        self.info = {}

    # ---- host side: namespaces with the TAPs ------------------------------
    def ns(self, suffix):
        return self.netns[suffix]

    def tap(self, suffix):
        return self.taps[suffix]

    def ns_sh(self, suffix, cmd, **kw):
        return sh("ip netns exec %s %s" % (self.netns[suffix], cmd), **kw)

    def _make_taps(self):
        for (_, _, _, _, s) in self.nics:
            tap = "svm%d%s" % (self.pid, s)
            sh("ip tuntap add dev %s mode tap" % tap)
            self.taps[s] = tap
            sh("sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % tap, check=False)

    def _move_taps(self):
        """After QEMU has attached to them: each TAP into its own namespace."""
        for (_, _, _, _, s) in self.nics:
            ns = "slvm-%d-%s" % (self.pid, s)
            sh("ip netns add %s" % ns)
            self.netns[s] = ns
            for c in ("net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"):
                sh("ip netns exec %s sysctl -qw %s" % (ns, c))
            sh("ip link set %s netns %s" % (self.taps[s], ns))
            sh("ip -n %s link set lo up" % ns)
            sh("ip netns exec %s sysctl -qw net.ipv6.conf.%s.disable_ipv6=1" % (ns, self.taps[s]), check=False)
            sh("ip -n %s link set %s up" % (ns, self.taps[s]))

    # ---- boot ----------------------------------------------------------------
    def boot(self, image_dir, sluiced, sluicectl, timeout=300):
        remove_stale()
        for d in ("bin", "guest", "out", "cmd", "res"):
            os.makedirs(os.path.join(self.share, d), exist_ok=True)
        shutil.copy2(sluiced, os.path.join(self.share, "bin", "sluiced"))
        shutil.copy2(sluicectl, os.path.join(self.share, "bin", "sluicectl"))
        here = os.path.dirname(os.path.abspath(__file__))
        for f in ("run", "agent.py"):
            shutil.copy2(os.path.join(here, "guest", f), os.path.join(self.share, "guest", f))
        with open(os.path.join(self.share, "guest", "nics"), "w") as f:
            f.write("\n".join(n[2] for n in self.nics) + "\n")
        self._make_taps()
        args = [QEMU, "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-machine", "q35", "-accel", "tcg,thread=multi", "-cpu", "max",
                "-smp", str(self.smp), "-m", str(self.mem_mb),
                "-device", "intel-iommu,intremap=on,caching-mode=on,aw-bits=48",
                "-kernel", os.path.join(image_dir, "vmlinuz"),
                "-initrd", os.path.join(image_dir, "initrd.img"),
                "-append", "console=ttyS0 root=/dev/vda rw init=/sbin/sluice-init intel_iommu=on "
                           "hugepages=256 panic=-1 quiet loglevel=4",
                "-drive", "file=%s,if=virtio,format=raw,snapshot=on" % os.path.join(image_dir, "rootfs.img"),
                "-virtfs", "local,path=%s,mount_tag=share,security_model=none,id=share" % self.share,
                "-monitor", "unix:%s,server,nowait" % self.monitor_path,
                "-serial", "file:%s" % self.console]
        for (nid, model, addr, mac, s) in self.nics:
            slot = int(addr.split(":")[2].split(".")[0], 16)
            args += ["-netdev", "tap,id=%s,ifname=%s,script=no,downscript=no" % (nid, self.taps[s])]
            dev = "%s,netdev=%s,mac=%s,addr=0x%x,romfile=" % (model, nid, mac, slot)
            if model.startswith("virtio"):
                dev += ",disable-legacy=on,iommu_platform=on,ats=on"
            args += ["-device", dev]
        self.qemu_args = args
        t0 = time.time()
        self.qemu_log = open(os.path.join(tempfile.gettempdir(), "sluice-vm-%d.qemu" % self.pid), "w")
        self.qemu = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.qemu_log,
                                     stderr=subprocess.STDOUT, preexec_fn=_die_with_parent)
        wait_until(lambda: self.qemu.poll() is not None or os.path.exists(self.monitor_path), 30,
                   "QEMU monitor socket")
        if self.qemu.poll() is not None:
            raise RuntimeError("QEMU exited with %d:\n%s" % (self.qemu.returncode, self._qemu_output()))
        self._move_taps()
        ready = os.path.join(self.out, "ready")
        deadline = time.time() + timeout
        while not os.path.exists(ready):
            if self.qemu.poll() is not None:
                raise RuntimeError("guest stopped before its agent started (QEMU rc %d)\n--- console\n%s\n"
                                   "--- guest-run.log\n%s" % (self.qemu.returncode, self.console_tail(),
                                                               self.read_out("guest-run.log")))
            if time.time() > deadline:
                raise RuntimeError("guest agent not ready after %ds\n--- console\n%s\n--- guest-run.log\n%s"
                                   % (timeout, self.console_tail(), self.read_out("guest-run.log")))
            time.sleep(0.5)
        self.info["boot_s"] = time.time() - t0
        log("guest up in %.1fs (%d vCPU TCG, %d MB)" % (self.info["boot_s"], self.smp, self.mem_mb))

    def _qemu_output(self):
        try:
            return open(self.qemu_log.name).read()
        except OSError:
            return ""

    def console_tail(self, n=60):
        try:
            return "\n".join(open(self.console, errors="replace").read().splitlines()[-n:])
        except OSError:
            return ""

    def read_out(self, name):
        try:
            with open(os.path.join(self.out, name), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    # ---- the agent ---------------------------------------------------------------
    def request(self, req, timeout=180):
        self.seq += 1
        name = "%06d.json" % self.seq
        tmp = os.path.join(self.share, "cmd", name + ".tmp")
        with open(tmp, "w") as f:
            json.dump(req, f)
        os.rename(tmp, os.path.join(self.share, "cmd", name))
        res = os.path.join(self.share, "res", name)
        deadline = time.time() + timeout
        while not os.path.exists(res):
            if self.qemu.poll() is not None:
                raise RuntimeError("QEMU exited (%d) during %r\n%s" % (self.qemu.returncode, req, self.console_tail()))
            if time.time() > deadline:
                raise RuntimeError("guest did not answer %r within %ds" % (req, timeout))
            time.sleep(0.05)
        with open(res) as f:
            r = json.load(f)
        os.unlink(res)
        return r

    def gsh(self, cmd, timeout=120, check=True):
        """A shell command in the guest → {"rc", "out", "err"}."""
        r = self.request({"op": "sh", "cmd": cmd, "timeout": timeout}, timeout=timeout + 30)
        if check and r["rc"] != 0:
            raise RuntimeError("guest: %s → %s\n%s%s" % (cmd, r["rc"], r.get("out", ""), r.get("err", "")))
        return r

    def ctl(self, *args, check=True):
        """sluicectl --json ARGS in the guest → parsed JSON. Every answer is also
        saved in the share (out/ctl-NNN.json) with the command line."""
        r = self.request({"op": "ctl", "args": list(args)}, timeout=90)
        with open(os.path.join(self.out, "ctl-%04d.json" % self.seq), "w") as f:
            json.dump({"args": list(args), "result": r}, f, indent=1)
        if check and r["rc"] != 0:
            raise RuntimeError("guest sluicectl %s → %s: %s%s" % (" ".join(args), r["rc"], r.get("out", ""), r.get("err", "")))
        return r["json"]

    def start_sluiced(self, name, body, eal_args=(), timeout=180, memory_mb=256):
        """Writes the topology to the share (out/NAME.yaml) and starts sluiced
        --foreground in the guest with its log in out/NAME.log."""
        text = ('eal:\n  lcores: "0-1"\n  hugepages: true\n  memory_mb: %d\n  file_prefix: sluice-vm\n' % memory_mb
                + ('  args: [%s]\n' % ", ".join('"%s"' % a for a in eal_args) if eal_args else "")
                +
                'control:\n  socket: /run/sluice/vm.sock\n  telemetry: false\n'
                'logging:\n  level: info\n') + body
        with open(os.path.join(self.out, name + ".yaml"), "w") as f:
            f.write(text)
        t0 = time.time()
        r = self.request({"op": "start", "config": "/share/out/%s.yaml" % name,
                          "log": "/share/out/%s.log" % name, "timeout": timeout}, timeout=timeout + 30)
        if r["rc"] != 0:
            raise RuntimeError("sluiced did not start in the guest (%s: %s)\n--- %s.log\n%s" % (
                r["rc"], r.get("err"), name, self.read_out(name + ".log")[-6000:]))
        log("sluiced (%s) serving in the guest after %.1fs" % (name, time.time() - t0))
        self.current = name
        return text

    def stop_sluiced(self):
        return self.request({"op": "stop", "timeout": 60}, timeout=120)["rc"]

    def sluiced_log(self):
        return self.read_out(self.current + ".log")

    # ---- QEMU monitor --------------------------------------------------------
    def monitor(self, cmd, timeout=10):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout)
        s.connect(self.monitor_path)
        buf = b""
        try:
            while not buf.endswith(b"(qemu) "):
                buf += s.recv(4096)
            s.sendall(cmd.encode() + b"\n")
            buf = b""
            while not buf.endswith(b"(qemu) "):
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        finally:
            s.close()
        out = buf.decode(errors="replace").replace("\r", "")
        out = out[:-len("(qemu) ")] if out.endswith("(qemu) ") else out
        lines = [l for l in out.splitlines() if not l.startswith(cmd) and "\x1b" not in l]
        return "\n".join(lines).strip()

    # ---- teardown --------------------------------------------------------------
    def close(self):
        if self.qemu is not None and self.qemu.poll() is None:
            try:
                self.request({"op": "poweroff"}, timeout=40)
                self.qemu.wait(timeout=30)
            except Exception as e:  # noqa: BLE001 — fall through to harder stops
                log("guest poweroff failed (%s): quitting QEMU" % e)
            if self.qemu.poll() is None:
                try:
                    self.monitor("quit", timeout=5)
                    self.qemu.wait(timeout=10)
                except Exception:  # noqa: BLE001
                    pass
            if self.qemu.poll() is None:
                self.qemu.kill()
                self.qemu.wait()
        for s, tap in self.taps.items():
            if s in self.netns:
                sh("ip -n %s link del %s" % (self.netns[s], tap), check=False)
            sh("ip link del %s" % tap, check=False)
        for ns in self.netns.values():
            sh("ip netns del %s" % ns, check=False)
        results = os.environ.get("SLUICE_VM_RESULTS", os.path.join(BUILD, "test-tmp", "vm-last"))
        try:
            shutil.rmtree(results, ignore_errors=True)
            shutil.copytree(self.out, results)
            for p in (self.console, getattr(getattr(self, "qemu_log", None), "name", "")):
                if p and os.path.exists(p):
                    shutil.copy2(p, results)
            log("guest results, logs and console copied to %s" % results)
        except OSError as e:
            log("could not keep results: %s" % e)
        for p in (self.monitor_path, self.console, getattr(getattr(self, "qemu_log", None), "name", "")):
            if p and os.path.exists(p):
                os.unlink(p)
        shutil.rmtree(self.share, ignore_errors=True)


# ---- runner ------------------------------------------------------------------

class Runner:
    """PASS/FAIL/SKIP lines and the closing 'N passed, M failed'."""

    def __init__(self):
        self.passed = self.failed = self.skipped = 0

    def run(self, fn, *args):
        t0 = time.time()
        try:
            fn(*args)
            self.passed += 1
            print("PASS %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)
            return True
        except Skip as e:
            self.skipped += 1
            print("SKIP %s (%s)" % (fn.__name__, e), flush=True)
        except Exception:  # noqa: BLE001
            self.failed += 1
            print("FAIL %s (%.1fs)" % (fn.__name__, time.time() - t0), flush=True)
            traceback.print_exc()
            sys.stdout.flush()
        return False

    def fail(self, name, msg):
        self.failed += 1
        print("FAIL %s: %s" % (name, msg), flush=True)

    def finish(self):
        extra = ", %d skipped" % self.skipped if self.skipped else ""
        print("%d passed, %d failed%s" % (self.passed, self.failed, extra), flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)


class Skip(Exception):
    pass
