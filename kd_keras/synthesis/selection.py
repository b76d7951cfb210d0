"""Which synthetic images to pay for: ``random`` (the paper's) or a chooser of
:mod:`kd_keras.synthesis.choosers` (``uncertainty``, ``kcenter``), in rounds.

Selection draws ``selection.pool_factor`` times more candidates than it pays for from each
selected generator and labels a random ``selection.warmup`` share of what it pays for. The
rest is paid for in ``selection.rounds`` rounds: each round trains a probe student briefly on
everything labelled so far (the real images included) and pays for the candidates its
chooser picks (the probe's least sure, or those farthest from what is paid for), with
``selection.balance`` about as many per predicted class. Each round's choice is saved in
``WORKDIR/selection.npz`` before its answers are bought, so a run killed in any round and
resumed pays for nothing twice: chosen rounds are reused (their answers come from the
cache) and only the rounds not yet chosen train a probe again. It works over any
generator's candidates.
"""

from __future__ import annotations

import os
from typing import Callable

import numpy as np

from kd_keras.data.rows import ImageRows
from kd_keras.errors import ConfigError
from kd_keras.synthesis.base import ArrayCandidates, Candidates, Synthesizer
from kd_keras.synthesis.choosers import CHOOSERS, ProbeView, probe_view
from kd_keras.synthesis.choosers import names as chooser_names
from kd_keras.teachers.labelling import label_candidates

RANDOM = "random"


def selections() -> tuple[str, ...]:
    """The allowed ``synthesis.selection`` values: random and every registered chooser."""
    return (RANDOM, *chooser_names())


def selected_generators(config, counts: dict[str, int]) -> list[str]:
    """The generators selection chooses among (``selection.generators``)."""
    wanted = str(config.selection.generators)
    names = list(counts) if wanted == "all" else [n.strip() for n in wanted.split(",")]
    return [n for n in names if counts.get(n)]


def round_sizes(count: int, n_warm: int, rounds: int) -> list[int]:
    """Images paid for in each round: the warm-up first, then the rest in ``rounds`` near-equal
    shares."""
    rest = count - n_warm
    return [n_warm] + [len(a) for a in np.array_split(np.arange(rest), rounds)]


def _load(path: str, sizes: dict, rounds: int) -> dict:
    """The rounds chosen before, as ``{"NAME:ROUND": indices}``; a file of the one-round
    format (``{NAME: warm-up and chosen}``) is read as round 1."""
    saved = dict(np.load(path))
    for name in [k for k in saved if ":" not in k]:
        if rounds != 1:
            raise ConfigError(f"{path} holds a one-round selection; resume it with "
                              "selection.rounds=1")
        saved[f"{name}:1"] = saved.pop(name)[sizes[name][0]:]
    return saved


def _save(path: str, choices: dict) -> None:
    """Writes every round chosen so far, replacing the file whole (never half written)."""
    tmp = path + ".tmp.npz"
    np.savez(tmp, **choices)
    os.replace(tmp, path)


def choose_and_label(ctx, real_set, generators: dict[str, Synthesizer], counts: dict[str, int],
                     train_probe: Callable, store: Callable[[str], str]) -> dict:
    """``counts[name]`` labelled images from each generator, chosen as the config says, as
    ``{name: Part}`` (:mod:`kd_keras.distill.store`).

    ``real_set`` is the labelled set of the real images alone; ``train_probe(labelled)``
    trains and returns a probe student (selection by a chooser only); ``store(name)`` is the
    file a part's stored images go to (candidates that are not remade exactly).
    """
    from kd_keras.distill.store import Part

    config, teacher = ctx.config, ctx.teacher
    seed, batch = config.seed, config.synthesis.batch_size
    chosen_by = selected_generators(config, counts) \
        if config.synthesis.selection != RANDOM else []

    def label(name: str, candidates: Candidates, what: str, suffix: str = "") -> Part:
        seen, probs = label_candidates(candidates, teacher, what, batch, store(name + suffix))
        return Part(seen, probs, name)

    out: dict = {}
    for name, count in counts.items():
        if name not in chosen_by and count:
            print(f"{name}: generating and labelling {count} images", flush=True)
            with ctx.stage(f"{name}_label"):
                out[name] = label(name, generators[name].candidates(count, seed), name)
    if chosen_by:
        out.update(_rounds(ctx, real_set, {n: generators[n] for n in chosen_by},
                           {n: counts[n] for n in chosen_by}, train_probe, label, store))
    return {n: out[n] for n in counts if n in out}


