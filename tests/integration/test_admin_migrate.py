#!/usr/bin/env python3
"""`mailcli admin migrate --from A --to B`: a whole store copied to a new one.

Store A is made the way a lab makes it, through the real daemons: mail with
attachments sent with smtplib through smtpd (to accounts, to an alias of two,
and to a routed remote domain whose server is down, so the relay queue holds
deferred items with their attempts and errors), POP3 sessions with poplib
(one deletes a message, so the store has given an id it no longer holds),
plus an alias, a teacher and an API token made by `mailcli admin`. After the
copy, smtpd and pop3d run on B: UIDL and RETR answer exactly as A's pop3d
does for every account, `queue list`, `transcript list`, a transcript and the
account, domain and alias lists read the same, and new mail on B gets a UIDL
no copied message has. A target that already holds anything is refused with
exit status 2 and left as it was.

In the PostgreSQL pass of the suite the source is a PostgreSQL database:
it is copied to a SQLite file, which is served and checked the same way,
and that file is copied on to a new PostgreSQL database, served and
checked again (PostgreSQL -> SQLite -> PostgreSQL).
"""
import os
import poplib
import random
import smtplib
import sys
import time
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import (Lab, PASSWORDS, PG, check, free_port, pg_new_database,  # noqa: E402
                          pg_server_url, psql, run, wait_for)

REMOTE = "far.example"
USERS = {**PASSWORDS, "carla": "carla-secret-3"}


def message(i, rng):
    """A message with a text part and one or two binary attachments."""
    m = EmailMessage()
    m["From"] = "ana@lab.test"
    m["To"] = "bob@lab.test"
    m["Subject"] = f"migrate test {i}"
    m.set_content(f"Message {i}.\nA line with a dot:\n.\nend\n")
    m.add_attachment(rng.randbytes(rng.choice([1000, 60_000, 300_000])),
                     maintype="application", subtype="octet-stream", filename=f"data{i}.bin")
    if i % 3 == 0:
        m.add_attachment(("relatório %d\n" % i).encode() * 200, maintype="text",
                         subtype="plain", filename=f"notes{i}.txt")
    return m


def pop3_view(lab, user):
    """(uidl list, {uidl: RETR octets}) of user's maildrop on lab's pop3d."""
    p = poplib.POP3(lab.host, lab.pop3_port, timeout=20)
    try:
        p.user(user)
        p.pass_(USERS[user])
        uidls = [line.decode() for line in p.uidl()[1]]
        bodies = {}
        for entry in uidls:
            num, uidl = entry.split()
            bodies[uidl] = b"\r\n".join(p.retr(int(num))[1])
        p.quit()
    finally:
        p.close()
    return uidls, bodies


def admin_view(lab):
    """What `mailcli admin` lists of a store."""
    view = {}
    for args in (("user", "list"), ("domain", "list"), ("alias", "list"), ("queue", "list"),
                 ("transcript", "list", "--limit", "1000")):
        view[" ".join(args)] = lab.admin(*args).stdout
    return view


def retarget(lab, store):
    """Point lab's config at store (a path or a postgresql:// URL)."""
    old = lab.store
    with open(lab.config) as f:
        conf = f.read()
    head = f"url = {old}\nspool = {lab.dir}\n" if lab.on_pg() else f"path = {old}\n"
    check(head in conf, f"no [store] lines for {old} in {lab.config}")
    lab.store = store
    new = f"url = {store}\nspool = {lab.dir}\n" if lab.on_pg() else f"path = {store}\n"
    with open(lab.config, "w") as f:
        f.write(conf.replace(head, new, 1))
    if old.startswith("postgresql://") and not lab.on_pg():
        psql(pg_server_url(), "DROP DATABASE IF EXISTS %s WITH (FORCE)" %
             old.rpartition("/")[2].partition("?")[0])


