"""Keeps TensorFlow's native start-up chatter out of a command's output.

TensorFlow 2.21 logs from C++ through absl before absl's logging is set up, which
``TF_CPP_MIN_LOG_LEVEL`` does not reach: every command began with lines about oneDNN, CUDA
drivers and ``cuInit``, even before a one-line ``error:``. Commands import TensorFlow and
list its devices (which does not start its runtime, so a multi-worker strategy can still be
created) with native stderr sent to a temporary file, then pass on every line of it but
those known ones. ``KD_KERAS_NATIVE_LOGS=1`` keeps everything.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} [\d:. ]+\d+ \S+\] .*"  # absl INFO and WARNING lines (TF_CPP_MIN_LOG_LEVEL=2)
    rb"|E\d{4} [\d:. ]+\d+ cuda_\w+\.cc:\d+\] .*"  # no GPU here: cuInit, factory registration
    rb"|To enable the following instructions: .*)$")


def start_tensorflow() -> None:
    """Imports TensorFlow and lists its devices, dropping the known start-up lines."""
    if os.environ.get("KD_KERAS_NATIVE_LOGS") == "1" or "tensorflow" in sys.modules:
        import tensorflow as tf

        tf.config.list_physical_devices()
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()  # CUDA's probe (cuInit) happens here
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [l for l in captured.read().splitlines() if l and not NOISE.match(l)]
            if kept:
                os.write(2, b"\n".join(kept) + b"\n")
