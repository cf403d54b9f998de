#!/usr/bin/env python3
"""webd, the web console, against the real smtpd, pop3d and webd on loopback,
driven by Debian's chromium (headless, through chromium-driver and
python3-selenium; nothing outside loopback is contacted) and by plain HTTP:

- ana sends bob a message with an attachment; bob logs in in the browser,
  sees it in /mailbox, opens it (text and attachment), follows the link to
  the SMTP session that delivered it and sees `C: MAIL FROM:<ana@lab.test>`;
  a screenshot of the transcript is saved;
- a message whose Subject and body carry <script> and <img onerror> shows
  them as text: the DOM has no injected element and no script ran;
- ana gets 404 for bob's message and for bob's POP3 session (pages and API);
- the teacher sees both sessions, and the live view shows a new session;
- a POST without the CSRF token is refused; a wrong password waits;
- 1,000 slow HTTP connections do not stop a normal page load;
- the autoconfig XML has the format's fields and the config's ports;
- the JSON API: bob's sessions to bob, all to the teacher (API token), and
  ?text= finds a line typed in a session.
"""
import http.client
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import (BIN, Dialog, Lab, PASSWORDS, PG, check, free_port, run,  # noqa: E402
                          wait_port, workdir)

try:
    import selenium  # noqa: F401
except ImportError:
    # python3-selenium is Debian's; this python3 may be another one.
    sys.path.append("/usr/lib/python3/dist-packages")
    import selenium  # noqa: F401

WEBD = os.path.join(BIN, "webd", "webd")
USERS = dict(PASSWORDS, carla="carla-secret-3")
ports = {k: free_port() for k in ("inbound", "submission", "pop3", "web")}
lab = Lab(users=USERS, config_extra=(
    f"[smtpd]\nlisten = 127.0.0.1:{ports['inbound']} inbound\n"
    f"listen = 127.0.0.1:{ports['submission']} submission\n"
    f"[pop3d]\nlisten = 127.0.0.1:{ports['pop3']}\n"
    f"[webd]\nlisten = 127.0.0.1:{ports['web']}\nteachers = carla\n"))
# [smtpd] appears twice in the file (the harness's hostname, then ours):
# inih merges them.
lab.smtpd = lab._start(os.path.join(BIN, "smtpd", "smtpd"), [], [])
lab.pop3d = lab._start(os.path.join(BIN, "pop3d", "pop3d"), [], [])
lab.webd = lab._start(WEBD, [], [])
for p in ports.values():
    wait_port("127.0.0.1", p)
# Something answers on each port: make sure it is ours (a daemon that could
# not bind would have ended, and its log says why).
for name in ("smtpd", "pop3d", "webd"):
    check(getattr(lab, name).poll() is None, f"{name} ended at start: {lab.log(name)[-600:]}")
BASE = f"http://127.0.0.1:{ports['web']}"
MARKER = "lab-marker-7731"
state = {}


def smtp_session(text, rcpt="bob@lab.test", extra=()):
    """One SMTP session on the inbound port; returns its session id."""
    d = Dialog("127.0.0.1", ports["inbound"])
    greeting = d.expect(220)[0]
    sid = re.search(r"session (\w+)", greeting).group(1)
    d.expect(250, "HELO client.lab.test")
    for line in extra:
        d.send(line + "\r\n")
        d.smtp_reply()
    d.smtp_send(text, rcpts=(rcpt,))
    d.expect(221, "QUIT")
    return sid


def pop3_session(user):
    d = Dialog("127.0.0.1", ports["pop3"])
    d.line()
    d.pop3("USER " + user)
    r = d.pop3("PASS " + USERS[user])
    check(r.startswith("+OK"), "pop3 login: " + r)
    d.pop3("STAT")
    check(d.pop3("QUIT").startswith("+OK"), "pop3 quit")


