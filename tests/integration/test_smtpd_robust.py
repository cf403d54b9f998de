#!/usr/bin/env python3
"""smtpd under pressure: pipelining in one write, SIZE, 101 recipients, the
SMTP smuggling payloads (CVE-2023-51764 family), disconnects mid-DATA, long
lines, loops, 200 concurrent senders, hostile bytes. Every hostile test ends
by checking that the server still answers."""
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import correio_test as ct  # noqa: E402

LAB = None


def lab():
    global LAB
    if LAB is None:
        LAB = ct.Lab(config_extra="[limits]\nmax_connections_per_addr = 1000\n"
                     "max_message_size = 200000\nmax_received_headers = 10\n")
        LAB.start_smtpd()
    return LAB


def count_messages():
    return lab().count()


def bodies():
    out = lab().sql("select hex(body) from messages order by id").decode()
    return [bytes.fromhex(h) for h in out.split()]


def conn():
    return lab().smtp_dialog(timeout=20)


def alive():
    d = conn()
    d.expect(250, "EHLO alive.check")
    d.expect(250, "NOOP")
    d.expect(221, "QUIT")
    d.close()


def in_data(helo="c"):
    """A new session that has said EHLO, MAIL FROM:<ana>, RCPT TO:<bob> and DATA."""
    d = conn()
    d.smtp_start_data(ehlo=helo)
    return d


def refused_after_dot(text, code, esc, says=""):
    """Message text (with its final dot) that must be refused with code and
    enhanced code esc after the dot, storing nothing; returns the session."""
    before = count_messages()
    d = in_data()
    d.send(text)
    lines = d.expect(code)
    ct.check(lines[0].startswith("%d %s " % (code, esc)) and says in lines[0], lines[0])
    ct.check(count_messages() == before, "nothing stored: %r" % lines[0])
    return d


def replies(d, n):
    return [d.smtp_reply() for _ in range(n)]


