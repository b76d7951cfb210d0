"""Distillation: losses, the Distiller model, and the end-to-end FS-BBT run."""

from kd_keras.distill.distiller import Distiller
from kd_keras.distill.losses import (LOSSES, hard_cross_entropy, kl_with_temperature,
                                     per_example_loss, soft_cross_entropy)

__all__ = ["LOSSES", "Distiller", "hard_cross_entropy", "kl_with_temperature",
           "per_example_loss", "soft_cross_entropy"]
