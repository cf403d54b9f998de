#!/usr/bin/env python3
"""mailcli compose, judged by other MIME implementations: Python's email
package (policy=default) decodes every header to the original text (UTF-8
subjects short and long, display names), every attachment to the same bytes
(sha256), the text and HTML to the same text, and finds no defects; munpack
(mpack) extracts the same attachment bytes; mailcli show/extract read it
back. Also: CRLF everywhere and folded lines, --deterministic and
SOURCE_DATE_EPOCH byte-identical, header injection and bad input refused
before anything is written, --dry-run's envelope, Bcc in no header, and
attachments streamed (peak RSS flat while a 64 MB attachment is encoded).
No daemons are needed.
"""
import email
import email.policy
import email.utils
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import MAILCLI, check, run, workdir  # noqa: E402

TMP = workdir("correio-compose-")
ENV = dict(os.environ, TZ="BRT3")   # UTC-3 without needing tzdata
ENV.pop("SOURCE_DATE_EPOCH", None)

LONG_SUBJECT = ("Relatório das atividades do laboratório de redes de computadores — versão "
                "revisada após a reunião de orientação com o professor responsável; "
                "atenção: prazo de entrega é sexta-feira às 18h, não se esqueçam!")
TEXT = ("Olá Bob,\n\nVocê gosta de chocolate? Então venha à confraternização.\n"
        "Uma linha com espaços no fim   \n"
        "Uma linha muito longa " + "abcdefghij " * 12 + "fim.\n"
        "a=b e =?utf-8?Q?isto_n=C3=A3o?= é um encoded word\n"
        "From the start of a line\n.\nAbraços,\nJoão\n")


def path(name):
    return os.path.join(TMP, name)


def sha(b):
    return hashlib.sha256(b).hexdigest()


def compose(*args, stdin=b"", env=None):
    p = subprocess.run([MAILCLI, "compose", *args], input=stdin, capture_output=True,
                       timeout=120, env=env or ENV)
    return p


def compose_ok(*args, **kw):
    p = compose(*args, **kw)
    check(p.returncode == 0, f"compose failed ({p.returncode}): {p.stderr.decode()}")
    return p.stdout


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def text_of(part):
    return part.get_content().replace("\r\n", "\n")


def png_bytes():
    """A real 16x16 RGB PNG (so libmagic says image/png)."""
    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\x00" + bytes(v for x in range(16) for v in (x * 16, y * 16, 128)) for y in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_files():
    files = {
        "notas.txt": "Notas da aula: café, pão, ação.\nSegunda linha.\n".encode(),
        "foto.png": png_bytes(),
        "dados.bin": os.urandom(5 * 1024 * 1024),
        "vazio.dat": b"",
    }
    for name, data in files.items():
        with open(path(name), "wb") as f:
            f.write(data)
    with open(path("body.txt"), "wb") as f:
        f.write(TEXT.encode())
    with open(path("page.html"), "wb") as f:
        f.write("<html><body><p>Olá, <b>Bob</b>! Você gosta de chocolate?</p></body></html>\n".encode())
    return files


FILES = make_files()
LONG_NAME = ("relatório das medições de latência e vazão do experimento número três "
             "da disciplina de redes — versão final.bin")


def full_message(*extra, env=None):
    return compose_ok(
        "--from", "João Araújo <joao@lab.test>",
        "--to", "Bob <bob@lab.test>, \"Silva, Ana\" <ana@lab.test>",
        "--cc", "Cecília Müller <cecilia@lab.test>",
        "--bcc", "segredo@lab.test",
        "--reply-to", "Turma de Redes <redes@lab.test>",
        "--subject", "Você gosta de chocolate?",
        "--header", "X-Disciplina: Redes de Computadores",
        "--header", "X-Comentario: olá",
        "--body", path("body.txt"),
        "--attach", path("notas.txt"),
        "--attach", path("foto.png"),
        "--attach", path("dados.bin") + ";name=" + LONG_NAME,
        "--attach", path("vazio.dat") + ";type=application/x-empty-test",
        *extra, env=env)


