#!/usr/bin/env python3
"""Hostile input at the protocol level, against the real smtpd, pop3d and
mailcli: each case sends something a broken or malicious client sends and
checks the exact reply, then checks that the server is still alive (a new
connection is greeted and answers NOOP).

SMTP: NUL bytes, 8-bit bytes in commands, over-long command and text lines,
10,000 RCPTs in one pipelined burst, commands out of order, shell
metacharacters and SQL quotes in addresses (stored verbatim, the store
intact), AUTH with invalid base64, STARTTLS twice.
POP3: RETR/TOP/DELE with zero, negative, huge and non-numeric arguments, STLS
twice. mailcli: a MIME message nested 10,000 levels deep (show and extract).
"""
import atexit
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, MAILCLI, PASSWORDS, PG, check, run  # noqa: E402

# A private parent for the lab's directory (shared /tmp/correio-test-* dirs
# were seen vanishing on the shared development machine).
tempfile.tempdir = tempfile.mkdtemp(prefix="correio-hostile-")
if not os.environ.get("CORREIO_KEEP"):
    atexit.register(shutil.rmtree, tempfile.tempdir, True)

lab = Lab(tls=True)
lab.start_smtpd(roles=("inbound", "submission"))
lab.start_pop3d()
HOST = lab.host
SMTP = lab.smtp_ports["inbound"]
SUBMIT = lab.smtp_ports["submission"]
POP3 = lab.pop3_port
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def smtp(port=SMTP, ehlo=True):
    d = Dialog(HOST, port, timeout=15)
    d.expect(220)
    if ehlo:
        d.expect(250, "EHLO hostile.example")
    return d


def expect(d, data, code, text=None):
    """Send raw bytes (a str gets CRLF) and check the reply's code and text."""
    if isinstance(data, str):
        data = data.encode() + b"\r\n"
    d.send(data)
    got, lines = d.smtp_reply()
    check(got == code, f"after {data[:60]!r}: expected {code}, got {lines}")
    if text is not None:
        check(text in lines[-1], f"after {data[:60]!r}: {text!r} not in {lines[-1]!r}")
    return lines


def smtp_alive(port=SMTP):
    d = smtp(port, ehlo=False)
    d.expect(250, "NOOP")
    d.expect(221, "QUIT")
    d.close()


def pop3_alive():
    d = Dialog(HOST, POP3)
    check(d.pop3().startswith("+OK"), "pop3 greeting")
    check(d.pop3("NOOP").startswith(("+OK", "-ERR")), "pop3 NOOP")
    check(d.pop3("QUIT").startswith("+OK"), "pop3 QUIT")
    d.close()


def stored_messages():
    """(sender, body) of every stored message, read by an independent
    reader (sqlite3 or psql) and passed as hex, whatever they contain."""
    out = lab.sql("SELECT hex(sender), hex(body) FROM messages ORDER BY id").decode()
    return [(bytes.fromhex(a).decode(), bytes.fromhex(b))
            for a, b in (line.split("|") for line in out.split())]


def count_accounts():
    return int(lab.sql("SELECT count(*) FROM accounts").strip())


# ---- SMTP -------------------------------------------------------------------

def test_nul_bytes():
    d = smtp()
    expect(d, b"NOOP\x00x\r\n", 500, "NUL byte in command")
    expect(d, b"MAIL FROM:<ana\x00@lab.test>\r\n", 500, "NUL byte in command")
    expect(d, b"\x00\x00\x00\r\n", 500, "NUL byte in command")
    expect(d, "NOOP", 250)     # the session goes on
    d.close()
    smtp_alive()


def test_8bit_bytes_in_commands():
    d = smtp()
    expect(d, b"\xc3\xa9HLO x\r\n", 500, "Unknown command")
    expect(d, b"\x80\x81\xfe\xfd\r\n", 500)
    expect(d, b"MAIL FROM:<\xc3\xa9@example.org>\r\n", 553, "SMTPUTF8")
    expect(d, b"MAIL FROM:<a@example.org> SMTPUTF8\r\n", 250)
    expect(d, b"RCPT TO:<\xc3\xa9t\xc3\xa9@lab.test>\r\n", 550, "no such user")
    expect(d, "RSET", 250)
    d.close()
    smtp_alive()


