"""check_fakes - small SMTP and POP3 servers written for the tests of
`mailcli check`: correct by default, and each flag breaks exactly one rule
the way a student's server might. The SMTP server delivers into the same
in-memory maildrop the POP3 server serves, so `mailcli check pop3://... --smtp`
works against the pair. Threads; every socket has a timeout; loopback only.
"""
import socketserver
import threading
import time

USER, PASSWORD = "bob", "bob-secret-2"
MAX_SIZE = 20000


class Maildrop:
    def __init__(self):
        self.lock = threading.Lock()
        self.msgs = []          # [(uid, bytes with CRLF lines, un-stuffed)]
        self.next_uid = 1
        self.in_use = False

    def add(self, data):
        with self.lock:
            self.msgs.append((f"uid-{self.next_uid:06d}", data))
            self.next_uid += 1


class LineConn:
    """Lines from a socket with their ending: (line, "crlf"|"lf") or None at EOF."""

    def __init__(self, sock):
        self.s = sock
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.s.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        if line.endswith(b"\r"):
            return line[:-1], "crlf"
        return line, "lf"

    def send(self, text):
        if isinstance(text, str):
            text = text.encode()
        self.s.sendall(text)


class SMTPHandler(socketserver.BaseRequestHandler):
    def reply(self, c, text):
        c.send(text + "\r\n")

    def handle(self):
        o = self.server.opts
        self.request.settimeout(20)
        c = LineConn(self.request)
        self.reply(c, "220 fake.lab.test ESMTP fake")
        helo = False
        mail = None
        rcpts = []
        while True:
            got = c.line()
            if got is None:
                return
            raw, _ = got
            if len(raw) > 510:
                self.reply(c, "500 5.5.2 Line too long")
                continue
            line = raw.decode("latin-1")
            verb, _, arg = line.partition(" ")
            verb = verb.upper()
            if verb in ("EHLO", "HELO"):
                if not arg:
                    self.reply(c, "501 5.5.4 Domain needed")
                    continue
                helo, mail, rcpts = True, None, []
                if verb == "HELO":
                    self.reply(c, "250 fake.lab.test")
                else:
                    c.send("250-fake.lab.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
                           f"250 SIZE {MAX_SIZE}\r\n")
            elif verb == "MAIL":
                if not helo or mail is not None:
                    self.reply(c, "503 5.5.1 Bad sequence")
                    continue
                if not arg.upper().startswith("FROM:<") or ">" not in arg:
                    self.reply(c, "501 5.5.4 Syntax: MAIL FROM:<address>")
                    continue
                params = arg[arg.index(">") + 1:].split()
                bad = None
                for p in params:
                    k, _, v = p.partition("=")
                    if k.upper() == "SIZE":
                        if not o.get("size_unchecked") and int(v) > MAX_SIZE:
                            bad = "552 5.3.4 Message too big"
                    elif k.upper() == "BODY":
                        if v.upper() not in ("7BIT", "8BITMIME"):
                            bad = "501 5.5.4 Bad BODY"
                    else:
                        bad = "555 5.5.4 Unknown parameter"
                if bad:
                    self.reply(c, bad)
                    continue
                mail, rcpts = arg, []
                self.reply(c, "250 2.1.0 Ok")
            elif verb == "RCPT":
                if mail is None and not o.get("rcpt_before_mail"):
                    self.reply(c, "503 5.5.1 MAIL first")
                    continue
                if not arg.upper().startswith("TO:<") or not arg.endswith(">"):
                    self.reply(c, "501 5.5.4 Syntax: RCPT TO:<address>")
                    continue
                addr = arg[4:-1].lower()
                if addr != "postmaster" and not addr.endswith("@lab.test") and not o.get("open_relay"):
                    self.reply(c, "554 5.7.1 Relay access denied")
                    continue
                rcpts.append(addr)
                self.reply(c, "250 2.1.5 Ok")
            elif verb == "DATA":
                if arg:
                    self.reply(c, "501 5.5.4 No arguments")
                    continue
                if mail is None or not rcpts:
                    self.reply(c, "503 5.5.1 RCPT first")
                    continue
                self.reply(c, "354 Go ahead")
                if not self.data(c, o):
                    return
                mail, rcpts = None, []
            elif verb == "RSET":
                mail, rcpts = None, []
                self.reply(c, "250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply(c, "250 2.0.0 Ok")
            elif verb == "VRFY":
                self.reply(c, "252 2.1.5 Try it" if arg else "501 5.5.4 VRFY what?")
            elif verb == "HELP":
                self.reply(c, "214 2.0.0 See RFC 5321")
            elif verb == "QUIT":
                self.reply(c, "221 2.0.0 Bye")
                if o.get("quit_stays_open"):
                    while c.line() is not None:
                        pass
                return
            else:
                self.reply(c, "500 5.5.2 Unknown command")

    def data(self, c, o):
        body = []
        prev = "crlf"
        bad = None
        size = 0
        while True:
            got = c.line()
            if got is None:
                return False
            raw, eol = got
            if o.get("naive_dot_end") and raw.startswith(b"."):
                break
            if raw == b"." and (o.get("bare_lf_end") or (eol == "crlf" and prev == "crlf")):
                break
            if eol == "lf" or b"\r" in raw:
                bad = bad or "554 5.5.2 Bare LF or CR in message"
            prev = eol
            if raw.startswith(b"."):
                raw = raw[1:]
            size += len(raw) + 2
            if size > MAX_SIZE and not o.get("size_unchecked"):
                bad = bad or "552 5.3.4 Message too big"
            if len(raw) > 998:
                bad = bad or "554 5.5.2 Line too long"
            if size <= 4 * MAX_SIZE:
                body.append(raw)
        if bad:
            self.reply(c, bad)
            return True
        self.server.maildrop.add(b"".join(x + b"\r\n" for x in body))
        self.reply(c, "250 2.0.0 Ok: queued")
        return True


class POP3Handler(socketserver.BaseRequestHandler):
    def ok(self, c, text=""):
        c.send("+OK" + (" " + text if text else "") + "\r\n")

    def err(self, c, text):
        c.send("-ERR " + text + "\r\n")

    def num(self, arg, msgs, deleted):
        o = self.server.opts
        if not arg.isdigit():
            return None
        n = int(arg)
        if o.get("msgnum_wraps"):
            n &= 0xffffffff
        if n < 1 or n > len(msgs) or (n - 1) in deleted:
            return None
        return n

    def body(self, c, data, lines=None):
        o = self.server.opts
        head, sep, rest = data.partition(b"\r\n\r\n")
        if lines is not None:
            data = head + sep + b"".join(l + b"\r\n" for l in rest.split(b"\r\n")[:-1][:lines])
        out = b""
        for l in data.split(b"\r\n")[:-1]:
            if l.startswith(b".") and not o.get("no_dot_stuffing"):
                l = b"." + l
            out += l + b"\r\n"
        c.send(out + b".\r\n")

    def size(self, data):
        if self.server.opts.get("list_counts_lf"):
            return len(data) - data.count(b"\r\n")
        return len(data)

    def handle(self):
        o = self.server.opts
        md = self.server.maildrop
        self.request.settimeout(20)
        c = LineConn(self.request)
        self.ok(c, "fake POP3 ready")
        user = None
        msgs = None
        deleted = set()
        self.server.sessions += 1
        session = self.server.sessions
        try:
            while True:
                got = c.line()
                if got is None:
                    break
                raw, _ = got
                if len(raw) > 255:
                    self.err(c, "Line too long")
                    continue
                verb, _, arg = raw.decode("latin-1").partition(" ")
                verb = verb.upper()
                if verb == "QUIT":
                    if msgs is not None:
                        self.expunge(msgs, deleted)
                        msgs = None
                    self.ok(c, "bye")
                    return
                if verb == "CAPA":
                    c.send("+OK\r\nUSER\r\nUIDL\r\nTOP\r\n.\r\n")
                    continue
                if msgs is None:
                    if verb == "USER" and arg:
                        user = arg
                        self.ok(c)
                    elif verb == "PASS" and user is not None:
                        if user != USER or arg != PASSWORD:
                            user = None
                            self.err(c, "[AUTH] wrong")
                            continue
                        with md.lock:
                            if md.in_use:
                                self.err(c, "[IN-USE] busy")
                                continue
                            md.in_use = True
                            msgs = list(md.msgs)
                        self.ok(c, "logged in")
                    else:
                        self.err(c, "log in first")
                    continue
                live = [(i, m) for i, m in enumerate(msgs) if i not in deleted]
                if verb == "STAT":
                    self.ok(c, f"{len(live)} {sum(self.size(m[1]) for _, m in live)}")
                elif verb in ("LIST", "UIDL"):
                    def item(i, m):
                        if verb == "LIST":
                            return f"{i + 1} {self.size(m[1])}"
                        uid = m[0] + (f"-s{session}" if o.get("uidl_changes") else "")
                        return f"{i + 1} {uid}"
                    if arg:
                        n = self.num(arg, msgs, deleted)
                        if n is None:
                            self.err(c, "no such message")
                        else:
                            self.ok(c, item(n - 1, msgs[n - 1]))
                    else:
                        c.send("+OK\r\n" + "".join(item(i, m) + "\r\n" for i, m in live) + ".\r\n")
                elif verb in ("RETR", "TOP"):
                    a, _, b = arg.partition(" ")
                    n = self.num(a, msgs, deleted)
                    if n is None or (verb == "TOP" and not b.isdigit()):
                        self.err(c, "no such message")
                        continue
                    self.ok(c)
                    self.body(c, msgs[n - 1][1], int(b) if verb == "TOP" else None)
                elif verb == "DELE":
                    n = self.num(arg, msgs, deleted)
                    if n is None:
                        self.err(c, "no such message")
                    else:
                        deleted.add(n - 1)
                        self.ok(c)
                elif verb == "RSET":
                    deleted = set()
                    self.ok(c)
                elif verb == "NOOP":
                    self.ok(c)
                else:
                    self.err(c, "unknown command")
        finally:
            if msgs is not None:
                if o.get("expunge_on_drop"):
                    self.expunge(msgs, deleted)
                # Like a real server, notice the dropped session a little
                # late: the next login meets -ERR [IN-USE] for a moment.
                time.sleep(0.2)
                with md.lock:
                    md.in_use = False

    def expunge(self, msgs, deleted):
        md = self.server.maildrop
        gone = {msgs[i][0] for i in deleted}
        with md.lock:
            md.msgs = [m for m in md.msgs if m[0] not in gone]
            md.in_use = False


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def start(handler, maildrop, **opts):
    """A server on a free loopback port; returns (server, port)."""
    srv = Server(("127.0.0.1", 0), handler)
    srv.opts = opts
    srv.maildrop = maildrop
    srv.sessions = 0
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


def start_pair(smtp_opts=None, pop3_opts=None):
    """A fake SMTP and POP3 server sharing one maildrop: (smtp_port, pop3_port, stop)."""
    md = Maildrop()
    s, sp = start(SMTPHandler, md, **(smtp_opts or {}))
    p, pp = start(POP3Handler, md, **(pop3_opts or {}))

    def stop():
        for srv in (s, p):
            srv.shutdown()
            srv.server_close()
    return sp, pp, stop
