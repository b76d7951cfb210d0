"""The student's labelled training set, held compactly and streamed.

Each part (the real images, each generator's images) is a :class:`Candidates`: a recipe
(pairs, weights, boxes over the one array of real images) or rows of stored images
(uint8, on disk or in memory), beside the teacher's answers. The student's tf.data
pipeline shuffles indices, not images, and makes each batch's images as it goes, so a
run's memory does not grow with its budget. What a worker needs to make the same set
again is written with :meth:`LabelledSet.publish` and read with :meth:`LabelledSet.read`
through ``tf.io.gfile`` (local disk, GCS, HDFS).
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
from typing import Iterator, Optional

import numpy as np
import tensorflow as tf

from kd_keras.data.rows import ImageRows, unit_float, unit_float_tensor, write_npy
from kd_keras.synthesis.base import ArrayCandidates, Candidates, IndexedCandidates


@dataclasses.dataclass
class Part:
    """One labelled part: its images (made on demand) and the teacher's answers to them."""

    candidates: Candidates
    targets: np.ndarray
    generator: str = ""  # the generator whose recipe the candidates are ("" for stored rows)
    repeat: int = 1  # times the part appears in each student epoch (answers paid once)

    def __post_init__(self):
        self.targets = np.asarray(self.targets, np.float32)
        if len(self.targets) != len(self.candidates):
            raise ValueError(f"{len(self.candidates)} images but {len(self.targets)} answers")

    def __len__(self) -> int:
        return len(self.candidates)


def real_part(real: ImageRows, targets: np.ndarray, repeat: int = 1) -> Part:
    """The real images as a part (rows of the one real array)."""
    return Part(ArrayCandidates(real), targets, "", repeat)


