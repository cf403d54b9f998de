#!/usr/bin/env python3
"""A 50 MB message through smtpd and pop3d with flat memory.

pop3d streams a 50 MB message with flat memory and honours back-pressure.

The message goes into the store with `mailcli admin deliver` (smtpd's
max_message_size does not apply to the store). RETR is sent and the client
then stops reading for a while: pop3d must not queue the message in memory.
Its anonymous memory (RssAnon in /proc/PID/status: heap and stacks, what
pop3d allocates; sampled through the download for its peak) must stay far
below the message size, and the bytes received must be exactly the bytes
delivered. pop3d reads bodies through a memory map of the store, so the
file's pages it touches count in RssFile: page cache, not pop3d's memory.

smtpd receives a 50 MB message over SMTP: its session keeps a fixed buffer
and spools the rest, and the commit copies the spool into the store in
pieces; its anonymous memory, sampled through the transfer and the commit,
must grow far less than the message (before store version 7 the commit built
the whole row in memory: +95 MB).
"""
import hashlib
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, check, run, PASSWORDS  # noqa: E402


SIZE = 50 * 1024 * 1024
# admin deliver honours max_message_size; raise it for this store
lab = Lab(users={"ana": PASSWORDS["ana"]},
          config_extra="[limits]\nmax_message_size = 104857600\n")


def make_message():
    head = (b"From: ana@lab.test\r\nTo: ana@lab.test\r\nSubject: big\r\n"
            b"Message-ID: <big@lab.test>\r\n\r\n")
    parts = [head]
    n = len(head)
    i = 0
    while n < SIZE:
        # every 7th line starts with a dot, to be stuffed on the way out
        line = (b"." if i % 7 == 0 else b"") + (b"%08d " % i) + b"abcdefghij" * 6 + b"\r\n"
        parts.append(line)
        n += len(line)
        i += 1
    return b"".join(parts)


MSG = make_message()
SMALL = MSG[:2 * 1024 * 1024] + b"\r\n"
lab.admin("deliver", "ana", stdin=MSG)
lab.admin("deliver", "ana", stdin=SMALL)
# Under AddressSanitizer freed memory sits in a quarantine (256 MB by
# default) and would count as resident: keep it small for this measurement.
os.environ["ASAN_OPTIONS"] = ":".join(filter(None, [os.environ.get("ASAN_OPTIONS"),
                                                    "quarantine_size_mb=2"]))
lab.start_pop3d()


def status(field, proc=None):
    with open(f"/proc/{(proc or lab.pop3d).pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"{field} not in /proc status")


def read_multiline(d):
    """The rest of a multi-line response, its end mark included, as it came."""
    raw = bytearray(d.buf)
    d.buf = b""
    while not raw.endswith(b"\r\n.\r\n"):
        chunk = d.s.recv(1 << 20)
        check(chunk != b"", "connection closed during RETR")
        raw += chunk
    return raw


def test_50mb_retr_flat_memory_and_backpressure():
    d = Dialog(lab.host, lab.pop3_port, timeout=30)
    d.pop3()
    d.pop3("USER ana")
    check(d.pop3("PASS " + PASSWORDS["ana"]).startswith("+OK"), "login")
    check(d.pop3("LIST 1") == f"+OK 1 {len(MSG)}", "LIST size")
    # The peak of the anonymous memory over the download, sampled.
    anon0 = status("RssAnon")
    peak = [anon0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], status("RssAnon"))
            time.sleep(0.002)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    d.s.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_RCVBUF, 65536)
    d.send("RETR 1\r\n")
    time.sleep(1.5)                       # a slow client: nothing read yet
    rss_stalled = status("RssAnon")
    t0 = time.time()
    raw = read_multiline(d)
    elapsed = time.time() - t0
    done.set()
    sampler.join()
    file_pages = status("RssFile")
    first, _, body = bytes(raw).partition(b"\r\n")
    check(first == f"+OK {len(MSG)} octets".encode(), first)
    body = body[:-3]                       # the final ".\r\n"
    got = b"".join(l[1:] if l.startswith(b".") else l for l in body.splitlines(keepends=True))
    check(len(got) == len(MSG), f"length {len(got)} != {len(MSG)}")
    check(hashlib.sha256(got).digest() == hashlib.sha256(MSG).digest(), "byte-exact")
    grow = peak[0] - anon0
    print(f"  RssAnon before {anon0 >> 10} KiB, peak {peak[0] >> 10} KiB (+{grow >> 10} KiB); "
          f"while stalled {rss_stalled >> 10} KiB; RssFile after {file_pages >> 10} KiB; "
          f"{len(MSG) / elapsed / 1e6:.0f} MB/s")
    check(grow < 12 * 1024 * 1024, f"peak memory grew by {grow >> 20} MiB for a 50 MiB message")
    check(rss_stalled < anon0 + 12 * 1024 * 1024, "memory bounded while the client does not read")
    check(elapsed < 60, f"50 MB in {elapsed:.1f}s")
    # still responsive, and TOP on the big message stops early
    check(d.pop3("NOOP") == "+OK", "NOOP after the download")
    check(d.pop3("TOP 1 2").startswith("+OK"), "TOP")
    lines = d.pop3_multi()
    check(len(lines) == 7 and lines[-1].startswith("00000001"), f"TOP 1 2: {lines}")
    d.pop3("QUIT")


