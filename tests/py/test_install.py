#!/usr/bin/python3
"""What `cmake --install` puts where, into a prefix of our own: the units (checked by
systemd-analyze verify, against the installed paths), the man pages (groff finds no
fault, and corod(8) names every option corod has), the shell completions (bash completes
commands and options; zsh and fish parse theirs), and a corod.pc that follows the prefix.

usage: test_install.py BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

BUILD = None
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"


def run(*argv, env=None, check=True):
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.run(argv, env=full, capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{argv} exited {p.returncode}: {p.stdout}{p.stderr}")
    return p


class Install(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = tempfile.mkdtemp(prefix="corod-install-")
        run("cmake", "--install", BUILD, "--prefix", cls.prefix)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def path(self, *parts):
        return os.path.join(self.prefix, *parts)

    def find(self, name):
        for root, _, files in os.walk(self.prefix):
            if name in files:
                return os.path.join(root, name)
        raise AssertionError(f"{name} is not installed")

    def all(self, name):
        return sorted(os.path.join(r, name) for r, _, f in os.walk(self.prefix) if name in f)

    def test_the_installed_corod_finds_its_slurm_prolog(self):
        prolog = self.path("libexec", "corod", "corod-slurm-prolog")
        self.assertTrue(os.access(prolog, os.X_OK), prolog)
        if not all(shutil.which(t) for t in ("srun", "scancel", "scontrol")):
            self.skipTest("no Slurm client here: hello would say so whatever the prolog")
        d = tempfile.mkdtemp(prefix="corod-install-run-")
        sock = os.path.join(d, "s")
        p = subprocess.Popen([self.path("bin", "corod"), "--socket", sock, "--state-dir", os.path.join(d, "st"),
                              "--no-store"], stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(500):
                if os.path.exists(sock):
                    break
                time.sleep(0.01)
            sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
            import test_protocol as tp
            with tp.Client(sock) as c:
                self.assertEqual(c.call("hello")["executors"]["slurm"], {"available": True})
        finally:
            p.terminate()
            p.communicate(timeout=60)
            shutil.rmtree(d, ignore_errors=True)

    def test_units_name_the_installed_paths_and_verify(self):
        services = self.all("corod.service")
        self.assertEqual(len(services), 2)  # the system's and a user's
        for s in services:
            with open(s) as f:
                text = f.read()
            self.assertIn(f"ExecStart={self.prefix}/bin/corod", text)
            self.assertIn(f"file://{self.prefix}/share/doc/corod/PROTOCOL.md", text)
            self.assertIn("ExecReload=/bin/kill -HUP $MAINPID", text)
            self.assertIn("WatchdogSec=", text)
            self.assertIsNone(re.search(r"@[A-Z_]+@", text))  # nothing left to configure
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (Debian package systemd)")
        man = {"MANPATH": self.path("share", "man")}
        for s in services:
            d = os.path.dirname(s)
            units = [os.path.join(d, "corod.service"), os.path.join(d, "corod.socket")]
            if d.endswith("user"):
                rt = tempfile.mkdtemp(prefix="corod-xdg-")
                os.chmod(rt, 0o700)
                p = run("systemd-analyze", "--user", "verify", *units, env={**man, "XDG_RUNTIME_DIR": rt},
                        check=False)
                shutil.rmtree(rt, ignore_errors=True)
            else:
                p = run("systemd-analyze", "verify", *units, env=man, check=False)
            self.assertEqual((p.returncode, p.stderr), (0, ""), s)

    def test_man_pages_are_clean_and_name_every_option(self):
        pages = [self.find("corod.8"), self.find("coroctl.1"), self.find("corod.conf.5")]
        if shutil.which("groff"):
            for page in pages:
                p = run("groff", "-man", "-ww", "-z", page)
                self.assertEqual(p.stderr, "", page)
        helptext = run(self.path("bin", "corod"), "--help").stdout
        options = set(re.findall(r"--([a-z][a-z-]+)", helptext))
        self.assertIn("max-uid-store", options)
        with open(pages[0]) as f:
            man8 = f.read().replace("\\-", "-")
        missing = sorted(o for o in options if f"--{o}" not in man8)
        self.assertEqual(missing, [], "options corod(8) does not describe")

    def test_corod_pc_follows_the_prefix(self):
        pc = self.find("corod.pc")
        p = run("pkg-config", "--cflags", "--libs", "corod", env={"PKG_CONFIG_PATH": os.path.dirname(pc)})
        inc = re.search(r"-I(\S+)", p.stdout).group(1)
        lib = re.search(r"-L(\S+)", p.stdout).group(1)
        self.assertTrue(os.path.isfile(os.path.join(inc, "corod", "client.h")), p.stdout)
        self.assertTrue(os.path.realpath(lib).startswith(os.path.realpath(self.prefix)), p.stdout)
        self.assertTrue(any(f.startswith("libcorod.so") for f in os.listdir(lib)), p.stdout)

    @unittest.skipUnless(os.path.exists(BASH_COMPLETION), "bash-completion is not installed")
    def test_bash_completes_commands_and_options(self):
        script = self.find("coroctl")  # the completion, in bash-completion's directory
        if "bash-completion" not in script:
            script = [p for p in self.all("coroctl") if "bash-completion" in p][0]

        def complete(*words):
            line = " ".join(f"'{w}'" for w in words)
            p = run("bash", "-c", f"source {BASH_COMPLETION}; source {script}; COMP_WORDS=({line}); "
                    f"COMP_CWORD={len(words) - 1}; COMP_LINE=\"{' '.join(words)}\"; COMP_POINT=${{#COMP_LINE}}; "
                    f"_{words[0]}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
                    env={"PATH": self.path("bin") + ":" + os.environ["PATH"], "CORO_SOCKET": "/nonexistent"})
            return sorted(x for x in p.stdout.split("\n") if x)

        self.assertEqual(complete("coroctl", "li"), ["list"])
        self.assertEqual(complete("coroctl", "re"), ["restart", "resume"])
        self.assertEqual(complete("coroctl", "add", "--re"), ["--retries", "--retry-delay"])
        self.assertEqual(complete("coroctl", "list", "--state", "f"), ["failed"])
        self.assertIn("--max-uid-store", complete("corod", "--max-uid-s"))
        self.assertEqual(complete("corod", "--sync", ""), ["full", "normal"])

    def test_zsh_and_fish_parse_theirs(self):
        ran = 0
        if shutil.which("zsh"):
            run("zsh", "-n", self.find("_coroctl"))
            ran += 1
        if shutil.which("fish"):
            run("fish", "--no-execute", self.find("coroctl.fish"))
            ran += 1
        if not ran:
            self.skipTest("neither zsh nor fish is installed")


if __name__ == "__main__":
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
