#!/usr/bin/env python3
"""The store's file system turns read-only under the running daemons (issue 16).

The store lives on a loop-mounted ext4 image with errors=remount-ro; the test
makes the kernel see a file system error (ext4's trigger_fs_error), which is
what a failing disk does: from then on every write fails with EROFS, under
the daemons' open files. (A plain remount -o ro is refused while files are
open for writing, and chmod does not reach files already open, so neither
can happen under running daemons.) Then:
  - the final dot gets 451 4.3.0, never 250, and smtpd logs why;
  - pop3d still answers RETR; QUIT with deletions answers -ERR [SYS/TEMP]
    and deletes nothing; a new login is refused with -ERR [SYS/TEMP];
  - neither daemon crashes;
  - the documented recovery (stop the daemons, unmount, e2fsck, mount, start)
    gives a store that passes integrity_check with every acknowledged
    message, and mail flows again.
"""
import faulthandler
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from correio_test import Dialog, PASSWORDS, check, run  # noqa: E402
import faults  # noqa: E402

faulthandler.dump_traceback_later(200, exit=True)

MNT, IMAGE = faults.mount_ext4(32)
lab = faults.lab_on(MNT)
lab.start_smtpd()
lab.start_pop3d()


def send(d, body):
    d.smtp_start_data()
    d.send(f"Subject: ro\r\n\r\n{body}\r\n.\r\n")
    code, lines = d.smtp_reply()
    return code, " ".join(lines)


def test_read_only_store():
    d = lab.smtp_dialog()
    d.expect(250, "EHLO client.test")
    for i in range(3):
        code, text = send(d, f"acked {i}")
        check(code == 250, f"before: {text}")
    before = faults.counts(lab)

    pop = Dialog(lab.host, lab.pop3_port)
    pop.pop3()
    pop.pop3("USER bob")
    check(pop.pop3(f"PASS {PASSWORDS['bob']}").startswith("+OK"), "POP3 login")

    faults.ext4_error(MNT)

    code, text = send(d, "refused")
    check(code == 451 and "4.3.0" in text, f"final dot on a read-only store: {code} {text}")
    code, text = send(d, "z" * 998 + "\r\n" + ("z" * 998 + "\r\n") * 200)
    check(code == 451 and "4.3.0" in text, f"spooled body on a read-only store: {code} {text}")
    d.expect(250, "NOOP")

    check(pop.pop3("RETR 1").startswith("+OK"), "RETR on a read-only store")
    check("acked 0" in pop.pop3_multi(), "RETR text")
    check(pop.pop3("DELE 1").startswith("+OK"), "DELE")
    r = pop.pop3("QUIT")
    check(r.startswith("-ERR [SYS/TEMP]"), f"QUIT with deletions: {r}")
    pop.close()

    pop = Dialog(lab.host, lab.pop3_port)
    pop.pop3()
    pop.pop3("USER ana")
    r = pop.pop3(f"PASS {PASSWORDS['ana']}")
    check(r.startswith("-ERR [SYS/TEMP]"), f"login on a read-only store: {r}")
    pop.close()

    faults.alive(lab)
    check(lab.log_has("smtpd", "commit-failed"), "smtpd log: commit-failed")
    check(lab.log_has("pop3d", "op=expunge"), "pop3d log: expunge failed")
    d.send("QUIT\r\n")
    d.close()

    # The recovery: stop, unmount, e2fsck, mount, start.
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")
    lab.procs = []
    faults.remount_checked(MNT, IMAGE)
    faults.store_ok(lab)
    check(faults.counts(lab) == before, f"counts: {before} -> {faults.counts(lab)}")
    lab.start_smtpd()
    lab.start_pop3d()
    d = lab.smtp_dialog()
    d.expect(250, "EHLO client.test")
    code, text = send(d, "after")
    check(code == 250, f"after the recovery: {text}")
    d.close()
    pop = Dialog(lab.host, lab.pop3_port)
    pop.pop3()
    pop.pop3("USER bob")
    check(pop.pop3(f"PASS {PASSWORDS['bob']}").startswith("+OK"), "POP3 login after")
    check(pop.pop3("DELE 1").startswith("+OK"), "DELE after")
    r = pop.pop3("QUIT")
    check(r.startswith("+OK") and "1 message deleted" in r, f"QUIT after: {r}")
    pop.close()
    faults.store_ok(lab)
    lab.stop_checked(lab.smtpd, "smtpd")
    lab.stop_checked(lab.pop3d, "pop3d")


run([test_read_only_store])
