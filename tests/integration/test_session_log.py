#!/usr/bin/env python3
"""test_session_log - the session log, as a teacher uses it:

- a session is readable while it goes on (mailcli admin transcript ID, and
  transcript list shows it as still going on);
- transcript list finds sessions by account, client address, time and a
  line typed in them, without knowing their ids;
- a DATA transcript shows the first and the last lines: a forgotten final
  dot, or '. ' with a blank, shows;
- transcripts keep UTF-8 as typed (Você);
- the log names every refused command with its reply, at the default level.
"""
import os
import re
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import PASSWORDS, Dialog, Lab, check, run  # noqa: E402

lab = Lab()
lab.start_smtpd(roles=("inbound",))
lab.start_pop3d()


def admin(*args):
    p = lab.admin(*args, check=False)
    check(p.returncode == 0, f"admin {args}: {p.returncode} {p.stderr}")
    return p.stdout


def session_id(greeting_lines):
    m = re.search(r"session ([0-9a-f]{20})", greeting_lines[-1])
    check(m, f"session id in {greeting_lines}")
    return m.group(1)


def wait_for(fn, what, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def listed(*filters):
    """Session ids that transcript list prints for these filters."""
    out = admin("transcript", "list", *filters)
    return [l.split()[2] for l in out.splitlines()[1:] if re.match(r"^\d{4}-", l)], out


def test_live_transcript():
    d = Dialog(lab.host, lab.smtp_port)
    sid = session_id(d.smtp_reply()[1])
    d.expect(250, "HELO student.lab.test")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    # the session is still open: its lines are in the store already
    tr = wait_for(lambda: (lambda t: t if "C: MAIL FROM:<ana@lab.test>" in t else None)(
        lab.admin("transcript", sid, check=False).stdout), "the live transcript")
    check("S: 250 2.1.0 Sender <ana@lab.test> ok" in tr, tr)
    ids, out = listed("--limit", "5")
    check(sid in ids, out)
    row = [l for l in out.splitlines() if sid in l][0]
    check("open" in row and "still going on" in row, row)
    d.expect(221, "QUIT")
    d.close()
    wait_for(lambda: "quit" in [l for l in listed("--limit", "5")[1].splitlines() if sid in l][0],
             "the session's end")


def test_list_filters():
    # bob receives (SMTP from 127.0.0.2), then logs in (POP3)
    s = socket.create_connection((lab.host, lab.smtp_port), timeout=10, source_address=("127.0.0.2", 0))
    d = Dialog.__new__(Dialog)
    d.s, d.buf = s, b""
    smtp_id = session_id(d.smtp_reply()[1])
    d.smtp_send("Subject: lanche\r\n\r\nE que tal ketchup?\r\n", rcpts=("bob@lab.test",),
                ehlo="consumidor.br")
    d.expect(221, "QUIT")
    p = Dialog(lab.host, lab.pop3_port)
    p.pop3()
    check(p.pop3("USER bob").startswith("+OK"), "USER")
    check(p.pop3("PASS " + PASSWORDS["bob"]).startswith("+OK"), "PASS")
    p.pop3("QUIT")
    p.close()
    # ana's own session, to be filtered out
    d = Dialog(lab.host, lab.smtp_port)
    ana_id = session_id(d.smtp_reply()[1])
    d.smtp_send("Subject: x\r\n\r\nnada\r\n", rcpts=("ana@lab.test",), ehlo="lab.test")
    d.expect(221, "QUIT")

    bob = wait_for(lambda: (lambda ids: ids if smtp_id in ids and
                            len([i for i in ids]) >= 2 else None)(listed("--user", "bob")[0]),
                   "bob's sessions")
    check(ana_id not in bob, f"ana's session is not bob's: {bob}")
    _, out = listed("--user", "bob")
    check(re.search(r"pop3\s+127\.0\.0\.1\s+bob", out), f"bob's POP3 login listed:\n{out}")
    ids, out = listed("--client", "127.0.0.2")
    check(ids == [smtp_id], f"--client 127.0.0.2: {ids}\n{out}")
    ids, out = listed("--text", "ketchup")
    check(ids == [smtp_id], f"--text ketchup: {ids}\n{out}")
    ids, _ = listed("--since", "1h", "--user", "bob")
    check(smtp_id in ids, "--since 1h keeps today's")
    ids, out = listed("--since", "2099-01-01")
    check(ids == [] and "no session matches" in out, out)
    p = lab.admin("transcript", "list", "--since", "yesterday-ish", check=False)
    check(p.returncode == 2 and "--since" in p.stderr, p.stderr)


def test_data_tail_and_utf8():
    d = Dialog(lab.host, lab.smtp_port)
    sid = session_id(d.smtp_reply()[1])
    d.smtp_start_data(ehlo="lab.test")
    d.send("Voc\u00ea gosta de chocolate?\r\n" + "".join(f"linha {i}\r\n" for i in range(1, 10))
           + ". \r\nesqueci o ponto\r\n")
    time.sleep(0.3)
    d.close()   # the final dot never came
    tr = wait_for(lambda: (lambda t: t if "connection lost during DATA" in t else None)(
        lab.admin("transcript", sid, check=False).stdout), "the transcript's end")
    check("C: Voc\u00ea gosta de chocolate?" in tr, f"UTF-8 as typed:\n{tr}")
    check("C: linha 3" in tr and "C: linha 5" not in tr, f"first lines only, then a gap:\n{tr}")
    check(re.search(r"\[\.\.\. \d+ lines? of message text not shown \.\.\.\]", tr), tr)
    check("C: linha 9\n" in tr and "C: . \n" in tr and "C: esqueci o ponto\n" in tr,
          f"the last lines before the connection was lost:\n{tr}")
    check("'.' with blanks after it: not the end" in tr, tr)
    check(lab.count("messages", "body like '%esqueci%'") == 0, "nothing was delivered")


def test_refused_commands_logged():
    d = Dialog(lab.host, lab.smtp_port)
    sid = session_id(d.smtp_reply()[1])
    d.expect(250, "HELO lab.test")
    d.expect(503, "RCPT TO:<bob@lab.test>")
    d.expect(501, "MAIL FROM:ana")
    d.expect(250, "MAIL FROM:<ana@lab.test>")
    d.expect(550, "RCPT TO:<nobody@lab.test>")
    d.expect(554, "RCPT TO:<x@far.example>")
    d.expect(500, "FROB")
    d.expect(221, "QUIT")
    log = wait_for(lambda: (lambda l: l if l.count(f"session={sid} event=refused") >= 5 else None)(
        lab.log("smtpd")), "the refusals in smtpd's log")
    for cmd, code in (("RCPT", "503 5.5.1"), ("MAIL", "501"), ("RCPT", "550 5.1.1"),
                      ("RCPT", "554 5.7.1"), ("FROB", "500")):
        check(re.search(rf"session={sid} event=refused cmd={cmd} reply=\"{code}", log),
              f"{cmd} {code} logged:\n{log[-2000:]}")
    check("relay denied" in log and "no such user here" in log, "the reasons are in the log")
    p = Dialog(lab.host, lab.pop3_port)
    p.pop3()
    check(p.pop3("RETR 1").startswith("-ERR"), "RETR before login")
    p.pop3("USER bob")
    check(p.pop3("PASS wrong").startswith("-ERR"), "bad password")
    p.pop3("QUIT")
    p.close()
    log = wait_for(lambda: (lambda l: l if "cmd=RETR reply=\"-ERR" in l and
                                   "event=auth-failed" in l else None)(lab.log("pop3d")),
                   "pop3d's refusals")
    check("wrong" not in log, "the password is never in the log")


if __name__ == "__main__":
    run([test_live_transcript, test_list_filters, test_data_tail_and_utf8,
         test_refused_commands_logged])
