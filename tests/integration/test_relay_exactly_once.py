#!/usr/bin/env python3
"""Two relay runners on one store deliver each queue item exactly once.

Two smtpd processes share one store (a SQLite file, or in the PostgreSQL pass
of the suite one PostgreSQL database), each with its own queue runner,
and relay everything for dest.test to one fake destination on loopback
(Dest, which counts each message it accepts by its marker, a unique line in
the body). The runners claim queue items (store_queue_claim), so:

- test_live_items_two_runners: 1,000 messages are submitted, half through
  each smtpd at once, while the destination accepts: each commit wakes its
  smtpd's runner and both claim from the same queue as it fills.
- test_thousand_items_two_runners: 1,000 messages are submitted the same
  way while the destination answers 421, so both runners keep claiming,
  trying and deferring the same items every second; then it accepts.
In both, each message arrives exactly once, none is lost, the queue and
the store end empty.
- test_clean_stop_releases_claims: a runner that holds claims (its
  destination never answers) gives them back when smtpd stops on SIGTERM.
- test_killed_runner_taken_over: one smtpd holds every item, stuck on a
  destination that never answers; the other leaves them alone (live
  claims). Then the first is killed with SIGKILL: the second takes its
  items over at once (its pid is gone on this host; no wait for the lease)
  and delivers each exactly once.

Every wait is bounded; the runners poll every 2 s.
"""
import collections
import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import (Lab, LoopbackServer, SMTPD, check, free_port, run,  # noqa: E402
                          wait_port)
import correio_test  # noqa: E402

HOST = "127.0.0.1"
PW = "ana-secret-1"
LEASE = 300             # RELAY_CLAIM_LEASE (smtpd/relay.h)


def wait_for(what, fn, timeout=30.0, step=0.1):
    """correio_test.wait_for, with this test's longer wait and finer step."""
    return correio_test.wait_for(what, fn, timeout, step)


class Dest(LoopbackServer):
    """The destination for dest.test: a thread per connection. mode is read at
    each connection: "refuse" greets with 421; "hang" never says a word and
    holds the connection until the client closes it; "accept" takes every
    message and counts it by its marker line (and the EHLO name that sent it)."""

    def __init__(self, host, port):
        self.mode = "refuse"
        self.mu = threading.Lock()
        self.got = collections.Counter()        # marker -> times accepted
        self.by = collections.Counter()         # EHLO name -> messages accepted
        self.connections = collections.Counter()  # mode -> connections
        super().__init__(host, port, backlog=64)

    def run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except OSError:
                if self.stopped:
                    return
                continue
            # Replies go out at once (Nagle would hold each second one for
            # the client's delayed ACK: 40 ms a message).
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        try:
            self.session(c)
        except (OSError, ValueError):
            pass
        finally:
            c.close()

    def session(self, c):
        mode = self.mode
        with self.mu:
            self.connections[mode] += 1
        if mode == "hang":
            c.settimeout(120)
            while c.recv(4096):
                pass
            return
        c.settimeout(30)
        f = c.makefile("rb")

        def say(line):
            c.sendall(line.encode() + b"\r\n")

        if mode == "refuse":
            say("421 4.3.2 dest.test not now")
            return
        say("220 dest.test ESMTP")
        ehlo = "?"
        while True:
            line = f.readline()
            if not line:
                return
            verb = line.split(b" ", 1)[0].strip().upper()
            if verb == b"EHLO":
                ehlo = line.decode().split()[1]
                say("250-dest.test\r\n250-PIPELINING\r\n250 8BITMIME")
            elif verb in (b"MAIL", b"RCPT", b"RSET", b"NOOP"):
                say("250 2.0.0 ok")
            elif verb == b"DATA":
                say("354 go ahead")
                text = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    text += l
                if not l:
                    return
                m = re.search(rb"marker-([0-9a-z-]+)", text)
                with self.mu:
                    self.got[m.group(1).decode() if m else "none"] += 1
                    self.by[ehlo] += 1
                say("250 2.0.0 queued")
            elif verb == b"QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.1 not here")

    def delivered(self):
        with self.mu:
            return sum(self.got.values())


