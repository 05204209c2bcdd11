#!/usr/bin/env python3
"""A topology file cannot make sluiced open files or sockets outside what it
names (issue 16, docs/robustness.md "Config").

sluiced runs under strace (-f, successful calls only) with a topology that
names every kind of path a topology can name — an af_packet port on a veth,
a net_pcap port with an input and an output file, a log file, a control
socket in a directory that does not exist yet, telemetry, a metrics
endpoint, a mirror to a pcapng file — and carries traffic, commands
(including `capture start … file PATH` and `reload`) and a SIGTERM. Then
every successful file and socket system call of every thread is checked:

* created, written, removed or renamed paths: only the files the topology
  (or a command) named, the control socket's directory, DPDK's runtime
  directory of this file_prefix (/var/run/dpdk/PREFIX: its config and the
  telemetry socket), and the per-thread name files of /proc (thread names);
* read-only opens: only the named files, system locations (/etc for the
  loader, the group lookup and time zone, /usr and /lib for libraries,
  /proc, /sys and /dev for DPDK's probing), and the runtime directory;
* bound and connected sockets: the named control socket, DPDK's telemetry
  socket, the metrics address; AF_NETLINK/AF_PACKET to the kernel only;
* nothing is executed but sluiced itself.

A second part: file names smuggled in device names are refused at load.
"""
import os
import re
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import Lab, Runner, SLUICED, sh  # noqa: E402

# strace -y: a descriptor argument shows its path, "18</var/run/dpdk/x>".
FD = r'(?:AT_FDCWD|\d+)(?:<([^>]*)>)?'
OPEN_RE = re.compile(r'^(\d+)\s+(open|openat|openat2|creat)\((?:' + FD + r', )?"([^"]*)", ([A-Z_|0-9]+)')
PATH_RE = re.compile(r'^(\d+)\s+(mkdir|mkdirat|unlink|unlinkat|rmdir|rename|renameat|renameat2|'
                     r'link|linkat|symlink|symlinkat|truncate|chmod|fchmodat|chown|fchownat|'
                     r'lchown|mknod|mknodat|utimensat)\((?:' + FD + r', )?"([^"]*)"')
SOCK_RE = re.compile(r'^(\d+)\s+(bind|connect)\(\d+(?:<[^>]*>)?, \{sa_family=(AF_[A-Z0-9]+)(.*?)\}, \d+\)')
EXEC_RE = re.compile(r'^(\d+)\s+execve\("([^"]*)"')

READ_PREFIXES = ("/etc/", "/usr/", "/lib/", "/lib64/", "/proc/", "/sys/", "/dev/")


