#!/usr/bin/env python3
"""test_package - `cpack -G DEB` builds correio_<version>_<arch>.deb, and the
package installs with dpkg -i and delivers mail end to end.

- the control fields: Version from project(), Depends from dpkg-shlibdeps
  (the libraries the binaries link) plus adduser for the postinst;
- /etc/correio/correio.conf is a conffile; the file list is the service's;
- dpkg -i on this machine: the postinst creates the user correio and
  /var/lib/correio; the installed binaries report the version and carry a
  message from SMTP to POP3 on loopback ports with a temporary config;
- dpkg --purge removes the binaries again (the store directory is kept).

Installs on the test machine (we are root, as the lab's server is), so it runs
in the normal build only, and not when a correio package is already installed
there (the administrator's own is never replaced or purged by a test).
"""
import os
import poplib
import re
import smtplib
import subprocess
import time

from correio_test import BIN, SRC, check, free_port, run, wait_port, workdir

VERSION = re.search(r"project\(correio VERSION ([0-9.]+)",
                    open(os.path.join(SRC, "CMakeLists.txt")).read()).group(1)
ARCH = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True,
                      check=True).stdout.strip()
DEB = None


def sh(*args, timeout=120, check_rc=True):
    p = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check_rc:
        check(p.returncode == 0, f"{' '.join(args)}: rc={p.returncode}\n{p.stdout}{p.stderr}")
    return p


def deb():
    global DEB
    if DEB is None:
        out = workdir("cpack-")
        sh("cpack", "-G", "DEB", "--config", os.path.join(BIN, "CPackConfig.cmake"),
           "-B", out, timeout=300)
        DEB = os.path.join(out, f"correio_{VERSION}_{ARCH}.deb")
        check(os.path.isfile(DEB), f"cpack made {DEB}: {os.listdir(out)}")
    return DEB


def test_control():
    d = deb()
    field = lambda f: sh("dpkg-deb", "-f", d, f).stdout.strip()
    check(field("Package") == "correio", "Package")
    check(field("Version") == VERSION, f"Version {field('Version')} = project() {VERSION}")
    check(field("Architecture") == ARCH, "Architecture")
    depends = [x.strip().split(" ")[0] for x in field("Depends").split(",")]
    for lib in ("adduser", "libc6", "libsqlite3-0", "libssl3", "libevent-2.1-7",
                "libevent-openssl-2.1-7", "libb64-0d", "libinih1", "libcrypt1", "libmagic1"):
        check(lib in depends, f"Depends names {lib}: {depends}")
    conffiles = sh("dpkg-deb", "-I", d, "conffiles").stdout.split()
    check(conffiles == ["/etc/correio/correio.conf"], f"conffiles {conffiles}")
    for script in ("postinst", "prerm", "postrm"):
        check(sh("dpkg-deb", "-I", d, script).stdout.startswith("#!/bin/sh"), script)


def test_file_list():
    files = set()
    for line in sh("dpkg-deb", "-c", deb()).stdout.splitlines():
        name = line.split()[-1]
        if not name.endswith("/"):
            files.add(name.lstrip("."))
    want = {"/usr/sbin/smtpd", "/usr/sbin/pop3d", "/usr/sbin/webd", "/usr/bin/mailcli",
            "/usr/share/man/man1/mailcli.1", "/usr/share/man/man5/correio.conf.5",
            "/usr/share/man/man8/smtpd.8", "/usr/share/man/man8/pop3d.8",
            "/usr/share/man/man8/webd.8", "/usr/lib/systemd/system/correio-webd.service",
            "/etc/correio/correio.conf", "/usr/share/doc/correio/correio.conf.example",
            "/usr/lib/systemd/system/correio-smtpd.service",
            "/usr/lib/systemd/system/correio-pop3d.service"}
    check(want <= files, f"missing from the package: {sorted(want - files)}")
    stray = [f for f in files if not f.startswith(("/usr/", "/etc/correio/"))]
    check(not stray, f"files outside /usr and /etc/correio: {stray}")


def installed_version():
    p = sh("dpkg-query", "-W", "-f", "${Status} ${Version}", "correio", check_rc=False)
    return p.stdout if p.returncode == 0 and "ok installed" in p.stdout else None


def round_trip(work):
    """Deliver with smtplib through the installed smtpd; read with poplib
    through the installed pop3d. Returns the message text read back."""
    store = os.path.join(work, "correio.db")
    conf = os.path.join(work, "correio.conf")
    smtp_port, pop3_port = free_port(), free_port()
    with open(conf, "w") as f:
        f.write(f"[store]\npath = {store}\n[smtpd]\nhostname = mx.lab.test\n"
                f"listen = 127.0.0.1:{smtp_port} inbound\n"
                f"[pop3d]\nlisten = 127.0.0.1:{pop3_port} pop3\n")
    sh("/usr/bin/mailcli", "admin", "-c", conf, "domain", "add", "lab.test")
    p = subprocess.run(["/usr/bin/mailcli", "admin", "-c", conf, "user", "add", "bob",
                        "--password-stdin"], input="pkg-secret\n", capture_output=True,
                       text=True, timeout=30)
    check(p.returncode == 0, p.stderr)
    procs = [subprocess.Popen(["/usr/sbin/" + d, "-c", conf], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for d in ("smtpd", "pop3d")]
    try:
        wait_port("127.0.0.1", smtp_port)
        wait_port("127.0.0.1", pop3_port)
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=20) as s:
            s.sendmail("ana@lab.test", ["bob@lab.test"],
                       "Subject: from the package\r\n\r\ndelivered by /usr/sbin/smtpd\r\n")
        m = poplib.POP3("127.0.0.1", pop3_port, timeout=20)
        m.user("bob")
        m.pass_("pkg-secret")
        count, _ = m.stat()
        text = b"\n".join(m.retr(1)[1]).decode()
        m.quit()
        check(count == 1, f"one message in bob's mailbox, not {count}")
        return text
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def test_dpkg_install_and_deliver():
    before = installed_version()
    if before is not None:
        print(f"a correio package is installed here already ({before}): "
              "dpkg -i not run, to leave the administrator's install alone")
        return
    d = deb()
    try:
        p = sh("dpkg", "-i", d, timeout=300)
        check(installed_version() is not None, "dpkg -i installed correio:\n" + p.stdout)
        for prog in ("/usr/sbin/smtpd", "/usr/sbin/pop3d", "/usr/bin/mailcli"):
            v = sh(prog, "--version").stdout
            check(v == f"{os.path.basename(prog)} (correio) {VERSION}\n", f"{prog}: {v!r}")
        check(sh("getent", "passwd", "correio").stdout.startswith("correio:"),
              "the postinst made the user correio")
        st = os.stat("/var/lib/correio")
        check(sh("id", "-u", "correio").stdout.strip() == str(st.st_uid),
              "/var/lib/correio belongs to correio")
        text = round_trip(workdir("pkg-"))
        check("delivered by /usr/sbin/smtpd" in text, f"the message read back:\n{text}")
    finally:
        if installed_version() is not None:
            sh("dpkg", "--purge", "correio", timeout=300, check_rc=False)
    check(installed_version() is None, "dpkg --purge removed the package")
    check(not os.path.exists("/usr/sbin/smtpd"), "the binaries are gone")
    check(not os.path.exists("/etc/correio/correio.conf"), "purge removed the conffile")


if __name__ == "__main__":
    run([test_control, test_file_list, test_dpkg_install_and_deliver])
