#!/usr/bin/env python3
"""mailcli's SMTP and POP3 clients against scripted servers that behave the
way correio's daemons do not: an RFC 821 server that refuses EHLO (HELO
fallback, one command at a time since there is no PIPELINING), a server that
offers only AUTH LOGIN, multi-line replies with enhanced codes, a 421 greeting,
a 554 after DATA, a malformed reply, a server that never answers (bounded by
--timeout), a server that pipelines plaintext after its STARTTLS 220 (refused
as possible injection), and a POP3 server without CAPA or SASL (USER/PASS).
Each script records what the client sent, so the test checks the wire.
"""
import base64
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import check, run, workdir, MAILCLI  # noqa: E402
import subprocess  # noqa: E402

WORK = workdir("mailcli-scripted-")
ENV = dict(os.environ, HOME="/nonexistent", MAILCLI_SERVER="", MAILCLI_USER="", MAILCLI_TLS="",
           MAILCLI_CONFIG="", NETRC="", MAILCLI_PASSWORD="s3cret")


class Script:
    """A one-connection server running fn(conn) in a thread; conn records input."""

    def __init__(self, fn):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.fn = fn
        self.received = []	# lines the client sent
        self.error = None
        self.buf = b""
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        self.sock.settimeout(20)
        try:
            self.c, _ = self.sock.accept()
            self.c.settimeout(20)
            self.fn(self)
        except Exception as e:  # noqa: BLE001
            self.error = e
        finally:
            try:
                self.c.close()
            except Exception:  # noqa: BLE001
                pass
            self.sock.close()

    def send(self, text):
        self.c.sendall(text.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            d = self.c.recv(65536)
            if not d:
                raise EOFError("client closed")
            self.buf += d
        l, self.buf = self.buf.split(b"\r\n", 1)
        l = l.decode("utf-8", "replace")
        self.received.append(l)
        return l

    def pending(self, wait=0.3):
        """True when the client sent more than the line(s) already read."""
        if b"\r\n" in self.buf:
            return True
        self.c.settimeout(wait)
        try:
            d = self.c.recv(65536)
            self.buf += d
            return bool(d)
        except socket.timeout:
            return False
        finally:
            self.c.settimeout(20)

    def data(self):
        lines = []
        while True:
            l = self.line()
            if l == ".":
                return lines
            lines.append(l)

    def join(self):
        self.t.join(30)
        if self.error:
            raise self.error


def mailcli(*args, timeout=60):
    return subprocess.run([MAILCLI, *args], capture_output=True, text=True, timeout=timeout,
                          env=ENV)


def pop3_user_login(s, *capa):
    """The server side of a POP3 greeting, CAPA (USER and capa) and USER/PASS."""
    s.send("+OK ready\r\n")
    check(s.line() == "CAPA", s.received[-1])
    s.send("+OK\r\n" + "".join(c + "\r\n" for c in ("USER",) + capa) + ".\r\n")
    check(s.line().startswith("USER "), s.received[-1])
    s.send("+OK\r\n")
    check(s.line().startswith("PASS "), "PASS not sent")
    s.send("+OK\r\n")


def send_args(port, *extra):
    return ["send", "--server", f"127.0.0.1:{port}", "--from", "ana@lab.test", "--to",
            "bob@lab.test", "--to", "eve@lab.test", "--subject", "hi", "--text", "hello", *extra]


def test_helo_fallback_and_no_pipelining():
    def fn(s):
        s.send("220 old.example Sendmail 5.0 ready\r\n")
        check(s.line().startswith("EHLO "), "no EHLO first")
        s.send("500 Command unrecognized\r\n")
        check(s.line().startswith("HELO "), "no HELO fallback")
        s.send("250 old.example\r\n")
        check(s.line() == "MAIL FROM:<ana@lab.test>", f"MAIL: {s.received[-1]}")
        # Without PIPELINING the client must wait for each reply.
        check(not s.pending(), "RCPT sent before the reply to MAIL (no PIPELINING offered)")
        s.send("250 ok\r\n")
        check(s.line() == "RCPT TO:<bob@lab.test>", s.received[-1])
        check(not s.pending(), "second RCPT before the first reply")
        s.send("250 ok\r\n")
        check(s.line() == "RCPT TO:<eve@lab.test>", s.received[-1])
        s.send("550 no such user here\r\n")
        check(s.line() == "DATA", s.received[-1])
        s.send("354 go ahead\r\n")
        body = s.data()
        check(any("hello" in l for l in body), f"body not sent: {body}")
        s.send("250 queued\r\n")
        check(s.line() == "QUIT", s.received[-1])
        s.send("221 bye\r\n")
    s = Script(fn)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    check("eve@lab.test: REFUSED: 550 no such user here" in p.stdout, p.stdout)
    check("bob@lab.test: accepted: 250 ok" in p.stdout, p.stdout)
    check(not any("SIZE=" in l for l in s.received), "SIZE= sent to a server without SIZE")


def test_pipelining_multiline_and_auth_login():
    def fn(s):
        s.send("220-mx.example ESMTP\r\n220-more greeting text\r\n220 last line\r\n")
        s.line()
        s.send("250-mx.example\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250-AUTH LOGIN\r\n"
               "250 ENHANCEDSTATUSCODES\r\n")
        check(s.line() == "AUTH LOGIN", s.received[-1])
        s.send("334 VXNlcm5hbWU6\r\n")
        check(base64.b64decode(s.line()) == b"ana", "user not sent in base64")
        s.send("334 UGFzc3dvcmQ6\r\n")
        check(base64.b64decode(s.line()) == b"s3cret", "password not sent in base64")
        s.send("235 2.7.0 Authentication successful\r\n")
        mail = s.line()
        check(mail.startswith("MAIL FROM:<ana@lab.test> SIZE="), mail)
        # PIPELINING: both RCPTs arrive before any reply is sent.
        check(s.line() == "RCPT TO:<bob@lab.test>" and s.line() == "RCPT TO:<eve@lab.test>",
              "RCPTs not pipelined")
        s.send("250 2.1.0 ok\r\n250 2.1.5 ok\r\n250-2.1.5 eve is\r\n250 2.1.5 fine\r\n")
        check(s.line() == "DATA", s.received[-1])
        s.send("354 go\r\n")
        s.data()
        s.send("250 2.0.0 Ok: queued as X\r\n")
        s.line()
        s.send("221 2.0.0 bye\r\n")
    s = Script(fn)
    p = mailcli(*send_args(s.port, "--user", "ana", "--trace"))
    s.join()
    check(p.returncode == 0, f"{p.stdout}\n{p.stderr}")
    lines = p.stdout.splitlines()
    check("S: 220-more greeting text" in lines, "multi-line greeting not traced")
    check(lines.count("C: ***") == 2, f"LOGIN continuation lines not masked:\n{p.stdout}")
    check("s3cret" not in p.stdout and base64.b64encode(b"s3cret").decode() not in p.stdout,
          "password in the trace")
    check("sent to 2 of 2 recipients: 250 2.0.0 Ok: queued as X" in p.stdout, p.stdout)


def test_greeting_421():
    def fn(s):
        s.send("421 4.3.2 too busy, try later\r\n")
        time.sleep(0.2)
    s = Script(fn)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1 and "421 4.3.2 too busy" in p.stderr, p.stderr)


