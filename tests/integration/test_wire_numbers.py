#!/usr/bin/env python3
"""Numbers on the wire never wrap, against the real pop3d and smtpd.

POP3: RETR, TOP, LIST, UIDL and DELE with 2^64 + 1 (which a wrapping parser
reads as message 1), 2^64, 2^63 and 2^32 + 1 as the message number answer
-ERR and change nothing; TOP with such a line count sends the whole message.
SMTP: MAIL FROM with SIZE= of those values answers 552 (never 250); the exact
advertised maximum is taken and one octet more is refused. Both servers are
alive afterwards.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, PASSWORDS, check, run  # noqa: E402

BIG = {
    "2^64+1": str(2**64 + 1),
    "2^64": str(2**64),
    "2^63": str(2**63),
    "2^32+1": str(2**32 + 1),
}

lab = Lab()
lab.start_smtpd()
lab.start_pop3d()


def pop3_login(user="bob"):
    d = Dialog(lab.host, lab.pop3_port)
    check(d.pop3().startswith("+OK"), "greeting")
    check(d.pop3(f"USER {user}").startswith("+OK"), "USER")
    check(d.pop3(f"PASS {PASSWORDS[user]}").startswith("+OK"), "PASS")
    return d


def test_pop3_message_numbers():
    lab.admin("deliver", "bob", stdin=b"Subject: one\r\n\r\nfirst\r\n")
    d = pop3_login()
    stat = d.pop3("STAT")
    check(stat.startswith("+OK 1 "), f"STAT {stat}")
    for verb in ("RETR", "TOP", "LIST", "UIDL", "DELE"):
        for name, value in BIG.items():
            extra = " 0" if verb == "TOP" else ""
            r = d.pop3(f"{verb} {value}{extra}")
            check(r.startswith("-ERR"), f"{verb} {name}: {r}")
            check("No such message" in r, f"{verb} {name}: {r}")
        # max_errors would close the session: a good command between verbs
        check(d.pop3("NOOP").startswith("+OK"), "NOOP")
        d.pop3("QUIT")
        d.close()
        d = pop3_login()
        check(d.pop3("STAT") == stat, f"STAT unchanged after {verb}")
    # A huge line count is "more lines than the message has": all of it.
    check(d.pop3("TOP 1 " + BIG["2^64+1"]).startswith("+OK"), "TOP 1 2^64+1")
    top = d.pop3_multi()
    check(d.pop3("RETR 1").startswith("+OK"), "RETR 1")
    check(d.pop3_multi() == top, "TOP 1 2^64+1 is the whole message")
    check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    d.close()
    d = Dialog(lab.host, lab.pop3_port)
    check(d.pop3().startswith("+OK"), "pop3d alive")
    d.pop3("QUIT")
    d.close()


def test_smtp_size():
    d = Dialog(lab.host, lab.smtp_ports["inbound"])
    d.expect(220)
    lines = d.expect(250, "EHLO numbers.example")
    size = [l for l in lines if l[4:].upper().startswith("SIZE ")]
    check(size, f"SIZE in EHLO: {lines}")
    limit = int(size[0][4:].split()[1])
    for name, value in BIG.items():
        d.send(f"MAIL FROM:<ana@lab.test> SIZE={value}\r\n".encode())
        code, got = d.smtp_reply()
        check(code in (501, 552), f"SIZE={name}: {got}")
    d.expect(552, f"MAIL FROM:<ana@lab.test> SIZE={limit + 1}")
    d.expect(250, f"MAIL FROM:<ana@lab.test> SIZE={limit}")
    d.expect(250, "RSET")
    d.expect(221, "QUIT")
    d.close()
    d = Dialog(lab.host, lab.smtp_ports["inbound"])
    d.expect(220)
    d.expect(250, "NOOP")
    d.close()


if __name__ == "__main__":
    try:
        run([test_pop3_message_numbers, test_smtp_size])
    finally:
        lab.stop()
