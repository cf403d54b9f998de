#!/usr/bin/env python3
"""The store deleted, or deleted and recreated, under the running daemons
(issue 16).

smtpd and pop3d keep their SQLite files open: after `rm correio.db*` they
would go on writing into a file nobody can ever see again, and a 250 for
such a message is mail lost. The store compares the files at its path with
those it has open (device and inode of the database, -wal and -shm) and
refuses every write once they differ.

test_store_deleted_and_recreated: with an SMTP transaction in DATA, an SMTP
session after EHLO and a POP3 session with a deletion pending, the store
files are deleted:
  - the final dot and MAIL get 451 4.3.0, never 250; a new POP3 login and
    QUIT with deletions get -ERR [SYS/TEMP]; both logs say
    event=store-missing with the path; the daemons stay up;
  - a new store is made at the path (`mailcli admin domain add`, `user add`):
    the daemons keep refusing (event=store-replaced) until they are
    restarted, and do not touch the new store;
  - after a restart mail flows into the new store, integrity_check ok.
webd, over the same store, answers 503 from the deletion to its restart.
test_wal_deleted: only correio.db-wal is deleted: writes are refused, what
was acknowledged before is copied from the unlinked WAL into the database
(event=store-wal-salvage), so that it survives even a SIGKILL of both
daemons; after the restart it is all there and mail flows.
"""
import faulthandler
import http.client
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import BIN, Dialog, Lab, PASSWORDS, check, free_port, run, wait_port  # noqa: E402
import faults  # noqa: E402

faulthandler.dump_traceback_later(120, exit=True)


# smtpd looks at the store's files at MAIL at most every 0.1 s (a commit
# always does): a MAIL this long after a deletion is refused.
MAIL_CHECK_S = 0.15


def smtp_send(lab, rcpt="bob@lab.test", body="hello\r\n"):
    """One whole transaction: the reply to MAIL if it is not 250, else the
    reply at the final dot. Returns (code, text)."""
    d = lab.smtp_dialog()
    d.send("EHLO client.test\r\nMAIL FROM:<ana@lab.test>\r\n")
    d.expect(250)
    code, lines = d.smtp_reply()
    if code == 250:
        d.send(f"RCPT TO:<{rcpt}>\r\n")
        d.expect(250)
        d.send("DATA\r\n")
        d.expect(354)
        d.send(f"Subject: t\r\n\r\n{body}.\r\n")
        code, lines = d.smtp_reply()
    d.send("QUIT\r\n")
    d.close()
    return code, " ".join(lines)


def pop3_login(lab, user="bob"):
    p = Dialog(lab.host, lab.pop3_port)
    check(p.pop3().startswith("+OK"), "pop3 greeting")
    check(p.pop3(f"USER {user}").startswith("+OK"), "USER")
    return p, p.pop3(f"PASS {PASSWORDS[user]}")


def remove_store(lab, suffixes=("", "-wal", "-shm")):
    for s in suffixes:
        if os.path.exists(lab.store + s):
            os.unlink(lab.store + s)


WEBD = os.path.join(BIN, "webd", "webd")


def start_webd(lab):
    lab.webd = lab._start(WEBD, [], [])
    wait_port("127.0.0.1", lab.web_port)


def web_status(lab):
    """The status of GET / (the page every visit starts with; it reads the store)."""
    c = http.client.HTTPConnection("127.0.0.1", lab.web_port, timeout=10)
    try:
        c.request("GET", "/")
        return c.getresponse().status
    finally:
        c.close()


def restart(lab):
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")
    lab.stop_checked(lab.webd, "webd")
    lab.procs = []
    lab.start_smtpd()
    lab.start_pop3d()
    start_webd(lab)


