"""Grow a few real images into many: generators (MixUp, CVAE, CutMix, …) as plug-ins.

Every module of this package is imported here, so a generator registers itself by
being a file in it (see :mod:`kd_keras.synthesis.base`).
"""

import importlib
import pkgutil

from kd_keras.synthesis.base import (GENERATORS, REAL, ArrayCandidates, Candidates, IndexedCandidates,
                                     Synthesizer, build, names, parse_sources, plan_counts,
                                     register)
from kd_keras.synthesis.mixup import MixupPlan, mix, mixup_dataset, plan_mixup, quantize

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["GENERATORS", "REAL", "ArrayCandidates", "Candidates", "IndexedCandidates", "MixupPlan",
           "Synthesizer", "build", "mix", "mixup_dataset", "names", "parse_sources",
           "plan_counts", "plan_mixup", "quantize", "register"]