def test_python_decodes_everything():
    raw = full_message()
    m = parse(raw)
    check(m.defects == [], f"defects: {m.defects}")
    check(str(m["subject"]) == "Você gosta de chocolate?", repr(m["subject"]))
    frm = m["from"].addresses[0]
    check(frm.display_name == "João Araújo" and frm.addr_spec == "joao@lab.test", repr(frm))
    to = [(a.display_name, a.addr_spec) for a in m["to"].addresses]
    check(to == [("Bob", "bob@lab.test"), ("Silva, Ana", "ana@lab.test")], repr(to))
    cc = m["cc"].addresses[0]
    check(cc.display_name == "Cecília Müller", repr(cc))
    check(m["reply-to"].addresses[0].display_name == "Turma de Redes", repr(m["reply-to"]))
    check(str(m["x-disciplina"]) == "Redes de Computadores", repr(m["x-disciplina"]))
    check(str(m["x-comentario"]) == "olá", "custom UTF-8 header")
    check(m["bcc"] is None and b"segredo" not in raw, "Bcc leaked into the message")
    check(m["mime-version"] == "1.0", "MIME-Version")
    # Date: RFC 5322 with the local offset (TZ=BRT3 -> -0300), close to now
    d = email.utils.parsedate_to_datetime(str(m["date"]))
    check(d.utcoffset().total_seconds() == -3 * 3600, f"offset {m['date']}")
    mid = str(m["message-id"])
    check(mid.startswith("<") and mid.endswith("@lab.test>"), f"Message-ID {mid}")
    check(m.get_content_type() == "multipart/mixed", m.get_content_type())
    body = m.get_body(("plain",))
    # text/plain is CRLF on the wire (RFC 2046 4.1.1); Python keeps the CRLFs
    check(text_of(body) == TEXT, "text differs:\n" + repr(body.get_content()))
    check(body.get_content_charset() == "utf-8", "charset")
    check(body["content-transfer-encoding"] == "quoted-printable", "long/accented text is QP")
    atts = {a.get_filename(): a for a in m.iter_attachments()}
    want = {"notas.txt": FILES["notas.txt"], "foto.png": FILES["foto.png"],
            LONG_NAME: FILES["dados.bin"], "vazio.dat": b""}
    check(set(atts) == set(want), f"attachment names {sorted(atts)}")
    for name, data in want.items():
        a = atts[name]
        check(a.defects == [], f"{name}: {a.defects}")
        got = a.get_payload(decode=True)
        check(sha(got) == sha(data), f"{name}: bytes differ ({len(got)} vs {len(data)})")
        check(a.get_content_disposition() == "attachment", f"{name} disposition")
        check(a["content-transfer-encoding"] == "base64", f"{name} encoding")
    check(atts["foto.png"].get_content_type() == "image/png", "libmagic: png")
    check(atts["notas.txt"].get_content_type() == "text/plain", "libmagic: text")
    check(atts["notas.txt"].get_content_charset() == "utf-8", "libmagic: text charset")
    check(atts["notas.txt"].get_content() == FILES["notas.txt"].decode(), "text attachment as text")
    check(atts["vazio.dat"].get_content_type() == "application/x-empty-test", "type override")
    # the old-client name= on Content-Type decodes too
    check(atts[LONG_NAME].get_param("name") is not None, "name= on Content-Type")


def test_long_subject_and_folding():
    raw = compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test",
                     "--subject", LONG_SUBJECT, "--text", "x\n")
    m = parse(raw)
    check(str(m["subject"]) == LONG_SUBJECT, repr(str(m["subject"])))
    head = raw.split(b"\r\n\r\n", 1)[0]
    lines = head.split(b"\r\n")
    subj = [lines.index(line) for line in lines if line.startswith(b"Subject:")][0]
    check(len(lines) > subj + 1 and lines[subj + 1].startswith(b" "), "long subject not folded")
    for line in lines:
        check(len(line) <= 78, f"header line of {len(line)}: {line!r}")
        if b"=?" in line:
            check(len(line) <= 76, f"encoded-word line of {len(line)}")
        for word in line.split():
            if word.startswith(b"=?"):
                check(len(word) <= 75, f"encoded word of {len(word)}")
    # a long plain ASCII subject folds at spaces and unfolds to itself
    ascii_subj = "Plain ASCII subject " * 8 + "end"
    m = parse(compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test",
                         "--subject", ascii_subj, "--text", "x"))
    check(str(m["subject"]) == ascii_subj, repr(str(m["subject"])))