class LabelledSet:
    """Named parts, in order; see the module doc."""

    def __init__(self, parts: dict[str, Part], agreement: Optional[dict] = None):
        self.parts = dict(parts)
        # the teacher's verdicts on augmented copies (kd_keras.distill.augment_check)
        self.agreement = dict(agreement or {})
        self._held: Optional[np.ndarray] = None  # see held()

    @classmethod
    def of_arrays(cls, images: np.ndarray, targets: np.ndarray, name: str = "images"
                  ) -> "LabelledSet":
        """One part of images held as they are (e.g. a probe's or a test's set)."""
        return cls({name: Part(ArrayCandidates(images), targets)})

    def __len__(self) -> int:
        """Images in one student epoch (repeats counted)."""
        return sum(len(p) * p.repeat for p in self.parts.values())

    def sizes(self) -> dict[str, int]:
        """Labelled images per part (repeats not counted)."""
        return {name: len(p) for name, p in self.parts.items()}

    def with_part(self, name: str, part: Part) -> "LabelledSet":
        return LabelledSet({**self.parts, name: part}, self.agreement)

    def _layout(self) -> tuple[list[Part], np.ndarray]:
        parts = [p for p in self.parts.values() if len(p)]
        return parts, np.cumsum([0] + [len(p) for p in parts])

    def targets(self) -> np.ndarray:
        """Every part's answers, in order (repeats not counted)."""
        parts = [p.targets for p in self.parts.values()]
        return np.concatenate(parts) if parts else np.zeros((0, 0), np.float32)

    def _make(self, index: tf.Tensor) -> tf.Tensor:
        """The images at global ``index`` (parts laid end to end), float32 in [0, 1]."""
        parts, offsets = self._layout()
        index = tf.cast(index, tf.int64)
        positions, pieces = [], []
        for part, start, stop in zip(parts, offsets[:-1], offsets[1:]):
            where = tf.where((index >= start) & (index < stop))[:, 0]
            positions.append(tf.cast(where, tf.int32))
            pieces.append(part.candidates.make(tf.gather(index, where) - start))
        return tf.dynamic_stitch(positions, pieces)

    def _epoch_order(self) -> np.ndarray:
        parts, offsets = self._layout()
        return np.concatenate([np.tile(np.arange(start, stop), part.repeat)
                               for part, start, stop in zip(parts, offsets[:-1], offsets[1:])]
                              or [np.zeros(0, np.int64)]).astype(np.int64)

    def _numpy_empties(self) -> Optional[list[np.ndarray]]:
        """Each part's empty NumPy batch, or None when some part is made only in TF."""
        empty = [p.candidates.make_numpy(np.zeros(0, np.int64)) for p in self._layout()[0]]
        return empty if all(x is not None for x in empty) else None

    def held(self, most_bytes: int) -> Optional[np.ndarray]:
        """Every image of the set (repeats not counted) made once, as uint8 when every part
        is 8-bit, if every part can be made in NumPy and they fit in ``most_bytes``; else
        None. Made part by part in chunks, once per set."""
        empty = self._numpy_empties()
        if not empty:  # a part made only in TF, or no images at all
            return None
        dtype = np.uint8 if all(x.dtype == np.uint8 for x in empty) else np.float32
        shape = (sum(len(p) for p in self.parts.values()), *empty[0].shape[1:])
        if int(np.prod(shape)) * np.dtype(dtype).itemsize > most_bytes:
            return None
        if self._held is None:
            parts, offsets = self._layout()
            held = np.empty(shape, dtype)
            for part, start in zip(parts, offsets[:-1]):
                for i in range(0, len(part), 4096):
                    made = part.candidates.make_numpy(np.arange(i, min(i + 4096, len(part))))
                    held[start + i:start + i + len(made)] = (
                        made if dtype == np.uint8 else unit_float(made))
            self._held = held
        return self._held

    def dataset(self, batch_size: int, seed: int, shuffle: bool = True,
                hold_bytes: int = 0) -> tf.data.Dataset:
        """(images, answers) batches of one epoch, reshuffled every epoch; the shuffle
        buffer holds positions. A set of at most ``hold_bytes`` is made once and its rows
        read by position (:meth:`held`); a larger one makes each batch's images when it is
        drawn. No array of the set enters the graph: indices, images and answers are read
        through ``tf.numpy_function``.

        Autotuning is off, as in :func:`kd_keras.data.epochs.epoch_batches` (why: there)."""
        order, targets = self._epoch_order(), self.targets()
        held = self.held(hold_bytes)
        options = tf.data.Options()
        options.autotune.enabled = False
        ds = tf.data.Dataset.range(len(order))  # positions in the epoch: 8 bytes an image
        if shuffle:
            ds = ds.shuffle(len(order), seed=seed, reshuffle_each_iteration=True)

        parts, offsets = self._layout()
        shape = [None, *self._make(tf.zeros([0], tf.int64)).shape[1:]]

        def in_numpy(p):  # one call a batch when every part can be made in NumPy
            index = order[p]
            if held is not None:
                return held[index], targets[index]
            which = np.searchsorted(offsets, index, side="right") - 1
            made = [(np.flatnonzero(which == k), part) for k, part in enumerate(parts)]
            made = [(here, part.candidates.make_numpy(index[here] - offsets[k]))
                    for k, (here, part) in enumerate(made)]
            dtype = np.uint8 if all(x.dtype == np.uint8 for _, x in made) else np.float32
            images = np.empty((len(index), *shape[1:]), dtype)
            for here, x in made:
                images[here] = x if dtype == np.uint8 else unit_float(x)
            return images, targets[index]

        def batch(position):
            if numpy_path:  # uint8 across, converted by TF as ImageRows.gather does
                images, answers = tf.numpy_function(in_numpy, [position],
                                                    (numpy_dtype, tf.float32), stateful=False)
                return (unit_float_tensor(tf.ensure_shape(images, shape)),
                        tf.ensure_shape(answers, [None, targets.shape[1]]))
            index, answers = tf.numpy_function(
                lambda p: (order[p], targets[order[p]]), [position], (tf.int64, tf.float32),
                stateful=False)
            return (self._make(tf.ensure_shape(index, [None])),
                    tf.ensure_shape(answers, [None, targets.shape[1]]))

        empty = self._numpy_empties()
        numpy_path = empty is not None
        numpy_dtype = tf.uint8 if numpy_path and all(x.dtype == np.uint8 for x in empty) \
            else tf.float32
        ds = ds.batch(batch_size)
        if held is not None:  # held rows are read in microseconds: no threads
            return ds.map(batch).with_options(options)
        return ds.map(batch, num_parallel_calls=2, deterministic=True).with_options(options)

    def images(self, index: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """The images at global ``index`` (no repeats) as float32, in that order."""
        index = np.asarray(index, np.int64)
        out = [self._make(tf.constant(index[i:i + batch_size])).numpy()
               for i in range(0, len(index), batch_size)]
        return np.concatenate(out) if out else self._make(tf.zeros([0], tf.int64)).numpy()

    def sample_batches(self, batch_size: int, most: int, seed: int) -> Iterator[np.ndarray]:
        """Up to ``most`` batches of training images, drawn without replacement."""
        total = sum(len(p) for p in self.parts.values())
        order = np.random.default_rng(seed).permutation(total)[:most * batch_size]
        for i in range(0, len(order), batch_size):
            yield self.images(np.sort(order[i:i + batch_size]))

    def sample(self, count: int, seed: int) -> np.ndarray:
        """``count`` training images drawn at random across the parts (no repeats)."""
        total = sum(len(p) for p in self.parts.values())
        return self.images(np.sort(np.random.default_rng([seed, 8]).permutation(total)[:count]))

    # -- many workers --------------------------------------------------------------------

    def publish(self, shared_dir: str, real: ImageRows, real_probs: np.ndarray) -> str:
        """Writes what makes this set again (the real images and the teacher's answers to
        them, each part's recipe or stored rows, and the answers) under ``shared_dir``, each
        file written beside and renamed into place, the index last; returns the index's
        path."""
        tf.io.gfile.makedirs(shared_dir)
        base = shared_dir.rstrip("/")
        write_npy(f"{base}/real.npy", real.images)
        write_npy(f"{base}/{REAL_PROBS}", np.asarray(real_probs, np.float32))
        index = []
        for k, (name, part) in enumerate(self.parts.items()):
            entry = {"name": name, "generator": part.generator, "repeat": part.repeat,
                     "targets": f"part{k}_targets.npy"}
            write_npy(f"{base}/{entry['targets']}", part.targets)
            if isinstance(part.candidates, IndexedCandidates):
                entry["params"] = []
                for j, p in enumerate(part.candidates.params):
                    entry["params"].append(f"part{k}_param{j}.npy")
                    write_npy(f"{base}/{entry['params'][-1]}", p)
            elif part.candidates.rows is real:
                entry["rows"] = "real.npy"
            else:
                entry["rows"] = f"part{k}_images.npy"
                write_npy(f"{base}/{entry['rows']}", part.candidates.rows.images)
            index.append(entry)
        path = f"{base}/{INDEX}"
        with tf.io.gfile.GFile(path + ".partial", "w") as f:
            f.write(json.dumps({"parts": index, "agreement": self.agreement},
                               indent=1))
        tf.io.gfile.rename(path + ".partial", path, overwrite=True)
        return path

    @classmethod
    def read(cls, shared_dir: str, config, local_dir: str
             ) -> tuple["LabelledSet", ImageRows, np.ndarray]:
        """The set the chief published (:meth:`publish`), the real images and the teacher's
        answers to them: stored rows are copied through ``tf.io.gfile`` into ``local_dir``
        and memory-mapped; recipes are made again by their generators over the real
        images."""
        from kd_keras import synthesis

        base = shared_dir.rstrip("/")
        with tf.io.gfile.GFile(f"{base}/{INDEX}") as f:
            published = json.load(f)
        index = published["parts"]
        os.makedirs(local_dir, exist_ok=True)
        rows = {}

        def local_rows(name: str) -> ImageRows:
            if name not in rows:
                local = os.path.join(local_dir, name)
                tf.io.gfile.copy(f"{base}/{name}", local, overwrite=True)
                rows[name] = ImageRows.from_file(local)
            return rows[name]

        parts = {}
        for entry in index:
            targets = _read_npy(f"{base}/{entry['targets']}")
            if "params" in entry:
                params = tuple(_read_npy(f"{base}/{p}") for p in entry["params"])
                candidates = synthesis.build(entry["generator"], config).recipe(
                    local_rows("real.npy"), params)
            else:
                candidates = ArrayCandidates(local_rows(entry["rows"]))
            parts[entry["name"]] = Part(candidates, targets, entry["generator"],
                                        int(entry["repeat"]))
        return (cls(parts, published.get("agreement")), local_rows("real.npy"),
                _read_npy(f"{base}/{REAL_PROBS}"))


INDEX = "training_set.json"
REAL_PROBS = "real_probs.npy"  # the teacher's answers to the real images (unpaid images)


def _read_npy(path: str) -> np.ndarray:
    with tf.io.gfile.GFile(path, "rb") as f:
        return np.load(io.BytesIO(f.read()), allow_pickle=False)


__all__ = ["INDEX", "LabelledSet", "Part", "real_part"]
