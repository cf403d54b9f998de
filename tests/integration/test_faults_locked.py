#!/usr/bin/env python3
"""A store whose write lock another program holds (issue 16).

The sqlite3 tool runs BEGIN IMMEDIATE on the store and keeps the transaction
open for HOLD seconds (its input is a pipe that stays open). Meanwhile:
  - a message whose final dot is sent then waits for the commit and gets
    451 4.3.0 after the store's busy timeout (10 s), not a hang, not a 250;
  - a POP3 login (USER/PASS) of another account, which must take the
    mailbox lock (a write), gets -ERR [SYS/TEMP] after the busy timeout;
  - a POP3 QUIT with deletions gets -ERR [SYS/TEMP] after the busy timeout
    and deletes nothing;
  - meanwhile other SMTP sessions' NOOP and RSET, and a POP3 session's LIST,
    RETR and NOOP, are answered at once: the event loops never wait on the
    lock, neither smtpd's (the commit) nor pop3d's (the login and the QUIT)
    (the worst latency is measured and printed);
  - once the lock is released, the same message is accepted, and nothing
    was lost or stored twice; the account whose login failed logs in, and
    the one whose QUIT failed logs in at once (its lock was released after
    the reply) and deletes.
"""
import faulthandler
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Dialog, Lab, PASSWORDS, check, run  # noqa: E402

USERS = dict(PASSWORDS, cy="cy-secret-3")

faulthandler.dump_traceback_later(200, exit=True)

HOLD = 14.0             # seconds the other program holds the write lock
BUSY = 10.0             # the store's busy timeout (common/store_sqlite.c)
LATENCY_MAX = 0.5       # a loop that answers within this is not blocked

lab = Lab(users=USERS)
lab.start_smtpd()
lab.start_pop3d()


def send_ok(d, body):
    d.smtp_start_data()
    d.send(f"Subject: lock\r\n\r\n{body}\r\n.\r\n")
    code, lines = d.smtp_reply()
    return code, " ".join(lines)


