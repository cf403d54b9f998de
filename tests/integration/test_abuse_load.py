#!/usr/bin/env python3
"""Abuse under load: smtpd holds 1,000 idle connections while a slowloris
client types a byte a second, a flooder pipelines commands without ever
reading a reply, and a brute-force client guesses AUTH passwords, all at
once; meanwhile a normal client keeps sending messages through smtpd and
retrieving them through pop3d.

Each abuser comes from its own loopback address (127.0.x.y), so the
per-address limit applies to it alone. Checked:
  - the 1,000 idle connections are all greeted and held, and one more from a
    full address gets "421 4.7.0 Too many connections" (max_connections_per_addr);
  - every message of the normal client arrives, byte for byte, via POP3;
  - smtpd's resident memory (VmRSS) stays under a bound all along;
  - the idle connections are cut off by smtp_command_timeout (a 421 and a
    close), the flooder (whose replies are never read, so no 421 can reach it)
    by the socket timeout behind it (smtp_command_timeout +
    SESSION_TIMEOUT_GRACE), the brute-force client after auth_max_failures
    failures per session, the slowloris client's extra connections by the
    per-address limit.
The limits are short in this test's configuration to keep it short.
"""
import atexit
import os
import poplib
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
import base64

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, PASSWORDS, check, run  # noqa: E402

IDLE_ADDRS = 10                 # idle connections come from 127.0.1.1-10
TIMEOUT = 5                     # smtp_command_timeout (seconds) in this test (its minimum)
GRACE = 30                      # SESSION_TIMEOUT_GRACE (common/session.h): the connection's backstop timeout
FLOOD_LIMIT = TIMEOUT + GRACE + 25   # the flooder must be cut off before this
MESSAGES = 20
RSS_BOUND_MB = int(os.environ.get("CORREIO_ABUSE_RSS_MB", "600"))

soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, 4096) if hard != resource.RLIM_INFINITY else 4096
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))   # inherited by the daemons
# 1,000 idle connections (100 per address) when the descriptor limit allows it
IDLE = min(1000, (want - 300) // IDLE_ADDRS * IDLE_ADDRS)
PER_ADDR = IDLE // IDLE_ADDRS
if IDLE < 1000:
    print(f"RLIMIT_NOFILE hard limit {hard}: holding {IDLE} idle connections, not 1000", flush=True)

tempfile.tempdir = tempfile.mkdtemp(prefix="correio-abuse-")
if not os.environ.get("CORREIO_KEEP"):
    atexit.register(shutil.rmtree, tempfile.tempdir, True)

lab = Lab(config_extra=(
    "[limits]\n"
    f"max_connections = {IDLE + 200}\n"
    f"max_connections_per_addr = {PER_ADDR}\n"
    f"smtp_command_timeout = {TIMEOUT}\n"
    f"smtp_data_timeout = {TIMEOUT}\n"
    "auth_fail_delay_max = 1\n"
    "auth_max_failures = 5\n"))
lab.start_smtpd(roles=("inbound", "submission"))
lab.start_pop3d()
HOST = lab.host
SMTP = lab.smtp_ports["inbound"]
SUBMIT = lab.smtp_ports["submission"]
FIG = {}


def connect_from(src, port, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect((HOST, port))
    return s


def read_line(s):
    buf = b""
    while b"\r\n" not in buf:
        c = s.recv(4096)
        if not c:
            return buf.decode("latin-1") if buf else None
        buf += c
    return buf.split(b"\r\n", 1)[0].decode("latin-1")


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0.0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except OSError:
                return
            time.sleep(0.1)


def slowloris(stop, result):
    """Three connections typing one byte a second, each on its own line (the
    command timeout runs from the last complete line, so they are cut off);
    then connections until the per-address limit refuses one."""
    conns = []
    for _ in range(3):
        s = connect_from("127.0.2.1", SMTP)
        read_line(s)
        conns.append(s)
    line = b"NOOP slowly " + b"z" * 400 + b"\r\n"
    dropped = set()
    started = time.time()
    i = 0
    while not stop.is_set() and i < len(line):
        for s in conns:
            try:
                s.send(line[i:i + 1])
            except OSError:
                if s not in dropped:
                    dropped.add(s)
                    result["slowloris_cut_after_s"] = time.time() - started
        i += 1
        stop.wait(1.0)
    result["slowloris_bytes"] = i
    # Each was answered 421 by the command timeout (or is already closed).
    cut = 0
    for s in conns:
        s.settimeout(TIMEOUT + 3)
        try:
            data = s.recv(4096)
            cut += data == b"" or data.startswith(b"421")
        except OSError:
            cut += 1
    result["slowloris_dropped"] = max(cut, len(dropped))
    # more connections from the same address: the limit refuses the extra one
    extra = []
    refused = None
    for _ in range(PER_ADDR + 1):
        try:
            s = connect_from("127.0.2.1", SMTP)
        except OSError:
            break
        extra.append(s)
        g = read_line(s)
        if g is None or g.startswith("421"):
            refused = g
            break
    result["slowloris_refused"] = refused
    result["slowloris_held"] = len(conns) + len(extra) - (1 if refused else 0)
    for s in conns + extra:
        s.close()


def flooder(result):
    """Pipelines NOOPs without reading a reply, until the server gives up."""
    s = connect_from("127.0.3.1", SMTP, timeout=FLOOD_LIMIT)
    chunk = b"NOOP\r\n" * 10000
    sent = 0
    t0 = time.time()
    try:
        while time.time() - t0 < FLOOD_LIMIT:
            s.sendall(chunk)
            sent += len(chunk)
    except OSError:
        pass
    result["flood_sent_mb"] = round(sent / 1e6, 1)
    result["flood_cut_after_s"] = round(time.time() - t0, 1)
    s.close()


def brute(stop, result):
    """Wrong AUTH PLAIN passwords, session after session."""
    sessions = guesses = 0
    per_session = []
    while not stop.is_set():
        s = connect_from("127.0.4.1", SUBMIT)
        d = Dialog.__new__(Dialog)
        d.s, d.buf = s, b""
        try:
            d.expect(220)
            d.expect(250, "EHLO brute")
            n = 0
            while True:
                resp = base64.b64encode(f"\0ana\0guess{guesses}".encode()).decode()
                d.send(f"AUTH PLAIN {resp}\r\n")
                code, lines = d.smtp_reply()
                guesses += 1
                n += 1
                if code == 421 or n > 50:
                    break
                check(code == 535, f"wrong password: {lines}")
            per_session.append(n)
        except (EOFError, OSError):
            per_session.append(-1)
        finally:
            s.close()
        sessions += 1
    result["brute_sessions"] = sessions
    result["brute_guesses"] = guesses
    result["brute_per_session"] = per_session


def normal_client(result):
    """Send MESSAGES messages through smtpd, then fetch them through pop3d."""
    subjects = []
    for i in range(MESSAGES):
        d = Dialog(HOST, SMTP)
        d.expect(220)
        d.expect(250, "EHLO normal.client")
        d.expect(250, "MAIL FROM:<bob@lab.test>")
        d.expect(250, "RCPT TO:<ana@lab.test>")
        d.expect(354, "DATA")
        subj = f"normal-{i}-{time.time()}"
        subjects.append(subj)
        d.send(f"Subject: {subj}\r\n\r\nbody of {subj}\r\n" + "line\r\n" * 50 + ".\r\n")
        code, lines = d.smtp_reply()
        check(code == 250, f"message {i}: {lines}")
        d.expect(221, "QUIT")
        d.close()
        time.sleep(0.2)
    p = poplib.POP3(HOST, lab.pop3_port, timeout=15)
    p.user("ana")
    p.pass_(PASSWORDS["ana"])
    got = set()
    for n in range(1, len(p.list()[1]) + 1):
        lines = p.retr(n)[1]
        for l in lines:
            if l.startswith(b"Subject: normal-"):
                subj = l[9:].decode()
                check(b"body of " + subj.encode() in lines, f"{subj}: body")
                check(lines.count(b"line") == 50, f"{subj}: 50 lines")
                got.add(subj)
    p.quit()
    missing = [s for s in subjects if s not in got]
    check(not missing, f"normal client's messages missing: {missing}")
    result["normal_delivered"] = len(subjects)


def test_abuse_all_at_once():
    pid = lab.smtpd.pid
    base = rss_mb(pid)
    sampler = Sampler(pid)
    sampler.start()
    t0 = time.time()

    idle = []
    for a in range(IDLE_ADDRS):
        for _ in range(PER_ADDR):
            idle.append(connect_from(f"127.0.1.{a + 1}", SMTP))
    greeted = sum(1 for s in idle if (read_line(s) or "").startswith("220"))
    check(greeted == IDLE, f"{greeted} of {IDLE} idle connections greeted")
    extra = connect_from("127.0.1.1", SMTP)
    busy = read_line(extra)
    extra.close()
    check(busy is not None and busy.startswith("421") and "Too many connections" in busy,
          f"connection {PER_ADDR + 1} from one address: {busy!r}")
    FIG["idle_held"] = greeted
    FIG["idle_open_s"] = round(time.time() - t0, 1)

    result, stop = {}, threading.Event()
    threads = [threading.Thread(target=slowloris, args=(stop, result)),
               threading.Thread(target=flooder, args=(result,)),
               threading.Thread(target=brute, args=(stop, result))]
    for t in threads:
        t.start()
    normal_client(result)
    # The idle connections were held while the normal client worked ...
    held, elapsed = 0, time.time() - t0
    for s in idle:
        s.setblocking(False)
        try:
            s.recv(1, socket.MSG_PEEK)      # data (a 421) or b"" (closed)
        except BlockingIOError:
            held += 1                       # open, nothing said
        s.setblocking(True)
    FIG["idle_held_after_normal_client"] = held
    if elapsed < TIMEOUT - 1:
        check(held == IDLE, f"only {held} idle connections held after {elapsed:.1f} s")
    # ... and are cut off by smtp_command_timeout.
    deadline = t0 + TIMEOUT + 15
    closed = 0
    for s in idle:
        s.settimeout(max(0.1, deadline - time.time()))
        try:
            while True:
                c = s.recv(4096)
                if not c:
                    closed += 1
                    break
        except OSError:
            pass
        s.close()
    check(closed == IDLE, f"only {closed} of {IDLE} idle connections were cut off by the timeout")
    stop.set()
    for t in threads:
        t.join(timeout=FLOOD_LIMIT + 10)
        check(not t.is_alive(), "an abuser thread hangs")
    sampler.stop.set()
    sampler.join()

    check(result.get("normal_delivered") == MESSAGES, "normal client")
    check(result.get("flood_cut_after_s", 999) < FLOOD_LIMIT - 1, f"flooder not cut off: {result}")
    bps = [n for n in result["brute_per_session"] if n > 0]
    check(bps and max(bps) <= 5, f"brute force sessions not closed after 5 failures: {bps}")
    check(result.get("slowloris_dropped") == 3,
          f"slowloris connections not cut off by the command timeout: {result}")
    check((result.get("slowloris_refused") or "").startswith("421"),
          f"slowloris extra connection: {result.get('slowloris_refused')!r}")
    check(sampler.peak < RSS_BOUND_MB, f"smtpd RSS peak {sampler.peak:.0f} MB >= {RSS_BOUND_MB} MB")
    check(lab.smtpd.poll() is None, "smtpd died")
    d = Dialog(HOST, SMTP)
    d.expect(220)
    d.expect(250, "NOOP")
    d.close()
    FIG.update(result)
    FIG.update(rss_base_mb=round(base, 1), rss_peak_mb=round(sampler.peak, 1),
               idle_closed=closed, seconds=round(time.time() - t0, 1))
    FIG.pop("brute_per_session", None)
    print("figures: " + ", ".join(f"{k}={v}" for k, v in FIG.items()), flush=True)


if __name__ == "__main__":
    run([test_abuse_all_at_once])
