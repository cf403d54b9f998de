#!/usr/bin/env python3
"""pop3d against real POP3 clients: curl (pop3:// list and retrieve), Python's
poplib (stat, list, uidl, top, retr, dele, rset, quit; STLS, AUTH PLAIN and
LOGIN, implicit TLS on a pop3s listener, all verified against the lab's
generated certificate), and mpop (into a maildir, then a second run that
fetches nothing new by UIDL). Messages come in through smtpd when it is built
(and through `mailcli admin deliver` otherwise); every retrieval is compared
byte for byte with what was sent.
"""
import base64
import os
import poplib
import smtplib
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, Dialog, check, run, PASSWORDS, SMTPD  # noqa: E402


lab = Lab(tls=True)
ports = lab.start_pop3d(roles=("pop3", "pop3s"))
HOST, PORT, PORT_S = lab.host, ports["pop3"], ports["pop3s"]
HAVE_SMTPD = os.path.exists(SMTPD)
if HAVE_SMTPD:
    lab.start_smtpd()


def tls_context():
    return lab.tls_context()


def mkmsg(subject, body):
    return (f"From: ana@lab.test\r\nTo: bob@lab.test\r\nSubject: {subject}\r\n"
            f"Date: Fri, 04 Dec 2026 10:00:00 -0300\r\n"
            f"Message-ID: <{subject}@lab.test>\r\n\r\n{body}").encode()


def deliver_admin(account, m):
    lab.admin("deliver", account, stdin=m)


def deliver_smtp(account, m):
    with smtplib.SMTP(HOST, lab.smtp_port, timeout=20) as s:
        s.sendmail("ana@lab.test", [f"{account}@lab.test"], m)


def pop(account):
    """poplib logged in with USER/PASS (plaintext is allowed on loopback)."""
    p = poplib.POP3(HOST, PORT, timeout=10)
    p.user(account)
    p.pass_(PASSWORDS[account])
    return p


def empty(account):
    p = pop(account)
    n = p.stat()[0]
    for i in range(1, n + 1):
        p.dele(i)
    p.quit()


def same(retrieved, sent, via_smtp):
    """Byte-exact: admin deliveries are stored as given; smtpd adds trace
    headers (Received:, Return-Path:) in front of the message it was sent."""
    if not via_smtp:
        return retrieved == sent
    return retrieved.endswith(sent) and retrieved[:len(retrieved) - len(sent)].endswith(b"\r\n")


def test_poplib_full_session():
    empty("bob")
    sent = [mkmsg(f"pl{i}", f"Line one {i}\r\n.dot line\r\nlast\r\n") for i in range(3)]
    for m in sent:
        deliver_admin("bob", m)
    p = poplib.POP3(HOST, PORT, timeout=10)
    check(p.getwelcome().startswith(b"+OK"), "welcome")
    caps = p.capa()
    check("STLS" in caps, f"STLS offered when TLS is configured: {caps}")
    p.stls(context=tls_context())
    caps = p.capa()
    check("STLS" not in caps and "USER" in caps, f"after STLS: {caps}")
    check(caps.get("SASL") == ["PLAIN", "LOGIN"], f"SASL PLAIN LOGIN: {caps}")
    p.user("bob")
    p.pass_(PASSWORDS["bob"])
    n, size = p.stat()
    check(n == 3 and size == sum(len(m) for m in sent), f"stat {n} {size}")
    resp, listing, _ = p.list()
    check([int(l.split()[1]) for l in listing] == [len(m) for m in sent], "list sizes")
    resp, uidls, _ = p.uidl()
    check(len({u.split()[1] for u in uidls}) == 3, "uidls unique")
    check(p.uidl(2).split()[2] == uidls[1].split()[1], "uidl n")
    resp, lines, octets = p.top(1, 1)
    check(b"\r\n".join(lines) == sent[0].split(b"\r\n\r\n")[0] + b"\r\n\r\nLine one 0",
          f"top: {lines}")
    for i, m in enumerate(sent, 1):
        resp, lines, octets = p.retr(i)
        check(b"\r\n".join(lines) + b"\r\n" == m, f"retr {i} byte-exact")
    p.dele(1)
    p.dele(2)
    p.rset()
    p.dele(3)
    check(p.stat()[0] == 2, "after dele 3")
    p.quit()
    p = pop("bob")
    check(p.stat()[0] == 2, "rset undid dele 1 and 2; dele 3 happened at quit")
    p.quit()


