#!/usr/bin/env python3
"""mailcli check-client: correct clients pass (curl for SMTP and POP3, swaks
for SMTP, Python's smtplib with PIPELINING offered), and a raw socket client
that breaks one rule fails exactly the matching checks: bare LF line ends,
no dot-stuffing, speaking before the greeting, pipelining without PIPELINING,
message text before 354, no QUIT, RCPT before MAIL, addresses without angle
brackets, a broken MIME message, and for POP3: commands before login, PASS
before USER, bad message numbers. Also --sessions, the printed port, --list,
the exit status and the overall time limit.
"""
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import MAILCLI, check, workdir  # noqa: E402

WORK = workdir("check-client-")
ENV = {"HOME": WORK, "PATH": os.environ["PATH"], "MAILCLI_PASSWORD": "pw-1"}


class Grader:
    """mailcli check-client running in the background on a free port."""

    def __init__(self, proto, *extra, sessions=1, timeout=20):
        self.p = subprocess.Popen([MAILCLI, "check-client", "--listen", "127.0.0.1:0",
                                   "--protocol", proto, "--json", "--sessions", str(sessions),
                                   "--timeout", str(timeout), *extra],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=ENV)
        line = self.p.stderr.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        check(m is not None, f"no port printed: {line!r}")
        self.port = int(m.group(1))

    def result(self):
        out, err = self.p.communicate(timeout=60)
        doc = json.loads(out)
        checks = {c["id"]: c for c in doc["checks"]}
        fails = {i for i, c in checks.items() if c["verdict"] == "fail"}
        check(self.p.returncode == (1 if fails else 0), f"exit {self.p.returncode}: {fails}")
        return fails, checks


CRLF_MSG = (b"From: Ana <ana@lab.test>\r\nTo: bob@lab.test\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n"
            b"Subject: test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
            b".a line that starts with a dot\r\n.\r\nbody\r\n")
msgfile = os.path.join(WORK, "msg.eml")
with open(msgfile, "wb") as f:
    f.write(CRLF_MSG)

# --- correct clients ---
g = Grader("smtp")
subprocess.run(["curl", "-s", "--max-time", "15", f"smtp://127.0.0.1:{g.port}",
                "--mail-from", "ana@lab.test", "--mail-rcpt", "bob@lab.test", "-T", msgfile],
               check=True, timeout=30)
fails, c = g.result()
check(fails == set() and c["smtp-client.data.dot-stuffing"]["verdict"] == "pass" and
      c["smtp-client.message.form"]["verdict"] == "pass", f"curl smtp: {fails}")

g = Grader("smtp", sessions=2)
for _ in range(2):
    subprocess.run(["swaks", "--server", f"127.0.0.1:{g.port}", "--from", "ana@lab.test",
                    "--to", "bob@lab.test", "--data", msgfile, "--timeout", "15"],
                   check=True, timeout=30, capture_output=True)
fails, c = g.result()
check(fails == set() and c["smtp-client.quit.sent"]["verdict"] == "pass", f"swaks: {fails}")

# smtplib, PIPELINING offered: fine either way.
g = Grader("smtp", "--pipelining")
import smtplib  # noqa: E402
with smtplib.SMTP("127.0.0.1", g.port, timeout=15) as s:
    s.sendmail("ana@lab.test", ["bob@lab.test"], CRLF_MSG)
fails, c = g.result()
check(fails == set(), f"smtplib: {fails}")

g = Grader("pop3")
out = subprocess.run(["curl", "-s", "--max-time", "15", f"pop3://127.0.0.1:{g.port}/2",
                      "-u", "bob:anything"], check=True, timeout=30, capture_output=True).stdout
fails, c = g.result()
check(fails == set() and c["pop3-client.retr.fetched"]["verdict"] == "pass" and
      b"\r\n.hidden\r\n" in out, f"curl pop3: {fails} {out!r}")

g = Grader("pop3", "--user", "bob")
import poplib  # noqa: E402
p = poplib.POP3("127.0.0.1", g.port, timeout=15)
p.user("bob")
p.pass_("pw-1")
p.list()
p.uidl()
p.retr(2)
p.top(3, 1)
p.dele(1)
p.quit()
fails, c = g.result()
check(fails == set(), f"poplib: {fails}")


