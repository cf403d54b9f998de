#!/usr/bin/env python3
"""smtpd dialog tests: every command and error, and the ways people type.

Each dialog is a C:/S: script, the same form as the transcripts:
  C: text      the client sends text + CRLF
  R: text      the client sends raw bytes (Python escapes: \\n \\r \\xff), no CRLF added
  S: pattern   one whole reply; its last line must match pattern (fnmatch: * ?)
  S~ text      one whole reply containing text (any line)
  CLOSED       the server closed the connection
Every dialog runs on a fresh connection against one smtpd; hostile ones end
with a check that the server still answers.
"""
import fnmatch
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import correio_test as ct  # noqa: E402

LAB = None


def lab():
    global LAB
    if LAB is None:
        LAB = ct.Lab(config_extra="[limits]\nmax_errors = 20\n")
        LAB.admin("alias", "add", "postmaster", "bob")
        LAB.start_smtpd(roles=("inbound", "submission"), extra=["-v"])
    return LAB


def run_dialog(script, port=None, role="inbound"):
    lb = lab()
    d = ct.Dialog(lb.host, port or lb.smtp_ports[role])
    seen = []
    try:
        for raw in script.strip("\n").splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            kind, _, arg = line.partition(" ")
            if kind == "C:":
                seen.append("C: " + arg)
                d.send(arg + "\r\n")
            elif kind == "R:":
                data = arg.encode("utf-8").decode("unicode_escape").encode("latin-1")
                seen.append("R: %r" % data)
                d.send(data)
            elif kind in ("S:", "S~"):
                code, lines = d.smtp_reply()
                seen.extend("S: " + l for l in lines)
                if kind == "S:" and not fnmatch.fnmatchcase(lines[-1], arg):
                    raise AssertionError("expected %r, got %r" % (arg, lines))
                if kind == "S~" and not any(arg in l for l in lines):
                    raise AssertionError("expected a reply containing %r, got %r" % (arg, lines))
            elif kind == "CLOSED":
                ct.check(d.closed(), "server did not close the connection")
            else:
                raise ValueError("bad dialog line %r" % raw)
    except Exception:
        print("\n".join(seen[-12:]), file=sys.stderr)
        raise
    finally:
        d.close()


def alive():
    run_dialog("""
S: 220 *
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 2.0.0 *
""")


