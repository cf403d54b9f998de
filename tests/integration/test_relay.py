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
Every wait is bounded; the queue runner polls every 2 s.
"""
import os
import poplib
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import (Lab, Dialog, check, run, free_port, wait_port,  # noqa: E402
                          SMTPD, POP3D, MAILCLI)

H1, H2 = "127.0.0.2", "127.0.0.3"
D1, D2 = "consumidor.br", "doces.br"
PW_ANA, PW_BERNARDO = "ana-secret-1", "bernardo-secret-2"
FAST = "retry_schedule = 1\n"          # retries every second: tests stay fast


def wait_for(what, fn, timeout=20.0, step=0.2):
    """Poll fn() until it returns something true; fail after timeout."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


class Server:
    """One lab server: a store, smtpd (submission + inbound) and pop3d."""

    def __init__(self, host, domain, users, relay_extra="", smtp_port=None):
        self.host = host
        self.domain = domain
        self.users = users
        self.inbound = smtp_port or free_port(host)
        self.submission = free_port(host)
        self.pop3 = free_port(host)
        self.lab = Lab(domain=domain, users=users, host=host,
                       config_extra="[relay]\n" + relay_extra if relay_extra else "")
        self.smtpd = None
        self.pop3d = None

    def start_smtpd(self):
        listens = [f"{self.host}:{self.inbound} inbound",
                   f"{self.host}:{self.submission} submission"]
        self.smtpd = self.lab._start(SMTPD, listens, ["-v"])
        if os.environ.get("RELAY_HARNESS"):  # DEVHARNESS
            self.harness = self.lab._start(os.environ["RELAY_HARNESS"], listens, [])  # DEVHARNESS
        wait_port(self.host, self.inbound)
        wait_port(self.host, self.submission)

    def stop_smtpd(self):
        if os.environ.get("RELAY_HARNESS"):  # DEVHARNESS
            self.harness.terminate(); self.harness.wait(); self.lab.procs.remove(self.harness)  # DEVHARNESS
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


def pair(extra1="", extra2="", start2=True):
    """ana's server (routes doces.br to bernardo's) and bernardo's server."""
    port2 = free_port(H2)
    port1 = free_port(H1)
    extra1 = extra1.replace("{port2}", str(port2))
    s2 = Server(H2, D2, {"bernardo": PW_BERNARDO},
                f"route = {D1} {H1}:{port1}\n" + FAST + extra2, smtp_port=port2)
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
        check(re.search(r"relay: queue_id=\d+ .*to=<bernardo@doces\.br> relay=\S+ status=sent", log),
              "no 'status=sent' relay log line:\n" + log[-3000:])
        # What a student types: mailcli inbox / read for bernardo.
        inbox = s2.mailcli("bernardo", "inbox").stdout
        check(re.search(r"(?m)^\s+1\s+\d+\s.*Ana\s+doces\s*$", inbox), inbox)
        shown = s2.mailcli("bernardo", "read", "1").stdout
        check("..two dots" in shown and "Abraco, Ana" in shown, shown)
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
        time.sleep(4.5)         # two more queue runs: nothing is sent twice
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


if __name__ == "__main__":
    run([test_course_scenario, test_destination_down_then_flush, test_unknown_recipient_bounces,
         test_expired_item_bounces, test_bounce_is_never_bounced, test_route_to_self_is_reported,
         test_no_open_relay])