# --- broken raw clients ---
def raw_session(port, script, wait_greeting=True):
    """Send each chunk of script; None means: read what the server sent."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    got = b""
    if wait_greeting:
        got += s.recv(4096)
    for chunk in script:
        if chunk is None:
            time.sleep(0.2)
            s.settimeout(1)
            try:
                got += s.recv(65536)
            except socket.timeout:
                pass	# the replies were read with the previous chunk
            s.settimeout(10)
        else:
            s.sendall(chunk)
    try:
        s.shutdown(socket.SHUT_WR)
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    s.close()
    return got


def steps(*lines):
    """Each command followed by reading its reply."""
    out = []
    for l in lines:
        out += [l, None]
    return out


GOOD_HEAD = [b"EHLO me\r\n", b"MAIL FROM:<a@lab.test>\r\n", b"RCPT TO:<b@lab.test>\r\n",
             b"DATA\r\n"]
GOOD_TEXT = b"From: a@lab.test\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\nhello\r\n.\r\n"


def smtp_broken(script, expected, wait_greeting=True, extra=()):
    g = Grader("smtp", *extra)
    raw_session(g.port, script, wait_greeting)
    fails, c = g.result()
    check(fails == expected, f"expected {expected}, got {fails}:\n" +
          "\n".join(c[i]["detail"] for i in fails))
    return c


smtp_broken(steps(*GOOD_HEAD) + [GOOD_TEXT.replace(b"\r\n", b"\n").replace(b".\n", b".\r\n"), None,
            b"QUIT\r\n", None], {"smtp-client.line.crlf", "smtp-client.data.end-of-data"})
c = smtp_broken(steps(*GOOD_HEAD) + [GOOD_TEXT.replace(b"hello", b".hidden"), None, b"QUIT\r\n", None],
                {"smtp-client.data.dot-stuffing"})
check("..hidden" in c["smtp-client.data.dot-stuffing"]["detail"], c)
smtp_broken([b"EHLO me\r\n", None] + steps(*GOOD_HEAD[1:]) + [GOOD_TEXT, None, b"QUIT\r\n", None],
            {"smtp-client.greeting.waited"}, wait_greeting=False)
smtp_broken(steps(b"EHLO me\r\n") + [b"MAIL FROM:<a@lab.test>\r\nRCPT TO:<b@lab.test>\r\n", None,
            None, b"DATA\r\n", None, GOOD_TEXT, None, b"QUIT\r\n", None],
            {"smtp-client.pipelining.unasked"})
# With PIPELINING offered the same batch is fine.
smtp_broken(steps(b"EHLO me\r\n") + [b"MAIL FROM:<a@lab.test>\r\nRCPT TO:<b@lab.test>\r\n", None,
            None, b"DATA\r\n", None, GOOD_TEXT, None, b"QUIT\r\n", None], set(),
            extra=("--pipelining",))
smtp_broken(steps(*GOOD_HEAD[:3]) + [b"DATA\r\n" + GOOD_TEXT, None, b"QUIT\r\n", None],
            {"smtp-client.data.after-354"})
smtp_broken(steps(*GOOD_HEAD) + [GOOD_TEXT, None], {"smtp-client.quit.sent"})
smtp_broken(steps(b"EHLO me\r\n", b"RCPT TO:<b@lab.test>\r\n", b"QUIT\r\n"),
            {"smtp-client.order.transaction"})
smtp_broken(steps(b"EHLO me\r\n", b"MAIL FROM: a@lab.test\r\n", b"MAIL FROM:<a@lab.test>\r\n",
                  b"RCPT TO:b@lab.test\r\n", b"RCPT TO:<b@lab.test>\r\n", b"QUIT\r\n"),
            {"smtp-client.mail.brackets", "smtp-client.rcpt.brackets"})
smtp_broken(steps(*GOOD_HEAD) + [b"Subject: no from, no date\r\n\r\nhi\r\n.\r\n", None,
            b"QUIT\r\n", None], {"smtp-client.message.form"})
c = smtp_broken(steps(*GOOD_HEAD) + [
    b"From: a@lab.test\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n"
    b"Content-Type: multipart/mixed; boundary=\"XX\"\r\n\r\n--XX\r\n\r\npart\r\n.\r\n", None,
    b"QUIT\r\n", None], {"smtp-client.message.form"})
check("--XX--" in c["smtp-client.message.form"]["detail"], c["smtp-client.message.form"]["detail"])
smtp_broken(steps(*GOOD_HEAD) + [b"From: a@lab.test\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\n"
            b"caf\xc3\xa9\r\n.\r\n", None, b"QUIT\r\n", None], {"smtp-client.message.8bitmime"})
smtp_broken(steps(*GOOD_HEAD) + [b"From: a@lab.test\r\nDate: Mon, 1 Jun 2026 10:00:00 +0000\r\n\r\n"
            + b"x" * 1200 + b"\r\n.\r\n", None, b"QUIT\r\n", None], {"smtp-client.data.line-length"})


def pop3_broken(script, expected, extra=()):
    g = Grader("pop3", *extra)
    raw_session(g.port, script)
    fails, c = g.result()
    check(fails == expected, f"expected {expected}, got {fails}:\n" +
          "\n".join(c[i]["detail"] for i in fails))
    return c


LOGIN = [b"USER bob\r\n", b"PASS x\r\n"]
pop3_broken(steps(b"STAT\r\n", *LOGIN, b"STAT\r\n", b"QUIT\r\n"), {"pop3-client.state.order"})
pop3_broken(steps(b"PASS x\r\n", *LOGIN, b"QUIT\r\n"), {"pop3-client.login.user-pass"})
pop3_broken(steps(*LOGIN, b"RETR 0\r\n", b"RETR 4\r\n", b"QUIT\r\n"), {"pop3-client.msgnum.valid"})
pop3_broken(steps(b"USER bob\n", b"PASS x\r\n", b"QUIT\r\n"), {"pop3-client.line.crlf"})
pop3_broken(steps(*LOGIN) + [b"STAT\r\nLIST\r\n", None, None, b"QUIT\r\n", None],
            {"pop3-client.pipelining.unasked"})
pop3_broken(steps(*LOGIN, b"STAT\r\n"), {"pop3-client.quit.sent"})
c = pop3_broken(steps(b"USER bob\r\n", b"PASS wrong\r\n", b"QUIT\r\n"),
                {"pop3-client.login.user-pass"}, extra=("--user", "bob"))
check("PASS ***" in c["pop3-client.login.user-pass"]["detail"] and
      "wrong" not in c["pop3-client.login.user-pass"]["detail"].split("PASS")[1][:10],
      c["pop3-client.login.user-pass"]["detail"])

# --- the run itself ---
p = subprocess.run([MAILCLI, "check-client", "--list"], capture_output=True, text=True, timeout=10)
check(p.returncode == 0 and "smtp-client.data.dot-stuffing" in p.stdout and
      "pop3-client.quit.sent" in p.stdout, p.stdout)
for bad in (["--listen", "127.0.0.1:0"], ["--listen", "nonsense", "--protocol", "smtp"],
            ["--listen", "127.0.0.1:0", "--protocol", "imap"],
            ["--listen", "127.0.0.1:0", "--protocol", "pop3", "--user", "bob"]):
    e = dict(ENV)
    e.pop("MAILCLI_PASSWORD")
    p = subprocess.run([MAILCLI, "check-client", *bad], capture_output=True, text=True,
                       timeout=10, env=e)
    check(p.returncode == 2, f"{bad}: {p.returncode} {p.stderr}")
# Nobody connects: the overall time limit ends the run, with status 1.
t0 = time.time()
p = subprocess.run([MAILCLI, "check-client", "--listen", "127.0.0.1:0", "--protocol", "smtp",
                    "--timeout", "1"], capture_output=True, text=True, timeout=30)
check(p.returncode == 1 and time.time() - t0 < 10 and "no client connected" in p.stderr, p.stderr)
# A client that connects and says nothing cannot hold the run past its limit.
g = Grader("smtp", timeout=2)
s = socket.create_connection(("127.0.0.1", g.port), timeout=10)
t0 = time.time()
fails, c = g.result()
check(time.time() - t0 < 10 and fails == {"smtp-client.quit.sent"}, f"{fails}")
s.close()
print("ok")