def _rounds(ctx, real_set, generators: dict, counts: dict, train_probe: Callable,
            label: Callable, store: Callable[[str], str]) -> dict:
    """The selected generators' parts, paid for round by round (see the module doc)."""
    config, sel = ctx.config, ctx.config.selection
    chooser = CHOOSERS.lookup(config.synthesis.selection)
    batch = config.synthesis.batch_size
    pools = {n: g.candidates(int(sel.pool_factor * counts[n]), config.seed)
             for n, g in generators.items()}
    sizes = {n: round_sizes(counts[n], int(round(sel.warmup * counts[n])), int(sel.rounds))
             for n in generators}
    path = ctx.workdir.claim("selection.npz")
    saved = _load(path, sizes, int(sel.rounds)) if ctx.resume and os.path.exists(path) else {}
    if saved:
        print(f"selection: reusing the {len(saved)} choices made before ({path})", flush=True)
    saved.update({f"{n}:0": np.arange(sizes[n][0]) for n in generators})
    chosen: dict = {n: [] for n in generators}
    parts: dict = {n: [] for n in generators}

    def pay(k: int) -> None:
        for n in generators:
            index = saved[f"{n}:{k}"]
            chosen[n].append(index)
            if not len(index):  # a round with nothing left to pay for (a tiny budget)
                continue
            what = (f"{n} (warm-up, random of a pool of {len(pools[n])})" if k == 0 else
                    f"{n} (round {k} of {sel.rounds}, {config.synthesis.selection})")
            with ctx.stage("selection_label"):
                parts[n].append(label(n, pools[n].subset(index), what, f"_r{k}"))

    pay(0)
    for k in range(1, int(sel.rounds) + 1):
        for n in generators:
            if not sizes[n][k]:
                saved.setdefault(f"{n}:{k}", np.zeros(0, np.int64))
        todo = [n for n in generators if f"{n}:{k}" not in saved]
        if todo:
            with ctx.stage("selection_probe"):
                probe_set = real_set  # every round so far as a part of its own: no copies
                for n in generators:
                    for j, part in enumerate(parts[n]):
                        probe_set = probe_set.with_part(f"{n}:{j}", part)
                probe = train_probe(probe_set)
            with ctx.stage("selection_score"):
                real_view = probe_view(probe, real_set.parts["real"].candidates.dataset(batch))
                for n in todo:
                    view = probe_view(probe, pools[n].dataset(batch))
                    taken = np.concatenate(chosen[n])
                    rest = np.setdiff1d(np.arange(len(pools[n])), taken)
                    known = ProbeView.join([real_view, view.take(taken)])
                    pick = rest[chooser(view.take(rest), sizes[n][k], known,
                                        bool(sel.balance))]
                    saved[f"{n}:{k}"] = pick
                    print(f"selection: round {k}/{sel.rounds}: {len(pick)} {n} candidates "
                          f"chosen by {config.synthesis.selection}"
                          f"{' (class-balanced)' if sel.balance else ''} of {len(rest)}",
                          flush=True)
            _save(path, {key: v for key, v in saved.items() if not key.endswith(":0")})
        pay(k)
    return {n: _joined(pools[n], chosen[n], parts[n], n, store(n)) for n in generators}


def _joined(pool: Candidates, chosen: list, parts: list, name: str, path: str):
    """One part of a generator's rounds: still a recipe where every round is one (the pool's
    candidates in round order), else every round's stored rows copied into one file at
    ``path``, read from disk like each round's (never all in memory)."""
    from kd_keras.distill.store import Part

    if len(parts) == 1:
        return parts[0]
    targets = np.concatenate([p.targets for p in parts])
    if not any(isinstance(p.candidates, ArrayCandidates) for p in parts):
        return Part(pool.subset(np.concatenate(chosen)), targets, name)
    first = parts[0].candidates.rows.images
    rows = np.lib.format.open_memmap(path, mode="w+", dtype=first.dtype,
                                     shape=(len(targets), *first.shape[1:]))
    start = 0
    for p in parts:
        images = p.candidates.rows.images
        for i in range(0, len(images), 4096):
            rows[start + i:start + i + len(images[i:i + 4096])] = images[i:i + 4096]
        start += len(images)
    rows.flush()
    return Part(ArrayCandidates(ImageRows(np.load(path, mmap_mode="r"))), targets, name)
