#!/usr/bin/env python3
"""smtpd limits with small values: connections per address (421 4.7.0 when
full), the command and data timeouts (421 4.4.2, then close; nothing stored
from an unfinished DATA), and that the server stays alive after each."""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import correio_test as ct  # noqa: E402

LAB = None


def lab():
    global LAB
    if LAB is None:
        LAB = ct.Lab(config_extra="[limits]\nmax_connections_per_addr = 3\n"
                     "smtp_command_timeout = 5\nsmtp_data_timeout = 5\n"
                     "auth_fail_delay_max = 0\nauth_max_failures = 3\n[smtpd]\nvrfy = 502\n"
                     "[relay]\ntrusted_networks = 127.0.0.0/8\n"
                     "route = faraway.example 127.0.0.1:%d\n" % ct.free_port())
        LAB.start_smtpd()
    return LAB


def alive():
    d = lab().smtp_dialog()
    d.expect(250, "NOOP")
    d.expect(221, "QUIT")
    d.close()


def test_vrfy_configurable():
    d = lab().smtp_dialog()
    lines = d.expect(502, "VRFY bob")
    ct.check("5.5.1" in lines[0], lines[0])
    d.expect(221, "QUIT")
    d.close()


def test_trusted_network_may_relay():
    """[relay] trusted_networks: relaying without AUTH (RFC 5321 3.6.2)."""
    d = lab().smtp_dialog()
    d.expect(250, "EHLO trusted")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    lines = d.expect(250, "RCPT TO:<someone@faraway.example>")
    ct.check("will relay" in lines[0], lines[0])
    d.expect(354, "DATA")
    d.send("Subject: via a trusted network\r\n\r\nhi\r\n.\r\n")
    mid = int(d.expect(250)[0].rsplit(" ", 1)[-1])
    d.expect(221, "QUIT")
    q = lab().sql("select rcpt from queue where message = %d" % mid).decode().split()
    ct.check(q == ["someone@faraway.example"], "queued: %r" % q)


def test_auth_failures_close_the_session():
    d = lab().smtp_dialog()
    d.expect(250, "EHLO c")
    d.expect(535, "AUTH PLAIN AGFuYQB3cm9uZw==")
    d.expect(535, "AUTH PLAIN AGFuYQB3cm9uZw==")
    lines = d.expect(421, "AUTH PLAIN AGFuYQB3cm9uZw==")
    ct.check("4.7.0" in lines[0], lines[0])
    ct.check(d.closed(), "closed after auth_max_failures")
    ct.check(lab().log_has("smtpd", "result=failed failures=3"), "failures counted in the log")


def test_connections_per_address():
    lb = lab()
    held = []
    for _ in range(3):
        held.append(lb.smtp_dialog())
    extra = ct.Dialog(lb.host, lb.smtp_port)
    lines = extra.expect(421)
    ct.check("4.7.0" in lines[0], lines[0])
    ct.check(extra.closed(), "refused connection closed")
    for d in held:
        d.expect(221, "QUIT")
        d.close()
    time.sleep(0.3)
    alive()


def test_timeouts_send_421():
    lb = lab()
    before = lb.count()
    idle = lb.smtp_dialog(timeout=15)
    idle.expect(250, "EHLO idle")
    data = lb.smtp_dialog(timeout=15)
    data.smtp_start_data(ehlo="slow")
    data.send("Subject: never finished\r\n\r\nhalf a message\r\n")
    t0 = time.time()
    lines = idle.expect(421)
    took = time.time() - t0
    ct.check("4.4.2" in lines[0] and 3.5 < took < 8, "command timeout after ~5 s: %r %.1f" % (lines, took))
    ct.check(idle.closed(), "closed after the timeout")
    lines = data.expect(421)
    ct.check("4.4.2" in lines[0], "data timeout: %r" % lines)
    ct.check(data.closed(), "closed after the data timeout")
    ct.check(lb.count() == before, "nothing stored from an unfinished DATA")
    alive()


def test_crash_after_250_loses_nothing():
    """The 250 comes after the commit: SIGKILL right after it loses nothing."""
    import signal
    lb = lab()
    before = lb.count()
    d = lb.smtp_dialog()
    d.expect(250, "EHLO crash")
    ids = [d.smtp_send("Subject: durable %d\r\n\r\nmust survive\r\n" % i) for i in range(5)]
    lb.smtpd.send_signal(signal.SIGKILL)
    lb.smtpd.wait(timeout=10)
    d.close()
    got = lb.sql("select id from messages where id in (%s)" % ",".join(map(str, ids))).decode().split()
    ct.check(sorted(map(int, got)) == ids, "all acknowledged messages survive: %r of %r" % (got, ids))
    ct.check(lb.count() == before + 5, "count")


def test_sigterm_sends_421_and_exits_cleanly():
    """SIGTERM: every session gets 421 4.3.2 (RFC 5321 3.8), a message in DATA
    is not stored, and smtpd exits 0 as soon as the sessions are gone."""
    lb = ct.Lab()
    try:
        lb.start_smtpd()
        before = lb.count()
        idle = lb.smtp_dialog()
        idle.expect(250, "EHLO idle")
        data = lb.smtp_dialog()
        data.smtp_start_data(ehlo="data")
        data.send("Subject: half\r\n\r\nnot finished")
        time.sleep(0.2)
        took = lb.stop_checked(lb.smtpd, "smtpd")
        for d in (idle, data):
            code, lines = d.smtp_reply()
            ct.check(code == 421 and lines[0].startswith("421 4.3.2 "), "shutdown reply %r" % lines)
            ct.check(d.closed(), "closed after the 421")
        ct.check(took < 1.5, "stopped %.1fs after SIGTERM with no session left" % took)
        ct.check(lb.count() == before, "nothing stored from the unfinished DATA")
    finally:
        lb.stop()


def test_drops_privileges_when_root():
    """Started as root with [smtpd] user, smtpd binds, then runs as that user."""
    if os.geteuid() != 0:
        print("not root: skipped")
        return
    lb = ct.Lab(config_extra="[smtpd]\nuser = nobody\n")
    try:
        nobody = lb.give_to("nobody")
        lb.start_smtpd()
        with open("/proc/%d/status" % lb.smtpd.pid) as f:
            uids = [l.split()[1:] for l in f if l.startswith("Uid:")][0]
        ct.check(all(int(u) == nobody.pw_uid for u in uids), "runs as nobody: %r" % uids)
        d = lb.smtp_dialog()
        d.expect(250, "HELO c")
        d.smtp_send("Subject: unprivileged\r\n\r\nstill works\r\n")
        d.expect(221, "QUIT")
        ct.check(lb.log_has("smtpd", "privileges-dropped user=nobody"), "logged")
    finally:
        lb.stop()


if __name__ == "__main__":
    ct.run([test_vrfy_configurable, test_trusted_network_may_relay, test_auth_failures_close_the_session, test_connections_per_address, test_timeouts_send_421, test_crash_after_250_loses_nothing,
            test_sigterm_sends_421_and_exits_cleanly, test_drops_privileges_when_root])
