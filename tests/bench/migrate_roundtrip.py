#!/usr/bin/env python3
"""migrate_roundtrip.py - `mailcli admin migrate` there and back on a big store.

    tests/bench/migrate_roundtrip.py [--via-postgresql] [BUILD] [MESSAGES]

BUILD defaults to build/ (the RelWithDebInfo build; never measure a sanitizer
build), MESSAGES to 10000. Not part of ./test.sh: it takes minutes.
With --via-postgresql, B is a PostgreSQL database on a private server that
the script starts (tests/pg_server.py) and removes: SQLite -> PostgreSQL ->
SQLite.

Store A is filled through the real smtpd by 4 parallel smtplib senders:
MESSAGES messages of mixed sizes (most a few KB of text; a fifth with a
20-150 KB attachment; one in a hundred with a 1-3 MB one) to 20 accounts, an
alias of five, and a routed remote domain whose server is down (so the queue
holds items); then POP3 sessions (one deletes messages), a teacher and an
API token. Then A -> B -> C with `mailcli admin migrate`, each timed with its
peak RSS (GNU time), and C is compared with A: every table row by row
(bodies by SQLite's sha3()), UIDL lists of every account and RETR of a sample
through pop3d on A and on C. Last, a store with one 50 MB message is
migrated to show the peak RSS that a body costs. Prints the figures and
"roundtrip: OK", or fails with what differs.
"""
import os
import poplib
import random
import shutil
import smtplib
import subprocess
import sys
import threading
import time
from email.message import EmailMessage

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
ARGS = [a for a in sys.argv[1:] if a != "--via-postgresql"]
VIA_PG = "--via-postgresql" in sys.argv[1:]
BUILD = os.path.abspath(ARGS[0]) if len(ARGS) > 0 else os.path.join(ROOT, "build")
N = int(ARGS[1]) if len(ARGS) > 1 else 10000
os.environ["CORREIO_BIN"] = BUILD
os.environ.pop("CORREIO_TEST_STORE", None)      # A and C are SQLite files
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
sys.path.insert(0, os.path.join(ROOT, "tests"))
from correio_test import Lab, MAILCLI, check, free_port, psql  # noqa: E402
import pg_server  # noqa: E402

USERS = {f"u{i:02d}": f"secret-{i:02d}" for i in range(20)}
REMOTE = "far.example"
SENDERS = 4
N_PROGRESS = {}     # target -> the progress lines its migrate must print
PER_CONNECTION = 200


def body_for(i, rng):
    m = EmailMessage()
    m["From"] = "u00@lab.test"
    m["To"] = "someone@lab.test"
    m["Subject"] = f"roundtrip {i}"
    m.set_content(("line of text %d\n" % i) * rng.randint(100, 500))
    r = rng.random()
    if r < 0.01:
        m.add_attachment(rng.randbytes(rng.randint(1_000_000, 3_000_000)),
                         maintype="application", subtype="octet-stream", filename=f"big{i}.bin")
    elif r < 0.21:
        m.add_attachment(rng.randbytes(rng.randint(20_000, 150_000)),
                         maintype="application", subtype="pdf", filename=f"doc{i}.pdf")
    return m.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def rcpts_for(rng):
    r = rng.random()
    if r < 0.80:
        return [f"{rng.choice(list(USERS))}@lab.test"]
    if r < 0.90:
        return ["turma@lab.test"]
    if r < 0.95:
        return [f"{rng.choice(list(USERS))}@lab.test", f"x{rng.randint(0, 99)}@{REMOTE}"]
    return [f"y{rng.randint(0, 99)}@{REMOTE}"]


def sender(lab, first, count, seed, errors):
    rng = random.Random(seed)
    try:
        i = first
        while i < first + count:
            with smtplib.SMTP(lab.host, lab.smtp_port, timeout=120) as s:
                for _ in range(min(PER_CONNECTION, first + count - i)):
                    s.sendmail("u00@lab.test", rcpts_for(rng), body_for(i, rng))
                    i += 1
    except Exception as e:  # noqa: BLE001 - reported by the main thread
        errors.append(repr(e))


