#!/usr/bin/env python3
"""test_clients_check - tests/clients_check.sh stops a run at once, with one
line naming the Debian package, when a client lacks a capability the tests
use; and passes on this machine, where deps.sh --test installed everything.

Each case puts a stand-in for one client first on PATH, printing what the real
one prints when its package's optional parts are missing.
"""
import os
import subprocess

from correio_test import SRC, check, run, workdir

SCRIPT = os.path.join(SRC, "tests", "clients_check.sh")


def check_with(fakes):
    """Run clients_check.sh with stand-ins {command: stdout}; (rc, stderr)."""
    d = workdir("fakebin-")
    for name, out in fakes.items():
        path = os.path.join(d, name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\ncat <<'OUT'\n" + out + "OUT\n")
        os.chmod(path, 0o755)
    env = dict(os.environ, PATH=d + ":" + os.environ["PATH"])
    p = subprocess.run(["sh", SCRIPT], capture_output=True, text=True, timeout=60, env=env)
    return p.returncode, p.stderr


SWAKS_NO_TLS = ("=== Basic AUTH supported\n"
                "*** TLS not available: requires Net::SSLeay\n")
SWAKS_NO_AUTH = ("*** Basic AUTH not available: requires Authen::SASL\n"
                 "=== TLS supported\n")
CURL_NO_POP3S = ("curl 7.88.1 (x86_64-pc-linux-gnu) libcurl/7.88.1\n"
                 "Protocols: dict file ftp http pop3 smtp smtps\n")
MPOP_NO_TLS = "mpop version 1.4.18\nTLS/SSL library: none\n"


def test_all_present():
    rc, err = check_with({})
    check(rc == 0 and err == "", f"this machine passes: rc={rc} {err}")


def one_line(err, *words):
    lines = err.strip().splitlines()
    check(len(lines) == 1, f"one line, not {lines}")
    for w in words:
        check(w in lines[0], f"{w!r} in {lines[0]!r}")


def test_swaks_without_tls():
    rc, err = check_with({"swaks": SWAKS_NO_TLS})
    check(rc == 1, f"rc={rc}")
    one_line(err, "swaks cannot do TLS", "libnet-ssleay-perl")


def test_swaks_without_auth():
    rc, err = check_with({"swaks": SWAKS_NO_AUTH})
    check(rc == 1, f"rc={rc}")
    one_line(err, "swaks cannot do AUTH", "libauthen-sasl-perl")


def test_curl_without_pop3s():
    rc, err = check_with({"curl": CURL_NO_POP3S})
    check(rc == 1, f"rc={rc}")
    one_line(err, "curl lacks the pop3s protocol", "curl")


def test_mpop_without_tls():
    rc, err = check_with({"mpop": MPOP_NO_TLS})
    check(rc == 1, f"rc={rc}")
    one_line(err, "mpop has no TLS library", "mpop")


if __name__ == "__main__":
    run([test_all_present, test_swaks_without_tls, test_swaks_without_auth,
         test_curl_without_pop3s, test_mpop_without_tls])
