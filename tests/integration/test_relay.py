#!/usr/bin/env python3
"""Relay between two lab servers: the networking course's path.

Two smtpd + pop3d pairs on different loopback addresses: consumidor.br on
127.0.0.2 (ana) and doces.br on 127.0.0.3 (bernardo), each with a [relay]
route to the other. ana submits with `mailcli send` to her server, which
queues and relays to bernardo's server, where `mailcli inbox`/`read` and POP3
show the message with both servers' Received: headers and the body
byte-identical. Then: the destination down (queued, error in `queue list`,
kept across a restart, `queue flush` delivers exactly once), an unknown
recipient (RFC 3464 bounce to ana, queue empty), expiry, no bounce of a
bounce, a route that points back at its own server, and open-relay attempts.
With a scripted server (FakeMTA) standing in for a smarthost or remote MX:
AUTH and one connection for everything queued, per-recipient 4xx/5xx, broken
STARTTLS, hostile reply text; and STARTTLS (opportunistic / verified), a hung
destination, DNS for unrouted domains, 100 messages and a 10 MB one, the
retry schedule, a loop between two servers, and a non-ASCII address.
Every wait is bounded; the queue runner polls every 2 s.
"""
import base64
import calendar
import os
import poplib
import re
import smtplib
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import (Lab, Dialog, LoopbackServer, check, run, free_port, wait_port,  # noqa: E402
                          wait_for, SMTPD, POP3D)

H1, H2 = "127.0.0.2", "127.0.0.3"
D1, D2 = "consumidor.br", "doces.br"
PW_ANA, PW_BERNARDO = "ana-secret-1", "bernardo-secret-2"
FAST = "retry_schedule = 1\n"          # retries every second: tests stay fast


