#!/usr/bin/env python3
"""Crash consistency of smtpd and pop3d: SIGKILL at random moments under load.

smtpd: client threads send messages as fast as they can (some one command at
a time, some with the envelope pipelined, some messages to two recipients)
while smtpd is killed with SIGKILL at a random moment, CYCLES times, and
restarted on the same store. Each message carries a unique token, and each
client records what it knows: "acked" (250 after the final dot), "refused"
(another reply), "unknown" (the final dot was sent, no reply came: the
client cannot know) or "partial" (the connection died before the final dot).
Two of the threads make about half of their messages large (1-1.3 MB), so
kills land while a body is being spooled, copied into the store or committed.
After the last cycle the store, read with Python's sqlite3 (an independent
reader), must show:
  - every acked message present exactly once, with one mailbox entry per
    recipient and its body intact;
  - no refused or partial message at all;
  - an unknown message either complete (all its recipients) or absent;
  - no mailbox entry without its message, no message without an entry or a
    queue item, no queue item without its message;
  - PRAGMA integrity_check "ok" and no foreign key violation;
  - no spool file left beside the store.

pop3d: a session marks half of a mailbox deleted, sends QUIT, and pop3d is
killed at a random moment around it. The mailbox must afterwards be either
untouched or have lost exactly the marked messages (all or nothing), and a
client that got "+OK" to QUIT must see them gone. A session whose connection
drops before QUIT must lose nothing.

The sender, the reading of the store and the judgements live in crashload.py,
shared with the 1,000 + 1,000 cycle soak (tests/soak/soak.py, run by hand).
"""
import atexit
import faulthandler
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, PASSWORDS, check, run  # noqa: E402
from crashload import (Verdict, judge_quit, pop3_mailbox as store_mailbox,  # noqa: E402
                       quit_and_kill, scan_store, smtpd_kill_cycles)

faulthandler.dump_traceback_later(240, exit=True)   # a hang fails with a stack, not a timeout
CYCLES = int(os.environ.get("CORREIO_CRASH_CYCLES", "30"))
THREADS = 6
LARGE_THREADS = (0, 3)      # these send large messages too
LARGE = (1_000_000, 1_300_000)
RNG = random.Random(int(os.environ.get("CORREIO_CRASH_SEED", str(int(time.time())))))

# A private parent for the lab's directory (shared /tmp/correio-test-* dirs
# were seen vanishing on the shared development machine).
tempfile.tempdir = tempfile.mkdtemp(prefix="correio-crash-")
if not os.environ.get("CORREIO_KEEP"):
    atexit.register(shutil.rmtree, tempfile.tempdir, True)
lab = Lab(config_extra="[limits]\nmax_connections_per_addr = 500\nmax_errors = 1000\n")
HOST = lab.host
FIGURES = {}


def test_smtpd_sigkill_under_load():
    records = []
    t0 = time.time()
    kills = smtpd_kill_cycles(lab, CYCLES, "crash", records, RNG, THREADS, LARGE_THREADS, LARGE)
    # One last clean start: the store opens and the daemon serves.
    lab.start_smtpd()
    d = Dialog(HOST, lab.smtp_port)
    d.expect(220)
    d.expect(250, "NOOP")
    d.close()
    lab.smtpd.send_signal(signal.SIGTERM)
    lab.smtpd.wait(timeout=15)

    by_status = {}
    for r in records:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    check(by_status.get("acked", 0) > 0, f"no message was acknowledged at all: {by_status}")

    problems, stored = scan_store(lab.store)
    check(problems == [], "; ".join(problems))
    v = Verdict(records, stored)
    check(v.strangers == [], f"in the store but never sent: {v.strangers[:5]}")
    check(v.problems() == [], "; ".join(v.problems()))
    large_stored = sum(1 for msgs in stored.values() if msgs[0].size >= LARGE[0])
    unknown_present = v.unknown_stored
    large_sent = sum(1 for r in records if r.size >= LARGE[0] and r.status != "refused")
    check(large_stored > 0, f"no large message reached the store ({large_sent} sent)")
    FIGURES.update(kills=kills, seconds=round(time.time() - t0, 1), unknown_present=unknown_present,
                   large_sent=large_sent, large_stored=large_stored, **by_status)
    print(f"smtpd: {kills} SIGKILL/restart cycles, messages by client view {by_status}, "
          f"{unknown_present} of the unknown ones stored, {len(stored)} stored in all "
          f"({large_stored} of {large_sent} large ones)", flush=True)