def test_locked_store():
    d = lab.smtp_dialog()
    d.expect(250, "EHLO client.test")
    code, text = send_ok(d, "before")
    check(code == 250, f"before the lock: {text}")
    before = lab.count("messages")

    pop = Dialog(lab.host, lab.pop3_port)
    pop.pop3()
    pop.pop3("USER bob")
    check(pop.pop3(f"PASS {PASSWORDS['bob']}").startswith("+OK"), "POP3 login")

    other = lab.smtp_dialog()
    other.expect(250, "EHLO other.test")

    # ana: a message, logged in, marked deleted; QUIT comes under the lock.
    d.smtp_start_data(rcpts=("ana@lab.test",))
    d.send("Subject: for ana\r\n\r\nkeep me\r\n.\r\n")
    check(d.smtp_reply()[0] == 250, "message for ana")
    ana_before = lab.count("mailbox", "account = (SELECT id FROM accounts "
                           "WHERE name = 'ana')")
    check(ana_before == 1, f"ana's mailbox: {ana_before}")
    before = lab.count("messages")
    quitter = Dialog(lab.host, lab.pop3_port)
    quitter.pop3()
    quitter.pop3("USER ana")
    check(quitter.pop3(f"PASS {PASSWORDS['ana']}").startswith("+OK"), "POP3 login of ana")
    check(quitter.pop3("DELE 1").startswith("+OK"), "DELE 1")
    # cy: greeted and named; PASS comes under the lock.
    login = Dialog(lab.host, lab.pop3_port)
    login.pop3()
    check(login.pop3("USER cy").startswith("+OK"), "USER cy")

    holder = subprocess.Popen(["sqlite3", "-batch", lab.store], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        holder.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
        holder.stdin.flush()
        check(holder.stdout.readline().strip() == "locked", "sqlite3 did not take the lock")
        t_lock = time.monotonic()

        d.smtp_start_data()
        d.send("Subject: lock\r\n\r\nduring\r\n.\r\n")
        t_dot = time.monotonic()
        login.send(f"PASS {USERS['cy']}\r\n")
        t_pass = time.monotonic()
        quitter.send("QUIT\r\n")
        t_quit = time.monotonic()
        waiting = {"login": [login, t_pass, None, None], "quit": [quitter, t_quit, None, None]}
        for w in waiting.values():
            w[0].s.settimeout(0.05)

        # While the commit, the login and the QUIT wait: the loops answer at
        # once. (A blocked loop is measured, not cut off by the socket timeout.)
        for dialog in (other, pop):
            dialog.s.settimeout(60)
        worst = 0.0
        n = 0
        d.s.settimeout(0.05)
        code = None
        while time.monotonic() - t_lock < HOLD - 1.5:
            for dialog, cmd, ok in ((other, "NOOP", "250"), (other, "RSET", "250"),
                                    (pop, "NOOP", "+OK"), (pop, "LIST", "+OK"),
                                    (pop, "RETR 1", "+OK")):
                t0 = time.monotonic()
                dialog.send(cmd + "\r\n")
                line = dialog.line()
                if cmd in ("LIST", "RETR 1"):
                    dialog.pop3_multi()
                worst = max(worst, time.monotonic() - t0)
                n += 1
                check(line.startswith(ok), f"{cmd} while the store is locked: {line}")
            if code is None:
                try:
                    code, lines = d.smtp_reply()
                    t_reply = time.monotonic()
                except (TimeoutError, OSError):
                    pass
            for w in waiting.values():
                if w[2] is None:
                    try:
                        w[2] = w[0].line()
                        w[3] = time.monotonic()
                    except (TimeoutError, OSError):
                        pass
            time.sleep(0.1)
        d.s.settimeout(10)
        if code is None:
            code, lines = d.smtp_reply()
            t_reply = time.monotonic()
        for w in waiting.values():
            w[0].s.settimeout(10)
            if w[2] is None:
                w[2] = w[0].line()
                w[3] = time.monotonic()
        text = " ".join(lines)
        waited = t_reply - t_dot
        print(f"locked store: commit answered after {waited:.1f} s, POP3 login after "
              f"{waiting['login'][3] - t_pass:.1f} s, POP3 QUIT after "
              f"{waiting['quit'][3] - t_quit:.1f} s; {n} commands answered, "
              f"worst latency {worst * 1000:.0f} ms", flush=True)
        check(worst < LATENCY_MAX, f"a loop blocked for {worst:.2f} s")
        for name, (_dialog, t_sent, line, t_got) in waiting.items():
            check(line.startswith("-ERR [SYS/TEMP]"), f"POP3 {name} under the lock: {line}")
            check(BUSY - 1.5 < t_got - t_sent < HOLD, f"POP3 {name} answered after "
                  f"{t_got - t_sent:.1f} s")
        check("Cannot lock the mailbox" in waiting["login"][2], waiting["login"][2])
        check("nothing was deleted" in waiting["quit"][2], waiting["quit"][2])
        check(quitter.closed(), "the QUIT did not close the session")
        check(code == 451 and "4.3.0" in text, f"commit under the lock: {code} {text}")
        check(BUSY - 1.5 < waited < HOLD, f"answered after {waited:.1f} s")
        check(worst < LATENCY_MAX, f"a loop blocked for {worst:.2f} s")
        check(lab.count("messages") == before, "the refused message is in the store")
    finally:
        try:
            holder.stdin.write("ROLLBACK;\n.quit\n")
            holder.stdin.close()
        except OSError:
            pass
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(timeout=5)

    # Released: the client tries again and the message is taken, once.
    code, text = send_ok(d, "during")
    check(code == 250, f"after the lock: {code} {text}")
    check(lab.count("messages") == before + 1, "lost or duplicated")
    check(lab.count("mailbox", "account = (SELECT id FROM accounts WHERE name = 'ana')")
          == ana_before, "the failed QUIT deleted something")
    # cy logs in now; ana at once (the failed QUIT's lock is gone) and deletes.
    login.close()
    for user in ("cy", "ana"):
        p = Dialog(lab.host, lab.pop3_port)
        p.pop3()
        p.pop3(f"USER {user}")
        r = p.pop3(f"PASS {USERS[user]}")
        check(r.startswith("+OK"), f"POP3 login of {user} after the lock: {r}")
        if user == "ana":
            check(p.pop3("DELE 1").startswith("+OK"), "DELE 1 after the lock")
            r = p.pop3("QUIT")
            check(r.startswith("+OK") and "1 message deleted" in r, f"QUIT after: {r}")
        else:
            check(p.pop3("QUIT").startswith("+OK"), "QUIT")
        p.close()
    out = lab.sql("PRAGMA integrity_check").decode().strip()
    check(out == "ok", f"integrity_check: {out}")
    r = pop.pop3("QUIT")
    check(r.startswith("+OK"), f"POP3 QUIT: {r}")
    for x in (d, other, pop, quitter):
        x.close()


def hold_lock():
    """sqlite3 holding the store's write lock until release(holder)."""
    holder = subprocess.Popen(["sqlite3", "-batch", lab.store], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    holder.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
    holder.stdin.flush()
    check(holder.stdout.readline().strip() == "locked", "sqlite3 did not take the lock")
    return holder


def release(holder):
    try:
        holder.stdin.write("ROLLBACK;\n.quit\n")
        holder.stdin.close()
    except OSError:
        pass
    try:
        holder.wait(timeout=10)
    except subprocess.TimeoutExpired:
        holder.kill()
        holder.wait(timeout=5)


def test_sigterm_during_jobs():
    """SIGTERM while a POP3 login and a QUIT with deletions wait for the held
    lock: the waiting login is told at once, pop3d lets the jobs finish (the
    busy timeout) and exits 0 with a clean sanitizer log; nothing
    is deleted; the lock the QUIT could not release is taken over at once by
    the next pop3d (its process is gone)."""
    lab.smtp_dialog().smtp_send("Subject: for ana\r\n\r\nagain\r\n", rcpts=("ana@lab.test",),
                                ehlo="client.test")
    ana = "account = (SELECT id FROM accounts WHERE name = 'ana')"
    n_ana = lab.count("mailbox", ana)
    check(n_ana == 1, f"ana's mailbox: {n_ana}")
    quitter = Dialog(lab.host, lab.pop3_port)
    quitter.pop3()
    quitter.pop3("USER ana")
    check(quitter.pop3(f"PASS {PASSWORDS['ana']}").startswith("+OK"), "POP3 login of ana")
    check(quitter.pop3("DELE 1").startswith("+OK"), "DELE 1")
    login = Dialog(lab.host, lab.pop3_port)
    login.pop3()
    login.pop3("USER cy")
    holder = hold_lock()
    try:
        login.send(f"PASS {USERS['cy']}\r\n")
        quitter.send("QUIT\r\n")
        time.sleep(0.5)
        t0 = time.monotonic()
        lab.pop3d.send_signal(signal.SIGTERM)
        r = login.line()
        check(r.startswith("-ERR [SYS/TEMP] Server shutting down"), f"waiting login: {r}")
        rc = lab.pop3d.wait(timeout=2 * BUSY + 10)
        took = time.monotonic() - t0
        print(f"SIGTERM with a login and a QUIT waiting for the lock: pop3d exited after "
              f"{took:.1f} s", flush=True)
        check(rc == 0, f"pop3d exit status {rc}")
        # The jobs end after one busy timeout; the session log's thread may
        # take one for a batch it began before and one for the last lines
        # (both dropped: event=sesslog-dropped). A release tried at exit
        # would add another: it is left to the next pop3d.
        check(took < 2 * BUSY + 5, f"pop3d took {took:.1f} s to stop")
        report = lab.sanitizer_report("pop3d")
        check(report == "", f"pop3d sanitizer report:\n{report}")
        quitter.s.settimeout(5)
        try:
            r = quitter.line()
        except (EOFError, OSError):
            r = "(closed)"
        check(not r.startswith("+OK"), f"QUIT under the lock at shutdown: {r}")
        check(lab.count("mailbox", ana) == n_ana, "a deletion went through")
    finally:
        release(holder)
    lab.procs.remove(lab.pop3d)
    check("client gone before the reply" in lab.log("pop3d"), "pop3d log: the QUIT's job")
    lab.start_pop3d()
    p = Dialog(lab.host, lab.pop3_port)
    p.pop3()
    p.pop3("USER ana")
    r = p.pop3(f"PASS {PASSWORDS['ana']}")
    check(r.startswith("+OK"), f"ana after the restart: {r}")
    check(p.pop3("DELE 1").startswith("+OK"), "DELE 1")
    r = p.pop3("QUIT")
    check(r.startswith("+OK") and "1 message deleted" in r, f"QUIT: {r}")
    p.close()
    for x in (quitter, login):
        x.close()
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


run([test_locked_store, test_sigterm_during_jobs])
