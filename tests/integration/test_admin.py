#!/usr/bin/env python3
"""test_admin - `mailcli admin` on a real store, checked with the sqlite3 CLI.

The README's promise: `mailcli admin user add ana --password-stdin` leaves a
$y$ hash and no plaintext anywhere in the store files. Then every command and
its errors: existing user (exit 1), unknown user, domain not served, a store
that is not ours, usage errors (exit 2), passwords never from argv, the
terminal prompt with echo off (through a real pty), deliver with bare LF
turned into CRLF, queue list/flush/delete, transcripts, a bad config file.
"""
import os
import sqlite3
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import MAILCLI, check, pty_session, run, workdir  # noqa: E402

TMP = workdir("correio-admin-")
STORE = os.path.join(TMP, "x.db")
PW = "correct-horse-battery-staple-7"


def admin(*args, stdin=None, store=STORE, new_session=False):
    pre = ["--store", store] if store else []
    return subprocess.run([MAILCLI, "admin", *pre, *args], input=stdin, capture_output=True,
                          text=True, timeout=60, start_new_session=new_session)


def sql(query, path=STORE):
    p = subprocess.run(["sqlite3", "-batch", path, query], capture_output=True, text=True,
                       timeout=30, check=True)
    return p.stdout


def store_bytes(path=STORE):
    data = b""
    for suffix in ("", "-wal", "-shm"):
        try:
            with open(path + suffix, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def test_user_add_hash_only():
    p = admin("user", "add", "ana", "--password-stdin", stdin=PW + "\n")
    check(p.returncode == 0, f"user add failed: {p.returncode} {p.stderr}")
    rows = sql("select * from accounts").strip().splitlines()
    check(len(rows) == 1, f"accounts: {rows}")
    fields = rows[0].split("|")
    check(fields[1] == "ana", f"name: {fields}")
    check(fields[2].startswith("$y$"), f"hash is not yescrypt: {fields[2]}")
    check(PW not in rows[0], "plaintext password in the accounts table")
    check(PW.encode() not in store_bytes(), "plaintext password somewhere in the store files")
    check(PW not in p.stdout + p.stderr, "password printed")
    mode = os.stat(STORE).st_mode & 0o777
    check(mode == 0o600, f"store mode {oct(mode)}: it holds password hashes")
    # RFC 5321 4.5.1 postmaster: the administrator is told to add one
    check("alias add postmaster" in p.stdout, p.stdout)
    check(sql("select count(*) from aliases").strip() == "0", "alias added behind the admin's back")
    check(admin("alias", "add", "postmaster", "ana").returncode == 0, "alias add postmaster")


def test_user_add_existing():
    p = admin("user", "add", "ana", "--password-stdin", stdin="other\n")
    check(p.returncode == 1, f"exit {p.returncode}")
    check("already exists" in p.stderr, p.stderr)
    p = admin("user", "add", "ANA", "--password-stdin", stdin="other\n")
    check(p.returncode == 1 and "already exists" in p.stderr, "case-insensitive duplicate accepted")


def test_password_never_from_argv():
    p = admin("user", "add", "bob", "secret-on-the-command-line")
    check(p.returncode == 2, f"exit {p.returncode}: {p.stderr}")
    check(sql("select count(*) from accounts where name='bob'").strip() == "0", "bob was added")


def test_no_terminal():
    p = admin("user", "add", "bob", new_session=True, stdin="")
    check(p.returncode == 1, f"exit {p.returncode}")
    check("--password-stdin" in p.stderr, p.stderr)


def test_empty_password_refused():
    p = admin("user", "add", "bob", "--password-stdin", stdin="\n")
    check(p.returncode == 1 and "empty password" in p.stderr, f"{p.returncode} {p.stderr}")
    p = admin("user", "add", "bob", "--password-stdin", stdin="")
    check(p.returncode == 1, f"no stdin: exit {p.returncode}")


def test_prompt_echo_off():
    status, shown = pty_session([MAILCLI, "admin", "--store", STORE, "user", "add", "bob"],
                                [("New password for bob:", "bob-pw-9876"), ("Again:", "bob-pw-9876")])
    check(status == 0, f"exit {status}: {shown}")
    check("bob-pw-9876" not in shown, f"password echoed: {shown!r}")
    h = sql("select hash from accounts where name='bob'").strip()
    check(h.startswith("$y$"), h)
    # mismatch: nothing changes
    status, shown = pty_session([MAILCLI, "admin", "--store", STORE, "user", "passwd", "bob"],
                                [("New password for bob:", "one"), ("Again:", "two")])
    check(status == 1 and "differ" in shown, f"exit {status}: {shown}")
    check(sql("select hash from accounts where name='bob'").strip() == h, "hash changed")


def test_user_passwd():
    before = sql("select hash from accounts where name='ana'").strip()
    p = admin("user", "passwd", "ana", "--password-stdin", stdin="new-pw-for-ana\n")
    check(p.returncode == 0, p.stderr)
    after = sql("select hash from accounts where name='ana'").strip()
    check(after != before and after.startswith("$y$"), f"{before} -> {after}")
    p = admin("user", "passwd", "nobody", "--password-stdin", stdin="x\n")
    check(p.returncode == 1 and "no account nobody" in p.stderr, p.stderr)


def test_domains_and_aliases():
    check(admin("domain", "add", "Lab.Test").returncode == 0, "domain add")
    p = admin("domain", "add", "lab.test")
    check(p.returncode == 1 and "already exists" in p.stderr, p.stderr)
    p = admin("domain", "add", "bad_domain!")
    check(p.returncode == 2 and "not a valid domain" in p.stderr, p.stderr)  # a refused value: mailcli.1 EXIT STATUS
    check(admin("domain", "add", "other.test").returncode == 0, "domain add other")
    p = admin("domain", "list")
    check(p.stdout == "lab.test\nother.test\n", repr(p.stdout))
    check(admin("domain", "del", "other.test").returncode == 0, "domain del")
    p = admin("domain", "del", "other.test")
    check(p.returncode == 1 and "no domain" in p.stderr, p.stderr)

    check(admin("alias", "add", "info@lab.test", "bob").returncode == 0, "alias add")
    p = admin("alias", "add", "info@nowhere.test", "bob")
    check(p.returncode == 1 and "not served here" in p.stderr, p.stderr)
    p = admin("alias", "add", "sales", "nobody")
    check(p.returncode == 1 and "no account nobody" in p.stderr, p.stderr)
    p = admin("alias", "add", "info@lab.test", "bob")
    check(p.returncode == 1 and "already exists" in p.stderr, p.stderr)
    # an alias may lead to several accounts: a class list
    p = admin("alias", "add", "turma", "ana", "bob")
    check(p.returncode == 0 and p.stdout.count("added") == 2, p.stdout + p.stderr)
    p = admin("alias", "list")
    check(p.stdout == "info@lab.test -> bob\npostmaster -> ana\nturma -> ana, bob\n",
          repr(p.stdout))
    p = admin("alias", "del", "turma", "ana")
    check(p.returncode == 0, p.stderr)
    p = admin("alias", "list")
    check(p.stdout == "info@lab.test -> bob\npostmaster -> ana\nturma -> bob\n", repr(p.stdout))
    check(admin("alias", "del", "turma").returncode == 0, "alias del turma")
    p = admin("user", "list")
    check(p.stdout == "ana\nbob\n", repr(p.stdout))


def test_deliver():
    msg = "From: carla@example.org\nSubject: test\n\nline one\r\nline two\n.\n"
    p = admin("deliver", "--from", "carla@example.org", "ana", "info@lab.test", "postmaster", stdin=msg)
    check(p.returncode == 0, p.stderr)
    body = sql("select hex(body) from messages").strip()
    want = msg.replace("\r\n", "\n").replace("\n", "\r\n").encode().hex().upper()
    check(body == want, f"body {bytes.fromhex(body)!r}")
    # stored once, one entry per distinct account
    check(sql("select count(*) from messages").strip() == "1", "message stored more than once")
    check(sql("select count(*) from mailbox").strip() == "2", sql("select * from mailbox"))
    check(sql("select sender from messages").strip() == "carla@example.org", "sender")
    # unknown recipient: nothing is stored
    p = admin("deliver", "ana", "nobody", stdin="x\n")
    check(p.returncode == 1 and "nobody" in p.stderr, p.stderr)
    p = admin("deliver", "ana@elsewhere.test", stdin="x\n")
    check(p.returncode == 1 and "not served here" in p.stderr, p.stderr)
    check(sql("select count(*) from messages").strip() == "1", "a failed delivery left a message")
    p = admin("deliver", stdin="x\n")
    check(p.returncode == 2, f"deliver without recipients: {p.returncode}")


def test_queue():
    p = admin("queue", "list")
    check(p.returncode == 0 and p.stdout == "", repr(p.stdout))
    db = sqlite3.connect(STORE)
    db.execute("insert into messages(body, size, sender, created) values (x'410d0a', 3, 'ana@lab.test', 0)")
    mid = db.execute("select max(id) from messages").fetchone()[0]
    db.execute("insert into queue(message, sender, rcpt, created, next_attempt, attempts, last_error) "
               "values (?, 'ana@lab.test', 'x@example.org', 0, 1800000000, 2, '451 4.4.1 no answer')", (mid,))
    db.commit()
    db.close()
    p = admin("queue", "list")
    check(p.returncode == 0, p.stderr)
    f = p.stdout.rstrip("\n").split("\t")
    check(f[1:] == ["<ana@lab.test>", "<x@example.org>", "2", "2027-01-15T08:00:00Z",
                    "451 4.4.1 no answer"], repr(p.stdout))
    check(admin("queue", "flush").returncode == 0, "flush")
    check(sql("select next_attempt from queue").strip() == "0", "flush did not reset")
    p = admin("queue", "delete", "999")
    check(p.returncode == 1 and "no queue item" in p.stderr, p.stderr)
    p = admin("queue", "delete", "abc")
    check(p.returncode == 2, f"{p.returncode}")
    check(admin("queue", "delete", f[0]).returncode == 0, "delete")
    check(sql("select count(*) from queue").strip() == "0", "still queued")
    check(sql(f"select count(*) from messages where id = {mid}").strip() == "0", "message left behind")


def test_transcript():
    # The session log has its own file beside the store, made at first use.
    p = admin("transcript", "nope")
    check(p.returncode == 1 and "no transcript" in p.stderr, p.stderr)
    check(os.path.exists(STORE + "-sessions"), "no session log file beside the store")
    db = sqlite3.connect(STORE + "-sessions")
    db.executemany("insert into transcripts(session_id, seq, proto, lines, time) values (?,?,?,?,0)",
                   [("abc123", 2, "smtp", "T S: 250 ok"), ("abc123", 1, "smtp", "T C: EHLO x")])
    db.commit()
    db.close()
    p = admin("transcript", "abc123")
    check(p.returncode == 0 and p.stdout == "T C: EHLO x\nT S: 250 ok\n", repr(p.stdout))
    p = admin("transcript", "nope")
    check(p.returncode == 1 and "no transcript" in p.stderr, p.stderr)


def test_user_del():
    check(admin("user", "del", "bob").returncode == 0, "user del")
    p = admin("user", "del", "bob")
    check(p.returncode == 1 and "no account bob" in p.stderr, p.stderr)
    check(sql("select count(*) from aliases where address='info@lab.test'").strip() == "0",
          "alias of a deleted account left")


def test_usage_errors():
    for args in ([], ["frob"], ["user"], ["user", "frob"], ["user", "add"], ["domain", "add"],
                 ["alias", "add", "x"], ["transcript"], ["queue", "delete"], ["--bogus", "user", "list"],
                 ["user", "list", "extra"]):
        p = admin(*args)
        check(p.returncode == 2, f"{args}: exit {p.returncode} {p.stderr}")
        check(p.stderr.strip() != "", f"{args}: no message")
    p = subprocess.run([MAILCLI, "admin", "--help"], capture_output=True, text=True, timeout=30)
    check(p.returncode == 0 and "user add" in p.stdout, p.stdout)


def test_not_our_store():
    other = os.path.join(TMP, "other.db")
    db = sqlite3.connect(other)
    db.execute("create table photos(id integer)")
    db.commit()
    db.close()
    p = admin("user", "list", store=other)
    check(p.returncode == 1 and "not a correio store" in p.stderr, p.stderr)
    text = os.path.join(TMP, "text.db")
    with open(text, "w") as f:
        f.write("hello, this is not a database\n" * 100)
    p = admin("user", "list", store=text)
    check(p.returncode == 1 and "not a" in p.stderr, p.stderr)
    p = admin("user", "list", store=os.path.join(TMP, "no", "such", "dir.db"))
    check(p.returncode == 1, f"{p.returncode}")


def test_config_file():
    conf = os.path.join(TMP, "correio.conf")
    cstore = os.path.join(TMP, "from-config.db")
    with open(conf, "w") as f:
        f.write(f"[store]\npath = {cstore}\n")
    p = admin("-c", conf, "domain", "add", "lab.test", store=None)
    check(p.returncode == 0, p.stderr)
    check(sql("select name from domains", cstore).strip() == "lab.test", "config store not used")
    # --store wins over the file
    p = subprocess.run([MAILCLI, "admin", "-c", conf, "--store", STORE, "domain", "list"],
                       capture_output=True, text=True, timeout=30)
    check(p.stdout == "lab.test\n", repr(p.stdout))
    with open(conf, "w") as f:
        f.write("[store]\npath = x.db\n\n[smtpd]\nvrfy = maybe\n")
    p = admin("-c", conf, "user", "list", store=None)
    check(p.returncode == 1, f"{p.returncode}")
    check(f"{conf}:5: [smtpd] vrfy:" in p.stderr, p.stderr)


def test_default_store_path():
    work = os.path.join(TMP, "cwd")
    os.mkdir(work)
    p = subprocess.run([os.path.abspath(MAILCLI), "admin", "domain", "add", "lab.test"], cwd=work,
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, p.stderr)
    check(os.path.exists(os.path.join(work, "var", "correio.db")), "var/correio.db not created")


if __name__ == "__main__":
    run([test_user_add_hash_only, test_user_add_existing, test_password_never_from_argv,
         test_no_terminal, test_empty_password_refused, test_prompt_echo_off, test_user_passwd,
         test_domains_and_aliases, test_deliver, test_queue, test_transcript, test_user_del,
         test_usage_errors, test_not_our_store, test_config_file, test_default_store_path])
