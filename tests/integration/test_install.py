#!/usr/bin/env python3
"""test_install - `cmake --install` lays out a Debian-style service, and the
one version string from project() is what every program reports.

- the tree under --prefix: sbin/smtpd, sbin/pop3d, bin/mailcli, the four man
  pages, the example config (never overwriting an existing one), the units;
- systemd-analyze verify passes on both units (when systemd-analyze exists);
- --version of the three programs, the SMTP greeting and POP3 IMPLEMENTATION
  all say the version in CMakeLists.txt's project();
- the installed daemons tell systemd they are ready (Type=notify) once they
  listen, and that they are stopping on SIGTERM;
- the installed example config is accepted by the config loader.
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile

from correio_test import BIN, SRC, Lab, Dialog, check, free_port, run, workdir


def project_version():
    text = open(os.path.join(SRC, "CMakeLists.txt")).read()
    m = re.search(r"project\(correio VERSION ([0-9.]+)", text)
    check(m, "project() has a VERSION")
    return m.group(1)


VERSION = project_version()
PREFIX = None


def install(prefix):
    p = subprocess.run(["cmake", "--install", BIN, "--prefix", prefix], capture_output=True,
                       text=True, timeout=120)
    check(p.returncode == 0, "cmake --install failed:\n" + p.stdout + p.stderr)
    return p.stdout


def prefix():
    global PREFIX
    if PREFIX is None:
        PREFIX = os.path.join(workdir("install-"), "usr-local")
        install(PREFIX)
    return PREFIX


def test_tree():
    pre = prefix()
    want = ["sbin/smtpd", "sbin/pop3d", "sbin/webd", "bin/mailcli",
            "share/man/man1/mailcli.1", "share/man/man5/correio.conf.5",
            "share/man/man8/smtpd.8", "share/man/man8/pop3d.8", "share/man/man8/webd.8",
            "lib/systemd/system/correio-webd.service",
            "share/doc/correio/correio.conf.example", "share/doc/correio/INSTALL.md",
            "etc/correio/correio.conf",
            "lib/systemd/system/correio-smtpd.service",
            "lib/systemd/system/correio-pop3d.service"]
    for rel in want:
        check(os.path.isfile(os.path.join(pre, rel)), f"installed {rel}")
    for rel in ("sbin/smtpd", "sbin/pop3d", "bin/mailcli"):
        check(os.access(os.path.join(pre, rel), os.X_OK), f"{rel} is executable")
    for d in ("smtpd", "pop3d"):
        unit = open(os.path.join(pre, f"lib/systemd/system/correio-{d}.service")).read()
        check(f"ExecStart={pre}/sbin/{d} -c {pre}/etc/correio/correio.conf" in unit,
              f"{d} unit starts the installed binary with the installed config:\n{unit}")
        for line in ("Type=notify", "User=correio", "NoNewPrivileges=yes",
                     "ProtectSystem=strict", "StateDirectory=correio", "PrivateTmp=yes",
                     "CapabilityBoundingSet=CAP_NET_BIND_SERVICE",
                     "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
            check(line in unit.splitlines(), f"{d} unit has {line}")


def test_config_not_overwritten():
    pre = prefix()
    conf = os.path.join(pre, "etc/correio/correio.conf")
    with open(conf, "a") as f:
        f.write("# edited by the administrator\n")
    out = install(pre)
    check(open(conf).read().endswith("# edited by the administrator\n"),
          "a second install keeps the edited config")
    check("Keeping" in out, "the install says it kept the config:\n" + out)


def test_systemd_analyze_verify():
    if shutil.which("systemd-analyze") is None:
        print("systemd-analyze not installed: verify not run")
        return
    pre = prefix()
    units = [os.path.join(pre, f"lib/systemd/system/correio-{d}.service")
             for d in ("smtpd", "pop3d", "webd")]
    # Documentation=man:... is checked with man(1): point it at the installed pages.
    env = dict(os.environ, MANPATH=os.path.join(pre, "share/man"))
    p = subprocess.run(["systemd-analyze", "verify", *units], capture_output=True, text=True,
                       timeout=60, env=env)
    check(p.returncode == 0 and p.stderr.strip() == "",
          f"systemd-analyze verify: rc={p.returncode}\n{p.stdout}{p.stderr}")


def test_versions_agree():
    pre = prefix()
    for prog in ("sbin/smtpd", "sbin/pop3d", "bin/mailcli"):
        p = subprocess.run([os.path.join(pre, prog), "--version"], capture_output=True,
                           text=True, timeout=10)
        name = os.path.basename(prog)
        check(p.returncode == 0 and p.stdout == f"{name} (correio) {VERSION}\n",
              f"{prog} --version: rc={p.returncode} {p.stdout!r}")
    lab = Lab()
    lab.start_smtpd()
    lab.start_pop3d()
    c = Dialog(lab.host, lab.smtp_port)
    _, greeting = c.smtp_reply()
    check(f" ESMTP correio {VERSION} ready;" in greeting[-1], f"greeting {greeting}")
    c.close()
    c = Dialog(lab.host, lab.pop3_port)
    c.pop3()
    c.pop3("CAPA")
    caps = c.pop3_multi()
    check(f"IMPLEMENTATION correio-{VERSION}" in caps, f"CAPA {caps}")
    c.close()
    lab.stop()


def test_docs_say_this_version():
    """Examples in the docs show the version (a greeting, a package name):
    they must be project()'s, so a release changes them all or fails here."""
    docs = [os.path.join(SRC, "README.md")] + [
        os.path.join(SRC, "docs", n) for n in sorted(os.listdir(os.path.join(SRC, "docs")))
        if n.endswith((".md", ".1", ".5", ".8", ".example"))]
    for path in docs:
        for m in re.finditer(r"correio[ _-]([0-9]+\.[0-9]+\.[0-9]+)\b", open(path).read()):
            check(m.group(1) == VERSION, f"{os.path.relpath(path, SRC)} says {m.group(0)!r}, "
                  f"project() says {VERSION}")


