#!/usr/bin/env python3
"""The round trip a lab user makes: `mailcli send` a message with a UTF-8
subject, an accented text body and three attachments (text, a PNG generated
here, 5 MB of random bytes) through the real smtpd, then `mailcli inbox`,
`read`, `read --tree` and `save` through the real pop3d, comparing the sha256
of every saved file with the original. Then `fetch` into a maildir and an mbox
(read back with Python's mailbox module; mboxrd ">From " quoting checked on
the raw file), resumed by UIDL, with --delete; `delete N`; and the errors a
user can make (no such message, unsafe names, existing files without --force).
"""
import hashlib
import mailbox
import os
import re
import struct
import sys
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Lab, check, run, workdir, PASSWORDS  # noqa: E402

lab = Lab()
sports = lab.start_smtpd(roles=("inbound",))
lab.start_pop3d()
SMTP = f"{lab.host}:{sports['inbound']}"
POP3 = f"{lab.host}:{lab.pop3_port}"
WORK = workdir("mailcli-retrieve-")
ENV = {"HOME": WORK, "XDG_CONFIG_HOME": os.path.join(WORK, ".config"), "MAILCLI_SERVER": "",
       "MAILCLI_USER": "", "MAILCLI_TLS": "", "MAILCLI_CONFIG": "", "NETRC": ""}

SUBJECT = "Você gosta de chocolate? Ação, coração — 日本語も"
BODY = ("Olá Bob,\n\nVocê gosta de chocolate? Açúcar, maçã, pão, avó.\n"
        ".a line starting with a dot\nFrom here on, a line that mbox must quote.\n\nAna\n")


def mailcli(*args, user="bob", env=None, stdin=None, timeout=120):
    e = dict(ENV)
    e["MAILCLI_PASSWORD"] = PASSWORDS.get(user, "")
    e.update(env or {})
    return lab.mailcli(*args, stdin=stdin, check=False, env=e, timeout=timeout)


def pop(*args, user="bob", **kw):
    return mailcli(*args, "--server", POP3, "--user", user, **kw)