def test_data_refused():
    def fn(s):
        s.send("220 x ESMTP\r\n")
        s.line()
        s.send("250 x\r\n")
        s.line(); s.send("250 ok\r\n")
        s.line(); s.send("250 ok\r\n")
        s.line(); s.send("250 ok\r\n")
        s.line(); s.send("354 go\r\n")
        s.data()
        s.send("554 5.7.1 message looks like spam\r\n")
        s.line(); s.send("221 bye\r\n")
    s = Script(fn)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1 and "554 5.7.1 message looks like spam" in p.stderr, p.stderr)


def test_malformed_reply():
    def fn(s):
        s.send("220 x ESMTP\r\n")
        s.line()
        s.send("250-x\r\n251 changed code\r\n")
        time.sleep(0.5)
    s = Script(fn)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1 and "malformed reply" in p.stderr, p.stderr)


def test_silent_server_times_out():
    def fn(s):
        time.sleep(4)
    s = Script(fn)
    t0 = time.time()
    p = mailcli(*send_args(s.port, "--timeout", "1"))
    took = time.time() - t0
    s.join()
    check(p.returncode == 1 and "timed out" in p.stderr, p.stderr)
    check(took < 3.5, f"took {took:.1f}s with --timeout 1")


def test_starttls_injection_refused():
    def fn(s):
        s.send("220 x ESMTP\r\n")
        s.line()
        s.send("250-x\r\n250 STARTTLS\r\n")
        check(s.line() == "STARTTLS", s.received[-1])
        # A man in the middle appends a reply that would be read after TLS.
        s.send("220 go ahead\r\n250 injected\r\n")
        time.sleep(0.5)
    s = Script(fn)
    p = mailcli(*send_args(s.port, "--insecure"))
    s.join()
    check(p.returncode == 1 and "injection" in p.stderr, p.stderr)


