"""kd_keras: black-box few-shot knowledge distillation (FS-BBT) for Keras 3."""

__version__ = "0.1.0"


def __getattr__(name):  # the API loads TensorFlow: import it on first use only
    if name in ("connect", "distill_student", "DistillResult"):
        from kd_keras import api

        return getattr(api, name)
    raise AttributeError(f"module 'kd_keras' has no attribute {name!r}")