# name -> (role, script)
DIALOGS = {
    "textbook": ("inbound", """
S: 220 mx.lab.test ESMTP correio * ready; session *
C: HELO client.lab.test
S: 250 mx.lab.test Hello client.lab.test*
C: MAIL FROM:<ana@lab.test>
S: 250 2.1.0 Sender <ana@lab.test> ok
C: RCPT TO:<bob@lab.test>
S: 250 2.1.5 Recipient <bob@lab.test> ok
C: DATA
S: 354 *<CRLF>.<CRLF>
C: Subject: dialog
C:
C: hello
C: .
S: 250 2.0.0 Ok: queued as *
C: QUIT
S: 221 2.0.0 *
CLOSED
"""),
    "lower case verbs and space after colon": ("inbound", """
S: 220 *
C: ehlo client
S: 250 HELP
C: mail from: <ana@lab.test>
S: 250 2.1.0 *
C: rcpt to: <bob@lab.test>
S: 250 2.1.5 *
C: rset
S: 250 2.0.0 *
C: quit
S: 221 *
"""),
    "bare LF command lines": ("inbound", r"""
S: 220 *
R: HELO typist\n
S: 250 *
R: MAIL FROM:<ana@lab.test>\n
S: 250 2.1.0 *
R: RCPT TO:<bob@lab.test>\n
S: 250 2.1.5 *
R: DATA\n
S: 354 *only "."
R: Subject: typed on nc\n\nline one\n..line with a dot\n.\n
S: 250 2.0.0 Ok: queued as *
R: QUIT\n
S: 221 *
"""),
    "telnet IAC bytes are ignored": ("inbound", r"""
S: 220 *
R: \xff\xfd\x03\xff\xfb\x18HELO telnet.client\r\n
S: 250 mx.lab.test Hello telnet.client*
R: NO\xff\xf1OP\r\n
S: 250 2.0.0 OK
C: QUIT
S: 221 *
"""),
    "backspace and DEL edit the line": ("inbound", r"""
S: 220 *
R: HELP MAXX\x08\x08IL\r\n
S~ MAIL FROM:<address>
R: NOPE\x7fX\x7f\x7fOP\r\n
S: 250 2.0.0 OK
C: QUIT
S: 221 *
"""),
    "pasted session answered in order": ("inbound", r"""
S: 220 *
R: HELO paste\r\nMAIL FROM:<ana@lab.test>\r\nRCPT TO:<bob@lab.test>\r\nRCPT TO:<nobody@lab.test>\r\nDATA\r\nSubject: pasted\r\n\r\nbody\r\n.\r\nNOOP\r\nQUIT\r\n
S: 250 *
S: 250 2.1.0 *
S: 250 2.1.5 *
S: 550 5.1.1 <nobody@lab.test>: no such user here
S: 354 *
S: 250 2.0.0 Ok: queued as *
S: 250 2.0.0 OK
S: 221 *
CLOSED
"""),
    "pasted before hello is answered, not dropped": ("inbound", r"""
R: MAIL FROM:<ana@lab.test>\r\nHELO late\r\nMAIL FROM:<ana@lab.test>\r\nQUIT\r\n
S: 220 *
S: 503 5.5.1 Say hello first*
S: 250 *
S: 250 2.1.0 *
S: 221 *
"""),
    "sequence errors teach": ("inbound", """
S: 220 *
C: MAIL FROM:<ana@lab.test>
S: 503 5.5.1 Say hello first: EHLO <your-hostname> (or HELO)
C: EHLO c
S: 250 HELP
C: RCPT TO:<bob@lab.test>
S: 503 5.5.1 Need MAIL before RCPT
C: DATA
S: 503 5.5.1 Need MAIL and RCPT before DATA
C: MAIL FROM:<ana@lab.test>
S: 250 2.1.0 *
C: MAIL FROM:<ana@lab.test>
S: 503 5.5.1 Nested MAIL command*
C: DATA
S: 503 5.5.1 Need RCPT before DATA
C: RCPT TO:<nobody@lab.test>
S: 550 5.1.1 *
C: DATA
S: 554 5.5.1 No valid recipients*
C: QUIT
S: 221 *
"""),
    "syntax errors": ("inbound", """
S: 220 *
C: EHLO
S: 501 5.5.4 Syntax: EHLO <your-hostname>
C: EHLO c
S: 250 HELP
C: MAIL TO:<ana@lab.test>
S: 501 5.5.4 Syntax: MAIL FROM:<address>*
C: MAIL FROM:<ana@@lab.test>
S: 501 5.1.7 Bad sender address*
C: MAIL FROM:<ana@lab.test> FOO=BAR
S: 555 5.5.4 Unsupported MAIL parameter 'FOO=BAR'*
C: MAIL FROM:<ana@lab.test> SIZE=abc
S: 501 5.5.4 Bad SIZE parameter*
C: MAIL FROM:<ana@lab.test>>
S: 501 5.5.4 Unexpected '>' after the address. Syntax: MAIL FROM:<address>*
C: MAIL FROM:<ana@lab.test> SIZE=
S: 501 5.5.4 Unexpected 'SIZE=' after the address*
C: MAIL FROM:<jo\u00e3o@lab.test>
S: 553 5.6.7 *SMTPUTF8*
C: MAIL FROM:<ana@lab.test>
S: 250 2.1.0 *
C: RCPT <bob@lab.test>
S: 501 5.5.4 Syntax: RCPT TO:<address>*
C: RCPT TO:<bob@lab..test>
S: 501 5.1.3 Bad recipient address*
C: RCPT TO:<>
S: 501 5.1.3 *
C: RCPT TO:<bob@lab.test> NOTIFY=NEVER
S: 555 5.5.4 *
C: RCPT TO:<bob@lab.test>>
S: 501 5.5.4 Unexpected '>' after the address. Syntax: RCPT TO:<address>
C: RCPT TO:<bob@lab.test> NOTIFY=NEVER <x>
S: 501 5.5.4 Unexpected '<x>' after the address*
C: RCPT TO:<bob@lab.test>
S: 250 2.1.5 *
C: DATA now
S: 501 5.5.4 Syntax: DATA
C: XYZZY
S: 500 5.5.2 Unknown command 'XYZZY'*
C:
S: 500 5.5.2 Syntax error: empty command*
C: QUIT
S: 221 *
"""),
    "null sender, postmaster, source route, quoted, literal": ("inbound", r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: MAIL FROM:<>
S: 250 2.1.0 Sender <> ok
C: RCPT TO:<@relay.example:bob@lab.test>
S: 250 2.1.5 Recipient <bob@lab.test> ok
C: RCPT TO:<"bob"@lab.test>
S: 250 2.1.5 *
C: RCPT TO:<BOB@LAB.TEST>
S: 250 2.1.5 *
C: RCPT TO:<postmaster>
S: 250 2.1.5 Recipient <postmaster> ok
C: RCPT TO:<bob@[127.0.0.1]>
S: 554 5.7.1 *relay denied*
C: RSET
S: 250 2.0.0 *
C: QUIT
S: 221 *
"""),
    "open relay attempts are refused": ("inbound", r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: MAIL FROM:<spammer@evil.example>
S: 250 2.1.0 *
C: RCPT TO:<victim@other.example>
S: 554 5.7.1 <victim@other.example>: relay denied*
C: RCPT TO:<victim%other.example@lab.test>
S: 550 5.1.1 *
C: RCPT TO:<@lab.test:victim@other.example>
S: 554 5.7.1 *relay denied*
C: RCPT TO:<"victim@other.example"@lab.test>
S: 550 5.1.1 *
C: RCPT TO:<victim@[192.0.2.1]>
S: 554 5.7.1 *relay denied*
C: QUIT
S: 221 *
"""),
    "vrfy expn help noop rset": ("inbound", """
S: 220 *
C: VRFY bob
S: 252 2.5.0 Cannot VRFY*
C: EXPN staff
S: 502 5.5.1 *
C: HELP
S~ MAIL     start a message
C: HELP RCPT
S: 214 2.0.0 Example: RCPT TO:<bob@lab.test>
C: HELP BOGUS
S: 504 5.5.1 *
C: NOOP
S: 250 2.0.0 OK
C: RSET
S: 250 2.0.0 *
C: QUIT extra
S: 501 5.5.4 Syntax: QUIT
C: QUIT
S: 221 *
"""),
    "SIZE declared too big is refused at once": ("inbound", """
S: 220 *
C: EHLO c
S~ SIZE 26214400
C: MAIL FROM:<ana@lab.test> SIZE=999999999
S: 552 5.3.4 Message size exceeds fixed maximum*
C: MAIL FROM:<ana@lab.test> SIZE=1000 BODY=8BITMIME
S: 250 2.1.0 *
C: QUIT
S: 221 *
"""),
    "AUTH cancel, bad base64, unknown mechanism": ("inbound", r"""
S: 220 *
C: EHLO c
S~ AUTH PLAIN LOGIN
C: AUTH PLAIN
S: 334*
C: *
S: 501 5.7.0 Authentication cancelled
C: AUTH PLAIN not!base64
S: 501 5.5.2 Invalid AUTH PLAIN response*
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: %%%
S: 501 5.5.2 Invalid base64*
C: AUTH CRAM-MD5
S: 504 5.5.4 *
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 *
"""),
    "AUTH PLAIN with initial response and LOGIN": ("inbound", r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: AUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=
S: 235 2.7.0 Authentication successful*
C: AUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=
S: 503 5.5.1 Already authenticated*
C: MAIL FROM:<bob@lab.test>
S: 553 5.7.1 Sender <bob@lab.test> is not yours*
C: MAIL FROM:<ana@lab.test>
S: 250 2.1.0 *
C: RCPT TO:<friend@elsewhere.example>
S: 250 2.1.5 Recipient <friend@elsewhere.example> ok (will relay)
C: AUTH LOGIN
S: 503 5.5.1 AUTH is not allowed during a mail transaction*
C: QUIT
S: 221 *
"""),
    "AUTH LOGIN step by step": ("inbound", r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: AUTH LOGIN
S: 334 VXNlcm5hbWU6
C: Ym9i
S: 334 UGFzc3dvcmQ6
C: Ym9iLXNlY3JldC0y
S: 235 2.7.0 *
C: QUIT
S: 221 *
"""),
    "AUTH lines may be longer than 512 octets (RFC 4954 4)": ("inbound", r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: AUTH PLAIN eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXl5eXkAYW5hAHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHg=
S: 535 5.7.8 *
C: AUTH PLAIN QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB
S: 500 5.5.6 Authentication exchange line is too long (at most 1000 octets)*
C: AUTH PLAIN
S: 334 *
C: QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFB
S: 500 5.5.6 Authentication exchange line is too long*
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 *
"""),
    "submission requires AUTH before MAIL": ("submission", r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: MAIL FROM:<ana@lab.test>
S: 530 5.7.0 Authentication required*
C: AUTH LOGIN YW5h
S: 334 UGFzc3dvcmQ6
C: YW5hLXNlY3JldC0x
S: 235 2.7.0 *
C: MAIL FROM:<ana@lab.test>
S: 250 2.1.0 *
C: RCPT TO:<bob@lab.test>
S: 250 2.1.5 *
C: QUIT
S: 221 *
"""),
    "STARTTLS without a certificate": ("inbound", """
S: 220 *
C: EHLO c
S: 250 HELP
C: STARTTLS
S: 454 4.7.0 TLS not available*
C: QUIT
S: 221 *
"""),
    "command line too long": ("inbound", """
S: 220 *
C: NOOP %s
S: 500 5.5.2 Line too long*
C: NOOP
S: 250 2.0.0 OK
C: QUIT
S: 221 *
""" % ("x" * 600)),
    "NUL byte in a command": ("inbound", r"""
S: 220 *
R: NOOP\x00junk\r\n
S: 500 5.5.2 *NUL*
C: QUIT
S: 221 *
"""),
    "RFC 5321 4.1.4: EHLO resets the transaction": ("inbound", """
S: 220 *
C: EHLO c
S: 250 HELP
C: MAIL FROM:<ana@lab.test>
S: 250 2.1.0 *
C: EHLO c
S: 250 HELP
C: RCPT TO:<bob@lab.test>
S: 503 5.5.1 Need MAIL before RCPT
C: QUIT
S: 221 *
"""),
}


