#!/usr/bin/env python3
"""The wall clock steps under the running daemons: back one hour, then
forward one day (issue 16).

smtpd and pop3d run under libfaketime with a timestamp file this test
rewrites (FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1): every time() and
CLOCK_REALTIME read sees the offset written last. FAKETIME_DONT_FAKE_MONOTONIC=1
keeps CLOCK_MONOTONIC real, as in a real clock step (date(1), NTP stepping,
a VM resumed). While the clock steps:
- an SMTP session is in the middle of a transaction and a POP3 session is
  logged in: neither is cut (their idle timers are monotonic), the message
  is stored (250) and RETR works afterwards;
- after a day forward, a second POP3 login to the same mailbox gets
  -ERR [IN-USE]: the live session's lock (its "taken" is a wall-clock date
  older than pop3_lock_ttl now) is not taken over;
- after an hour back, a lock left by a process that is gone is still taken
  over at once;
- three messages are queued for a destination that answers 421: after the
  hour back they are retried within the retry interval (the relay clamps
  next_attempt; without it they would wait an hour more), after the day
  forward they are tried once and deferred again (no tight loop: the
  connections to the destination are counted), and they are not bounced
  although max_queue_age (12 h) is shorter than the step: expiry counts
  the time really spent in the queue. When the destination comes up and the
  queue is flushed, each is delivered once.
Bounded: about a minute.
"""
import os
import re
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import (Lab, Dialog, LoopbackServer, PG, check, free_port, libfaketime,  # noqa: E402
                          run, wait_for)

RETRY = 20                      # retry_schedule (s): one interval
MAX_AGE = 12 * 3600             # max_queue_age: shorter than the day forward
BACK, FORWARD = -3600, 86400    # the two steps; the offset after both is +23 h


