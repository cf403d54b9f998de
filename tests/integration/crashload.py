"""crashload - the load and the checks of the crash-consistency tests.

Shared by tests/integration/test_crash_consistency.py (30 kills, in
./test.sh), test_pg_crash.py (the same on PostgreSQL, with the database server
stopped too) and tests/soak/soak.py (1,000 + 1,000 kills, by hand). Owns:
  - the SMTP sender that a test runs in threads while smtpd is killed: each
    message carries a unique token and the SHA-256 of its text, and the
    sender records what it knows of it (acked / refused / unknown / partial);
  - the reading of a store after a kill, with Python's sqlite3 or psql (an
    independent reader): PRAGMA integrity_check, foreign keys (SQLite; the
    PostgreSQL server enforces its own), a body's chunks all there (PostgreSQL),
    orphans, and every message's token, recipients and whether its text is
    whole;
  - judging the records against that reading (lost, duplicated, damaged...);
  - the smtpd crash tests' cycles (smtpd_kill_cycles: start, send, kill,
    join), with a hook for what else a test breaks in a cycle;
  - the POP3 side: a session that marks messages deleted and sends QUIT
    while pop3d is killed, and the all-or-nothing judgement of the result.
How many cycles to run is the callers' choice (the soak kills on a
schedule of its own).
"""
import hashlib
import os
import random
import signal
import socket
import sqlite3
import subprocess
import threading
import time

from storebodies import message_bodies

TOKEN_HEADER = b"X-Crash-Token: "
SUM_HEADER = b"X-Crash-Sum: "       # sha256 hex of the payload, then its length
LINE = 70                           # payload characters per line of the message


def recv_reply(s, buf):
    """One SMTP reply from socket s: (code, rest-of-buffer). Raises on EOF."""
    while True:
        while b"\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                raise EOFError
            buf += chunk
        line, buf = buf.split(b"\r\n", 1)
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3]), buf


class Record:
    """What a sender knows of one message. status: "partial" (the connection
    died before the final dot), "unknown" (the final dot was sent, no reply
    came), "acked" (250 after the dot) or "refused" (another reply). Only the
    payload's length and digest are kept, so a long run holds no bodies."""
    __slots__ = ("token", "rcpts", "size", "sha", "status")

    def __init__(self, token, rcpts, payload):
        self.token, self.rcpts, self.status = token, rcpts, "partial"
        self.size = len(payload)
        self.sha = hashlib.sha256(payload.encode()).hexdigest()


def message_text(token, rcpts, payload, sha):
    """The message as sent after DATA (without the final dot): headers with the
    token and the digest, then the payload in lines of LINE characters. The
    payload holds no CR, LF or leading dot, so no dot-stuffing is needed."""
    head = (f"From: load@example.org\r\nTo: {', '.join(rcpts)}\r\n"
            f"Subject: {token}\r\nX-Crash-Token: {token}\r\n"
            f"X-Crash-Sum: {sha} {len(payload)}\r\n\r\n")
    lines = [payload[i:i + LINE] for i in range(0, len(payload), LINE)]
    return (head + "\r\n".join(lines) + "\r\n").encode()


def mixed_payload(rng, large=None):
    """A message's payload for the crash tests: with large = (lo, hi), half
    the time a random block repeated to lo..hi characters (a 1 MB+ body,
    cheap to make, its length not a multiple of the line length), else 50
    to 4,000 random characters."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 "
    if large is not None and rng.random() < 0.5:
        block = "".join(rng.choice(alphabet) for _ in range(rng.randint(900, 1100)))
        size = rng.randint(*large)
        return (block * (size // len(block) + 1))[:size]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(50, 4000)))


def send_loop(host, port, tag, rng, records, stop, make_payload, pipelined=False,
              per_connection=(1, 8), rcpt_choices=(("ana",), ("bob",), ("ana", "bob"))):
    """Send messages to smtpd at host:port until it dies or stop is set.

    Each connection sends rng.randint(*per_connection) messages, each to a
    recipient list from rcpt_choices, with make_payload(rng) as its text and
    the token "<tag>-<n>". One command at a time, or the envelope pipelined.
    Every message is appended to records (a list shared with other threads:
    append is atomic) before its first command is sent. With the envelope
    pipelined, a record's recipients become those whose RCPT got 250."""
    n = 0
    while not stop.is_set():
        try:
            s = socket.create_connection((host, port), timeout=10)
        except OSError:
            return
        buf = b""
        try:
            code, buf = recv_reply(s, buf)
            if code != 220:
                return
            s.sendall(b"EHLO crash.client\r\n")
            code, buf = recv_reply(s, buf)
            for _ in range(rng.randint(*per_connection)):
                if stop.is_set():
                    break
                n += 1
                token = f"{tag}-{n}"
                rcpts = list(rng.choice(rcpt_choices))
                payload = make_payload(rng)
                rec = Record(token, rcpts, payload)
                records.append(rec)
                env = [b"MAIL FROM:<load@example.org>\r\n"] + \
                    [f"RCPT TO:<{r}@lab.test>\r\n".encode() for r in rcpts] + [b"DATA\r\n"]
                codes = []
                if pipelined:
                    s.sendall(b"".join(env))
                    for _ in env:
                        code, buf = recv_reply(s, buf)
                        codes.append(code)
                else:
                    for cmd in env:
                        s.sendall(cmd)
                        code, buf = recv_reply(s, buf)
                        codes.append(code)
                        if code >= 400:
                            break
                if pipelined:
                    # RFC 2920: each RCPT is answered on its own; the
                    # message goes to the accepted ones only (a store that
                    # was away for one RCPT and back for the next).
                    rec.rcpts = [r for r, c in zip(rcpts, codes[1:-1]) if c == 250]
                if codes[-1] != 354:
                    rec.status = "refused"
                    s.sendall(b"RSET\r\n")
                    code, buf = recv_reply(s, buf)
                    continue
                s.sendall(message_text(token, rcpts, payload, rec.sha))
                rec.status = "unknown"
                s.sendall(b".\r\n")
                code, buf = recv_reply(s, buf)
                rec.status = "acked" if code == 250 else "refused"
        except (OSError, EOFError, ValueError):
            pass
        finally:
            s.close()


