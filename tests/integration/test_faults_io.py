#!/usr/bin/env python3
"""Injected I/O errors at every step of one delivery (issue 16).

smtpd runs with faultshim (LD_PRELOAD, tests/integration/faultshim.c): for
N = 1, 2, ... the Nth write, pwrite, fsync or fdatasync on a file of the
store's directory (the database, its WAL, the spool) fails, with EIO and
then with ENOSPC, while one message is delivered: a small one (kept in
memory) and one of 100 KB (spooled to a file and copied into the store).
N goes up until a delivery runs without reaching the Nth call. For every N:
  - the reply is 250 only when the message is in the store, whole and once;
    otherwise it is 451 4.3.0 (EIO) or 452 4.3.1 (ENOSPC), never a 5xx;
  - PRAGMA integrity_check is "ok" and smtpd is still up.
At the end smtpd is killed (SIGKILL) and started again, so SQLite recovers
its WAL from the disk: every acknowledged message is still there, none is
there twice, and the store passes integrity_check again.

The same for pop3d at QUIT with two messages marked deleted (the expunge
and the release of the mailbox lock), with EIO and ENOSPC: +OK means both
are gone, -ERR [SYS/TEMP] means both are still there, integrity_check ok.
"""
import errno
import faulthandler
import os
import shutil
import signal
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import BIN, Dialog, PASSWORDS, check, run  # noqa: E402
import faults  # noqa: E402
from storebodies import message_bodies  # noqa: E402

faulthandler.dump_traceback_later(250, exit=True)

SHIM = os.path.join(BIN, "tests", "libcorreio_faultshim.so")
N_MAX = 400             # a delivery makes far fewer calls than this
STORE_DIR = tempfile.mkdtemp(prefix="correio-faults-io-")
lab = faults.lab_on(STORE_DIR)
with open(lab.config) as f:
    conf = f.read()
with open(lab.config, "w") as f:     # the session log would add writes of its own
    f.write(conf.replace("transcripts = yes", "transcripts = no"))
