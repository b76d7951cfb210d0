"""A persistent answer cache (SQLite) keyed by the image bytes and the teacher's identity,
so no image is ever paid for twice — across crashes, resumes, experiments and processes.

Besides answers it keeps two small tables: a *ledger* of what each run paid (so a budget
holds across ``--resume``), and *claims* on images being bought right now (so a second
process sharing the file waits for the first one's answer instead of buying it again; a
claim whose process died, or that is older than its lifetime, expires).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import sqlite3
import threading
import time
from typing import Iterator, Optional, Sequence

import numpy as np

from kd_keras.errors import TeacherError

OWNER = f"{socket.gethostname()}:{os.getpid()}"


def image_keys(images: np.ndarray, teacher_identity: str) -> list[str]:
    """One hex key per image: sha256 of the teacher identity, shape and float32 bytes."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    prefix = f"{teacher_identity}|{images.shape[1:]}|".encode()
    return [hashlib.sha256(prefix + im.tobytes()).hexdigest() for im in images]


def _alive(owner: str) -> bool:
    """Whether the process that made a claim may still be running (always, on other hosts)."""
    host, _, pid = owner.rpartition(":")
    if host != socket.gethostname():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, ValueError):
        return False
    except PermissionError:
        return True
    return True


LOCK_SECONDS = 60.0  # how long opening or writing waits for another process holding the file


def _use_wal(db: sqlite3.Connection) -> None:
    """Puts the file in WAL mode (readers and one writer at once, across processes).

    SQLite answers this PRAGMA "database is locked" at once, without its busy timeout, while
    another process opens the same new file (measured: 19 of 30 simultaneous openings by two
    processes failed; it ended a two-worker run): retry until ``LOCK_SECONDS`` have passed.
    """
    deadline = time.monotonic() + LOCK_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class AnswerCache:
    """Maps image keys to probability vectors; every write is committed at once.

    Args:
      path: the SQLite file (created if missing), or None for memory only.
      claim_seconds: how long a claim on images in flight lasts without an answer.
    """

    def __init__(self, path: Optional[str], claim_seconds: float = 600.0):
        self.path = path or ":memory:"
        self.claim_seconds = float(claim_seconds)
        self._lock = threading.Lock()
        try:
            if path:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False,
                                       timeout=LOCK_SECONDS)
            tables = {r[0] for r in self._db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            if tables and "answers" not in tables:
                self._db.close()
                raise TeacherError(f"{self.path} is an SQLite file that kd_keras did not write "
                                   f"(its tables: {', '.join(sorted(tables))}); refusing to "
                                   "use it as the answer cache: move it away or give --cache")
            _use_wal(self._db)
            self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, probs BLOB)")
            self._db.execute("CREATE TABLE IF NOT EXISTS ledger (run TEXT PRIMARY KEY, paid INTEGER)")
            self._db.execute("CREATE TABLE IF NOT EXISTS claims "
                             "(key TEXT PRIMARY KEY, owner TEXT, expires REAL)")
            self._db.commit()
        except (sqlite3.Error, OSError) as e:
            raise TeacherError(f"cannot open the answer cache {self.path}: {e} (is it an "
                               "SQLite file kd_keras wrote? move it away to start a new one)") from None

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One committed write transaction; a full disk (or any SQLite failure) is one clear
        error, and everything committed before it stays."""
        try:
            with self._lock, self._db:
                yield
        except sqlite3.Error as e:
            raise TeacherError(f"cannot write to the answer cache {self.path}: {e}; every "
                               "answer stored before is kept (free disk space, then run "
                               "again: nothing stored is paid twice)") from None

    def _select(self, sql: str, keys: Sequence[str]) -> list:
        rows = []
        for i in range(0, len(keys), 500):  # SQLite caps bound parameters
            chunk = list(keys[i:i + 500])
            rows += self._db.execute(sql.format(",".join("?" * len(chunk))), chunk).fetchall()
        return rows

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached answers among ``keys``."""
        unique = list(dict.fromkeys(keys))
        with self._lock:
            rows = self._select("SELECT key, probs FROM answers WHERE key IN ({})", unique)
        return {k: np.frombuffer(v, np.float32) for k, v in rows}

    def put_many(self, keys: Sequence[str], probs: np.ndarray) -> None:
        """Stores answers (dropping their claims) in one committed transaction, so a crash
        right after loses nothing paid for."""
        probs = np.asarray(probs, np.float32)
        with self._writing():
            self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?)",
                                 [(k, p.tobytes()) for k, p in zip(keys, probs)])
            self._db.executemany("DELETE FROM claims WHERE key = ?", [(k,) for k in keys])

    def add_paid(self, run: str, n: int) -> None:
        """Adds ``n`` (negative: a refund) to ``run``'s ledger, committed at once: images are
        entered as paid *before* they are sent, so no kill, crash or refused answer lets a
        run pay for more than its ledger says."""
        with self._writing():
            self._db.execute("INSERT INTO ledger VALUES (?, ?) ON CONFLICT(run) DO UPDATE "
                             "SET paid = paid + excluded.paid", (run, int(n)))

    def paid(self, run: str) -> int:
        """Answers ``run`` has paid for so far (0 for a run never seen)."""
        with self._lock:
            row = self._db.execute("SELECT paid FROM ledger WHERE run = ?", (run,)).fetchone()
        return int(row[0]) if row else 0

    def reset_ledger(self, run: str) -> None:
        """Starts ``run``'s ledger at zero (a new run in the same folder)."""
        with self._writing():
            self._db.execute("DELETE FROM ledger WHERE run = ?", (run,))

    def claim(self, keys: Sequence[str], owner: str = OWNER) -> tuple[list[str], list[str]]:
        """Claims the unanswered ``keys`` for ``owner``; returns (claimed, held by others).

        A claim of a dead process, or one past its lifetime, is taken over."""
        now = time.time()
        unique = list(dict.fromkeys(keys))
        with self._writing():
            held = {k: (o, e) for k, o, e in self._select(
                "SELECT key, owner, expires FROM claims WHERE key IN ({})", unique)}
            stale = [k for k, (o, e) in held.items()
                     if o != owner and (e < now or not _alive(o))]
            others = [k for k, (o, _) in held.items() if o != owner and k not in stale]
            mine = [k for k in unique if k not in others]
            self._db.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?)",
                                 [(k, owner, now + self.claim_seconds) for k in mine])
        return mine, others

    def release(self, keys: Sequence[str], owner: str = OWNER) -> None:
        """Drops ``owner``'s claims on ``keys`` (their purchase failed)."""
        with self._writing():
            self._db.executemany("DELETE FROM claims WHERE key = ? AND owner = ?",
                                 [(k, owner) for k in keys])

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
