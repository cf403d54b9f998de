#!/usr/bin/env python3
"""`mailcli admin` and the relay queue on a full disk (issue 16).

The store lives on an 8 MiB tmpfs (faults.py), filled up by a filler file,
with smtpd running its queue runner towards a scripted destination on
loopback that counts what it is given.

test_admin_full_disk: every `mailcli admin` command that writes (user add,
user passwd, alias add, user del, domain add) exits non-zero saying the file
system is full, and changes nothing (accounts and aliases compared row by
row, integrity_check ok); the commands that read (user list, alias list,
domain list, queue list, transcript list) still work and show the same.

test_relay_full_disk: two messages are queued for remote.test while the
destination answers 450. Then the destination accepts one and refuses the
other (550), and the disk fills while that delivery is in flight (the
destination holds its reply to the first message's text until the disk is
full: the runner's claim on the items, a write, was taken before): the
first is delivered, but its removal from the queue cannot be written; the
bounce of the second cannot be stored, nor its deferral. No new claim can
be written on the full disk either, so nothing else goes out meanwhile. The runner must deliver the first exactly once (it remembers in
memory that it was sent and retries only the removal), must retry the
second no faster than the retry schedule (no loop), and lose neither. Once
space is freed: the queue empties, the first was delivered once, the bounce
of the second is in ana's mailbox once.
"""
import faulthandler
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import LoopbackServer, check, free_port, run  # noqa: E402
import faults  # noqa: E402

faulthandler.dump_traceback_later(150, exit=True)


class CountingMTA(LoopbackServer):
    """A destination SMTP server: rcpt[addr] is the reply to RCPT TO:<addr>
    (changed by the test as it goes); it counts every RCPT and every message
    text it accepts, per recipient."""

    def __init__(self, host, port):
        self.rcpt = {}
        self.tried = {}         # addr -> RCPTs seen
        self.delivered = {}     # addr -> message texts accepted
        self.sessions = 0
        self.mu = threading.Lock()
        self.gate = threading.Event()   # the reply to a message's text waits for it
        self.gate.set()
        self.held = threading.Event()   # a reply is waiting at the gate
        super().__init__(host, port)

    def count(self, table, addr):
        with self.mu:
            return table.get(addr, 0)

    def session(self, c):
        c.settimeout(10)
        f = c.makefile("rb")
        with self.mu:
            self.sessions += 1
        rcpts = []

        def say(line):
            c.sendall(line.encode() + b"\r\n")

        say("220 remote.test ESMTP")
        while True:
            line = f.readline()
            if not line:
                return
            cmd = line.decode().rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say("250-remote.test\r\n250 ENHANCEDSTATUSCODES")
            elif verb == "MAIL":
                rcpts = []
                say("250 2.1.0 ok")
            elif verb == "RCPT":
                addr = cmd[cmd.index("<") + 1:cmd.rindex(">")]
                with self.mu:
                    self.tried[addr] = self.tried.get(addr, 0) + 1
                    reply = self.rcpt.get(addr, "250 2.1.5 ok")
                if reply.startswith("250"):
                    rcpts.append(addr)
                say(reply)
            elif verb == "DATA":
                say("354 go ahead")
                while True:
                    l = f.readline()
                    if not l or l == b".\r\n":
                        break
                if not self.gate.is_set():
                    self.held.set()
                    self.gate.wait(timeout=60)
                with self.mu:
                    for a in rcpts:
                        self.delivered[a] = self.delivered.get(a, 0) + 1
                say("250 2.0.0 queued")
            elif verb in ("RSET", "NOOP"):
                say("250 2.0.0 ok")
            elif verb == "QUIT":
                say("221 2.0.0 bye")
                return
            else:
                say("502 5.5.1 not here")


FPORT = free_port()
MNT = faults.mount_tmpfs("8m")
lab = faults.lab_on(MNT, config_extra=(
    "[relay]\ntrusted_networks = 127.0.0.0/8\n"
    f"route = remote.test 127.0.0.1:{FPORT}\nretry_schedule = 1\n"))
fake = CountingMTA("127.0.0.1", FPORT)
lab.start_smtpd()
A, B = "a@remote.test", "b@remote.test"