def make_test(name, role, script):
    def t():
        run_dialog(script, role=role)
    t.__name__ = "dialog: " + name
    return t


def test_ehlo_capabilities():
    lb = lab()
    d = ct.Dialog(lb.host, lb.smtp_port)
    d.expect(220)
    lines = d.expect(250, "EHLO client.lab.test")
    caps = [l[4:] for l in lines[1:]]
    for c in ("PIPELINING", "SIZE 26214400", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8",
              "AUTH PLAIN LOGIN"):
        ct.check(c in caps, "EHLO lists %s: %r" % (c, lines))
    ct.check("STARTTLS" not in caps, "no STARTTLS without a certificate")
    ct.check(lines[0].startswith("250-mx.lab.test Hello client.lab.test"), lines[0])
    d.expect(221, "QUIT")


def test_too_many_errors_closes():
    script = "S: 220 *\n" + "C: BOGUS\nS: 500 5.5.2 *\n" * 19 + \
        "C: BOGUS\nS: 500 5.5.2 *\nS: 421 4.7.0 Too many errors*\nCLOSED\n"
    run_dialog(script)
    alive()


def test_errors_counted_since_the_last_delivery():
    """An MTA sending many messages on one connection, each with unknown
    recipients, is not cut off: a delivered message starts the count again."""
    one = "C: RCPT TO:<nobody@lab.test>\nS: 550 5.1.1 *\n"
    msg = ("C: MAIL FROM:<ana@lab.test>\nS: 250 2.1.0 *\n" + one * 15 +
           "C: RCPT TO:<bob@lab.test>\nS: 250 2.1.5 *\nC: DATA\nS: 354 *\n"
           "C: Subject: errors\nC:\nC: .\nS: 250 2.0.0 *\n")
    run_dialog("S: 220 *\nC: EHLO mta.example\nS: 250 HELP\n" + msg * 3 +
               "C: MAIL FROM:<ana@lab.test>\nS: 250 2.1.0 *\n" + one * 19 +
               "C: RCPT TO:<nobody@lab.test>\nS: 550 5.1.1 *\nS: 421 4.7.0 Too many errors*\n"
               "CLOSED\n")


