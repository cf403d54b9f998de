#!/usr/bin/env python3
"""Memory exhaustion (issue 16): smtpd and pop3d with their address space
limited (RLIMIT_AS, as `ulimit -v` does) to a little more than they use,
under 500 concurrent clients.

The limit is set on the running daemon (prlimit(2)). Each test has two
steps: the 500 clients connect and get ready under a roomy limit (the
daemon's VmSize at rest + ROOMY), then the limit drops to the VmSize of that
moment + TIGHT, and all 500 go at once:
- smtpd: each client is at DATA; then each sends its message (every fifth
  1 MB, which goes through the spool file past 64 KiB; the others 4 KB),
  each with a token of its own;
- pop3d: each client is logged in to a mailbox of its own; then each RETRs
  its message (half of them 1 MB), and every other one DELE's it and QUITs.
Allocations then fail (malloc, SQLite's page cache, libevent's buffers).
The test counts the refusals and the daemons' log lines about them. What
must hold:
- every message answered 250 is in the store exactly once, whole;
- a RETR ends with its end mark only when the message came whole; a QUIT
  answered +OK after DELE removed it; one answered -ERR did not;
- PRAGMA integrity_check is ok;
- each daemon is still up and serves a new client once the limit is roomy
  again, or it exited with a status (never a signal);
- a login whose password check (yescrypt: megabytes) finds no memory gets
  -ERR [SYS/TEMP] / 454, never "wrong password".
The sanitizer build cannot run under an address-space limit (ASan reserves
terabytes of shadow memory): there the test says so and passes.
"""
import asyncio
import os
import re
import resource
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from correio_test import Lab, SMTPD, check, run  # noqa: E402
from storebodies import message_bodies  # noqa: E402

CLIENTS = 500
ROOMY = 64 * 1024 * 1024        # while the clients connect and log in
TIGHT = {"smtpd": 0, "pop3d": 4 * 1024 * 1024}   # then: VmSize with the clients ready + this
TIGHTER = -16 * 1024 * 1024     # smtpd's later rounds, while none saw a failure
# Rounds for smtpd. Under a limit below its VmSize no new mapping can be
# made, but what its heap already holds is still handed out: whether 500
# clients need more than that is chance (about a third of rounds saw no
# refusal), so it goes on, up to this many rounds, until one does.
SMTPD_ROUNDS = 6
BIG = 1024 * 1024
PASSWORD = "load-secret-7"
LOAD_TIMEOUT = 120              # seconds for all the clients of one daemon


