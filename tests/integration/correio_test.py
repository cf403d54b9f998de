"""correio_test - the harness every integration test uses.

Starts the real smtpd and pop3d on free loopback ports with a fresh store in a
temporary directory, creates the lab's demo accounts, and stops everything at
exit. Binaries come from $CORREIO_BIN (the CMake build directory, set by CTest).
A daemon counts as started once it listens (the port is polled) or, with
Lab(notify=True), once it sent READY=1 on its $NOTIFY_SOCKET.
Every wait is bounded; a test that hangs fails instead.

The store's backend: SQLite (a file in the lab's directory) unless
$CORREIO_TEST_STORE is "postgresql"; then each lab gets a database of its own
on the private PostgreSQL server whose URL is in the file $CORREIO_TEST_PG
(tests/pg_server.py, started once for the run by a CTest fixture), and
Lab.sql() reads it with psql instead of sqlite3.
"""
import atexit
import glob
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("CORREIO_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build")
SRC = os.environ.get("CORREIO_SRC") or os.path.join(os.path.dirname(__file__), "..", "..")

SMTPD = os.path.join(BIN, "smtpd", "smtpd")
POP3D = os.path.join(BIN, "pop3d", "pop3d")
MAILCLI = os.path.join(BIN, "mailcli", "mailcli")

PASSWORDS = {"ana": "ana-secret-1", "bob": "bob-secret-2"}

BACKEND = os.environ.get("CORREIO_TEST_STORE", "sqlite")
PG = BACKEND == "postgresql"


def pg_server_url():
    """The private PostgreSQL server's URL (a superuser's), from $CORREIO_TEST_PG."""
    with open(os.environ["CORREIO_TEST_PG"]) as f:
        return f.read().strip()


def pg_database_url(name):
    """The server's URL with its database part replaced by name."""
    base = pg_server_url()
    head, _, rest = base.partition("://")
    hostpart, _, tail = rest.partition("/")
    query = tail.partition("?")[2]
    return f"{head}://{hostpart}/{name}" + (f"?{query}" if query else "")


# A message's body as one bytea: PostgreSQL keeps it in rows of message_chunks.
_PG_BODY = ("(SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) FROM message_chunks c "
            "WHERE c.message = messages.id)")


def pg_dialect(query):
    """The few SQLite words the tests' queries use, in PostgreSQL's: hex(x)
    (upper-case, as SQLite prints it), group_concat(x, char(10)), and
    messages.body (one blob in SQLite, rows of message_chunks there)."""
    query = re.sub(r"\bhex\(body\)", f"upper(encode({_PG_BODY}, 'hex'))", query)
    query = re.sub(r"\bhex\(([\w.]+)\)", r"upper(encode(convert_to(\1, 'UTF8'), 'hex'))", query)
    if re.search(r"\bfrom messages\b", query, re.I):
        query = re.sub(r"(?<![.\w])body\b", _PG_BODY, query)
    query = re.sub(r"\bgroup_concat\(", "string_agg(", query)
    return re.sub(r"\bchar\((\d+)\)", r"chr(\1)", query)


def psql(url, query, timeout=30):
    """Run query with psql against url: rows as sqlite3 prints them (a|b)."""
    p = subprocess.run(["psql", "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1",
                        "-d", url, "-c", pg_dialect(query)], capture_output=True, timeout=timeout,
                       check=True)
    return p.stdout


def pg_new_database():
    """A fresh, empty database on the private server: its URL."""
    name = "lab_%016x" % random.getrandbits(64)
    psql(pg_server_url(), f"CREATE DATABASE {name}")
    return pg_database_url(name)


def skip_unless_sqlite(why):
    """End a test that is about the SQLite file itself, with a line saying so
    (it runs in the SQLite pass of the suite)."""
    if PG:
        print(f"SKIP on {BACKEND}: {why}")
        sys.exit(0)

# Every lab of this test process lives under one private parent directory,
# removed at exit (kept with $CORREIO_KEEP), so nothing outside this process
# can be confused with it.
_PARENT = tempfile.mkdtemp(prefix="correio-tests-")
if not os.environ.get("CORREIO_KEEP"):
    atexit.register(shutil.rmtree, _PARENT, True)


