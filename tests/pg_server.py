#!/usr/bin/env python3
"""pg_server.py - a private PostgreSQL server for the tests, from Debian's
`postgresql` package (deps.sh --test): initdb and pg_ctl in a directory of
the test's own, run as the unprivileged user `postgres` (initdb refuses
root), listening on 127.0.0.1 only, on a free port in 20000-31999 (below
the kernel's ephemeral range, like the harness's daemons), with no Unix
socket, fsync=on, and trust authentication for the test superuser over
loopback only. It makes one database and gives its URL.

As a module:
    srv = pg_server.start(DIR)    # srv.url "postgresql://correio@127.0.0.1:PORT/correio"
    pg_server.halt(DIR)           # stop it, keep its data (immediate=True: a crash)
    pg_server.resume(DIR)         # start it again on the same port
    pg_server.stop(DIR)           # stop it and remove DIR
As a command:
    python3 tests/pg_server.py start DIR     prints the URL, leaves it running
    python3 tests/pg_server.py halt DIR [--immediate]
    python3 tests/pg_server.py resume DIR
    python3 tests/pg_server.py stop DIR
Every step is bounded in time (PG_TIMEOUT seconds for the server's start
and stop). DIR/url holds the URL, DIR/port the port, DIR/log the server log (or, when
DIR is inside a directory postgres may not enter, a directory of its own
under /tmp named in DIR/datadir holds the data and the log).
"""
import glob
import os
import pwd
import random
import shutil
import socket
import subprocess
import sys
import tempfile

USER = "postgres"           # the system account the server runs as
SUPERUSER = "correio"       # the database superuser the tests connect as
DBNAME = "correio"
PG_TIMEOUT = 60             # seconds for initdb, a start or a stop


class Server:
    def __init__(self, dirpath, port):
        self.dir = dirpath
        self.port = port
        self.url = "postgresql://%s@127.0.0.1:%d/%s" % (SUPERUSER, port, DBNAME)

    def url_for(self, dbname):
        return "postgresql://%s@127.0.0.1:%d/%s" % (SUPERUSER, self.port, dbname)


def bindir():
    """The newest installed PostgreSQL's bin directory (Debian keeps one
    per major version under /usr/lib/postgresql)."""
    found = glob.glob("/usr/lib/postgresql/*/bin/initdb")
    if not found:
        raise RuntimeError("no PostgreSQL server installed (deps.sh --test installs postgresql)")

    def version(p):
        v = p.split("/")[4]
        return [int(x) for x in v.split(".") if x.isdigit()]
    return os.path.dirname(max(found, key=version))


def _as_postgres(args, timeout=PG_TIMEOUT, check=True):
    """Run args as the user postgres (we may be root: initdb refuses it)."""
    if os.geteuid() == 0:
        args = ["runuser", "-u", USER, "--"] + args
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, text=True, cwd="/")
    if check and r.returncode != 0:
        raise RuntimeError("%s failed (%d): %s" % (" ".join(args), r.returncode, r.stdout))
    return r


