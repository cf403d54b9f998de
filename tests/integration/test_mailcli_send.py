#!/usr/bin/env python3
"""mailcli send and probe against the real smtpd (and pop3d for probe):
the textbook trace ("C: MAIL FROM:<...>" / "S: 250 ...") with AUTH secrets
masked and the body summarised (or shown with --trace-body), MAIL and RCPTs
pipelined when offered, one refused recipient reported without hiding the
others (exit status 1), SIZE checked before anything is sent, --tls required
against a server without STARTTLS failing cleanly, STARTTLS + AUTH against a
TLS lab verified with --cafile (and refused without it), settings from the
environment and the config file, the password from ~/.netrc, and probe's
report (greeting, capabilities, limits, certificate).
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, check, pty_session, run, workdir, PASSWORDS, MAILCLI  # noqa: E402

plain = Lab(config_extra="[limits]\nmax_message_size = 200000\n")
pports = plain.start_smtpd(roles=("inbound", "submission"))
plain.start_pop3d()
tls = Lab(tls=True)
tports = tls.start_smtpd(roles=("inbound", "submission", "smtps"))
tpop = tls.start_pop3d(roles=("pop3", "pop3s"))

HOST = plain.host
# A clean environment: no settings from the person running the tests.
HOME = workdir("mailcli-home-")
BASE_ENV = {"HOME": HOME, "XDG_CONFIG_HOME": os.path.join(HOME, ".config"),
            "MAILCLI_SERVER": "", "MAILCLI_USER": "", "MAILCLI_TLS": "",
            "MAILCLI_PASSWORD": "", "MAILCLI_CONFIG": "", "NETRC": ""}


def mailcli(*args, lab=plain, env=None, stdin=None, timeout=60):
    e = dict(BASE_ENV)
    e.update(env or {})
    return lab.mailcli(*args, stdin=stdin, check=False, env=e, timeout=timeout)


def server(lab, role="inbound"):
    ports = pports if lab is plain else tports
    return f"{lab.host}:{ports[role]}"


def count_msgs(lab, account):
    """Messages for account as POP3 sees them (independent of the schema)."""
    import poplib
    p = poplib.POP3(lab.host, lab.pop3_port, timeout=10)
    if lab.cert:
        import ssl
        p.stls(context=ssl.create_default_context(cafile=lab.cert))
    p.user(account)
    p.pass_(PASSWORDS[account])
    n = p.stat()[0]
    try:
        p.quit()
    except poplib.error_proto:
        pass	# the count is what matters here
    return n


def test_trace_form_pipelining_and_masking():
    before = count_msgs(plain, "bob")
    p = mailcli("send", "--server", server(plain, "submission"), "--user", "ana", "--trace",
                "--from", "ana@lab.test", "--to", "bob@lab.test", "--subject", "trace",
                "--text", "a secret body line", env={"MAILCLI_PASSWORD": PASSWORDS["ana"]})
    check(p.returncode == 0, f"send failed: {p.stdout}\n{p.stderr}")
    out = p.stdout
    lines = out.splitlines()
    check("C: MAIL FROM:<ana@lab.test>" in lines or
          any(l.startswith("C: MAIL FROM:<ana@lab.test> SIZE=") for l in lines),
          f"no textbook MAIL line:\n{out}")
    check("C: RCPT TO:<bob@lab.test>" in lines, f"no RCPT line:\n{out}")
    check(any(re.match(r"^S: 250[ -]", l) for l in lines), "no S: 250 lines")
    check(any(re.match(r"^S: 220 ", l) for l in lines), "no greeting in the trace")
    check(any(l.startswith("C: EHLO ") for l in lines), "no EHLO")
    # AUTH secrets masked: neither the password nor its base64 appear.
    check("C: AUTH PLAIN ***" in lines, f"AUTH not masked as expected:\n{out}")
    import base64
    b64 = base64.b64encode(f"\0ana\0{PASSWORDS['ana']}".encode()).decode()
    check(PASSWORDS["ana"] not in out and b64 not in out, "password leaked in the trace")
    # Pipelining (offered by smtpd): RCPT is written before MAIL's reply is read.
    i_mail = next(i for i, l in enumerate(lines) if l.startswith("C: MAIL FROM:"))
    check(lines[i_mail + 1].startswith("C: RCPT TO:"),
          f"MAIL and RCPT not pipelined:\n{out}")
    # The body is summarised, not printed; the final dot is.
    check("a secret body line" not in out, "body printed without --trace-body")
    check(any("octets" in l and l.startswith("   [") for l in lines), "no body summary")
    check("C: ." in lines, "no final dot in the trace")
    check("bob@lab.test: accepted" in out, f"no per-recipient report:\n{out}")
    check(count_msgs(plain, "bob") == before + 1, "message not delivered")


def test_trace_body_and_dot_stuffing():
    body = os.path.join(HOME, "dots.txt")
    with open(body, "w") as f:
        f.write("first\n.\n..two dots\n.leading dot\nlast\n")
    p = mailcli("send", "--server", server(plain), "--trace-body", "--from", "ana@lab.test",
                "--to", "bob@lab.test", "--subject", "dots", "--body", body)
    check(p.returncode == 0, f"send failed: {p.stdout}\n{p.stderr}")
    lines = p.stdout.splitlines()
    # --trace-body shows the lines as they go on the wire: dot-stuffed.
    check("C: .." in lines and "C: ...two dots" in lines and "C: ..leading dot" in lines,
          f"body lines not traced dot-stuffed:\n{p.stdout}")
    # And the server stored them un-stuffed: fetch the raw message with poplib.
    import poplib
    c = poplib.POP3(plain.host, plain.pop3_port, timeout=10)
    c.user("bob")
    c.pass_(PASSWORDS["bob"])
    n = c.stat()[0]
    raw = b"\r\n".join(c.retr(n)[1])
    c.quit()
    # poplib un-stuffs; the text part is 7bit so the lines are verbatim.
    check(b"\r\n.\r\n..two dots\r\n.leading dot\r\n" in raw, f"dots damaged: {raw[-200:]!r}")


def test_refused_recipient_does_not_hide_others():
    before_bob = count_msgs(plain, "bob")
    before_ana = count_msgs(plain, "ana")
    p = mailcli("send", "--server", server(plain), "--from", "ana@lab.test",
                "--to", "bob@lab.test", "--to", "nobody@lab.test", "--cc", "ana@lab.test",
                "--subject", "partly", "--text", "hello")
    check(p.returncode == 1, f"exit status {p.returncode}, wanted 1\n{p.stdout}\n{p.stderr}")
    out = p.stdout
    check(re.search(r"^nobody@lab\.test: REFUSED: 55\d", out, re.M) is not None,
          f"refusal not reported:\n{out}")
    check(re.search(r"^bob@lab\.test: accepted: 25\d", out, re.M) is not None,
          f"bob not reported accepted:\n{out}")
    check(re.search(r"^ana@lab\.test: accepted", out, re.M) is not None, "ana not reported")
    check("sent to 2 of 3 recipients" in out, f"summary missing:\n{out}")
    check("refused" in p.stderr, f"no clear error on stderr: {p.stderr}")
    check(count_msgs(plain, "bob") == before_bob + 1, "bob did not get it")
    check(count_msgs(plain, "ana") == before_ana + 1, "ana did not get it")


def test_all_recipients_refused_sends_nothing():
    p = mailcli("send", "--server", server(plain), "--trace", "--from", "ana@lab.test",
                "--to", "nobody@lab.test", "--subject", "x", "--text", "x")
    check(p.returncode == 1, f"exit {p.returncode}")
    check("C: DATA" not in p.stdout, "DATA sent with no accepted recipient")
    check("nothing was sent" in p.stderr, p.stderr)


def test_size_checked_before_data():
    big = os.path.join(HOME, "big.bin")
    with open(big, "wb") as f:
        f.write(os.urandom(300000))
    p = mailcli("send", "--server", server(plain), "--trace", "--from", "ana@lab.test",
                "--to", "bob@lab.test", "--subject", "big", "--text", "x", "--attach", big)
    check(p.returncode == 1, f"exit {p.returncode}: {p.stderr}")
    check("SIZE" in p.stderr and "200000" in p.stderr, f"no clear SIZE message: {p.stderr}")
    check("C: MAIL FROM" not in p.stdout, "MAIL sent although SIZE says no")


def test_tls_required_without_starttls_fails_cleanly():
    before = count_msgs(plain, "bob")
    p = mailcli("send", "--server", server(plain), "--tls", "required", "--trace",
                "--from", "ana@lab.test", "--to", "bob@lab.test", "--subject", "x", "--text", "x")
    check(p.returncode == 1, f"exit {p.returncode}")
    check("STARTTLS" in p.stderr and "required" in p.stderr, f"unclear: {p.stderr}")
    check("C: MAIL FROM" not in p.stdout, "MAIL sent without TLS")
    check(count_msgs(plain, "bob") == before, "delivered without TLS")
    # The same for POP3: no password goes out.
    p = mailcli("inbox", "--server", f"{plain.host}:{plain.pop3_port}", "--user", "bob",
                "--tls", "required", "--trace", env={"MAILCLI_PASSWORD": PASSWORDS["bob"]})
    check(p.returncode == 1, f"inbox exit {p.returncode}")
    check("STLS" in p.stderr, p.stderr)
    check("C: AUTH" not in p.stdout and "C: PASS" not in p.stdout and "C: USER" not in p.stdout,
          "logged in without TLS")


def test_starttls_auth_with_cafile():
    before = count_msgs(tls, "bob")
    p = mailcli("send", "--server", "localhost:%d" % tports["submission"], "--tls", "required",
                "--cafile", tls.cert, "--user", "ana", "--trace", "--from", "ana@lab.test",
                "--to", "bob@lab.test", "--subject", "over tls", "--text", "hi",
                lab=tls, env={"MAILCLI_PASSWORD": PASSWORDS["ana"]})
    check(p.returncode == 0, f"send failed: {p.stdout}\n{p.stderr}")
    lines = p.stdout.splitlines()
    i_tls = next((i for i, l in enumerate(lines) if l.startswith("   [TLS started")), None)
    i_auth = next((i for i, l in enumerate(lines) if l.startswith("C: AUTH")), None)
    check(i_tls is not None and i_auth is not None and i_tls < i_auth,
          f"AUTH not after STARTTLS:\n{p.stdout}")
    check("C: STARTTLS" in lines, "no STARTTLS")
    # EHLO is sent again inside TLS (RFC 3207 4.2).
    check(sum(1 for l in lines if l.startswith("C: EHLO")) == 2, "EHLO not repeated after TLS")
    check("without TLS" not in p.stderr, p.stderr)
    check(count_msgs(tls, "bob") == before + 1, "not delivered")


def test_untrusted_certificate_refused_then_insecure():
    args = ["send", "--server", "localhost:%d" % tports["inbound"], "--from", "ana@lab.test",
            "--to", "bob@lab.test", "--subject", "x", "--text", "x"]
    p = mailcli(*args, lab=tls)
    check(p.returncode == 1, f"self-signed certificate accepted: {p.stdout}")
    check("certificate" in p.stderr and "--cafile" in p.stderr, f"unclear: {p.stderr}")
    p = mailcli(*args, "--insecure", lab=tls)
    check(p.returncode == 0, f"--insecure failed: {p.stderr}")
    # A name the certificate does not carry fails even with the right CA.
    p = mailcli("send", "--server", "127.0.0.2:%d" % tports["inbound"], "--cafile", tls.cert,
                *args[3:], lab=tls)
    if "connect" not in p.stderr:	# 127.0.0.2 may not be routable here
        check(p.returncode == 1 and "certificate" in p.stderr,
              f"wrong host name accepted: {p.stderr}")


def test_auth_refused_is_clear():
    p = mailcli("send", "--server", server(plain, "submission"), "--user", "ana",
                "--from", "ana@lab.test", "--to", "bob@lab.test", "--subject", "x",
                "--text", "x", env={"MAILCLI_PASSWORD": "wrong"}, timeout=120)
    check(p.returncode == 1, f"exit {p.returncode}")
    check(re.search(r"AUTH.*refused: 535", p.stderr) is not None, f"unclear: {p.stderr}")


def test_settings_from_environment_config_and_netrc():
    # Server and user from the config file, password from ~/.netrc.
    cfgdir = os.path.join(HOME, ".config", "mailcli")
    os.makedirs(cfgdir, exist_ok=True)
    with open(os.path.join(cfgdir, "config"), "w") as f:
        f.write(f"user = nobody-here\ntls = opportunistic\n"
                f"[smtp]\nserver = {server(plain, 'submission')}\nuser = bob\n"
                f"[pop3]\nserver = {plain.host}:{plain.pop3_port}\nuser = bob\n")
    netrc = os.path.join(HOME, ".netrc")
    with open(netrc, "w") as f:
        f.write(f"machine elsewhere login bob password nope\n"
                f"machine {plain.host} login bob password {PASSWORDS['bob']}\n")
    os.chmod(netrc, 0o600)
    try:
        p = mailcli("inbox")
        check(p.returncode == 0, f"inbox from config+netrc failed: {p.stdout}\n{p.stderr}")
        check("bob@" in p.stdout, p.stdout)
        # The environment overrides the file, flags override the environment.
        p = mailcli("inbox", env={"MAILCLI_SERVER": f"{plain.host}:1"})
        check(p.returncode == 1 and "connect" in p.stderr, f"env ignored: {p.stderr}")
        p = mailcli("inbox", "--server", f"{plain.host}:{plain.pop3_port}",
                    env={"MAILCLI_SERVER": f"{plain.host}:1"})
        check(p.returncode == 0, f"flag did not override env: {p.stderr}")
        p = mailcli("send", "--from", "bob@lab.test", "--to", "ana@lab.test",
                    "--subject", "cfg", "--text", "x", "--trace")
        check(p.returncode == 0, f"send with config server failed: {p.stderr}")
        check(f":{pports['submission']}" in p.stdout, "config [smtp] server not used")
        check("C: AUTH PLAIN ***" in p.stdout and "S: 235" in p.stdout,
              f"no login with the ~/.netrc password:\n{p.stdout}")
        # A bad MAILCLI_TLS is a clear usage error.
        p = mailcli("inbox", env={"MAILCLI_TLS": "sometimes"})
        check(p.returncode == 2 and "MAILCLI_TLS" in p.stderr, p.stderr)
    finally:
        os.unlink(os.path.join(cfgdir, "config"))
        os.unlink(netrc)


def test_no_password_without_terminal():
    p = mailcli("inbox", "--server", f"{plain.host}:{plain.pop3_port}", "--user", "bob",
                stdin="")
    # Under the test runner there may or may not be a terminal; without one the
    # message must say where a password can come from, and nothing hangs.
    if p.returncode != 0:
        check("MAILCLI_PASSWORD" in p.stderr or "password" in p.stderr.lower(), p.stderr)


def test_unreachable_server():
    p = mailcli("send", "--server", f"{HOST}:1", "--from", "ana@lab.test", "--to",
                "bob@lab.test", "--subject", "x", "--text", "x")
    check(p.returncode == 1 and "cannot connect" in p.stderr, p.stderr)


def test_usage_errors():
    p = mailcli("send", "--server", "host:notaport", "--from", "a@b.c", "--to", "d@e.f")
    check(p.returncode == 2 and "server" in p.stderr, p.stderr)
    p = mailcli("send", "--tls", "maybe")
    check(p.returncode == 2, p.stderr)
    p = mailcli("send", "--bogus")
    check(p.returncode == 2 and "--bogus" in p.stderr, p.stderr)
    p = mailcli("send", "--help")
    check(p.returncode == 0 and "--server" in p.stdout and "--trace" in p.stdout, p.stdout)
    p = mailcli("probe", "http://x")
    check(p.returncode == 2, p.stderr)


def test_probe_smtp_and_pop3_plain():
    p = mailcli("probe", f"smtp://{server(plain, 'submission')}")
    check(p.returncode == 0, p.stderr)
    out = p.stdout
    check(re.search(r"^greeting:\s+mx\.lab\.test", out, re.M) is not None, out)
    check("PIPELINING" in out and "at most 200000 octets" in out, out)
    check(re.search(r"AUTH:\s+.*PLAIN", out) is not None, out)
    check("STARTTLS:      not offered" in out, out)
    p = mailcli("probe", f"pop3://{plain.host}:{plain.pop3_port}")
    check(p.returncode == 0, p.stderr)
    check(re.search(r"^greeting:\s+\+OK", p.stdout, re.M) is not None, p.stdout)
    check("UIDL" in p.stdout and "SASL" in p.stdout and "STLS:          not offered" in p.stdout,
          p.stdout)


def test_probe_shows_certificate():
    p = mailcli("probe", "smtp://localhost:%d" % tports["submission"], "--cafile", tls.cert,
                lab=tls)
    check(p.returncode == 0, p.stderr)
    out = p.stdout
    check("TLS (STARTTLS):" in out, out)
    check(re.search(r"subject:\s+CN\s*=\s*localhost", out) is not None, out)
    check(re.search(r"issuer:\s+CN\s*=\s*localhost", out) is not None, out)
    check("not after:" in out and "verified:   yes" in out, out)
    check("EHLO in TLS:" in out, out)
    # Without the CA the certificate is still shown, with the reason it fails.
    p = mailcli("probe", "pop3://localhost:%d" % tpop["pop3"], lab=tls)
    check(p.returncode == 0, p.stderr)
    check("TLS (STLS):" in p.stdout and "subject:" in p.stdout, p.stdout)
    check(re.search(r"verified:\s+(self.signed|unable)", p.stdout) is not None, p.stdout)


def test_implicit_tls_smtps_and_pop3s():
    p = mailcli("send", "--server", "localhost:%d" % tports["smtps"], "--tls", "implicit",
                "--cafile", tls.cert, "--user", "ana", "--trace", "--from", "ana@lab.test",
                "--to", "bob@lab.test", "--subject", "smtps", "--text", "x", lab=tls,
                env={"MAILCLI_PASSWORD": PASSWORDS["ana"]})
    check(p.returncode == 0, f"{p.stdout}\n{p.stderr}")
    lines = p.stdout.splitlines()
    check(lines[1].startswith("   [TLS started"), f"TLS not first:\n{p.stdout}")
    check("C: STARTTLS" not in lines, "STARTTLS inside implicit TLS")
    p = mailcli("inbox", "--server", "localhost:%d" % tpop["pop3s"], "--tls", "implicit",
                "--cafile", tls.cert, "--user", "bob", lab=tls,
                env={"MAILCLI_PASSWORD": PASSWORDS["bob"]})
    check(p.returncode == 0 and "smtps" in p.stdout, f"{p.stdout}\n{p.stderr}")
    p = mailcli("probe", "pop3s://localhost:%d" % tpop["pop3s"], "--cafile", tls.cert, lab=tls)
    check(p.returncode == 0 and "TLS (implicit):" in p.stdout and "verified:   yes" in p.stdout,
          p.stdout)


def test_password_prompt_does_not_echo():
    env = dict(os.environ)
    env.update(BASE_ENV)
    status, out = pty_session([MAILCLI, "inbox", "--server", f"{plain.host}:{plain.pop3_port}",
                               "--user", "bob"], [("Password for bob@", PASSWORDS["bob"])], env=env)
    check("Password for bob@" in out, f"no prompt: {out!r}")
    check(status == 0, f"inbox failed: {out!r}")
    check(PASSWORDS["bob"] not in out, "the password was echoed")
    check("(bob@" in out, f"no inbox listing: {out!r}")


def test_ipv6_literal_server():
    try:
        v6 = Lab(host="::1")
        ports = v6.start_smtpd(roles=("inbound",))
        v6.start_pop3d()
    except Exception as e:  # noqa: BLE001 - no IPv6 loopback here: nothing to test
        print(f"skipping IPv6: {e}")
        return
    try:
        p = mailcli("send", "--server", f"[::1]:{ports['inbound']}", "--trace", "--from",
                    "ana@lab.test", "--to", "bob@lab.test", "--subject", "v6", "--text", "x", lab=v6)
        check(p.returncode == 0, p.stderr)
        check(f"[connected to [::1]:{ports['inbound']}]" in p.stdout, p.stdout[:300])
        check(re.search(r"^C: EHLO \S+", p.stdout, re.M) is not None, p.stdout[:300])
        p = mailcli("inbox", "--server", f"[::1]:{v6.pop3_port}", "--user", "bob", lab=v6,
                    env={"MAILCLI_PASSWORD": PASSWORDS["bob"]})
        check(p.returncode == 0 and "v6" in p.stdout, p.stdout + p.stderr)
    finally:
        v6.stop()


def test_server_still_alive():
    p = mailcli("probe", f"smtp://{server(plain)}")
    check(p.returncode == 0, "smtpd gone")
    check(plain.smtpd.poll() is None and tls.smtpd.poll() is None, "a daemon died")


if __name__ == "__main__":
    run([test_trace_form_pipelining_and_masking, test_trace_body_and_dot_stuffing,
         test_refused_recipient_does_not_hide_others, test_all_recipients_refused_sends_nothing,
         test_size_checked_before_data, test_tls_required_without_starttls_fails_cleanly,
         test_starttls_auth_with_cafile, test_untrusted_certificate_refused_then_insecure,
         test_auth_refused_is_clear, test_settings_from_environment_config_and_netrc,
         test_no_password_without_terminal, test_unreachable_server, test_usage_errors,
         test_probe_smtp_and_pop3_plain, test_probe_shows_certificate,
         test_implicit_tls_smtps_and_pop3s, test_password_prompt_does_not_echo,
         test_ipv6_literal_server,
         test_server_still_alive])