def wait_for(what, fn, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def truncate_wal():
    """Give the WAL's space back (small commits would still fit in it)."""
    out = lab.sql("PRAGMA wal_checkpoint(TRUNCATE)").decode().strip()
    check(out.startswith("0|"), f"checkpoint: {out}")


def snapshot():
    """Accounts (with hashes), aliases and domains, row by row."""
    return lab.sql("SELECT name, hash, teacher FROM accounts ORDER BY name;"
                   " SELECT address, account FROM aliases ORDER BY address, account;"
                   " SELECT name FROM domains ORDER BY name;")


def queue():
    p = lab.admin("queue", "list", check=False)
    check(p.returncode == 0, f"queue list: {p.returncode} {p.stderr}")
    return [line.split("\t") for line in p.stdout.splitlines() if line.strip()]


READS = (("user", "list"), ("alias", "list"), ("domain", "list"), ("transcript", "list"))


def test_admin_full_disk():
    lab.admin("alias", "add", "info", "bob")
    before = snapshot()
    # The session log writes in batches (at most 200 ms late): let the
    # start-up connections' rows land before the reads are taken.
    time.sleep(0.5)
    reads = {r: lab.admin(*r).stdout for r in READS}
    truncate_wal()
    filler = faults.fill(MNT, "filler-admin")
    try:
        writes = (
            (("user", "add", "carol", "--password-stdin"), "carol-pw-3\n"),
            (("user", "passwd", "bob", "--password-stdin"), "new-bob-pw\n"),
            (("alias", "add", "help", "ana"), None),
            (("alias", "del", "info"), None),
            (("user", "del", "ana"), None),
            (("domain", "add", "other.test"), None),
        )
        for args, stdin in writes:
            p = lab.admin(*args, stdin=stdin, check=False)
            check(p.returncode != 0, f"admin {' '.join(args)} on a full disk exited 0: {p.stdout}")
            check("full" in p.stderr and "nothing was changed" in p.stderr,
                  f"admin {' '.join(args)}: unclear message: {p.stderr!r}")
        check(snapshot() == before, "a write on a full disk changed the store")
        faults.store_ok(lab)
        for r in READS:
            p = lab.admin(*r, check=False)
            check(p.returncode == 0 and p.stdout == reads[r],
                  f"admin {' '.join(r)} on a full disk: {p.returncode} {p.stdout!r} {p.stderr!r}")
        queue()
    finally:
        os.unlink(filler)
    # With room again the same commands work.
    p = lab.admin("user", "add", "carol", "--password-stdin", stdin="carol-pw-3\n", check=False)
    check(p.returncode == 0, f"user add after freeing space: {p.stderr}")
    lab.admin("user", "del", "carol")
    check(snapshot() == before, "the store differs after add and del")
    faults.alive(lab)


def test_relay_full_disk():
    fake.rcpt = {A: "450 4.2.1 try later", B: "450 4.2.1 try later"}
    for rcpt in (A, B):
        d = lab.smtp_dialog()
        d.send("EHLO client.test\r\n")
        d.expect(250)
        d.smtp_start_data(rcpts=(rcpt,))
        d.send(f"Subject: to {rcpt}\r\n\r\nhello {rcpt}\r\n.\r\n")
        d.expect(250)
        d.send("QUIT\r\n")
        d.close()
    wait_for("both tried", lambda: fake.count(fake.tried, A) >= 1 and fake.count(fake.tried, B) >= 1)
    check(len(queue()) == 2, f"queue before: {queue()}")
    before = faults.counts(lab)

    tried_b = fake.count(fake.tried, B)
    fake.gate.clear()
    fake.rcpt = {A: "250 2.1.5 ok", B: "550 5.1.1 no such user"}
    wait_for("the first message's text at the destination", fake.held.is_set)
    truncate_wal()
    filler = faults.fill(MNT, "filler-relay")
    fake.gate.set()
    try:
        wait_for("the delivery of the first", lambda: fake.count(fake.delivered, A) >= 1)
        wait_for("the refusal of the second", lambda: fake.count(fake.tried, B) > tried_b)
        # Watch the runner on the full disk: no second delivery, no loop.
        sessions0, tried_a, tried_b = fake.sessions, fake.count(fake.tried, A), fake.count(fake.tried, B)
        time.sleep(6)
        check(fake.count(fake.delivered, A) == 1,
              f"delivered {fake.count(fake.delivered, A)} times on a full disk")
        check(fake.count(fake.tried, A) == tried_a, "the delivered item was tried again")
        extra = fake.sessions - sessions0
        # retry_schedule = 1 s: one attempt a second at most, plus the slack
        # of the 2 s poll; a loop would make hundreds.
        print(f"full disk, 6 s: {extra} connections, deliveries of the first "
              f"{fake.count(fake.delivered, A)}, RCPTs of the second "
              f"{fake.count(fake.tried, B) - tried_b}", flush=True)
        check(extra <= 8, f"{extra} connections in 6 s on a full disk: a retry loop")
        check(fake.count(fake.tried, B) - tried_b <= 8, "the refused item was retried in a loop")
        log = lab.wait_log("smtpd", "event=claim-failed")
        check("event=queue-update-failed outcome=sent" in log, f"smtpd log:\n{log[-3000:]}")
        check("event=queue-update-failed outcome=retry" in log, f"smtpd log:\n{log[-3000:]}")
        check("event=claim-failed" in log, f"smtpd log (no claim on a full disk):\n{log[-3000:]}")
        check(len(queue()) == 2, f"the queue on a full disk (nothing could be written): {queue()}")
        check(faults.counts(lab) == before, f"counts on a full disk: {faults.counts(lab)}")
        faults.store_ok(lab)
        faults.alive(lab)
    finally:
        os.unlink(filler)

    # Room again: the removal and the bounce go through; nothing twice.
    wait_for("an empty queue", lambda: queue() == [], timeout=30)
    check(fake.count(fake.delivered, A) == 1, f"delivered {fake.count(fake.delivered, A)} times")
    check(fake.count(fake.delivered, B) == 0, "the refused message was delivered")
    bounces = lab.sql("SELECT count(*) FROM mailbox m JOIN accounts a ON a.id = m.account"
                      " JOIN messages g ON g.id = m.message WHERE a.name = 'ana'"
                      " AND g.sender = '' AND instr(CAST(g.body AS TEXT), '" + B + "') > 0")
    check(bounces.decode().strip() == "1", f"bounces of the second in ana's mailbox: {bounces}")
    check(lab.log_has("smtpd", "event=queue-update-done"), "smtpd log: removal after delivery")
    faults.store_ok(lab)
    faults.alive(lab)
    lab.stop_checked(lab.smtpd, "smtpd")
    fake.stop()


run([test_admin_full_disk, test_relay_full_disk])