def test_pipelining_one_write():
    before = count_messages()
    d = conn()
    d.send(b"EHLO pipe\r\nMAIL FROM:<ana@lab.test>\r\nRCPT TO:<bob@lab.test>\r\n"
           b"RCPT TO:<nosuch@lab.test>\r\nRCPT TO:<ana@lab.test>\r\nDATA\r\n")
    codes = [c for c, _ in replies(d, 6)]
    ct.check(codes == [250, 250, 250, 550, 250, 354], "replies in order: %r" % codes)
    # The text, the dot, a second whole transaction and QUIT in one write.
    d.send(b"Subject: one\r\n\r\nfirst\r\n.\r\nMAIL FROM:<bob@lab.test>\r\nRCPT TO:<ana@lab.test>\r\n"
           b"DATA\r\nSubject: two\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
    codes = [c for c, _ in replies(d, 6)]
    ct.check(codes == [250, 250, 250, 354, 250, 221], "second batch in order: %r" % codes)
    ct.check(d.closed(), "closed after QUIT")
    ct.check(count_messages() == before + 2, "both messages stored")
    alive()


def test_size_refusal_after_dot():
    before = count_messages()
    d = conn()
    d.expect(250, "EHLO big")
    d.expect(552, "MAIL FROM:<ana@lab.test> SIZE=200001")
    d.expect(250, "MAIL FROM:<ana@lab.test> SIZE=1000")
    d.expect(250, "RCPT TO:<bob@lab.test>")
    d.expect(354, "DATA")
    line = b"x" * 900 + b"\r\n"
    d.send(b"Subject: too big\r\n\r\n" + line * 300 + b".\r\n")
    lines = d.expect(552)
    ct.check("5.3.4" in lines[0], lines[0])
    d.expect(250, "NOOP")
    ct.check(count_messages() == before, "nothing stored")
    # Exactly at the limit is fine: 200000 octets of text.
    d.smtp_start_data()
    text = b"Subject: at the limit\r\n\r\n"
    fill = 200000 - len(text)
    chunk = b"y" * 98 + b"\r\n"
    text += chunk * (fill // 100) + b"z" * (fill % 100 - 2) + b"\r\n"
    ct.check(len(text) == 200000, "test body size")
    d.send(text + b".\r\n")
    d.expect(250)
    d.expect(221, "QUIT")
    ct.check(count_messages() == before + 1, "message at the limit stored")


def test_101_recipients():
    """100 recipients are accepted (RFC 5321 4.5.3.1.8); the rest get 452 and
    are sent later by the client: the 452s are not errors that close the
    session however many there are."""
    before = count_messages()
    d = conn()
    d.expect(250, "EHLO many")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.send(b"".join(b"RCPT TO:<bob@lab.test>\r\n" for _ in range(130)))
    codes = [c for c, _ in replies(d, 130)]
    ct.check(codes[:100] == [250] * 100, "100 recipients accepted")
    ct.check(codes[100:] == [452] * 30, "the 101st and later get 452: %r" % codes[100:])
    d.expect(354, "DATA")
    d.send(b"Subject: many\r\n\r\nhi\r\n.\r\n")
    d.expect(250)
    d.expect(221, "QUIT")
    ct.check(count_messages() == before + 1, "delivered")


SMUGGLE = [b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n"]


def test_smuggling_payloads():
    for payload in SMUGGLE:
        before = count_messages()
        d = in_data("mta.example")
        d.send(b"Subject: innocent\r\n\r\nhello" + payload +
               b"MAIL FROM:<admin@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nDATA\r\n"
               b"Subject: SMUGGLED\r\n\r\nevil\r\n.\r\n")
        code, lines = d.smtp_reply()
        ct.check(code == 554 and "5.5.2" in lines[0], "payload %r: one refusal, got %r" % (payload, lines))
        # Nothing else was answered: the next reply belongs to our NOOP.
        d.expect(250, "NOOP")
        d.expect(221, "QUIT")
        ct.check(count_messages() == before, "payload %r: nothing stored" % payload)
        ct.check(not any(b"SMUGGLED" in b for b in bodies()), "nothing smuggled")
    alive()


def test_nc_mode_dot_with_bare_lf():
    before = count_messages()
    d = conn()
    d.send(b"HELO typist\nMAIL FROM:<ana@lab.test>\nRCPT TO:<bob@lab.test>\nDATA\n")
    codes = [c for c, _ in replies(d, 4)]
    ct.check(codes == [250, 250, 250, 354], codes)
    d.send(b"Subject: nc\n\nbare LF lines\r\nand a CRLF one\n..dotted\n.\n")
    d.expect(250)
    d.send(b"QUIT\n")
    d.expect(221)
    ct.check(count_messages() == before + 1, "stored")
    body = bodies()[-1]
    # (smtpd adds the missing From:, Date: and Message-ID: after Subject: nc)
    ct.check(b"\r\nSubject: nc\r\n" in body and
             body.endswith(b"\r\n\r\nbare LF lines\r\nand a CRLF one\r\n.dotted\r\n"),
             "bare LFs stored as CRLF: %r" % body[-80:])


def test_bare_lf_in_strict_mode_refused():
    d = refused_after_dot(b"Subject: x\r\n\r\none\ntwo\r\n.\r\n", 554, "5.5.2", "bare LF")
    d.expect(221, "QUIT")


def test_disconnect_mid_data():
    before = count_messages()
    for cut in (b"", b"Subject: cut\r\n\r\npartial", b"Subject: cut\r\n\r\nline\r\n.", b"x\r\n.\r"):
        d = in_data()
        d.send(cut)
        d.s.shutdown(socket.SHUT_RDWR)
        d.close()
    time.sleep(0.5)
    alive()
    ct.check(count_messages() == before, "a dropped connection delivers nothing")


def test_long_data_line():
    d = refused_after_dot(b"Subject: long\r\n\r\n" + b"a" * 999 + b"\r\nok\r\n.\r\n", 500, "5.5.2")
    d.expect(250, "NOOP")
    d.expect(221, "QUIT")
    d = in_data()
    d.send(b"Subject: exactly 1000\r\n\r\n" + b"b" * 998 + b"\r\n.\r\n")
    d.expect(250)
    d.expect(221, "QUIT")


def test_received_loop():
    hops = b"".join(b"Received: from hop%d.example by x; Wed, 25 Nov 2026 10:00:00 +0000\r\n" % i
                    for i in range(11))
    d = refused_after_dot(hops + b"Subject: loop\r\n\r\nround and round\r\n.\r\n", 554, "5.4.6", "loop")
    d.expect(221, "QUIT")


def test_200_concurrent_senders():
    import smtplib
    lb = lab()
    before = count_messages()
    n = 200
    errors = []
    start = threading.Barrier(n)

    def send(i):
        try:
            start.wait(timeout=30)
            with smtplib.SMTP(lb.host, lb.smtp_port, "c%d.lab.test" % i, timeout=60) as s:
                s.sendmail("ana@lab.test", ["bob@lab.test"],
                           ("Subject: concurrent %d\r\n\r\nmessage number %d\r\n" % (i, i)).encode())
        except Exception as e:  # noqa: BLE001
            errors.append((i, repr(e)))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(n)]
    t0 = time.time()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    took = time.time() - t0
    ct.check(not errors, "all senders succeeded: %r" % errors[:5])
    ct.check(count_messages() == before + n, "exactly %d new messages" % n)
    import re
    seen = {}
    for b in bodies():
        m = re.search(rb"Subject: concurrent (\d+)\r\n", b)
        if m:
            seen[int(m.group(1))] = seen.get(int(m.group(1)), 0) + 1
    ct.check(sorted(seen) == list(range(n)) and set(seen.values()) == {1},
             "each delivered exactly once: %d distinct" % len(seen))
    mb = int(lab().sql("select count(*) from mailbox m join accounts a on a.id = m.account "
                       "where a.name = 'bob'").decode().strip())
    ct.check(mb >= n, "all in bob's mailbox")
    print("200 concurrent senders: %.2f s" % took)


def test_hostile_input():
    rnd = random.Random(5321)
    lb = lab()
    payloads = [
        bytes(rnd.getrandbits(8) for _ in range(20000)),
        b"\x00" * 5000 + b"\r\n",
        b"\xff" * 3000 + b"\r\n",
        b"\xff\xfa" + b"x" * 5000 + b"\r\n",
        b"A" * 100000,
        b"MAIL FROM:<" + b"a" * 3000 + b"@lab.test>\r\n",
        b"\r\n" * 5000,
        b"EHLO " + b"\x08" * 400 + b"\r\n",
        b"AUTH PLAIN " + b"=" * 400 + b"\r\n",
        b"RCPT TO:<\"" + b"\\" * 300 + b"\"@lab.test>\r\n",
    ]
    # All at once (the server must keep them apart), then half a second for
    # the replies, read without waiting per connection.
    socks = []
    for p in payloads:
        s = socket.create_connection((lb.host, lb.smtp_port), timeout=10)
        socks.append(s)
        try:
            s.sendall(p)
        except (BrokenPipeError, ConnectionResetError):
            pass
    time.sleep(0.5)
    for s in socks:
        s.setblocking(False)
        try:
            while s.recv(65536):
                pass
        except (BlockingIOError, ConnectionResetError):
            pass
        s.close()
    alive()


def test_flood_without_reading():
    """A client that pipelines forever and never reads: memory stays bounded."""
    lb = lab()
    s = socket.create_connection((lb.host, lb.smtp_port), timeout=10)
    s.setblocking(False)
    sent = 0
    t0 = time.time()
    chunk = b"NOOP\r\n" * 2000
    while time.time() - t0 < 1.5 and sent < 50_000_000:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    rss = 0
    with open("/proc/%d/status" % lb.smtpd.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    s.close()
    ct.check(rss < 200_000, "smtpd RSS stays bounded under a flood: %d kB" % rss)
    alive()


def test_store_errors_are_temporary():
    """A store that cannot be read (SQLITE_BUSY, I/O) gives 4xx replies, never a
    5xx that makes the client give up, never a 250 for a message not stored."""
    before = count_messages()
    d = conn()
    d.expect(250, "EHLO store.error")
    lab().sql_write("ALTER TABLE accounts RENAME TO accounts_gone")
    try:
        # RFC 4954 6: 454 4.7.0, at once (no failed-login delay)
        t0 = time.time()
        ct.check(d.expect(454, "AUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=")[0].startswith("454 4.7.0 "),
                 "AUTH during a store error")
        ct.check(time.time() - t0 < 0.9, "a store error is not a failed login: no delay")
        d.expect(250, "MAIL FROM:<ana@lab.test>")
        ct.check(d.expect(451, "RCPT TO:<bob@lab.test>")[0].startswith("451 4.3.0 "), "RCPT")
    finally:
        lab().sql_write("ALTER TABLE accounts_gone RENAME TO accounts")
    d.expect(250, "RCPT TO:<bob@lab.test>")
    d.expect(354, "DATA")
    lab().sql_write("ALTER TABLE messages RENAME TO messages_gone")
    try:
        d.send("Subject: not stored\r\n\r\nbody\r\n.\r\n")
        ct.check(d.expect(451)[0].startswith("451 4.3.0 "), "commit failure")
    finally:
        lab().sql_write("ALTER TABLE messages_gone RENAME TO messages")
    ct.check(count_messages() == before, "nothing stored")
    d.smtp_send("Subject: stored\r\n\r\nbody\r\n")
    d.expect(221, "QUIT")
    ct.check(count_messages() == before + 1, "the session goes on after the store is back")
    alive()


def test_domain_lookup_errors_are_temporary():
    """When the store cannot say whether a domain is ours, a local recipient
    gets 451 (not 554 relay denied, nor a trip to the relay queue) and a
    logged-in sender 451 (not 553 'not yours')."""
    before = count_messages()
    queued = lab().count("queue")
    d = conn()
    d.expect(250, "EHLO domains.gone")
    d.expect(235, "AUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=")
    lab().sql_write("ALTER TABLE domains RENAME TO domains_gone")
    try:
        ct.check(d.expect(451, "MAIL FROM:<ana@lab.test>")[0].startswith("451 4.3.0 "), "MAIL")
        d.expect(250, "MAIL FROM:<>")
        ct.check(d.expect(451, "RCPT TO:<bob@lab.test>")[0].startswith("451 4.3.0 "), "RCPT")
    finally:
        lab().sql_write("ALTER TABLE domains_gone RENAME TO domains")
    lines = d.expect(250, "RCPT TO:<bob@lab.test>")
    ct.check("relay" not in lines[0], lines[0])
    d.expect(354, "DATA")
    d.send("Subject: after the store came back\r\n\r\nbody\r\n.\r\n")
    d.expect(250)
    d.expect(221, "QUIT")
    ct.check(count_messages() == before + 1 and lab().count("queue") == queued,
             "delivered locally, nothing queued for the relay")


def test_server_alive_at_end():
    """Still answering after all of the above, then SIGTERM: exit status 0 and
    no sanitizer report from any of the sessions (the ASan run)."""
    alive()
    lab().stop_checked(lab().smtpd, "smtpd")


if __name__ == "__main__":
    ct.run([test_pipelining_one_write, test_size_refusal_after_dot, test_101_recipients,
            test_smuggling_payloads, test_nc_mode_dot_with_bare_lf, test_bare_lf_in_strict_mode_refused,
            test_disconnect_mid_data, test_long_data_line, test_received_loop,
            test_200_concurrent_senders, test_hostile_input, test_flood_without_reading,
            test_store_errors_are_temporary, test_domain_lookup_errors_are_temporary,
            test_server_alive_at_end])
