"""Helpers for the fault tests (test_faults_*.py): a lab whose store lives on
a small tmpfs of its own (the tests run as root), a filler that uses up its
space, and the store invariants every fault test checks afterwards.

Every mount is undone at exit, even when a test fails (atexit, registered
before the lab's own clean-up so that it runs after the daemons are stopped).
"""
import atexit
import os
import shutil
import subprocess
import tempfile

from correio_test import Lab, check

_MOUNTS = []


def _umount_all():
    for m in reversed(_MOUNTS):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)
        shutil.rmtree(m, ignore_errors=True)


atexit.register(_umount_all)


def mount_tmpfs(size="8m"):
    """A fresh tmpfs of size, mounted on a new temporary directory."""
    d = tempfile.mkdtemp(prefix="correio-faults-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", d],
                   check=True, capture_output=True, timeout=30)
    _MOUNTS.append(d)
    return d


def lab_on(mountpoint, **kw):
    """A Lab (accounts ana and bob) whose store is moved onto mountpoint; its
    config and the daemons' logs stay on the ordinary disk, so that they can
    still be written when the store's file system is full."""
    lab = Lab(**kw)
    store = os.path.join(mountpoint, "correio.db")
    lab.sql("PRAGMA wal_checkpoint(TRUNCATE)")
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(lab.store + suffix):
            shutil.copy2(lab.store + suffix, store + suffix)
            os.unlink(lab.store + suffix)
    with open(lab.config) as f:
        conf = f.read()
    with open(lab.config, "w") as f:
        f.write(conf.replace(f"path = {lab.store}\n", f"path = {store}\n"))
    lab.store = store
    return lab


def fill(mountpoint, name="filler"):
    """Write a file until the file system is full. Returns its path."""
    path = os.path.join(mountpoint, name)
    chunk = b"\0" * 65536
    with open(path, "ab", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError:
            pass
        try:
            while True:
                f.write(b"\0" * 512)
        except OSError:
            pass
    st = os.statvfs(mountpoint)
    check(st.f_bavail * st.f_frsize < 8192, f"{mountpoint} not full: {st.f_bavail} blocks free")
    return path


def store_ok(lab):
    """PRAGMA integrity_check and foreign keys of the store, read by sqlite3."""
    out = lab.sql("PRAGMA integrity_check").decode().strip()
    check(out == "ok", f"integrity_check: {out}")
    out = lab.sql("PRAGMA foreign_key_check").decode().strip()
    check(out == "", f"foreign_key_check: {out}")


def counts(lab):
    """(messages, mailbox entries, queue items) in the store."""
    return (lab.count("messages"), lab.count("mailbox"), lab.count("queue"))


def alive(lab):
    for p in lab.procs:
        check(p.poll() is None, f"a daemon exited with {p.returncode}")
