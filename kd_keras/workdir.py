"""A run's output folder, and the rule that a run never deletes what it did not make.

Every folder a kd_keras command writes to holds ``.kd_keras_run.json``, listing the
outputs (``student/``, ``checkpoints/``, ``teacher/`` …) a kd_keras run made there. An
output may be replaced only if it is on that list; a folder that already holds a file or
folder of the same name that kd_keras did not make is refused up front, before any
teacher answer is bought.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Iterable

from kd_keras.errors import DataError

MARKER = ".kd_keras_run.json"


class Workdir:
    """The folder of one run: checked writable, marked as kd_keras's, outputs tracked.

    Args:
      path: the folder; created if missing. A path that is a file, or a folder this
        process cannot write to, is a DataError naming it.
    """

    def __init__(self, path: str):
        if not path:
            raise DataError("--workdir must name a folder")
        self.path = os.path.abspath(path)
        if os.path.exists(self.path) and not os.path.isdir(self.path):
            raise DataError(f"--workdir {path} is a file, not a folder")
        try:
            os.makedirs(self.path, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create --workdir {path}: {e.strerror}") from None
        if not os.access(self.path, os.W_OK | os.X_OK):
            raise DataError(f"--workdir {path} is not writable")
        self._marker = os.path.join(self.path, MARKER)
        self.made = self._read_marker()
        self._write_marker()

    def _read_marker(self) -> list[str]:
        if not os.path.exists(self._marker):
            return []
        try:
            with open(self._marker) as f:
                return list(json.load(f).get("made", []))
        except (OSError, ValueError, AttributeError):
            raise DataError(f"{self._marker} is unreadable; it records what kd_keras made in "
                            "this folder: restore it or choose another --workdir") from None

    def _write_marker(self) -> None:
        try:
            with open(self._marker, "w") as f:
                json.dump({"made": sorted(set(self.made))}, f, indent=1)
        except OSError as e:
            raise DataError(f"cannot write in --workdir {self.path}: {e.strerror}") from None

    def join(self, *parts: str) -> str:
        """A path inside the folder."""
        return os.path.join(self.path, *parts)

    def owns(self, name: str) -> bool:
        """Whether ``name`` (a top-level entry) is absent or was made by a kd_keras run."""
        return name in self.made or not os.path.lexists(self.join(name))

    def check_outputs(self, names: Iterable[str]) -> None:
        """Refuses, before any work, if an output would replace something kd_keras did not make."""
        foreign = [n for n in names if not self.owns(n)]
        if foreign:
            raise DataError(f"--workdir {self.path} already holds {', '.join(foreign)}, not made "
                            "by kd_keras; refusing to replace it: choose a new --workdir or "
                            "move it away")

    def claim(self, name: str) -> str:
        """Records that this run makes ``name`` and returns its path (refused if foreign)."""
        self.check_outputs([name])
        if name not in self.made:
            self.made.append(name)
            self._write_marker()
        return self.join(name)

    def remove(self, name: str) -> None:
        """Deletes output ``name`` if a kd_keras run made it; anything else is refused."""
        self.check_outputs([name])
        path = self.join(name)
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.remove(path)

    def replace_dir(self, name: str, write) -> str:
        """Writes folder ``name`` by ``write(tmp_path)`` into a fresh folder beside it, then
        swaps it in, so the old output survives a failed write. Returns the path."""
        target = self.claim(name)
        tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=self.path)
        os.rmdir(tmp)  # writers such as SavedModel export want to create the folder
        try:
            write(tmp)
            self.remove(name)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                shutil.rmtree(tmp)
        return target