def test_stls_discards_pipelined_plaintext():
    import socket
    s = socket.create_connection((HOST, PORT), timeout=10)
    f = s.makefile("rb")
    check(f.readline().startswith(b"+OK"), "greeting")
    s.sendall(b"STLS\r\nUSER injected\r\n")
    check(f.readline().startswith(b"+OK"), "STLS ok")
    t = tls_context().wrap_socket(s, server_hostname="localhost")
    tf = t.makefile("rb")
    t.sendall(b"NOOP\r\n")
    r = tf.readline()
    check(r == b"+OK\r\n", f"first reply after the handshake is for NOOP, not the injected USER: {r!r}")
    t.sendall(b"PASS x\r\n")
    check(tf.readline().startswith(b"-ERR"), "USER from before TLS was forgotten")
    t.sendall(b"STLS\r\n")
    check(tf.readline().startswith(b"-ERR"), "no second STLS")
    t.sendall(b"QUIT\r\n")
    tf.readline()
    t.close()


def test_poplib_auth_plain_and_login_over_tls():
    p = poplib.POP3(HOST, PORT, timeout=10)
    p.stls(context=tls_context())
    tok = base64.b64encode(b"\0ana\0" + PASSWORDS["ana"].encode()).decode()
    p._putcmd("AUTH PLAIN")
    check(p._getline()[0] == b"+ ", "PLAIN continuation")
    p._putcmd(tok)
    check(p._getresp().startswith(b"+OK"), "AUTH PLAIN")
    p.quit()
    p = poplib.POP3_SSL(HOST, PORT_S, timeout=10, context=tls_context())
    check("STLS" not in p.capa(), "no STLS on the implicit TLS listener")
    p._putcmd("AUTH LOGIN")
    check(p._getline()[0] == b"+ VXNlcm5hbWU6", "Username:")
    p._putcmd(base64.b64encode(b"ana").decode())
    check(p._getline()[0] == b"+ UGFzc3dvcmQ6", "Password:")
    p._putcmd(base64.b64encode(PASSWORDS["ana"].encode()).decode())
    check(p._getresp().startswith(b"+OK"), "AUTH LOGIN on pop3s")
    p.stat()
    p.quit()


def test_curl_list_and_retrieve():
    empty("ana")
    m = mkmsg("curl", "Hello from curl\r\n.leading dot\r\n")
    deliver_admin("ana", m)
    url = f"pop3://ana:{PASSWORDS['ana']}@{HOST}:{PORT}/"
    out = subprocess.run(["curl", "-sS", "--max-time", "20", url], capture_output=True,
                         timeout=30)
    check(out.returncode == 0, f"curl list: {out.stderr}")
    check(out.stdout == f"1 {len(m)}\r\n".encode(), f"curl LIST: {out.stdout!r}")
    out = subprocess.run(["curl", "-sS", "--max-time", "20", url + "1"], capture_output=True,
                         timeout=30)
    check(out.returncode == 0, f"curl retr: {out.stderr}")
    check(out.stdout == m, f"curl RETR byte-exact: {out.stdout!r}")
    # and over STLS, verifying the certificate
    out = subprocess.run(["curl", "-sS", "--max-time", "20", "--ssl-reqd", "--cacert", lab.cert,
                          f"pop3://ana:{PASSWORDS['ana']}@localhost:{PORT}/1"],
                         capture_output=True, timeout=30)
    check(out.returncode == 0 and out.stdout == m, f"curl STLS: {out.stderr}")


def test_mpop_maildir_then_nothing_new():
    empty("ana")
    sent = [mkmsg(f"mpop{i}", f"mpop body {i}\r\n") for i in range(3)]
    via_smtp = HAVE_SMTPD
    for m in sent:
        (deliver_smtp if via_smtp else deliver_admin)("ana", m)
    md = os.path.join(lab.dir, "Maildir")
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    rc = os.path.join(lab.dir, "mpoprc")
    with open(rc, "w") as f:
        f.write(f"""defaults
tls off
auth user
keep on
only_new on
uidls_file {lab.dir}/mpop-uidls
delivery maildir {md}

account lab
host {HOST}
port {PORT}
user ana
password {PASSWORDS['ana']}
""")
    os.chmod(rc, 0o600)
    p = subprocess.run(["mpop", "-C", rc, "-q", "lab"], capture_output=True, timeout=60)
    check(p.returncode == 0, f"mpop: {p.returncode} {p.stdout} {p.stderr}")
    got = sorted(os.listdir(os.path.join(md, "new")))
    check(len(got) == 3, f"three messages in the maildir: {got}")
    bodies = []
    for name in got:
        with open(os.path.join(md, "new", name), "rb") as f:
            bodies.append(f.read())
    # mpop stores messages with LF line ends and may add a Received: line
    for m in sent:
        lf = m.replace(b"\r\n", b"\n")
        check(any(b.endswith(lf) for b in bodies), f"message delivered intact: {m[:60]!r}")
    p = subprocess.run(["mpop", "-C", rc, "-q", "lab"], capture_output=True, timeout=60)
    check(p.returncode == 0, f"second mpop: {p.stderr}")
    check(len(os.listdir(os.path.join(md, "new"))) == 3, "second run fetched nothing new")
    n = pop("ana")
    check(n.stat()[0] == 3, "keep on: still on the server")
    n.quit()


