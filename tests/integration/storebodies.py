"""The message bodies of a SQLite store, read as an independent reader
(Python's sqlite3 and plain files) would: a body stored apart (its row's body
empty, its size above 0) is the file <store>-bodies/<id> (the store's own
reader is common/store_sqlite_bodies.c)."""

import os


def message_bodies(db, store_path, where=""):
    """(id, size, body) of every message of the store at store_path, open
    as the sqlite3 connection db; body is None when a body stored apart has
    no file."""
    for mid, size, body in db.execute("SELECT id, size, body FROM messages " + where):
        body = bytes(body)
        if not body and size > 0:
            try:
                with open(os.path.join(store_path + "-bodies", str(mid)), "rb") as f:
                    body = f.read()
            except FileNotFoundError:
                body = None
        yield mid, size, body