def empty_lab(pg=PG):
    """A lab whose config names a store with nothing in it yet (a new file, or
    a new PostgreSQL database)."""
    lab = Lab(users={})
    retarget(lab, pg_new_database() if pg else os.path.join(lab.dir, "migrated.db"))
    return lab


def migrate(lab, src, dst, check_ok=True):
    return lab.mailcli("admin", "migrate", "--from", src, "--to", dst, check=check_ok,
                       timeout=120)


def build_source():
    dead = free_port()     # nothing listens: the relay defers
    a = Lab(users=USERS,
            config_extra=f"[relay]\nroute = {REMOTE} 127.0.0.1:{dead}\n"
                         "trusted_networks = 127.0.0.1\nretry_schedule = 3600\n")
    a.admin("alias", "add", "turma", "ana", "bob")
    a.admin("user", "add", "prof", "--password-stdin", "--teacher", stdin="prof-secret-4\n")
    a.admin("token", "add", "prof")
    a.start_smtpd()
    a.start_pop3d()
    rng = random.Random(15)
    with smtplib.SMTP(a.host, a.smtp_port, timeout=20) as s:
        for i in range(12):
            rcpts = [["bob@lab.test"], ["turma@lab.test"], ["ana@lab.test", "carla@lab.test"],
                     ["ana@lab.test", f"x{i}@{REMOTE}"]][i % 4]
            s.send_message(message(i, rng), from_addr="ana@lab.test", to_addrs=rcpts)
        s.send_message(message(99, rng), from_addr="", to_addrs=[f"y@{REMOTE}", f"z@{REMOTE}"])
    # the relay tries once, fails, and keeps every remote item with its error
    wait_for("deferred queue items", lambda: all(
        line.split("\t")[3] == "1" and line.split("\t")[5] != "-"
        for line in a.admin("queue", "list").stdout.splitlines()) and
        len(a.admin("queue", "list").stdout.splitlines()) == 5)
    # POP3: carla reads and deletes her first message (an id given, then gone)
    p = poplib.POP3(a.host, a.pop3_port, timeout=20)
    p.user("carla")
    p.pass_("carla-secret-3")
    p.retr(1)
    p.dele(1)
    p.quit()
    for user in ("ana", "bob"):
        pop3_view(a, user)
    a.stop_daemons()
    return a