def test_pop3_without_capa_uses_user_pass():
    def fn(s):
        s.send("+OK old pop server\r\n")
        check(s.line() == "CAPA", s.received[-1])
        s.send("-ERR unknown command\r\n")
        check(s.line() == "USER bob", s.received[-1])
        s.send("+OK\r\n")
        check(s.line() == "PASS s3cret", "PASS not sent")
        s.send("+OK logged in\r\n")
        check(s.line() == "LIST", s.received[-1])
        s.send("+OK 2 messages\r\n1 120\r\n2 3000\r\n.\r\n")
        check(s.line() == "TOP 1 0", s.received[-1])
        s.send("+OK\r\nSubject: =?utf-8?q?Ol=C3=A1?=\r\nFrom: Ana <ana@lab.test>\r\n"
               "Date: Wed, 25 Nov 2026 10:00:00 +0000\r\n\r\n.\r\n")
        check(s.line() == "TOP 2 0", s.received[-1])
        s.send("-ERR no such message\r\n")
        check(s.line() == "QUIT", s.received[-1])
        s.send("+OK bye\r\n")
    s = Script(fn)
    p = mailcli("inbox", "--server", f"127.0.0.1:{s.port}", "--user", "bob", "--trace")
    s.join()
    check(p.returncode == 0, f"{p.stdout}\n{p.stderr}")
    check("C: PASS ***" in p.stdout and "s3cret" not in p.stdout, "PASS not masked")
    check("Olá" in p.stdout and "Ana" in p.stdout, p.stdout)
    check("headers unavailable" in p.stdout, "missing TOP not reported")


def test_pop3_inbox_pipelines_top_when_offered():
    def fn(s):
        pop3_user_login(s, "PIPELINING", "TOP")
        check(s.line() == "LIST", s.received[-1])
        s.send("+OK\r\n1 10\r\n2 20\r\n3 30\r\n.\r\n")
        # All three TOPs arrive before any answer (RFC 2449 6.6).
        check([s.line(), s.line(), s.line()] == ["TOP 1 0", "TOP 2 0", "TOP 3 0"],
              f"not pipelined: {s.received[-3:]}")
        s.send("+OK\r\nSubject: one\r\n\r\n.\r\n-ERR gone\r\n"
               "+OK\r\nSubject: three\r\n..\r\n.\r\n")
        check(s.line() == "QUIT", s.received[-1])
        s.send("+OK\r\n")
    s = Script(fn)
    p = mailcli("inbox", "--server", f"127.0.0.1:{s.port}", "--user", "bob")
    s.join()
    check(p.returncode == 0, f"{p.stdout}\n{p.stderr}")
    rows = [l for l in p.stdout.splitlines() if l[:4].strip().isdigit()]
    check(len(rows) == 3 and rows[0].endswith("one") and "headers unavailable: gone" in rows[1]
          and rows[2].endswith("three"), f"responses out of step:\n{p.stdout}")


def test_hostile_smtp_replies():
    def long_line(s):
        s.send("220 " + "x" * 10000 + "\r\n")
        time.sleep(0.5)
    s = Script(long_line)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1 and "longer than" in p.stderr, p.stderr)

    def many_lines(s):
        s.send("220 x\r\n")
        s.line()
        s.send("250-x\r\n" * 500 + "250 x\r\n")
        time.sleep(0.5)
    s = Script(many_lines)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1 and "malformed reply" in p.stderr, p.stderr)


ESC = "\x1b]0;pwned\x07\x1b[31m\x9b"	# window title, colour, C1 CSI


def no_controls(out, what):
    bad = [c for c in out if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]
    check(not bad, f"{what}: a server's control characters reach the terminal: {out!r}")


