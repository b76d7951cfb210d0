"""Which synthetic images to pay for: ``random`` (the paper's) or ``uncertainty``.

Uncertainty selection draws ``selection.pool_factor`` times more candidates than it pays
for from each selected generator, labels a random ``selection.warmup`` share, trains a
probe student briefly on the real and those images, then pays only for the candidates
the probe is least sure of (highest predictive entropy): the images the student would
learn least from are never bought. The choice is saved in ``WORKDIR/selection.npz`` so a
resumed run buys nothing new. It works over any generator's candidates.
"""

from __future__ import annotations

import os
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from kd_keras.synthesis.base import ArrayCandidates, Candidates, Synthesizer
from kd_keras.teachers.labelling import label_candidates

SELECTIONS = ("random", "uncertainty")
Labelled = tuple[np.ndarray, np.ndarray]


def selected_generators(config, counts: dict[str, int]) -> list[str]:
    """The generators uncertainty selection chooses among (``selection.generators``)."""
    wanted = str(config.selection.generators)
    names = list(counts) if wanted == "all" else [n.strip() for n in wanted.split(",")]
    return [n for n in names if counts.get(n)]


def entropy_scores(probe: keras.Model, candidates: Candidates, batch_size: int) -> np.ndarray:
    """The probe's predictive entropy for every candidate (no teacher answers)."""

    @tf.function
    def entropy(x):
        z = tf.cast(probe(x, training=False), tf.float32)
        return -tf.reduce_sum(tf.nn.softmax(z) * tf.nn.log_softmax(z), -1)

    scores = [entropy(x).numpy() for x in candidates.dataset(batch_size)]
    return np.concatenate(scores) if scores else np.zeros((0,), np.float32)


def choose_and_label(ctx, real_set, generators: dict[str, Synthesizer], counts: dict[str, int],
                     train_probe: Callable, store: Callable[[str], str]) -> dict:
    """``counts[name]`` labelled images from each generator, chosen as the config says, as
    ``{name: Part}`` (:mod:`kd_keras.distill.store`).

    ``real_set`` is the labelled set of the real images alone; ``train_probe(labelled)``
    trains and returns a probe student (uncertainty selection only); ``store(name)`` is the
    file a part's stored images go to (candidates that are not remade exactly).
    """
    from kd_keras.distill.store import Part

    config, teacher = ctx.config, ctx.teacher
    seed, batch = config.seed, config.synthesis.batch_size
    chosen_by = selected_generators(config, counts) if config.synthesis.selection == "uncertainty" else []

    def label(name: str, candidates: Candidates, what: str, suffix: str = "") -> Part:
        seen, probs = label_candidates(candidates, teacher, what, batch, store(name + suffix))
        return Part(seen, probs, name)

    out: dict = {}
    for name, count in counts.items():
        if name not in chosen_by and count:
            print(f"{name}: generating and labelling {count} images", flush=True)
            with ctx.stage(f"{name}_label"):
                out[name] = label(name, generators[name].candidates(count, seed), name)
    if not chosen_by:
        return out
    sel = config.selection
    pools = {n: generators[n].candidates(int(sel.pool_factor * counts[n]), seed) for n in chosen_by}
    n_warm = {n: int(round(sel.warmup * counts[n])) for n in chosen_by}
    path = ctx.workdir.claim("selection.npz")
    if ctx.resume and os.path.exists(path):
        saved = np.load(path)
        print(f"selection: reusing the choice made before ({path})", flush=True)
        with ctx.stage("selection_label"):
            for n in chosen_by:
                out[n] = label(n, pools[n].subset(saved[n]), f"{n} (selected)")
        return {n: out[n] for n in counts if n in out}
    with ctx.stage("selection_warmup"):
        warm = {n: label(n, pools[n].subset(np.arange(n_warm[n])),
                         f"{n} (warm-up, random of a pool of {len(pools[n])})", "_warmup")
                for n in chosen_by}
    with ctx.stage("selection_probe"):
        probe_set = real_set
        for n, part in warm.items():
            probe_set = probe_set.with_part(n, part)
        probe = train_probe(probe_set)
    chosen = {}
    for n in chosen_by:
        with ctx.stage("selection_score"):
            rest = pools[n].subset(np.arange(n_warm[n], len(pools[n])))
            scores = entropy_scores(probe, rest, batch)
            top = np.sort(np.argsort(-scores)[: counts[n] - n_warm[n]])
        chosen[n] = np.concatenate([np.arange(n_warm[n]), n_warm[n] + top])
        print(f"selection: labelling the {len(top)} {n} candidates the probe is least sure of "
              f"(mean entropy {scores.mean():.3f} -> {scores[top].mean():.3f})", flush=True)
    np.savez(path, **chosen)
    with ctx.stage("selection_label"):
        for n in chosen_by:
            if pools[n].exact and teacher.encoding == "none":
                # the warm-up's answers come from the cache: the part is one recipe again
                out[n] = label(n, pools[n].subset(chosen[n]), f"{n} (selected)")
                continue
            rest = label(n, pools[n].subset(chosen[n][n_warm[n]:]), f"{n} (selected)",
                         "_selected")  # stored rows: the warm-up's and these, as sent
            out[n] = Part(ArrayCandidates(np.concatenate([warm[n].candidates.rows.images,
                                                          rest.candidates.rows.images])),
                          np.concatenate([warm[n].targets, rest.targets]), n)
    return {n: out[n] for n in counts if n in out}