class Destination(LoopbackServer):
    """The relay's destination on loopback: answers 421 to every connection
    while down (and counts them); when up, accepts every message."""

    def __init__(self, port):
        self.up = False
        self.refused = []        # monotonic times of the connections refused
        self.messages = []       # (rcpts, text) accepted
        super().__init__("127.0.0.1", port, backlog=16)

    def session(self, c):
        if not self.up:
            self.refused.append(time.monotonic())
            c.sendall(b"421 4.3.2 far.test is down for maintenance\r\n")
        else:
            self.accept_mail(c)

    def accept_mail(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        c.sendall(b"220 far.test ESMTP\r\n")
        rcpts = []
        while True:
            line = f.readline()
            if not line:
                return
            verb = line[:4].upper()
            if verb in (b"EHLO", b"HELO"):
                c.sendall(b"250 far.test\r\n")
            elif verb == b"MAIL":
                rcpts = []
                c.sendall(b"250 2.1.0 ok\r\n")
            elif verb == b"RCPT":
                rcpts.append(line.decode().strip())
                c.sendall(b"250 2.1.5 ok\r\n")
            elif verb == b"DATA":
                c.sendall(b"354 go\r\n")
                text = b""
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                    text += l
                self.messages.append((rcpts, text))
                c.sendall(b"250 2.0.0 taken\r\n")
            elif verb == b"QUIT":
                c.sendall(b"221 bye\r\n")
                return
            else:
                c.sendall(b"250 ok\r\n")


class Clock:
    """The daemons' wall clock: an offset from the real one, in a file
    libfaketime reads at every call."""

    def __init__(self, path):
        self.path = path
        self.offset = 0
        self.set(0)

    def set(self, offset):
        tmp = self.path + ".new"
        with open(tmp, "w") as f:
            f.write(f"{offset:+d}\n")
        os.replace(tmp, self.path)     # never a half-written file
        self.offset = offset

    def env(self):
        asan = os.environ.get("ASAN_OPTIONS", "")
        return {
            "LD_PRELOAD": libfaketime(),
            "FAKETIME_TIMESTAMP_FILE": self.path,
            "FAKETIME_NO_CACHE": "1",
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
        }


def queue_rows(lab):
    out = lab.sql("select id, attempts, next_attempt, created from queue order by id").decode()
    return [tuple(int(x) for x in l.split("|")) for l in out.split()]


def pop3_login(lab, user, password):
    d = Dialog(lab.host, lab.pop3_port)
    check(d.pop3().startswith("+OK"), "pop3 greeting")
    check(d.pop3("USER " + user).startswith("+OK"), "USER")
    return d, d.pop3("PASS " + password)


def test_clock_steps_back_and_forward():
    dport = free_port()
    dest = Destination(dport)
    lab = Lab(config_extra=(
        "[relay]\n"
        "trusted_networks = 127.0.0.0/8\n"
        f"route = far.test 127.0.0.1:{dport}\n"
        f"retry_schedule = {RETRY}\n"
        f"max_queue_age = {MAX_AGE}\n"))
    clock = Clock(os.path.join(lab.dir, "faketime"))
    try:
        lab.start_smtpd(env=clock.env())
        lab.start_pop3d(env=clock.env())

        # bob has a message to read; three messages wait for far.test
        d = lab.smtp_dialog()
        d.expect(250, "EHLO client.test")
        d.smtp_send("Subject: for bob\r\n\r\nread me after the clock steps\r\n")
        for i in range(3):
            d.smtp_send(f"Subject: far {i}\r\n\r\nqueued {i}\r\n", rcpts=(f"u{i}@far.test",))
        d.expect(221, "QUIT")
        wait_for("the first attempt of the three", lambda: len(queue_rows(lab)) == 3 and
                 all(a >= 1 for _, a, _, _ in queue_rows(lab)), 15)
        first = len(dest.refused)
        check(1 <= first <= 3, f"first attempts: {first} connections")

        # the sessions that live through the steps
        smtp = lab.smtp_dialog()
        smtp.expect(250, "EHLO client.test")
        smtp.expect(250, "MAIL FROM:<ana@lab.test>")
        smtp.expect(250, "RCPT TO:<bob@lab.test>")
        pop, reply = pop3_login(lab, "bob", "bob-secret-2")
        check(reply.startswith("+OK"), f"bob's login: {reply}")

        # ---- one hour back
        t_back = time.monotonic()
        clock.set(BACK)
        smtp.expect(250, "NOOP")
        check(pop.pop3("NOOP").startswith("+OK"), "POP3 NOOP after the step back")
        # a lock left by a process that is gone is taken over at once,
        # even with its "taken" an hour in the daemon's future
        dead = subprocess.Popen(["true"])
        dead.wait()
        host = socket.gethostname()
        if PG:      # the lock also names the connection that took it: psql's, gone too
            lab.sql_write("INSERT INTO locks(account, owner, taken, backend_pid) VALUES "
                          f"('ana', '{host}/{dead.pid}/crashed', "
                          "extract(epoch from now())::bigint, pg_backend_pid())")
        else:
            lab.sql_write("INSERT INTO locks(account, owner, taken) VALUES "
                          f"('ana', '{host}/{dead.pid}/crashed', strftime('%s','now'))")
        pa, reply = pop3_login(lab, "ana", "ana-secret-1")
        check(reply.startswith("+OK"), f"ana's login over a dead lock after the step back: {reply}")
        check(pa.pop3("QUIT").startswith("+OK"), "ana QUIT")
        # the items are rescheduled within one retry interval of the new
        # time (not an hour and an interval), and retried then
        def within_interval():
            now_fake = int(time.time()) + BACK
            rows = queue_rows(lab)
            return len(rows) == 3 and all(n - now_fake <= RETRY + 2 for _, _, n, _ in rows)
        wait_for("next attempts within one interval after the step back", within_interval, 6)
        wait_for("a retry after the step back", lambda: len(dest.refused) > first, RETRY + 10)
        took = time.monotonic() - t_back
        check(took <= RETRY + 8, f"retry after the step back took {took:.1f}s")
        log = lab.wait_log("smtpd", "event=clock-step seconds=-3")
        check(re.search(r"event=clock-step seconds=-3[56]\d\d", log),
              "smtpd logged the step back: " + log[-1500:])
        rows = queue_rows(lab)
        now_fake = int(time.time()) + BACK
        check(len(rows) == 3, f"queue after the step back: {rows}")
        check(all(n - now_fake <= RETRY + 2 for _, _, n, _ in rows),
              f"next attempts lie at most one interval ahead: {rows} (now {now_fake})")
        time.sleep(3)
        after_back = len(dest.refused)

        # ---- one day forward (the offset is now +23 h)
        t_fwd = time.monotonic()
        clock.set(BACK + FORWARD)
        smtp.expect(250, "NOOP")
        wait_for("the attempt after the step forward", lambda: len(dest.refused) > after_back, 10)
        time.sleep(6)         # a tight loop would show here
        burst = [t for t in dest.refused if t >= t_fwd]
        check(len(burst) <= 2, f"{len(burst)} connections within 6 s of the step forward")
        rows = queue_rows(lab)
        check(len(rows) == 3, f"an item left the queue after the step forward: {rows}")
        now_fake = int(time.time()) + BACK + FORWARD
        check(all(0 < n - now_fake <= RETRY + 2 for _, _, n, _ in rows),
              f"deferred from the new time by one interval: {rows} (now {now_fake})")
        log = lab.wait_log("smtpd", "event=clock-step seconds=8")
        check("gave up" not in log and "status=bounced" not in log,
              "an item bounced after the step forward: " + log[-2000:])
        check(lab.count("mailbox m join accounts a on a.id = m.account", "a.name = 'ana'") == 0,
              "a bounce reached ana")
        check(re.search(r"event=clock-step seconds=8[56]\d\d\d", log),
              "smtpd logged the step forward")

        # the live POP3 session keeps its mailbox: its lock is a day "old" now
        p2, reply = pop3_login(lab, "bob", "bob-secret-2")
        check(reply.startswith("-ERR [IN-USE]"), f"second login to bob's mailbox: {reply}")
        p2.close()

        # the open sessions finish their work
        smtp.expect(354, "DATA")
        smtp.send("Subject: across the steps\r\n\r\nstarted before, ended after\r\n.\r\n")
        smtp.expect(250)
        smtp.expect(221, "QUIT")
        check(pop.pop3("RETR 1").startswith("+OK"), "RETR after both steps")
        body = "\r\n".join(pop.pop3_multi())
        check("read me after the clock steps" in body, "RETR body: " + body[-300:])
        check(pop.pop3("QUIT").startswith("+OK"), "bob QUIT")
        check(lab.count("mailbox m join accounts a on a.id = m.account", "a.name = 'bob'") == 2,
              "bob's mailbox: the first message and the one sent across the steps")

        # ---- the destination comes up; a flush delivers each item once
        dest.up = True
        lab.admin("queue", "flush")
        wait_for("the queue to empty", lambda: queue_rows(lab) == [], 20)
        time.sleep(2.5)       # one more run: nothing is sent twice
        got = sorted(r[0] for r, _ in dest.messages)
        check(got == [f"RCPT TO:<u{i}@far.test>" for i in range(3)], f"delivered: {got}")
        total = len(dest.refused)
        print(f"connections refused: {total} ({first} at first, {after_back - first} after "
              f"the step back, {len(burst)} after the step forward)")
        if not PG:
            check(lab.sql("PRAGMA integrity_check").decode().strip() == "ok", "integrity_check")
        lab.stop_checked(lab.smtpd, "smtpd")
        lab.stop_checked(lab.pop3d, "pop3d")
    finally:
        dest.stop()
        lab.stop()


if __name__ == "__main__":
    run([test_clock_steps_back_and_forward])
