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

from kd_keras.synthesis.base import Candidates, Synthesizer
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


def choose_and_label(ctx, real: np.ndarray, real_probs: np.ndarray,
                     generators: dict[str, Synthesizer], counts: dict[str, int],
                     train_probe: Callable[[np.ndarray, np.ndarray], keras.Model]
                     ) -> dict[str, Labelled]:
    """``counts[name]`` labelled images from each generator, chosen as the config says.

    ``train_probe(x, y)`` trains and returns a probe student (uncertainty selection only).
    """
    config, teacher = ctx.config, ctx.teacher
    seed, batch = config.seed, config.synthesis.batch_size
    chosen_by = selected_generators(config, counts) if config.synthesis.selection == "uncertainty" else []
    out: dict[str, Labelled] = {}
    for name, count in counts.items():
        if name not in chosen_by and count:
            print(f"{name}: generating and labelling {count} images", flush=True)
            with ctx.stage(f"{name}_label"):
                out[name] = label_candidates(generators[name].candidates(count, seed), teacher,
                                             name, batch)
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
                out[n] = label_candidates(pools[n].subset(saved[n]), teacher, f"{n} (selected)", batch)
        return {n: out[n] for n in counts if n in out}
    with ctx.stage("selection_warmup"):
        warm = {n: label_candidates(pools[n].subset(np.arange(n_warm[n])), teacher,
                                    f"{n} (warm-up, random of a pool of {len(pools[n])})", batch)
                for n in chosen_by}
    with ctx.stage("selection_probe"):
        probe = train_probe(np.concatenate([real] + [w[0] for w in warm.values()]),
                            np.concatenate([real_probs] + [w[1] for w in warm.values()]))
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
            x, y = label_candidates(pools[n].subset(chosen[n][n_warm[n]:]), teacher,
                                    f"{n} (selected)", batch)
            out[n] = (np.concatenate([warm[n][0], x]), np.concatenate([warm[n][1], y]))
    return {n: out[n] for n in counts if n in out}