def smtpd_kill_cycles(lab, cycles, tag, records, rng, threads, large_threads, large,
                      during=None):
    """The smtpd crash tests' cycles: cycles times, start smtpd in lab, run
    threads senders (send_loop, tokens "<tag>-<cycle>-<thread>", odd threads
    with the envelope pipelined, the threads in large_threads with
    mixed_payload(rng, large)) for rng.uniform(0.05, 0.6) s, call
    during(cycle) when given (what else a test breaks while they send: the
    PostgreSQL test stops its database in some cycles), SIGKILL smtpd, and
    stop and join the senders. Every message goes into records. Returns the
    number of kills; raises AssertionError when a sender hangs after one."""
    def sender(port, cycle, tid, stop):
        def payload(prng):
            return mixed_payload(prng, large if tid in large_threads else None)
        send_loop(lab.host, port, f"{tag}-{cycle}-{tid}", random.Random(cycle * 1000 + tid),
                  records, stop, payload, pipelined=tid % 2 == 1)

    kills = 0
    for cycle in range(cycles):
        lab.start_smtpd()
        proc = lab.smtpd
        stop = threading.Event()
        running = [threading.Thread(target=sender, args=(lab.smtp_port, cycle, t, stop))
                   for t in range(threads)]
        for t in running:
            t.start()
        time.sleep(rng.uniform(0.05, 0.6))
        if during is not None:
            during(cycle)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        kills += 1
        stop.set()
        for t in running:
            t.join(timeout=20)
            if t.is_alive():
                raise AssertionError("a client thread hangs after the kill")
    return kills


class Stored:
    """One message found in the store."""
    __slots__ = ("mid", "accounts", "whole", "size")

    def __init__(self, mid, accounts, whole, size):
        self.mid, self.accounts, self.whole, self.size = mid, accounts, whole, size


def _payload_digest(body):
    """(token, sha256 of the payload as stored, the digest and length the
    message carries), from a stored body; token None when it has none."""
    i = body.find(TOKEN_HEADER)
    if i < 0:
        return None, None, None
    token = body[i + len(TOKEN_HEADER):body.index(b"\r\n", i)].decode()
    j = body.find(SUM_HEADER)
    carried = body[j + len(SUM_HEADER):body.index(b"\r\n", j)].decode() if j >= 0 else ""
    k = body.find(b"\r\n\r\n")
    payload = body[k + 4:].replace(b"\r\n", b"") if k >= 0 else b""
    return token, f"{hashlib.sha256(payload).hexdigest()} {len(payload)}", carried


