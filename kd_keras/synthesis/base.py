"""The synthesizer plug-in interface: how a generator grows the few real images.

A generator is a :class:`Synthesizer` registered under a name (``@register("mixup")``).
It is built from the run's config, prepared once from the real images and the teacher's
answers to them (nothing for MixUp; train or reload for the CVAE), and then asked for
:class:`Candidates`: a recipe for ``count`` images that makes them lazily as a
``tf.data.Dataset``, so selection can draw many more candidates than it pays for and
label only a subset. ``synthesis.sources`` names the generators and their shares of the
synthetic budget (see :func:`parse_sources` and :func:`plan_counts`).
"""

from __future__ import annotations

import abc
from typing import Callable, Optional, Union

import numpy as np
import tensorflow as tf

from kd_keras.data.rows import ImageRows
from kd_keras.errors import ConfigError
from kd_keras.registry import Registry

GENERATORS = Registry("synthesizer")
REAL = "real"  # the real images themselves: a source, not a generator
SPLITS = ("paper", "even")  # how M is divided when no shares are given


class Candidates(abc.ABC):
    """``len(self)`` synthetic images, made on demand; indexable without making them.

    ``exact`` candidates are made again bit for bit from their parameters (a recipe), so
    the student's pipeline remakes them instead of storing them; the others (samples of a
    network, whose pixels may change with the batch they are made in) are stored once."""

    exact: bool = True

    @abc.abstractmethod
    def __len__(self) -> int: ...

    @abc.abstractmethod
    def subset(self, index: np.ndarray) -> "Candidates":
        """The candidates at ``index``, in that order."""

    @abc.abstractmethod
    def make(self, index: tf.Tensor) -> tf.Tensor:
        """The float32 images in [0, 1] at ``index`` (a 1-D int64 tensor), inside tf.data."""

    def make_numpy(self, index: np.ndarray) -> Optional[np.ndarray]:
        """The same images made in NumPy, as uint8 (pixels k / 255) or float32 in [0, 1],
        bit for bit what :meth:`make` makes once converted, or None where only TensorFlow
        makes them (the student's pipeline then uses :meth:`make`). One NumPy call a batch
        costs far less than a graph of small ops on 2 cores."""
        return None

    def dataset(self, batch_size: int) -> tf.data.Dataset:
        """Batches of float32 images in [0, 1], in order, made on the fly."""
        return (tf.data.Dataset.range(len(self)).batch(batch_size)
                .map(self.make, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True))


class ArrayCandidates(Candidates):
    """Candidates already made: images in memory, or rows of a stored file."""

    def __init__(self, images: Union[np.ndarray, ImageRows]):
        self.rows = images if isinstance(images, ImageRows) else ImageRows(
            np.asarray(images) if np.asarray(images).dtype == np.uint8
            else np.asarray(images, np.float32))

    def __len__(self) -> int:
        return len(self.rows)

    def subset(self, index: np.ndarray) -> "ArrayCandidates":
        return ArrayCandidates(self.rows.images[np.asarray(index, np.int64)])

    def make(self, index: tf.Tensor) -> tf.Tensor:
        return self.rows.gather(index)

    def make_numpy(self, index: np.ndarray) -> np.ndarray:
        return self.rows.raw(index)


class IndexedCandidates(Candidates):
    """Candidates described by per-image parameter arrays and one batch function.

    ``params`` are equal-length arrays (pairs, weights, boxes, latents …) and
    ``make_batch(*batch_of_params)`` turns a batch of them into images inside tf.data.
    ``exact=False`` marks a recipe whose pixels are not reproducible bit for bit;
    ``numpy_batch``, if given, makes the same pixels in NumPy (:meth:`Candidates.make_numpy`).
    """

    def __init__(self, params: tuple, make_batch: Callable[..., tf.Tensor], exact: bool = True,
                 numpy_batch: Optional[Callable[..., np.ndarray]] = None):
        self.params = tuple(np.asarray(p) for p in params)
        if len({len(p) for p in self.params}) > 1:
            raise ValueError("candidate parameter arrays differ in length")
        self.make_batch, self.exact, self.numpy_batch = make_batch, exact, numpy_batch

    def __len__(self) -> int:
        return int(len(self.params[0]))

    def subset(self, index: np.ndarray) -> "IndexedCandidates":
        return IndexedCandidates(tuple(p[np.asarray(index, np.int64)] for p in self.params),
                                 self.make_batch, self.exact, self.numpy_batch)

    def make_numpy(self, index: np.ndarray) -> Optional[np.ndarray]:
        if self.numpy_batch is None:
            return None
        return self.numpy_batch(*(p[index] for p in self.params))

    def make(self, index: tf.Tensor) -> tf.Tensor:
        # read through numpy_function: the parameters never become graph constants
        dtypes = [tf.as_dtype(p.dtype) for p in self.params]
        params = tf.numpy_function(lambda i: tuple(p[i] for p in self.params),
                                   [tf.cast(index, tf.int64)], dtypes, stateful=False)
        return self.make_batch(*(tf.ensure_shape(p, [None, *q.shape[1:]])
                                 for p, q in zip(params, self.params)))

    def dataset(self, batch_size: int) -> tf.data.Dataset:
        ds = tf.data.Dataset.from_tensor_slices(self.params).batch(batch_size)
        return ds.map(lambda *p: self.make_batch(*p), num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True)


