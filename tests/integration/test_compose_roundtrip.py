#!/usr/bin/env python3
"""Randomised round trips between mailcli and Python's email package, both
ways, with a fixed seed (so a failure replays):

  compose -> email (policy=default): subject, display names, text and every
  attachment (name and bytes) come back as given, for subjects and names
  mixing ASCII, Portuguese, other scripts and emoji, of every length, and
  bodies with long lines, trailing spaces and '=' signs;

  email (policy=SMTP) -> mailcli show / extract: the decoded subject, and
  every attachment's name and bytes (Python writes RFC 2231 names,
  quoted-printable and base64 its own way).

Python's header folder has known faults (a space between two encoded words,
a character split across words, a fold inside an encoded word); the subject
is therefore compared with an RFC 2047 reading of the bytes Python wrote, and
not compared when Python broke an encoded word. ROUNDTRIP_SEED and
ROUNDTRIP_CASES change the sample (seeds 1-5 x 150 cases pass too).
"""
import email
import email.header
import email.policy
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
from email.message import EmailMessage

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import MAILCLI, check, run, workdir  # noqa: E402

TMP = workdir("correio-roundtrip-")
ENV = dict(os.environ)
ENV.pop("SOURCE_DATE_EPOCH", None)
SEED = int(os.environ.get("ROUNDTRIP_SEED", "20261125"))
CASES = int(os.environ.get("ROUNDTRIP_CASES", "40"))

WORDS = ["você", "gosta", "de", "chocolate?", "relatório", "laboratório", "ação", "não",
         "à", "três", "pão", "coração", "Ελληνικά", "日本語", "русский", "😀", "🍫", "a=b",
         "=?utf-8?Q?x?=", "_under_", "\"quoted\"", "tab\there", "x" * 60, "São", "Paulo",
         "redes", "de", "computadores", "—", "ç", "(paren)", "<angle>", "comma,", "semi;"]


def sha(b):
    return hashlib.sha256(b).hexdigest()