class Setup:
    """One store, a destination, and smtpd processes started on demand, each
    with its own configuration (the same store, its own hostname, so the
    destination can tell them apart) and log (smtpd-NAME.log)."""

    def __init__(self):
        self.dport = free_port(HOST)
        self.dest = Dest(HOST, self.dport)
        self.lab = Lab(host=HOST, config_extra=(
            f"[relay]\nroute = dest.test {HOST}:{self.dport}\nretry_schedule = 1\n"))
        self.smtpd = {}         # name -> (process, submission port)

    def start(self, name):
        cfg = os.path.join(self.lab.dir, f"smtpd-{name}.conf")
        with open(self.lab.config) as f:
            text = f.read()
        with open(cfg, "w") as f:
            f.write(text.replace("hostname = mx.lab.test", f"hostname = {name}.lab.test"))
        for _ in range(3):
            port = free_port(HOST)
            log = open(os.path.join(self.lab.dir, f"smtpd-{name}.log"), "ab")
            p = subprocess.Popen([SMTPD, "-c", cfg, "--listen", f"{HOST}:{port} submission"],
                                 stdout=log, stderr=subprocess.STDOUT)
            log.close()
            try:
                wait_port(HOST, port)
                break
            except RuntimeError:
                p.kill()
                p.wait(timeout=10)
        self.lab.procs.append(p)
        self.smtpd[name] = (p, port)
        return p

    def claimer(self, name):
        return f"%/{self.smtpd[name][0].pid}/relay"

    def claimed(self, name):
        return self.lab.count("queue", f"claimer LIKE '{self.claimer(name)}'")

    def submit(self, name, first, n):
        """n messages from ana through smtpd name, markers first..first+n-1."""
        c = smtplib.SMTP(HOST, self.smtpd[name][1], timeout=30)
        c.login("ana", PW)
        for i in range(first, first + n):
            c.sendmail("ana@lab.test", [f"rcpt{i % 7}@dest.test"],
                       f"From: ana@lab.test\r\nTo: rcpt@dest.test\r\n"
                       f"Message-ID: <{i}.exactly-once@lab.test>\r\nSubject: item {i}\r\n\r\n"
                       f"marker-{i}\r\n".encode())
        c.quit()

    def stop(self, name):
        p = self.smtpd.pop(name)[0]
        self.lab.stop_checked(p, f"smtpd-{name}")
        self.lab.procs.remove(p)

    def close(self):
        self.lab.stop()
        self.dest.stop()


def check_exactly_once(s, n):
    got = s.dest.got
    dups = {m: k for m, k in got.items() if k > 1}
    missing = [i for i in range(n) if got[str(i)] == 0]
    check(not dups, f"{len(dups)} items delivered more than once: {sorted(dups.items())[:10]}")
    check(not missing, f"{len(missing)} items never delivered: {missing[:10]}")
    check(sum(got.values()) == n, f"{sum(got.values())} deliveries for {n} items: {got.most_common(3)}")
    check(s.lab.count("queue") == 0, "the queue is not empty")
    check(s.lab.count("messages") == 0, "messages left behind in the store")


