#!/usr/bin/env python3
"""test_daily_use - what a lab's daily use found wrong, each fixed and checked:

- mailcli admin that only reads never creates a store: "no store at PATH";
  a command that adds creates it and says so;
- fetch --maildir creates the whole path (Mail/lab with no Mail/);
- probe keeps the URL's port when --tls is given after it;
- show walks an mbox message by message; extract asks which one.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import MAILCLI, PASSWORDS, Dialog, Lab, check, run, workdir  # noqa: E402

lab = Lab(tls=True)
lab.start_smtpd(roles=("inbound", "submission"))
lab.start_pop3d()
ENV = {"HOME": workdir(), "MAILCLI_SERVER": "", "MAILCLI_USER": "", "MAILCLI_TLS": "",
       "MAILCLI_CONFIG": "", "NETRC": ""}


def mailcli(*args, cwd=None, password=None, stdin=None):
    env = dict(os.environ, **ENV)
    if password:
        env["MAILCLI_PASSWORD"] = password
    return subprocess.run([os.path.abspath(MAILCLI), *args], cwd=cwd, env=env, input=stdin,
                          capture_output=True, text=True, timeout=60)


def test_admin_read_needs_a_store():
    d = workdir()
    for cmd in (["user", "list"], ["domain", "list"], ["alias", "list"], ["queue", "list"],
                ["transcript", "1a2b3c4d5e6f"], ["user", "del", "ana"]):
        p = mailcli("admin", *cmd, cwd=d)
        check(p.returncode == 1 and "no store at var/correio.db" in p.stderr,
              f"admin {cmd}: rc={p.returncode} {p.stderr!r}")
        check(not os.path.exists(os.path.join(d, "var", "correio.db")), f"{cmd} created nothing")
    p = mailcli("admin", "domain", "add", "lab.test", cwd=d)
    check(p.returncode == 0 and "created a new store at var/correio.db" in p.stderr,
          f"domain add: rc={p.returncode} {p.stderr!r}")
    p = mailcli("admin", "domain", "list", cwd=d)
    check(p.returncode == 0 and p.stdout.split() == ["lab.test"] and p.stderr == "",
          f"then list reads it: {p.stdout!r} {p.stderr!r}")


def test_refused_values_exit_2():
    """mailcli.1 EXIT STATUS: a refused value is a usage error (2), a refused
    operation (no such account) a failure (1)."""
    for cmd, word in ((["domain", "add", "bad..domain"], "not a valid domain"),
                      (["user", "add", "bad name", "--password-stdin"], "not a valid account"),
                      (["alias", "add", "a b", "ana"], "is not an alias")):
        p = lab.admin(*cmd, stdin="x\n", check=False)
        check(p.returncode == 2 and word in p.stderr, f"{cmd}: rc={p.returncode} {p.stderr}")
    p = lab.admin("alias", "add", "turma", "nobody", check=False)
    check(p.returncode == 1 and "no account nobody" in p.stderr, f"rc={p.returncode} {p.stderr}")


def test_class_list_alias_and_hostname():
    """An alias may lead to several accounts (a teacher's class list), and
    mail to user@HOSTNAME (the server's own name, as in its greeting) is
    local, as Postfix's mydestination has $myhostname."""
    p = lab.admin("alias", "add", "turma", "ana", "bob")
    check(p.returncode == 0, p.stderr)
    before = {u: lab.count("mailbox", f"account=(select id from accounts where name='{u}')")
              for u in ("ana", "bob")}
    d = Dialog(lab.host, lab.smtp_ports["inbound"])
    d.expect(220)
    d.expect(250, "HELO lab.test")
    d.expect(250, "MAIL FROM:<carla@example.org>")
    d.expect(250, "RCPT TO:<turma@lab.test>")
    d.expect(250, "RCPT TO:<ana@mx.lab.test>")          # the hostname: local
    d.expect(354, "DATA")
    d.send("Subject: aula\r\n\r\nprova amanha\r\n.\r\n")
    d.expect(250)
    d.expect(221, "QUIT")
    after = {u: lab.count("mailbox", f"account=(select id from accounts where name='{u}')")
             for u in ("ana", "bob")}
    check(after["ana"] == before["ana"] + 1 and after["bob"] == before["bob"] + 1,
          f"one copy each (ana twice named): {before} -> {after}")
    check(lab.count("queue") == 0, "nothing for the relay")
    d = Dialog(lab.host, lab.smtp_ports["inbound"])
    d.expect(220)
    d.expect(250, "HELO lab.test")
    d.expect(250, "MAIL FROM:<carla@example.org>")
    lines = d.expect(554, "RCPT TO:<ana@elsewhere.example>")
    check("relay denied" in lines[0], lines)
    d.expect(221, "QUIT")


def test_smtp_replies_say_what_happened():
    d = Dialog(lab.host, lab.smtp_ports["inbound"])
    d.expect(220)
    d.expect(250, "HELO lab.test")
    check(d.expect(250, "RSET")[0] == "250 2.0.0 Reset: no message in progress", "RSET idle")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.expect(250, "RCPT TO:<bob@lab.test>")
    check("sender and recipients cleared" in d.expect(250, "RSET")[0], "RSET after MAIL/RCPT")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    check("missing < before the address" in d.expect(501, "RCPT TO:bob@lab.test>")[0], "missing <")
    check("missing closing >" in d.expect(501, "RCPT TO:<bob@lab.test")[0], "missing >")
    d.expect(221, "QUIT")


def test_fetch_maildir_creates_parents():
    lab.admin("deliver", "bob", stdin="Subject: to the maildir\r\n\r\nhi\r\n")
    d = workdir()
    p = mailcli("fetch", "--maildir", "Mail/lab", "--server", f"{lab.host}:{lab.pop3_port}",
                "--user", "bob", "--cafile", lab.cert, cwd=d, password=PASSWORDS["bob"])
    check(p.returncode == 0, f"fetch: {p.stdout}{p.stderr}")
    new = os.listdir(os.path.join(d, "Mail", "lab", "new"))
    check(len(new) >= 1, f"delivered into Mail/lab/new: {new}")
    for sub in ("cur", "tmp"):
        check(os.path.isdir(os.path.join(d, "Mail", "lab", sub)), sub)


def test_probe_keeps_the_url_port():
    port = lab.smtp_ports["submission"]
    for args in (["--tls", "off"], ["--tls", "implicit"]):
        p = mailcli("probe", f"smtp://{lab.host}:{port}", *args, "--cafile", lab.cert)
        out = p.stdout + p.stderr
        # not the default port 2525 (as a whole number: the test's own may be 25252)
        check(f":{port}" in out and re.search(r":2525(?!\d)", out) is None,
              f"probe {args} went to {port}: {out}")
    p = mailcli("probe", f"smtp://{lab.host}:{port}", "--tls", "off")
    check(p.returncode == 0 and f"smtp://{lab.host}:{port}" in p.stdout, p.stdout + p.stderr)


def test_show_and_extract_an_mbox():
    d = workdir()
    mbox = os.path.join(d, "lab.mbox")
    with open(mbox, "w") as f:
        f.write("From ana@lab.test Fri Dec  4 10:00:00 2026\nFrom: ana@lab.test\n"
                "Subject: primeira\n\none\n\n"
                "From bob@lab.test Fri Dec  4 11:00:00 2026\nFrom: bob@lab.test\n"
                "Subject: segunda\nMIME-Version: 1.0\n"
                "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\n"
                "two\n>From quoted\n--b\nContent-Type: text/plain\n"
                "Content-Disposition: attachment; filename=notas.txt\n\nnotas\n--b--\n")
    p = mailcli("show", mbox)
    check(p.returncode == 0, p.stderr)
    check("message 1 of 2" in p.stdout and "message 2 of 2" in p.stdout, p.stdout)
    check("primeira" in p.stdout and "segunda" in p.stdout and "notas.txt" in p.stdout, p.stdout)
    out = os.path.join(d, "out")
    p = mailcli("extract", mbox, "--dir", out)
    check(p.returncode == 2 and "an mbox with 2 messages" in p.stderr, f"{p.returncode} {p.stderr}")
    p = mailcli("extract", mbox, "--dir", out, "--message", "2")
    check(p.returncode == 0 and open(os.path.join(out, "notas.txt")).read() == "notas",
          f"{p.returncode} {p.stdout} {p.stderr}")
    p = mailcli("extract", mbox, "--dir", out, "--message", "3")
    check(p.returncode == 1 and "no message 3" in p.stderr, p.stderr)


if __name__ == "__main__":
    run([test_admin_read_needs_a_store, test_refused_values_exit_2, test_class_list_alias_and_hostname,
         test_smtp_replies_say_what_happened, test_fetch_maildir_creates_parents,
         test_probe_keeps_the_url_port, test_show_and_extract_an_mbox])
