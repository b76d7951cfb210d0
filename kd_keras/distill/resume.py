"""Resuming a run: what its labelled set depends on (the manifest), checked on --resume."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from kd_keras.config import SETTINGS
from kd_keras.data import ImageSet
from kd_keras.data.rows import unit_float
from kd_keras.distill.unpaid import labeller_model
from kd_keras.errors import ConfigError, DataError

# Config sections the labelled training set, the first students' kept answers and the
# student checkpoints depend on: a resumed run with other values would train on a stale
# selection or crash.
MANIFEST_SECTIONS = ("seed", "data", "query", "synthesis", "selection", "mixup", "cutmix",
                     "cvae", "student", "unpaid", "primer")
MANIFEST_SKIP = ("data.train", "data.test", "data.data_dir", "query.batch_size",
                 "query.concurrency", "query.budget", "query.max_tries",
                 "query.backoff_seconds", "query.timeout_seconds", "student.epochs",
                 "unpaid.factor")  # the manifest holds the count it resolved to


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, dict) else {key: v})
    return out


def manifest(config, unlabeled: ImageSet, teacher) -> dict:
    """What the run's training set depends on: settings, the real images, the teacher."""
    settings = _flatten({k: config.to_dict()[k] for k in MANIFEST_SECTIONS})
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in settings.items()
                if k not in MANIFEST_SKIP}
    digest = hashlib.sha256()  # in chunks, as float32 whatever the store's dtype
    for i in range(0, len(unlabeled), 1024):
        digest.update(np.ascontiguousarray(unit_float(unlabeled.images[i:i + 1024])).tobytes())
    settings["unlabeled.images"] = f"{len(unlabeled)} images, sha256 {digest.hexdigest()[:16]}"
    settings["teacher"] = teacher.identity
    # "teacher" names teacher.model; no labeller without unpaid images
    settings["unpaid.model"] = labeller_model(config) if config.unpaid.count else ""
    if not settings["unpaid.model"]:  # unpaid.epochs acts on first students of another model
        settings["unpaid.epochs"] = 0  # only: elsewhere what a run before it did
    return settings


# Settings whose default has changed since runs whose manifests lack them began: what those
# runs did (no unpaid images, so no first student's model; first students trained as the
# student, unpaid.epochs=0, until the default became -1 on 2026-12-05).
OLD_DEFAULTS = {"unpaid.count": 0, "unpaid.students": 1, "unpaid.model": "", "unpaid.epochs": 0}


def changed_settings(saved: dict, current: dict) -> list[str]:
    """The manifest's keys whose values differ. A setting the saved manifest lacks (added to
    kd_keras after that run began) is no change while it holds the default of that time
    (:data:`OLD_DEFAULTS`, else today's): the run did what the default did."""
    defaults = {s.field: list(s.default) if isinstance(s.default, tuple) else s.default
                for s in SETTINGS}
    defaults.update(OLD_DEFAULTS)
    return sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k)
                  and not (k not in saved and k in defaults and current[k] == defaults[k]))


def saved_value(saved: dict, key: str) -> str:
    """What the run's manifest holds for ``key``, as an error names it: for a setting added
    after the run began, the value it ran with (:data:`OLD_DEFAULTS`) where known."""
    if key in saved:
        return repr(saved[key])
    return f"{OLD_DEFAULTS[key]!r} (begun before the setting)" if key in OLD_DEFAULTS else "unset"


def check_resume(ctx, current: dict) -> None:
    """On --resume, refuses a config that differs from the run's in what matters; otherwise
    records the run's manifest (``WORKDIR/training_set.json``)."""
    path = ctx.workdir.claim("training_set.json")
    if ctx.resume:
        try:
            with open(path) as f:
                saved = json.load(f)
        except FileNotFoundError:
            saved = None
        except (OSError, ValueError):
            raise DataError(f"{path} is unreadable; run without --resume to start over") from None
        if saved is not None:
            changed = changed_settings(saved, current)
            if changed:
                detail = "; ".join(f"{k}: {saved_value(saved, k)} -> {current.get(k)!r}"
                                   for k in changed[:6])
                raise ConfigError(f"--resume with settings that differ from the run in "
                                  f"{ctx.workdir.path}: {detail}; use the original settings, "
                                  "or another --workdir for a new run")
            return
    with open(path, "w") as f:
        json.dump(current, f, indent=1, sort_keys=True)