def timed(args):
    """Run args under GNU time: (seconds, peak RSS in MiB, stdout)."""
    t0 = time.time()
    p = subprocess.run(["/usr/bin/time", "-f", "%M", *args], capture_output=True, text=True,
                       timeout=3600)
    took = time.time() - t0
    if p.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
    lines = p.stderr.strip().splitlines()
    progress = [ln for ln in lines if "migrate:" in ln and " messages," in ln]
    check(len(progress) == N_PROGRESS.get(args[-1], len(progress)),
          f"{len(progress)} progress lines: {p.stderr}")
    return took, int(lines[-1]) / 1024, p.stdout


def sqlite(path, query):
    p = subprocess.run(["sqlite3", "-batch", path, query], capture_output=True, timeout=600,
                       check=True)
    return p.stdout


TABLES = [
    "select id, name, hash, created, teacher from accounts order by id",
    "select name, created from domains order by name",
    "select address, account, created from aliases order by address, account",
    "select id, size, sender, session, created, hex(sha3(body)) from messages order by id",
    "select id, account, message, uidl, size, arrived, deleted from mailbox order by id",
    "select id, message, sender, rcpt, created, next_attempt, attempts, last_error"
    " from queue order by id",
    "select hash, account, created from api_tokens order by hash",
    "select id, account, csrf, created, expires from web_sessions order by id",
    "select name, seq from sqlite_sequence order by name",
]
LOG_TABLES = [
    "select * from sessions order by rowid",
    "select * from session_accounts order by session, account",
    "select session_id, seq, proto, lines, time from transcripts order by id",
]


def compare_stores(a, c):
    for q in TABLES:
        x, y = sqlite(a, q), sqlite(c, q)
        check(x == y, f"differs: {q}")
    for q in LOG_TABLES:
        x, y = sqlite(a + "-sessions", q), sqlite(c + "-sessions", q)
        check(x == y, f"differs (session log): {q}")


def pop3(lab, user, sample):
    p = poplib.POP3(lab.host, lab.pop3_port, timeout=60)
    try:
        p.user(user)
        p.pass_(USERS[user])
        uidls = [line.decode() for line in p.uidl()[1]]
        got = {}
        for num in sample(len(uidls)):
            got[num] = b"\r\n".join(p.retr(num)[1])
        p.quit()
    finally:
        p.close()
    return uidls, got