def test_overlong_lines():
    d = smtp()
    expect(d, "NOOP " + "x" * 600, 500, "Line too long")
    expect(d, "NOOP " + "y" * 1000000, 500, "Line too long")    # one reply for 1 MB
    expect(d, "NOOP", 250)
    # message text: a 100 KB line refuses the message after the final dot
    expect(d, "MAIL FROM:<ana@lab.test>", 250)
    expect(d, "RCPT TO:<bob@lab.test>", 250)
    expect(d, "DATA", 354)
    expect(d, "Subject: long\r\n\r\n" + "z" * 100000 + "\r\n.", 500, "Line too long")
    expect(d, "NOOP", 250)
    d.close()
    smtp_alive()


def test_10000_rcpts():
    d = smtp()
    expect(d, "MAIL FROM:<ana@lab.test>", 250)
    burst = b"RCPT TO:<bob@lab.test>\r\n" * 10000
    sender = threading.Thread(target=lambda: _sendall_quiet(d.s, burst))
    sender.start()
    codes = []
    try:
        while True:
            code, lines = d.smtp_reply()
            codes.append(code)
            if code == 421:
                check("Too many errors" in lines[-1], f"421 text: {lines}")
                break
            check(len(codes) <= 10000, "more replies than commands")
    except EOFError:
        pass
    sender.join(timeout=30)
    check(codes[:100] == [250] * 100, "the first 100 recipients are accepted")
    rest = codes[100:]
    check(rest and set(rest[:-1]) == {452}, f"then 452 4.5.3: {sorted(set(rest))}")
    check(rest[-1] == 421, "and the session is closed after max_errors")
    print(f"10,000 RCPT: {codes.count(250)} x 250, {codes.count(452)} x 452, then 421", flush=True)
    check(d.closed(), "connection closed after 421")
    d.close()
    smtp_alive()


def _sendall_quiet(s, data):
    try:
        s.sendall(data)
    except OSError:
        pass    # the server closed after 421: the rest is not read


def test_commands_out_of_order():
    d = smtp(ehlo=False)
    expect(d, "AUTH PLAIN", 503, "hello first")
    expect(d, "DATA", 503, "hello first")
    expect(d, "RCPT TO:<ana@lab.test>", 503, "hello first")
    expect(d, "MAIL FROM:<a@example.org>", 503, "hello first")
    expect(d, "HELO x", 250)
    expect(d, "RCPT TO:<ana@lab.test>", 503, "Need MAIL before RCPT")
    expect(d, "DATA", 503)
    expect(d, "MAIL FROM:<a@example.org>", 250)
    expect(d, "MAIL FROM:<c@example.org>", 503, "Nested MAIL")
    expect(d, "DATA", 503, "Need RCPT before DATA")
    expect(d, "RCPT TO:<ana@lab.test>", 250)
    expect(d, "HELO y", 250)                  # HELO resets the transaction
    expect(d, "DATA", 503)
    expect(d, "QUIT", 221)
    d.close()
    smtp_alive()


def test_shell_and_sql_in_addresses():
    naccounts = count_accounts()
    d = smtp()
    sender = '"`id`; rm -rf / #"@example.org'
    expect(d, f"MAIL FROM:<{sender}>", 250)
    expect(d, "RCPT TO:<ana@lab.test>", 250)
    expect(d, "DATA", 354)
    expect(d, "Subject: hostile-sender\r\n\r\n$(reboot) `halt` '; DROP TABLE messages; --\r\n.", 250)
    expect(d, "MAIL FROM:<o'brien$x|y&z{w}@example.org>", 250)
    expect(d, "RCPT TO:<x';DROP_TABLE_accounts;--@lab.test>", 501)
    expect(d, "RCPT TO:<robert'--@lab.test>", 550, "no such user")
    expect(d, "RCPT TO:<bob@lab.test'-->", 501)
    expect(d, "RSET", 250)
    expect(d, "MAIL FROM:<$(touch${IFS}/tmp/pwned)@example.org>", 501)
    expect(d, "QUIT", 221)
    d.close()
    rows = [(snd, body) for snd, body in stored_messages() if b"Subject: hostile-sender" in body]
    check(len(rows) == 1, f"the message is stored once: {len(rows)}")
    check(rows[0][0] == sender, f"sender stored verbatim: {rows[0][0]!r}")
    check(b"'; DROP TABLE messages; --" in bytes(rows[0][1]), "body stored verbatim")
    check(count_accounts() == naccounts, "accounts intact")
    if not PG:
        check(lab.sql("PRAGMA integrity_check").strip() == b"ok", "integrity_check")
    smtp_alive()


