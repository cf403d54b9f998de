#!/usr/bin/env python3
"""pop3d protocol tests over a raw socket: the textbook RFC 1939 session,
message numbers and their errors, DELE/RSET/QUIT semantics, the store lock,
dropped connections, dot-stuffing, CAPA, AUTH, HELP, telnet tolerance,
pipelining and hostile input (each ending with "is the server still alive?").

Messages are put into mailboxes with `mailcli admin deliver`, so every
comparison is byte-exact against what was delivered.
"""
import base64
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, check, run, wait_for, PASSWORDS  # noqa: E402


# auth_fail_delay_max = 2: the delays grow 1, 2, then stay at 2 seconds
lab = Lab(config_extra="[limits]\nauth_fail_delay_max = 2\n")
lab.start_pop3d()
HOST, PORT = lab.host, lab.pop3_port


def deliver(account, msg):
    if isinstance(msg, str):
        msg = msg.encode()
    lab.admin("deliver", account, stdin=msg)


def msg(subject, body):
    return (f"From: ana@lab.test\r\nTo: bob@lab.test\r\nSubject: {subject}\r\n"
            f"Message-ID: <{subject.replace(' ', '.')}@lab.test>\r\n\r\n{body}").encode()


def login(user="bob"):
    d = Dialog(HOST, PORT)
    g = d.pop3()
    check(g.startswith("+OK"), f"greeting {g!r}")
    check(d.pop3(f"USER {user}").startswith("+OK"), "USER")
    r = d.pop3(f"PASS {PASSWORDS[user]}")
    check(r.startswith("+OK"), f"PASS: {r!r}")
    return d


def unstuff(data):
    return b"".join(l[1:] if l.startswith(b".") else l for l in data.splitlines(keepends=True))


def alive():
    """Is the server still alive? A fresh session must log in and quit."""
    d = Dialog(HOST, PORT)
    check(d.pop3().startswith("+OK"), "greeting on a new connection")
    check(d.pop3("CAPA").startswith("+OK"), "CAPA")
    d.pop3_multi()
    check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    d.close()


def empty_mailbox(user):
    d = login(user)
    n = int(d.pop3("STAT").split()[1])
    for i in range(1, n + 1):
        check(d.pop3(f"DELE {i}").startswith("+OK"), "DELE")
    check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    d.close()


# ---- the tests ---------------------------------------------------------------

def test_greeting_has_session_id_and_no_apop_banner():
    d = Dialog(HOST, PORT)
    g = d.pop3()
    check(g.startswith("+OK "), g)
    check("<" not in g and ">" not in g, f"greeting must not carry an APOP timestamp: {g}")
    check("session" in g, f"session id in the greeting: {g}")
    r = d.pop3("APOP ana 0123456789abcdef0123456789abcdef")
    check(r.startswith("-ERR") and "APOP" in r, r)
    d.pop3("QUIT")
    d.close()


def test_textbook_session_byte_exact():
    empty_mailbox("ana")
    m1 = msg("first", "Hello Ana,\r\nthis is the first message.\r\n")
    m2 = msg("second", "Second body\r\n")
    deliver("ana", m1)
    deliver("ana", m2)
    d = Dialog(HOST, PORT)
    check(d.pop3().startswith("+OK"), "greeting")
    check(d.pop3("USER ana").startswith("+OK"), "USER")
    check(d.pop3("PASS " + PASSWORDS["ana"]).startswith("+OK"), "PASS")
    r = d.pop3("STAT")
    check(r == f"+OK 2 {len(m1) + len(m2)}", f"STAT {r!r}")
    check(d.pop3("LIST").startswith("+OK"), "LIST")
    check(d.pop3_multi() == [f"1 {len(m1)}", f"2 {len(m2)}"], "LIST sizes are exact octets")
    r = d.pop3("RETR 1")
    check(r == f"+OK {len(m1)} octets", r)
    check(unstuff(d.pop3_multi_raw()) == m1, "RETR 1 is byte-exact")
    check(d.pop3("DELE 1").startswith("+OK"), "DELE 1")
    r = d.pop3("QUIT")
    check(r.startswith("+OK") and "1 message deleted" in r, r)
    check(d.closed(), "connection closed after QUIT")
    d = login("ana")
    check(d.pop3("STAT") == f"+OK 1 {len(m2)}", "message 1 deleted at QUIT, message 2 kept")
    d.pop3("RETR 1")
    check(unstuff(d.pop3_multi_raw()) == m2, "the remaining message renumbered as 1 in the next session")
    d.pop3("QUIT")