def test_server_text_cannot_drive_the_terminal():
    """Reply texts, statuses, capabilities and UIDs from a hostile server are
    printed with control characters as '?' (probe, send's per-recipient
    report, read's and fetch's errors); a UIDL outside RFC 1939's
    0x21..0x7E is not kept."""
    def smtp(s):
        s.send(f"220 evil{ESC} ready\r\n")
        s.line()
        s.send(f"250-evil{ESC}\r\n250 PIPELINING\r\n")
        s.line(); s.line(); s.line()	# MAIL, RCPT, RCPT
        s.send(f"250 ok\r\n550 5.1.1 no{ESC} such user\r\n250 ok{ESC}\r\n")
        check(s.line() == "DATA", s.received[-1])
        s.send("354 go\r\n")
        while s.line() != ".":
            pass
        s.send(f"250 queued{ESC}\r\n")
        s.line()
        s.send("221 bye\r\n")
    s = Script(smtp)
    p = mailcli(*send_args(s.port))
    s.join()
    check(p.returncode == 1 and "no?]0;pwned??[31m?" in p.stdout, p.stdout)
    no_controls(p.stdout + p.stderr, "send")

    def pop3(s):
        s.send(f"+OK evil{ESC}\r\n")
        s.line()
        s.send(f"+OK\r\nUSER\r\nIMPLEMENTATION x{ESC}\r\nEXPIRE 1{ESC}\r\n.\r\n")
        s.line()
        s.send("+OK\r\n")
    s = Script(pop3)
    p = mailcli("probe", f"pop3://127.0.0.1:{s.port}")
    s.join()
    check(p.returncode == 0 and "implementation: x?]0;pwned??[31m?" in p.stdout, p.stdout)
    no_controls(p.stdout + p.stderr, "probe")

    def fetch(s):
        pop3_user_login(s, "UIDL")
        check(s.line() == "LIST", s.received[-1])
        s.send("+OK\r\n1 10\r\n.\r\n")
        check(s.line() == "UIDL", s.received[-1])
        s.send(f"+OK\r\n1 a{ESC}\r\n.\r\n")
        check(s.line() == "RETR 1", s.received[-1])
        s.send(f"-ERR gone{ESC}\r\n")
    s = Script(fetch)
    mbox = os.path.join(WORK, "evil.mbox")
    p = mailcli("fetch", "--mbox", mbox, "--server", f"127.0.0.1:{s.port}", "--user", "bob")
    s.join()
    check(p.returncode == 1 and "gone?]0;pwned??[31m?" in p.stderr, p.stderr)
    check("no UIDL" in p.stderr, f"a UIDL with control characters was kept: {p.stderr}")
    no_controls(p.stdout + p.stderr, "fetch")


def test_endless_pop3_response_is_cut():
    def fn(s):
        s.send("+OK ready\r\n")
        s.line()
        s.send("+OK\r\n")
        chunk = ("X-CAPABILITY-" + "y" * 50 + "\r\n") * 20000
        try:
            for _ in range(200):	# up to ~260 MB, far past the client's bound
                s.send(chunk)
        except OSError:
            pass	# the client hung up: what we wanted
    s = Script(fn)
    t0 = time.time()
    p = mailcli("probe", f"pop3://127.0.0.1:{s.port}", timeout=120)
    s.join()
    check(p.returncode == 1 and "CAPA" in p.stderr, p.stderr)
    check(time.time() - t0 < 60, "took too long")


def test_pop3_multiline_bad_dot_and_early_close():
    def fn(s):
        s.send("+OK ready\r\n")
        s.line()
        s.send("+OK\r\nSASL PLAIN\r\n.\r\n")
        auth = s.line()
        check(auth.startswith("AUTH PLAIN "), auth)
        check(base64.b64decode(auth.split()[2]) == b"\0bob\0s3cret", "bad PLAIN response")
        s.send("+OK\r\n")
        s.line()	# RETR 1
        s.send("+OK\r\nSubject: x\r\n\r\n..dot-stuffed\r\npartial")	# then the server dies
    s = Script(fn)
    p = mailcli("read", "1", "--server", f"127.0.0.1:{s.port}", "--user", "bob")
    s.join()
    check(p.returncode == 1 and "closed the connection" in p.stderr, p.stderr)


if __name__ == "__main__":
    run([test_helo_fallback_and_no_pipelining, test_pipelining_multiline_and_auth_login,
         test_greeting_421, test_data_refused, test_malformed_reply, test_silent_server_times_out,
         test_starttls_injection_refused, test_pop3_without_capa_uses_user_pass,
         test_pop3_inbox_pipelines_top_when_offered, test_hostile_smtp_replies,
         test_server_text_cannot_drive_the_terminal, test_endless_pop3_response_is_cut,
         test_pop3_multiline_bad_dot_and_early_close])