def test_crlf_and_line_lengths():
    raw = full_message()
    check(b"\n" not in raw.replace(b"\r\n", b""), "bare LF in the message")
    check(b"\r" not in raw.replace(b"\r\n", b""), "bare CR in the message")
    for line in raw.split(b"\r\n"):
        check(len(line) <= 998, "line over 998 octets")
        check(len(line) <= 78, f"line of {len(line)} characters: {line[:80]!r}")
    # -o FILE: the same bytes (CRLF too), written atomically
    out = path("out.eml")
    p = compose("-o", out, "--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "a\nb\n",
                "--deterministic")
    check(p.returncode == 0 and p.stdout == b"", p.stderr)
    data = open(out, "rb").read()
    check(data.endswith(b"a\r\nb\r\n") and b"\n" not in data.replace(b"\r\n", b""), "-o CRLF")
    same = compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "a\nb\n",
                      "--deterministic")
    check(data == same, "-o and stdout differ")


def test_text_only_and_html():
    # ASCII, short lines: one part, 7bit
    raw = compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test", "--subject", "hi",
                     stdin=b"hello\nworld\n")
    m = parse(raw)
    check(m.get_content_type() == "text/plain" and not m.is_multipart(), "single part")
    check(m["content-transfer-encoding"] == "7bit", m["content-transfer-encoding"])
    check(text_of(m) == "hello\nworld\n", repr(m.get_content()))
    # --html: multipart/alternative with both texts
    raw = compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test", "--subject", "html",
                     "--body", path("body.txt"), "--html", path("page.html"))
    m = parse(raw)
    check(m.get_content_type() == "multipart/alternative", m.get_content_type())
    check(text_of(m.get_body(("plain",))) == TEXT, "plain alternative")
    html = open(path("page.html"), encoding="utf-8").read()
    check(text_of(m.get_body(("html",))) == html, "html alternative")
    # html + attachment: mixed(alternative(plain, html), attachment)
    m = parse(compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "t",
                         "--html", path("page.html"), "--attach", path("foto.png")))
    check([p.get_content_type() for p in m.walk()] ==
          ["multipart/mixed", "multipart/alternative", "text/plain", "text/html", "image/png"],
          [p.get_content_type() for p in m.walk()])
    # text without a final newline survives exactly inside a multipart
    m = parse(compose_ok("--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "sem fim à vista",
                         "--attach", path("notas.txt")))
    check(m.get_body(("plain",)).get_content() == "sem fim à vista", "no final newline")


def test_munpack_extracts_same_bytes():
    raw = full_message()
    msg = path("munpack.eml")
    with open(msg, "wb") as f:
        f.write(raw)
    outdir = path("munpack-out")
    shutil.rmtree(outdir, ignore_errors=True)
    os.mkdir(outdir)
    p = subprocess.run(["munpack", "-q", "-C", outdir, msg], capture_output=True, timeout=60)
    check(p.returncode == 0, f"munpack: {p.stdout!r} {p.stderr!r}")
    got = {}
    for name in os.listdir(outdir):
        with open(os.path.join(outdir, name), "rb") as f:
            got[sha(f.read())] = name
    for name in ("notas.txt", "foto.png", "dados.bin"):
        check(sha(FILES[name]) in got, f"munpack did not extract {name}: {sorted(got.values())}")
    check(got.get(sha(FILES["foto.png"])) == "foto.png", "munpack's name for foto.png")


def test_show_and_extract_read_it_back():
    raw = full_message()
    msg = path("back.eml")
    with open(msg, "wb") as f:
        f.write(raw)
    p = subprocess.run([MAILCLI, "show", msg], capture_output=True, timeout=60)
    out = p.stdout.decode()
    check(p.returncode == 0, p.stderr)
    check("Subject  Você gosta de chocolate?" in out, out)
    check("From     João Araújo <joao@lab.test>" in out, out)
    check(LONG_NAME in out and "image/png" in out and f"{5 * 1024 * 1024} bytes" in out, out)
    outdir = path("extract-out")
    shutil.rmtree(outdir, ignore_errors=True)
    os.mkdir(outdir)
    p = subprocess.run([MAILCLI, "extract", msg, "--dir", outdir], capture_output=True, timeout=60)
    check(p.returncode == 0, p.stdout + p.stderr)
    for name, src in (("notas.txt", "notas.txt"), ("foto.png", "foto.png"), (LONG_NAME, "dados.bin"),
                      ("vazio.dat", "vazio.dat")):
        with open(os.path.join(outdir, name), "rb") as f:
            check(sha(f.read()) == sha(FILES[src]), f"extract: {name}")
    # again: refuses to overwrite, --force does
    p = subprocess.run([MAILCLI, "extract", msg, "--dir", outdir], capture_output=True, timeout=60)
    check(p.returncode == 1 and b"--force" in p.stdout, p.stdout)
    p = subprocess.run([MAILCLI, "extract", msg, "--dir", outdir, "--force"], capture_output=True,
                       timeout=60)
    check(p.returncode == 0, p.stdout)
    # --force replaces regular files only: a FIFO (whose open would block) or
    # a symbolic link in a name's place is left alone; the others are written
    os.unlink(os.path.join(outdir, "notas.txt"))
    os.mkfifo(os.path.join(outdir, "notas.txt"))
    os.unlink(os.path.join(outdir, "foto.png"))
    os.symlink(path("never-written"), os.path.join(outdir, "foto.png"))
    p = subprocess.run([MAILCLI, "extract", msg, "--dir", outdir, "--force"], capture_output=True,
                       timeout=20)
    out = p.stdout.decode()
    check(p.returncode == 1 and "notas.txt: not a regular file" in out, out)
    check("not written: foto.png" in out and not os.path.lexists(path("never-written")), out)
    check(f"wrote {LONG_NAME}" in out, out)