def sanitizer_build():
    with open(SMTPD, "rb") as f:
        return b"__asan_init" in f.read()


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 4 * CLIENTS + 256)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def vm_size(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize")


def limit_address_space(proc, name, margin, what):
    """Cap the daemon's address space at its VmSize now + margin."""
    size = vm_size(proc.pid)
    cap = size + margin
    # the soft limit only: raising it again needs no privilege
    resource.prlimit(proc.pid, resource.RLIMIT_AS, (cap, resource.RLIM_INFINITY))
    print(f"{name}: VmSize {size // 1024} KiB {what}, RLIMIT_AS {cap // 1024} KiB", flush=True)
    return cap


class Gate:
    """Every client waits at the gate until all are ready (or failed)."""

    def __init__(self):
        self.ready = 0
        self.go = asyncio.Event()

    async def wait(self):
        self.ready += 1
        await self.go.wait()

    def skip(self):
        self.ready += 1


def message(i):
    size = BIG if i % 5 == 0 else 4096
    head = (f"From: <ana@lab.test>\r\nSubject: load {i}\r\n"
            f"Message-ID: <tok-{i:04d}@load.test>\r\n\r\ntok-{i:04d}\r\n").encode()
    line = b"x" * 76 + b"\r\n"
    body = line * ((size - len(head)) // len(line) + 1)
    return head + body


async def read_reply(r):
    """An SMTP reply's code (its last line's)."""
    while True:
        line = await r.readline()
        if not line:
            raise ConnectionError("closed")
        if len(line) < 4 or line[3:4] != b"-":
            return int(line[:3])


async def smtp_client(lab, i, gate, out):
    """Get to DATA, wait at the gate, send one message; out[i] = the code
    after the final dot (or of the step that failed), or a string."""
    waited = False
    try:
        r, w = await asyncio.open_connection(lab.host, lab.smtp_port, limit=1 << 20)
        steps = [(None, 220), (b"EHLO load.test\r\n", 250), (b"MAIL FROM:<ana@lab.test>\r\n", 250),
                 (f"RCPT TO:<u{i % CLIENTS:03d}@lab.test>\r\n".encode(), 250), (b"DATA\r\n", 354)]
        for cmd, want in steps:
            if cmd:
                w.write(cmd)
            code = await read_reply(r)
            if code != want:
                out[i] = f"setup {code}"
                w.close()
                return
        waited = True
        await gate.wait()
        w.write(message(i) + b".\r\n")
        await w.drain()
        out[i] = await read_reply(r)
        w.write(b"QUIT\r\n")
        await w.drain()
        w.close()
    except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError) as e:
        out.setdefault(i, f"dropped: {type(e).__name__}")
    finally:
        if not waited:
            gate.skip()


async def pop3_client(lab, i, sizes, gate, out):
    """Log in as u<i>, wait at the gate, RETR 1 (and DELE 1 when i is even),
    QUIT. out[i] = (retr, got, quit): the replies ("+OK...", "-ERR...",
    None when none came) and the octets of a RETR that ended with its end
    mark."""
    retr = got = quit = None
    waited = False
    try:
        r, w = await asyncio.open_connection(lab.host, lab.pop3_port, limit=1 << 20)

        async def cmd(c):
            if c:
                w.write(c.encode() + b"\r\n")
            return (await r.readline()).decode("latin-1").rstrip("\r\n")

        for c in (None, f"USER u{i:03d}", f"PASS {PASSWORD}"):
            line = await cmd(c)
            if not line.startswith("+OK"):
                out[i] = ("setup " + (line or "closed"), None, None)
                w.close()
                return
        waited = True
        await gate.wait()
        retr = await cmd("RETR 1") or None
        if retr and retr.startswith("+OK"):
            data = b""
            while not data.endswith(b"\r\n.\r\n"):
                chunk = await r.read(65536)
                if not chunk:
                    break           # cut short: no end mark, as it must be
                data += chunk
            if data.endswith(b"\r\n.\r\n"):
                got = len(data) - 3
                check(got == sizes[i], f"RETR of u{i:03d} ended with its end mark after "
                      f"{got} octets, expected {sizes[i]}")
            elif i % 2 == 0:
                raise ConnectionError("RETR cut short")
            if i % 2 == 0:
                dele = await cmd("DELE 1")
                check(dele.startswith("+OK") or dele == "", f"DELE: {dele}")
        quit = await cmd("QUIT") or None
        w.close()
    except (OSError, ConnectionError, ValueError, asyncio.IncompleteReadError):
        pass
    finally:
        if not waited:
            gate.skip()
    out.setdefault(i, (retr, got, quit))


async def crowd(factory, proc, name, settle, tight, first=0):
    """Start CLIENTS clients (numbered from first); when all are at the
    gate, tighten the limit to VmSize + tight and open it. Returns their
    outcomes."""
    out = {}
    gate = Gate()

    async def opener():
        deadline = time.time() + LOAD_TIMEOUT / 2
        while gate.ready < CLIENTS and time.time() < deadline:
            await asyncio.sleep(0.05)
        check(gate.ready == CLIENTS, f"only {gate.ready} clients got ready")
        await asyncio.sleep(settle)
        limit_address_space(proc, name, tight, f"with {CLIENTS} clients ready")
        gate.go.set()

    await asyncio.wait_for(asyncio.gather(opener(), *(factory(first + i, gate, out)
                                                       for i in range(CLIENTS))), LOAD_TIMEOUT)
    return out


def still_serving_or_clean_exit(lab, proc, name, probe):
    rc = proc.poll()
    if rc is None:
        probe()
        return "up"
    check(rc >= 0, f"{name} killed by signal {-rc}: {lab.log(name)[-3000:]}")
    return f"exited with status {rc}"


def memory_log_lines(lab, name):
    return len(re.findall(r"(?i)out of memory|reason=memory|cannot allocate", lab.log(name)))


def make_lab():
    lab = Lab(config_extra=(
        "[limits]\n"
        f"max_connections = {4 * CLIENTS}\n"
        f"max_connections_per_addr = {4 * CLIENTS}\n"
        f"max_recipients = {2 * CLIENTS}\n"))
    # CLIENTS accounts with one password: clone ana's row with a known hash
    lab.admin("user", "add", "u000", "--password-stdin", stdin=PASSWORD + "\n")
    lab.sql_write(f"WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < {CLIENTS - 1}) "
                  "INSERT INTO accounts(name, hash, created) SELECT printf('u%03d', v), hash, "
                  "created FROM accounts, n WHERE name = 'u000'")
    if os.environ.get("CORREIO_KEEP"):
        print(f"lab: {lab.dir}", flush=True)
    return lab


def test_smtpd_under_rlimit_as():
    lab = make_lab()
    try:
        lab.start_smtpd()
        warm_up_smtpd(lab)
        limit_address_space(lab.smtpd, "smtpd", ROOMY, "warmed up")
        before = lab.count()
        out = {}
        for rnd, tight in enumerate((TIGHT["smtpd"],) + (TIGHTER,) * (SMTPD_ROUNDS - 1)):
            t0 = time.time()
            got = asyncio.run(crowd(lambda i, g, o: smtp_client(lab, i, g, o), lab.smtpd, "smtpd",
                                    0.5, tight, first=rnd * CLIENTS))
            took = time.time() - t0
            out.update(got)
            replies = {}
            for c in got.values():
                replies[c] = replies.get(c, 0) + 1
            mem = memory_log_lines(lab, "smtpd")
            print(f"smtpd round {rnd + 1}: {replies.get(250, 0)} of {CLIENTS} messages "
                  f"acknowledged in {took:.1f}s; replies {replies}; memory lines in the log "
                  f"so far: {mem}", flush=True)
            check(not any(isinstance(c, str) and c.startswith("setup") for c in got.values()),
                  f"clients failed before the limit was tight: {replies}")
            check(all(c in (250, 421, 451, 452) or isinstance(c, str) for c in got.values()),
                  f"unexpected replies: {replies}")
            if lab.smtpd.poll() is not None or (replies.get(250, 0) < CLIENTS and mem > 0):
                break
            limit_address_space(lab.smtpd, "smtpd", ROOMY, "between rounds")
        ok = sorted(i for i, c in out.items() if c == 250)
        check(len(ok) < len(out) and mem > 0, "the limit made no allocation fail: the test tested nothing")
        # every 250 is in the store exactly once, whole
        stored = {}
        db = sqlite3.connect(f"file:{lab.store}?mode=ro", uri=True, timeout=10)
        for _, size, body in message_bodies(db, lab.store):
            at = (body or b"").find(b"tok-")
            if at >= 0:
                stored.setdefault(int(body[at + 4:at + 8]), []).append(size)
        db.close()
        for i in ok:
            check(len(stored.get(i, [])) == 1, f"message {i} acknowledged, stored "
                  f"{len(stored.get(i, []))} times")
            check(stored[i][0] >= len(message(i)), f"message {i} stored short: {stored[i]}")
        check(all(len(v) == 1 for v in stored.values()), "a message stored twice")
        extra = sorted(set(stored) - set(ok))
        print(f"smtpd: stored but not acknowledged (the client saw a failure): {len(extra)}")
        check(lab.count() == before + len(stored), "messages table vs tokens")
        check(lab.sql("PRAGMA integrity_check").decode().strip() == "ok", "integrity_check")

        def probe():
            limit_address_space(lab.smtpd, "smtpd", ROOMY, "after the load")
            d = lab.smtp_dialog()
            d.expect(250, "EHLO after.test")
            d.smtp_send("Subject: after the load\r\n\r\nstill here\r\n", rcpts=("u001@lab.test",))
            d.expect(221, "QUIT")
        state = still_serving_or_clean_exit(lab, lab.smtpd, "smtpd", probe)
        print(f"smtpd after the load: {state}")
        if lab.smtpd.poll() is None:
            lab.stop_checked(lab.smtpd, "smtpd", timeout=30)
    finally:
        lab.stop()


def warm_up_smtpd(lab):
    """A few messages at once, so that VmSize counts the working set (the
    writer's SQLite cache, the threads' malloc arenas), not just the start."""
    print(f"smtpd: VmSize {vm_size(lab.smtpd.pid) // 1024} KiB at rest")
    out = {}
    gate = Gate()
    gate.go.set()

    async def some():
        await asyncio.gather(*(smtp_client(lab, CLIENTS - 1 - i, gate, out) for i in range(4)))
    asyncio.run(some())
    check(all(c == 250 for c in out.values()), f"warm-up: {out}")
    lab.sql_write("DELETE FROM mailbox; DELETE FROM messages")


def warm_up_pop3d(lab):
    """Concurrent logins first: each password thread gets its malloc arena
    (64 MiB of address space reserved) and yescrypt's 16 MiB on its first
    check, which VmSize at rest does not show."""
    print(f"pop3d: VmSize {vm_size(lab.pop3d.pid) // 1024} KiB at rest")
    ps = []
    for i in range(4):
        p, reply = pop3_login(lab, f"u{CLIENTS - 1 - i:03d}", wait=False)
        ps.append(p)
    for p in ps:
        check(p.line().startswith("+OK"), "warm-up login")
        check(p.pop3("QUIT").startswith("+OK"), "warm-up QUIT")


def pop3_login(lab, user, wait=True):
    from correio_test import Dialog
    p = Dialog(lab.host, lab.pop3_port)
    check(p.pop3().startswith("+OK"), "greeting")
    p.pop3("USER " + user)
    if not wait:
        p.send("PASS " + PASSWORD + "\r\n")
        return p, None
    return p, p.pop3("PASS " + PASSWORD)


def test_pop3d_under_rlimit_as():
    lab = make_lab()
    try:
        lab.start_smtpd()
        d = lab.smtp_dialog()
        d.expect(250, "EHLO prep.test")
        for half, size in ((range(0, CLIENTS, 2), BIG), (range(1, CLIENTS, 2), 4096)):
            d.smtp_start_data(rcpts=[f"u{i:03d}@lab.test" for i in half])
            d.send(message(0 if size == BIG else 1) + b".\r\n")
            d.expect(250)
        d.expect(221, "QUIT")
        lab.stop_checked(lab.smtpd, "smtpd")
        sizes = {int(n[1:]): int(sz) for n, sz in (l.split("|") for l in lab.sql(
            "SELECT a.name, m.size FROM mailbox m JOIN accounts a ON a.id = m.account "
            "WHERE a.name LIKE 'u%'").decode().split())}
        lab.start_pop3d()
        warm_up_pop3d(lab)
        limit_address_space(lab.pop3d, "pop3d", ROOMY, "warmed up")
        t0 = time.time()
        out = asyncio.run(crowd(lambda i, g, o: pop3_client(lab, i, sizes, g, o), lab.pop3d,
                                "pop3d", 0.5, TIGHT["pop3d"]))
        took = time.time() - t0
        whole = sum(1 for _, got, _ in out.values() if got is not None)
        cut = sum(1 for r, got, _ in out.values() if r and r.startswith("+OK") and got is None)
        errs = {}
        for r, _, q in out.values():
            for x in (r, q):
                if x and x.startswith(("-ERR", "setup")):
                    key = x.split("]")[0] + "]" if "[" in x else x[:30]
                    errs[key] = errs.get(key, 0) + 1
        quits = sum(1 for _, _, q in out.values() if q and q.startswith("+OK"))
        mem = memory_log_lines(lab, "pop3d")
        print(f"pop3d: {whole} of {CLIENTS} RETR whole, {cut} cut short (no end mark), "
              f"{quits} QUIT +OK in {took:.1f}s; -ERR {errs}; memory lines in the log: {mem}",
              flush=True)
        check(not any(str(r).startswith("setup") for r, _, _ in out.values()),
              f"clients failed before the limit was tight: {errs}")
        check(mem > 0, "the limit made no allocation fail: the test tested nothing")
        # QUIT +OK after DELE: gone; no DELE, or QUIT -ERR: kept. A session
        # cut before QUIT's answer may be either (as a 250 that is lost).
        left = {int(x) for x in lab.sql(
            "SELECT substr(a.name, 2) FROM mailbox m JOIN accounts a ON a.id = m.account "
            "WHERE m.deleted = 0 AND a.name LIKE 'u%'").decode().split()}
        for i, (retr, got, quit) in out.items():
            dele = i % 2 == 0 and retr is not None and retr.startswith("+OK")
            what = f"u{i:03d}: RETR {retr!r} QUIT {quit!r}, message {'gone' if i not in left else 'kept'}"
            if not dele or (quit is not None and quit.startswith("-ERR")):
                check(i in left, what)
            elif quit is not None and quit.startswith("+OK"):
                check(i not in left, what)
        check(lab.sql("PRAGMA integrity_check").decode().strip() == "ok", "integrity_check")

        # a password check with no memory for yescrypt: a temporary failure
        if lab.pop3d.poll() is None:
            limit_address_space(lab.pop3d, "pop3d", 4 * 1024 * 1024, "before a login")
            p, reply = pop3_login(lab, "u001")
            p.close()
            check(reply.startswith("-ERR [SYS/TEMP]"), f"login with no memory for crypt: {reply}")
            check(lab.log_has("pop3d", "event=auth-check-failed"), "the log says why")

        def probe():
            limit_address_space(lab.pop3d, "pop3d", ROOMY, "after the load")
            p, reply = pop3_login(lab, "u001")
            check(reply.startswith("+OK"), f"login after the load: {reply}")
            check(p.pop3("QUIT").startswith("+OK"), "QUIT after the load")
        state = still_serving_or_clean_exit(lab, lab.pop3d, "pop3d", probe)
        print(f"pop3d after the load: {state}")
        if lab.pop3d.poll() is None:
            lab.stop_checked(lab.pop3d, "pop3d", timeout=30)
    finally:
        lab.stop()


if __name__ == "__main__":
    if sanitizer_build():
        print("skipped: the sanitizer build cannot run under RLIMIT_AS (ASan maps terabytes "
              "of shadow memory); the normal build runs this test")
        sys.exit(0)
    raise_nofile()
    run([test_smtpd_under_rlimit_as, test_pop3d_under_rlimit_as])
