"""A persistent answer cache (SQLite) keyed by the image bytes and the teacher's identity,
so no image is ever paid for twice — across crashes, resumes and experiments."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from typing import Optional, Sequence

import numpy as np


def image_keys(images: np.ndarray, teacher_identity: str) -> list[str]:
    """One hex key per image: sha256 of the teacher identity, shape and float32 bytes."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    prefix = f"{teacher_identity}|{images.shape[1:]}|".encode()
    return [hashlib.sha256(prefix + im.tobytes()).hexdigest() for im in images]


class AnswerCache:
    """Maps image keys to probability vectors; every write is committed at once."""

    def __init__(self, path: Optional[str]):
        self.path = path or ":memory:"
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS answers (key TEXT PRIMARY KEY, probs BLOB)")
        self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached answers among ``keys``."""
        found: dict[str, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for i in range(0, len(unique), 500):  # SQLite caps bound parameters
                chunk = unique[i:i + 500]
                rows = self._db.execute(
                    f"SELECT key, probs FROM answers WHERE key IN ({','.join('?' * len(chunk))})",
                    chunk).fetchall()
                found.update((k, np.frombuffer(v, np.float32)) for k, v in rows)
        return found

    def put_many(self, keys: Sequence[str], probs: np.ndarray) -> None:
        """Stores answers and commits, so a crash right after loses nothing paid for."""
        probs = np.asarray(probs, np.float32)
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO answers VALUES (?, ?)",
                                 [(k, p.tobytes()) for k, p in zip(keys, probs)])
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