def workdir(prefix="work-"):
    """A private directory for a test's own files (homes, attachments, output),
    under the same parent as the labs and removed with them at exit."""
    return tempfile.mkdtemp(prefix=prefix, dir=_PARENT)


# Ports this test has claimed (see _claim_port), released at exit.
_PORT_CLAIMS = os.path.join(tempfile.gettempdir(), "correio-test-ports")
_MY_CLAIMS = []


def _release_ports():
    for path in _MY_CLAIMS:
        try:
            os.unlink(path)
        except OSError:
            pass


atexit.register(_release_ports)


def _claim_port(port):
    """Claim port among the tests that run beside this one (ctest -j): a
    marker file made with O_EXCL, naming this process. Between free_port()
    and the daemon's bind another test could pick the same free port; its
    daemon then failed to start while ours answered its wait_port(), and the
    test talked to the wrong server. A marker whose process is gone is taken
    over. True when the port is this test's now."""
    os.makedirs(_PORT_CLAIMS, exist_ok=True)
    path = os.path.join(_PORT_CLAIMS, str(port))
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                with open(path) as f:
                    owner = int(f.read().strip() or "0")
                if owner == os.getpid():
                    return False        # ours already, handed out before
                if owner > 0:
                    os.kill(owner, 0)
                    return False        # another live test's
            except ProcessLookupError:
                pass                    # its test is gone: take it over
            except (OSError, ValueError):
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            continue
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        _MY_CLAIMS.append(path)
        return True
    return False


