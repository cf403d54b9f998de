#!/usr/bin/env python3
"""A full disk under the running daemons (issue 16).

The store lives on an 8 MiB tmpfs; a filler file uses up the rest. Then:
  - MAIL is answered 452 4.3.1 (less than the minimum free space);
  - a transaction begun before the disk filled gets 452 4.3.1 at the final
    dot, both for a body kept in memory (SQLite answers SQLITE_FULL at the
    commit) and for one spooled to a file (the spool write gives ENOSPC);
  - nothing is half-stored: counts unchanged, integrity_check ok;
  - pop3d, logged in before, still answers LIST and RETR; QUIT with
    deletions succeeds by releasing the reserve beside the store; with the
    reserve used up, QUIT with deletions answers -ERR [SYS/TEMP] and deletes
    nothing;
  - a failed QUIT cannot release its mailbox lock either (a write): a login
    of the same account while the disk is full gets -ERR [SYS/TEMP], not
    [IN-USE]; once there is room it logs in at once (its own dead session's
    lock is released first), and a lock nobody asks for is released by
    pop3d's retry, with no restart and no pop3_lock_ttl wait;
  - both daemons stay up, and once the filler is removed mail flows again
    and deletions work, without a restart.
"""
import faulthandler
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Dialog, PASSWORDS, check, run  # noqa: E402
import faults  # noqa: E402

faulthandler.dump_traceback_later(200, exit=True)

MNT = faults.mount_tmpfs("8m")
lab = faults.lab_on(MNT)
lab.start_smtpd()
lab.start_pop3d()


def smtp_ok(body="hello\r\n", rcpt="bob@lab.test"):
    d = lab.smtp_dialog()
    d.send("EHLO client.test\r\n")
    d.expect(250)
    d.smtp_start_data(rcpts=(rcpt,))
    d.send(f"Subject: t\r\n\r\n{body}.\r\n")
    code, lines = d.smtp_reply()
    d.send("QUIT\r\n")
    d.close()
    return code, " ".join(lines)


def reply(d):
    code, lines = d.smtp_reply()
    return code, " ".join(lines)


def truncate_wal():
    """Give the WAL's space back to the file system (it keeps its high-water
    size otherwise, and small commits would still fit in it)."""
    out = lab.sql("PRAGMA wal_checkpoint(TRUNCATE)").decode().strip()
    check(out.startswith("0|"), f"checkpoint: {out}")


