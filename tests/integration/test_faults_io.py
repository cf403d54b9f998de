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
from correio_test import BIN, check, run  # noqa: E402
import faults  # noqa: E402

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
        for (body,) in db.execute("SELECT body FROM messages"):
            text = bytes(body)
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


try:
    run([test_io_errors_every_n])
finally:
    lab.stop()
    shutil.rmtree(STORE_DIR, ignore_errors=True)
    time.sleep(0)
