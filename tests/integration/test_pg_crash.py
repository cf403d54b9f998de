#!/usr/bin/env python3
"""Crash consistency on a PostgreSQL store: smtpd killed, and the database
server stopped with `pg_ctl stop -m immediate` (its own crash: no shutdown
checkpoint, recovery from its WAL at the next start), under load.

The load, the records and the judgement are the SQLite crash test's
(crashload.py): client threads send messages (some pipelined, some to two
recipients, some of 1-1.3 MB) with a unique token and a digest each, and
record "acked", "refused", "unknown" or "partial". Each cycle ends one of two
ways: smtpd gets SIGKILL at a random moment; or the database server is
stopped immediately at a random moment while smtpd goes on (clients then get
451 until it is back), started again after a random pause, the load goes on
for a while, and smtpd gets SIGKILL. Afterwards the database must show every
acked message exactly once with its recipients and its text whole, no
refused or partial message, an unknown one complete or absent, every body's
chunks complete, no orphan, and no spool file left.

pop3d: a session marks messages deleted and sends QUIT while pop3d is
killed, or while the database server is stopped immediately; the mailbox
must lose exactly the marked messages or none, and a "+OK" to QUIT must
mean they are gone.

This test runs its own PostgreSQL server (it stops it), in the PostgreSQL
pass of the suite. CORREIO_CRASH_CYCLES and CORREIO_CRASH_SEED as in
test_crash_consistency.py.
"""
import faulthandler
import os
import random
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import pg_server  # noqa: E402
from correio_test import Lab, Dialog, PASSWORDS, PG, check, psql, run  # noqa: E402
from crashload import (Verdict, judge_quit, pop3_mailbox_pg, quit_and_kill,  # noqa: E402
                       scan_store_pg, smtpd_kill_cycles)

faulthandler.dump_traceback_later(280, exit=True)
CYCLES = int(os.environ.get("CORREIO_CRASH_CYCLES", "16"))
THREADS = 6
LARGE_THREADS = (0, 3)
LARGE = (1_000_000, 1_300_000)
RNG = random.Random(int(os.environ.get("CORREIO_CRASH_SEED", str(int(time.time())))))

if not PG:
    print("SKIP: the PostgreSQL crash test runs in the PostgreSQL pass only")
    sys.exit(0)

# A server of this test's own: stopping the run's shared one would fail the
# tests running beside this one.
TOP = tempfile.mkdtemp(prefix="correio-pgcrash-")	# removed with the server
PGDIR = os.path.join(TOP, "pg")
SERVER = pg_server.start(PGDIR)
os.environ["CORREIO_TEST_PG"] = os.path.join(PGDIR, "url")
lab = Lab(config_extra="[limits]\nmax_connections_per_addr = 500\nmax_errors = 1000\n")
HOST = lab.host
FIGURES = {}


def cleanup():
    lab.stop()
    pg_server.stop(PGDIR)
    shutil.rmtree(TOP, ignore_errors=True)


def test_smtpd_and_database_crash_under_load():
    records = []
    halts = 0
    t0 = time.time()

    def halt_database(cycle):
        nonlocal halts
        if cycle % 2 == 1:
            pg_server.halt(PGDIR, immediate=True)
            halts += 1
            time.sleep(RNG.uniform(0.2, 1.0))
            pg_server.resume(PGDIR)
            time.sleep(RNG.uniform(1.5, 2.5))     # smtpd reconnects, mail flows again

    kills = smtpd_kill_cycles(lab, CYCLES, "pgcrash", records, RNG, THREADS, LARGE_THREADS, LARGE,
                              during=halt_database)
    lab.start_smtpd()
    d = Dialog(HOST, lab.smtp_port)
    d.expect(220)
    d.expect(250, "NOOP")
    d.close()
    lab.stop_checked(lab.smtpd, "smtpd")

    by_status = {}
    for r in records:
        by_status[r.status] = by_status.get(r.status, 0) + 1
    check(by_status.get("acked", 0) > 0, f"no message was acknowledged at all: {by_status}")
    problems, stored = scan_store_pg(lab.store, lab.dir)
    check(problems == [], "; ".join(problems))
    v = Verdict(records, stored)
    check(v.strangers == [], f"in the store but never sent: {v.strangers[:5]}")
    check(v.problems() == [], "; ".join(v.problems()))
    large_stored = sum(1 for msgs in stored.values() if msgs[0].size >= LARGE[0])
    check(large_stored > 0, "no large message reached the store")
    FIGURES.update(kills=kills, halts=halts, seconds=round(time.time() - t0, 1), **by_status)
    print(f"smtpd: {kills} SIGKILLs, {halts} immediate stops of the database server; messages "
          f"by client view {by_status}, {v.unknown_stored} of the unknown ones stored, "
          f"{len(stored)} stored in all ({large_stored} large)", flush=True)


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


def quit_and_halt(dialog, delay):
    """Send QUIT and stop the database server immediately delay seconds
    later; the reply to QUIT ("" when none came within 15 s)."""
    dialog.send("QUIT\r\n")
    time.sleep(delay)
    pg_server.halt(PGDIR, immediate=True)
    try:
        dialog.s.settimeout(15)
        return dialog.line()
    except (OSError, EOFError):
        return ""
    finally:
        dialog.close()


def test_pop3d_quit_crashes():
    lab.admin("user", "add", "carol", "--password-stdin", stdin="carol-secret-3\n")
    PASSWORDS["carol"] = "carol-secret-3"
    nmsg, nmark = 12, 4
    for i in range(nmsg):
        lab.admin("deliver", "carol", stdin=(f"Subject: p{i}\r\n\r\n" + "x" * 2000 + "\r\n").encode())
    outcomes = {"untouched": 0, "expunged": 0}
    lab.start_pop3d()
    cycles = max(8, CYCLES // 2)
    for cycle in range(cycles):
        if lab.pop3d.poll() is not None:
            lab.start_pop3d()
        before, _ = pop3_mailbox_pg(lab.store, "carol")
        check(len(before) == nmsg, f"mailbox holds {len(before)} messages, not {nmsg}")
        d = pop3_login(lab.pop3_port, "carol")
        uidls = uidl_map(d)
        numbers = RNG.sample(sorted(uidls), nmark)
        marked = {uidls[n] for n in numbers}
        for n in numbers:
            check(d.pop3(f"DELE {n}").startswith("+OK"), "DELE")
        if cycle % 2 == 0:
            got = quit_and_kill(lab.pop3d, d, RNG.uniform(0, 0.01))
        else:
            got = quit_and_halt(d, RNG.uniform(0, 0.01))
            pg_server.resume(PGDIR)
        after, _ = pop3_mailbox_pg(lab.store, "carol")
        outcome, problem = judge_quit(before, after, marked, got)
        check(problem is None, problem)
        outcomes[outcome] += 1
        if outcome == "expunged":
            for i in range(nmark):
                lab.admin("deliver", "carol",
                          stdin=(f"Subject: r{cycle}-{i}\r\n\r\nrefill\r\n").encode())
        # a killed pop3d leaves its session's lock until its connection is
        # seen gone; an administrator's clean-up, as in the SQLite test
        psql(lab.store, "DELETE FROM locks")
    FIGURES.update(pop3_cycles=cycles, **outcomes)
    print(f"pop3d: {cycles} QUITs with pop3d killed or the database stopped: {outcomes}",
          flush=True)


if __name__ == "__main__":
    try:
        run([test_smtpd_and_database_crash_under_load, test_pop3d_quit_crashes])
    finally:
        cleanup()