def test_auth_invalid_base64():
    d = smtp(SUBMIT)
    expect(d, "AUTH PLAIN ====", 501, "invalid base64")
    expect(d, "AUTH PLAIN QQ", 501, "invalid base64")
    expect(d, "AUTH PLAIN", 334)
    expect(d, "not base64!", 501, "invalid base64")
    expect(d, "AUTH LOGIN", 334)
    expect(d, "@@@", 501, "Invalid base64")
    expect(d, "AUTH LOGIN YW5h", 334)
    expect(d, "%%%", 501, "Invalid base64")
    expect(d, "AUTH LOGIN\r\n*", 334)         # the 334 for LOGIN; '*' cancels
    got, lines = d.smtp_reply()
    check(got == 501, f"'*' cancels AUTH with 501: {lines}")
    expect(d, "MAIL FROM:<ana@lab.test>", 530)  # still not authenticated
    d.close()
    smtp_alive(SUBMIT)


def test_starttls_twice():
    d = smtp()
    expect(d, "STARTTLS", 220)
    d.s = TLS.wrap_socket(d.s, server_hostname="localhost")
    d.buf = b""
    lines = expect(d, "EHLO again", 250)
    check(not any("STARTTLS" in l for l in lines), "STARTTLS not offered inside TLS")
    expect(d, "STARTTLS", 503)
    expect(d, "NOOP", 250)
    expect(d, "QUIT", 221)
    d.close()
    # STARTTLS with an argument, and in the middle of a transaction
    d = smtp()
    expect(d, "STARTTLS now", 501)
    expect(d, "MAIL FROM:<a@example.org>", 250)
    expect(d, "STARTTLS", 503, "RSET first")
    d.close()
    smtp_alive()


# ---- POP3 -------------------------------------------------------------------

def pop3_login(user):
    d = Dialog(HOST, POP3)
    check(d.pop3().startswith("+OK"), "greeting")
    check(d.pop3(f"USER {user}").startswith("+OK"), "USER")
    check(d.pop3(f"PASS {PASSWORDS[user]}").startswith("+OK"), "PASS")
    return d


def test_pop3_message_numbers():
    for i in range(2):
        lab.admin("deliver", "bob", stdin=f"Subject: n{i}\r\n\r\nbody {i}\r\n".encode())
    huge = "9" * 30
    d = pop3_login("bob")
    stat = d.pop3("STAT")
    n = int(stat.split()[1])
    check(n >= 2, f"STAT {stat}")
    d.pop3("QUIT")
    d.close()
    # One session per verb: each bad number counts toward max_errors (20).
    for verb in ("RETR", "DELE", "TOP", "LIST", "UIDL"):
        d = pop3_login("bob")
        extra = " 1" if verb == "TOP" else ""
        for arg, want in (("0", "No such message"), ("-1", "Invalid message number"),
                          (huge, "No such message"), (str(n + 1), "No such message"),
                          ("abc", "Invalid message number"), ("1x", "Invalid message number"),
                          ("0x1", "Invalid message number"), ("1.0", "Invalid message number")):
            r = d.pop3(f"{verb} {arg}{extra}")
            check(r.startswith("-ERR"), f"{verb} {arg!r}: {r}")
            check(want in r, f"{verb} {arg!r}: {want!r} not in {r!r}")
        if verb == "TOP":
            for arg in ("1 -1", "1 abc", "1", "1 1x"):
                r = d.pop3(f"TOP {arg}")
                check(r.startswith("-ERR"), f"TOP {arg}: {r}")
            # more lines than the body has: the whole message (RFC 1939 7)
            check(d.pop3("TOP 1 " + huge).startswith("+OK"), "TOP 1 huge")
            top = d.pop3_multi()
            check(d.pop3("RETR 1").startswith("+OK"), "RETR 1")
            check(d.pop3_multi() == top, "TOP 1 huge is the whole message")
        # Nothing was deleted by any of that.
        check(d.pop3("STAT") == stat, f"STAT unchanged after {verb}")
        check(d.pop3("QUIT").startswith("+OK"), "QUIT")
        d.close()
    pop3_alive()