def test_commands_case_insensitive_and_single_forms():
    empty_mailbox("bob")
    deliver("bob", msg("one", "x\r\n"))
    deliver("bob", msg("two", "y\r\n"))
    d = login("bob")
    r1 = d.pop3("uidl 1")
    r2 = d.pop3("UiDl 2")
    check(r1.startswith("+OK 1 ") and r2.startswith("+OK 2 "), (r1, r2))
    u1, u2 = r1.split()[2], r2.split()[2]
    check(u1 != u2, "UIDLs differ")
    check(all(0x21 <= ord(c) <= 0x7e for c in u1) and 1 <= len(u1) <= 70, "UIDL charset")
    check(d.pop3("UIDL").startswith("+OK"), "UIDL")
    check(d.pop3_multi() == [f"1 {u1}", f"2 {u2}"], "UIDL listing matches single forms")
    check(d.pop3("list 2").startswith("+OK 2 "), "LIST 2")
    check(d.pop3("noop") == "+OK", "NOOP")
    d.pop3("QUIT")
    d = login("bob")
    check(d.pop3("UIDL 1") == r1, "UIDL stable across sessions")
    d.pop3("QUIT")


def test_bad_message_numbers():
    empty_mailbox("bob")
    deliver("bob", msg("only", "body\r\n"))
    d = login("bob")
    for cmd in ("RETR 0", "RETR 99999999999999999999", "RETR 2", "RETR -1", "RETR 1x",
                "LIST 0", "UIDL 3", "DELE 0", "TOP 0 1", "TOP 1 -1", "TOP 1", "TOP 1 x",
                "LIST 1 2", "RETR", "DELE", "STAT 1"):
        r = d.pop3(cmd)
        check(r.startswith("-ERR "), f"{cmd}: {r!r}")
        check(len(r) > 6, f"{cmd}: a human reason is given")
    check(d.pop3("STAT").startswith("+OK 1 "), "nothing changed after the errors")
    d.pop3("QUIT")


def test_dele_twice_rset_undoes():
    empty_mailbox("bob")
    deliver("bob", msg("a", "a\r\n"))
    deliver("bob", msg("b", "b\r\n"))
    d = login("bob")
    stat = d.pop3("STAT")
    check(d.pop3("DELE 1").startswith("+OK"), "DELE 1")
    r = d.pop3("DELE 1")
    check(r.startswith("-ERR"), f"DELE twice: {r}")
    check(d.pop3("RETR 1").startswith("-ERR"), "RETR of a deleted message")
    check(d.pop3("LIST 1").startswith("-ERR"), "LIST of a deleted message")
    check(d.pop3("STAT").startswith("+OK 1 "), "STAT leaves out deleted messages")
    d.pop3("LIST")
    check([l.split()[0] for l in d.pop3_multi()] == ["2"], "LIST leaves out deleted messages")
    check(d.pop3("RSET").startswith("+OK"), "RSET")
    check(d.pop3("STAT") == stat, "RSET undoes DELE")
    check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    d = login("bob")
    check(d.pop3("STAT") == stat, "nothing deleted after RSET + QUIT")
    d.pop3("QUIT")


