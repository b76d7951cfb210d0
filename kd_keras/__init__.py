"""kd_keras: black-box few-shot knowledge distillation (FS-BBT) for Keras 3."""

__version__ = "0.1.0"
