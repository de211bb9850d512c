"""The Debian package: packaging/deb.sh builds it, and we look inside.

Checks the paths and modes in the .deb, the conffiles, the control fields and maintainer scripts,
that lintian reports no error, that the man pages render without warnings, and that the packaged
binary accepts the packaged configs (extracted with dpkg-deb -x).

packaging/deb.sh makes its own release build in build-deb/ (reused when present): on a fresh
checkout the first test here compiles portier, which takes minutes on a small machine; give the
runner time, e.g. `PORTIER_TEST_TIMEOUT=900 tests/integration/run.py -k test_package`.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# dpkg-deb -c: "-rwxr-xr-x root/root   1234 2026-11-22 12:31 ./usr/sbin/portier"
LIST_RE = re.compile(r"^([-dlrwxsStT]{10}) (\S+)/(\S+)\s+\d+ \S+ \S+ \./(.*?)(?: -> .*)?$")


def meson_version():
    with open(os.path.join(REPO, "meson.build")) as f:
        m = re.search(r"project\([^)]*?version\s*:\s*'([^']+)'", f.read(), re.S)
    return m.group(1)


def run(cmd, timeout=120, **kw):
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=timeout, cwd=REPO, **kw)


def run_deb_sh(args, timeout):
    """packaging/deb.sh in its own process group: if this test is stopped (the runner's timeout),
    the compiler processes under it are stopped too, and no orphaned ninja goes on writing
    build-deb/ while the next test starts another one."""
    proc = subprocess.Popen([os.path.join(REPO, "packaging", "deb.sh")] + args, cwd=REPO,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except BaseException:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                pass
        raise
    return subprocess.CompletedProcess(proc.args, proc.returncode, out)


def text(p):
    return p.stdout.decode("utf-8", "replace")


class Package(unittest.TestCase):
    deb = None

    @classmethod
    def setUpClass(cls):
        if shutil.which("dpkg-deb") is None and shutil.which("apt-get") is None:
            raise unittest.SkipTest("dpkg-deb is missing and apt-get is not there to install it "
                                    "(not a Debian system?)")
        # One release build, reused by every test of this class (and by later runs).
        p = run_deb_sh(["--no-lintian"], timeout=3600)
        out = text(p)
        if p.returncode != 0:
            raise AssertionError("packaging/deb.sh --no-lintian failed (exit %d):\n%s" % (p.returncode, out[-6000:]))
        m = re.search(r"^deb\.sh: built (\S+\.deb)$", out, re.M)
        if not m:
            raise AssertionError("packaging/deb.sh did not say which .deb it built:\n" + out[-3000:])
        cls.deb = os.path.join(REPO, m.group(1))
        cls.version = meson_version()
        cls.arch = subprocess.run(["dpkg", "--print-architecture"], stdout=subprocess.PIPE, check=True,
                                  text=True).stdout.strip()
        listing = subprocess.run(["dpkg-deb", "-c", cls.deb], stdout=subprocess.PIPE, check=True,
                                 text=True).stdout
        cls.entries = {}
        for line in listing.splitlines():
            m = LIST_RE.match(line)
            if m is None:
                raise AssertionError("unexpected dpkg-deb -c line: %r" % line)
            mode, owner, group, path = m.groups()
            cls.entries["/" + path.rstrip("/")] = (mode, owner, group)
        cls.tmp = tempfile.mkdtemp(prefix="portier-deb-")
        subprocess.run(["dpkg-deb", "-x", cls.deb, cls.tmp], check=True)
        cls.ctrl = os.path.join(cls.tmp, "DEBIAN")
        subprocess.run(["dpkg-deb", "-e", cls.deb, cls.ctrl], check=True)

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "tmp", None) and not os.environ.get("PORTIER_KEEP_TMP"):
            shutil.rmtree(cls.tmp, True)

    def field(self, name):
        return subprocess.run(["dpkg-deb", "-f", self.deb, name], stdout=subprocess.PIPE, check=True,
                              text=True).stdout.strip()

    # ---------------------------------------------------------------------------------------------
    def test_file_name_and_control_fields(self):
        self.assertEqual(os.path.basename(self.deb), "portier_%s_%s.deb" % (self.version, self.arch))
        self.assertEqual(os.path.dirname(self.deb), os.path.join(REPO, "build-deb"))
        self.assertEqual(self.field("Package"), "portier")
        self.assertEqual(self.field("Version"), self.version)
        self.assertEqual(self.field("Architecture"), self.arch)
        self.assertEqual(self.field("Section"), "net")
        self.assertRegex(self.field("Maintainer"), r"^[^<>]+ <[^<>@\s]+@[^<>@\s]+>$")
        self.assertRegex(self.field("Installed-Size"), r"^\d+$")
        self.assertTrue(self.field("Description").startswith("HTTP forward and reverse proxy"))
        depends = [d.strip() for d in self.field("Depends").split(",")]
        names = [re.split(r"[\s(]", d, maxsplit=1)[0] for d in depends]
        for want in (r"libc6", r"libstdc\+\+6", r"libssl3\S*", r"libre2-\d+\S*", r"libcrypt1", r"adduser"):
            self.assertTrue(any(re.fullmatch(want, n) for n in names),
                            "Depends has no %s: %s" % (want, ", ".join(depends)))

    def test_contents_and_modes(self):
        expect = {
            "/usr/sbin/portier": "-rwxr-xr-x",
            "/lib/systemd/system/portier.service": "-rw-r--r--",
            "/usr/lib/tmpfiles.d/portier.conf": "-rw-r--r--",
            "/etc/logrotate.d/portier": "-rw-r--r--",
            "/etc/portier/portier.json": "-rw-r--r--",
            "/etc/portier/block.html": "-rw-r--r--",
            "/etc/portier/users.htpasswd.example": "-rw-r--r--",
            "/usr/share/man/man8/portier.8.gz": "-rw-r--r--",
            "/usr/share/man/man5/portier.json.5.gz": "-rw-r--r--",
            "/usr/share/doc/portier/copyright": "-rw-r--r--",
            "/usr/share/doc/portier/changelog.gz": "-rw-r--r--",
        }
        for f in glob.glob(os.path.join(REPO, "rules", "examples", "*.json")):
            expect["/etc/portier/examples/" + os.path.basename(f)] = "-rw-r--r--"
        for f in glob.glob(os.path.join(REPO, "rules", "lists", "*")):
            expect["/etc/portier/lists/" + os.path.basename(f)] = "-rw-r--r--"
        for path, mode in expect.items():
            self.assertIn(path, self.entries, "the package has no %s" % path)
            self.assertEqual(self.entries[path][0], mode, path)
        for path, (mode, owner, group) in self.entries.items():
            self.assertEqual((owner, group), ("root", "root"), path)
            if mode.startswith("d"):
                self.assertEqual(mode, "drwxr-xr-x", path)
            elif path != "/usr/sbin/portier":
                self.assertEqual(mode, "-rw-r--r--", path)

        # Stripped: no symbol table.
        binary = os.path.join(self.tmp, "usr", "sbin", "portier")
        if shutil.which("readelf"):
            sections = subprocess.run(["readelf", "-S", "-W", binary], stdout=subprocess.PIPE, check=True,
                                      text=True).stdout
            self.assertNotIn(".symtab", sections, "usr/sbin/portier is not stripped")
            self.assertNotIn(".debug_", sections, "usr/sbin/portier has debug info")

    def test_conffiles_and_maintainer_scripts(self):
        with open(os.path.join(self.ctrl, "conffiles")) as f:
            conffiles = sorted(l.strip() for l in f if l.strip())
        etc_files = sorted(p for p, (mode, _, _) in self.entries.items()
                           if p.startswith("/etc/") and not mode.startswith("d"))
        self.assertEqual(conffiles, etc_files, "every file under /etc must be a conffile, and only those")
        for name in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.ctrl, name)
            self.assertTrue(os.path.isfile(path), "no DEBIAN/%s" % name)
            self.assertTrue(os.access(path, os.X_OK), "DEBIAN/%s is not executable" % name)
            p = run(["sh", "-n", path])
            self.assertEqual(p.returncode, 0, "sh -n DEBIAN/%s: %s" % (name, text(p)))
        with open(os.path.join(self.ctrl, "postinst")) as f:
            postinst = f.read()
        self.assertIn("adduser --system", postinst)
        self.assertIn("/var/log/portier", postinst)
        with open(os.path.join(self.ctrl, "postrm")) as f:
            self.assertIn("rm -rf /var/log/portier", f.read())
        # md5sums covers every shipped file.
        with open(os.path.join(self.ctrl, "md5sums")) as f:
            summed = sorted("/" + l.split(None, 1)[1].strip() for l in f if l.strip())
        files = sorted(p for p, (mode, _, _) in self.entries.items() if not mode.startswith("d"))
        self.assertEqual(summed, files)

    def test_unit_and_logrotate(self):
        with open(os.path.join(self.tmp, "lib", "systemd", "system", "portier.service")) as f:
            unit = f.read()
        for line in ("ExecStart=/usr/sbin/portier --config /etc/portier/portier.json",
                     "ExecStartPre=/usr/sbin/portier --check /etc/portier/portier.json",
                     "ExecReload=/bin/kill -HUP $MAINPID", "User=portier", "Group=portier",
                     "ProtectSystem=strict", "NoNewPrivileges=yes",
                     "AmbientCapabilities=CAP_NET_BIND_SERVICE", "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                     "LimitNOFILE=1048576", "KillSignal=SIGTERM", "Restart=on-failure"):
            self.assertIn("\n" + line + "\n", unit)
        # Stop must outlast the default shutdown grace (10 s).
        m = re.search(r"^TimeoutStopSec=(\d+)s?$", unit, re.M)
        self.assertTrue(m and int(m.group(1)) > 10, "TimeoutStopSec must be above 10 s")
        if shutil.which("systemd-analyze"):
            # verify wants the commands to exist: a copy of the unit that runs the extracted binary.
            # It exits 0 on unknown keys and bad values too, so its output must be empty.
            vdir = os.path.join(self.tmp, "verify")
            os.makedirs(vdir, exist_ok=True)
            with open(os.path.join(vdir, "portier.service"), "w") as f:
                f.write(unit.replace("/usr/sbin/portier", os.path.join(self.tmp, "usr", "sbin", "portier")))
            p = run(["systemd-analyze", "verify", "--man=no", os.path.join(vdir, "portier.service")])
            self.assertEqual(p.returncode, 0, text(p))
            self.assertEqual(text(p).strip(), "", "systemd-analyze verify complains")
        with open(os.path.join(self.tmp, "etc", "logrotate.d", "portier")) as f:
            rotate = f.read()
        self.assertTrue(rotate.startswith("/var/log/portier/*.log {"))
        for word in ("daily", "rotate 14", "compress", "delaycompress", "missingok", "notifempty",
                     "create 0640 portier adm", "USR1"):
            self.assertIn(word, rotate)

    def test_man_pages_render(self):
        if shutil.which("groff") is None:
            self.skipTest("groff is not installed")
        for page in ("usr/share/man/man8/portier.8.gz", "usr/share/man/man5/portier.json.5.gz"):
            src = subprocess.run(["gzip", "-dc", os.path.join(self.tmp, page)], stdout=subprocess.PIPE,
                                 check=True).stdout
            p = subprocess.run(["groff", "-man", "-Tutf8", "-ww"], input=src, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=dict(os.environ, LC_ALL="C.UTF-8"), timeout=60)
            self.assertEqual(p.returncode, 0, page)
            self.assertEqual(p.stderr.decode("utf-8", "replace"), "", page)
            self.assertIn("portier", p.stdout.decode("utf-8", "replace"))

    def test_lintian_reports_no_error(self):
        if shutil.which("lintian") is None:
            self.fail("lintian is not installed (packaging/deb.sh installs it)")
        p = run(["lintian", "--allow-root", "--tag-display-limit", "0", self.deb], timeout=600)
        out = text(p)
        errors = [l for l in out.splitlines() if l.startswith("E: ")]
        self.assertEqual(errors, [], "lintian errors:\n" + out)
        if out.strip():
            print("lintian (no errors):\n" + out.strip())

    def test_packaged_binary_accepts_packaged_configs(self):
        binary = os.path.join(self.tmp, "usr", "sbin", "portier")
        p = run([binary, "--version"], timeout=30)
        self.assertEqual(p.returncode, 0, text(p))
        self.assertEqual(text(p).strip(), "portier " + self.version)

        etc = os.path.join(self.tmp, "etc", "portier")
        main = os.path.join(etc, "portier.json")
        with open(main) as f:
            packaged = json.load(f)
        with open(os.path.join(REPO, "rules", "portier.json")) as f:
            original = json.load(f)
        self.assertEqual(packaged["access_log"]["path"], "/var/log/portier/access.log")
        original["access_log"]["path"] = "/var/log/portier/access.log"
        self.assertEqual(packaged, original, "the packaged portier.json differs from rules/portier.json "
                                             "in more than the access log path")

        configs = [main] + sorted(glob.glob(os.path.join(etc, "examples", "*.json")))
        self.assertGreater(len(configs), 1)
        for cfg in configs:
            with self.subTest(config=os.path.relpath(cfg, self.tmp)):
                p = run([binary, "--check", cfg], timeout=60)
                self.assertEqual(p.returncode, 0, "portier --check %s:\n%s" % (cfg, text(p)))
                self.assertIn("is valid", text(p))


if __name__ == "__main__":
    unittest.main()
