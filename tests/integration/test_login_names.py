#!/usr/bin/env python3
"""Login names and the failed-login policy, in both daemons.

"ana" and "ana@lab.test" log in to the same account with POP3 USER/PASS, POP3
AUTH PLAIN and LOGIN, and SMTP AUTH PLAIN and LOGIN, typed by hand and from
mpop and curl configured with the full address. The failed-login delay is
kept across sessions per (client address, account): one address guessing one
account's password waits longer session after session, while another account
behind the same address is answered after its own first typo without that
long delay. auth_fail_delay_max = 4 keeps the test short (1, 2, 4 s); the
default shape (up to 30 s) is checked in tests/unit/test_loginguard.c.
Every client binds its own 127.0.x.y source so that tests do not share a
client address.
"""
import base64
import os
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, check, run, PASSWORDS  # noqa: E402

lab = Lab(config_extra="[limits]\nauth_fail_delay_max = 4\n")
lab.start_smtpd(roles=("inbound", "submission"))
lab.start_pop3d()
HOST = lab.host
SUBMIT = lab.smtp_ports["submission"]
POP3 = lab.pop3_port
ANA = PASSWORDS["ana"]


def b64(s):
    return base64.b64encode(s.encode()).decode()


def connect_from(src, port):
    """A Dialog whose connection comes from the loopback address src."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(15)
    s.bind((src, 0))
    s.connect((HOST, port))
    d = Dialog.__new__(Dialog)
    d.s, d.buf = s, b""
    return d


def pop3_from(src):
    d = connect_from(src, POP3)
    check(d.pop3().startswith("+OK"), "greeting")
    return d


def smtp_from(src):
    d = connect_from(src, SUBMIT)
    d.expect(220)
    d.expect(250, "EHLO login.test")
    return d


def test_pop3_user_pass_with_the_address():
    for name in ("ana@lab.test", "ANA@Lab.Test", "ana"):
        d = pop3_from("127.0.7.1")
        check(d.pop3("USER " + name).startswith("+OK"), f"USER {name}")
        r = d.pop3("PASS " + ANA)
        check(r.startswith("+OK Logged in as "), f"PASS for {name}: {r}")
        check(r.lower().startswith("+ok logged in as ana:"), f"the account ana: {r}")
        check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    # another domain is not ana's
    d = pop3_from("127.0.7.2")
    d.pop3("USER ana@elsewhere.test")
    check(d.pop3("PASS " + ANA).startswith("-ERR [AUTH]"), "ana@elsewhere.test is not ana")
    d.pop3("QUIT")


def test_pop3_auth_plain_and_login_with_the_address():
    d = pop3_from("127.0.7.3")
    r = d.pop3("AUTH PLAIN " + b64("\0ana@lab.test\0" + ANA))
    check(r.startswith("+OK Logged in as ana:"), f"AUTH PLAIN ana@lab.test: {r}")
    d.pop3("QUIT")
    d = pop3_from("127.0.7.3")
    check(d.pop3("AUTH LOGIN") == "+ VXNlcm5hbWU6", "Username:")
    check(d.pop3(b64("ana@lab.test")) == "+ UGFzc3dvcmQ6", "Password:")
    r = d.pop3(b64(ANA))
    check(r.startswith("+OK Logged in as ana:"), f"AUTH LOGIN ana@lab.test: {r}")
    d.pop3("QUIT")
    # an authzid naming the same account by its address is fine
    d = pop3_from("127.0.7.3")
    r = d.pop3("AUTH PLAIN " + b64("ana@lab.test\0ana\0" + ANA))
    check(r.startswith("+OK Logged in as ana:"), f"authzid ana@lab.test: {r}")
    d.pop3("QUIT")


def test_smtp_auth_plain_and_login_with_the_address():
    d = smtp_from("127.0.7.4")
    lines = d.expect(235, "AUTH PLAIN " + b64("\0ana@lab.test\0" + ANA))
    check("welcome, ana" in lines[-1], lines)
    d.expect(250, "MAIL FROM:<ana@lab.test>")   # the account's own address may send
    d.expect(221, "QUIT")
    d = smtp_from("127.0.7.4")
    d.expect(334, "AUTH LOGIN")
    d.expect(334, b64("Ana@LAB.test"))
    lines = d.expect(235, b64(ANA))
    check("welcome, Ana" in lines[-1], lines)
    d.expect(221, "QUIT")
    d = smtp_from("127.0.7.5")
    d.expect(535, "AUTH PLAIN " + b64("\0ana@elsewhere.test\0" + ANA))
    d.expect(221, "QUIT")


def test_mpop_and_curl_with_the_address():
    lab.admin("deliver", "ana", stdin=b"Subject: full address\r\n\r\nhello\r\n")
    md = os.path.join(lab.dir, "Maildir-addr")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    for auth in ("user", "plain"):
        rc = os.path.join(lab.dir, f"mpoprc-{auth}")
        with open(rc, "w") as f:
            f.write(f"account lab\nhost {HOST}\nport {POP3}\ntls off\nauth {auth}\n"
                    f"user ana@lab.test\npassword {ANA}\nkeep on\n"
                    f"uidls_file {lab.dir}/mpop-uidls-{auth}\ndelivery maildir {md}\n")
        os.chmod(rc, 0o600)
        p = subprocess.run(["mpop", "-C", rc, "-q", "lab"], capture_output=True, timeout=60)
        check(p.returncode == 0, f"mpop auth {auth} as ana@lab.test: {p.returncode} {p.stderr}")
    check(len(os.listdir(os.path.join(md, "new"))) >= 1, "mpop fetched ana's mail")
    # curl: POP3 (SASL when CAPA offers it) and SMTP AUTH, user ana@lab.test
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "--user", f"ana@lab.test:{ANA}",
                          f"pop3://{HOST}:{POP3}/"], capture_output=True, timeout=30)
    check(out.returncode == 0 and out.stdout.strip(), f"curl pop3 as ana@lab.test: {out.stderr}")
    for opt in ([], ["--login-options", "AUTH=LOGIN"]):
        msg = os.path.join(lab.dir, "curl-msg.eml")
        with open(msg, "wb") as f:
            f.write(b"From: ana@lab.test\r\nTo: bob@lab.test\r\nSubject: curl\r\n\r\nhi\r\n")
        out = subprocess.run(["curl", "-sS", "--max-time", "20", "--user", f"ana@lab.test:{ANA}",
                              *opt, "--mail-from", "ana@lab.test", "--mail-rcpt", "bob@lab.test",
                              "-T", msg, f"smtp://{HOST}:{SUBMIT}/login.test"],
                             capture_output=True, timeout=30)
        check(out.returncode == 0, f"curl smtp {opt} as ana@lab.test: {out.stderr}")
    check(lab.log_has("smtpd", "user=ana login=ana@lab.test result=ok"),
          "smtpd logged the login and the account")


def timed(fn):
    t0 = time.time()
    r = fn()
    return r, time.time() - t0


def pop3_wrong(src, name):
    d = pop3_from(src)
    d.pop3("USER " + name)
    r, dt = timed(lambda: d.pop3("PASS wrong-password"))
    check(r.startswith("-ERR [AUTH] Authentication failed"), r)
    d.s.close()
    return r, dt


def smtp_wrong(src, name):
    d = smtp_from(src)
    d.send("AUTH PLAIN " + b64(f"\0{name}\0wrong-password") + "\r\n")
    (code, lines), dt = timed(d.smtp_reply)
    check(code == 535, lines)
    d.s.close()
    return lines[-1], dt


def policy(wrong, src):
    """bob guessed three times from src, one session each: the delay grows
    1, 2, 4 s across sessions; ana's first typo from the same address is
    answered after 1 s; the failure replies say that a delay is in force."""
    times = []
    for i in range(3):
        r, dt = wrong(src, "bob@lab.test" if i % 2 else "bob")  # both names: one account
        check("repeated failures wait longer (up to 4 s)" in r, f"the reply tells: {r}")
        times.append(dt)
    check(0.9 <= times[0] < 1.8, f"first failure: 1 s ({times})")
    check(1.8 <= times[1] < 2.8, f"second session: 2 s ({times})")
    check(3.8 <= times[2] < 4.8, f"third session: 4 s ({times})")
    r, dt = wrong(src, "ana")
    check(dt < 1.8, f"ana's first typo is not held for bob's failures ({dt:.2f} s)")


def test_pop3_delay_per_address_and_account():
    policy(pop3_wrong, "127.0.8.1")
    check(lab.log_has("pop3d", "event=auth-failed client=127.0.8.1 user=bob@lab.test"),
          "the failure is logged with the name given")


def test_smtp_delay_per_address_and_account():
    policy(smtp_wrong, "127.0.8.2")


if __name__ == "__main__":
    run([test_pop3_user_pass_with_the_address, test_pop3_auth_plain_and_login_with_the_address,
         test_smtp_auth_plain_and_login_with_the_address, test_mpop_and_curl_with_the_address,
         test_pop3_delay_per_address_and_account, test_smtp_delay_per_address_and_account])