class Http:
    """A cookie-keeping HTTP client (one cookie jar per person)."""

    def __init__(self):
        self.cookies = {}

    def request(self, method, path, body=None, headers=None, timeout=10):
        c = http.client.HTTPConnection("127.0.0.1", ports["web"], timeout=timeout)
        h = dict(headers or {})
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if body is not None:
            body = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        for v in r.headers.get_all("Set-Cookie") or []:
            name, val = v.split(";", 1)[0].split("=", 1)
            if val:
                self.cookies[name] = val
            else:
                self.cookies.pop(name, None)
        c.close()
        return r, data.decode("utf-8", "replace")

    def login(self, user, password=None):
        r, page = self.request("GET", "/login")
        token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
        t0 = time.time()
        r, page = self.request("POST", "/login", {"csrf": token, "user": user,
                                                  "password": password or USERS[user]})
        return r, page, time.time() - t0


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = "/usr/bin/chromium"
    profile = tempfile.mkdtemp(prefix="chromium-", dir=workdir())
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run",
              "--disable-default-apps", "--disable-extensions", "--window-size=1100,900",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=opts)
    d.set_page_load_timeout(30)
    return d


def browser_login(d, user):
    from selenium.webdriver.common.by import By
    d.get(BASE + "/login")
    d.find_element(By.ID, "user").send_keys(user)
    d.find_element(By.ID, "password").send_keys(USERS[user])
    d.find_element(By.ID, "login").click()
    wait_for(lambda: d.current_url.endswith("/mailbox"), "login redirect to /mailbox")