def phrase(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def safe_name(rng, i):
    """A file name mailcli keeps as it is: no separators, no leading dot or
    dash, no control characters, no trailing dot/space, no ';' (our --attach
    syntax), unique (the index), at most ~150 bytes."""
    words = [w for w in WORDS if not any(c in w for c in "/\\;\t\"<>")]
    base = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
    base = base.replace("=?", "=").lstrip(".- ")
    name = f"{i:02d} {base}"[:120].rstrip(". ") + rng.choice([".bin", ".pdf", ".txt", ".tar.gz", ""])
    return name


def body(rng):
    lines = []
    for _ in range(rng.randint(0, 12)):
        kind = rng.random()
        if kind < 0.2:
            lines.append(phrase(rng, 20, 40))           # long line
        elif kind < 0.3:
            lines.append(phrase(rng, 1, 5) + "   ")      # trailing spaces
        elif kind < 0.35:
            lines.append("From " + phrase(rng, 1, 3))
        elif kind < 0.4:
            lines.append("")
        else:
            lines.append(phrase(rng, 1, 8))
    text = "\n".join(lines)
    return text + ("\n" if rng.random() < 0.8 else "")


def raw_header_bytes(raw, name):
    head = raw.split(b"\r\n\r\n", 1)[0].decode().replace("\r\n ", " ")
    for line in head.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return None


def test_compose_to_python():
    rng = random.Random(SEED)
    exact_names = 0
    for case in range(CASES):
        subject = phrase(rng, 1, 40).replace("\t", " ")
        sender = phrase(rng, 1, 3).replace("\t", " ").replace("\"", "'")
        text = body(rng).replace("\t", " ")
        atts = []
        for k in range(rng.randint(0, 3)):
            data = rng.randbytes(rng.choice([0, 1, 2, 3, 57, 76, 1000, rng.randint(0, 20000)]))
            name = safe_name(rng, k)
            p = os.path.join(TMP, f"a{case}_{k}")
            with open(p, "wb") as f:
                f.write(data)
            atts.append((name, data, p))
        args = [MAILCLI, "compose", "--from", f"\"{sender}\" <ana@lab.test>", "--to", "bob@lab.test",
                "--subject", subject, "--text", text]
        for name, _, p in atts:
            args += ["--attach", f"{p};name={name};type=application/octet-stream"]
        r = subprocess.run(args, capture_output=True, timeout=60, env=ENV)
        check(r.returncode == 0, f"case {case}: {r.stderr!r}")
        raw = r.stdout
        for line in raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
            check(len(line) <= 78, f"case {case}: header line of {len(line)}")
            check(b"=?" not in line or len(line) <= 76, f"case {case}: encoded-word line of {len(line)}")
        m = email.message_from_bytes(raw, policy=email.policy.default)
        check(str(m["subject"]) == subject, f"case {case}: subject {str(m['subject'])!r} != {subject!r}")
        # A run of non-ASCII words too long for one encoded word must be split
        # into adjacent words; RFC 2047 6.2 readers join them, Python's phrase
        # parser puts a space between: then check the RFC reading instead.
        got_name = m["from"].addresses[0].display_name
        if got_name == sender:
            exact_names += 1
        else:
            phrase_raw = raw_header_bytes(raw, "From").rsplit("<", 1)[0].strip()
            rfc = str(email.header.make_header(email.header.decode_header(phrase_raw)))
            check(rfc == sender, f"case {case}: from {got_name!r} / RFC {rfc!r} != {sender!r}")
        got = m.get_body(("plain",))
        if text or not atts:
            check(got is not None and got.get_content().replace("\r\n", "\n") == text,
                  f"case {case}: text {got.get_content() if got else None!r} != {text!r}")
        found = {a.get_filename(): a.get_payload(decode=True) for a in m.iter_attachments()}
        check(sorted(found) == sorted(n for n, _, _ in atts), f"case {case}: names {sorted(found)}")
        for name, data, p in atts:
            check(sha(found[name]) == sha(data), f"case {case}: bytes of {name!r}")
            os.unlink(p)
    print(f"  {exact_names} of {CASES} display names read back unchanged by Python's phrase parser")
    check(exact_names >= CASES * 3 // 4, "most display names should suit Python too")


def raw_header(path, name):
    """The header field as written, unfolded (CRLF removed), value only."""
    with open(path, "rb") as f:
        head = f.read().split(b"\r\n\r\n", 1)[0].decode()
    out, cur = [], None
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t") and cur is not None:
            cur += line
        else:
            if cur is not None:
                out.append(cur)
            cur = line
    out.append(cur)
    for field in out:
        if field.lower().startswith(name.lower() + ":"):
            return field.split(":", 1)[1].strip()
    return None


def rfc2047_reading(value):
    """RFC 2047 decoding by Python's legacy decoder, with the bytes of
    adjacent words in one charset joined before decoding (Python's writer
    sometimes splits a character across two words)."""
    merged = []
    for data, charset in email.header.decode_header(value):
        if isinstance(data, str):
            data = data.encode()
        if merged and merged[-1][1] == charset:
            merged[-1][0] += data
        else:
            merged.append([data, charset])
    return "".join(d.decode(c or "utf-8", "replace") for d, c in merged)


def test_python_to_mailcli():
    rng = random.Random(SEED + 1)
    exact = broken = 0
    for case in range(CASES):
        m = EmailMessage()
        m["From"] = "Ana <ana@lab.test>"
        m["To"] = "bob@lab.test"
        # Python decodes "=?...?=" found in the text it is given (its own
        # round trip changes it), so that word is left to the other direction
        subject = phrase(rng, 1, 30).replace("\t", " ").replace("=?utf-8?Q?x?=", "=?")
        m["Subject"] = subject
        m.set_content(body(rng) or "x\n", cte=rng.choice(["quoted-printable", "base64", "8bit"]))
        atts = {}
        for k in range(rng.randint(1, 4)):
            name = safe_name(rng, k)
            data = rng.randbytes(rng.randint(0, 30000))
            atts[name] = data
            m.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
        msg = os.path.join(TMP, f"py{case}.eml")
        with open(msg, "wb") as f:
            f.write(m.as_bytes(policy=email.policy.SMTP))
        r = subprocess.run([MAILCLI, "show", msg], capture_output=True, timeout=60)
        check(r.returncode == 0, f"case {case}: show {r.stderr!r}")
        # Python's folder sometimes writes what RFC 2047 reads differently
        # (a space between two encoded words, which 6.2 drops; a space before
        # a fold, which unfolding keeps). Expect what an RFC 2047 reader
        # makes of the bytes written: Python's own legacy decoder.
        head = raw_header(msg, "Subject")
        expected = rfc2047_reading(head)
        subj_line = [line for line in r.stdout.decode().splitlines() if line.startswith("Subject")]
        starts = re.findall(r"=\?[\w.*-]+\?[bBqQ]\?", head)
        whole = re.findall(r"=\?[\w.*-]+\?[bBqQ]\?[^\s?]*\?=", head)
        if len(starts) != len(whole):
            broken += 1	# Python folded inside an encoded word: no right answer
        else:
            check(subj_line == ["Subject  " + expected], f"case {case}: {subj_line} != {expected!r}")
        if expected == subject:
            exact += 1
        out = os.path.join(TMP, f"x{case}")
        r = subprocess.run([MAILCLI, "extract", msg, "--dir", out], capture_output=True, timeout=60)
        check(r.returncode == 0, f"case {case}: extract {r.stdout!r} {r.stderr!r}")
        got = sorted(os.listdir(out))
        check(got == sorted(atts), f"case {case}: files {got} != {sorted(atts)}")
        for name, data in atts.items():
            with open(os.path.join(out, name), "rb") as f:
                check(sha(f.read()) == sha(data), f"case {case}: bytes of {name!r}")
        shutil.rmtree(out)
        os.unlink(msg)
    print(f"  {exact} of {CASES} subjects were written by Python so that they read back unchanged;"
          f" {broken} had an encoded word broken by Python's folder (not compared)")
    check(exact >= CASES // 2, "most subjects should round-trip")


if __name__ == "__main__":
    run([test_compose_to_python, test_python_to_mailcli])