def scan_store(path, store_dir=None):
    """Read the store at path (read-only, smtpd and pop3d stopped or killed).

    Returns (problems, stored): problems is a list of what breaks the store's
    own invariants (integrity_check, foreign keys, a mailbox entry without
    its message, a message nobody references, a queue item without its
    message or for local mail, a spool file left in store_dir, a message
    without a token); stored maps each token to a list of Stored, whose
    whole says the text is exactly what the message's digest says."""
    problems = []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        if db.execute("PRAGMA foreign_key_check").fetchall() != []:
            problems.append("foreign keys")
        accounts = dict(db.execute("SELECT id, name FROM accounts"))
        entries = {}     # message id -> account names
        for acc, mid in db.execute("SELECT account, message FROM mailbox"):
            entries.setdefault(mid, []).append(accounts[acc])
        stored = {}
        for mid, _, body in message_bodies(db, path):
            if body is None:
                problems.append(f"message {mid}: its body file is missing")
                continue
            token, got, carried = _payload_digest(body)
            if token is None:
                problems.append(f"message {mid} without a token")
                continue
            stored.setdefault(token, []).append(
                Stored(mid, sorted(entries.get(mid, [])), got == carried, int(got.split()[1])))
        orphans = db.execute("SELECT count(*) FROM mailbox WHERE message NOT IN "
                             "(SELECT id FROM messages)").fetchone()[0]
        if orphans:
            problems.append(f"{orphans} mailbox entries without their message")
        unref = db.execute("SELECT count(*) FROM messages WHERE id NOT IN "
                           "(SELECT message FROM mailbox) AND id NOT IN "
                           "(SELECT message FROM queue)").fetchone()[0]
        if unref:
            problems.append(f"{unref} messages in no mailbox and no queue")
        qorph = db.execute("SELECT count(*) FROM queue WHERE message NOT IN "
                           "(SELECT id FROM messages)").fetchone()[0]
        if qorph:
            problems.append(f"{qorph} queue items without their message")
        nqueue = db.execute("SELECT count(*) FROM queue").fetchone()[0]
        if nqueue:
            problems.append(f"{nqueue} queue items for local-only mail")
        # smtpd's start removes body files no message owns (store_tidy()):
        # after the last clean start there are none
        apart = {str(mid) for (mid,) in db.execute(
            "SELECT id FROM messages WHERE size > 0 AND length(body) = 0")}
        bodies_dir = path + "-bodies"
        strays = sorted(set(os.listdir(bodies_dir)) - apart) if os.path.isdir(bodies_dir) else []
        if strays:
            problems.append(f"body files no message owns: {strays[:5]} ({len(strays)})")
    finally:
        db.close()
    spool_dir = store_dir or os.path.dirname(os.path.abspath(path))
    left = [f for f in os.listdir(spool_dir) if f.startswith(".correio-spool")]
    if left:
        problems.append(f"spool files left beside the store: {left}")
    return problems, stored


def _psql_rows(url, query, timeout=120):
    """Rows of query on a PostgreSQL store (psql, fields split on '|')."""
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
                        "-d", url, "-c", query], capture_output=True, timeout=timeout, check=True)
    return [line.split("|") for line in p.stdout.decode().splitlines() if line]


def scan_store_pg(url, spool_dir):
    """scan_store() for a PostgreSQL store at url (the daemons stopped or
    killed; the server running): the same problems and the same stored map.
    A body is its rows of message_chunks: they must be numbered 0..n-1 and
    add up to the message's size."""
    problems = []
    broken = _psql_rows(url, "SELECT m.id FROM messages m LEFT JOIN (SELECT message, count(*) n, "
                        "max(seq) mx, sum(length(data)) sz FROM message_chunks GROUP BY message) c "
                        "ON c.message = m.id WHERE coalesce(c.sz, 0) <> m.size "
                        "OR coalesce(c.n, 0) <> coalesce(c.mx, -1) + 1")
    if broken:
        problems.append(f"{len(broken)} messages whose chunks do not make their size: "
                        f"{[r[0] for r in broken[:5]]}")
    accounts = dict(_psql_rows(url, "SELECT id, name FROM accounts"))
    entries = {}
    for acc, mid in _psql_rows(url, "SELECT account, message FROM mailbox"):
        entries.setdefault(mid, []).append(accounts[acc])
    stored = {}
    for mid, body in _psql_rows(url, "SELECT m.id, encode(string_agg(c.data, ''::bytea "
                                "ORDER BY c.seq), 'hex') FROM messages m JOIN message_chunks c "
                                "ON c.message = m.id GROUP BY m.id"):
        token, got, carried = _payload_digest(bytes.fromhex(body))
        if token is None:
            problems.append(f"message {mid} without a token")
            continue
        stored.setdefault(token, []).append(
            Stored(mid, sorted(entries.get(mid, [])), got == carried, int(got.split()[1])))
    for what, query in (
            ("mailbox entries without their message",
             "SELECT count(*) FROM mailbox WHERE message NOT IN (SELECT id FROM messages)"),
            ("messages in no mailbox and no queue",
             "SELECT count(*) FROM messages WHERE id NOT IN (SELECT message FROM mailbox) "
             "AND id NOT IN (SELECT message FROM queue)"),
            ("queue items without their message",
             "SELECT count(*) FROM queue WHERE message NOT IN (SELECT id FROM messages)"),
            ("queue items for local-only mail", "SELECT count(*) FROM queue")):
        n = int(_psql_rows(url, query)[0][0])
        if n:
            problems.append(f"{n} {what}")
    left = [f for f in os.listdir(spool_dir) if f.startswith(".correio-spool")]
    if left:
        problems.append(f"spool files left: {left}")
    return problems, stored


