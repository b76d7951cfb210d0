"""Grow a few real images into many: MixUp pairs and a conditional VAE."""

from kd_keras.synthesis.mixup import MixupPlan, mix, mixup_dataset, plan_mixup, quantize

__all__ = ["MixupPlan", "mix", "mixup_dataset", "plan_mixup", "quantize"]