def write_flags(flags):
    return any(f in flags.split("|") for f in ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND"))


def join(dirpath, path):
    """A path relative to a directory descriptor, made absolute."""
    if dirpath and not path.startswith("/"):
        return os.path.join(dirpath, path)
    return path


def parse(trace_path):
    """→ list of (kind, syscall, detail) for every relevant successful call."""
    out = []
    with open(trace_path) as f:
        for line in f:
            line = line.rstrip("\n")
            m = OPEN_RE.match(line)
            if m:
                kind = "write" if write_flags(m.group(5)) else "read"
                out.append((kind, m.group(2), join(m.group(3), m.group(4)), line))
                continue
            m = PATH_RE.match(line)
            if m:
                out.append(("write", m.group(2), join(m.group(3), m.group(4)), line))
                continue
            m = SOCK_RE.match(line)
            if m:
                out.append(("sock", m.group(2) + " " + m.group(3), m.group(4), line))
                continue
            m = EXEC_RE.match(line)
            if m:
                out.append(("exec", "execve", m.group(2), line))
    return out


def under(path, d):
    return path == d or path.startswith(d.rstrip("/") + "/")


def test_named_paths_only(lab):
    a_ns, a_if = lab.host("a", "10.0.1.2/24")
    sh("ip -n %s route add default via 10.0.1.1" % a_ns)
    t = lab.tmp
    named = {
        "config": os.path.join(t, "topology.yaml"),
        "rx_pcap": os.path.join(t, "in.pcap"),
        "tx_pcap": os.path.join(t, "out.pcap"),
        "log": os.path.join(t, "logs", "file.log"),
        "mirror": os.path.join(t, "m0.pcapng"),
        "capture": os.path.join(t, "cap.pcapng"),
    }
    os.makedirs(os.path.join(t, "logs"))
    sock_dir = os.path.join(t, "ctl")          # does not exist: sluiced makes it
    lab.sock = os.path.join(sock_dir, "sluice.sock")
    # An input file for the pcap port: a few UDP frames to its address.
    sh("%s -c \"from scapy.all import *; wrpcap('%s', [Ether(dst='02:00:00:00:02:01')/IP(src='10.0.2.9',"
       "dst='10.0.2.1')/UDP(dport=9)/('x'*20)]*5)\"" % ("/usr/bin/python3", named["rx_pcap"]))
    metrics_port = 20000 + os.getpid() % 20000
    prefix = "sl-" + lab.tag
    text = f"""eal:
  lcores: "0-1"
  hugepages: false
  memory_mb: 512
  file_prefix: {prefix}
control:
  socket: {lab.sock}
  telemetry: true
  metrics: "127.0.0.1:{metrics_port}"
logging: {{level: info, file: {named['log']}}}
ports:
  - {{name: p1, device: "net_af_packet0,iface={a_if}"}}
  - {{name: p2, device: "net_pcap0,rx_pcap={named['rx_pcap']},tx_pcap={named['tx_pcap']}", mac: "02:00:00:00:02:01"}}
addresses:
  - {{dev: p1, address: 10.0.1.1/24}}
  - {{dev: p2, address: 10.0.2.1/24}}
mirrors:
  - name: m0
    source: {{dev: p1, direction: ingress}}
    filter: icmp
    action: mirror
    to: {{pcapng: {named['mirror']}, max_bytes: 1000000}}
"""
    with open(named["config"], "w") as f:
        f.write(text)
    trace = os.path.join(t, "strace.out")
    logf = open(lab.log, "w")
    lab.proc = subprocess.Popen(
        ["strace", "-f", "-qq", "-z", "-y", "-s", "512", "-o", trace,
         "-e", "trace=%file,bind,connect,execve,mknodat",
         SLUICED, "-c", named["config"], "--foreground"],
        stdout=logf, stderr=subprocess.STDOUT)
    try:
        lab.wait_until(lambda: os.path.exists(lab.sock) and lab.ctl_raw("version").returncode == 0,
                       timeout=60, what="sluiced under strace to answer")

        # Traffic, commands that name a file, a reload, metrics, then stop.
        r = lab.ns_exec(a_ns, "ping -c 5 -i 0.05 -W 1 10.0.1.1", check=False)
        assert " 0% packet loss" in r.stdout, r.stdout
        r = lab.ctl_raw("capture", "start", "p1", "both", "icmp", "file", named["capture"], "count", "4")
        assert r.returncode == 0, r.stdout + r.stderr
        lab.ns_exec(a_ns, "ping -c 3 -i 0.05 -W 1 10.0.1.1", check=False)
        assert lab.ctl_raw("reload").returncode == 0
        m = subprocess.run(["curl", "-s", "http://127.0.0.1:%d/metrics" % metrics_port],
                           capture_output=True, text=True, timeout=10)
        assert "sluice_" in m.stdout, m.stdout[:200]
        assert lab.ctl_raw("capture", "stop").returncode == 0
        # SIGTERM to sluiced itself (strace's child); strace exits with its status.
        kids = subprocess.run(["pgrep", "-P", str(lab.proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(kids) == 1, kids
        os.kill(int(kids[0]), signal.SIGTERM)
        rc = lab.proc.wait(timeout=30)
        lab.proc = None
    except BaseException:
        # strace does not take its tracee with it: kill sluiced first.
        subprocess.run(["pkill", "-KILL", "-P", str(lab.proc.pid)])
        lab.proc.wait(timeout=30)
        lab.proc = None
        raise
    log = open(named["log"]).read()
    assert rc == 0, (rc, log[-3000:])
    assert "mbufs missing" not in log and not re.search(r"\(\d+ missing\)", log), log[-2000:]
    for k in ("log", "mirror", "capture", "tx_pcap"):
        assert os.path.getsize(named[k]) > 0, k

    calls = parse(trace)
    assert len(calls) > 50, "strace saw too little (%d calls)" % len(calls)
    runtime = ["/var/run/dpdk/" + prefix, "/run/dpdk/" + prefix]
    written_ok = set(named.values()) | {lab.sock}
    bad = []
    seen_write = set()
    for kind, call, path, line in calls:
        if kind == "exec":
            if os.path.realpath(path) != os.path.realpath(SLUICED):
                bad.append(line)
        elif kind == "write":
            seen_write.add(path)
            ok = (path in written_ok or path == sock_dir
                  or any(under(path, d) for d in runtime)
                  or re.fullmatch(r"/proc/self/task/\d+/comm|/proc/\d+/task/\d+/comm", path)
                  or path == "/dev/null"
                  # DPDK's runtime directory's parents (mkdir -p, EEXIST is not "successful")
                  or path in ("/var/run/dpdk", "/run/dpdk"))
            if not ok:
                bad.append(line)
        elif kind == "read":
            ok = (path in written_ok or path.startswith(READ_PREFIXES)
                  or any(under(path, d) for d in runtime) or path in ("/var/run/dpdk", "/run/dpdk"))
            if not ok:
                bad.append(line)
        elif kind == "sock":
            fam = call.split()[1]
            if fam == "AF_UNIX":
                m = re.search(r'sun_path="([^"]*)"', path)
                p = m.group(1) if m else ""
                ok = p == lab.sock or any(under(p, d) for d in runtime) or p == ""
            elif fam == "AF_INET":
                ok = ("htons(%d)" % metrics_port) in path and "127.0.0.1" in path
            elif fam in ("AF_NETLINK", "AF_PACKET"):
                ok = True
            else:
                ok = False
            if not ok:
                bad.append(line)
    if os.environ.get("SLUICE_TEST_VERBOSE"):
        print("\n".join(sorted({"%s %s %s" % (k, c, p) for k, c, p, _ in calls if k != "read"})))
    assert not bad, "paths or sockets the topology did not name:\n" + "\n".join(bad[:40])
    # The check saw what it is about: each named output was created, the socket bound.
    for k in ("log", "mirror", "capture", "tx_pcap"):
        assert named[k] in seen_write, (k, sorted(seen_write)[:30])
    assert any(k == "sock" and lab.sock in p for k, _, p, _ in calls), "control socket bind not seen"
    assert any(k == "sock" and "htons(%d)" % metrics_port in p for k, _, p, _ in calls), "metrics bind not seen"


def test_paths_in_names_are_refused(lab):
    """Device names become parts of file names nowhere, and cannot carry a
    path: '/' and '..' in names are refused at load with line:col."""
    t = lab.tmp
    cases = [
        ("ports:\n  - {name: ../x, device: net_null0}\n", "are allowed"),
        ("ports:\n  - {name: a/b, device: net_null0}\n", "are allowed"),
        ("ports:\n  - {name: \"..\", device: net_null0}\n", "are not device names"),
        ("ports:\n  - {name: p0, device: net_null0}\nvlans:\n  - {name: ../v, link: p0, id: 5}\n", "are allowed"),
        ("ports:\n  - {name: p0, device: net_null0}\nbridges:\n  - {name: /tmp/br, ports: [p0]}\n", "are allowed"),
    ]
    for i, (body, want) in enumerate(cases):
        path = os.path.join(t, "bad%d.yaml" % i)
        with open(path, "w") as f:
            f.write(body)
        r = subprocess.run([SLUICED, "--check", "-c", path], capture_output=True, text=True, timeout=30)
        assert r.returncode == 2, (body, r.returncode, r.stderr)
        assert re.search(re.escape(path) + r":\d+:\d+: .*" + re.escape(want), r.stderr), (body, r.stderr)


if __name__ == "__main__":
    runner = Runner()
    for fn in (test_named_paths_only, test_paths_in_names_are_refused):
        lab = Lab("conf")
        try:
            runner.run(fn, lab)
        finally:
            lab.close()
    runner.finish()