def test_store_deleted_and_recreated():
    web_port = free_port()
    lab = Lab(config_extra=f"[webd]\nlisten = 127.0.0.1:{web_port}\n")
    lab.web_port = web_port
    lab.start_smtpd()
    lab.start_pop3d()
    start_webd(lab)
    check(web_status(lab) != 503, "webd before the deletion")
    for _ in range(2):
        code, text = smtp_send(lab)
        check(code == 250, f"before: {code} {text}")

    # Sessions open when the files go.
    in_data = lab.smtp_dialog()
    in_data.send("EHLO client.test\r\n")
    in_data.expect(250)
    in_data.smtp_start_data()
    in_data.send("Subject: begun before\r\n\r\nfirst half\r\n")
    helo = lab.smtp_dialog()
    helo.send("EHLO client.test\r\n")
    helo.expect(250)
    p, r = pop3_login(lab)
    check(r.startswith("+OK"), f"PASS before: {r}")
    check(p.pop3("DELE 1").startswith("+OK"), "DELE")

    remove_store(lab)
    t0 = time.time()

    in_data.send("second half\r\n.\r\n")
    code, lines = in_data.smtp_reply()
    text = " ".join(lines)
    check(code == 451 and "4.3.0" in text, f"final dot after the deletion: {code} {text}")
    time.sleep(MAIL_CHECK_S)
    helo.send("MAIL FROM:<ana@lab.test>\r\n")
    code, lines = helo.smtp_reply()
    check(code == 451 and "4.3.0" in " ".join(lines), f"MAIL after the deletion: {code} {lines}")
    for d in (in_data, helo):
        d.send("NOOP\r\n")
        d.expect(250)
        d.close()
    code, text = smtp_send(lab)
    check(code == 451 and "4.3.0" in text, f"a new session after the deletion: {code} {text}")

    r = p.pop3("QUIT")
    check(r.startswith("-ERR [SYS/TEMP]"), f"QUIT with deletions after the deletion: {r}")
    p.close()
    p, r = pop3_login(lab, "ana")
    check(r.startswith("-ERR [SYS/TEMP]"), f"a login after the deletion: {r}")
    p.close()
    check(web_status(lab) == 503, "webd after the deletion")
    check(time.time() - t0 < 10, f"the refusals took {time.time() - t0:.1f} s")
    faults.alive(lab)
    for name in ("smtpd", "pop3d", "webd"):
        line = f"event=store-missing path={lab.store} file=database"
        log = lab.wait_log(name, line)
        check(log.count(line) == 1, f"{name} log: one {line!r}:\n{log[-3000:]}")
    check("status=250" not in lab.log("smtpd").split("event=store-missing")[1],
          "a 250 logged after the deletion")

    # A new store at the path, made the documented way; the daemons keep
    # refusing until they are restarted, and leave it alone.
    lab.admin("domain", "add", lab.domain)
    for name, pw in PASSWORDS.items():
        lab.admin("user", "add", name, "--password-stdin", stdin=pw + "\n")
    code, text = smtp_send(lab)
    check(code == 451 and "4.3.0" in text, f"after the new store, before a restart: {code} {text}")
    p, r = pop3_login(lab)
    check(r.startswith("-ERR [SYS/TEMP]"), f"login before a restart: {r}")
    p.close()
    check(lab.log_has("smtpd", f"event=store-replaced path={lab.store} file=database"),
          "smtpd log: store-replaced")
    check(faults.counts(lab) == (0, 0, 0), f"the new store was written: {faults.counts(lab)}")
    faults.alive(lab)

    # The recovery: a restart. Closing the old files must not touch the new
    # store's -wal and -shm.
    restart(lab)
    faults.store_ok(lab)
    users = lab.admin("user", "list").stdout
    check("ana" in users and "bob" in users, f"accounts after the restart: {users}")
    code, text = smtp_send(lab)
    check(code == 250, f"after the restart: {code} {text}")
    check(web_status(lab) != 503, "webd after the restart")
    p, r = pop3_login(lab)
    check(r.startswith("+OK"), f"login after the restart: {r}")
    check(p.pop3("STAT").startswith("+OK 1 "), "one message in the new store")
    check(p.pop3("DELE 1").startswith("+OK"), "DELE")
    check(p.pop3("QUIT").startswith("+OK"), "QUIT after the restart")
    p.close()
    check(faults.counts(lab) == (0, 0, 0), f"after the expunge: {faults.counts(lab)}")
    faults.store_ok(lab)
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")
    lab.stop_checked(lab.webd, "webd")
    lab.stop()


def test_wal_deleted():
    lab = Lab()
    lab.start_smtpd()
    lab.start_pop3d()
    lab.sql("PRAGMA wal_checkpoint(TRUNCATE)")     # what follows lives in the WAL only
    for _ in range(3):
        code, text = smtp_send(lab)
        check(code == 250, f"before: {code} {text}")
    check(os.path.getsize(lab.store + "-wal") > 0, "the messages are not in the WAL")

    remove_store(lab, ("-wal",))
    time.sleep(MAIL_CHECK_S)
    code, text = smtp_send(lab)
    check(code == 451 and "4.3.0" in text, f"MAIL after the WAL went: {code} {text}")
    p, r = pop3_login(lab)
    check(r.startswith("-ERR [SYS/TEMP]"), f"a login after the WAL went: {r}")
    p.close()
    log = lab.wait_log("smtpd", f"event=store-wal-salvage path={lab.store} result=ok")
    check(f"event=store-missing path={lab.store}-wal file=wal" in log, f"smtpd log:\n{log[-2000:]}")
    check(f"event=store-wal-salvage path={lab.store} result=ok" in log, f"salvage:\n{log[-2000:]}")
    faults.alive(lab)

    # Even a crash of both daemons now loses nothing acknowledged: the
    # salvage copied the unlinked WAL into the database.
    for proc in (lab.smtpd, lab.pop3d):
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    lab.procs = []
    check(lab.count() == 3, f"messages after the crash: {lab.count()}")
    faults.store_ok(lab)
    lab.start_smtpd()
    lab.start_pop3d()
    code, text = smtp_send(lab)
    check(code == 250, f"after the restart: {code} {text}")
    p, r = pop3_login(lab)
    check(r.startswith("+OK"), f"login after the restart: {r}")
    check(p.pop3("STAT").startswith("+OK 4 "), "four messages")
    check(p.pop3("QUIT").startswith("+OK"), "QUIT")
    p.close()
    faults.store_ok(lab)
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")
    lab.stop()


run([test_store_deleted_and_recreated, test_wal_deleted])