def main():
    dead = free_port()
    a = Lab(users=USERS, config_extra=f"[relay]\nroute = {REMOTE} 127.0.0.1:{dead}\n"
                                      "trusted_networks = 127.0.0.1\nretry_schedule = 3600\n")
    a.admin("alias", "add", "turma", *list(USERS)[:5])
    a.admin("user", "add", "prof", "--password-stdin", "--teacher", stdin="prof-secret\n")
    a.admin("token", "add", "u01")
    a.start_smtpd()
    a.start_pop3d()

    t0 = time.time()
    errors, threads = [], []
    per = N // SENDERS
    for k in range(SENDERS):
        count = per if k < SENDERS - 1 else N - per * (SENDERS - 1)
        t = threading.Thread(target=sender, args=(a, k * per, count, 1000 + k, errors))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    check(not errors, f"sending failed: {errors}")
    fill_s = time.time() - t0
    for user in list(USERS)[:5]:
        pop3(a, user, lambda n: [1] if n else [])
    p = poplib.POP3(a.host, a.pop3_port, timeout=60)   # u19 deletes three
    p.user("u19")
    p.pass_(USERS["u19"])
    for num in (1, 2, 3):
        p.dele(num)
    p.quit()
    a.stop_daemons()

    messages = int(sqlite(a.store, "select count(*) from messages").decode())
    octets = int(sqlite(a.store, "select sum(size) from messages").decode())
    queued = int(sqlite(a.store, "select count(*) from queue").decode())
    entries = int(sqlite(a.store, "select count(*) from mailbox").decode())
    print(f"store A: {messages} messages, {entries} mailbox entries, {queued} queue items, "
          f"{octets / 1e6:.1f} MB of bodies; filled through smtpd in {fill_s:.1f} s", flush=True)

    work = os.path.join(a.dir, "copies")
    os.mkdir(work)
    b, c = os.path.join(work, "b.db"), os.path.join(work, "c.db")
    srv = None
    if VIA_PG:
        pgdir = os.path.join(a.dir, "pg")
        srv = pg_server.start(pgdir)
        psql(srv.url, "CREATE DATABASE roundtrip_b")
        b = srv.url_for("roundtrip_b")
    N_PROGRESS[b] = N_PROGRESS[c] = messages // 1000    # a line per 1,000 messages
    ab = timed([MAILCLI, "admin", "migrate", "--from", a.store, "--to", b])
    bc = timed([MAILCLI, "admin", "migrate", "--from", b, "--to", c])
    kind = "PostgreSQL" if VIA_PG else "SQLite"
    print(f"A (SQLite) -> B ({kind}) -> C (SQLite)", flush=True)
    for name, (took, rss, out) in (("A -> B", ab), ("B -> C", bc)):
        check("verified" in out, out)
        print(f"migrate {name}: {took:.1f} s, {octets / 1e6 / took:.0f} MB/s of bodies, "
              f"peak RSS {rss:.0f} MiB", flush=True)
    print(ab[2], flush=True)
    if srv is not None:
        pg_server.stop(pgdir)

    t0 = time.time()
    compare_stores(a.store, c)
    print(f"A and C: every row of every table identical ({time.time() - t0:.1f} s)", flush=True)

    # C served by pop3d: the same UIDLs and messages as A's pop3d
    cl = Lab(users={})
    cl.store = c
    with open(cl.config, "w") as f:
        f.write(f"[store]\npath = {c}\ntranscripts = yes\n")
    a.start_pop3d()
    cl.start_pop3d()
    rng = random.Random(7)
    retrieved = 0
    for user in USERS:
        chosen = []

        def pick(n, chosen=chosen):
            chosen.extend(sorted(rng.sample(range(1, n + 1), min(n, 5))))
            return chosen
        ua, ga = pop3(a, user, pick)
        ub, gb = pop3(cl, user, lambda n, chosen=chosen: chosen)
        check(ua == ub, f"{user}: UIDL lists differ")
        check(ga == gb, f"{user}: RETR differs")
        retrieved += len(ga)
    print(f"pop3d on A and on C: UIDL identical for {len(USERS)} accounts, "
          f"{retrieved} RETRs identical", flush=True)
    a.stop_daemons()
    cl.stop_daemons()

    # one 50 MB message: what a body costs in memory, next to an empty store
    d = Lab(users={"u00": "x"}, config_extra="[limits]\nmax_message_size = 104857600\n")
    base = timed([MAILCLI, "admin", "migrate", "--from", d.store,
                  "--to", os.path.join(d.dir, "empty.db")])
    big = os.path.join(d.dir, "big.eml")
    with open(big, "wb") as f:
        f.write(b"Subject: big\r\n\r\n")
        f.write(random.Random(1).randbytes(25 * 1024 * 1024).hex().encode())
    with open(big, "rb") as f:
        subprocess.run([MAILCLI, "admin", "-c", d.config, "deliver", "u00"], stdin=f,
                       check=True, capture_output=True, timeout=300)
    took, rss, out = timed([MAILCLI, "admin", "migrate", "--from", d.store,
                            "--to", os.path.join(d.dir, "e.db")])
    check("verified" in out, out)
    print(f"one 50 MB message: migrate {took:.2f} s, peak RSS {rss:.0f} MiB "
          f"(an empty store: {base[1]:.0f} MiB)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    print("roundtrip: OK")


if __name__ == "__main__":
    main()