def test_noop_pipelined_behind_retr():
    """Thunderbird sends NOOP during long downloads: it is answered after the body."""
    d = Dialog(lab.host, lab.pop3_port, timeout=30)
    d.pop3()
    d.pop3("USER ana")
    d.pop3("PASS " + PASSWORDS["ana"])
    d.send("RETR 2\r\nNOOP\r\n")
    raw = bytearray()
    while b"\r\n.\r\n+OK\r\n" not in raw[-64:]:
        chunk = d.s.recv(1 << 20)
        check(chunk != b"", "closed")
        raw += chunk
    check(raw.endswith(b"\r\n.\r\n+OK\r\n"), "NOOP answered right after the terminator")
    check(raw.startswith(f"+OK {len(SMALL)} octets".encode()), "RETR 2 size")
    d.pop3("QUIT")


def test_50mb_through_smtpd_flat_memory():
    import smtplib
    lab.start_smtpd()
    anon0 = status("RssAnon", lab.smtpd)
    peak = [anon0]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], status("RssAnon", lab.smtpd))
            time.sleep(0.002)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    t0 = time.time()
    with smtplib.SMTP(lab.host, lab.smtp_port, timeout=120) as s:
        s.sendmail("carla@example.org", ["ana@lab.test"], MSG)
    elapsed = time.time() - t0
    done.set()
    sampler.join()
    grow = peak[0] - anon0
    print(f"  smtpd RssAnon before {anon0 >> 10} KiB, peak {peak[0] >> 10} KiB "
          f"(+{grow >> 10} KiB); {len(MSG) / elapsed / 1e6:.0f} MB/s")
    check(grow < 16 * 1024 * 1024, f"smtpd grew by {grow >> 20} MiB for a 50 MiB message")
    d = Dialog(lab.host, lab.pop3_port, timeout=30)
    d.pop3()
    d.pop3("USER ana")
    check(d.pop3("PASS " + PASSWORDS["ana"]).startswith("+OK"), "login")
    check(d.pop3("STAT").startswith("+OK 3 "), "three messages")
    d.send("RETR 3\r\n")
    raw = read_multiline(d)
    body = bytes(raw).partition(b"\r\n")[2][:-3]
    got = b"".join(l[1:] if l.startswith(b".") else l for l in body.splitlines(keepends=True))
    # smtpd adds its trace and the Date: the message lacks; the body is as sent
    check(got.endswith(MSG.partition(b"\r\n\r\n")[2]), "the body arrived whole")
    d.pop3("QUIT")
    lab.stop_checked(lab.smtpd, "smtpd")


def test_zz_clean_shutdown():
    """SIGTERM stops pop3d with status 0 and no sanitizer report in its log."""
    lab.stop_checked(lab.pop3d, "pop3d")
    check("event=stopped" in lab.log("pop3d"), "clean stop logged")


if __name__ == "__main__":
    run([test_50mb_retr_flat_memory_and_backpressure, test_noop_pipelined_behind_retr,
         test_50mb_through_smtpd_flat_memory, test_zz_clean_shutdown])
