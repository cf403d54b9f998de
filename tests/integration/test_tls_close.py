#!/usr/bin/env python3
"""TLS connections end with close_notify (RFC 8446 6.1), in both daemons and
on every kind of listener: STARTTLS (smtpd inbound), STLS (pop3d), and
implicit TLS (smtps, pop3s). After QUIT and its reply, the client reads
until the server's close_notify: Python's ssl with suppress_ragged_eofs off
returns b"" for it and raises SSLEOFError for a bare TCP close; and
`openssl s_client` (-starttls smtp / pop3, and -connect to the implicit-TLS
ports) ends without "unexpected eof while reading".
"""
import os
import socket
import ssl
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, PASSWORDS, check, run  # noqa: E402

lab = Lab(tls=True)
lab.start_smtpd(roles=("inbound", "smtps"))
lab.start_pop3d(roles=("pop3", "pop3s"))


class Conn:
    """A line-oriented client that can switch to TLS with ragged EOFs reported."""

    def __init__(self, port):
        self.s = socket.create_connection((lab.host, port), timeout=10)
        self.buf = b""

    def tls(self):
        ctx = lab.tls_context()
        self.s = ctx.wrap_socket(self.s, server_hostname="localhost",
                                 suppress_ragged_eofs=False)
        self.buf = b""

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.s.recv(4096)
            check(chunk != b"", f"connection closed early after {self.buf!r}")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line + b"\n"

    def smtp(self, cmd=None):
        if cmd is not None:
            self.s.sendall(cmd + b"\r\n")
        while True:
            line = self.line()
            if line[3:4] != b"-":
                return line

    def pop3(self, cmd=None):
        if cmd is not None:
            self.s.sendall(cmd + b"\r\n")
        return self.line()

    def close_notify(self):
        """Read to the end: True when the server sent close_notify."""
        check(self.buf == b"", f"unexpected data after the last reply: {self.buf!r}")
        try:
            while True:
                data = self.s.recv(4096)
                if data == b"":
                    return True
                check(False, f"unexpected data after the last reply: {data!r}")
        except ssl.SSLEOFError:
            return False
        finally:
            self.s.close()


def test_smtp_starttls_close_notify():
    c = Conn(lab.smtp_ports["inbound"])
    check(c.smtp().startswith(b"220"), "greeting")
    check(c.smtp(b"EHLO client.example").startswith(b"250"), "EHLO")
    check(c.smtp(b"STARTTLS").startswith(b"220"), "STARTTLS")
    c.tls()
    check(c.smtp(b"EHLO client.example").startswith(b"250"), "EHLO in TLS")
    check(c.smtp(b"QUIT").startswith(b"221"), "QUIT")
    check(c.close_notify(), "smtpd closes STARTTLS with close_notify")


def test_smtps_close_notify():
    c = Conn(lab.smtp_ports["smtps"])
    c.tls()
    check(c.smtp().startswith(b"220"), "greeting")
    check(c.smtp(b"QUIT").startswith(b"221"), "QUIT")
    check(c.close_notify(), "smtpd closes smtps with close_notify")


def test_pop3_stls_close_notify():
    c = Conn(lab.pop3_ports["pop3"])
    check(c.pop3().startswith(b"+OK"), "greeting")
    check(c.pop3(b"STLS").startswith(b"+OK"), "STLS")
    c.tls()
    check(c.pop3(b"USER ana").startswith(b"+OK"), "USER in TLS")
    check(c.pop3(b"PASS " + PASSWORDS["ana"].encode()).startswith(b"+OK"), "PASS")
    check(c.pop3(b"QUIT").startswith(b"+OK"), "QUIT")
    check(c.close_notify(), "pop3d closes STLS with close_notify")


def test_pop3s_close_notify():
    c = Conn(lab.pop3_ports["pop3s"])
    c.tls()
    check(c.pop3().startswith(b"+OK"), "greeting")
    check(c.pop3(b"QUIT").startswith(b"+OK"), "QUIT")
    check(c.close_notify(), "pop3d closes pop3s with close_notify")


def s_client(port, *args):
    p = subprocess.run(["openssl", "s_client", "-connect", f"{lab.host}:{port}", "-crlf",
                        "-ign_eof", "-CAfile", lab.cert, "-verify_return_error", *args],
                       input=b"QUIT\n", capture_output=True, timeout=30)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def test_openssl_s_client():
    for what, port, args, bye in (
            ("smtp STARTTLS", lab.smtp_ports["inbound"], ("-starttls", "smtp"), "221 "),
            ("smtps", lab.smtp_ports["smtps"], (), "221 "),
            ("pop3 STLS", lab.pop3_ports["pop3"], ("-starttls", "pop3"), "+OK"),
            ("pop3s", lab.pop3_ports["pop3s"], (), "+OK")):
        rc, out, err = s_client(port, *args)
        check(bye in out.split("QUIT")[-1] if "QUIT" in out else bye in out,
              f"{what}: the goodbye reached s_client: {out[-500:]}")
        check("unexpected eof" not in err.lower(), f"{what}: s_client saw no close_notify: {err}")
        check(rc == 0, f"{what}: s_client exit status {rc}: {err}")


def test_clean_stop():
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


if __name__ == "__main__":
    run([test_smtp_starttls_close_notify, test_smtps_close_notify, test_pop3_stls_close_notify,
         test_pop3s_close_notify, test_openssl_s_client, test_clean_stop])
