#!/usr/bin/env python3
"""soak.py - the crash-consistency soak: 1,000 SIGKILLs of smtpd under load
and 1,000 of pop3d around QUIT (issue 16). Run by hand, not by ./test.sh:

    tests/soak/soak.sh [--smtp-cycles 1000] [--pop3-cycles 1000] [--seed S]
                       [--senders 8] [--large-every 10] [--check-every 10]
                       [--keep] [--bin BUILD-DIR]

It does what tests/integration/test_crash_consistency.py does, for longer,
with the same code (tests/integration/crashload.py). Exit status 0 only when
every invariant held; a summary table is printed either way.

smtpd phase, each cycle: start smtpd on the same store (it reports ready on
$NOTIFY_SOCKET), --senders threads send messages (4 KB, and 1 MB - past the
64 KiB body spool - for 1 in --large-every) with a unique token and the
SHA-256 of their text, SIGKILL smtpd 20-800 ms after it is ready. Every
--check-every cycles, and at the end, with smtpd dead, the store is read:
every message that got 250 is there once, whole, in its recipients'
mailboxes; a message whose final dot got no reply is there once or not at
all; nothing refused or cut before the dot is there; integrity_check ok, no
orphan. The messages read are then deleted (as an administrator would), so
the store stays small; a token found again at a later check counts as
duplicated.

pop3d phase, each cycle: start pop3d, log in as carol (12 messages; the
lock of the pop3d killed in the cycle before must be taken over at once),
DELE 4 of them, send QUIT and SIGKILL pop3d at a random moment around it:
1 in 5 before QUIT is sent, 1 in 10 2-10 w after it, the others 0.5-1.5 w
after it, where w starts at the QUIT time measured before the phase and
follows the moment of the commit (longer after a kill that came before it,
shorter after one that came after it).
The mailbox must have lost exactly the 4 or nothing, nothing if the kill
came first, the 4 if QUIT got +OK; the 4 are then topped up over SMTP
(smtpd runs, unkilled, during this phase). integrity_check every
--check-every cycles and at the end.

Both phases: a daemon that ends before its SIGKILL (a crash, a sanitizer's
abort) fails the run, and so does a report of ASan/UBSan/LeakSanitizer in
its log (run against a sanitizer build with --bin build-asan).

Daemons and the temporary directory go at exit, also on Ctrl-C; with --keep
the directory stays when an invariant failed (its path is printed).
"""
import argparse
import os
import random
import shutil
import signal
import sqlite3
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CAROL_PW = "carol-secret-3"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--smtp-cycles", type=int, default=1000, help="SIGKILLs of smtpd (1000)")
    p.add_argument("--pop3-cycles", type=int, default=1000, help="SIGKILLs of pop3d (1000)")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the time)")
    p.add_argument("--senders", type=int, default=8, help="concurrent SMTP senders (8)")
    p.add_argument("--large-every", type=int, default=10,
                   help="1 message in N is 1 MB, the others 4 KB (10)")
    p.add_argument("--check-every", type=int, default=10,
                   help="read and check the store every N cycles (10)")
    p.add_argument("--keep", action="store_true", help="keep the store and logs on failure")
    p.add_argument("--bin", default=None,
                   help="the build directory (default $CORREIO_BIN, else ./build)")
    a = p.parse_args()
    if a.seed is None:
        a.seed = int(time.time())
    for name in ("smtp_cycles", "pop3_cycles"):
        if getattr(a, name) < 0:
            p.error(f"--{name.replace('_', '-')} must be >= 0")
    for name in ("senders", "large_every", "check_every"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return a


ARGS = parse_args()
if ARGS.bin:
    os.environ["CORREIO_BIN"] = os.path.abspath(ARGS.bin)
elif not os.environ.get("CORREIO_BIN"):
    os.environ["CORREIO_BIN"] = os.path.join(HERE, "..", "..", "build")
# Everything lives under one private directory that this script removes
# itself (or keeps), so the harness is told to keep its own.
TOP = tempfile.mkdtemp(prefix="correio-soak-")
tempfile.tempdir = TOP
os.environ["CORREIO_KEEP"] = "1"
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from correio_test import Lab, Dialog, PASSWORDS  # noqa: E402
from crashload import (Verdict, judge_quit, message_text, pop3_mailbox,  # noqa: E402
                       quit_and_kill, scan_store, send_loop, Record)

LARGE_SIZE = 1 << 20
SMALL_SIZE = 4096
KILL_WINDOW = (0.02, 0.8)       # seconds after smtpd is ready
NMSG, NMARK = 12, 4             # carol's mailbox, messages marked per session

FAILURES = []


class LogWatch:
    """Reports what ASan/UBSan/LeakSanitizer wrote into a daemon's log since
    the last look (the logs of all its runs are one file)."""

    def __init__(self, lab, name):
        self.lab, self.name, self.seen = lab, name, 0

    def news(self):
        path = os.path.join(self.lab.dir, self.name + ".log")
        size = os.path.getsize(path) if os.path.exists(path) else 0
        report = self.lab.sanitizer_report(self.name, since=self.seen)
        self.seen = size
        return report


def killed(phase, cycle, proc):
    """proc was SIGKILLed by the soak: any other end (a crash, an abort by a
    sanitizer, an exit) before the kill is a failure."""
    if proc.returncode != -signal.SIGKILL:
        fail(phase, cycle, f"{os.path.basename(proc.args[0])} ended on its own before the "
                           f"kill: status {proc.returncode}")


def fail(phase, cycle, what):
    FAILURES.append(f"{phase} cycle {cycle}: {what}")
    print(f"FAIL {phase} cycle {cycle}: {what}", flush=True)


def payload(rng):
    """1 in --large-every: 1 MiB (a random block repeated; 1 MiB is not a
    multiple of the line length); the others 4 KiB of random hex."""
    if rng.randrange(ARGS.large_every) == 0:
        block = rng.randbytes(500).hex()
        return (block * (LARGE_SIZE // len(block) + 1))[:LARGE_SIZE]
    return rng.randbytes(SMALL_SIZE // 2).hex()


def keep_evidence(lab, phase, cycle):
    """Copy the store (database, WAL) as it is at the first failure."""
    dst = os.path.join(TOP, f"evidence-{phase}-{cycle}")
    if os.path.exists(dst):
        return
    os.makedirs(dst)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(lab.store + suffix):
            shutil.copy2(lab.store + suffix, dst)
    print(f"  store at the failure copied to {dst}", flush=True)


class SmtpTotals:
    def __init__(self):
        self.cycles = self.checks = self.integrity_ok = 0
        self.by_status = {}
        self.found_acked = self.unknown_stored = self.unknown_absent = 0
        self.large_sent = self.large_found = 0
        self.lost = self.duplicated = self.damaged = self.other = 0
        self.seconds = 0.0
        self.cycle_times = []


def sanitizer_check(watches, phase, cycle):
    for w in watches:
        report = w.news()
        if report:
            fail(phase, cycle, f"{w.name} sanitizer report:\n{report}")


def smtp_check(lab, pending, seen, judged, tot, cycle):
    """Read the store (smtpd dead), judge the records of the cycles since the
    last check, then delete what was read. seen: the tokens found (and
    deleted) by earlier checks; judged: the tokens of their records."""
    problems, stored = scan_store(lab.store)
    tot.checks += 1
    if not any(p.startswith("integrity_check") for p in problems):
        tot.integrity_ok += 1
    v = Verdict(pending, stored)
    for k, n in v.by_status.items():
        tot.by_status[k] = tot.by_status.get(k, 0) + n
    tot.found_acked += v.found_acked
    tot.unknown_stored += v.unknown_stored
    tot.unknown_absent += v.unknown_absent
    tot.large_sent += sum(1 for r in pending if r.size == LARGE_SIZE and r.status != "partial")
    tot.large_found += sum(1 for msgs in stored.values() if msgs[0].size == LARGE_SIZE)
    again = [t for t in v.strangers if t in seen]
    late = [t for t in v.strangers if t not in seen and t in judged]
    never = [t for t in v.strangers if t not in judged]
    tot.lost += len(v.lost)
    tot.duplicated += len(v.duplicated) + len(again)
    tot.damaged += len(v.damaged)
    tot.other += len(v.misrouted) + len(v.forbidden) + len(late) + len(never)
    bad = problems + v.problems()
    if again:
        bad.append(f"{len(again)} found again after an earlier check had deleted them: {again[:5]}")
    if late:
        bad.append(f"{len(late)} absent at the check after they were sent, there now: {late[:5]}")
    if never:
        bad.append(f"{len(never)} in the store but never sent: {never[:5]}")
    if bad:
        for b in bad:
            fail("smtpd", cycle, b)
        keep_evidence(lab, "smtpd", cycle)
    seen.update(stored)
    judged.update(r.token for r in pending)
    ids = [m.mid for msgs in stored.values() for m in msgs]
    if ids:
        db = sqlite3.connect(lab.store, timeout=30)
        with db:
            db.executemany("DELETE FROM mailbox WHERE message = ?", [(i,) for i in ids])
            db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
        db.close()


def smtp_phase(lab, rng, tot, watches):
    pending, seen, judged = [], set(), set()
    stops, threads = [], []
    try:
        for cycle in range(ARGS.smtp_cycles):
            t0 = time.monotonic()
            port = lab.start_smtpd()["inbound"]
            proc = lab.smtpd
            stop = threading.Event()
            stops.append(stop)
            threads = [threading.Thread(
                target=send_loop, daemon=True,
                args=(lab.host, port, f"soak-{cycle}-{t}",
                      random.Random(f"{ARGS.seed}/{cycle}/{t}"), pending, stop, payload),
                kwargs={"pipelined": t % 2 == 1}) for t in range(ARGS.senders)]
            for t in threads:
                t.start()
            time.sleep(rng.uniform(*KILL_WINDOW))
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            lab.procs.remove(proc)
            killed("smtpd", cycle, proc)
            stop.set()
            for t in threads:
                t.join(timeout=30)
                if t.is_alive():
                    fail("smtpd", cycle, "a sender hangs 30 s after the kill")
            threads = []
            tot.cycles += 1
            if (cycle + 1) % ARGS.check_every == 0 or cycle + 1 == ARGS.smtp_cycles:
                smtp_check(lab, pending, seen, judged, tot, cycle)
                sanitizer_check(watches, "smtpd", cycle)
                pending = []
            tot.cycle_times.append(time.monotonic() - t0)
            if (cycle + 1) % 100 == 0:
                print(f"smtpd: {cycle + 1} cycles, {tot.by_status.get('acked', 0)} acked, "
                      f"{tot.lost} lost, {tot.duplicated} duplicated, "
                      f"{statistics.mean(tot.cycle_times[-100:]):.2f} s/cycle", flush=True)
        # One last clean start: the store opens and the daemon serves.
        if ARGS.smtp_cycles:
            lab.start_smtpd()
            d = Dialog(lab.host, lab.smtp_port)
            d.expect(220)
            d.expect(250, "NOOP")
            d.close()
            lab.smtpd.send_signal(signal.SIGTERM)
            if lab.smtpd.wait(timeout=15) != 0:
                fail("smtpd", ARGS.smtp_cycles, f"exit status {lab.smtpd.returncode} on SIGTERM")
            lab.procs.remove(lab.smtpd)
            sanitizer_check(watches, "smtpd", ARGS.smtp_cycles)
            problems, stored = scan_store(lab.store)
            for p in problems:
                fail("smtpd", ARGS.smtp_cycles, f"after the clean restart: {p}")
            if stored:
                fail("smtpd", ARGS.smtp_cycles, f"{len(stored)} messages appeared after the last check")
    finally:
        for s in stops:
            s.set()


class Pop3Totals:
    def __init__(self):
        self.cycles = self.checks = self.integrity_ok = 0
        self.quit_ok = self.quit_err = 0
        self.noreply_expunged = self.noreply_untouched = 0
        self.killed_first = self.first_but_gone = 0
        self.partial = self.lost_unmarked = self.ok_not_expunged = 0
        self.takeover_ok = self.takeover_failed = 0
        self.login_ms = []
        self.quit_ms = 0.0
        self.windows = []       # the kill window w of each cycle
        self.seconds = 0.0


def smtp_top_up(lab, n, tag):
    """Deliver n messages to carol through the running smtpd; each must get 250."""
    d = Dialog(lab.host, lab.smtp_port, timeout=30)
    d.expect(220)
    d.expect(250, "EHLO soak.client")
    for i in range(n):
        p = random.Random(f"{tag}-{i}").randbytes(1000).hex()
        r = Record(f"{tag}-{i}", ["carol"], p)
        d.smtp_start_data("load@example.org", ["carol@lab.test"])
        d.send(message_text(r.token, r.rcpts, p, r.sha) + b".\r\n")
        d.expect(250)
    d.expect(221, "QUIT")
    d.close()


def pop3_login(lab):
    """Log in as carol: (dialog, PASS reply, seconds the login took)."""
    t0 = time.monotonic()
    d = Dialog(lab.host, lab.pop3_port, timeout=30)
    d.pop3()
    d.pop3("USER carol")
    reply = d.pop3(f"PASS {CAROL_PW}")
    return d, reply, time.monotonic() - t0


def uidl_map(d):
    if not d.pop3("UIDL").startswith("+OK"):
        raise RuntimeError("UIDL refused")
    return {int(l.split()[0]): l.split()[1] for l in d.pop3_multi()}


def pop3_calibrate(lab, rng):
    """The time from QUIT to +OK for a session that deleted NMARK messages,
    median of 8 clean sessions (each topped up after)."""
    times = []
    for i in range(8):
        lab.start_pop3d()
        d, reply, _ = pop3_login(lab)
        if not reply.startswith("+OK"):
            raise RuntimeError(f"calibration login: {reply}")
        uidls = uidl_map(d)
        for n in rng.sample(sorted(uidls), NMARK):
            d.pop3(f"DELE {n}")
        t0 = time.perf_counter()
        reply = d.pop3("QUIT")
        times.append(time.perf_counter() - t0)
        d.close()
        lab.pop3d.send_signal(signal.SIGTERM)
        lab.pop3d.wait(timeout=15)
        lab.procs.remove(lab.pop3d)
        if not reply.startswith("+OK"):
            raise RuntimeError(f"calibration QUIT: {reply}")
        smtp_top_up(lab, NMARK, f"cal-{i}")
    return statistics.median(times)


def pop3_phase(lab, rng, tot, watches):
    lab.start_smtpd()           # for the top-ups; never killed in this phase
    smtp_top_up(lab, NMSG, "pop3-initial")
    tot.quit_ms = pop3_calibrate(lab, rng) * 1000
    # w follows the moment of the commit: a kill that came too early (nothing
    # deleted) makes it longer, one that came too late shorter, so most kills
    # land within a factor of 1.5 of the moment the expunge commits.
    w = tot.quit_ms / 1000
    print(f"pop3d: QUIT with {NMARK} deletions takes {tot.quit_ms:.2f} ms (median of 8)",
          flush=True)
    for cycle in range(ARGS.pop3_cycles):
        t0 = time.monotonic()
        check_now = (cycle + 1) % ARGS.check_every == 0 or cycle + 1 == ARGS.pop3_cycles
        lab.start_pop3d()
        before, _ = pop3_mailbox(lab.store, "carol", integrity=False)
        if len(before) != NMSG:
            fail("pop3d", cycle, f"the mailbox holds {len(before)} messages, not {NMSG}")
            keep_evidence(lab, "pop3d", cycle)
            break
        d, reply, took = pop3_login(lab)
        tot.login_ms.append(took * 1000)
        if cycle > 0:
            if reply.startswith("+OK"):
                tot.takeover_ok += 1
            else:
                tot.takeover_failed += 1
                fail("pop3d", cycle, f"the lock of the killed pop3d was not taken over: {reply}")
        if not reply.startswith("+OK"):
            keep_evidence(lab, "pop3d", cycle)
            break
        uidls = uidl_map(d)
        numbers = rng.sample(sorted(uidls), NMARK)
        marked = [uidls[n] for n in numbers]
        for n in numbers:
            r = d.pop3(f"DELE {n}")
            if not r.startswith("+OK"):
                raise RuntimeError(f"DELE {n}: {r}")
        # 1 in 5 killed before QUIT is sent, 1 in 10 well after (2-10 w), the
        # others around the commit (0.5-1.5 w).
        kind = rng.randrange(10)
        if kind < 2:
            delay = -rng.uniform(0, 0.001)
        elif kind == 2:
            delay = w * rng.uniform(2, 10)
        else:
            delay = w * rng.uniform(0.5, 1.5)
        got = quit_and_kill(lab.pop3d, d, delay)
        tot.windows.append(w)
        lab.procs.remove(lab.pop3d)
        killed("pop3d", cycle, lab.pop3d)
        after, integrity = pop3_mailbox(lab.store, "carol", integrity=check_now)
        outcome, problem = judge_quit(before, after, marked, got)
        if delay < 0:
            tot.killed_first += 1
            if outcome != "untouched" and problem is None:
                tot.first_but_gone += 1
                problem = "killed before QUIT was sent, yet the messages are gone"
        if got.startswith("+OK"):
            tot.quit_ok += 1
        elif got:
            tot.quit_err += 1
        elif outcome == "expunged":
            tot.noreply_expunged += 1
        elif outcome == "untouched":
            tot.noreply_untouched += 1
        if outcome == "partial":
            tot.partial += 1
            if "not marked" in (problem or ""):
                tot.lost_unmarked += 1
        elif problem and got.startswith("+OK"):
            tot.ok_not_expunged += 1
        if kind > 2:
            w = w * 1.1 if outcome == "untouched" else w / 1.1
        if problem:
            fail("pop3d", cycle, f"{problem} (delay {delay * 1000:.3f} ms, reply {got!r})")
            keep_evidence(lab, "pop3d", cycle)
            break
        if outcome == "expunged":
            smtp_top_up(lab, NMARK, f"pop3-{cycle}")
        if check_now:
            sanitizer_check(watches, "pop3d", cycle)
            tot.checks += 1
            problems, _ = scan_store(lab.store)
            if integrity == "ok" and not any(p.startswith("integrity") for p in problems):
                tot.integrity_ok += 1
            for p in problems:
                fail("pop3d", cycle, p)
        tot.cycles += 1
        if (cycle + 1) % 100 == 0:
            print(f"pop3d: {cycle + 1} cycles, {tot.quit_ok} +OK, "
                  f"{tot.noreply_expunged + tot.noreply_untouched} no reply, {tot.partial} partial, "
                  f"{time.monotonic() - t0:.2f} s last cycle", flush=True)
    lab.smtpd.send_signal(signal.SIGTERM)
    if lab.smtpd.wait(timeout=15) != 0:
        fail("pop3d", tot.cycles, f"smtpd exit status {lab.smtpd.returncode} on SIGTERM")
    sanitizer_check(watches, "pop3d", tot.cycles)


def summary(st, pt, wall, interrupted):
    acked = st.by_status.get("acked", 0)
    unknown = st.by_status.get("unknown", 0)
    sent = acked + unknown + st.by_status.get("refused", 0)
    rows = [
        ("seed", str(ARGS.seed)),
        ("senders / 1 MB every / check every", f"{ARGS.senders} / {ARGS.large_every} / {ARGS.check_every}"),
        ("", ""),
        ("smtpd SIGKILL cycles", str(st.cycles)),
        ("messages sent (final dot)", str(sent)),
        ("  acknowledged (250)", str(acked)),
        ("  refused", str(st.by_status.get("refused", 0))),
        ("  unknown (no reply to the dot)", f"{unknown}: {st.unknown_stored} stored, "
                                            f"{st.unknown_absent} absent"),
        ("  cut before the dot", str(st.by_status.get("partial", 0))),
        ("  1 MB ones sent / stored", f"{st.large_sent} / {st.large_found}"),
        ("acknowledged found", str(st.found_acked)),
        ("lost (must be 0)", str(st.lost)),
        ("duplicated (must be 0)", str(st.duplicated)),
        ("damaged (must be 0)", str(st.damaged)),
        ("other violations (must be 0)", str(st.other)),
        ("integrity checks ok", f"{st.integrity_ok} / {st.checks}"),
        ("smtpd phase time", f"{st.seconds:.0f} s ({st.seconds / max(st.cycles, 1):.2f} s/cycle)"),
        ("", ""),
        ("pop3d SIGKILL cycles", str(pt.cycles)),
        ("  killed before QUIT was sent", str(pt.killed_first)),
        ("  ... yet messages gone (must be 0)", str(pt.first_but_gone)),
        ("QUIT answered +OK (all gone)", str(pt.quit_ok)),
        ("QUIT no reply: all gone / none gone", f"{pt.noreply_expunged} / {pt.noreply_untouched}"),
        ("QUIT answered -ERR", str(pt.quit_err)),
        ("partial expunge (must be 0)", str(pt.partial)),
        ("unmarked message lost (must be 0)", str(pt.lost_unmarked)),
        ("+OK but not expunged (must be 0)", str(pt.ok_not_expunged)),
        ("lock taken over at once", f"{pt.takeover_ok} / {pt.takeover_ok + pt.takeover_failed}"
                                    + (f" (login median {statistics.median(pt.login_ms):.1f} ms,"
                                       f" max {max(pt.login_ms):.1f} ms)" if pt.login_ms else "")),
        ("QUIT time (calibration) / kill at", f"{pt.quit_ms:.2f} ms / w median "
         + (f"{statistics.median(pt.windows) * 1000:.2f} ms (range "
            f"{min(pt.windows) * 1000:.2f}-{max(pt.windows) * 1000:.2f})" if pt.windows else "-")),
        ("integrity checks ok", f"{pt.integrity_ok} / {pt.checks}"),
        ("pop3d phase time", f"{pt.seconds:.0f} s ({pt.seconds / max(pt.cycles, 1):.2f} s/cycle)"),
        ("", ""),
        ("wall time", f"{wall:.0f} s"),
        ("result", "INTERRUPTED" if interrupted else ("FAIL" if FAILURES else "PASS")),
    ]
    width = max(len(k) for k, _ in rows)
    print("\n== soak summary")
    for k, v in rows:
        print(f"{k:<{width}}  {v}" if k else "")
    for f in FAILURES[:20]:
        print("  " + f)
    sys.stdout.flush()


def on_term(sig, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with it ignored
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGHUP, on_term)
    rng = random.Random(ARGS.seed)
    st, pt = SmtpTotals(), Pop3Totals()
    t0 = time.monotonic()
    interrupted = False
    lab = None
    print(f"soak: seed {ARGS.seed}, {ARGS.smtp_cycles} smtpd cycles, {ARGS.pop3_cycles} pop3d "
          f"cycles, binaries {os.environ['CORREIO_BIN']}, in {TOP}", flush=True)
    try:
        lab = Lab(users=dict(PASSWORDS, carol=CAROL_PW), notify=True,
                  config_extra="[limits]\nmax_connections_per_addr = 500\nmax_errors = 1000\n")
        t = time.monotonic()
        watches = [LogWatch(lab, "smtpd"), LogWatch(lab, "pop3d")]
        smtp_phase(lab, rng, st, watches)
        st.seconds = time.monotonic() - t
        t = time.monotonic()
        if ARGS.pop3_cycles:
            pop3_phase(lab, rng, pt, watches)
        pt.seconds = time.monotonic() - t
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted", flush=True)
    except Exception as e:      # noqa: BLE001 - a harness failure is a failed run
        import traceback
        traceback.print_exc()
        FAILURES.append(f"the soak itself failed: {e}")
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)    # a second Ctrl-C must not skip the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if lab is not None:
            lab.stop_daemons()
        summary(st, pt, time.monotonic() - t0, interrupted)
        if FAILURES and ARGS.keep:
            print(f"kept: {TOP} (store, daemon logs, evidence-* copies)")
        else:
            shutil.rmtree(TOP, ignore_errors=True)
    return 1 if FAILURES or interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