def test_dropped_connection_deletes_nothing():
    empty_mailbox("bob")
    deliver("bob", msg("keep1", "k\r\n"))
    deliver("bob", msg("keep2", "k\r\n"))
    d = login("bob")
    stat = d.pop3("STAT")
    d.pop3("DELE 1")
    d.pop3("DELE 2")
    d.s.shutdown(socket.SHUT_RDWR)
    d.close()
    # the lock is released when pop3d notices the close
    deadline = time.time() + 5
    while True:
        d = Dialog(HOST, PORT)
        d.pop3()
        d.pop3("USER bob")
        r = d.pop3("PASS " + PASSWORDS["bob"])
        if r.startswith("+OK") or time.time() > deadline:
            break
        d.close()
        time.sleep(0.1)
    check(r.startswith("+OK"), f"login after a drop: {r}")
    check(d.pop3("STAT") == stat, "a dropped connection deletes nothing")
    d.pop3("QUIT")
    check(lab.log_has("pop3d", "event=logout user=bob reason=eof"),
          "the drop is logged as a logout")


def test_second_login_in_use():
    d1 = login("bob")
    d2 = Dialog(HOST, PORT)
    d2.pop3()
    d2.pop3("USER bob")
    r = d2.pop3("PASS " + PASSWORDS["bob"])
    check(r.startswith("-ERR [IN-USE]"), f"second session: {r}")
    # the failed login left the second session in AUTHORIZATION
    check(d2.pop3("STAT").startswith("-ERR"), "STAT before login")
    d2.pop3("QUIT")
    check(d1.pop3("NOOP") == "+OK", "first session unaffected")
    check(d1.pop3("QUIT").startswith("+OK"), "QUIT")
    d3 = login("bob")
    d3.pop3("QUIT")
    check(lab.sql("SELECT count(*) FROM locks WHERE account='bob'").strip() == b"0",
          "lock released at QUIT")


def test_mail_arriving_during_session_appears_next_time():
    empty_mailbox("bob")
    deliver("bob", msg("before", "1\r\n"))
    d = login("bob")
    check(d.pop3("STAT").startswith("+OK 1 "), "one message")
    deliver("bob", msg("during", "2\r\n"))
    check(d.pop3("STAT").startswith("+OK 1 "), "message numbers fixed for the session")
    check(d.pop3("LIST 2").startswith("-ERR"), "new mail not visible yet")
    d.pop3("DELE 1")
    d.pop3("QUIT")
    d = login("bob")
    check(d.pop3("STAT").startswith("+OK 1 "), "the new message, and only it, next time")
    d.pop3("RETR 1")
    check(b"Subject: during" in d.pop3_multi_raw(), "it is the one that arrived during the session")
    d.pop3("QUIT")


def test_dot_stuffing_retr_and_top():
    empty_mailbox("bob")
    body = ".starts with a dot\r\n..two dots\r\n.\r\nmiddle\r\n. \r\nend\r\n"
    m = msg("dots", body)
    deliver("bob", m)
    d = login("bob")
    check(d.pop3("LIST 1") == f"+OK 1 {len(m)}", "LIST counts unstuffed octets")
    d.pop3("RETR 1")
    raw = d.pop3_multi_raw()
    check(b"\r\n..starts with a dot\r\n...two dots\r\n..\r\nmiddle\r\n.. \r\n" in raw,
          f"lines starting with '.' are stuffed: {raw!r}")
    check(unstuff(raw) == m, "unstuffed RETR is byte-exact")
    check(d.pop3("TOP 1 3").startswith("+OK"), "TOP 1 3")
    raw = d.pop3_multi_raw()
    hdr = m.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    check(unstuff(raw) == hdr + b".starts with a dot\r\n..two dots\r\n.\r\n",
          f"TOP sends the header and 3 body lines: {raw!r}")
    check(d.pop3("TOP 1 0").startswith("+OK"), "TOP 1 0")
    check(unstuff(d.pop3_multi_raw()) == hdr, "TOP 0: header and blank line")
    check(d.pop3("TOP 1 999999999999999999999").startswith("+OK"), "huge TOP count")
    check(unstuff(d.pop3_multi_raw()) == m, "TOP with a huge count sends everything")
    d.pop3("QUIT")


