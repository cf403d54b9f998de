#!/usr/bin/env python3
"""smtpd with real clients: swaks, curl smtp://, Python smtplib (STARTTLS and
AUTH against a certificate made here, implicit TLS), and a raw socket typing
the textbook session. After each, the store must hold exactly the bytes sent
plus our trace headers (Return-Path:, Received:)."""
import base64
import os
import re
import smtplib
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import correio_test as ct  # noqa: E402

LAB = None


def lab():
    global LAB
    if LAB is None:
        # doces.br is routed to a port where nothing listens: the relay keeps
        # the item queued (deferred) and the test can see it.
        LAB = ct.Lab(tls=True, config_extra="[relay]\nroute = doces.br 127.0.0.1:%d\n" % ct.free_port())
        LAB.admin("alias", "add", "anna@lab.test", "ana")
        LAB.start_smtpd(roles=("inbound", "submission", "smtps"))
    return LAB


def messages():
    """[(id, body bytes, sender)] from the store, read by the sqlite3 tool."""
    out = lab().sql("select id, hex(body), sender from messages order by id").decode()
    rows = []
    for line in out.splitlines():
        mid, hexbody, sender = line.split("|", 2)
        rows.append((int(mid), bytes.fromhex(hexbody), sender))
    return rows


def mailbox(account):
    out = lab().sql("select m.message from mailbox m join accounts a on a.id = m.account "
                    "where a.name = '%s' order by m.message" % account).decode()
    return [int(x) for x in out.split()]


def split_trace(body):
    """(trace header lines, the rest): our Return-Path:/Received: come first."""
    lines = body.split(b"\r\n")
    i = 0
    while i < len(lines) and (lines[i].startswith(b"Return-Path:") or
                              lines[i].startswith(b"Received:") or
                              (i > 0 and lines[i][:1] in (b"\t", b" "))):
        i += 1
    return b"\r\n".join(lines[:i]), b"\r\n".join(lines[i:])