def free_port(host="127.0.0.1"):
    """A TCP port nobody uses right now, chosen below the kernel's ephemeral
    range (32768 and up): a port the kernel handed out with bind(0) may be
    taken as the local port of a client connection of another test running
    beside this one before the daemon binds it. Claimed for this test, so
    that no test running beside it gets the same one (_claim_port)."""
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    for _ in range(100):
        port = random.randrange(20000, 32000)
        with socket.socket(fam, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        if _claim_port(port):
            return port
    with socket.socket(fam, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_port(host, port, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {host}:{port} after {timeout}s")


def wait_ready(sock, proc, timeout=15.0):
    """Wait for READY=1 from proc on its $NOTIFY_SOCKET datagram socket (sent
    once it listens and its store is open, sd_notify(3)); fail if proc exits."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        sock.settimeout(0.1)
        try:
            msg = sock.recv(4096)
        except socket.timeout:
            msg = b""
        if b"READY=1" in msg.split(b"\n"):
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before it was ready")
    raise RuntimeError(f"{proc.args[0]} not ready after {timeout}s")


_LABS = []     # every Lab of this test, for the logs run() shows on a failure


class Lab:
    """A store, a config and the daemons, all under one temporary directory."""

    def __init__(self, domain="lab.test", users=PASSWORDS, tls=False, config_extra="",
                 host="127.0.0.1", keep=False, notify=False, share=None, hostname=None):
        """share: another Lab whose store this one serves too (a second host
        of the same PostgreSQL database, or a second smtpd on one SQLite
        file): no domain or account is added. hostname: run this lab's
        daemons in a UTS namespace of their own with this host name, so that
        they are another host to the store (lock owners name their host)."""
        self.dir = tempfile.mkdtemp(prefix="lab-", dir=_PARENT)
        self.notify = notify    # wait for READY=1 on $NOTIFY_SOCKET, not for the port
        self.host = host
        self.domain = domain
        self.hostname = hostname
        self.shared = share is not None
        if share is not None:
            self.store = share.store
        else:
            self.store = pg_new_database() if PG else os.path.join(self.dir, "correio.db")
        self.procs = []
        self.keep = keep
        _LABS.append(self)
        self.cert = self.key = None
        if tls:
            self.cert, self.key = self.make_cert()
        self.config = os.path.join(self.dir, "correio.conf")
        with open(self.config, "w") as f:
            if PG:
                f.write(f"[store]\nurl = {self.store}\nspool = {self.dir}\ntranscripts = yes\n")
            else:
                f.write(f"[store]\npath = {self.store}\ntranscripts = yes\n")
            f.write("[smtpd]\nhostname = mx.%s\n" % domain)
            if self.cert:
                f.write(f"[tls]\ncert = {self.cert}\nkey = {self.key}\n")
            f.write(config_extra)
        if share is None:
            self.admin("domain", "add", domain)
            for name, pw in users.items():
                self.admin("user", "add", name, "--password-stdin", stdin=pw + "\n")
        atexit.register(self.stop)

    def make_cert(self):
        cert = os.path.join(self.dir, "cert.pem")
        key = os.path.join(self.dir, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                        "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        return cert, key

    def tls_context(self):
        """A client TLS context that trusts exactly this lab's certificate."""
        import ssl
        ctx = ssl.create_default_context(cafile=self.cert)
        ctx.check_hostname = True
        return ctx

    def mailcli(self, *args, stdin=None, check=True, timeout=60, env=None):
        e = dict(os.environ)
        if env:
            e.update(env)
        p = subprocess.run([MAILCLI, *args], input=stdin, capture_output=True,
                           text=isinstance(stdin, str) or stdin is None, timeout=timeout, env=e)
        if check and p.returncode != 0:
            raise RuntimeError(f"mailcli {' '.join(args)} failed: {p.returncode}\n{p.stdout}\n{p.stderr}")
        return p

    def admin(self, *args, stdin=None, check=True):
        return self.mailcli("admin", "-c", self.config_path(), *args, stdin=stdin, check=check)

    def config_path(self):
        return self.config if os.path.exists(self.config) else None

    def _start(self, binary, listens, extra, env=None):
        args = [binary, "-c", self.config]
        if self.hostname:
            # exec keeps the pid: signals and waits reach the daemon itself
            args = ["unshare", "--uts", "sh", "-c", f'hostname {self.hostname} && exec "$@"',
                    "sh"] + args
        for l in listens:
            args += ["--listen", l]
        args += extra
        log = open(os.path.join(self.dir, os.path.basename(binary) + ".log"), "ab")
        e = None
        if env:
            e = dict(os.environ)
            e.update(env)
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=e)
        self.procs.append(p)
        return p

    def _start_roles(self, binary, roles, extra, env=None):
        """Start binary with one free loopback port per role; wait until each
        listens; env is added to its environment (e.g. libfaketime's).
        Returns (process, {role: port})."""
        for _ in range(3):
            ports = {}
            listens = []
            for role in roles:
                port = free_port(self.host)
                ports[role] = port
                h = f"[{self.host}]" if ":" in self.host else self.host
                listens.append(f"{h}:{port} {role}")
            run_env = env
            if self.notify:
                sock = self._notify_socket(binary)
                run_env = dict(env or {}, NOTIFY_SOCKET=sock.getsockname())
            proc = self._start(binary, listens, list(extra), run_env)
            if self.notify:
                wait_ready(sock, proc)
                return proc, ports
            if self._wait_listening(proc, ports.values()):
                return proc, ports
            # It ended before listening: a port taken meanwhile (the log
            # says so); anything else fails below with the same ports.
            self.procs.remove(proc)
        raise RuntimeError(f"{os.path.basename(binary)} did not start (exit status "
                           f"{proc.returncode}); see its log")

    def _wait_listening(self, proc, ports, timeout=15.0):
        """True once every port listens; False if proc ended first."""
        deadline = time.time() + timeout
        for port in ports:
            while True:
                try:
                    with socket.create_connection((self.host, port), timeout=1):
                        break
                except OSError:
                    if proc.poll() is not None:
                        return False
                    if time.time() > deadline:
                        raise RuntimeError(f"nothing listens on {self.host}:{port} "
                                           f"after {timeout}s")
                    time.sleep(0.05)
        return True

    def _notify_socket(self, binary):
        """The readiness socket of one daemon (made once), emptied of what an
        earlier process of it sent."""
        name = os.path.basename(binary)
        if not hasattr(self, "_notify"):
            self._notify = {}
        sock = self._notify.get(name)
        if sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            sock.bind(os.path.join(self.dir, f".notify-{name}"))
            self._notify[name] = sock
        sock.setblocking(False)
        try:
            while True:
                sock.recv(4096)
        except BlockingIOError:
            pass
        return sock

    def start_smtpd(self, roles=("inbound",), extra=(), env=None):
        """Start smtpd with one listener per role; returns {role: port}."""
        self.smtpd, ports = self._start_roles(SMTPD, roles, extra, env)
        self.smtp_ports = ports
        self.smtp_port = ports[roles[0]]
        return ports

    def start_pop3d(self, roles=("pop3",), extra=(), env=None):
        """Start pop3d with one listener per role; returns {role: port}."""
        self.pop3d, ports = self._start_roles(POP3D, roles, extra, env)
        self.pop3_ports = ports
        self.pop3_port = ports[roles[0]]
        return ports

    def log(self, name, since=0):
        """A daemon's log (all its runs in this lab), from byte offset since."""
        try:
            with open(os.path.join(self.dir, name + ".log"), "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_has(self, name, text, since=0, timeout=10.0):
        """Whether text shows up in a daemon's log (from byte offset since)
        within timeout seconds, polling every 0.05 s. A daemon's event loop
        holds its lines and writes them at the end of the loop's turn
        (common/log.c, log_hold()), so a client can read a reply before the
        line about it is in the file: a check right after a reply waits."""
        deadline = time.monotonic() + timeout
        while True:
            if text in self.log(name, since):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def wait_log(self, name, text, since=0, timeout=10.0):
        """A daemon's log (from byte offset since) once it contains text, as
        log_has() waits for it; after timeout seconds, the last text read, so
        that the checks that follow fail with their own messages."""
        self.log_has(name, text, since, timeout)
        return self.log(name, since)

    def sanitizer_report(self, name, since=0):
        """What ASan/UBSan/LeakSanitizer wrote into a daemon's log, from byte
        offset since ("" when clean)."""
        log = self.log(name, since)
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            at = log.find(mark)
            if at >= 0:
                return log[max(0, at - 200):at + 3000]
        return ""

    def stop_checked(self, proc, name, timeout=15):
        """SIGTERM one daemon; fail unless it exits 0 within timeout with a clean
        sanitizer log. Returns the seconds it took."""
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=timeout)
        took = time.time() - t0
        check(rc == 0, f"{name} exit status {rc}: {self.log(name)[-2000:]}")
        report = self.sanitizer_report(name)
        check(report == "", f"{name} sanitizer report:\n{report}")
        return took

    def give_to(self, user):
        """Let a service user (e.g. "nobody", for the privilege-drop tests) use
        this lab: its parents become traversable and its files its own."""
        import pwd
        pw = pwd.getpwnam(user)
        d = os.path.dirname(self.dir)
        while d not in ("/", "/tmp", ""):
            os.chmod(d, os.stat(d).st_mode | 0o111)
            d = os.path.dirname(d)
        for root, dirs, files in os.walk(self.dir):
            os.chown(root, pw.pw_uid, pw.pw_gid)
            for f in files:
                os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)
        return pw

    def count(self, table="messages", where=""):
        """Rows in a table of the store (read with the sqlite3 tool)."""
        out = self.sql(f"select count(*) from {table}" + (f" where {where}" if where else ""))
        return int(out.decode().strip() or 0)

    def smtp_dialog(self, role=None, timeout=10.0):
        """A raw SMTP session on the listener of role (default: the first),
        its 220 greeting already read."""
        d = Dialog(self.host, self.smtp_ports[role] if role else self.smtp_port, timeout=timeout)
        d.expect(220)
        return d

    def on_pg(self):
        """Is this lab's store a PostgreSQL database (a test may point a lab
        at a store of the other backend)?"""
        return self.store.startswith(("postgresql://", "postgres://"))

    def sql_write(self, query, busy_ms=10000):
        """Change the store behind the daemons' backs (e.g. to make it fail):
        like sql(), but waiting up to busy_ms for their writers to finish."""
        if self.on_pg():
            return psql(self.store, query, timeout=busy_ms / 1000 + 30)
        p = subprocess.run(["sqlite3", "-batch", "-cmd", f".timeout {busy_ms}", self.store, query],
                           capture_output=True, timeout=busy_ms / 1000 + 30, check=True)
        return p.stdout

    def sql(self, query):
        """Read the store with the sqlite3 command-line tool (an independent
        reader), or psql on PostgreSQL."""
        if self.on_pg():
            return psql(self.store, query)
        p = subprocess.run(["sqlite3", "-batch", self.store, query], capture_output=True,
                           timeout=30, check=True)
        return p.stdout

    def sql_log(self, query):
        """Read the session log's file (beside the store) the same way; on
        PostgreSQL the session log is in the store's database."""
        if self.on_pg():
            return psql(self.store, query)
        p = subprocess.run(["sqlite3", "-batch", self.store + "-sessions", query],
                           capture_output=True, timeout=30, check=True)
        return p.stdout

    def stop_daemons(self):
        """Stop the daemons (SIGTERM, then SIGKILL after 10 s); keep the directory."""
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        self.procs = []

    def stop(self):
        """Stop the daemons and remove the lab's directory (unless keep or $CORREIO_KEEP)."""
        self.stop_daemons()
        if not self.keep and os.path.isdir(self.dir) and not os.environ.get("CORREIO_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.on_pg() and not self.shared:
                name = self.store.rpartition("/")[2].partition("?")[0]
                try:
                    psql(pg_server_url(), f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                except (subprocess.SubprocessError, OSError):
                    pass    # the server goes at the end of the run anyway


class LoopbackServer(threading.Thread):
    """A test's own TCP server on loopback (a relay destination, say): one
    thread accepting connections one at a time and handing each to
    self.session(conn), closed after it; a session that fails with OSError
    or ValueError just ends. Subclasses set their state, then call this
    __init__, which starts the thread."""

    def __init__(self, host, port, backlog=8):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.stopped = False
        self.start()

    def run(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.session(c)
            except (OSError, ValueError):
                pass
            finally:
                c.close()

    def session(self, conn):
        raise NotImplementedError

    def stop(self):
        self.stopped = True
        self.join(timeout=5)
        self.sock.close()


class Dialog:
    """A raw socket typing a session as a person on telnet would."""

    def __init__(self, host, port, timeout=10.0):
        self.s = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.s.sendall(data)

    def line(self):
        """One reply line, without CRLF (fails the test on timeout)."""
        while b"\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("server closed the connection; buffered: %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def smtp_reply(self):
        """A whole SMTP reply: (code, [lines])."""
        lines = []
        while True:
            l = self.line()
            lines.append(l)
            if len(l) < 4 or l[3] != "-":
                return int(l[:3]), lines

    def expect(self, code, command=None):
        if command is not None:
            self.send(command + "\r\n")
        got, lines = self.smtp_reply()
        if got != code:
            raise AssertionError(f"after {command!r}: expected {code}, got {lines}")
        return lines

    def smtp_start_data(self, mail_from="ana@lab.test", rcpts=("bob@lab.test",), ehlo=None):
        """[EHLO ehlo,] MAIL FROM, one RCPT TO each, DATA: each must succeed (354)."""
        if ehlo is not None:
            self.expect(250, "EHLO " + ehlo)
        self.expect(250, f"MAIL FROM:<{mail_from}>")
        for r in rcpts:
            self.expect(250, f"RCPT TO:<{r}>")
        self.expect(354, "DATA")

    def smtp_send(self, text, mail_from="ana@lab.test", rcpts=("bob@lab.test",), ehlo=None):
        """One whole transaction; text is CRLF lines, dot-stuffed by the caller.
        Returns the queue id of the 250 after the final dot."""
        self.smtp_start_data(mail_from, rcpts, ehlo)
        if isinstance(text, str):
            text = text.encode()
        self.send(text + (b"" if text.endswith(b"\r\n") or not text else b"\r\n") + b".\r\n")
        return int(self.expect(250)[0].rsplit(" ", 1)[-1])

    def starttls(self, context, server_hostname="localhost"):
        """Go on in TLS (after the server's 220 / +OK to STARTTLS / STLS). Whatever
        was buffered unread from the plaintext part is dropped (RFC 3207 4.2)."""
        self.buf = b""
        self.s = context.wrap_socket(self.s, server_hostname=server_hostname)

    def pop3_multi_raw(self):
        """The rest of a multi-line POP3 response as raw bytes (still dot-stuffed,
        CRLF kept), without the final "." line."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.s.recv(65536)
                if not chunk:
                    raise EOFError("closed inside a multi-line response")
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            if line == b".":
                return out
            out += line + b"\r\n"

    def pop3(self, command=None):
        if command is not None:
            self.send(command + "\r\n")
        return self.line()

    def pop3_multi(self):
        out = []
        while True:
            l = self.line()
            if l == ".":
                return out
            out.append(l[1:] if l.startswith("..") else l)

    def closed(self, timeout=5.0):
        """True when the server closed the connection."""
        self.s.settimeout(timeout)
        try:
            data = self.s.recv(65536)
            self.buf += data
            return data == b""
        except (ConnectionResetError, BrokenPipeError):
            return True

    def close(self):
        self.s.close()


def pty_session(args, answers=(), env=None, timeout=30):
    """Run args on a terminal of their own (a pty), typing each (prompt, answer)
    in turn once its prompt shows; returns (exit status, all the terminal
    showed). Bounded: a program still running 5 s after timeout is killed
    and the test fails."""
    import pty
    import select
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execve(args[0], list(args), env if env is not None else os.environ)
        finally:
            os._exit(127)
    shown = b""
    pending = list(answers)
    since = 0
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            r, _, _ = select.select([fd], [], [], 0.5)
            if not r:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:	# EIO: the program ended and closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if pending and pending[0][0].encode() in shown[since:]:
                _, answer = pending.pop(0)
                since = len(shown)
                os.write(fd, (answer + "\n").encode())
        stop = time.time() + 5
        done, status = os.waitpid(pid, os.WNOHANG)
        while not done and time.time() < stop:
            time.sleep(0.05)
            done, status = os.waitpid(pid, os.WNOHANG)
        if not done:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise AssertionError(f"{os.path.basename(args[0])} did not finish: {shown!r}")
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), shown.decode("utf-8", "replace")


def libfaketime():
    """The libfaketime preload library (Debian package faketime)."""
    for pattern in ("/usr/lib/*/faketime/libfaketimeMT.so.1", "/usr/lib/*/faketime/libfaketime.so.1",
                    "/usr/lib/faketime/libfaketime*.so.1"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    raise AssertionError("libfaketime not found: ./deps.sh --test installs the faketime package")


def wait_for(what, fn, timeout=20.0, step=0.2):
    """Poll fn() until it returns something true, and return that; fail
    after timeout seconds, saying what was awaited and what fn gave last."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def check(cond, msg):
    if not cond:
        raise AssertionError(msg)


def show_logs(lines=25):
    """Print the last lines of every daemon log of every Lab: what the
    server said about a failed step, in the test's own output (CI keeps
    nothing else)."""
    for lab in _LABS:
        for path in sorted(glob.glob(os.path.join(lab.dir, "*.log"))):
            try:
                with open(path, "rb") as f:
                    tail = f.read().decode("utf-8", "replace").splitlines()[-lines:]
            except OSError:
                continue
            print(f"--- last {len(tail)} lines of {path}", flush=True)
            for line in tail:
                print("    " + line, flush=True)


def run(tests):
    """Run test functions in order; print a summary line; exit non-zero on failure."""
    passed = failed = 0
    only = sys.argv[1:]
    for t in tests:
        if only and t.__name__ not in only:
            continue
        try:
            t()
            passed += 1
            print(f"ok {t.__name__}", flush=True)
        except Exception as e:  # noqa: BLE001 - report every failure
            failed += 1
            import traceback
            traceback.print_exc()
            print(f"FAIL {t.__name__}: {e}", flush=True)
            if failed == 1:
                show_logs()
    print(f"{passed} passed, {failed} failed", flush=True)
    sys.exit(1 if failed else 0)
