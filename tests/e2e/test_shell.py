#!/usr/bin/python3
"""End-to-end: sluicectl's interactive shell through a real pseudo-terminal
(tmux): a typed command runs, Tab completes a live device name from the
daemon, Up recalls the last command after a restart of the shell (history in
$HOME/.sluicectl_history), Ctrl-C drops the line and keeps the session,
`quit` leaves. And the bash completion file, called as bash calls it."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from lab import SLUICECTL, Lab, Runner  # noqa: E402

SRC = os.path.join(os.path.dirname(__file__), "../..")
TMUX = ["tmux", "-L", "sluice-shell-%d" % os.getpid()]


def start_lab(name):
    lab = Lab(name)
    _, if1 = lab.host("a")
    _, if2 = lab.host("b")
    cfg = lab.config("""ports:
  - {name: wan0, device: "net_af_packet0,iface=%s"}
  - {name: lan0, device: "net_af_packet1,iface=%s"}
bridges:
  - {name: br0, ports: [lan0]}
""" % (if1, if2))
    lab.start(cfg)
    return lab


class Pane:
    def __init__(self, lab, home):
        self.name = "sh"
        subprocess.run(TMUX + ["new-session", "-d", "-s", self.name, "-x", "200", "-y", "50",
                               "env HOME=%s TERM=xterm %s -s %s" % (home, SLUICECTL, lab.sock)],
                       check=True)
        self.wait_for("sluice>")

    def text(self):
        return subprocess.run(TMUX + ["capture-pane", "-p", "-t", self.name], capture_output=True,
                              text=True).stdout

    def alive(self):
        return subprocess.run(TMUX + ["has-session", "-t", self.name], capture_output=True).returncode == 0

    def keys(self, *keys):
        subprocess.run(TMUX + ["send-keys", "-t", self.name] + list(keys), check=True)

    def type(self, s):
        subprocess.run(TMUX + ["send-keys", "-t", self.name, "-l", s], check=True)

    def wait_for(self, what, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            t = self.text()
            if (what(t) if callable(what) else what in t):
                return t
            time.sleep(0.1)
        raise AssertionError("pane never showed %r:\n%s" % (what, self.text()))

    def last_prompt_line(self):
        lines = [l for l in self.text().splitlines() if l.startswith("sluice>")]
        return lines[-1] if lines else ""

    def kill(self):
        subprocess.run(TMUX + ["kill-server"], capture_output=True)


def test_shell():
    lab = start_lab("shel")
    home = os.path.join(lab.tmp, "home")
    os.mkdir(home)
    pane = None
    try:
        pane = Pane(lab, home)
        # A typed command runs and prints its reply.
        pane.type("show devices")
        pane.keys("Enter")
        pane.wait_for(lambda t: "wan0" in t and "lan0" in t and "br0" in t and t.count("sluice>") >= 2)
        # Tab completes a live device name (one device starts with "w").
        pane.type("show port stats w")
        pane.keys("Tab")
        pane.wait_for(lambda t: pane.last_prompt_line().rstrip() == "sluice> show port stats wan0")
        pane.keys("Enter")
        pane.wait_for(lambda t: t.count("sluice>") >= 3 and "rx" in t.lower().split("show port stats wan0")[-1])
        # Keywords complete too: "show fdb " + Tab → the one bridge.
        pane.type("show fd")
        pane.keys("Tab")
        pane.wait_for(lambda t: pane.last_prompt_line().rstrip() == "sluice> show fdb")
        pane.keys("Tab")
        pane.wait_for(lambda t: pane.last_prompt_line().rstrip() == "sluice> show fdb br0")
        # Where a file name goes, file names complete (libedit's own completion).
        pane.keys("C-c")
        time.sleep(0.2)
        uniq = os.path.join(lab.tmp, "reload-me-%d.yaml" % os.getpid())
        open(uniq, "w").close()
        pane.type("reload " + uniq[:-8])
        pane.keys("Tab")
        pane.wait_for(lambda t: pane.last_prompt_line().rstrip() == "sluice> reload " + uniq)
        # Ctrl-C drops the line, the session stays, the next command runs.
        pane.keys("C-c")
        time.sleep(0.3)
        assert pane.alive(), "Ctrl-C killed the shell"
        pane.type("version")
        pane.keys("Enter")
        t = pane.wait_for(lambda t: "sluice> version" in t and "dpdk" in t.lower().split("sluice> version")[-1])
        assert "unknown command" not in t, t
        # Ctrl-D leaves; the history file holds the commands.
        pane.keys("C-d")
        deadline = time.time() + 5
        while pane.alive() and time.time() < deadline:
            time.sleep(0.1)
        assert not pane.alive(), "Ctrl-D did not leave the shell"
        hist = open(os.path.join(home, ".sluicectl_history")).read()
        # (libedit's format: blanks as \\040; the Ctrl-C'd line is not kept)
        hist = hist.replace("\\040", " ")
        assert "show port stats wan0" in hist and "version" in hist, hist
        assert "show fdb" not in hist, hist
        # A new shell: Up recalls the last command, Enter runs it.
        pane = Pane(lab, home)
        pane.keys("Up")
        pane.wait_for(lambda t: pane.last_prompt_line().rstrip() == "sluice> version")
        pane.keys("Up")
        pane.wait_for(lambda t: pane.last_prompt_line().rstrip().startswith("sluice> show port stats wan0"))
        pane.keys("Down")
        pane.keys("Enter")
        pane.wait_for(lambda t: "dpdk" in t.lower())
        # help COMMAND is the daemon's.
        pane.type("help set link")
        pane.keys("Enter")
        pane.wait_for("set link DEV up|down")
        # quit leaves.
        pane.type("quit")
        pane.keys("Enter")
        deadline = time.time() + 5
        while pane.alive() and time.time() < deadline:
            time.sleep(0.1)
        assert not pane.alive(), "quit did not leave the shell"
    finally:
        if pane is not None:
            pane.kill()
        lab.close()


def bash_complete(lab, words):
    cword = len(words) - 1  # completing the last word
    script = """
source %s/contrib/bash-completion/sluicectl
COMP_WORDS=(%s)
COMP_CWORD=%d
_sluicectl
printf '%%s\\n' "${COMPREPLY[@]}"
""" % (SRC, " ".join("'%s'" % w for w in words), cword)
    r = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return sorted(l for l in r.stdout.splitlines() if l)


def test_bash_completion():
    lab = start_lab("bash")
    try:
        ctl = os.path.abspath(SLUICECTL)
        assert bash_complete(lab, [ctl, "-s", lab.sock, "show", "port", "stats", "w"]) == ["wan0"]
        got = bash_complete(lab, [ctl, "-s", lab.sock, "show", "port", "stats", ""])
        assert got == ["all", "br0", "lan0", "lo", "wan0"], got  # lo: in every topology
        assert bash_complete(lab, [ctl, "-s", lab.sock, "set", "link", "lan0", ""]) == ["down", "up"]
        assert bash_complete(lab, [ctl, "-s", lab.sock, "show", "fdb", ""]) == ["br0"]
        assert "show" in bash_complete(lab, [ctl, "-s", lab.sock, "sh"])
        # The daemon's own command, also by hand, and --json.
        assert lab.ctl("complete", "show", "port", "stats", "la") == ["lan0"]
        assert lab.ctl("complete", "show", "port", "stats", "l") == ["lan0", "lo"]
        assert lab.ctl_raw("complete", "show", "fd").stdout == "fdb\n"
    finally:
        lab.close()


if __name__ == "__main__":
    r = Runner()
    for t in (test_shell, test_bash_completion):
        r.run(t)
    r.finish()