class Verdict:
    """records judged against a scan_store() result. Lists of tokens:
    lost (acked, not stored), duplicated (stored more than once), damaged
    (text not whole), misrouted (entries not exactly its recipients),
    forbidden (stored though refused or cut before the dot), strangers
    (stored, not in records: the caller says whether that is wrong)."""

    def __init__(self, records, stored):
        self.by_status = {}
        self.lost, self.duplicated, self.damaged, self.misrouted = [], [], [], []
        self.forbidden, self.strangers = [], []
        self.found_acked = self.unknown_stored = self.unknown_absent = 0
        known = {}
        for r in records:
            self.by_status[r.status] = self.by_status.get(r.status, 0) + 1
            known[r.token] = r
        for token, msgs in stored.items():
            r = known.get(token)
            if r is None:
                self.strangers.append(token)
                continue
            if r.status not in ("acked", "unknown"):
                self.forbidden.append(f"{token} ({r.status})")
            if len(msgs) != 1:
                self.duplicated.append(token)
            for m in msgs:
                if not m.whole or m.size != r.size:
                    self.damaged.append(token)
                if m.accounts != sorted(r.rcpts):
                    self.misrouted.append(f"{token}: entries {m.accounts} for {r.rcpts}")
        for r in records:
            if r.status == "acked":
                if r.token in stored:
                    self.found_acked += 1
                else:
                    self.lost.append(r.token)
            elif r.status == "unknown":
                if r.token in stored:
                    self.unknown_stored += 1
                else:
                    self.unknown_absent += 1

    def problems(self):
        """Every broken promise, as text (empty when all is well)."""
        out = []
        for what, toks in (("got 250 but is not in the store", self.lost),
                           ("stored more than once", self.duplicated),
                           ("body damaged", self.damaged),
                           ("wrong mailbox entries", self.misrouted),
                           ("stored but the client saw a refusal or a cut", self.forbidden)):
            if toks:
                out.append(f"{len(toks)} {what}: {toks[:5]}")
        return out


# ---- POP3 ------------------------------------------------------------------

def pop3_mailbox(db_path, account, integrity=True):
    """The uidls of account's mailbox (read-only) and integrity_check's answer
    (None when integrity is false)."""
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT m.uidl FROM mailbox m JOIN accounts a ON a.id = m.account "
                          "WHERE a.name = ? AND m.deleted = 0", (account,)).fetchall()
        if integrity:
            integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
        else:
            integrity = None
    finally:
        db.close()
    return sorted(r[0] for r in rows), integrity


def pop3_mailbox_pg(url, account):
    """pop3_mailbox() for a PostgreSQL store: (uidls, "ok")."""
    rows = _psql_rows(url, "SELECT m.uidl FROM mailbox m JOIN accounts a ON a.id = m.account "
                      f"WHERE lower(a.name) = lower('{account}') AND NOT m.deleted")
    return sorted(r[0] for r in rows), "ok"


def quit_and_kill(proc, dialog, delay):
    """Send QUIT on dialog and SIGKILL proc delay seconds later (busy-waiting,
    for sub-millisecond delays); a negative delay kills first and sends QUIT
    -delay seconds after. Returns the reply to QUIT, "" when none came."""
    def spin(sec):
        end = time.perf_counter() + sec
        while time.perf_counter() < end:
            pass
    try:
        if delay < 0:
            proc.send_signal(signal.SIGKILL)
            spin(-delay)
            dialog.send("QUIT\r\n")
        else:
            dialog.send("QUIT\r\n")
            spin(delay)
            proc.send_signal(signal.SIGKILL)
    except OSError:
        pass
    proc.wait(timeout=10)
    try:
        return dialog.line()
    except (OSError, EOFError):
        return ""
    finally:
        dialog.close()


def judge_quit(before, after, marked, reply):
    """Classify one killed QUIT: (outcome, problem or None). before/after are
    the mailbox's uidls, marked those the session deleted with DELE, reply
    the answer to QUIT ("" for none). outcome: "expunged" (exactly the marked
    ones gone) or "untouched"; any other change is a problem."""
    expected = sorted(set(before) - set(marked))
    ok = reply.startswith("+OK")
    if after == expected:
        return "expunged", None
    if after == sorted(before):
        if ok:
            return "untouched", "QUIT answered +OK but nothing was deleted"
        return "untouched", None
    lost = sorted(set(expected) - set(after))
    if lost:
        return "partial", f"messages not marked deleted are gone: {lost}"
    return "partial", (f"a partial expunge: {len(before) - len(after)} of the {len(marked)} "
                       f"marked messages are gone (reply {reply!r})")