def test_capa_per_state():
    d = Dialog(HOST, PORT)
    d.pop3()
    check(d.pop3("CAPA").startswith("+OK"), "CAPA")
    caps = d.pop3_multi()
    for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER",
              "SASL PLAIN LOGIN"):
        check(c in caps, f"{c} in CAPA: {caps}")
    check(any(c.startswith("IMPLEMENTATION ") for c in caps), "IMPLEMENTATION")
    check("STLS" not in caps, "no STLS without TLS configured")
    check(not any(c.startswith("APOP") for c in caps), "no APOP")
    r = d.pop3("STLS")
    check(r.startswith("-ERR"), f"STLS without TLS: {r}")
    d.pop3("USER ana")
    d.pop3("PASS " + PASSWORDS["ana"])
    d.pop3("CAPA")
    caps = d.pop3_multi()
    check("USER" not in caps and not any(c.startswith("SASL") for c in caps),
          f"no login capabilities after login: {caps}")
    check("TOP" in caps and "UIDL" in caps, "TOP/UIDL after login")
    d.pop3("QUIT")


def test_wrong_state_refused():
    d = Dialog(HOST, PORT)
    d.pop3()
    for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "RSET", "TOP 1 1", "UIDL"):
        r = d.pop3(cmd)
        check(r.startswith("-ERR") and "log" in r, f"{cmd} before login: {r}")
    check(d.pop3("PASS x").startswith("-ERR"), "PASS before USER")
    d.pop3("USER bob")
    d.pop3("PASS " + PASSWORDS["bob"])
    for cmd in ("USER bob", "PASS x", "AUTH PLAIN", "STLS"):
        r = d.pop3(cmd)
        check(r.startswith("-ERR"), f"{cmd} after login: {r}")
    check(d.pop3("NOOP") == "+OK", "still in TRANSACTION")
    d.pop3("QUIT")


def test_auth_plain_login_cancel():
    d = Dialog(HOST, PORT)
    d.pop3()
    check(d.pop3("AUTH").startswith("+OK"), "bare AUTH")
    check(d.pop3_multi() == ["PLAIN", "LOGIN"], "bare AUTH lists the mechanisms")
    # PLAIN with a continuation, cancelled
    check(d.pop3("AUTH PLAIN") == "+ ", "continuation")
    check(d.pop3("*").startswith("-ERR"), "* cancels")
    # invalid base64 is refused (strict)
    check(d.pop3("AUTH PLAIN") == "+ ", "continuation")
    check(d.pop3("not base64!").startswith("-ERR"), "bad base64")
    check(d.pop3("AUTH CRAM-MD5").startswith("-ERR"), "unsupported mechanism")
    # LOGIN with prompts
    check(d.pop3("AUTH LOGIN") == "+ VXNlcm5hbWU6", "Username: prompt")
    check(d.pop3(base64.b64encode(b"bob").decode()) == "+ UGFzc3dvcmQ6", "Password: prompt")
    r = d.pop3(base64.b64encode(PASSWORDS["bob"].encode()).decode())
    check(r.startswith("+OK"), f"AUTH LOGIN: {r}")
    d.pop3("QUIT")
    # PLAIN with an initial response
    d = Dialog(HOST, PORT)
    d.pop3()
    ir = base64.b64encode(b"\0bob\0" + PASSWORDS["bob"].encode()).decode()
    r = d.pop3("AUTH PLAIN " + ir)
    check(r.startswith("+OK"), f"AUTH PLAIN ir: {r}")
    d.pop3("QUIT")
    # LOGIN with the user name as initial response
    d = Dialog(HOST, PORT)
    d.pop3()
    check(d.pop3("AUTH LOGIN " + base64.b64encode(b"bob").decode()) == "+ UGFzc3dvcmQ6", "LOGIN ir")
    r = d.pop3(base64.b64encode(PASSWORDS["bob"].encode()).decode())
    check(r.startswith("+OK"), f"AUTH LOGIN ir: {r}")
    d.pop3("QUIT")