def test_failed_auth_is_delayed_and_counted():
    import time
    t0 = time.time()
    run_dialog(r"""
S: 220 *
C: EHLO c
S: 250 HELP
C: AUTH PLAIN AGFuYQB3cm9uZw==
S: 535 5.7.8 Authentication failed*
C: AUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=
S: 235 2.7.0 *
C: QUIT
S: 221 *
""")
    ct.check(time.time() - t0 >= 0.9, "a failed AUTH must be answered after a delay")


def test_transcript_masks_secrets():
    lb = lab()
    d = ct.Dialog(lb.host, lb.smtp_port)
    greeting = d.line()
    sid = greeting.rsplit(" ", 1)[-1]
    d.expect(250, "EHLO c")
    d.expect(235, "AUTH PLAIN AGFuYQBhbmEtc2VjcmV0LTE=")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.expect(250, "RCPT TO:<bob@lab.test>")
    d.expect(354, "DATA")
    d.send("Subject: transcript\r\n\r\nsecret body line\r\n.\r\n")
    d.expect(250)
    d.expect(221, "QUIT")
    d.close()
    import time
    lines = b""
    for _ in range(50):
        lines = lb.sql_log("select lines from transcripts where session_id='%s' order by seq" % sid)
        if b"QUIT" in lines and b"closed" in lines:
            break
        time.sleep(0.1)
    text = lines.decode()
    ct.check("C: EHLO c" in text, "transcript has the client's lines: %s" % text)
    ct.check("S: 250 2.0.0 Ok: queued as" in text, "transcript has the replies")
    ct.check("AGFuYQBhbmEtc2VjcmV0LTE=" not in text and "ana-secret-1" not in text,
             "AUTH secret masked")
    ct.check("AUTH PLAIN" in text, "AUTH verb kept")
    ct.check("Subject: transcript" in text, "DATA summary keeps the first lines")
    ct.check("octets" in text, "DATA summary has the size")
    shown = lb.admin("transcript", sid).stdout
    ct.check("C: EHLO c" in shown and "S: 221 2.0.0" in shown and "ana-secret-1" not in shown,
             "mailcli admin transcript shows the session: %s" % shown[:300])


def test_server_alive_at_end():
    """Still answering after every dialog, then SIGTERM: exit status 0 and no
    sanitizer report from any of the sessions (the ASan run)."""
    alive()
    lab().stop_checked(lab().smtpd, "smtpd")


if __name__ == "__main__":
    tests = [make_test(n, r, s) for n, (r, s) in DIALOGS.items()]
    tests += [test_ehlo_capabilities, test_too_many_errors_closes,
              test_errors_counted_since_the_last_delivery, test_failed_auth_is_delayed_and_counted,
              test_transcript_masks_secrets, test_server_alive_at_end]
    ct.run(tests)