def test_deterministic():
    a = full_message("--deterministic")
    b = full_message("--deterministic")
    check(a == b, "--deterministic runs differ")
    env = dict(ENV, SOURCE_DATE_EPOCH="1764100800")
    c = full_message(env=env)
    d = full_message(env=env)
    check(c == d, "SOURCE_DATE_EPOCH runs differ")
    check(b"Date: Tue, 25 Nov 2025 20:00:00 +0000\r\n" in c, c.split(b"\r\n\r\n")[0])
    e = full_message()
    f = full_message()
    check(e != f, "random runs are identical")
    me, mf = parse(e)["message-id"], parse(f)["message-id"]
    check(me != mf, "Message-ID not unique")


def test_injection_and_errors_refused():
    out = path("never.eml")
    cases = [
        (["--subject", "hi\r\nBcc: eve@evil.test"], 2, b"line break"),
        (["--subject", "hi\nX-Evil: 1"], 2, b"line break"),
        (["--to", "bob@lab.test\r\nBcc: eve@evil.test"], 2, b"line break"),
        (["--from", "Ana <ana@lab.test>\rX: y"], 2, b"line break"),
        (["--header", "X-Ok: yes\r\nBcc: eve@evil.test"], 2, b"line break"),
        (["--header", "Bcc: eve@evil.test"], 2, b"set by its own option"),
        (["--attach", path("notas.txt") + ";name=a\nb.txt"], 2, b"line break"),
        (["--to", "not an address"], 2, b"bad address"),
        (["--to", "bob@"], 2, b"bad address"),
        (["--attach", path("does-not-exist.pdf")], 1, b"No such file"),
        (["--attach", TMP], 1, b"not a regular file"),
        (["--body", path("does-not-exist.txt")], 1, b"No such file"),
    ]
    for extra, code, msg in cases:
        if os.path.exists(out):
            os.unlink(out)
        base = ["-o", out, "--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "x"]
        if extra[0] in ("--to",):
            base = ["-o", out, "--from", "ana@lab.test", "--text", "x"]
        if extra[0] == "--body":
            base = ["-o", out, "--from", "ana@lab.test", "--to", "bob@lab.test"]
        p = compose(*base, *extra)
        check(p.returncode == code, f"{extra}: exit {p.returncode}, stderr {p.stderr!r}")
        check(msg in p.stderr, f"{extra}: stderr {p.stderr!r}")
        check(p.stdout == b"" and not os.path.exists(out), f"{extra}: something was written")
    # unreadable file (skip as root, who can read anything)
    if os.geteuid() != 0:
        secret = path("secret.bin")
        with open(secret, "wb") as f:
            f.write(b"x")
        os.chmod(secret, 0)
        p = compose("--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "x", "--attach", secret)
        check(p.returncode == 1 and b"Permission denied" in p.stderr and p.stdout == b"", p.stderr)
    # nothing on stdout either when an error comes up
    p = compose("--from", "ana@lab.test", "--to", "bob@lab.test", "--text", "x",
                "--attach", path("notas.txt"), "--attach", path("nope"))
    check(p.returncode == 1 and p.stdout == b"", "partial output before an error")


def test_dry_run_envelope():
    p = compose("--dry-run", "--from", "Ana <ana@lab.test>", "--to", "Bob <bob@lab.test>",
                "--cc", "carol@lab.test", "--bcc", "dave@lab.test, bob@lab.test", "--text", "x")
    out = p.stdout.decode()
    check(p.returncode == 0, p.stderr)
    for s in ("MAIL FROM:<ana@lab.test>", "RCPT TO:<bob@lab.test>", "RCPT TO:<carol@lab.test>",
              "RCPT TO:<dave@lab.test>", "From: Ana <ana@lab.test>", "To: Bob <bob@lab.test>",
              "Cc: carol@lab.test", "Bcc dave@lab.test"):
        check(s in out, f"dry-run lacks {s!r}:\n{out}")
    check(out.count("RCPT TO:<bob@lab.test>") == 1, "duplicate RCPT")
    check("Date:" not in out and "Content-Type" not in out, "dry-run wrote the message")


def test_hostile_files_do_not_crash_show():
    """10,000 nested multiparts and 10,000 nested message/rfc822: show and
    extract finish quickly, print a bounded tree, exit 0."""
    deep = path("deep.eml")
    with open(deep, "wb") as f:
        for i in range(10000):
            f.write(b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i))
        f.write(b"Content-Type: text/plain\r\n\r\ndeepest\r\n")
        for i in reversed(range(10000)):
            f.write(b"--b%d--\r\n" % i)
    rfc822 = path("deep822.eml")
    with open(rfc822, "wb") as f:
        f.write(b"Subject: level\r\nContent-Type: message/rfc822\r\n\r\n" * 10000 + b"Subject: x\r\n\r\nbody\r\n")
    for msg in (deep, rfc822):
        p = subprocess.run([MAILCLI, "show", msg], capture_output=True, timeout=30)
        check(p.returncode == 0, f"show {msg}: {p.returncode} {p.stderr[-500:]!r}")
        lines = [line for line in p.stdout.decode().splitlines() if line.strip()]
        check(20 < len(lines) < 60, f"{len(lines)} lines for a 10,000-level message")
        outdir = path("deep-out")
        os.makedirs(outdir, exist_ok=True)
        p = subprocess.run([MAILCLI, "extract", msg, "--dir", outdir], capture_output=True, timeout=30)
        check(p.returncode == 0, f"extract {msg}: {p.returncode}")


def peak_rss_mb(args):
    """Peak RSS of mailcli alone: GNU time's %M when installed, else VmHWM
    polled from /proc while it runs (ru_maxrss of a child forked by Python
    would count Python's own memory)."""
    if os.path.exists("/usr/bin/time"):
        p = subprocess.run(["/usr/bin/time", "-f", "%M", MAILCLI, *args], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, env=ENV, timeout=120)
        check(p.returncode == 0, p.stderr)
        return int(p.stderr.decode().strip().splitlines()[-1]) / 1024
    p = subprocess.Popen([MAILCLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV)
    hwm = 0
    while p.poll() is None:
        try:
            with open(f"/proc/{p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = max(hwm, int(line.split()[1]))
        except OSError:
            pass
        time.sleep(0.005)
    check(p.returncode == 0, p.stderr.read())
    check(hwm > 0, "could not sample the process's memory")
    return hwm / 1024


def test_streaming_memory():
    """Attachments of 8 and 64 MB: the same peak RSS (read in chunks, no whole copy)."""
    rss = {}
    for mb in (8, 64):
        big = path(f"big{mb}.bin")
        with open(big, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(mb):
                f.write(chunk)
        rss[mb] = peak_rss_mb(["compose", "--from", "ana@lab.test", "--to", "bob@lab.test",
                               "--text", "big", "--attach", big])
        os.unlink(big)
    print(f"  peak RSS: 8 MB attachment {rss[8]:.1f} MB, 64 MB attachment {rss[64]:.1f} MB")
    check(rss[64] - rss[8] < 4, f"memory grows with the attachment: {rss}")
    check(rss[64] < 48, f"peak RSS {rss[64]:.1f} MB for a 64 MB attachment")


if __name__ == "__main__":
    run([test_python_decodes_everything, test_long_subject_and_folding, test_crlf_and_line_lengths,
         test_text_only_and_html, test_munpack_extracts_same_bytes, test_show_and_extract_read_it_back,
         test_deterministic, test_injection_and_errors_refused, test_dry_run_envelope,
         test_hostile_files_do_not_crash_show, test_streaming_memory])