class FakeMTA(LoopbackServer):
    """A scripted SMTP server standing in for a smarthost or a remote MX.

    It records every session (EHLO, AUTH, MAIL, RCPTs, message text) and
    answers as told: rcpt(addr) -> (code, text), greeting, data reply.
    """

    def __init__(self, host, port, user=None, password=None, greeting="220 fake.example ESMTP",
                 rcpt=None, data="250 2.0.0 queued", broken_tls=False):
        self.broken_tls = broken_tls    # offer STARTTLS, then answer the handshake with junk
        self.host, self.port = host, port
        self.user, self.password = user, password
        self.greeting = greeting
        self.rcpt = rcpt or (lambda addr: "250 2.1.5 ok")
        self.data = data
        self.sessions = []
        super().__init__(host, port)

    def session(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        sess = {"ehlo": None, "auth": None, "tx": []}
        self.sessions.append(sess)
        tx = None

        def say(line):
            c.sendall(line.encode() + b"\r\n")

        say(self.greeting)
        if not self.greeting.startswith("220"):
            return
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.decode().rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                sess["ehlo"] = cmd[5:]
                ext = ["PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"]
                if self.user:
                    ext.append("AUTH PLAIN LOGIN")
                if self.broken_tls:
                    ext.append("STARTTLS")
                say("250-fake.example\r\n" + "\r\n".join("250-" + e for e in ext[:-1]) +
                    "\r\n250 " + ext[-1])
            elif verb == "AUTH":
                parts = cmd.split(" ")
                raw = base64.b64decode(parts[2]) if len(parts) > 2 else b""
                sess["auth"] = raw.split(b"\0")[1:] if raw else None
                ok = sess["auth"] == [self.user.encode(), self.password.encode()]
                say("235 2.7.0 ok" if ok else "535 5.7.8 bad credentials")
            elif verb == "MAIL":
                tx = {"mail": cmd, "rcpts": [], "data": None}
                sess["tx"].append(tx)
                say("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = cmd[cmd.index("<") + 1:cmd.rindex(">")]
                reply = self.rcpt(addr)
                if reply.startswith("250"):
                    tx["rcpts"].append(addr)
                say(reply)
            elif verb == "DATA":
                say("354 go ahead")
                data = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    data += l[1:] if l.startswith(b"..") else l
                tx["data"] = data
                say(self.data)
            elif verb == "STARTTLS" and self.broken_tls:
                sess["starttls"] = True
                say("220 2.0.0 go ahead")
                c.sendall(b"this is not a TLS server hello\r\n")
                return
            elif verb == "RSET":
                say("250 2.0.0 ok")
            elif verb == "QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.1 not here")


class Server:
    """One lab server: a store, smtpd (submission + inbound) and pop3d."""

    def __init__(self, host, domain, users, relay_extra="", smtp_port=None, tls=False):
        self.host = host
        self.domain = domain
        self.users = users
        self.inbound = smtp_port or free_port(host)
        self.submission = free_port(host)
        self.pop3 = free_port(host)
        self.lab = Lab(domain=domain, users=users, host=host, tls=tls,
                       config_extra="[relay]\n" + relay_extra if relay_extra else "")
        self.smtpd = None
        self.pop3d = None

    def start_smtpd(self):
        listens = [f"{self.host}:{self.inbound} inbound",
                   f"{self.host}:{self.submission} submission"]
        self.smtpd = self.lab._start(SMTPD, listens, ["-v"])
        wait_port(self.host, self.inbound)
        wait_port(self.host, self.submission)

    def stop_smtpd(self):
        self.smtpd.terminate()
        self.smtpd.wait(timeout=15)
        self.lab.procs.remove(self.smtpd)
        self.smtpd = None

    def start_pop3d(self):
        self.pop3d = self.lab._start(POP3D, [f"{self.host}:{self.pop3} pop3"], [])
        wait_port(self.host, self.pop3)

    def start(self):
        self.start_smtpd()
        self.start_pop3d()
        return self

    def stop(self):
        self.lab.stop()

    def queue(self):
        """`mailcli admin queue list`: [(id, sender, rcpt, attempts, next, error)]."""
        out = self.lab.admin("queue", "list").stdout
        return [tuple(l.split("\t")) for l in out.splitlines() if l.strip()]

    def flush(self):
        return self.lab.admin("queue", "flush").stdout

    def mailcli(self, user, *args, check=True):
        return self.lab.mailcli(*args, "--server", f"{self.host}:{self.pop3}", "--user", user,
                                "--tls", "off", "--timeout", "10", check=check,
                                env={"MAILCLI_PASSWORD": self.users[user], "HOME": self.lab.dir})

    def retr_all(self, user):
        """Every message in user's mailbox, as raw bytes (POP3, dots unstuffed)."""
        p = poplib.POP3(self.host, self.pop3, timeout=10)
        try:
            p.user(user)
            p.pass_(self.users[user])
            n = len(p.list()[1])
            return [b"\r\n".join(p.retr(i + 1)[1]) + b"\r\n" for i in range(n)]
        finally:
            p.quit()

    def log(self):
        return self.lab.log("smtpd")


def pair(extra1="", extra2="", start2=True, tls2=False):
    """ana's server (routes doces.br to bernardo's) and bernardo's server."""
    port2 = free_port(H2)
    port1 = free_port(H1)
    extra1 = extra1.replace("{port2}", str(port2))
    extra2 = extra2.replace("{port1}", str(port1))
    s2 = Server(H2, D2, {"bernardo": PW_BERNARDO},
                f"route = {D1} {H1}:{port1}\n" + FAST + extra2, smtp_port=port2, tls=tls2)
    s1 = Server(H1, D1, {"ana": PW_ANA},
                f"route = {D2} {H2}:{port2}\n" + FAST + extra1, smtp_port=port1)
    s1.start()
    if start2:
        s2.start()
    return s1, s2


def send(s1, to, subject="doces", body_file=None, extra=()):
    """`mailcli send` from ana, authenticated on her server's submission port."""
    args = ["send", "--server", f"{H1}:{s1.submission}", "--user", "ana", "--tls", "off",
            "--timeout", "10", "--from", f"Ana <ana@{D1}>", "--to", to, "--subject", subject,
            "--deterministic"]
    args += ["--body", body_file] if body_file else ["--text", "Oi Bernardo!"]
    return s1.lab.mailcli(*args, *extra, env={"MAILCLI_PASSWORD": PW_ANA, "HOME": s1.lab.dir})


def body_of(msg):
    return msg.split(b"\r\n\r\n", 1)[1]


def headers_of(msg):
    return msg.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")


def tricky_body(dirpath):
    """A body that exercises dot-stuffing and long lines on both hops."""
    text = ("Bernardo,\n"
            ".\n"
            "..two dots\n"
            ". a dot and a space\n"
            "trailing spaces   \n"
            + "x" * 900 + "\n"
            "\n"
            "Abraco, Ana\n")
    path = os.path.join(dirpath, "body.txt")
    with open(path, "w") as f:
        f.write(text)
    return path


def test_course_scenario():
    """ana -> her server -> queue -> bernardo's server -> POP3: the whole path."""
    s1, s2 = pair()
    try:
        body = tricky_body(s1.lab.dir)
        composed = s1.lab.mailcli("compose", "--from", f"Ana <ana@{D1}>", "--to", f"bernardo@{D2}",
                                  "--subject", "doces", "--deterministic", "--body", body,
                                  env={"HOME": s1.lab.dir}).stdout.encode()
        composed = composed.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        send(s1, f"bernardo@{D2}", body_file=body)
        msgs = wait_for("bernardo's message on doces.br", lambda: s2.retr_all("bernardo"))
        check(len(msgs) == 1, f"expected one message, got {len(msgs)}")
        got = msgs[0]
        check(body_of(got) == body_of(composed),
              f"body changed on the way:\n{body_of(got)!r}\nvs\n{body_of(composed)!r}")
        hdrs = headers_of(got)
        unfolded = re.sub(r"\r\n[ \t]+", " ", hdrs).split("\r\n")
        received = [h for h in unfolded if h.lower().startswith("received:")]
        check(len(received) >= 2, f"two Received: headers expected:\n{hdrs}")
        check(re.search(r"by mx\.doces\.br", received[0]), f"top Received: is doces.br's: {received}")
        check(any(re.search(r"by mx\.consumidor\.br", r) for r in received[1:]),
              f"consumidor.br's Received: below it: {received}")
        check(re.search(r"(?im)^Return-Path: <ana@consumidor\.br>", hdrs), hdrs)
        # The queue on ana's server is empty; the relay logged one sent line.
        wait_for("empty queue on consumidor.br", lambda: s1.queue() == [])
        log = s1.log()
        sent = re.search(r"relay: queue_id=\d+ .*to=<bernardo@doces\.br> relay=\S+ session=(\w+)"
                         r" status=sent", log)
        check(sent, "no 'status=sent' relay log line:\n" + log[-3000:])
        # How the message left, as a transcript: mailcli admin transcript ID.
        tr = s1.lab.admin("transcript", sent.group(1)).stdout
        for want in ("S: 220 mx.doces.br", "C: EHLO mx.consumidor.br",
                     "C: MAIL FROM:<ana@consumidor.br>", "C: RCPT TO:<bernardo@doces.br>",
                     "C: DATA", "C: .", "S: 250 2.0.0", "C: QUIT"):
            check(want in tr, f"outbound transcript lacks {want!r}:\n{tr}")
        # What a student types: mailcli inbox / read for bernardo.
        inbox = s2.mailcli("bernardo", "inbox").stdout
        check(re.search(r"(?m)^\s*1\s.*\bAna\b.*\bdoces\s*$", inbox), inbox)
        shown = s2.mailcli("bernardo", "read", "1").stdout
        check("..two dots" in shown and "Abraco, Ana" in shown, shown)
    finally:
        s1.stop()
        s2.stop()


def test_mixed_recipients_return_path():
    """One message for a local and a remote recipient is stored once: the
    local copy has its Return-Path:, the relayed one leaves without it and
    gets the destination's own (one Return-Path: at each end)."""
    s1, s2 = pair()
    try:
        send(s1, f"bernardo@{D2},ana@{D1}", subject="mixed")
        theirs = wait_for("bernardo's copy", lambda: s2.retr_all("bernardo"))[0]
        ours = wait_for("ana's copy", lambda: s1.retr_all("ana"))[0]
        for name, m in (("local", ours), ("relayed", theirs)):
            hdrs = m.split(b"\r\n\r\n", 1)[0].decode()
            rps = re.findall(r"(?im)^Return-Path: [^\r\n]*", hdrs)
            check(rps == [f"Return-Path: <ana@{D1}>"], f"{name} copy: {rps}\n{hdrs}")
        check(theirs.startswith(b"Return-Path:"), "the destination added its own first")
    finally:
        s1.stop()
        s2.stop()


def test_destination_down_then_flush():
    """Destination down: queued with the error, kept across a restart, flush delivers once."""
    s1, s2 = pair(extra1="retry_schedule = 3600\n", start2=False)
    try:
        send(s1, f"bernardo@{D2}", subject="espera")
        q = wait_for("a deferred queue item",
                     lambda: [i for i in s1.queue() if int(i[3]) >= 1])
        check(len(q) == 1, q)
        qid, sender, rcpt, attempts, nxt, err = q[0]
        check(sender == f"<ana@{D1}>" and rcpt == f"<bernardo@{D2}>", q)
        check(re.search(r"(?i)refused|cannot connect", err), f"queue list shows the error: {err!r}")
        # Survives a restart of ana's smtpd: the state is all in the store.
        s1.stop_smtpd()
        s1.start_smtpd()
        time.sleep(2.5)
        check(len(s1.queue()) == 1, "still queued after restart (next attempt in an hour)")
        s2.start()
        time.sleep(2.5)
        check(s2.retr_all("bernardo") == [], "nothing delivered before the flush")
        s1.flush()
        msgs = wait_for("delivery after flush", lambda: s2.retr_all("bernardo"))
        wait_for("empty queue", lambda: s1.queue() == [])
        time.sleep(2.5)         # another queue run: nothing is sent twice
        msgs = s2.retr_all("bernardo")
        check(len(msgs) == 1, f"delivered exactly once, got {len(msgs)}")
        check(b"Subject: espera" in msgs[0], msgs[0][:500])
    finally:
        s1.stop()
        s2.stop()


def test_unknown_recipient_bounces():
    """5xx at the destination: ana gets an RFC 3464 DSN naming the recipient and reply."""
    s1, s2 = pair()
    try:
        send(s1, f"ninguem@{D2},bernardo@{D2}", subject="para dois")
        dsn = wait_for("the bounce in ana's mailbox",
                       lambda: [m for m in s1.retr_all("ana") if b"delivery-status" in m])
        m = dsn[0].decode("utf-8", "replace")
        check(re.search(r"(?im)^Return-Path: <>", m), "a DSN has the null reverse-path:\n" + m)
        check(re.search(r"(?i)^Content-Type: multipart/report; report-type=delivery-status", m, re.M),
              m)
        check(f"Final-Recipient: rfc822; ninguem@{D2}" in m, m)
        check(re.search(r"Action: failed\r\nStatus: 5\.\d\.\d", m), m)
        check(re.search(r"Diagnostic-Code: smtp; 5\d\d ", m), "the remote reply is quoted:\n" + m)
        check(f"Remote-MTA: dns; {H2}" in m, m)
        check("text/rfc822-headers" in m and "Subject: para dois" in m,
              "the original headers are attached:\n" + m)
        check(f"bernardo@{D2}" not in m.split("message/delivery-status")[1].split("rfc822-headers")[0],
              "only the failed recipient is reported")
        # bernardo still got his copy, exactly once; the queue is empty.
        wait_for("bernardo's copy", lambda: len(s2.retr_all("bernardo")) == 1)
        wait_for("empty queue", lambda: s1.queue() == [])
        check(len([x for x in s1.retr_all("ana") if b"delivery-status" in x]) == 1, "one DSN")
        check(re.search(r"relay: queue_id=\d+ .*to=<ninguem@doces\.br> .*status=bounced", s1.log()),
              s1.log()[-3000:])
    finally:
        s1.stop()
        s2.stop()


def test_expired_item_bounces():
    """Older than max_queue_age: the next failure bounces it (4.4.7)."""
    s1, s2 = pair(start2=False)
    try:
        send(s1, f"bernardo@{D2}", subject="velha")
        wait_for("a deferred item", lambda: [i for i in s1.queue() if int(i[3]) >= 1])
        # Age it by hand: five days and a bit in the past.
        s1.lab.sql("UPDATE queue SET created = created - 500000;")
        s1.flush()
        dsn = wait_for("the expiry bounce",
                       lambda: [m for m in s1.retr_all("ana") if b"delivery-status" in m])
        m = dsn[0].decode("utf-8", "replace")
        check("Status: 4.4.7" in m and f"Final-Recipient: rfc822; bernardo@{D2}" in m, m)
        check(re.search(r"(?i)refused|cannot connect", m), "the last error is in the DSN:\n" + m)
        wait_for("empty queue", lambda: s1.queue() == [])
    finally:
        s1.stop()
        s2.stop()


def test_bounce_is_never_bounced():
    """A bounce (null sender) that fails for good is dropped, never bounced again."""
    # consumidor.br trusts loopback clients, so one may relay for a foreign
    # sender x@fora.br. fora.br is routed to doces.br, which refuses it (554:
    # not its domain, no relaying): the bounce to x@fora.br fails for good.
    s1, s2 = pair(extra1="trusted_networks = 127.0.0.0/8\nroute = fora.br " + H2 + ":{port2}\n")
    try:
        d = Dialog(H1, s1.inbound)
        d.expect(220)
        d.expect(250, "EHLO client.fora.br")
        d.expect(250, "MAIL FROM:<x@fora.br>")
        d.expect(250, f"RCPT TO:<ninguem@{D2}>")
        d.expect(354, "DATA")
        d.expect(250, "Subject: de fora\r\n\r\noi\r\n.")
        d.expect(221, "QUIT")
        wait_for("the bounce, queued for x@fora.br", lambda: re.search(
            r"relay: bounce msg=\d+ to=<x@fora\.br> delivery=queued", s1.log()))
        wait_for("the bounce's own failure, discarded", lambda: re.search(
            r"relay: queue_id=\d+ .*from=<> to=<x@fora\.br> .*status=bounced-discarded", s1.log()))
        wait_for("empty queue", lambda: s1.queue() == [])
        time.sleep(2.5)
        check(s1.queue() == [], "no bounce of the bounce was queued")
        check(len(re.findall(r"relay: bounce msg=", s1.log())) == 1, "exactly one bounce made")
    finally:
        s1.stop()
        s2.stop()


def test_route_to_self_is_reported():
    """A route pointing back at this server is reported and bounces (5.4.6), no loop."""
    port = free_port(H1)
    s1 = Server(H1, D1, {"ana": PW_ANA}, f"route = loop.br {H1}:{port}\n" + FAST, smtp_port=port)
    s1.start()
    try:
        wait_for("the start-up warning", lambda: re.search(
            r"route for loop\.br .*points back at this server", s1.log()))
        send(s1, "alguem@loop.br", subject="circulo")
        dsn = wait_for("the loop bounce",
                       lambda: [m for m in s1.retr_all("ana") if b"delivery-status" in m])
        m = dsn[0].decode("utf-8", "replace")
        check("Status: 5.4.6" in m and "loops back to myself" in m, m)
        check(s1.queue() == [], "queue empty")
        check("status=sent" not in s1.log(), "nothing was sent round the loop")
    finally:
        s1.stop()


OPEN_RELAY_TRIES = [
    # (what, RCPT argument)
    ("plain", f"<bernardo@{D2}>"),
    ("upper case", f"<bernardo@{D2.upper()}>"),
    ("percent hack", f"<bernardo%{D2}@{D1}>"),
    ("source route", f"<@{D1}:bernardo@{D2}>"),
    ("quoted at", f"<\"bernardo@{D2}\"@{D1}>"),
    ("domain literal", f"<bernardo@[{H2}]>"),
    ("bang path", f"<{D2}!bernardo@{D1}>"),
    ("trailing dot", f"<bernardo@{D2}.>"),
    ("double at", f"<bernardo@{D2}@{D1}>"),
]


def test_no_open_relay():
    """Unauthenticated, untrusted: every relay trick is refused and nothing is queued."""
    s1, s2 = pair()
    try:
        for port in (s1.inbound,):
            d = Dialog(H1, port)
            d.expect(220)
            d.expect(250, "EHLO attacker.example")
            for what, rcpt in OPEN_RELAY_TRIES:
                d.expect(250, "MAIL FROM:<spam@attacker.example>")
                d.send(f"RCPT TO:{rcpt}\r\n")
                code, lines = d.smtp_reply()
                check(500 <= code < 600, f"{what}: RCPT TO:{rcpt} got {lines}")
                if what == "plain":
                    check(code == 554 and "5.7.1" in lines[0], f"relay denied is 554 5.7.1: {lines}")
                d.expect(250, "RSET")
            # A local recipient is still fine, and the server is alive.
            d.expect(250, "MAIL FROM:<spam@attacker.example>")
            d.expect(250, f"RCPT TO:<ana@{D1}>")
            d.expect(250, "RSET")
            d.expect(221, "QUIT")
        # The submission port wants AUTH before MAIL.
        d = Dialog(H1, s1.submission)
        d.expect(220)
        d.expect(250, "EHLO attacker.example")
        d.send("MAIL FROM:<spam@attacker.example>\r\n")
        code, lines = d.smtp_reply()
        check(code == 530, f"submission without AUTH: {lines}")
        d.close()
        check(s1.queue() == [], "nothing was queued")
        time.sleep(2.5)
        check(s2.retr_all("bernardo") == [], "nothing reached doces.br")
    finally:
        s1.stop()
        s2.stop()


H4 = "127.0.0.4"    # where a FakeMTA listens
SMARTHOST_PW = "s3nha-do-relay"


def test_smarthost_auth_one_connection():
    """Smarthost with AUTH: everything queued leaves on ONE connection, one transaction per message."""
    fport = free_port(H4)
    s1 = Server(H1, D1, {"ana": PW_ANA},
                f"smarthost = {H4}:{fport}\nsmarthost_starttls = no\nsmarthost_user = correio\n"
                f"smarthost_password = {SMARTHOST_PW}\nretry_schedule = 3600\n")
    s1.start()
    fake = None
    try:
        send(s1, "a@example.org,b@example.net", subject="um")
        send(s1, "c@example.org,d@example.com", subject="dois")
        wait_for("4 deferred items (smarthost down)",
                 lambda: len([i for i in s1.queue() if int(i[3]) >= 1]) == 4)
        fake = FakeMTA(H4, fport, user="correio", password=SMARTHOST_PW)
        s1.flush()
        wait_for("empty queue", lambda: s1.queue() == [])
        check(len(fake.sessions) == 1, f"one connection, got {len(fake.sessions)}")
        sess = fake.sessions[0]
        check(sess["ehlo"] == "mx.consumidor.br", sess)
        check(sess["auth"] == [b"correio", SMARTHOST_PW.encode()], f"AUTH PLAIN: {sess['auth']}")
        check(len(sess["tx"]) == 2, f"one transaction per message: {sess['tx']}")
        got = sorted(r for t in sess["tx"] for r in t["rcpts"])
        check(got == ["a@example.org", "b@example.net", "c@example.org", "d@example.com"], got)
        for t in sess["tx"]:
            check(t["mail"].startswith("MAIL FROM:<ana@consumidor.br>"), t["mail"])
            check(t["data"] and re.search(rb"Subject: (um|dois)\r\n", t["data"]), t["data"])
        check(SMARTHOST_PW not in s1.log(), "the smarthost password is never logged")
        secret_b64 = base64.b64encode(b"\0correio\0" + SMARTHOST_PW.encode()).decode()
        check(secret_b64 not in s1.log(), "nor its base64")
        stored = s1.lab.sql_log("SELECT group_concat(lines, char(10)) FROM transcripts;").decode()
        check("C: AUTH PLAIN" in stored, "the outbound session is in the transcripts:\n" + stored)
        check(SMARTHOST_PW not in stored and secret_b64 not in stored, "masked in the transcript")
    finally:
        if fake:
            fake.stop()
        s1.stop()


def test_per_recipient_results():
    """One 4xx recipient is retried alone; a 5xx after DATA bounces the rest."""
    fport = free_port(H4)
    busy = {"n": 0}

    def rcpt(addr):
        if addr == "b@example.org":
            busy["n"] += 1
            if busy["n"] == 1:
                return "450 4.2.1 mailbox busy, try later"
        return "250 2.1.5 ok"

    s1 = Server(H1, D1, {"ana": PW_ANA}, f"route = example.org {H4}:{fport}\n" + FAST)
    fake = FakeMTA(H4, fport, rcpt=rcpt)
    s1.start()
    try:
        send(s1, "a@example.org,b@example.org", subject="parcial")
        wait_for("both delivered", lambda: s1.queue() == [] and busy["n"] >= 2)
        txs = [t for sess in fake.sessions for t in sess["tx"]]
        delivered = [r for t in txs if t["data"] is not None for r in t["rcpts"]]
        check(sorted(delivered) == ["a@example.org", "b@example.org"],
              f"each recipient delivered exactly once: {delivered}")
        check(re.search(r"to=<b@example\.org> .*status=deferred .*450 4\.2\.1", s1.log()),
              s1.log()[-2000:])
        check(not [m for m in s1.retr_all("ana") if b"delivery-status" in m], "no bounce")
        # Now the destination refuses the message text itself.
        fake.data = "554 5.6.0 content refused"
        send(s1, "c@example.org", subject="recusada")
        dsn = wait_for("the bounce", lambda: [m for m in s1.retr_all("ana") if b"delivery-status" in m])
        m = dsn[0].decode("utf-8", "replace")
        check("Final-Recipient: rfc822; c@example.org" in m and "Status: 5.6.0" in m, m)
        check("554 5.6.0 content refused" in m, m)
        wait_for("empty queue", lambda: s1.queue() == [])
    finally:
        fake.stop()
        s1.stop()


def test_starttls_opportunistic():
    """A destination offering STARTTLS gets TLS (not verified: opportunistic, RFC 3207)."""
    s1, s2 = pair(tls2=True)
    try:
        send(s1, f"bernardo@{D2}", subject="cifrada")
        msgs = wait_for("delivery over TLS", lambda: s2.retr_all("bernardo"))
        hdrs = re.sub(r"\r\n[ \t]+", " ", headers_of(msgs[0]))
        top = [h for h in hdrs.split("\r\n") if h.lower().startswith("received:")][0]
        check("ESMTPS" in top, f"doces.br saw TLS: {top}")
        check("C: STARTTLS" in s1.log(), "the trace shows STARTTLS")
    finally:
        s1.stop()
        s2.stop()


def test_smarthost_tls_is_verified():
    """smarthost_starttls: an unverifiable certificate defers the mail with the reason."""
    s2port = free_port(H2)
    s2 = Server(H2, D2, {"bernardo": PW_BERNARDO}, smtp_port=s2port, tls=True).start()
    s1 = Server(H1, D1, {"ana": PW_ANA},
                f"smarthost = {H2}:{s2port}\nsmarthost_starttls = yes\nretry_schedule = 3600\n")
    s1.start()
    try:
        send(s1, f"bernardo@{D2}", subject="verificada")
        q = wait_for("a deferred item", lambda: [i for i in s1.queue() if int(i[3]) >= 1])
        check(re.search(r"(?i)certificate|verif", q[0][5]), f"the reason is shown: {q[0][5]}")
        check(s2.retr_all("bernardo") == [], "nothing sent without a verified TLS session")
    finally:
        s1.stop()
        s2.stop()


def test_many_messages_exactly_once():
    """100 messages while the relay runs: each arrives once, in a bounded time."""
    s1, s2 = pair()
    try:
        n = 100
        t0 = time.time()
        c = smtplib.SMTP(H1, s1.submission, timeout=10)
        c.login("ana", PW_ANA)
        for i in range(n):
            c.sendmail(f"ana@{D1}", [f"bernardo@{D2}"],
                       f"From: ana@{D1}\r\nTo: bernardo@{D2}\r\nSubject: lote {i}\r\n\r\n"
                       f".linha {i}\r\n".encode())
        c.quit()
        t_sent = time.time()
        wait_for("the queue to drain", lambda: s1.queue() == [], timeout=60)
        t_done = time.time()
        time.sleep(2.5)
        msgs = s2.retr_all("bernardo")
        subjects = sorted(int(re.search(rb"Subject: lote (\d+)", m).group(1)) for m in msgs)
        check(subjects == list(range(n)), f"each message exactly once: {len(msgs)} messages")
        check(all(re.search(rb"\r\n\r\n\.linha \d+\r\n$", m) for m in msgs), "dot line intact")
        print(f"  relayed {n} messages: submitted in {t_sent - t0:.2f}s, queue empty "
              f"{t_done - t0:.2f}s after the first", flush=True)
    finally:
        s1.stop()
        s2.stop()


def test_hung_destination_blocks_nobody():
    """A server that never greets holds up only its own mail; shutdown still takes seconds."""
    hport = free_port(H4)
    tar = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tar.bind((H4, hport))
    tar.listen(16)          # connections complete in the backlog; nobody ever answers
    s1, s2 = pair(extra1=f"route = lento.br {H4}:{hport}\n")
    try:
        send(s1, "alguem@lento.br", subject="para o lento")
        time.sleep(2.5)     # the hung delivery has started
        t0 = time.time()
        send(s1, f"bernardo@{D2}", subject="para o rapido")
        wait_for("bernardo's message despite the hung server",
                 lambda: s2.retr_all("bernardo"), timeout=10)
        check(time.time() - t0 < 8, f"took {time.time() - t0:.1f}s")
        check([i[2] for i in s1.queue()] == ["<alguem@lento.br>"], s1.queue())
        t0 = time.time()
        s1.stop_smtpd()
        check(time.time() - t0 < 8, f"smtpd stopped in {time.time() - t0:.1f}s despite the hang")
        check([i[2] for i in s1.queue()] == ["<alguem@lento.br>"], "the cut delivery stays queued")
    finally:
        tar.close()
        s1.stop()
        s2.stop()


def test_no_route_uses_dns():
    """No route and no smarthost: DNS MX. A .invalid domain (RFC 2606) never resolves."""
    s1 = Server(H1, D1, {"ana": PW_ANA}, FAST).start()
    try:
        send(s1, "alguem@nada.invalid", subject="sem rota")

        def outcome():
            dsn = [m for m in s1.retr_all("ana") if b"delivery-status" in m]
            if dsn:
                return ("bounced", dsn[0].decode("utf-8", "replace"))
            q = [i for i in s1.queue() if int(i[3]) >= 1]
            return ("deferred", q[0][5]) if q else None
        how, text = wait_for("the DNS outcome", outcome)
        if how == "bounced":    # a resolver answered NXDOMAIN: permanent (5.1.2)
            check("Status: 5.1.2" in text and "does not exist" in text, text)
            check(s1.queue() == [], "queue empty")
        else:                   # no resolver reachable: temporary, kept
            check(re.search(r"MX lookup for nada\.invalid failed", text), text)
    finally:
        s1.stop()


def test_large_message_streams_intact():
    """A 10 MB message crosses both servers byte for byte (streamed from the store)."""
    s1, s2 = pair()
    try:
        blob = base64.encodebytes(os.urandom(7_500_000)).replace(b"\n", b"\r\n")
        msg = (f"From: ana@{D1}\r\nTo: bernardo@{D2}\r\nSubject: grande\r\n"
               "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode() + blob
        t0 = time.time()
        c = smtplib.SMTP(H1, s1.submission, timeout=30)
        c.login("ana", PW_ANA)
        c.sendmail(f"ana@{D1}", [f"bernardo@{D2}"], msg)
        c.quit()
        got = wait_for("the big message", lambda: s2.retr_all("bernardo"), timeout=60)
        elapsed = time.time() - t0
        check(len(got) == 1 and body_of(got[0]) == blob,
              f"body differs: {len(body_of(got[0]))} vs {len(blob)} octets")
        print(f"  {len(msg) / 1e6:.1f} MB relayed end to end in {elapsed:.2f}s", flush=True)
    finally:
        s1.stop()
        s2.stop()


def test_retry_schedule():
    """Deferrals follow retry_schedule by attempt number; the last interval repeats."""
    s1, s2 = pair(extra1="retry_schedule = 1, 2, 3600\n", start2=False)
    try:
        send(s1, f"bernardo@{D2}", subject="agenda")

        def third():
            q = s1.queue()
            return q if q and int(q[0][3]) >= 3 else None
        q = wait_for("three attempts (after 1 s and 2 s)", third, timeout=20)
        nxt = calendar.timegm(time.strptime(q[0][4], "%Y-%m-%dT%H:%M:%SZ"))
        check(3500 < nxt - time.time() < 3700, f"then an hour: next attempt {q[0][4]}")
        time.sleep(3)
        check(int(s1.queue()[0][3]) == 3, "no attempt before the hour is up")
        # A flush overrides the schedule, whatever the attempt count.
        s2.start()
        s1.flush()
        wait_for("delivery", lambda: s2.retr_all("bernardo"))
        wait_for("empty queue", lambda: s1.queue() == [])
    finally:
        s1.stop()
        s2.stop()


def test_broken_starttls_falls_back_to_plaintext():
    """Opportunistic TLS: a handshake that fails is retried once in plaintext on the same host."""
    fport = free_port(H4)
    fake = FakeMTA(H4, fport, broken_tls=True)
    s1 = Server(H1, D1, {"ana": PW_ANA}, f"route = example.org {H4}:{fport}\n" + FAST).start()
    try:
        send(s1, "a@example.org", subject="sem tls")
        wait_for("empty queue", lambda: s1.queue() == [])
        check(len(fake.sessions) == 2, f"two connections: {fake.sessions}")
        check(fake.sessions[0].get("starttls") and not fake.sessions[0]["tx"], fake.sessions[0])
        check(not fake.sessions[1].get("starttls") and fake.sessions[1]["tx"][0]["data"],
              f"the second, plaintext, carried the message: {fake.sessions[1]}")
        check(re.search(r"status=unusable reply=\".*STARTTLS", s1.log()), s1.log()[-2000:])
    finally:
        fake.stop()
        s1.stop()


def test_mail_loop_between_servers_ends():
    """Two servers routing a domain to each other: the Received: limit ends the loop, ana is told."""
    trust = "trusted_networks = 127.0.0.0/8\n"
    limits = "[limits]\nmax_received_headers = 10\n"
    s1, s2 = pair(extra1=trust + "route = volta.br " + H2 + ":{port2}\n" + limits,
                  extra2=trust + "route = volta.br " + H1 + ":{port1}\n" + limits)
    try:
        send(s1, "alguem@volta.br", subject="ida e volta")
        dsn = wait_for("the loop bounce", lambda: [m for m in s1.retr_all("ana")
                                                   if b"delivery-status" in m], timeout=40)
        m = dsn[0].decode("utf-8", "replace")
        check("Final-Recipient: rfc822; alguem@volta.br" in m and "Status: 5." in m, m)
        check(re.search(r"(?i)loop|Received", m.split("message/delivery-status")[1]), m)
        wait_for("both queues empty", lambda: s1.queue() == [] and s2.queue() == [])
        hops = len(re.findall(r"status=sent", s1.log() + s2.log()))
        check(5 <= hops <= 12, f"the message went round {hops} times")
        print(f"  loop ended after {hops} relay hops", flush=True)
    finally:
        s1.stop()
        s2.stop()


def test_hostile_reply_text_is_defanged():
    """A remote reply with terminal escapes and tabs: shown harmless in queue list and logs."""
    fport = free_port(H4)
    fake = FakeMTA(H4, fport, rcpt=lambda a: "451 4.3.0 \x1b[2J\x1b]0;pwned\x07\tcolumns\x7f")
    s1 = Server(H1, D1, {"ana": PW_ANA},
                f"route = example.org {H4}:{fport}\nretry_schedule = 3600\n").start()
    try:
        send(s1, "a@example.org", subject="hostil")
        q = wait_for("a deferred item", lambda: [i for i in s1.queue() if int(i[3]) >= 1])
        check(len(q[0]) == 6, f"still six tab-separated columns: {q}")
        err = q[0][5]
        check("451 4.3.0" in err and "columns" in err, err)
        check(not re.search(r"[\x00-\x1f\x7f]", err), f"no control bytes: {err!r}")
        check("\x1b" not in s1.log() and "\x07" not in s1.log(), "none in the log either")
    finally:
        fake.stop()
        s1.stop()


def test_utf8_address_bounces_cleanly():
    """A non-ASCII recipient (SMTPUTF8) is not relayed mangled: a 5.6.7 bounce says why."""
    s1, s2 = pair()
    try:
        c = smtplib.SMTP(H1, s1.submission, timeout=10)
        c.ehlo()
        c.login("ana", PW_ANA)
        rcpt = "jo\u00e3o@doces.br"
        c.sendmail(f"ana@{D1}", [rcpt], f"From: ana@{D1}\r\nTo: {rcpt}\r\nSubject: acento\r\n\r\noi\r\n"
                   .encode(), mail_options=["SMTPUTF8"])
        c.quit()
        dsn = wait_for("the bounce", lambda: [m for m in s1.retr_all("ana") if b"delivery-status" in m])
        m = dsn[0].decode("utf-8", "replace")
        check("Final-Recipient: utf-8; jo\u00e3o@doces.br" in m and "Status: 5.6.7" in m, m)
        check("SMTPUTF8" in m, m)
        wait_for("empty queue", lambda: s1.queue() == [])
        check(s2.retr_all("bernardo") == [], "nothing relayed")
    finally:
        s1.stop()
        s2.stop()


if __name__ == "__main__":
    run([test_course_scenario, test_mixed_recipients_return_path, test_destination_down_then_flush, test_unknown_recipient_bounces,
         test_expired_item_bounces, test_bounce_is_never_bounced, test_route_to_self_is_reported,
         test_no_open_relay, test_smarthost_auth_one_connection, test_per_recipient_results,
         test_starttls_opportunistic, test_smarthost_tls_is_verified,
         test_many_messages_exactly_once, test_hung_destination_blocks_nobody,
         test_no_route_uses_dns, test_large_message_streams_intact, test_retry_schedule,
         test_broken_starttls_falls_back_to_plaintext, test_mail_loop_between_servers_ends,
         test_hostile_reply_text_is_defanged, test_utf8_address_bounces_cleanly])
