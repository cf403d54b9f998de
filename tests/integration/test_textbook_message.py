#!/usr/bin/env python3
"""test_textbook_message - the message a student types after DATA, exactly as
the textbook shows it (no headers, no blank line, bare LF line endings from
nc), reads back whole: smtpd adds the blank line and the From:, Date: and
Message-ID: it lacks; mailcli read, show and inbox show its text, sender and
date. A message that has those headers is stored as sent.
"""
import email
import email.policy
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, PASSWORDS, check, run, workdir  # noqa: E402

lab = Lab()
lab.start_smtpd(roles=("inbound",))
lab.start_pop3d()
POP3 = f"{lab.host}:{lab.pop3_port}"
ENV = {"HOME": workdir(), "MAILCLI_SERVER": "", "MAILCLI_USER": "", "MAILCLI_TLS": "",
       "MAILCLI_CONFIG": "", "NETRC": "", "MAILCLI_PASSWORD": PASSWORDS["bob"]}
TEXT = "Você gosta de chocolate?\nE que tal ketchup?\n"


def typed(lines):
    """Type lines ending in bare LF, as nc does, waiting for each reply."""
    s = socket.create_connection((lab.host, lab.smtp_port), timeout=10)
    f = s.makefile("rb")
    replies = [f.readline()]
    for line in lines:
        s.sendall(line.encode() + b"\n")
        if line in ("DATA",) or not replies[-1].startswith(b"354"):
            replies.append(f.readline())
            while replies[-1][3:4] == b"-":
                replies.append(f.readline())
        if line == ".":
            replies.append(f.readline())
    s.close()
    return [r.decode("utf-8", "replace") for r in replies]


def stored_bodies():
    out = lab.sql("select hex(body) from messages order by id").decode().split()
    return [bytes.fromhex(h) for h in out]


def mailcli(*args):
    return lab.mailcli(*args, check=False, env=ENV)


def test_textbook_typed_with_nc():
    replies = typed(["HELO consumidor.br", "MAIL FROM: <ana@consumidor.br>",
                     "RCPT TO: <bob@lab.test>", "DATA", "Você gosta de chocolate?",
                     "E que tal ketchup?", ".", "QUIT"])
    codes = [r[:3] for r in replies]
    check(codes[-2:] == ["250", "221"] and "354" in codes, f"replies {replies}")
    raw = stored_bodies()[-1]
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check(msg.defects == [], f"parsed without defects: {msg.defects}\n{raw!r}")
    check(msg["From"] == "ana@consumidor.br", f"From: {msg['From']!r}")
    check(msg["Date"] is not None and msg["Date"].datetime is not None, f"Date: {msg['Date']!r}")
    check(re.match(r"^<[^@<>]+@mx\.lab\.test>$", str(msg["Message-ID"])), msg["Message-ID"])
    body = msg.get_payload(decode=True)
    check(body == TEXT.replace("\n", "\r\n").encode(), f"text {body!r}")
    check(b"\r\n\r\nVoc\xc3\xaa gosta de chocolate?\r\nE que tal ketchup?\r\n" in raw,
          f"the blank line before the text: {raw!r}")

    p = mailcli("read", "1", "--server", POP3, "--user", "bob")
    check(p.returncode == 0, p.stderr)
    check("Você gosta de chocolate?\nE que tal ketchup?" in p.stdout, f"read:\n{p.stdout}")
    check(re.search(r"^From: <?ana@consumidor\.br>?$", p.stdout, re.M), f"read:\n{p.stdout}")
    p = mailcli("inbox", "--server", POP3, "--user", "bob")
    check(p.returncode == 0, p.stderr)
    row = [l for l in p.stdout.splitlines() if re.match(r"^\s+1\s", l)]
    check(row and "ana@consumidor.br" in row[0] and re.search(r"\d{4}-\d\d-\d\d", row[0])
          and "(no subject)" in row[0], f"inbox:\n{p.stdout}")


def test_reader_falls_back_to_the_trace():
    """A stored message with no From:/Date: (as an older correio stored
    them): read and show take the envelope sender and the arrival date."""
    path = os.path.join(workdir(), "old.eml")
    with open(path, "wb") as f:
        f.write(b"Return-Path: <ana@consumidor.br>\r\nReceived: from consumidor.br "
                b"([127.0.0.1])\r\n\tby mx.lab.test (correio) with SMTP id 1a2b3c4d5e6f\r\n"
                b"\tfor <bob@lab.test>; Fri, 04 Dec 2026 10:00:00 -0300\r\n"
                b"Voc\xc3\xaa gosta de chocolate?\r\nE que tal ketchup?\r\n")
    p = mailcli("show", path)
    check(p.returncode == 0, p.stderr)
    check(re.search(r"^From\s+ana@consumidor\.br \(envelope sender\)$", p.stdout, re.M),
          f"show:\n{p.stdout}")
    check(re.search(r"^Date\s+Fri, 04 Dec 2026 10:00:00 -0300 \(arrival\)$", p.stdout, re.M),
          f"show:\n{p.stdout}")
    check("text/plain" in p.stdout, f"the text is the body: {p.stdout}")


def test_complete_message_stored_as_sent():
    text = ("From: Ana <ana@lab.test>\r\nTo: bob@lab.test\r\nSubject: inteira\r\n"
            "Date: Fri, 4 Dec 2026 10:00:00 -0300\r\nMessage-ID: <inteira@lab.test>\r\n"
            "\r\ncorpo\r\n")
    s = socket.create_connection((lab.host, lab.smtp_port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for cmd in ("HELO lab.test", "MAIL FROM:<ana@lab.test>", "RCPT TO:<bob@lab.test>", "DATA"):
        s.sendall(cmd.encode() + b"\r\n")
        f.readline()
    s.sendall(text.encode() + b".\r\n")
    check(f.readline().startswith(b"250 "), "accepted")
    s.close()
    raw = stored_bodies()[-1]
    check(raw.endswith(text.encode()), f"stored as sent after the trace: {raw!r}")
    check(raw.count(b"\r\nDate: ") == 1 and raw.count(b"Message-ID:") == 1, raw)


def test_only_what_is_missing_is_added():
    """Subject and From given, Date and Message-ID not: only those two are
    added, at the end of the header section; the rest is as sent."""
    s = socket.create_connection((lab.host, lab.smtp_port), timeout=10)
    f = s.makefile("rb")
    f.readline()
    for cmd in ("HELO lab.test", "MAIL FROM:<ana@lab.test>", "RCPT TO:<bob@lab.test>", "DATA"):
        s.sendall(cmd.encode() + b"\r\n")
        f.readline()
    s.sendall(b"From: Ana <ana@lab.test>\r\nSubject: meia\r\n\r\ncorpo\r\n.\r\n")
    check(f.readline().startswith(b"250 "), "accepted")
    s.close()
    raw = stored_bodies()[-1]
    client = raw[raw.index(b"From: Ana"):]
    check(re.fullmatch(rb"From: Ana <ana@lab\.test>\r\nSubject: meia\r\nDate: [^\r\n]+\r\n"
                       rb"Message-ID: <[^\r\n]+@mx\.lab\.test>\r\n\r\ncorpo\r\n", client),
          f"stored {client!r}")


if __name__ == "__main__":
    run([test_textbook_typed_with_nc, test_reader_falls_back_to_the_trace,
         test_complete_message_stored_as_sent, test_only_what_is_missing_is_added])
