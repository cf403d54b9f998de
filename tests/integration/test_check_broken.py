#!/usr/bin/env python3
"""mailcli check against small servers written here (check_fakes.py), each
breaking one rule the way a student's server might: the correct fake passes
every check, and each broken one fails exactly the checks about the rule it
breaks - no more, no fewer. SMTP: RCPT accepted before MAIL, LF.LF taken as
the end of data, any line starting with "." taken as the end of data, SIZE
announced but not enforced, an open relay, QUIT that does not close. POP3:
LIST sizes counting LF instead of CRLF, RETR without dot-stuffing, deletions
committed when the connection drops (no QUIT), UIDLs that change between
sessions, message numbers that wrap at 32 bits.
"""
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
import check_fakes as fakes  # noqa: E402
from correio_test import MAILCLI, check, workdir  # noqa: E402

HOME = workdir("check-home-")
ENV = {"HOME": HOME, "MAILCLI_PASSWORD": fakes.PASSWORD, "MAILCLI_CONFIG": "", "NETRC": "",
       "MAILCLI_SERVER": "", "MAILCLI_USER": "", "MAILCLI_TLS": "", "PATH": os.environ["PATH"]}
ADDRS = ["--from", "ana@lab.test", "--to", "bob@lab.test"]


def run_check(url, *extra):
    p = subprocess.run([MAILCLI, "check", url, "--json", "--timeout", "3", *extra],
                       capture_output=True, text=True, env=ENV, timeout=300)
    doc = json.loads(p.stdout)
    fails = {c["id"] for c in doc["checks"] if c["verdict"] == "fail"}
    check(p.returncode == (1 if fails else 0), f"exit {p.returncode} with fails {fails}")
    return fails, {c["id"]: c for c in doc["checks"]}


def smtp_case(opts, expected):
    sp, pp, stop = fakes.start_pair(smtp_opts=opts)
    try:
        fails, checks = run_check(f"smtp://127.0.0.1:{sp}", *ADDRS)
    finally:
        stop()
    check(fails == expected, f"SMTP {opts}: expected exactly {expected} to fail, got {fails}:\n" +
          "\n".join(checks[i]["detail"] for i in fails))
    return checks


def pop3_case(opts, expected):
    sp, pp, stop = fakes.start_pair(pop3_opts=opts)
    try:
        fails, checks = run_check(f"pop3://127.0.0.1:{pp}", "--user", fakes.USER,
                                  "--smtp", f"smtp://127.0.0.1:{sp}", *ADDRS)
    finally:
        stop()
    check(fails == expected, f"POP3 {opts}: expected exactly {expected} to fail, got {fails}:\n" +
          "\n".join(checks[i]["detail"] for i in fails))
    return checks


# The correct fakes: nothing fails, and what is skipped is what they do not offer.
checks = smtp_case({}, set())
skipped = {i for i, c in checks.items() if c["verdict"] == "skip"}
check(skipped == {i for i in checks if i.startswith(("smtp.starttls.", "smtp.auth."))},
      f"skipped: {skipped}")
checks = pop3_case({}, set())
skipped = {i for i, c in checks.items() if c["verdict"] == "skip"}
check(skipped == {"pop3.auth.apop", "pop3.stls.handshake", "pop3.stls.injection"},
      f"skipped: {skipped}")

# SMTP, one broken rule each. RCPT before MAIL also breaks the two checks whose
# dialogs depend on a refused RCPT after the transaction was reset.
c = smtp_case({"rcpt_before_mail": True},
              {"smtp.rcpt.before-mail", "smtp.rset.clears", "smtp.ehlo.reset"})
check("expected 503" in c["smtp.rcpt.before-mail"]["detail"] and
      "C: RCPT TO:<bob@lab.test>" in c["smtp.rcpt.before-mail"]["detail"] and
      "S: 250 2.1.5 Ok" in c["smtp.rcpt.before-mail"]["detail"],
      c["smtp.rcpt.before-mail"]["detail"])
c = smtp_case({"bare_lf_end": True}, {"smtp.data.bare-lf-end"})
check("ended the message too early" in c["smtp.data.bare-lf-end"]["detail"],
      c["smtp.data.bare-lf-end"]["detail"])
# Ending at any line that starts with "." also ends at LF "." LF.
smtp_case({"naive_dot_end": True}, {"smtp.data.dot-stuffing", "smtp.data.end-of-data",
                                    "smtp.data.bare-lf-end"})
smtp_case({"size_unchecked": True}, {"smtp.size.declared", "smtp.size.enforced"})
c = smtp_case({"open_relay": True}, {"smtp.rcpt.open-relay"})
check("open relay" in c["smtp.rcpt.open-relay"]["detail"], c["smtp.rcpt.open-relay"]["detail"])
smtp_case({"quit_stays_open": True}, {"smtp.quit.closes"})

# The same open relay is only a warning when it is meant to relay.
sp, pp, stop = fakes.start_pair(smtp_opts={"open_relay": True})
try:
    fails, c = run_check(f"smtp://127.0.0.1:{sp}", *ADDRS, "--only", "smtp.rcpt.open-relay",
                         "--relay-ok")
finally:
    stop()
check(fails == set() and c["smtp.rcpt.open-relay"]["verdict"] == "warn", str(c))

# POP3, one broken rule each.
c = pop3_case({"list_counts_lf": True}, {"pop3.retr.octets"})
check("octets" in c["pop3.retr.octets"]["detail"], c["pop3.retr.octets"]["detail"])
pop3_case({"no_dot_stuffing": True}, {"pop3.retr.dot-stuffing", "pop3.retr.octets"})
pop3_case({"expunge_on_drop": True}, {"pop3.dele.only-at-quit"})
c = pop3_case({"uidl_changes": True}, {"pop3.uidl.stable"})
check("a uid must never change" in c["pop3.uidl.stable"]["detail"], c["pop3.uidl.stable"]["detail"])
pop3_case({"msgnum_wraps": True}, {"pop3.msgnum.huge"})

# The test messages are gone afterwards: the run cleaned up after itself.
sp, pp, stop = fakes.start_pair()
try:
    run_check(f"pop3://127.0.0.1:{pp}", "--user", fakes.USER, "--smtp", f"smtp://127.0.0.1:{sp}",
              *ADDRS, "--only", "pop3.retr")
    import poplib
    p = poplib.POP3("127.0.0.1", pp, timeout=10)
    p.user(fakes.USER)
    p.pass_(fakes.PASSWORD)
    check(p.stat()[0] == 0, f"test messages left behind: {p.stat()}")
    p.quit()
finally:
    stop()
print("ok")