def _free_port():
    for _ in range(200):
        port = random.randrange(20000, 32000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-31999")


def _chown(path):
    if os.geteuid() == 0:
        pw = pwd.getpwnam(USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def _data(dirpath):
    """The server's data directory: dirpath/data, or where dirpath/datadir
    says (when postgres could not reach dirpath: a parent of it is private)."""
    link = os.path.join(dirpath, "datadir")
    if os.path.exists(link):
        with open(link) as f:
            return f.read().strip()
    return os.path.join(dirpath, "data")


def _log(dirpath):
    """The server's log, beside its data directory."""
    return os.path.join(os.path.dirname(_data(dirpath)), "log")


def _reachable(dirpath):
    """Can the user postgres enter dirpath?"""
    if os.geteuid() != 0:
        return True
    return _as_postgres(["test", "-x", dirpath], timeout=10, check=False).returncode == 0


def _set_port(dirpath, port):
    conf = os.path.join(_data(dirpath), "postgresql.auto.conf")
    with open(conf, "w") as f:
        f.write("port = %d\n" % port)
    _chown(conf)
    with open(os.path.join(dirpath, "port"), "w") as f:
        f.write("%d\n" % port)


def _pg_ctl_start(dirpath):
    b = bindir()
    r = _as_postgres([os.path.join(b, "pg_ctl"), "-D", _data(dirpath), "-l",
                      _log(dirpath), "-w", "-t", str(PG_TIMEOUT), "start"],
                     timeout=PG_TIMEOUT + 10, check=False)
    return r


def start(dirpath):
    """initdb in dirpath/data, start it and make the database. A Server."""
    dirpath = os.path.abspath(dirpath)
    if os.path.exists(dirpath):
        stop(dirpath)           # what an interrupted run left
    os.makedirs(dirpath)
    os.chmod(dirpath, 0o755)
    _chown(dirpath)
    if not _reachable(dirpath):
        # a private parent (mkdtemp's 0700): the data go to a directory
        # of their own under the system's temporary directory
        top = tempfile.mkdtemp(prefix="correio-pg-", dir="/tmp")
        os.chmod(top, 0o755)
        _chown(top)
        with open(os.path.join(dirpath, "datadir"), "w") as f:
            f.write(os.path.join(top, "data") + "\n")
    b = bindir()
    data = _data(dirpath)
    _as_postgres([os.path.join(b, "initdb"), "-D", data, "-U", SUPERUSER, "-E", "UTF8",
                  "--locale=C", "--auth=reject", "--no-instructions"])
    with open(os.path.join(data, "postgresql.conf"), "a") as f:
        f.write("\n# pg_server.py: a private test server\n"
                "listen_addresses = '127.0.0.1'\n"
                "unix_socket_directories = ''\n"
                "fsync = on\n"
                "synchronous_commit = on\n"
                "max_connections = 200\n"
                "shared_buffers = 32MB\n"
                "log_min_messages = warning\n")
    with open(os.path.join(data, "pg_hba.conf"), "w") as f:
        f.write("# pg_server.py: the test superuser, over loopback only\n"
                "host all %s 127.0.0.1/32 trust\n" % SUPERUSER)
    for _ in range(10):
        port = _free_port()
        _set_port(dirpath, port)
        r = _pg_ctl_start(dirpath)
        if r.returncode == 0:
            break
    else:
        raise RuntimeError("pg_ctl start failed: %s" % r.stdout)
    srv = Server(dirpath, port)
    _as_postgres([os.path.join(b, "createdb"), "-h", "127.0.0.1", "-p", str(port),
                  "-U", SUPERUSER, DBNAME], timeout=30)
    with open(os.path.join(dirpath, "url"), "w") as f:
        f.write(srv.url + "\n")
    return srv


def server(dirpath):
    """The Server started in dirpath."""
    with open(os.path.join(dirpath, "port")) as f:
        return Server(os.path.abspath(dirpath), int(f.read()))


def halt(dirpath, immediate=False):
    """Stop the server, keeping its data (immediate: as if it crashed)."""
    b = bindir()
    _as_postgres([os.path.join(b, "pg_ctl"), "-D", _data(dirpath), "-w", "-t",
                  str(PG_TIMEOUT), "-m", "immediate" if immediate else "fast", "stop"],
                 timeout=PG_TIMEOUT + 10)


def resume(dirpath):
    """Start a halted server again, on its port."""
    r = _pg_ctl_start(dirpath)
    if r.returncode != 0:
        raise RuntimeError("pg_ctl start failed: %s" % r.stdout)
    return server(dirpath)


def stop(dirpath):
    """Stop the server (if it runs) and remove dirpath."""
    if os.path.exists(os.path.join(_data(dirpath), "postmaster.pid")):
        b = bindir()
        _as_postgres([os.path.join(b, "pg_ctl"), "-D", _data(dirpath), "-w", "-t",
                      str(PG_TIMEOUT), "-m", "immediate", "stop"],
                     timeout=PG_TIMEOUT + 10, check=False)
    top = os.path.dirname(_data(dirpath))
    if top != os.path.abspath(dirpath):
        shutil.rmtree(top, ignore_errors=True)
    shutil.rmtree(dirpath, ignore_errors=True)


def main(argv):
    if len(argv) < 3 or argv[1] not in ("start", "stop", "halt", "resume"):
        sys.stderr.write("usage: pg_server.py start|halt [--immediate]|resume|stop DIR\n")
        return 2
    cmd, dirpath = argv[1], argv[2]
    if cmd == "start":
        print(start(dirpath).url)
    elif cmd == "halt":
        halt(dirpath, immediate="--immediate" in argv[3:])
    elif cmd == "resume":
        print(resume(dirpath).url)
    else:
        stop(dirpath)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