def sha(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def make_png(path, w=64, h=48):
    """A real PNG (RGB gradient), written by hand: signature, IHDR, IDAT, IEND."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff))
    raw = b"".join(b"\0" + b"".join(bytes((x * 4 % 256, y * 5 % 256, (x * y) % 256))
                                     for x in range(w)) for y in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def inbox_numbers():
    p = pop("inbox")
    check(p.returncode == 0, f"inbox failed: {p.stderr}")
    return [int(m.group(1)) for m in re.finditer(r"^\s*(\d+)\s{2}", p.stdout, re.M)], p.stdout


def empty_mailbox(user="bob"):
    import poplib
    c = poplib.POP3(lab.host, lab.pop3_port, timeout=10)
    c.user(user)
    c.pass_(PASSWORDS[user])
    for i in range(1, c.stat()[0] + 1):
        c.dele(i)
    c.quit()


def send(subject, body_text, *extra):
    body = os.path.join(WORK, "body.txt")
    with open(body, "w", encoding="utf-8") as f:
        f.write(body_text)
    p = mailcli("send", "--server", SMTP, "--from", "Ana Célia <ana@lab.test>",
                "--to", "Bob <bob@lab.test>", "--subject", subject, "--body", body, *extra,
                timeout=180)
    check(p.returncode == 0, f"send failed: {p.stdout}\n{p.stderr}")
    return p


ORIG = {}


def test_send_then_inbox_read_save_round_trip():
    empty_mailbox()
    txt = os.path.join(WORK, "notas de aula.txt")
    with open(txt, "w", encoding="utf-8") as f:
        f.write("Notas: ação, reação.\r\nSegunda linha\n" * 50)
    png = os.path.join(WORK, "gráfico.png")
    make_png(png)
    binf = os.path.join(WORK, "dados.bin")
    with open(binf, "wb") as f:
        f.write(os.urandom(5 * 1024 * 1024))
    for path in (txt, png, binf):
        ORIG[os.path.basename(path)] = sha(path)
    send(SUBJECT, BODY, "--attach", txt, "--attach", png, "--attach", binf)

    nums, out = inbox_numbers()
    check(nums == [1], f"inbox numbers {nums}:\n{out}")
    check(SUBJECT in out, f"decoded subject not in inbox:\n{out}")
    check("Ana Célia" in out, f"decoded sender not in inbox:\n{out}")
    check(re.search(r"^\s*1\s+6\.\dM\s+\d{4}-\d\d-\d\d \d\d:\d\d", out, re.M) is not None,
          f"size/date columns wrong:\n{out}")

    p = pop("read", "1")
    check(p.returncode == 0, f"read failed: {p.stderr}")
    check(f"Subject: {SUBJECT}" in p.stdout, p.stdout[:500])
    check("From: Ana Célia <ana@lab.test>" in p.stdout, p.stdout[:500])
    check(BODY.strip() in p.stdout.replace("\r\n", "\n"), f"text not decoded:\n{p.stdout[:800]}")
    for name in ORIG:
        check(name in p.stdout, f"attachment {name} not listed:\n{p.stdout}")
    check("5242880 octets" in p.stdout, "binary attachment size not shown")

    p = pop("read", "1", "--tree")
    check(p.returncode == 0, p.stderr)
    check("multipart/mixed" in p.stdout and "image/png" in p.stdout and "base64" in p.stdout,
          f"tree:\n{p.stdout}")

    out_dir = os.path.join(WORK, "saved")
    p = pop("save", "1", "--dir", out_dir)
    check(p.returncode == 0, f"save failed: {p.stdout}\n{p.stderr}")
    for name, digest in ORIG.items():
        path = os.path.join(out_dir, name)
        check(os.path.exists(path), f"{name} not saved: {os.listdir(out_dir)}")
        check(sha(path) == digest, f"{name}: sha256 differs")
    # Saving again must not overwrite without --force.
    before = {n: os.stat(os.path.join(out_dir, n)).st_mtime_ns for n in ORIG}
    p = pop("save", "1", "--dir", out_dir)
    after = {n: os.stat(os.path.join(out_dir, n)).st_mtime_ns for n in ORIG}
    check(before == after, "files overwritten without --force")
    check(p.returncode != 0 or "exist" in (p.stdout + p.stderr),
          f"no word about existing files: {p.stdout} {p.stderr}")
    p = pop("save", "1", "--dir", out_dir, "--force")
    check(p.returncode == 0, p.stderr)
    for name, digest in ORIG.items():
        check(sha(os.path.join(out_dir, name)) == digest, f"{name}: sha256 differs after --force")


def test_unsafe_attachment_names_are_made_safe():
    empty_mailbox()
    evil = ("From: ana@lab.test\r\nTo: bob@lab.test\r\nSubject: evil\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            "hi\r\n--b\r\nContent-Type: application/octet-stream\r\n"
            "Content-Disposition: attachment; filename=\"../../etc/evil.txt\"\r\n"
            "Content-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--b--\r\n")
    lab.admin("deliver", "bob", stdin=evil)
    d = os.path.join(WORK, "safe")
    p = pop("save", "1", "--dir", d)
    check(p.returncode == 0, f"{p.stdout} {p.stderr}")
    files = os.listdir(d)
    check(len(files) == 1 and "/" not in files[0] and ".." not in files[0], f"files: {files}")
    check(not os.path.exists(os.path.join(WORK, "etc", "evil.txt")), "escaped the directory")


def test_read_converts_charsets_to_utf8():
    empty_mailbox()
    latin = ("From: =?iso-8859-1?q?Jo=E3o?= <joao@lab.test>\r\nTo: bob@lab.test\r\n"
             "Subject: =?iso-8859-1?q?Reuni=E3o?=\r\nMIME-Version: 1.0\r\n"
             "Content-Type: text/plain; charset=iso-8859-1\r\n"
             "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
             "A reuni=E3o =E9 amanh=E3, na sala de aula.\r\n")
    lab.admin("deliver", "bob", stdin=latin)
    p = pop("read", "1")
    check(p.returncode == 0, p.stderr)
    check("Subject: Reunião" in p.stdout and "João" in p.stdout, p.stdout)
    check("A reunião é amanhã, na sala de aula." in p.stdout, f"not converted:\n{p.stdout}")
    check("(this message has no text part)" not in p.stdout, p.stdout)
    nums, out = inbox_numbers()
    check("Reunião" in out and "João" in out, out)


def test_read_shows_no_terminal_controls():
    """A sender cannot drive the reader's terminal: escapes (window title,
    colours, clearing), a CR that would overwrite a line, C1 controls, in
    encoded headers, the text and a file name, all come out as '?'."""
    empty_mailbox()
    evil = ("From: =?utf-8?Q?Evil=1B]0;pwned=07?= <e@lab.test>\r\nTo: bob@lab.test\r\n"
            "Subject: =?utf-8?Q?red=1B[31m_alert=0D=0AForged:_yes=C2=9B?=\r\nMIME-Version: 1.0\r\n"
            "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\n"
            "body \x1b[2J clear\rover\tkept\r\nline two\r\n--b\r\n"
            "Content-Type: application/octet-stream; name=\"=?utf-8?Q?a=1B[1mb.txt?=\"\r\n"
            "Content-Disposition: attachment\r\nContent-Transfer-Encoding: base64\r\n\r\n"
            "AAAA\r\n--b--\r\n")
    lab.admin("deliver", "bob", stdin=evil)
    p = pop("read", "1")
    check(p.returncode == 0, p.stderr)
    bad = [c for c in p.stdout if (ord(c) < 0x20 and c not in "\n\t") or 0x7f <= ord(c) <= 0x9f]
    check(not bad, f"control characters reach the terminal: {bad!r}\n{p.stdout!r}")
    check("Subject: red?[31m alert??Forged: yes?" in p.stdout, p.stdout)
    check("body ?[2J clear?over\tkept\nline two\n" in p.stdout, repr(p.stdout))
    check("[1] a?[1mb.txt" in p.stdout, p.stdout)
    nums, out = inbox_numbers()
    check("\x1b" not in out and "\r" not in out, repr(out))


def test_fetch_maildir_resumes_by_uidl_and_reads_with_python():
    empty_mailbox()
    for k in range(3):
        send(f"{SUBJECT} #{k}", BODY)
    md = os.path.join(WORK, "Maildir")
    p = pop("fetch", "--maildir", md)
    check(p.returncode == 0, f"fetch failed: {p.stdout}\n{p.stderr}")
    check(p.stdout.startswith("3 new messages"), p.stdout)
    box = mailbox.Maildir(md, factory=None, create=False)
    msgs = list(box)
    check(len(msgs) == 3, f"{len(msgs)} messages in the maildir")
    import email.header
    subjects = sorted(str(email.header.make_header(email.header.decode_header(m["Subject"])))
                      for m in msgs)
    check(subjects == [f"{SUBJECT} #{k}" for k in range(3)], f"subjects: {subjects}")
    for m in msgs:
        text = m.get_payload(decode=True).decode("utf-8")
        check(".a line starting with a dot" in text, "dot line damaged")
    check(os.listdir(os.path.join(md, "tmp")) == [], "files left in tmp/")
    # Nothing new the second time, even after a crash left half a line in the
    # state file; a new message only after one arrives.
    state = [f for f in os.listdir(md) if f.startswith(".mailcli-uidl-bob@")]
    check(len(state) == 1, f"state files: {state}")
    with open(os.path.join(md, state[0]), "a") as f:
        f.write("half-written-ui")
    p = pop("fetch", "--maildir", md)
    check(p.returncode == 0 and p.stdout.startswith("0 new messages") and
          "3 fetched before" in p.stdout, p.stdout)
    send("one more", "x\n")
    p = pop("fetch", "--maildir", md, "--delete")
    check(p.returncode == 0 and p.stdout.startswith("1 new message") and
          "4 deleted" in p.stdout, f"{p.stdout} {p.stderr}")
    check(len(list(mailbox.Maildir(md, factory=None, create=False))) == 4, "4 expected")
    with open(os.path.join(md, state[0])) as f:
        lines = f.read().split("\n")
    check("half-written-ui" in lines and len(lines) == 6 and lines[-1] == "",
          f"state file not line-aligned after a torn line: {lines}")
    nums, _ = inbox_numbers()
    check(nums == [], f"messages left on the server after --delete: {nums}")


def test_fetch_mbox_with_from_quoting():
    empty_mailbox()
    send("mbox one", BODY)
    send("mbox two", "From the start\n>From already quoted\nplain\n")
    mb = os.path.join(WORK, "inbox.mbox")
    p = pop("fetch", "--mbox", mb)
    check(p.returncode == 0, f"fetch failed: {p.stdout}\n{p.stderr}")
    raw = open(mb, "rb").read()
    check(raw.startswith(b"From ana@lab.test "), raw[:80])
    check(b"\n>From the start\n" in raw and b"\n>>From already quoted\n" in raw,
          "mboxrd quoting wrong")
    check(b"\r\n" not in raw, "CRLF left in the mbox")
    box = mailbox.mbox(mb, create=False)
    msgs = list(box)
    check([m["Subject"] for m in msgs] == ["mbox one", "mbox two"],
          f"subjects: {[m['Subject'] for m in msgs]}")
    size = os.path.getsize(mb)
    p = pop("fetch", "--mbox", mb)
    check(p.returncode == 0 and os.path.getsize(mb) == size, "second fetch appended again")
    p = pop("fetch", "--mbox", mb, "--all")
    check(p.returncode == 0 and len(list(mailbox.mbox(mb, create=False))) == 4,
          "--all did not fetch again")


def test_delete_and_errors():
    empty_mailbox()
    send("first", "1\n")
    send("second", "2\n")
    p = pop("delete", "1")
    check(p.returncode == 0 and "deleted" in p.stdout, f"{p.stdout} {p.stderr}")
    nums, out = inbox_numbers()
    check(nums == [1] and "second" in out and "first" not in out, out)
    p = pop("read", "7")
    check(p.returncode == 1 and "no message 7" in p.stderr, p.stderr)
    p = pop("read", "0")
    check(p.returncode == 2 and "message number" in p.stderr, p.stderr)
    p = pop("read")
    check(p.returncode == 2, p.stderr)
    p = pop("save", "1")
    check(p.returncode == 2 and "--dir" in p.stderr, p.stderr)
    p = pop("fetch")
    check(p.returncode == 2 and "--mbox" in p.stderr, p.stderr)
    p = pop("inbox", user="bob", env={"MAILCLI_PASSWORD": "wrong"}, timeout=120)
    check(p.returncode == 1 and "refused" in p.stderr, p.stderr)
    p = mailcli("inbox", "--server", POP3)
    check(p.returncode == 1 and "--user" in p.stderr, p.stderr)


def test_trace_pop3_masks_and_summarises():
    p = pop("read", "1", "--trace")
    check(p.returncode == 0, p.stderr)
    lines = p.stdout.splitlines()
    check("C: AUTH PLAIN ***" in lines or "C: PASS ***" in lines, p.stdout[:600])
    check(PASSWORDS["bob"] not in p.stdout, "password in the trace")
    check("C: RETR 1" in lines, p.stdout[:600])
    check(any(l.startswith("   [") and "lines" in l for l in lines), "no body summary")


def test_daemons_still_alive():
    check(lab.smtpd.poll() is None and lab.pop3d.poll() is None, "a daemon died")
    nums, _ = inbox_numbers()
    check(isinstance(nums, list), "inbox failed")


if __name__ == "__main__":
    run([test_send_then_inbox_read_save_round_trip, test_unsafe_attachment_names_are_made_safe,
         test_read_converts_charsets_to_utf8, test_read_shows_no_terminal_controls,
         test_fetch_maildir_resumes_by_uidl_and_reads_with_python,
         test_fetch_mbox_with_from_quoting, test_delete_and_errors,
         test_trace_pop3_masks_and_summarises, test_daemons_still_alive])