def test_failed_logins_delayed_masked_and_vague():
    t0 = time.time()
    d = Dialog(HOST, PORT)
    d.pop3()
    check(d.pop3("USER nosuchuser").startswith("+OK"), "USER accepts any name")
    r1 = d.pop3("PASS wrong-password-1")
    t1 = time.time()
    d.pop3("USER bob")
    r2 = d.pop3("PASS wrong-password-2")
    t2 = time.time()
    check(r1.startswith("-ERR [AUTH]") and r2.startswith("-ERR [AUTH]"), (r1, r2))
    check(r1 == r2, "the reply does not tell whether the user exists")
    check(t1 - t0 >= 0.9, f"first failure delayed ({t1 - t0:.2f}s)")
    check(t2 - t1 >= 1.8, f"second failure delayed longer ({t2 - t1:.2f}s)")
    # other sessions are not blocked meanwhile
    d.send("USER bob\r\nPASS wrong-password-3\r\n")
    t3 = time.time()
    alive()
    check(time.time() - t3 < 1.5, "another session is served during the delay")
    d.pop3()
    check(d.pop3().startswith("-ERR [AUTH]"), "third failure")
    t4 = time.time() - t3
    check(1.8 <= t4 < 3.5, f"third failure delayed at most auth_fail_delay_max ({t4:.2f}s)")
    # a good login still works in the same session
    d.pop3("USER bob")
    check(d.pop3("PASS " + PASSWORDS["bob"]).startswith("+OK"), "login after failures")
    d.pop3("QUIT")
    log = lab.wait_log("pop3d", "user=nosuchuser")
    check("event=auth-failed" in log and "user=nosuchuser" in log, "failures logged")
    check("wrong-password" not in log, "passwords never logged")
    check(d.closed(), "closed after QUIT")
    sid = None
    for line in log.splitlines():
        if "event=auth-failed" in line:
            sid = line.split("session=")[1].split()[0]
    check(sid is not None, "session id in the log")
    time.sleep(0.2)
    tr = lab.admin("transcript", sid).stdout.encode()
    check(b"USER bob" in tr, f"transcript recorded: {tr[:300]!r}")
    check(b"wrong-password" not in tr and PASSWORDS["bob"].encode() not in tr,
          "PASS masked in the transcript")


def test_transcript_masks_auth_and_summarises_bodies():
    empty_mailbox("ana")
    deliver("ana", msg("secret body", "SECRET-BODY-TEXT\r\n"))
    d = Dialog(HOST, PORT)
    g = d.pop3()
    sid = g.split("session ")[1].rstrip(")")
    ir = base64.b64encode(b"\0ana\0" + PASSWORDS["ana"].encode()).decode()
    check(d.pop3("AUTH PLAIN " + ir).startswith("+OK"), "AUTH PLAIN")
    d.pop3("RETR 1")
    d.pop3_multi_raw()
    d.pop3("QUIT")
    d.closed()
    time.sleep(0.3)
    tr = lab.admin("transcript", sid).stdout
    check("C: AUTH" in tr and "RETR 1" in tr, f"transcript has the commands: {tr}")
    check(ir not in tr, "AUTH initial response masked")
    check("SECRET-BODY-TEXT" not in tr, "message bodies are summarised, not copied")
    check("octets" in tr, "body summary present")