def test_pop3_stls_twice():
    d = Dialog(HOST, POP3)
    check(d.pop3().startswith("+OK"), "greeting")
    check(d.pop3("STLS").startswith("+OK"), "STLS")
    d.s = TLS.wrap_socket(d.s, server_hostname="localhost")
    d.buf = b""
    r = d.pop3("STLS")
    check(r.startswith("-ERR"), f"second STLS: {r}")
    check(d.pop3("USER ana").startswith("+OK"), "USER inside TLS")
    check(d.pop3(f"PASS {PASSWORDS['ana']}").startswith("+OK"), "PASS inside TLS")
    r = d.pop3("STLS")
    check(r.startswith("-ERR"), f"STLS in TRANSACTION: {r}")
    check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    d.close()
    pop3_alive()


def test_pop3_hostile_bytes():
    d = Dialog(HOST, POP3)
    check(d.pop3().startswith("+OK"), "greeting")
    d.send(b"USER \x00ana\r\n")
    check(d.line().startswith("-ERR"), "NUL in USER")
    d.send(b"\xff\xfe\xfd\x80\r\n")
    check(d.line().startswith("-ERR"), "8-bit garbage")
    d.send(b"USER " + b"a" * 100000 + b"\r\n")
    check(d.line().startswith("-ERR"), "100 KB line")
    check(d.pop3("NOOP").startswith(("+OK", "-ERR")), "session goes on")
    d.close()
    pop3_alive()


# ---- mailcli -----------------------------------------------------------------

def nested_message(depth):
    head = "".join(f"Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
                   for i in range(depth))
    tail = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    return (head + "Content-Type: text/plain\r\n\r\nthe bottom\r\n" + tail).encode()


def test_mime_nested_10000_levels():
    path = os.path.join(lab.dir, "nested.eml")
    with open(path, "wb") as f:
        f.write(nested_message(10000))
    t0 = time.time()
    p = subprocess.run([MAILCLI, "show", path], capture_output=True, timeout=60)
    check(p.returncode == 0, f"show exit {p.returncode}: {p.stderr[-500:]!r}")
    check(time.time() - t0 < 30, "show took too long")
    # message/rfc822 inside message/rfc822, 10,000 times
    with open(path, "wb") as f:
        f.write(b"Content-Type: message/rfc822\r\n\r\n" * 10000 + b"Subject: bottom\r\n\r\nx\r\n")
    p = subprocess.run([MAILCLI, "show", path], capture_output=True, timeout=60)
    check(p.returncode == 0, f"show rfc822 nest exit {p.returncode}: {p.stderr[-500:]!r}")
    out = os.path.join(lab.dir, "extract")
    os.mkdir(out)
    with open(path, "wb") as f:
        f.write(nested_message(10000))
    p = subprocess.run([MAILCLI, "extract", path, "--dir", out], capture_output=True, timeout=60)
    check(p.returncode >= 0, f"extract killed by signal {-p.returncode}")
    for name in os.listdir(out):
        check(os.path.isfile(os.path.join(out, name)), f"extract wrote a non-file {name}")
    smtp_alive()
    pop3_alive()


def test_servers_alive_at_end():
    smtp_alive()
    smtp_alive(SUBMIT)
    pop3_alive()
    check(lab.smtpd.poll() is None and lab.pop3d.poll() is None, "daemons still running")


if __name__ == "__main__":
    run([test_nul_bytes, test_8bit_bytes_in_commands, test_overlong_lines, test_10000_rcpts,
         test_commands_out_of_order, test_shell_and_sql_in_addresses, test_auth_invalid_base64,
         test_starttls_twice, test_pop3_message_numbers, test_pop3_stls_twice,
         test_pop3_hostile_bytes, test_mime_nested_10000_levels, test_servers_alive_at_end])