def notify_run(daemon, listen):
    """Start an installed daemon with $NOTIFY_SOCKET; return what it sent
    before and after SIGTERM, and whether it listened when it said READY."""
    d = tempfile.mkdtemp(dir=workdir())
    sock_path = os.path.join(d, "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(sock_path)
    srv.settimeout(15)
    store = os.path.join(d, "correio.db")
    subprocess.run([os.path.join(prefix(), "bin/mailcli"), "admin", "--store", store,
                    "domain", "add", "lab.test"], check=True, capture_output=True, timeout=30)
    port = free_port()
    env = dict(os.environ, NOTIFY_SOCKET=sock_path)
    p = subprocess.Popen([os.path.join(prefix(), "sbin", daemon), "--store", store,
                          "--listen", f"127.0.0.1:{port} {listen}"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        ready = srv.recv(4096).decode()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            listening = True
        except OSError:
            listening = False
        p.send_signal(signal.SIGTERM)
        stopping = srv.recv(4096).decode()
        p.wait(timeout=15)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        srv.close()
    return ready, listening, stopping


def test_sd_notify():
    for daemon, role in (("smtpd", "inbound"), ("pop3d", "pop3")):
        ready, listening, stopping = notify_run(daemon, role)
        check(ready == "READY=1", f"{daemon} sent {ready!r}")
        check(listening, f"{daemon} listens when it says READY")
        check(stopping == "STOPPING=1", f"{daemon} sent {stopping!r} on SIGTERM")


def test_example_config_loads():
    store = os.path.join(workdir(), "correio.db")
    conf = os.path.join(prefix(), "etc/correio/correio.conf")
    p = subprocess.run([os.path.join(prefix(), "bin/mailcli"), "admin", "-c", conf,
                        "--store", store, "domain", "add", "lab.test"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"the example config is accepted: {p.stdout}{p.stderr}")


if __name__ == "__main__":
    run([test_tree, test_config_not_overwritten, test_systemd_analyze_verify,
         test_versions_agree, test_docs_say_this_version, test_sd_notify, test_example_config_loads])
