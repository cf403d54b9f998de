#!/usr/bin/env python3
"""mailcli check against correio itself: smtpd and pop3d pass every check,
in plaintext (nothing is skipped but what is not offered: STARTTLS, STLS,
APOP) and with TLS (STARTTLS, AUTH and STLS checked too, --cafile verified).
Also: the report card and its score, --json's shape, --only and --list, the
exit status (0 / 1 / 2), the test messages deleted at the end (POP3 run,
and the SMTP run given --pop3), a server that
hangs costing one check's time limit and not the run, and pop3d answering
message numbers past 64 bits with -ERR (it used to wrap them).
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, check, workdir, PASSWORDS, MAILCLI  # noqa: E402

HOME = workdir("check-home-")
ENV = {"HOME": HOME, "MAILCLI_PASSWORD": PASSWORDS["bob"], "MAILCLI_CONFIG": "", "NETRC": "",
       "MAILCLI_SERVER": "", "MAILCLI_USER": "", "MAILCLI_TLS": "", "PATH": os.environ["PATH"]}
ADDRS = ["--from", "ana@lab.test", "--to", "bob@lab.test"]


def mailcli(*args, timeout=300):
    return subprocess.run([MAILCLI, *args], capture_output=True, text=True, env=ENV,
                          timeout=timeout)


def run_json(*args):
    p = mailcli("check", *args, "--json")
    doc = json.loads(p.stdout)
    check(set(doc) == {"target", "checks", "summary"}, f"keys {set(doc)}")
    for c in doc["checks"]:
        check(set(c) == {"id", "verdict", "title", "rfc", "detail"}, f"check keys {set(c)}")
        check(c["verdict"] in ("pass", "fail", "warn", "skip"), c)
    counts = {v: sum(1 for c in doc["checks"] if c["verdict"] == v)
              for v in ("pass", "fail", "warn", "skip")}
    check(doc["summary"] == counts, f"summary {doc['summary']} != {counts}")
    return p.returncode, {c["id"]: c for c in doc["checks"]}


def not_passed(checks):
    return {i: (c["verdict"], c["detail"]) for i, c in checks.items() if c["verdict"] != "pass"}


plain = Lab(config_extra="[limits]\nmax_message_size = 300000\n")
plain.start_smtpd()
plain.start_pop3d()
tls = Lab(tls=True, config_extra="[limits]\nmax_message_size = 300000\n")
tls.start_smtpd()
tls.start_pop3d()

# Plaintext: everything offered passes; the skips are exactly what is not offered.
smtp_url = f"smtp://127.0.0.1:{plain.smtp_port}"
pop3_url = f"pop3://127.0.0.1:{plain.pop3_port}"
rc, checks = run_json(smtp_url, *ADDRS, "--user", "bob")
check(len(checks) >= 40, f"only {len(checks)} SMTP checks")
np = not_passed(checks)
check(rc == 0 and set(np) == {"smtp.starttls.handshake", "smtp.starttls.injection",
                               "smtp.starttls.args"} and
      all(v[0] == "skip" for v in np.values()), f"plain SMTP: rc {rc} {np}")
rc, checks = run_json(pop3_url, "--user", "bob", "--smtp", smtp_url, *ADDRS)
check(len(checks) >= 25, f"only {len(checks)} POP3 checks")
np = not_passed(checks)
check(rc == 0 and set(np) == {"pop3.auth.apop", "pop3.stls.handshake", "pop3.stls.injection"} and
      all(v[0] == "skip" for v in np.values()), f"plain POP3: rc {rc} {np}")

# The POP3 run deleted its own test messages; the SMTP run's stay with bob.
import poplib  # noqa: E402
p = poplib.POP3("127.0.0.1", plain.pop3_port, timeout=10)
p.user("bob")
p.pass_(PASSWORDS["bob"])
subjects = []
for i in range(1, p.stat()[0] + 1):
    head = b"\n".join(p.top(i, 0)[1])
    subjects.append(head)
p.quit()
check(not any(b"X-Mailcli-Check:" in h and (b" dots" in h or b" lines" in h or b" dele" in h)
              for h in subjects), "the POP3 test messages were not deleted")
check(any(b"dot-stuffing" in h for h in subjects), "the SMTP check delivered nothing to bob")


def bob_count(lab):
    p = poplib.POP3("127.0.0.1", lab.pop3_port, timeout=10)
    p.user("bob")
    p.pass_(PASSWORDS["bob"])
    n = p.stat()[0]
    p.quit()
    return n


# With --pop3, the SMTP check deletes what it delivered.
before = bob_count(plain)
rc, checks = run_json(f"smtp://127.0.0.1:{plain.smtp_port}", *ADDRS, "--user", "bob",
                      "--pop3", f"pop3://127.0.0.1:{plain.pop3_port}", "--only", "smtp.data")
check(rc == 0 and checks["smtp.data.deliver"]["verdict"] == "pass", str(not_passed(checks)))
check(bob_count(plain) == before, f"{bob_count(plain)} messages, {before} before")

# TLS: STARTTLS, AUTH (after STARTTLS) and STLS are graded too; nothing is skipped
# but APOP (pop3d has no APOP).
smtp_url = f"smtp://127.0.0.1:{tls.smtp_port}"
pop3_url = f"pop3://127.0.0.1:{tls.pop3_port}"
rc, checks = run_json(smtp_url, *ADDRS, "--user", "bob", "--cafile", tls.cert)
check(rc == 0 and not_passed(checks) == {}, f"TLS SMTP: {not_passed(checks)}")
rc, checks = run_json(pop3_url, "--user", "bob", "--smtp", smtp_url, *ADDRS, "--cafile", tls.cert)
np = not_passed(checks)
check(rc == 0 and set(np) == {"pop3.auth.apop"}, f"TLS POP3: {np}")
# Without --cafile the self-signed certificate is refused, and that is a failure.
rc, checks = run_json(smtp_url, *ADDRS, "--only", "smtp.starttls.handshake")
check(rc == 1 and checks["smtp.starttls.handshake"]["verdict"] == "fail" and
      "handshake" in checks["smtp.starttls.handshake"]["detail"], str(checks))
rc, checks = run_json(smtp_url, *ADDRS, "--only", "smtp.starttls", "--insecure")
check(rc == 0 and len(checks) == 3, str(checks))

# The report card: groups, a score, no colour when stdout is not a terminal.
p = mailcli("check", f"smtp://127.0.0.1:{plain.smtp_port}", *ADDRS, "--only",
            "smtp.rcpt,smtp.greeting.code")
check(p.returncode == 0 and "\nsmtp.rcpt\n" in p.stdout and "PASS  smtp.rcpt.before-mail" in p.stdout
      and "\033[" not in p.stdout and "score: 6/6 passed" in p.stdout, p.stdout)

# --list, usage errors.
p = mailcli("check", "--list")
ids = [l.split()[0] for l in p.stdout.splitlines()]
check(p.returncode == 0 and "smtp.rcpt.before-mail" in ids and "pop3.retr.dot-stuffing" in ids
      and len(ids) == len(set(ids)), p.stdout)
for bad in (["check"], ["check", "http://x"], ["check", smtp_url, "--only", "smtp.nope"],
            ["check", smtp_url, "--frobnicate"], ["check", f"pop3://127.0.0.1:1", "--smtp",
                                                   "smtp://127.0.0.1:2"]):
    p = mailcli(*bad)
    check(p.returncode == 2, f"{bad}: {p.returncode} {p.stderr}")
# Nothing listening: exit 1 with a message.
from correio_test import free_port  # noqa: E402
p = mailcli("check", f"smtp://127.0.0.1:{free_port()}")
check(p.returncode == 1 and "cannot connect" in p.stderr, p.stderr)

# A server that greets and then never answers: each check fails after its own
# time limit and the run goes on (reconnecting each time).
lsock = socket.socket()
lsock.bind(("127.0.0.1", 0))
lsock.listen(16)
conns = []


def hang():
    while True:
        try:
            c, _ = lsock.accept()
        except OSError:
            return
        c.sendall(b"220 hang.test ESMTP\r\n")
        conns.append(c)


threading.Thread(target=hang, daemon=True).start()
t0 = time.time()
p = mailcli("check", f"smtp://127.0.0.1:{lsock.getsockname()[1]}", "--json", "--timeout", "1",
            "--only", "smtp.noop,smtp.rset,smtp.quit")
took = time.time() - t0
doc = json.loads(p.stdout)
check(p.returncode == 1 and doc["summary"]["fail"] == 5 and took < 15,
      f"rc {p.returncode} took {took:.1f}s {doc['summary']}")
check("time limit" in doc["checks"][0]["detail"], doc["checks"][0]["detail"])
lsock.close()

# pop3d: a message number past 64 bits is -ERR, not message 1.
s = socket.create_connection(("127.0.0.1", plain.pop3_port), timeout=10)
f = s.makefile("rb")
f.readline()
for cmd in (b"USER bob", b"PASS " + PASSWORDS["bob"].encode()):
    s.sendall(cmd + b"\r\n")
    check(f.readline().startswith(b"+OK"), cmd)
for n in (b"18446744073709551617", b"18446744073709551616", b"99999999999999999999999"):
    s.sendall(b"LIST " + n + b"\r\n")
    line = f.readline()
    check(line.startswith(b"-ERR"), f"LIST {n}: {line}")
s.sendall(b"QUIT\r\n")
s.close()
print("ok")