def test_help_and_hand_typing():
    d = Dialog(HOST, PORT)
    d.pop3()
    check(d.pop3("HELP").startswith("+OK"), "HELP")
    lines = d.pop3_multi()
    check(any("USER" in l for l in lines) and any("QUIT" in l for l in lines), lines)
    check(d.pop3("HELP RETR").startswith("+OK RETR"), "HELP RETR")
    # bare LF, backspace corrections, telnet IAC negotiation
    d.send(b"USER bobx\x08\n")
    r = d.line()
    check(r.startswith("+OK") and r.endswith(" bob"), f"USER with backspace: {r}")
    d.send(b"\xff\xfb\x18\xff\xfd\x03PASS " + PASSWORDS["bob"].encode() + b"\n")
    r = d.line()
    check(r.startswith("+OK"), f"PASS after IAC bytes with bare LF: {r}")
    d.send(b"NOOQ\x7fP\r\n")
    check(d.line() == "+OK", "DEL applied")
    d.send(b"\xff\xf4\xff\xfd\x06\r\n")   # IAC IP IAC DO TM: nothing but negotiation
    d.send(b"STAT\r\n")
    check(d.line().startswith("+OK"), "negotiation-only line ignored")
    d.pop3("QUIT")


def test_pipelined_commands_answered_in_order():
    empty_mailbox("bob")
    msgs = [msg(f"p{i}", f"body {i}\r\n" * (i + 1)) for i in range(5)]
    for m in msgs:
        deliver("bob", m)
    d = Dialog(HOST, PORT)
    d.pop3()
    batch = "USER bob\r\nPASS %s\r\nSTAT\r\n" % PASSWORDS["bob"]
    batch += "".join(f"RETR {i}\r\nNOOP\r\n" for i in range(1, 6)) + "LIST\r\nQUIT\r\n"
    d.send(batch)
    check(d.line().startswith("+OK"), "USER")
    check(d.line().startswith("+OK"), "PASS")
    check(d.line().startswith("+OK 5 "), "STAT")
    for i in range(5):
        check(d.line().startswith("+OK"), f"RETR {i + 1}")
        check(unstuff(d.pop3_multi_raw()) == msgs[i], f"RETR {i + 1} body in order")
        check(d.line() == "+OK", "NOOP")
    check(d.line().startswith("+OK 5 "), "LIST")
    check(len(d.pop3_multi()) == 5, "LIST lines")
    check(d.line().startswith("+OK"), "QUIT")
    check(d.closed(), "closed after QUIT")


def test_hostile_inputs_then_alive():
    d = Dialog(HOST, PORT)
    d.pop3()
    d.send(b"A" * 10000 + b"\r\n")
    r = d.line()
    check(r.startswith("-ERR") and "long" in r, f"long line: {r}")
    d.send(b"NOOP\x00junk\r\n")
    check(d.line().startswith("-ERR"), "NUL byte refused")
    d.send(b"\x80\x81\xfe\xfa\r\n")
    check(d.line().startswith("-ERR"), "binary garbage")
    d.send(b"USER " + b"x" * 300 + b"\r\n")
    check(d.line().startswith("-ERR"), "over-long user name")
    d.send(b"AUTH PLAIN " + b"=" * 200 + b"\r\n")
    check(d.line().startswith("-ERR"), "garbage initial response")
    d.send(b"\r\n")
    check(d.line().startswith("-ERR"), "empty line")
    check(d.pop3("NOOP") == "+OK", "session survives")
    d.close()
    alive()
    # too many errors close the session
    d = Dialog(HOST, PORT)
    d.pop3()
    d.send(b"BOGUS\r\n" * 30)
    n = 0
    try:
        while True:
            l = d.line()
            check(l.startswith("-ERR"), l)
            n += 1
    except EOFError:
        pass
    check(10 <= n <= 25, f"closed after too many errors ({n} replies)")
    alive()
    # a client that connects and vanishes, one that sends half a line
    s = socket.create_connection((HOST, PORT))
    s.close()
    s = socket.create_connection((HOST, PORT))
    s.sendall(b"USER bo")
    s.close()
    # a flood of pipelined commands the client never reads
    s = socket.create_connection((HOST, PORT))
    try:
        s.settimeout(3)
        s.sendall(b"NOOP\r\n" * 100000)
    except OSError:
        pass
    s.close()
    alive()


