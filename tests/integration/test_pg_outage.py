#!/usr/bin/env python3
"""The PostgreSQL store going away is a fault, not a crash.

smtpd and pop3d serve a PostgreSQL store; the database server is stopped
(a clean fast stop, then an immediate one: its own crash). While it is away,
a textbook SMTP session gets `451 4.3.0` where the store is needed (RCPT,
whose recipient it must look up) and the session stays usable (NOOP, RSET,
QUIT); a POP3 login gets `-ERR [SYS/TEMP]`; neither daemon exits. When the
server is back, the same clients are served again within a few seconds
(each store handle reconnects), and the message sent then is in the
mailbox whole. Runs its own server (it stops it), in the PostgreSQL pass.
"""
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import pg_server  # noqa: E402
from correio_test import Lab, Dialog, PASSWORDS, PG, check, run  # noqa: E402

if not PG:
    print("SKIP: the PostgreSQL outage test runs in the PostgreSQL pass only")
    sys.exit(0)

TOP = tempfile.mkdtemp(prefix="correio-pgout-")	# removed with the server
PGDIR = os.path.join(TOP, "pg")
pg_server.start(PGDIR)
os.environ["CORREIO_TEST_PG"] = os.path.join(PGDIR, "url")
# notify: each daemon is started once READY=1 came, after its store handles
# and its session log's are open; a listening port alone came before them,
# and an outage begun then ended the daemon at its start-up, as it should.
lab = Lab(notify=True)
lab.start_smtpd()
lab.start_pop3d()


def pop3_login(user):
    d = Dialog(lab.host, lab.pop3_port)
    check(d.pop3().startswith("+OK"), "POP3 greeting")
    check(d.pop3(f"USER {user}").startswith("+OK"), "USER")
    return d, d.pop3(f"PASS {PASSWORDS[user]}")


def smtp_rcpt(d, rcpt="bob@lab.test"):
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.send(f"RCPT TO:<{rcpt}>\r\n")
    code, lines = d.smtp_reply()
    return code, " ".join(lines)


def served_again(marker, timeout=15.0):
    """Poll until a message goes through and a login works; the seconds it took."""
    t0 = time.time()
    while True:
        d = lab.smtp_dialog()
        d.expect(250, "HELO client.lab.test")
        code, _ = smtp_rcpt(d)
        if code == 250:
            d.expect(354, "DATA")
            d.expect(250, f"Subject: {marker}\r\n\r\n{marker}\r\n.")
            d.expect(221, "QUIT")
            break
        d.close()
        check(code == 451, f"RCPT while coming back: {code}")
        check(time.time() - t0 < timeout, f"not served again after {timeout} s")
        time.sleep(0.2)
    while True:
        d, r = pop3_login("bob")
        if r.startswith("+OK"):
            break
        check("[SYS/TEMP]" in r or "[IN-USE]" in r, f"login while coming back: {r}")
        check(time.time() - t0 < timeout, f"no login after {timeout} s")
        d.close()
        time.sleep(0.2)
    check(d.pop3("UIDL").startswith("+OK"), "UIDL")
    n = len(d.pop3_multi())
    check(d.pop3(f"RETR {n}").startswith("+OK"), "RETR of the newest message")
    body = d.pop3_multi()
    check(body[-1] == marker, f"the message sent after the outage: {body[-3:]}")
    d.pop3("QUIT")
    d.close()
    return time.time() - t0


def outage(immediate):
    d = lab.smtp_dialog()
    d.expect(250, "HELO client.lab.test")
    pg_server.halt(PGDIR, immediate=immediate)
    try:
        code, text = smtp_rcpt(d)
        check(code == 451 and "4.3.0" in text, f"RCPT with the database away: {code} {text}")
        d.expect(250, "NOOP")
        d.expect(250, "RSET")
        d.expect(221, "QUIT")
        p, r = pop3_login("ana")
        check(r.startswith("-ERR [SYS/TEMP]"), f"login with the database away: {r}")
        p.close()
        check(lab.smtpd.poll() is None and lab.pop3d.poll() is None, "a daemon exited")
    finally:
        pg_server.resume(PGDIR)
    return served_again(f"after-{'immediate' if immediate else 'fast'}-stop")


def test_fast_stop():
    print(f"  served again {outage(False):.2f} s after the server came back (fast stop)")


def test_immediate_stop():
    print(f"  served again {outage(True):.2f} s after the server came back (immediate stop)")


def test_daemons_stop_cleanly():
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


if __name__ == "__main__":
    try:
        run([test_fast_stop, test_immediate_stop, test_daemons_stop_cleanly])
    finally:
        lab.stop()
        pg_server.stop(PGDIR)
        shutil.rmtree(TOP, ignore_errors=True)
