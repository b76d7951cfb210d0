"""Planning a run before any answer is bought: how many images each generator makes, and
the synthetic count M that fits the answer budget."""

from __future__ import annotations

from kd_keras import synthesis
from kd_keras.errors import ConfigError


def plan(config, n_real: int) -> tuple[dict, dict, dict]:
    """(sources, generators, images per generator) for ``n_real`` real images."""
    sources = synthesis.parse_sources(config.synthesis.sources)
    generators = {n: synthesis.build(n, config) for n in sources if n != synthesis.REAL}
    counts = synthesis.plan_counts(sources, generators, config.synthesis.num_synthetic, n_real,
                                   config.synthesis.split)
    return sources, generators, counts


def has_generators(config) -> bool:
    """Whether the config makes synthetic images (sources beyond the real ones)."""
    return any(n != synthesis.REAL for n in synthesis.parse_sources(config.synthesis.sources))


def plan_budget(config, n_real: int):
    """The config planned for ``query.budget``: the synthetic count M becomes what the
    budget leaves after the real images and the augmentation checks' mirrored and shifted
    copies (:mod:`kd_keras.distill.augment_check`), fewer or more than the config's, unless
    ``synthesis.fixed_count`` (set when the user gave M explicitly), in which case a plan
    that cannot fit is an error. Returns a new config; the one given is not changed."""
    from kd_keras.distill.augment_check import answers_needed

    budget, m = config.query.budget, config.synthesis.num_synthetic
    if not budget or config.student.targets == "true_labels":
        return config
    if budget < n_real:
        raise ConfigError(f"query.budget={budget} is less than the {n_real} real images, which "
                          "are all labelled first; raise the budget or use fewer images")
    check = answers_needed(config, n_real)
    first = n_real + check
    if not has_generators(config) or (config.synthesis.fixed_count and first + m <= budget):
        return config
    if config.synthesis.fixed_count:
        raise ConfigError(f"the plan needs up to {first + m} teacher answers ({n_real} real + "
                          f"{check} copies checking augmentations + {m} synthetic), more than "
                          f"query.budget={budget}; lower synthesis.num_synthetic or raise the "
                          "budget")
    if m == budget - first:
        return config
    planned = config.copy_and_resolve_references()
    with planned.unlocked():
        planned.synthesis.num_synthetic = budget - first
    checked = f" + {check} mirrored and shifted (student.augment_check)" if check else ""
    print(f"budget: {budget} answers: {n_real} real images{checked} + {budget - first} "
          f"synthetic (synthesis.num_synthetic {m} -> {budget - first})", flush=True)
    return planned
