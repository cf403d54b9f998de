#!/usr/bin/env python3
"""Slowloris against both daemons, through the same path (common/session.c):
a client that sends one byte every 2 seconds without ever ending a line is
disconnected at the configured idle timeout, counted from its last complete
line, by smtpd (smtp_command_timeout, with a 421) and by pop3d
(pop3_idle_timeout, silently: RFC 1939 3 autologout). A byte that is not a
line does not restart the timer.

pop3_idle_timeout is at least 10 minutes (RFC 1939), so the daemons run with
their clock accelerated 100 times by libfaketime (LD_PRELOAD, FAKETIME="+0
x100"): 600 s of daemon time are 6 s here, and "a byte every 2 seconds" is a
byte every 2 s of daemon time. libevent's timers run on CLOCK_MONOTONIC,
which libfaketime fakes too (FAKETIME_DONT_FAKE_MONOTONIC=0, its default;
set explicitly), and it scales the epoll_wait timeout, so the timers follow
the accelerated clock; test_idle_client_control checks exactly that with a
client that sends nothing at all.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, check, libfaketime, run  # noqa: E402

SPEED = 100                     # daemon seconds per real second
SMTP_TIMEOUT = 300              # smtp_command_timeout (daemon seconds)
POP3_TIMEOUT = 600              # pop3_idle_timeout (daemon seconds; its minimum)
DRIP = 2.0 / SPEED              # one byte every 2 daemon seconds
SLACK = 3.0                     # real seconds of scheduling slack allowed after the timeout


def fast_clock_env():
    asan = os.environ.get("ASAN_OPTIONS", "")
    return {
        "LD_PRELOAD": libfaketime(),
        "FAKETIME": f"+0 x{SPEED}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "0",
        # the preload comes before the sanitizer runtime in the sanitizer build
        "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0",
    }


lab = Lab(config_extra=(
    "[limits]\n"
    f"smtp_command_timeout = {SMTP_TIMEOUT}\n"
    f"pop3_idle_timeout = {POP3_TIMEOUT}\n"))
lab.start_smtpd(env=fast_clock_env())
lab.start_pop3d(env=fast_clock_env())


def connect(port):
    s = socket.create_connection((lab.host, port), timeout=10)
    return s


def read_line(s):
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(1)
        if not chunk:
            break
        data += chunk
    return data


def drip_until_closed(s, limit):
    """Send a byte every DRIP seconds (never a line end) until the server
    closes. Returns (seconds until the close, what the server sent), or
    (None, ...) when it was still open after limit seconds."""
    s.setblocking(False)
    got = b""
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        try:
            s.send(b"x")
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0, got
        time.sleep(DRIP)
        try:
            chunk = s.recv(4096)
            if chunk == b"":
                return time.monotonic() - t0, got
            got += chunk
        except BlockingIOError:
            pass
        except ConnectionResetError:
            return time.monotonic() - t0, got
    return None, got


def wait_closed(s, limit):
    """Send nothing; seconds until the server closes (None after limit)."""
    s.settimeout(limit)
    t0 = time.monotonic()
    got = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                return time.monotonic() - t0, got
            got += chunk
    except socket.timeout:
        return None, got
    except ConnectionResetError:
        return time.monotonic() - t0, got


def check_timing(took, timeout, what):
    want = timeout / SPEED
    check(took is not None, f"{what}: still connected after {3 * want:.0f} s "
          f"({3 * timeout} s of daemon time); the idle timeout is {timeout} s")
    check(want * 0.8 <= took <= want + SLACK,
          f"{what}: disconnected after {took:.1f} s, expected about {want:.1f} s")


def test_idle_client_control():
    """Control: the accelerated clock works (an idle client is cut off at the
    timeout / SPEED real seconds), so the drip tests below measure the daemons."""
    s = connect(lab.pop3_port)
    check(read_line(s).startswith(b"+OK"), "pop3d greeting")
    took, got = wait_closed(s, 3 * POP3_TIMEOUT / SPEED)
    check_timing(took, POP3_TIMEOUT, "idle POP3 client")
    check(got == b"", f"RFC 1939 autologout sends nothing: {got!r}")
    s.close()


def test_smtpd_slowloris():
    since = os.path.getsize(os.path.join(lab.dir, "smtpd.log"))   # not earlier tests' timeouts
    s = connect(lab.smtp_port)
    check(read_line(s).startswith(b"220"), "smtpd greeting")
    s.sendall(b"EHLO slow.example\r\n")
    while True:
        line = read_line(s)
        check(line.startswith(b"250"), f"EHLO reply {line!r}")
        if line.startswith(b"250 "):
            break
    # the last complete line was the EHLO; from here on only bytes
    took, got = drip_until_closed(s, 3 * SMTP_TIMEOUT / SPEED)
    check_timing(took, SMTP_TIMEOUT, "SMTP slowloris")
    check(got.startswith(b"421 4.4.2 "), f"a 421 before the close: {got!r}")
    s.close()
    check(lab.log_has("smtpd", "event=timeout", since), "the timeout is logged")
    d = lab.smtp_dialog()       # still serving
    d.send(b"QUIT\r\n")
    d.expect(221)


def test_pop3d_slowloris():
    since = os.path.getsize(os.path.join(lab.dir, "pop3d.log"))
    s = connect(lab.pop3_port)
    check(read_line(s).startswith(b"+OK"), "pop3d greeting")
    s.sendall(b"USER ana\r\n")
    check(read_line(s).startswith(b"+OK"), "USER: the last complete line")
    took, got = drip_until_closed(s, 3 * POP3_TIMEOUT / SPEED)
    check_timing(took, POP3_TIMEOUT, "POP3 slowloris")
    check(got == b"", f"RFC 1939 autologout sends nothing: {got!r}")
    s.close()
    check(lab.log_has("pop3d", "event=timeout", since), "the timeout is logged")
    s = connect(lab.pop3_port)     # still serving
    check(read_line(s).startswith(b"+OK"), "pop3d still greets")
    s.sendall(b"QUIT\r\n")
    check(read_line(s).startswith(b"+OK"), "QUIT")
    s.close()


def test_clean_stop():
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


if __name__ == "__main__":
    run([test_idle_client_control, test_smtpd_slowloris, test_pop3d_slowloris, test_clean_stop])