def test_smtpd_to_pop3d_byte_exact():
    if not HAVE_SMTPD:
        print("skip: smtpd not built; deliveries went through mailcli admin deliver")
        return
    empty("bob")
    m = mkmsg("through-smtpd", "Sent through smtpd\r\n.with a dot line\r\n" + "x" * 900 + "\r\n")
    deliver_smtp("bob", m)
    p = pop("bob")
    n, size = p.stat()
    check(n == 1, f"one message, got {n}")
    resp, lines, octets = p.retr(1)
    got = b"\r\n".join(lines) + b"\r\n"
    check(len(got) == size == int(p.list(1).split()[2]), "LIST/STAT size equals RETR octets")
    check(same(got, m, True), f"message through smtpd retrieved intact: {got[:200]!r}")
    p.quit()


def test_thunderbird_fetchmail_outlook_sequences():
    """The exact sequences of Thunderbird (CAPA, STLS, CAPA, AUTH PLAIN with the
    token after "+ ", STAT, LIST, UIDL, TOP n 0, RETR, DELE, QUIT), fetchmail
    (UIDL n, TOP n 99999) and Outlook (a bare AUTH), checked reply by reply
    against RFC 1939, 2449, 2595 and 5034."""
    empty("ana")
    m = mkmsg("tb", "first line\r\n.dot line\r\n")
    deliver_admin("ana", m)
    d = Dialog(HOST, PORT)
    check(d.pop3().startswith("+OK "), "greeting")
    check(d.pop3("AUTH") == "+OK SASL mechanisms follow" and d.pop3_multi() == ["PLAIN", "LOGIN"],
          "Outlook's bare AUTH lists the mechanisms")
    check(d.pop3("CAPA").startswith("+OK"), "CAPA")
    caps = d.pop3_multi()
    check("STLS" in caps and "UIDL" in caps and "TOP" in caps and "SASL PLAIN LOGIN" in caps, caps)
    check(d.pop3("STLS") == "+OK Begin TLS negotiation", "STLS")
    d.starttls(tls_context())
    check(d.pop3("CAPA").startswith("+OK"), "CAPA after STLS")
    caps2 = d.pop3_multi()
    check("STLS" not in caps2 and "SASL PLAIN LOGIN" in caps2, f"no STLS after TLS: {caps2}")
    check(d.pop3("AUTH PLAIN") == "+ ", "RFC 5034 4: the continuation is '+ ' CRLF")
    tok = base64.b64encode(b"\0ana\0" + PASSWORDS["ana"].encode()).decode()
    check(d.pop3(tok).startswith("+OK Logged in as ana"), "AUTH PLAIN after the continuation")
    check(d.pop3("STAT") == f"+OK 1 {len(m)}", "STAT")
    check(d.pop3("LIST").startswith("+OK") and d.pop3_multi() == [f"1 {len(m)}"], "LIST")
    check(d.pop3("UIDL").startswith("+OK"), "UIDL")
    uidls = d.pop3_multi()
    check(len(uidls) == 1 and len(uidls[0].split(" ")) == 2, f"one 'n uid' per line: {uidls}")
    check(d.pop3("UIDL 1") == "+OK " + uidls[0], "fetchmail's UIDL n gives the same id")
    header = m.split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    check(d.pop3("TOP 1 0").startswith("+OK") and d.pop3_multi_raw() == header, "TOP 1 0")
    check(d.pop3("TOP 1 99999").startswith("+OK"), "fetchmail's TOP n 99999")
    check(d.pop3_multi_raw() == m.replace(b"\r\n.", b"\r\n.."), "the whole message, dot-stuffed")
    check(d.pop3("RETR 1") == f"+OK {len(m)} octets", "RETR")
    check(d.pop3_multi_raw() == m.replace(b"\r\n.", b"\r\n.."), "RETR body")
    check(d.pop3("NOOP") == "+OK", "Thunderbird's keep-alive NOOP")
    check(d.pop3("DELE 1").startswith("+OK"), "DELE")
    check(d.pop3("QUIT").startswith("+OK") and d.closed(), "QUIT")
    check(pop("ana").stat()[0] == 0, "deleted at QUIT")


def test_zz_clean_shutdown():
    """SIGTERM stops pop3d with status 0 and no sanitizer report in its log."""
    lab.stop_checked(lab.pop3d, "pop3d")
    check("event=stopped" in lab.log("pop3d"), "clean stop logged")


if __name__ == "__main__":
    run([test_poplib_full_session, test_stls_discards_pipelined_plaintext,
         test_poplib_auth_plain_and_login_over_tls, test_curl_list_and_retrieve,
         test_mpop_maildir_then_nothing_new, test_smtpd_to_pop3d_byte_exact,
         test_thunderbird_fetchmail_outlook_sequences, test_zz_clean_shutdown])
