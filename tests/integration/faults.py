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


def mount_ext4(size_mb=32):
    """A fresh ext4 file system in an image file, loop-mounted with
    errors=remount-ro on a new temporary directory. Returns (mountpoint, image)."""
    d = tempfile.mkdtemp(prefix="correio-faults-")
    image = d + ".img"
    with open(image, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", image], check=True, capture_output=True, timeout=60)
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", image, d], check=True,
                   capture_output=True, timeout=30)
    _MOUNTS.append(d)
    atexit.register(lambda: os.path.exists(image) and os.unlink(image))
    return d, image


def ext4_error(mountpoint):
    """Make the kernel see an ext4 error on mountpoint: with errors=remount-ro
    it turns the file system read-only under everyone who has files open on it
    (what a failing disk does; a remount -o ro is refused while files are open
    for writing)."""
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt = line.split()[:2]
            if mnt == mountpoint:
                knob = f"/sys/fs/ext4/{os.path.basename(dev)}/trigger_fs_error"
                with open(knob, "w") as k:
                    k.write("1")
                return
    raise AssertionError(f"{mountpoint} is not mounted")


def remount_checked(mountpoint, image):
    """The recovery after ext4_error(): unmount, e2fsck, mount again."""
    subprocess.run(["umount", mountpoint], check=True, capture_output=True, timeout=30)
    p = subprocess.run(["e2fsck", "-f", "-y", image], capture_output=True, timeout=60)
    check(p.returncode in (0, 1), f"e2fsck: {p.returncode} {p.stdout} {p.stderr}")
    subprocess.run(["mount", "-o", "loop,errors=remount-ro", image, mountpoint], check=True,
                   capture_output=True, timeout=30)


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
            fd = os.open(store + suffix, os.O_RDONLY)
            os.fsync(fd)        # on disk before any fault the test makes
            os.close(fd)
    with open(lab.config) as f:
        conf = f.read()
    with open(lab.config, "w") as f:
        f.write(conf.replace(f"path = {lab.store}\n", f"path = {store}\n"))
    fd = os.open(mountpoint, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
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
    p = subprocess.run(["sqlite3", "-batch", lab.store, "SELECT (SELECT count(*) FROM messages),"
                        " (SELECT count(*) FROM mailbox), (SELECT count(*) FROM queue)"],
                       capture_output=True, text=True, timeout=30)
    check(p.returncode == 0, f"counting: {p.stderr}")
    return tuple(int(x) for x in p.stdout.strip().split("|"))


def alive(lab):
    for p in lab.procs:
        check(p.poll() is None, f"a daemon exited with {p.returncode}")
