"""Labelling an image source into an npz file (``bin/label.py``).

Everything is checked before the first answer is bought: the output path (its folder, and
that it replaces nothing kd_keras did not write), the source, the teacher, and that the
images not yet answered fit the budget. The budget's ledger lives in the answer cache and
holds across runs in the same workdir; the file is written beside its place and renamed in,
so a full disk or a kill never leaves half a file (the answers stay in the cache).
"""

from __future__ import annotations

import os
import zipfile
from typing import Optional

import numpy as np

from kd_keras.errors import DataError

MARK = "kd_keras_labels"  # an array every file written here carries, so a rerun may replace it


def output_path(output: str) -> str:
    """The npz path ``output`` names (a folder gets ``labels.npz``), checked for writing."""
    if os.path.isdir(output) or output.endswith(os.sep):
        output = os.path.join(output, "labels.npz")
    if not output.endswith(".npz"):
        output += ".npz"  # what np.savez would do silently
    folder = os.path.dirname(os.path.abspath(output))
    existing = folder
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise DataError(f"--output {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DataError(f"--output {output}: the folder {existing} is not writable")
    if os.path.lexists(output) and not _written_here(output):
        raise DataError(f"--output {output} already exists and was not written by kd_keras; "
                        "refusing to replace it: choose another --output or move it away")
    return output


def _written_here(path: str) -> bool:
    """Whether ``path`` is an npz this module wrote (it carries :data:`MARK`)."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            return MARK in saved.files
    except (OSError, ValueError, zipfile.BadZipFile, AttributeError):
        return False


def write_labels(output: str, images: np.ndarray, probs: np.ndarray) -> None:
    """Writes ``images``, ``probs`` and ``labels`` (their argmax) to ``output`` atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    partial = f"{output}.partial.npz"
    try:
        np.savez_compressed(partial, images=images, probs=probs, labels=probs.argmax(axis=1),
                            **{MARK: np.array(1)})
        os.replace(partial, output)
    except OSError as e:
        raise DataError(f"cannot write --output {output}: {e.strerror or e}; every answer is "
                        "kept in the cache, so running again pays for nothing") from None
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def label_to_npz(config, teacher_spec: str, images_spec: str, output: str, workdir: str,
                 token_env: Optional[str] = None, signature_name: Optional[str] = None) -> str:
    """Labels the source ``images_spec`` with the teacher into ``output``; returns its path.

    Answers are cached in ``WORKDIR/teacher_cache.sqlite``; ``config.query.budget`` counts
    every answer runs in ``workdir`` ever paid for.
    """
    from kd_keras import data
    from kd_keras.config import write_resolved
    from kd_keras.teachers import teacher_from_config
    from kd_keras.teachers.labelling import label_arrays
    from kd_keras.workdir import Workdir

    output = output_path(output)
    wd = Workdir(workdir)
    write_resolved(config, wd, teacher=teacher_spec, images=images_spec)
    source = data.load(images_spec, config.data.image_shape, seed=config.seed,
                       data_dir=config.data.data_dir or None)
    teacher = teacher_from_config(teacher_spec, config, wd.join("teacher_cache.sqlite"),
                                  token_env=token_env, signature_name=signature_name)
    teacher.open_ledger(f"label:{wd.path}", resume=True)
    teacher.check_affordable(source.images, f"--images {images_spec}")
    probs = label_arrays(source.images, teacher, images_spec)
    write_labels(output, source.images, probs)
    print(f"wrote {len(probs)} answers to {output}; teacher queries sent: "
          f"{teacher.stats.sent}, cache hits: {teacher.stats.cache_hits}"
          + (f"; {teacher.paid} of the budget of {teacher.budget} paid in {wd.path}"
             if teacher.budget else ""), flush=True)
    return output