def pop3_mailbox(db_path, account):
    uidls, integrity = store_mailbox(db_path, account)
    check(integrity == "ok", "integrity_check")
    return uidls


def clear_locks():
    """A killed pop3d leaves its mailbox lock (owner: the dead session) until
    pop3_lock_ttl; this test restarts at once, so it removes them as an
    administrator would (the lock survival is listed in docs/RELIABILITY.md)."""
    db = sqlite3.connect(lab.store)
    db.execute("DELETE FROM locks")
    db.commit()
    db.close()


def pop3_login(port, user):
    d = Dialog(HOST, port)
    check(d.pop3().startswith("+OK"), "greeting")
    check(d.pop3(f"USER {user}").startswith("+OK"), "USER")
    r = d.pop3(f"PASS {PASSWORDS[user]}")
    check(r.startswith("+OK"), f"PASS: {r}")
    return d


def uidl_map(d):
    check(d.pop3("UIDL").startswith("+OK"), "UIDL")
    return {int(l.split()[0]): l.split()[1] for l in d.pop3_multi()}


def test_pop3d_sigkill_around_quit():
    # carol's mailbox only: ana's and bob's hold the smtpd test's messages.
    lab.admin("user", "add", "carol", "--password-stdin", stdin="carol-secret-3\n")
    PASSWORDS["carol"] = "carol-secret-3"
    nmsg, nmark = 12, 4
    for i in range(nmsg):
        lab.admin("deliver", "carol", stdin=(f"Subject: p{i}\r\n\r\n" + "x" * 2000 + "\r\n").encode())
    outcomes = {"untouched": 0, "expunged": 0}
    cycles = max(8, CYCLES // 2)
    for cycle in range(cycles):
        lab.start_pop3d()
        port = lab.pop3_port
        before = pop3_mailbox(lab.store, "carol")
        check(len(before) == nmsg, f"mailbox holds {len(before)} messages, not {nmsg}")
        d = pop3_login(port, "carol")
        uidls = uidl_map(d)
        numbers = RNG.sample(sorted(uidls), nmark)
        marked = {uidls[n] for n in numbers}
        for n in numbers:
            check(d.pop3(f"DELE {n}").startswith("+OK"), "DELE")
        got = quit_and_kill(lab.pop3d, d, RNG.uniform(0, 0.01))
        after = pop3_mailbox(lab.store, "carol")
        outcome, problem = judge_quit(before, after, marked, got)
        check(problem is None, problem)
        outcomes[outcome] += 1
        if outcome == "expunged":
            for i in range(nmark):   # top up
                lab.admin("deliver", "carol", stdin=(f"Subject: r{cycle}-{i}\r\n\r\nrefill\r\n").encode())
        clear_locks()

    # A session that drops before QUIT loses nothing (pop3d stays up).
    lab.start_pop3d()
    before = pop3_mailbox(lab.store, "carol")
    d = pop3_login(lab.pop3_port, "carol")
    for n in uidl_map(d):
        d.pop3(f"DELE {n}")
    d.close()
    time.sleep(0.3)
    check(pop3_mailbox(lab.store, "carol") == before, "a dropped session deleted messages")
    d = pop3_login(lab.pop3_port, "carol")      # the lock was released on the drop
    check(d.pop3("STAT").startswith(f"+OK {len(before)} "), "STAT after the drop")
    d.pop3("QUIT")
    d.close()
    FIGURES.update(pop3_kills=cycles, **outcomes)
    print(f"pop3d: {cycles} SIGKILLs around QUIT: {outcomes}", flush=True)


if __name__ == "__main__":
    run([test_smtpd_sigkill_under_load, test_pop3d_sigkill_around_quit])