def wait_for_message(before, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        rows = messages()
        if len(rows) > before:
            return rows[before:]
        time.sleep(0.05)
    raise AssertionError("no new message in the store")


def unique_message(tag):
    """A complete message (From, Date and Message-ID, RFC 5322 3.6): smtpd must
    store it byte for byte after its trace fields, adding nothing."""
    return ("From: ana@lab.test\r\nTo: bob@lab.test\r\nSubject: %s\r\n"
            "Date: Fri, 04 Dec 2026 10:00:00 -0300\r\n"
            "Message-ID: <%s@lab.test>\r\n\r\nHello from %s.\r\n.leading dot\r\n"
            "\r\nlast line\r\n" % (tag, tag, tag)).encode()


def test_textbook_raw_socket():
    lb = lab()
    before = len(messages())
    d = ct.Dialog(lb.host, lb.smtp_ports["inbound"])
    d.expect(220)
    d.expect(250, "HELO client.lab.test")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.expect(250, "RCPT TO:<bob@lab.test>")
    d.expect(354, "DATA")
    body = unique_message("textbook")
    stuffed = body.replace(b"\r\n.", b"\r\n..")
    d.send(stuffed + b".\r\n")
    reply = d.expect(250)
    d.expect(221, "QUIT")
    ct.check(d.closed(), "closed after QUIT")
    (mid, stored, sender), = wait_for_message(before)
    ct.check(("queued as %d" % mid) in reply[0], "250 names the id: %r" % reply)
    trace, rest = split_trace(stored)
    ct.check(rest == body, "store holds exactly the bytes sent: %r" % rest)
    ct.check(trace.startswith(b"Return-Path: <ana@lab.test>\r\nReceived: from client.lab.test ([127.0.0.1])"),
             "trace: %r" % trace)
    ct.check(b"by mx.lab.test (correio) with SMTP id " in trace, "HELO gives 'with SMTP'")
    ct.check(b"for <bob@lab.test>;" in trace, "for clause: %r" % trace)
    ct.check(sender == "ana@lab.test", "envelope sender kept")
    ct.check(mid in mailbox("bob"), "in bob's mailbox")
    log = lb.wait_log("smtpd", "msgid=%d status=delivered" % mid)
    ct.check(re.search(r"session=\w+ from=<ana@lab.test> to=<bob@lab.test> size=\d+ msgid=%d "
                       r"status=delivered" % mid, log), "one log line per message")


def test_swaks():
    lb = lab()
    before = len(messages())
    body = unique_message("swaks")
    with tempfile.NamedTemporaryFile(suffix=".eml") as f:
        f.write(body[:-2])  # swaks ends the data with its own CRLF
        f.flush()
        p = subprocess.run(["swaks", "--server", "%s:%d" % (lb.host, lb.smtp_ports["inbound"]),
                            "--from", "ana@lab.test", "--to", "bob@lab.test", "--helo", "swaks.lab.test",
                            "--data", f.name, "--timeout", "20"],
                           capture_output=True, timeout=60)
    ct.check(p.returncode == 0, "swaks failed: %s" % p.stdout.decode()[-2000:])
    (mid, stored, _), = wait_for_message(before)
    trace, rest = split_trace(stored)
    ct.check(rest == body, "swaks bytes stored exactly: %r" % rest)
    ct.check(b"with ESMTP id" in trace, "EHLO gives 'with ESMTP': %r" % trace)


def test_swaks_starttls_auth_submission():
    lb = lab()
    before = len(messages())
    p = subprocess.run(["swaks", "--server", "%s:%d" % (lb.host, lb.smtp_ports["submission"]),
                        "--from", "anna@lab.test", "--to", "bob@lab.test", "--tls",
                        "--auth", "LOGIN", "--auth-user", "ana", "--auth-password", "ana-secret-1",
                        "--header", "Subject: swaks tls", "--body", "over TLS", "--timeout", "20"],
                       capture_output=True, timeout=60)
    ct.check(p.returncode == 0, "swaks --tls --auth failed: %s" % p.stdout.decode()[-2000:])
    (mid, stored, sender), = wait_for_message(before)
    ct.check(sender == "anna@lab.test", "alias accepted as the user's own address")
    trace, _ = split_trace(stored)
    ct.check(b"with ESMTPSA" in trace, "RFC 3848 ESMTPSA: %r" % trace)
    ct.check(b"authenticated user=ana" in trace, "auth fact in Received: %r" % trace)
    ct.check(re.search(rb"version=TLSv1\.[23] cipher=\S+", trace), "TLS facts: %r" % trace)


def test_curl():
    lb = lab()
    before = len(messages())
    body = unique_message("curl")
    with tempfile.NamedTemporaryFile(suffix=".eml") as f:
        f.write(body)
        f.flush()
        p = subprocess.run(["curl", "-sS", "--max-time", "20",
                            "smtp://%s:%d/curl.lab.test" % (lb.host, lb.smtp_ports["inbound"]),
                            "--mail-from", "ana@lab.test", "--mail-rcpt", "bob@lab.test",
                            "--mail-rcpt", "ana@lab.test", "-T", f.name],
                           capture_output=True, timeout=60)
    ct.check(p.returncode == 0, "curl failed: %s" % p.stderr.decode())
    (mid, stored, _), = wait_for_message(before)
    trace, rest = split_trace(stored)
    ct.check(rest == body, "curl bytes stored exactly: %r" % rest)
    ct.check(b"for <" not in trace, "no 'for' with several recipients")
    ct.check(mid in mailbox("bob") and mid in mailbox("ana"), "both mailboxes, one message")


def tls_context():
    return lab().tls_context()


def test_smtplib_starttls_auth():
    lb = lab()
    before = len(messages())
    body = unique_message("smtplib")
    with smtplib.SMTP(lb.host, lb.smtp_ports["submission"], "smtplib.lab.test", timeout=20) as s:
        code, caps = s.ehlo()
        ct.check(b"STARTTLS" in caps, "STARTTLS offered before TLS")
        code, _ = s.docmd("MAIL FROM:<ana@lab.test>")
        ct.check(code == 530, "submission refuses MAIL before AUTH: %d" % code)
        s.starttls(context=tls_context())
        code, caps = s.ehlo()
        ct.check(b"STARTTLS" not in caps and b"AUTH PLAIN LOGIN" in caps, "caps after TLS: %r" % caps)
        s.login("ana", "ana-secret-1")
        try:
            s.sendmail("bob@lab.test", ["ana@lab.test"], body)
            raise AssertionError("sending as bob while logged in as ana was accepted")
        except smtplib.SMTPSenderRefused as e:
            ct.check(e.smtp_code == 553 and b"5.7.1" in e.smtp_error, "553 5.7.1: %r" % (e.smtp_error,))
        refused = s.sendmail("ana@lab.test", ["bob@lab.test"], body)
        ct.check(refused == {}, "all recipients accepted")
    (mid, stored, _), = wait_for_message(before)
    trace, rest = split_trace(stored)
    ct.check(rest == body, "smtplib bytes stored exactly")
    ct.check(b"with ESMTPSA" in trace and b"authenticated user=ana" in trace, trace)


def test_smtplib_implicit_tls():
    lb = lab()
    before = len(messages())
    body = unique_message("smtps")
    with smtplib.SMTP_SSL(lb.host, lb.smtp_ports["smtps"], "smtps.lab.test", timeout=20,
                          context=tls_context()) as s:
        code, caps = s.ehlo()
        ct.check(b"STARTTLS" not in caps, "no STARTTLS inside TLS")
        code, _ = s.docmd("MAIL FROM:<ana@lab.test>")
        ct.check(code == 530, "smtps needs AUTH: %d" % code)
        s.login("bob", "bob-secret-2")
        s.sendmail("bob@lab.test", ["ana@lab.test"], body)
    (mid, stored, _), = wait_for_message(before)
    trace, rest = split_trace(stored)
    ct.check(rest == body and b"with ESMTPSA" in trace, trace)


def test_relay_authenticated_is_queued():
    lb = lab()
    before = len(messages())
    with smtplib.SMTP(lb.host, lb.smtp_ports["submission"], timeout=20) as s:
        s.starttls(context=tls_context())
        s.login("ana", "ana-secret-1")
        s.sendmail("ana@lab.test", ["friend@doces.br", "bob@lab.test"], unique_message("relay"))
    (mid, stored, _), = wait_for_message(before)
    q = lb.sql("select rcpt, sender from queue where message = %d" % mid).decode().split()
    ct.check(q == ["friend@doces.br|ana@lab.test"], "queued for the relay: %r" % q)
    ct.check(mid in mailbox("bob"), "local copy delivered in the same transaction")
    # RFC 5321 4.4: the local copy gets its Return-Path (the relay leaves it
    # out of the copy it sends: header_return_path_len, test_relay).
    ct.check(stored.startswith(b"Return-Path: <ana@lab.test>\r\n"), stored[:80])


def test_starttls_discards_pipelined_plaintext():
    lb = lab()
    d = lb.smtp_dialog("inbound")
    d.expect(250, "EHLO c")
    # The command after STARTTLS travels in plaintext in the same packet: an
    # attacker's injection (CVE-2011-0411 family). It must never be answered.
    d.send(b"STARTTLS\r\nMAIL FROM:<injected@evil.example>\r\n")
    ct.check(d.expect(220)[0].startswith("220 2.0.0"), "ready for TLS")
    d.starttls(tls_context())
    line = d.expect(503, "MAIL FROM:<ana@lab.test>")[0]
    ct.check(line.startswith("503 5.5.1 Say hello first"),
             "state reset after TLS and the injected MAIL discarded: %r" % line)
    d.expect(250, "EHLO c")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.expect(221, "QUIT")
    d.close()


def test_ipv6_listener():
    lb6 = ct.Lab(host="::1")
    try:
        lb6.start_smtpd()
        d = lb6.smtp_dialog()
        d.smtp_send("Subject: v6\r\n\r\nover IPv6\r\n", ehlo="v6.lab.test")
        d.expect(221, "QUIT")
        body = bytes.fromhex(lb6.sql("select hex(body) from messages").decode().strip())
        ct.check(b"Received: from v6.lab.test ([IPv6:::1])" in body, body[:200])
    finally:
        lb6.stop()


def test_thunderbird_submission_sequence():
    """Thunderbird on 587: EHLO, STARTTLS, EHLO, AUTH PLAIN with an initial
    response, MAIL with SIZE= and BODY=8BITMIME, the RCPTs and DATA pipelined
    in one write (RFC 2920), the text, QUIT; every reply after EHLO carries an
    enhanced code (RFC 2034) and the trace says ESMTPSA (RFC 3848)."""
    lb = lab()
    before = len(messages())
    d = lb.smtp_dialog("submission")
    caps = d.expect(250, "EHLO [127.0.0.1]")
    ct.check("250-STARTTLS" in caps, caps)
    ct.check(d.expect(220, "STARTTLS")[0] == "220 2.0.0 Ready to start TLS", "STARTTLS")
    d.starttls(tls_context())
    caps = d.expect(250, "EHLO [127.0.0.1]")
    ct.check(not any("STARTTLS" in c for c in caps) and "250-AUTH PLAIN LOGIN" in caps,
             "after TLS: no STARTTLS, AUTH offered: %r" % caps)
    tok = base64.b64encode(b"\0ana\0ana-secret-1").decode()
    ct.check(d.expect(235, "AUTH PLAIN " + tok)[0].startswith("235 2.7.0 "), "AUTH")
    # What Thunderbird sends has From, Date and Message-ID (stored as they are).
    body = ("From: Ana <ana@lab.test>\r\nTo: bob@lab.test\r\nSubject: caf\u00e9\r\n"
            "Date: Fri, 4 Dec 2026 10:00:00 -0300\r\nMessage-ID: <tb-1@lab.test>\r\n"
            "\r\n8-bit text: \u00e7\u00e3\r\n").encode()
    d.expect(250, "MAIL FROM:<ana@lab.test> SIZE=%d BODY=8BITMIME" % len(body))
    d.send("RCPT TO:<bob@lab.test>\r\nRCPT TO:<nobody@lab.test>\r\nRCPT TO:<anna@lab.test>\r\nDATA\r\n")
    got = [d.smtp_reply()[1][0] for _ in range(4)]
    ct.check([g[:9] for g in got] == ["250 2.1.5", "550 5.1.1", "250 2.1.5", "354 Start"],
             "pipelined replies in order: %r" % got)
    d.send(body + b".\r\n")
    ct.check(d.expect(250)[0].startswith("250 2.0.0 Ok: queued as "), "queued")
    d.expect(221, "QUIT")
    (mid, stored, _), = wait_for_message(before)
    trace, rest = split_trace(stored)
    ct.check(rest == body and b"with ESMTPSA" in trace and b"authenticated user=ana" in trace,
             trace)


def test_zz_clean_shutdown():
    """SIGTERM after every client above: exit status 0, no sanitizer report."""
    lab().stop_checked(lab().smtpd, "smtpd")


if __name__ == "__main__":
    ct.run([test_textbook_raw_socket, test_swaks, test_swaks_starttls_auth_submission, test_curl,
            test_smtplib_starttls_auth, test_smtplib_implicit_tls, test_relay_authenticated_is_queued,
            test_starttls_discards_pipelined_plaintext, test_ipv6_listener,
            test_thunderbird_submission_sequence, test_zz_clean_shutdown])