ENV = {"LD_PRELOAD": SHIM, "CORREIO_FAULT_DIR": STORE_DIR,
       "ASAN_OPTIONS": os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"}
ARM = os.path.join(STORE_DIR, "fault-arm")
FIRED = os.path.join(STORE_DIR, "fault-fired")
FIGURES = {}


def arm(n, err):
    tmp = ARM + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{n} {err}\n")
    os.rename(tmp, ARM)         # a new inode: the shim counts from 0 again


def disarm():
    for p in (ARM, FIRED):
        if os.path.exists(p):
            os.unlink(p)


def bodies():
    """token -> number of messages holding it, read with Python's sqlite3."""
    db = sqlite3.connect(f"file:{lab.store}?mode=ro", uri=True, timeout=10)
    try:
        found = {}
        for _, _, text in message_bodies(db, lab.store):
            text = text or b""
            at = text.find(b"token-")
            if at >= 0:
                tok = text[at:text.index(b"\r\n", at)].decode()
                found[tok] = found.get(tok, 0) + (1 if text.endswith(b"end-of-" + tok.encode()
                                                                  + b"\r\n") else 1000)
        return found
    finally:
        db.close()


def deliver(token, large):
    d = lab.smtp_dialog()
    d.expect(250, "EHLO client.test")
    d.smtp_start_data()
    filler = ("x" * 998 + "\r\n") * (100 if large else 1)
    d.send(f"Subject: {token}\r\n\r\n{token}\r\n{filler}end-of-{token}\r\n.\r\n")
    code, lines = d.smtp_reply()
    d.send("QUIT\r\n")
    d.close()
    return code, " ".join(lines)


def test_io_errors_every_n():
    lab.start_smtpd(env=ENV)
    acked, refused = set(), set()
    i = 0
    for err, want in ((errno.EIO, (451, "4.3.0")), (errno.ENOSPC, (452, "4.3.1"))):
        for large in (False, True):
            n = 0
            while True:
                n += 1
                check(n < N_MAX, f"a delivery made {N_MAX} calls or more")
                i += 1
                token = f"token-{i}"
                disarm()
                arm(n, err)
                code, text = deliver(token, large)
                fired = os.path.exists(FIRED)
                disarm()
                faults.alive(lab)
                found = bodies()
                if code == 250:
                    acked.add(token)
                    check(found.get(token) == 1, f"N={n} errno={err}: 250 for {token} but "
                          f"the store has {found.get(token)}")
                else:
                    refused.add(token)
                    check(fired, f"N={n}: {code} {text} with no fault injected")
                    check((code, want[1] in text) == (want[0], True) or
                          (code == 451 and "4.3.0" in text),
                          f"N={n} errno={err}: {code} {text}")
                    check(token not in found, f"N={n}: refused {token} is in the store")
                out = lab.sql("PRAGMA integrity_check").decode().strip()
                check(out == "ok", f"N={n} errno={err}: integrity_check {out}")
                if not fired:
                    check(code == 250, f"no fault and {code} {text}")
                    break
            FIGURES[(errno.errorcode[err], "100 KB" if large else "small")] = n - 1
    print("calls per delivery (faults injected at each):", FIGURES, flush=True)
    check(all(v >= 3 for v in FIGURES.values()), f"too few calls seen: {FIGURES}")

    # SIGKILL and restart: SQLite recovers the WAL from what is on disk.
    lab.smtpd.send_signal(signal.SIGKILL)
    lab.smtpd.wait(timeout=10)
    lab.procs.remove(lab.smtpd)
    lab.start_smtpd()
    found = bodies()
    lost = [t for t in acked if found.get(t) != 1]
    check(lost == [], f"acknowledged and lost or damaged after the restart: {lost}")
    back = [t for t in refused if t in found]
    print(f"{len(acked)} acknowledged, {len(refused)} refused; after the restart "
          f"{len(back)} refused message(s) came back from the WAL", flush=True)
    out = lab.sql("PRAGMA integrity_check").decode().strip()
    check(out == "ok", f"integrity_check after the restart: {out}")
    code, text = deliver("token-final", True)
    check(code == 250, f"after the restart: {text}")
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.procs.remove(lab.smtpd)


def pop3_login(user="bob"):
    """A POP3 session logged in as user (pop3d restarted when an earlier
    fault left the mailbox lock behind: a failed unlock)."""
    for _ in range(2):
        p = Dialog(lab.host, lab.pop3_port)
        p.pop3()
        p.pop3(f"USER {user}")
        r = p.pop3(f"PASS {PASSWORDS[user]}")
        if r.startswith("+OK"):
            return p
        p.close()
        check("[IN-USE]" in r, f"POP3 login: {r}")
        lab.stop_checked(lab.pop3d, "pop3d")
        lab.procs.remove(lab.pop3d)
        lab.start_pop3d(env=ENV)
    raise AssertionError("mailbox still in use after a restart of pop3d")


def mailbox(user="bob"):
    db = sqlite3.connect(f"file:{lab.store}?mode=ro", uri=True, timeout=10)
    try:
        return {r[0] for r in db.execute("SELECT m.id FROM mailbox m JOIN accounts a"
                                         " ON a.id = m.account WHERE a.name = ?", (user,))}
    finally:
        db.close()


def test_io_errors_pop3_expunge():
    lab.start_smtpd()
    lab.start_pop3d(env=ENV)
    tally = {"+OK": 0, "-ERR": 0}
    for err in (errno.EIO, errno.ENOSPC):
        n = 0
        while True:
            n += 1
            check(n < N_MAX, f"an expunge made {N_MAX} calls or more")
            for k in range(2):
                code, text = deliver(f"token-pop-{n}-{k}", False)
                check(code == 250, f"delivery for the expunge: {text}")
            p = pop3_login()
            before = mailbox()
            check(len(before) >= 2, f"mailbox: {before}")
            disarm()
            arm(n, err)
            check(p.pop3("DELE 1").startswith("+OK"), "DELE 1")
            check(p.pop3("DELE 2").startswith("+OK"), "DELE 2")
            r = p.pop3("QUIT")
            p.close()
            fired = os.path.exists(FIRED)
            disarm()
            faults.alive(lab)
            after = mailbox()
            gone = before - after
            tally["+OK" if r.startswith("+OK") else "-ERR"] += 1
            if r.startswith("+OK"):
                check(len(gone) == 2 and after <= before, f"N={n}: +OK and {len(gone)} deleted")
            else:
                check(r.startswith("-ERR [SYS/TEMP]"), f"N={n}: QUIT {r}")
                check(fired, f"N={n}: {r} with no fault injected")
                check(after == before, f"N={n}: -ERR and {len(gone)} deleted")
            out = lab.sql("PRAGMA integrity_check").decode().strip()
            check(out == "ok", f"N={n} errno={err}: integrity_check {out}")
            if not fired:
                check(r.startswith("+OK"), f"no fault and {r}")
                break
        FIGURES[(errno.errorcode[err], "POP3 expunge of 2")] = n - 1
    print("calls per expunge:", {k: v for k, v in FIGURES.items() if "POP3" in k[1]},
          "QUIT answers:", tally, flush=True)
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


try:
    run([test_io_errors_every_n, test_io_errors_pop3_expunge])
finally:
    lab.stop()
    shutil.rmtree(STORE_DIR, ignore_errors=True)
    time.sleep(0)