def submit_both(s, first, n):
    """n messages, half through each smtpd at the same time."""
    threads = [threading.Thread(target=s.submit, args=(name, first + k * n // 2, n // 2))
               for k, name in enumerate(("a", "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    check(not any(t.is_alive() for t in threads), "submission did not finish")


def test_live_items_two_runners():
    """1,000 messages through both smtpds while the destination accepts:
    each commit wakes its smtpd's runner, and both race for every item."""
    n = 1000
    s = Setup()
    try:
        s.dest.mode = "accept"
        s.start("a")
        s.start("b")
        t0 = time.time()
        submit_both(s, 0, n)
        t_sub = time.time()
        wait_for("an empty queue", lambda: s.lab.count("queue") == 0, timeout=60)
        t_done = time.time()
        time.sleep(1.0)                 # a duplicate in flight would land now
        check_exactly_once(s, n)
        print(f"  {n} items, 2 runners, live: submitted in {t_sub - t0:.1f} s, all delivered "
              f"{t_done - t0:.1f} s after the first (by runner: {dict(s.dest.by)}); "
              f"duplicates 0, lost 0", flush=True)
        s.stop("a")
        s.stop("b")
    finally:
        s.close()


def test_thousand_items_two_runners():
    n = 1000
    s = Setup()
    try:
        s.start("a")
        s.start("b")
        t0 = time.time()
        submit_both(s, 0, n)
        t_sub = time.time()
        check(s.lab.count("queue") == n, f"queued: {s.lab.count('queue')}")
        # Both runners claim, try (421) and defer the same items for a while.
        wait_for("421s from both runners' attempts",
                 lambda: s.dest.connections["refuse"] >= 4, timeout=15)
        tried = s.lab.count("queue", "attempts > 0")
        s.dest.mode = "accept"
        t_open = time.time()
        wait_for("an empty queue", lambda: s.lab.count("queue") == 0, timeout=60)
        t_done = time.time()
        time.sleep(1.0)                 # a duplicate in flight would land now
        check_exactly_once(s, n)
        by = dict(s.dest.by)
        print(f"  {n} items, 2 runners: submitted in {t_sub - t0:.1f} s; {tried} tried "
              f"against 421 ({s.dest.connections['refuse']} refused connections); "
              f"delivered in {t_done - t_open:.1f} s after the destination opened "
              f"(by runner: {by}); duplicates 0, lost 0", flush=True)
        s.stop("a")
        s.stop("b")
    finally:
        s.close()


def hold_claims(s, name, n):
    """smtpd name holds claims on all n items, stuck on a silent destination."""
    s.dest.mode = "hang"
    s.start(name)
    s.submit(name, 0, n)
    wait_for(f"{n} items claimed by smtpd {name}", lambda: s.claimed(name) == n)
    wait_for("a delivery stuck at the destination", lambda: s.dest.connections["hang"] >= 1)


def test_clean_stop_releases_claims():
    s = Setup()
    try:
        hold_claims(s, "a", 20)
        s.stop("a")             # SIGTERM: exits 0 after the stop grace
        check(s.lab.count("queue") == 20, "items lost at stop")
        left = s.lab.count("queue", "claimer <> '' OR claimed_until <> 0")
        check(left == 0, f"{left} claims left after a clean stop")
    finally:
        s.close()


def test_killed_runner_taken_over():
    n = 200
    s = Setup()
    try:
        hold_claims(s, "a", n)
        s.start("b")
        time.sleep(3)           # more than a poll: b has looked at the queue
        check(s.claimed("b") == 0, f"b claimed {s.claimed('b')} items a holds")
        check(s.claimed("a") == n, "a's claims were lost")
        check(s.dest.delivered() == 0, "something was delivered")
        s.dest.mode = "accept"
        pa = s.smtpd["a"][0]
        until = int(s.lab.sql(f"SELECT min(claimed_until) FROM queue").decode().strip())
        t_kill = time.time()
        os.kill(pa.pid, signal.SIGKILL)
        pa.wait(timeout=10)
        wait_for("an empty queue", lambda: s.lab.count("queue") == 0, timeout=30)
        took = time.time() - t_kill
        time.sleep(1.0)
        check_exactly_once(s, n)
        check(time.time() < until, "the lease ran out: this was no takeover of a dead pid")
        check(s.dest.by.get("b.lab.test") == n, f"deliveries by runner: {dict(s.dest.by)}")
        print(f"  {n} items held by a killed smtpd: the other delivered them all {took:.1f} s "
              f"after the SIGKILL (lease {LEASE} s); duplicates 0, lost 0", flush=True)
        del s.smtpd["a"]
        s.lab.procs.remove(pa)
        s.stop("b")
    finally:
        s.close()


run([test_live_items_two_runners, test_thousand_items_two_runners, test_clean_stop_releases_claims,
     test_killed_runner_taken_over])