def wait_for(cond, what, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError("timed out waiting for " + what)


def test_deliver():
    attachment = "Lab notes: line one\r\nline two\r\n"
    import base64
    msg = ("From: Ana <ana@lab.test>\r\nTo: Bob <bob@lab.test>\r\nSubject: Lab report\r\n"
           "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n"
           "--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nHello Bob, the report "
           "is attached.\r\n--b1\r\nContent-Type: text/plain; name=\"notes.txt\"\r\n"
           "Content-Disposition: attachment; filename=\"notes.txt\"\r\n"
           "Content-Transfer-Encoding: base64\r\n\r\n"
           + base64.b64encode(attachment.encode()).decode() + "\r\n--b1--\r\n")
    state["smtp"] = smtp_session(msg, extra=("NOOP " + MARKER,))
    evil = ("From: ana@lab.test\r\nSubject: <script>window.pwned=1</script> "
            "<img src=x onerror=\"window.pwned=2\">\r\n\r\n"
            "<script>window.pwned=3</script><img src=x onerror=\"window.pwned=4\">\r\n")
    state["evil"] = smtp_session(evil)
    state["ana_only"] = smtp_session("Subject: for ana\r\n\r\nhi\r\n", rcpt="ana@lab.test")
    pop3_session("bob")


def test_bob_in_browser():
    from selenium.webdriver.common.by import By
    d = browser()
    try:
        browser_login(d, "bob")
        link = d.find_element(By.LINK_TEXT, "Lab report")
        check("ana@lab.test" in d.find_element(By.ID, "mailbox").text, "sender in /mailbox")
        link.click()
        check("Hello Bob, the report is attached." in d.find_element(By.ID, "body").text,
              "text part shown")
        att = d.find_element(By.CSS_SELECTOR, "a.attachment")
        check(att.text == "notes.txt", f"attachment listed: {att.text!r}")
        href = att.get_attribute("href")
        state["bob_msg"] = re.search(r"/mailbox/(\d+)/", href).group(1)
        state["bob_part"] = urllib.parse.urlparse(href).path
        d.find_element(By.ID, "session-link").click()
        transcript = d.find_element(By.ID, "transcript").text
        check("C: MAIL FROM:<ana@lab.test>" in transcript, "transcript shows MAIL FROM")
        lines = d.find_elements(By.CSS_SELECTOR, "#transcript .line.c")
        check(len(lines) > 2 and all("C: " in l.text for l in lines), "client lines marked")
        shot = os.path.join(workdir(), "transcript.png")
        check(d.save_screenshot(shot) and os.path.getsize(shot) > 1000, "screenshot saved")
        if os.environ.get("CORREIO_SCREENSHOT"):
            shutil.copy(shot, os.environ["CORREIO_SCREENSHOT"])
        # the hostile message: text only, nothing injected, nothing ran
        d.get(BASE + "/mailbox")
        d.find_element(By.PARTIAL_LINK_TEXT, "<script>").click()
        check("<script>window.pwned=1</script>" in d.find_element(By.ID, "h-subject").text,
              "subject shown as text")
        check("<img src=x onerror=" in d.find_element(By.ID, "body").text, "body shown as text")
        check(d.find_elements(By.TAG_NAME, "script") == [], "no script element")
        check(d.find_elements(By.TAG_NAME, "img") == [], "no img element")
        check(d.execute_script("return window.pwned === undefined"), "no injected script ran")
    finally:
        d.quit()


def test_attachment_download():
    bob = Http()
    bob.login("bob")
    r, body = bob.request("GET", state["bob_part"])
    check(r.status == 200, f"attachment status {r.status}")
    check(r.getheader("Content-Disposition").startswith("attachment;"), "attachment disposition")
    check(r.getheader("X-Content-Type-Options") == "nosniff", "nosniff")
    check("Lab notes: line one" in body, "attachment content")
    csp = r.getheader("Content-Security-Policy")
    check("default-src 'self'" in csp and "unsafe-inline" not in csp, f"CSP {csp}")


def test_ana_gets_404():
    ana = Http()
    r, _, _ = ana.login("ana")
    check(r.status == 303, f"ana login {r.status}")
    bob = Http()
    bob.login("bob")
    teacher = Http()
    teacher.login("carla")
    _, data = teacher.request("GET", "/api/sessions?user=bob")
    pop = [s for s in json.loads(data)["sessions"] if s["proto"] == "pop3"]
    check(len(pop) == 1, f"bob's pop3 session: {pop}")
    state["pop3"] = pop[0]["id"]
    for path in (f"/mailbox/{state['bob_msg']}", f"/mailbox/{state['bob_msg']}/raw",
                 f"/api/mailbox/{state['bob_msg']}", f"/sessions/{state['pop3']}",
                 f"/api/sessions/{state['pop3']}", "/sessions/live"):
        r, _ = ana.request("GET", path)
        check(r.status == 404, f"ana {path}: {r.status}")
        r, _ = bob.request("GET", path)
        check(r.status == (404 if path == "/sessions/live" else 200), f"bob {path}: {r.status}")
    r, _ = Http().request("GET", "/mailbox")
    check(r.status == 303 and r.getheader("Location") == "/login", "anonymous: to the login")


def test_teacher_sees_all():
    from selenium.webdriver.common.by import By
    d = browser()
    try:
        browser_login(d, "carla")
        d.get(BASE + "/sessions")
        text = d.find_element(By.ID, "sessions").text
        check(state["smtp"] in text and state["pop3"] in text, "teacher sees both sessions")
        d.get(BASE + "/sessions?user=bob")
        text = d.find_element(By.ID, "sessions").text
        check(state["ana_only"] not in text and state["smtp"] in text, "account filter")
        d.get(BASE + "/sessions/live")
        sid = smtp_session("Subject: live\r\n\r\nnew one\r\n")
        wait_for(lambda: sid in d.find_element(By.ID, "sessions").text,
                 "the new session in the live view")
    finally:
        d.quit()


def test_teacher_sees_the_queue():
    """Teachers see the relay's queue (read only); others get 404."""
    if PG:
        lab.sql_write("with m as (insert into messages(size, sender, session, created) "
                      "values (2, 'ana@lab.test', '', 0) returning id), "
                      "c as (insert into message_chunks(message, seq, data) "
                      "select id, 0, '\\x4869'::bytea from m) "
                      "insert into queue(message, sender, rcpt, created, next_attempt, attempts, "
                      "last_error) select id, 'ana@lab.test', 'amigo@doces.invalid', 0, "
                      "4102444800, 2, '<b>host unreachable</b>' from m")
    else:
        lab.sql_write("insert into messages(body, size, sender, session, created) "
                      "values (x'4869', 2, 'ana@lab.test', '', 0); "
                      "insert into queue(message, sender, rcpt, created, next_attempt, attempts, "
                      "last_error) values (last_insert_rowid(), 'ana@lab.test', "
                      "'amigo@doces.invalid', 0, 4102444800, 2, '<b>host unreachable</b>')")
    teacher = Http()
    teacher.login("carla")
    r, page = teacher.request("GET", "/queue")
    check(r.status == 200 and "amigo@doces.invalid" in page, f"queue page {r.status}")
    check("&lt;b&gt;host unreachable&lt;/b&gt;" in page and "<b>host" not in page,
          "the error is escaped")
    bob = Http()
    bob.login("bob")
    r, _ = bob.request("GET", "/queue")
    check(r.status == 404, f"bob /queue: {r.status}")


def test_csrf():
    bob = Http()
    bob.login("bob")
    r, _ = bob.request("POST", "/logout", {})
    check(r.status == 403, f"logout without CSRF: {r.status}")
    r, _ = bob.request("POST", "/logout", {"csrf": "0" * 64})
    check(r.status == 403, f"logout with a wrong CSRF token: {r.status}")
    r, _ = bob.request("GET", "/mailbox")
    check(r.status == 200, "still logged in")
    r, _ = Http().request("POST", "/login", {"user": "bob", "password": USERS["bob"]})
    check(r.status == 403, f"login without CSRF: {r.status}")
    _, page = bob.request("GET", "/mailbox")
    token = re.search(r'name="csrf" value="([0-9a-f]+)"', page).group(1)
    r, _ = bob.request("POST", "/logout", {"csrf": token})
    check(r.status == 303, f"logout with the token: {r.status}")
    r, _ = bob.request("GET", "/mailbox")
    check(r.status == 303, "logged out")


def test_login_delay():
    r, page, took = Http().login("bob", "wrong-password")
    check(r.status == 401 and "Wrong user name or password" in page, f"failed login {r.status}")
    check(took >= 0.9, f"a failed login waits (took {took:.2f} s)")
    r, _, took = Http().login("nobody-here", "x")
    check(r.status == 401 and took >= 0.9, "unknown user: same answer, same wait")
    r, _, _ = Http().login("bob")
    check(r.status == 303, "the right password still works")


def test_slow_clients():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    socks = []
    try:
        for _ in range(1000):
            s = socket.create_connection(("127.0.0.1", ports["web"]), timeout=5)
            s.sendall(b"GET /login HTTP/1.1\r\nHost: x\r\n")	# never finished
            socks.append(s)
        t0 = time.time()
        r, page = Http().request("GET", "/login", timeout=10)
        took = time.time() - t0
        check(r.status == 200 and "Log in" in page, "a normal page load")
        check(took < 3, f"page load with 1000 slow clients took {took:.2f} s")
    finally:
        for s in socks:
            s.close()


def test_autoconfig():
    for path in ("/.well-known/autoconfig/mail/config-v1.1.xml",
                 "/mail/config-v1.1.xml?emailaddress=bob%40lab.test"):
        r, body = Http().request("GET", path)
        check(r.status == 200 and "xml" in r.getheader("Content-Type"), f"{path}: {r.status}")
        root = ET.fromstring(body)
        check(root.tag == "clientConfig" and root.get("version") == "1.1", "clientConfig 1.1")
        prov = root.find("emailProvider")
        incoming = prov.findall("incomingServer")
        outgoing = prov.findall("outgoingServer")
        check(len(incoming) == 1 and incoming[0].get("type") == "pop3", "one POP3 server")
        check(len(outgoing) == 1 and outgoing[0].get("type") == "smtp", "one SMTP server")
        for srv, port in ((incoming[0], ports["pop3"]), (outgoing[0], ports["submission"])):
            for field in ("hostname", "port", "socketType", "username", "authentication"):
                check(srv.find(field) is not None, f"field {field}")
            check(srv.findtext("port") == str(port), f"port {srv.findtext('port')} != {port}")
            check(srv.findtext("hostname") == "mx.lab.test", "hostname from the config")
            check(srv.findtext("socketType") == "plain", "no TLS configured: plain")
            check(srv.findtext("username") == "%EMAILLOCALPART%", "username")
    check(prov.findtext("domain") == "lab.test", "domain of the address")
    r, _ = Http().request("GET", "/mail/config-v1.1.xml?emailaddress=%3Cx%3E")
    check(r.status == 400, "a bad address is refused")
    out = lab.mailcli("setup-client", "-c", lab.config, "bob@lab.test").stdout
    check(f"port {ports['pop3']}" in out and f"port {ports['submission']}" in out,
          "setup-client prints the same ports")
    check(f"set pop_host = \"pop://mx.lab.test:{ports['pop3']}\"" in out, "mutt config")


def test_api():
    bob = Http()
    bob.login("bob")
    _, data = bob.request("GET", "/api/sessions")
    ids = {s["id"] for s in json.loads(data)["sessions"]}
    check({state["smtp"], state["pop3"], state["evil"]} <= ids, f"bob's sessions: {ids}")
    check(state["ana_only"] not in ids, "not ana's")
    _, data = bob.request("GET", "/api/sessions?user=ana")
    check(state["ana_only"] not in data, "a student cannot ask for another account")
    _, data = bob.request("GET", "/api/mailbox")
    subjects = [m["subject"] for m in json.loads(data)["messages"]]
    check("Lab report" in subjects, f"api mailbox {subjects}")
    _, data = bob.request("GET", f"/api/mailbox/{state['bob_msg']}")
    m = json.loads(data)
    check(m["session"] == state["smtp"] and "notes.txt" in [p["filename"] for p in m["parts"]],
          "api message: session and parts")
    token = lab.admin("token", "add", "carla").stdout.strip()
    check(re.fullmatch(r"[0-9a-f]{64}", token) is not None, "token printed")
    check(token not in lab.sql("select hash from api_tokens").decode(), "token stored hashed")
    auth = {"Authorization": "Bearer " + token}
    r, data = Http().request("GET", "/api/sessions", headers=auth)
    ids = {s["id"] for s in json.loads(data)["sessions"]}
    check(r.status == 200 and {state["smtp"], state["pop3"], state["ana_only"]} <= ids,
          "the teacher's token sees every session")
    r, data = Http().request("GET", "/api/sessions?text=" + MARKER, headers=auth)
    found = [s["id"] for s in json.loads(data)["sessions"]]
    check(found == [state["smtp"]], f"?text= search: {found}")
    r, data = Http().request("GET", f"/api/sessions/{state['smtp']}", headers=auth)
    check(f"C: NOOP {MARKER}" in data, "transcript over the API")
    r, _ = Http().request("GET", "/api/sessions", headers={"Authorization": "Bearer " + "0" * 64})
    check(r.status == 401, "a wrong token is refused")


def test_stops_cleanly():
    check(lab.webd.poll() is None, "webd still running")
    lab.stop_checked(lab.webd, "webd")


if __name__ == "__main__":
    run([test_deliver, test_bob_in_browser, test_attachment_download, test_ana_gets_404,
         test_teacher_sees_all, test_teacher_sees_the_queue, test_csrf, test_login_delay, test_slow_clients, test_autoconfig,
         test_api, test_stops_cleanly])