def test_implicit_quit_and_logout_line():
    empty_mailbox("bob")
    deliver("bob", msg("log", "x\r\n"))
    d = login("bob")
    d.pop3("RETR 1")
    d.pop3_multi_raw()
    d.pop3("DELE 1")
    d.pop3("QUIT")
    d.closed()
    log = lab.wait_log("pop3d", "retr=1 dele=1 bytes=")
    check("event=login " in log and "user=bob" in log, "login logged")
    check("retr=1 dele=1 bytes=" in log, "logout line with counts")


def test_connection_limit_per_address():
    small = Lab(users={"ana": PASSWORDS["ana"]},
                config_extra="[limits]\nmax_connections_per_addr = 2\n")
    try:
        small.start_pop3d()
        time.sleep(0.5)     # the harness's port probe must have been let go
        a = Dialog(small.host, small.pop3_port)
        b = Dialog(small.host, small.pop3_port)
        check(a.pop3().startswith("+OK") and b.pop3().startswith("+OK"), "two sessions")
        c = Dialog(small.host, small.pop3_port)
        r = c.pop3()
        check(r.startswith("-ERR [SYS/TEMP]"), f"third connection from the address: {r}")
        check(c.closed(), "refused connection closed")
        check(a.pop3("NOOP") == "+OK", "the first sessions carry on")
        a.pop3("QUIT")
        a.closed()
        time.sleep(0.2)
        d = Dialog(small.host, small.pop3_port)
        check(d.pop3().startswith("+OK"), "room again after one left")
        d.pop3("QUIT")
        b.pop3("QUIT")
    finally:
        small.stop()


def test_ipv6_loopback():
    six = Lab(users={"ana": PASSWORDS["ana"]}, host="::1")
    try:
        six.start_pop3d()
        d = Dialog("::1", six.pop3_port)
        check(d.pop3().startswith("+OK"), "greeting over IPv6")
        d.pop3("CAPA")
        check("USER" in d.pop3_multi(), "::1 counts as loopback: plaintext login offered")
        d.pop3("USER ana")
        check(d.pop3("PASS " + PASSWORDS["ana"]).startswith("+OK"), "login over IPv6")
        d.pop3("QUIT")
        check(six.log_has("pop3d", "client=::1"), "peer address logged")
    finally:
        six.stop()


def test_drops_privileges_when_root():
    if os.geteuid() != 0:
        print("skip: not root")
        return
    lab2 = Lab(users={"ana": PASSWORDS["ana"]}, config_extra="[smtpd]\nuser = nobody\n")
    try:
        lab2.admin("deliver", "ana", stdin=msg("priv", "x\r\n"))
        nobody = lab2.give_to("nobody")  # the service user must be able to use the store
        lab2.start_pop3d()
        with open(f"/proc/{lab2.pop3d.pid}/status") as f:
            uids = [l for l in f if l.startswith("Uid:")][0].split()[1:]
        check(all(int(u) == nobody.pw_uid for u in uids), f"running as nobody: {uids}")
        d = Dialog(lab2.host, lab2.pop3_port)
        d.pop3()
        d.pop3("USER ana")
        check(d.pop3("PASS " + PASSWORDS["ana"]).startswith("+OK"), "login as nobody")
        check(d.pop3("RETR 1").startswith("+OK"), "RETR as nobody")
        check(b"Subject: priv" in d.pop3_multi_raw(), "message read")
        check(d.pop3("DELE 1").startswith("+OK"), "DELE")
        check(d.pop3("QUIT").startswith("+OK"), "QUIT writes the store as nobody")
        check(lab2.log_has("pop3d", "event=privileges-dropped user=nobody"), "logged")
    finally:
        lab2.stop()


