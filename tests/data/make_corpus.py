#!/usr/bin/env python3
"""make_corpus.py - how tests/data/{py,mpack,swaks}_*.eml were made (run once; the
files are committed, the unit tests read them). Attachment bytes follow
pattern(n, seed): byte i = (i * 31 + seed) & 0xff, so the C tests can check
them without storing copies. The hand_*.eml files are written by hand."""
import os
import subprocess
import sys
from email.message import EmailMessage
from email.mime.text import MIMEText
from email import policy

HERE = os.path.dirname(os.path.abspath(__file__))


def pattern(n, seed):
    return bytes(((i * 31 + seed) & 0xff) for i in range(n))


def write(name, msg):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(msg.as_bytes(policy=policy.SMTP))


def main():
    # 1. single text part, UTF-8 headers, quoted-printable
    m = EmailMessage()
    m["From"] = "Ana Luísa <ana@lab.test>"
    m["To"] = "Bob <bob@lab.test>"
    m["Subject"] = "Você gosta de chocolate?"
    m["Date"] = "Wed, 25 Nov 2026 20:00:00 -0300"
    m["Message-ID"] = "<simple.1@lab.test>"
    m.set_content("Olá Bob,\nTudo bem? Este é um teste de acentuação: ç ã õ é.\n",
                  cte="quoted-printable")
    write("py_simple.eml", m)

    # 2. text + html alternative, three attachments (non-ASCII and long names)
    m = EmailMessage()
    m["From"] = "João Araújo <joao@lab.test>"
    m["To"] = "Ana <ana@lab.test>, Bob <bob@lab.test>"
    m["Subject"] = ("Relatório das atividades do laboratório de redes de computadores "
                    "— versão revisada após a reunião de orientação")
    m["Date"] = "Wed, 25 Nov 2026 20:01:00 -0300"
    m["Message-ID"] = "<attach.2@lab.test>"
    m.set_content("Segue o relatório.\nAbraços,\nJoão\n")
    m.add_alternative("<p>Segue o <b>relatório</b>.</p>\n", subtype="html")
    m.add_attachment(pattern(5000, 1), maintype="application", subtype="pdf",
                     filename="relatório final.pdf")
    m.add_attachment(pattern(3000, 2), maintype="image", subtype="png", filename="foto.png")
    m.add_attachment(pattern(777, 3), maintype="application", subtype="octet-stream",
                     filename="dados das medições de latência e vazão do experimento "
                              "número três da disciplina de redes.bin")
    write("py_alternative_attachments.eml", m)

    # 3. a forwarded message (message/rfc822) that has its own attachment
    inner = EmailMessage()
    inner["From"] = "Carla <carla@lab.test>"
    inner["To"] = "João <joao@lab.test>"
    inner["Subject"] = "Dados originais"
    inner["Date"] = "Tue, 24 Nov 2026 10:00:00 -0300"
    inner.set_content("Os dados estão em anexo.\n")
    inner.add_attachment(pattern(1234, 4), maintype="text", subtype="csv", filename="dados.csv")
    m = EmailMessage()
    m["From"] = "João <joao@lab.test>"
    m["To"] = "Ana <ana@lab.test>"
    m["Subject"] = "Fwd: Dados originais"
    m["Date"] = "Wed, 25 Nov 2026 20:02:00 -0300"
    m.set_content("Veja abaixo.\n")
    m.add_attachment(inner)
    write("py_forward_rfc822.eml", m)

    # 4. ISO-8859-1 text, the legacy API
    t = MIMEText("Caf\xe9 com p\xe3o \xe0s tr\xeas horas.\n", "plain", "iso-8859-1")
    t["From"] = "ana@lab.test"
    t["To"] = "bob@lab.test"
    t["Subject"] = "=?iso-8859-1?q?Caf=E9?="
    with open(os.path.join(HERE, "py_latin1.eml"), "wb") as f:
        f.write(t.as_bytes())

    # 5. mpack (from mpack 1.6) of a binary file
    blob = os.path.join(HERE, "blob.bin")
    with open(blob, "wb") as f:
        f.write(pattern(3000, 5))
    out = os.path.join(HERE, "mpack_blob.eml")
    subprocess.run(["mpack", "-s", "mpack test", "-o", out, "blob.bin"], cwd=HERE, check=True)
    os.unlink(blob)


def swaks():
    """6. swaks 20201014's MIME (boundary "----=_MIME_BOUNDARY...", CTE "BASE64")."""
    att = os.path.join(HERE, "sw.bin")
    with open(att, "wb") as f:
        f.write(pattern(1500, 11))
    out = subprocess.run(["swaks", "--to", "bob@lab.test", "--from", "ana@lab.test",
                          "--header", "Subject: swaks attachment",
                          "--attach-type", "application/octet-stream", "--attach", "@" + att,
                          "--body", "swaks body", "--dump-mail"],
                         check=True, capture_output=True).stdout
    os.unlink(att)
    with open(os.path.join(HERE, "swaks_attachment.eml"), "wb") as f:
        f.write(out.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


if __name__ == "__main__":
    main() if "--swaks-only" not in sys.argv else None
    sys.exit(swaks())