class Synthesizer(abc.ABC):
    """A generator of synthetic images. Subclasses set ``name`` through :func:`register`.

    Args:
      config: the run's resolved config (a generator reads its own section).
    """

    name: str = ""

    def __init__(self, config):
        self.config = config

    def prepare(self, ctx, real: ImageRows, real_probs: np.ndarray) -> None:
        """Learns what the generator needs from the real images (held once, read by row)
        and their answers.

        ``ctx`` is the :class:`kd_keras.context.RunContext` (workdir, strategy, resume,
        stage timing). The default does nothing, as for MixUp.
        """

    @abc.abstractmethod
    def candidates(self, count: int, seed: int) -> Candidates:
        """``count`` candidate images, the same for the same seed (so resumed runs hit the
        answer cache)."""

    def recipe(self, real: ImageRows, params: tuple) -> Candidates:
        """Exact candidates made again from their ``params`` over the ``real`` images (a
        worker remaking the chief's labelled set). Only generators whose candidates are
        ``exact`` need it."""
        raise NotImplementedError(f"{self.name} candidates are stored, not remade")

    def near_copies(self, count: int, n_real: int) -> int:
        """How many of ``count`` draws from ``n_real`` images the paper's rule drops as
        near-copies of one real image (MixUp); the ``paper`` split gives that many images to
        the other generators. Known before :meth:`prepare`, so the plan precedes any query."""
        return 0


def register(name: str) -> Callable[[type[Synthesizer]], type[Synthesizer]]:
    """Class decorator adding a :class:`Synthesizer` to :data:`GENERATORS` as ``name``."""
    return GENERATORS.register(name)


def names() -> tuple[str, ...]:
    """The registered generator names."""
    return tuple(GENERATORS.names())


def build(name: str, config) -> Synthesizer:
    """The generator registered as ``name``, built from ``config``."""
    return GENERATORS.lookup(name)(config)


def parse_sources(text: str) -> dict[str, Optional[float]]:
    """``"real,mixup:0.8,cvae:0.2"`` -> ``{"real": None, "mixup": 0.8, "cvae": 0.2}``.

    ``real`` plus registered generator names, each at most once, optionally with its
    share of the synthetic budget (shares in (0, 1], summing to at most 1).
    """
    sources: dict[str, Optional[float]] = {}
    for item in (s.strip() for s in str(text).replace("+", ",").split(",")):
        if not item:
            continue
        name, _, share_text = item.partition(":")
        name = name.strip()
        if name != REAL and name not in GENERATORS:
            raise ConfigError(f"synthesis.sources: unknown source {name!r}; use real and "
                              f"registered generators ({', '.join(names())})")
        if name in sources:
            raise ConfigError(f"synthesis.sources names {name!r} twice")
        share = None
        if share_text:
            try:
                share = float(share_text)
            except ValueError:
                raise ConfigError(f"synthesis.sources: share of {name!r} must be a number, "
                                  f"got {share_text!r}") from None
            if name == REAL or not 0 < share <= 1:
                raise ConfigError(f"synthesis.sources: share of {name!r} must be in (0, 1] "
                                  "(real images take no share)")
        sources[name] = share
    if not sources:
        raise ConfigError(f"synthesis.sources must name some of real, {', '.join(names())}")
    if sum(s or 0 for s in sources.values()) > 1 + 1e-9:
        raise ConfigError(f"synthesis.sources: shares add up to more than 1 in {text!r}")
    return sources


def plan_counts(sources: dict[str, Optional[float]], generators: dict[str, Synthesizer],
                total: int, n_real: int, split: str = "paper") -> dict[str, int]:
    """How many of the ``total`` synthetic images each generator makes.

    Shares given for every generator are used as weights (normalised to sum to 1); with
    some given, the others share what is left evenly. With none given, the ``paper`` split
    lets the other generators make up the near-copy pairs MixUp drops (FS-BBT's rule: CVAE
    images replace dropped pairs), and ``even`` splits M evenly. Rounding leftovers go to
    the first generator, so the counts always sum to ``total``.
    """
    if split not in SPLITS:
        raise ConfigError(f"synthesis.split must be one of {SPLITS}, got {split!r}")
    gens = [n for n in sources if n != REAL]
    if not gens:
        return {}
    if total <= 0:  # a budget of N answers: the real images alone
        return {n: 0 for n in gens}
    shares = {n: sources[n] for n in gens}
    if all(v is None for v in shares.values()):
        droppers = [n for n in gens if generators[n].near_copies(total, n_real)]
        others = [n for n in gens if n not in droppers]
        if split == "paper" and len(droppers) == 1 and others:
            dropped = generators[droppers[0]].near_copies(total, n_real)
            counts = {n: dropped // len(others) + (i < dropped % len(others))
                      for i, n in enumerate(others)}
            counts[droppers[0]] = total - dropped
            return {n: counts[n] for n in gens}
        shares = {n: 1.0 for n in gens}
    elif any(v is None for v in shares.values()):
        left = 1.0 - sum(v for v in shares.values() if v is not None)
        free = [n for n, v in shares.items() if v is None]
        if left <= 1e-9:
            raise ConfigError(f"synthesis.sources: the given shares leave nothing for {free}")
        shares.update({n: left / len(free) for n in free})
    weight = sum(shares.values())
    counts = {n: int(total * shares[n] / weight) for n in gens}
    counts[gens[0]] += total - sum(counts.values())
    return counts