def test_long_options():
    """pop3d takes the same long options as smtpd: --config, --verbose, --help."""
    import subprocess
    from correio_test import POP3D
    p = subprocess.run([POP3D, "--help"], capture_output=True, text=True, timeout=10)
    check(p.returncode == 0 and "--config" in p.stdout and "--verbose" in p.stdout, p.stdout)
    p = subprocess.run([POP3D, "--verbose", "--config", "/nonexistent/correio.conf"],
                       capture_output=True, text=True, timeout=10)
    check(p.returncode == 1 and "/nonexistent/correio.conf" in p.stderr,
          f"--config names the file it could not read: {p.returncode} {p.stderr}")


def test_zz_clean_shutdown():
    """SIGTERM: an idle session is told [SYS/TEMP]; pop3d exits 0 as soon as it
    has gone, with no sanitizer report in its log."""
    d = Dialog("127.0.0.1", lab.pop3_port)
    check(d.pop3().startswith("+OK"), "greeting")
    took = lab.stop_checked(lab.pop3d, "pop3d")
    check(d.pop3().startswith("-ERR [SYS/TEMP] Server shutting down"), "told why")
    check(d.closed(), "closed")
    check(took < 1.5, "stopped %.1fs after SIGTERM with no session left" % took)
    check("event=stopped" in lab.log("pop3d"), "clean stop logged")



def test_pop3d_section_for_privileges():
    """[pop3d] user is pop3d's own (it wins over [smtpd] user); started as
    root with neither, the warning names [pop3d], not [smtpd]."""
    if os.geteuid() != 0:
        print("skip: not root")
        return
    # notify: started once READY=1 came, after the start-up lines are
    # written (at its port alone the log could still be empty)
    lab2 = Lab(users={"ana": PASSWORDS["ana"]}, notify=True)
    try:
        lab2.start_pop3d()
        check('hint="set user = NAME in [pop3d] to drop privileges"' in lab2.log("pop3d"),
              "the root warning names [pop3d]: " + lab2.log("pop3d")[-500:])
    finally:
        lab2.stop()
    lab3 = Lab(users={"ana": PASSWORDS["ana"]},
               config_extra="[smtpd]\nuser = root\n[pop3d]\nuser = nobody\n")
    try:
        nobody = lab3.give_to("nobody")
        lab3.start_pop3d()

        def uids():
            with open(f"/proc/{lab3.pop3d.pid}/status") as f:
                return [int(u) for u in [l for l in f if l.startswith("Uid:")][0].split()[1:]]
        # privileges go right after the listeners are bound: wait for it
        wait_for("pop3d to run as nobody", lambda: all(u == nobody.pw_uid for u in uids()),
                 timeout=10)
        d = Dialog(lab3.host, lab3.pop3_port)
        check(d.pop3().startswith("+OK"), "serving as nobody")
        check(d.pop3("QUIT").startswith("+OK"), "QUIT")
    finally:
        lab3.stop()


if __name__ == "__main__":
    run([test_greeting_has_session_id_and_no_apop_banner, test_textbook_session_byte_exact,
         test_commands_case_insensitive_and_single_forms, test_bad_message_numbers,
         test_dele_twice_rset_undoes, test_dropped_connection_deletes_nothing,
         test_second_login_in_use, test_mail_arriving_during_session_appears_next_time,
         test_dot_stuffing_retr_and_top, test_capa_per_state, test_wrong_state_refused,
         test_auth_plain_login_cancel, test_failed_logins_delayed_masked_and_vague,
         test_transcript_masks_auth_and_summarises_bodies, test_help_and_hand_typing,
         test_pipelined_commands_answered_in_order, test_hostile_inputs_then_alive,
         test_implicit_quit_and_logout_line, test_connection_limit_per_address,
         test_ipv6_loopback, test_drops_privileges_when_root, test_pop3d_section_for_privileges,
         test_long_options,
         test_zz_clean_shutdown])
