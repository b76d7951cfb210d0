"""Distillation: losses, the Distiller model, the student's training and the FS-BBT run."""

from kd_keras.distill.distiller import Distiller
from kd_keras.distill.losses import (DistillationLoss, get_loss, hard_cross_entropy,
                                     kl_with_temperature, loss_names, register_loss,
                                     soft_cross_entropy)

__all__ = ["DistillationLoss", "Distiller", "get_loss", "hard_cross_entropy",
           "kl_with_temperature", "loss_names", "register_loss", "soft_cross_entropy"]