def copy_and_serve(a, b):
    """Migrate a's store into b's (empty), check b against a, serve b."""
    before = admin_view(a)
    check(len(before["queue list"].splitlines()) == 5, before["queue list"])
    check("pop3" in before["transcript list --limit 1000"], before["transcript list --limit 1000"])

    t0 = time.time()
    p = migrate(b, a.store, b.store)
    took = time.time() - t0
    check("verified" in p.stdout, p.stdout)
    for kind in ("messages", "mailbox entries", "queue items", "sessions", "transcript rows",
                 "API tokens", "aliases"):
        line = [ln for ln in p.stdout.splitlines() if ln.strip().startswith(kind)]
        check(line and int(line[0].split()[-1]) > 0, f"{kind}: {p.stdout}")
    print(f"{'postgresql' if a.on_pg() else 'sqlite'} -> "
          f"{'postgresql' if b.on_pg() else 'sqlite'}: migrated in {took:.2f} s:\n{p.stdout}")

    after = admin_view(b)
    for k in before:
        check(before[k] == after[k], f"{k} differs:\n{before[k]}\n---\n{after[k]}")
    rows = [ln.split() for ln in before["transcript list --limit 1000"].splitlines()[1:]]
    sid = [r[2] for r in rows if r[3] == "pop3"][0]   # STARTED is a date and a time
    check(a.admin("transcript", sid).stdout == b.admin("transcript", sid).stdout,
          "a transcript differs")
    check(a.admin("transcript", sid).stdout.count("\n") > 2, "the transcript is empty")
    check(a.count("mailbox") == b.count("mailbox"), "mailbox entries differ")
    rows = ("select id, message, uidl, size, arrived, cast(deleted as integer) from mailbox"
            " order by id")
    check(a.sql(rows) == b.sql(rows), "mailbox rows differ")

    a.start_pop3d()
    b.start_smtpd()
    b.start_pop3d()
    old_uidls = set()
    for user in ("ana", "bob", "carla"):
        ua, ba = pop3_view(a, user)
        ub, bb = pop3_view(b, user)
        check(ua == ub, f"{user}: UIDL differs:\n{ua}\n{ub}")
        check(ba == bb, f"{user}: RETR differs")
        check(len(ua) > 0, f"{user}: empty maildrop")
        old_uidls |= {u.split()[1] for u in ua}
    # the 300 kB attachments came through whole
    check(max(len(x) for x in pop3_view(b, "bob")[1].values()) > 300_000, "no large message")

    # new mail on B: a UIDL that no copied message has
    with smtplib.SMTP(b.host, b.smtp_port, timeout=20) as s:
        s.sendmail("bob@lab.test", ["ana@lab.test"], b"Subject: after\r\n\r\nnew\r\n")
    ub, _ = pop3_view(b, "ana")
    new = {u.split()[1] for u in ub} - old_uidls
    check(len(new) == 1, f"new UIDLs: {new}")
    newest_a = int(a.sql("select max(id) from messages").decode().strip())
    newest_b = int(b.sql("select max(id) from messages").decode().strip())
    check(newest_b > newest_a, f"new message id {newest_b} not above {newest_a}")

    # teacher and token came along
    check(b.sql("select cast(teacher as integer) from accounts where name = 'prof'")
          .decode().strip() == "1", "prof is not a teacher")
    check(b.count("api_tokens") == 1, "no API token")
    b.stop_daemons()
    a.stop_daemons()

    # B now holds everything: a second migrate into it is refused, B untouched
    held = admin_view(b)
    count = b.count("messages")
    p = migrate(b, a.store, b.store, check_ok=False)
    check(p.returncode == 2, f"exit {p.returncode}: {p.stderr}")
    check("not empty" in p.stderr and "nothing was changed" in p.stderr, p.stderr)
    check(admin_view(b) == held and b.count("messages") == count, "the target changed")


def test_migrate_and_serve():
    a = build_source()
    b = empty_lab(pg=False)
    copy_and_serve(a, b)
    if PG:
        # on from the SQLite copy (with B's new message) to a new database
        c = empty_lab(pg=True)
        copy_and_serve(b, c)


def test_refuse_target_with_a_domain():
    """A target with only its domain (what `domain add` leaves) is refused too."""
    a = Lab()
    a.admin("deliver", "bob", stdin="Subject: x\n\nhello\n")
    c = Lab(users={})
    held = c.sql("select name from domains")
    p = migrate(c, a.store, c.store, check_ok=False)
    check(p.returncode == 2, f"exit {p.returncode}: {p.stderr}")
    check("1 domains" in p.stderr, p.stderr)
    check(c.sql("select name from domains") == held and c.count("messages") == 0,
          "the target changed")


def test_usage():
    a = Lab()
    for args in ((), ("--from", a.store), ("--to", "x.db"), ("--from", a.store, "--to", a.store),
                 ("--frm", a.store, "--to", "x.db")):
        p = a.mailcli("admin", "migrate", *args, check=False)
        check(p.returncode == 2, f"{args}: exit {p.returncode}")
    p = a.mailcli("admin", "migrate", "--from", os.path.join(a.dir, "nothing.db"),
                  "--to", os.path.join(a.dir, "t.db"), check=False)
    check(p.returncode == 1 and "no store at" in p.stderr, p.stderr)
    check(not os.path.exists(os.path.join(a.dir, "t.db")), "a target made for nothing")


if __name__ == "__main__":
    run([test_migrate_and_serve, test_refuse_target_with_a_domain, test_usage])
