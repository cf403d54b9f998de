#!/usr/bin/env python3
"""Several hosts on one PostgreSQL store (issue 15's multi-host test).

Two "hosts", mail-a and mail-b, each an smtpd and a pop3d in a UTS namespace
of its own (so each names its own host in lock owners), serve one PostgreSQL
database. Checks: mail sent through either smtpd is read through either
pop3d, byte for byte, with the same UIDLs from both; a second POP3 session on
an account through the other host's pop3d gets -ERR [IN-USE]; when the host
holding a session dies (SIGKILL of its pop3d), the other host can log in at
once, without waiting for the lock's time to live; an alias added on one
host is used by the other's smtpd at once; both hosts' sessions are in the
one session log. Runs in the PostgreSQL pass of the suite only.
"""
import os
import poplib
import signal
import smtplib
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import Lab, PG, PASSWORDS, check, run  # noqa: E402

N = 40          # messages, half through each smtpd


def send(lab, rcpt, marker):
    body = (f"From: carla@example.org\r\nTo: {rcpt}\r\nSubject: {marker}\r\n"
            f"Date: Sat, 05 Dec 2026 10:00:00 +0000\r\nMessage-ID: <{marker}@example.org>\r\n"
            f"\r\n{marker}\r\n").encode()
    with smtplib.SMTP("127.0.0.1", lab.smtp_port, timeout=20) as s:
        s.sendmail("carla@example.org", [rcpt], body)
    return body


def pop(lab, user):
    p = poplib.POP3("127.0.0.1", lab.pop3_port, timeout=20)
    p.user(user)
    p.pass_(PASSWORDS[user])
    return p


def mailbox(lab, user):
    """{uidl: message octets} of user's mailbox read through lab's pop3d."""
    p = pop(lab, user)
    out = {}
    for line in p.uidl()[1]:
        n, uidl = line.decode().split()
        out[uidl] = b"\r\n".join(p.retr(int(n))[1]) + b"\r\n"
    p.quit()
    return out


def main():
    if not PG:
        print("SKIP: the multi-host test runs on PostgreSQL only")
        return 0
    a = Lab(hostname="mail-a")
    b = Lab(share=a, hostname="mail-b")
    for lab in (a, b):
        lab.start_smtpd()
        lab.start_pop3d()

    def t_either_way():
        sent = {"ana": {}, "bob": {}}
        for i in range(N):
            user = "ana" if i % 2 == 0 else "bob"
            via = a if i % 4 < 2 else b
            marker = f"mh-{i}-{'a' if via is a else 'b'}"
            sent[user][marker] = send(via, f"{user}@lab.test", marker)
        for user, reader in (("ana", b), ("bob", a)):
            got = mailbox(reader, user)
            check(len(got) == N // 2, f"{user} through the other host: {len(got)} of {N // 2}")
            bodies = list(got.values())
            for marker in sent[user]:
                found = [m for m in bodies if f"Message-ID: <{marker}@".encode() in m]
                check(len(found) == 1, f"{marker}: found {len(found)} times")
                check(found[0].endswith(f"\r\n{marker}\r\n".encode()), f"{marker}: body changed")
            # the same mailbox through the first host: the same UIDLs and octets
            again = mailbox(a if reader is b else b, user)
            check(again == got, f"{user}: the two hosts list different UIDLs or octets")
        print(f"  {N} messages through both smtpds, read through both pop3ds: same UIDLs")

    def t_in_use_across_hosts():
        p = pop(a, "ana")
        try:
            try:
                pop(b, "ana")
                check(False, "a second session through the other host was let in")
            except poplib.error_proto as e:
                check(b"[IN-USE]" in e.args[0], f"second session got {e.args[0]!r}")
        finally:
            p.quit()
        pop(b, "ana").quit()    # free again once the first quits
        print("  the second host's session on a busy mailbox: -ERR [IN-USE]")

    def t_host_dies():
        p = pop(a, "bob")
        p.stat()
        a.pop3d.send_signal(signal.SIGKILL)
        a.pop3d.wait(timeout=10)
        t0 = time.time()
        while True:
            try:
                pop(b, "bob").quit()
                break
            except poplib.error_proto as e:
                check(b"[IN-USE]" in e.args[0], f"unexpected {e.args[0]!r}")
                check(time.time() - t0 < 15, "the dead host's lock was not taken over in 15 s")
                time.sleep(0.2)
        took = time.time() - t0
        try:
            p.close()
        except OSError:
            pass
        a.start_pop3d()
        print(f"  the dead host's lock taken over after {took:.2f} s")

    def t_alias_at_once():
        a.admin("alias", "add", "turma@lab.test", "ana")
        a.admin("alias", "add", "turma@lab.test", "bob")
        send(b, "turma@lab.test", "mh-alias")
        for user, lab in (("ana", a), ("bob", b)):
            got = mailbox(lab, user)
            check(sum(b"<mh-alias@" in m for m in got.values()) == 1, f"{user}: alias mail")
        print("  an alias added on one host used by the other's smtpd at once")

    def t_one_session_log():
        out = b.admin("transcript", "list", "--limit", "1000").stdout
        smtp = [l for l in out.splitlines() if " smtp " in f" {l} "]
        check(len(smtp) >= N + 1, f"only {len(smtp)} SMTP sessions listed through mail-b")
        print(f"  {len(smtp)} SMTP sessions of both hosts in the one session log")

    return run([t_either_way, t_in_use_across_hosts, t_host_dies, t_alias_at_once,
                t_one_session_log])


if __name__ == "__main__":
    sys.exit(main())