def test_disk_full():
    for rcpt in ("bob@lab.test", "bob@lab.test", "bob@lab.test", "ana@lab.test"):
        code, _text = smtp_ok(rcpt=rcpt)
        check(code == 250, f"before the fill: {code}")
    before = faults.counts(lab)

    # A POP3 session logged in before the disk fills.
    p = Dialog(lab.host, lab.pop3_port)
    check(p.pop3().startswith("+OK"), "pop3 greeting")
    check(p.pop3("USER bob").startswith("+OK"), "USER")
    check(p.pop3(f"PASS {PASSWORDS['bob']}").startswith("+OK"), "PASS")

    # Two SMTP transactions begun while there is room.
    early = []
    for _ in range(2):
        d = lab.smtp_dialog()
        d.send("EHLO client.test\r\n")
        d.expect(250)
        d.smtp_start_data()
        early.append(d)

    truncate_wal()
    filler = faults.fill(MNT)

    # MAIL on a full disk.
    d = lab.smtp_dialog()
    d.send("EHLO client.test\r\nMAIL FROM:<ana@lab.test>\r\n")
    d.expect(250)
    code, text = reply(d)
    check(code == 452 and "4.3.1" in text, f"MAIL on a full disk: {code} {text}")
    d.send("QUIT\r\n")
    d.close()

    # The final dot: a body in memory (commit: SQLITE_FULL) ...
    early[0].send("Subject: small\r\n\r\n" + "x" * 70 + "\r\n" * 1 + ("y" * 998 + "\r\n") * 20
                  + ".\r\n")
    code, text = reply(early[0])
    check(code == 452 and "4.3.1" in text, f"final dot, body in memory: {code} {text}")
    # ... and a body spooled to a file (ENOSPC).
    early[1].send("Subject: big\r\n\r\n" + ("z" * 998 + "\r\n") * 300 + ".\r\n")
    code, text = reply(early[1])
    check(code == 452 and "4.3.1" in text, f"final dot, spooled body: {code} {text}")
    for d in early:
        d.send("NOOP\r\n")
        d.expect(250)
        d.close()

    faults.alive(lab)
    faults.store_ok(lab)
    check(faults.counts(lab) == before, f"counts changed: {before} -> {faults.counts(lab)}")

    # pop3d on a full disk: reads work, and the first deletion is made
    # possible by the reserve, which it releases.
    reserve = lab.store + ".reserve"
    check(os.path.exists(reserve), "pop3d made no reserve beside the store")
    check(p.pop3("LIST").startswith("+OK"), "LIST")
    p.pop3_multi()
    check(p.pop3("RETR 1").startswith("+OK"), "RETR on a full disk")
    msg = p.pop3_multi()
    check("hello" in msg, f"RETR text: {msg}")
    check(p.pop3("DELE 1").startswith("+OK"), "DELE")
    r = p.pop3("QUIT")
    check(r.startswith("+OK") and "1 message deleted" in r, f"QUIT with the reserve: {r}")
    p.close()
    check(not os.path.exists(reserve), "the reserve was not used")
    check(lab.log_has("pop3d", "event=reserve-released"), "pop3d log: reserve-released")
    after_dele = faults.counts(lab)
    check(after_dele[1] == before[1] - 1, f"reserve delete: {before} -> {after_dele}")
    faults.store_ok(lab)

    # The reserve used up and the disk full again: QUIT with deletions
    # answers -ERR [SYS/TEMP] and deletes nothing (bob and ana).
    sessions = {}
    for user in ("bob", "ana"):
        p = Dialog(lab.host, lab.pop3_port)
        p.pop3()
        p.pop3(f"USER {user}")
        check(p.pop3(f"PASS {PASSWORDS[user]}").startswith("+OK"), f"PASS {user}")
        sessions[user] = p
    truncate_wal()
    faults.fill(MNT, "filler2")
    for user, p in sessions.items():
        check(p.pop3("RETR 1").startswith("+OK"), "RETR on a full disk, no reserve")
        p.pop3_multi()
        check(p.pop3("DELE 1").startswith("+OK"), "DELE")
        r = p.pop3("QUIT")
        check(r.startswith("-ERR [SYS/TEMP]"), f"QUIT with deletions on a full disk: {r}")
        p.close()
    check(faults.counts(lab) == after_dele, "a deletion went through on a full disk")
    faults.store_ok(lab)

    # Their locks could not be released (a write). bob's next login, while
    # the disk is still full, needs a write too: [SYS/TEMP], not [IN-USE].
    def locks():
        return lab.sql("SELECT account FROM locks ORDER BY account").decode().split()

    deadline = time.monotonic() + 10
    while lab.log("pop3d").count("event=unlock-failed") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    check(lab.log("pop3d").count("event=unlock-failed") >= 2, "pop3d log: unlock-failed")
    check(locks() == ["ana", "bob"], f"locks on a full disk: {locks()}")
    p = Dialog(lab.host, lab.pop3_port)
    p.pop3()
    p.pop3("USER bob")
    r = p.pop3(f"PASS {PASSWORDS['bob']}")
    check(r.startswith("-ERR [SYS/TEMP]"), f"login after a failed QUIT, disk full: {r}")
    p.close()
    log = lab.wait_log("smtpd", "reason=disk-full")
    check("event=disk-full" in log and "reason=disk-full" in log, "smtpd log says why")
    check(lab.log_has("pop3d", "op=expunge"), "pop3d log says why")
    faults.alive(lab)

    # Room again: mail flows without a restart; ana's mailbox (never locked
    # by the failed session) can be emptied.
    for f in (filler, os.path.join(MNT, "filler2")):
        os.unlink(f)
    t_free = time.monotonic()

    # bob logs in at once: his dead session's lock goes first.
    p = Dialog(lab.host, lab.pop3_port)
    p.pop3()
    p.pop3("USER bob")
    r = p.pop3(f"PASS {PASSWORDS['bob']}")
    check(r.startswith("+OK"), f"login after the failed QUIT, space freed: {r}")
    check(p.pop3("QUIT").startswith("+OK"), "QUIT")
    p.close()
    # ana's lock, which no login asks for, goes by pop3d's retry (backoff
    # from 1 s, doubling, at most 60 s).
    while "ana" in locks() and time.monotonic() - t_free < 70:
        time.sleep(0.2)
    released = time.monotonic() - t_free
    print(f"lock of the failed QUIT released by the retry {released:.1f} s after space "
          "was freed", flush=True)
    check(locks() == [], f"locks left after the retry: {locks()}")
    log = lab.wait_log("pop3d", "event=lock-released user=ana")
    check("event=lock-released user=bob" in log and "by=login" in log, "log: bob by login")
    check("event=lock-released user=ana" in log and "by=retry" in log, "log: ana by retry")
    code, text = smtp_ok(rcpt="ana@lab.test")
    check(code == 250, f"after freeing space: {code} {text}")
    code, text = smtp_ok(body=("z" * 998 + "\r\n") * 200)
    check(code == 250, f"large message after freeing space: {code} {text}")
    p = Dialog(lab.host, lab.pop3_port)
    p.pop3()
    p.pop3("USER ana")
    check(p.pop3(f"PASS {PASSWORDS['ana']}").startswith("+OK"), "PASS after the fill")
    check(p.pop3("DELE 1").startswith("+OK"), "DELE after")
    r = p.pop3("QUIT")
    check(r.startswith("+OK") and "1 message deleted" in r, f"QUIT after: {r}")
    p.close()
    after = faults.counts(lab)
    check(after[0] == after_dele[0] + 1, f"messages after: {after_dele} -> {after}")
    check(os.path.exists(reserve), "the reserve was not made again once there was room")
    faults.store_ok(lab)
    faults.alive(lab)
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


run([test_disk_full])
