"""What every ``bin/`` command shares: quiet TF start-up, common flags, clear errors."""

from __future__ import annotations

import os
import sys
from typing import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from kd_keras.errors import KdKerasError  # noqa: E402


# The configs/ folder next to kd_keras/ (in the source tree, or installed beside it).
CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


def define_common_flags(default_config: str = "fashion_mnist.py") -> None:
    """``--config`` (ml_collections file, overridable as --config.a.b=v) and ``--workdir``."""
    config_flags.DEFINE_config_file(
        "config", os.path.join(CONFIG_DIR, default_config),
        "Experiment config file, optionally FILE:VARIANT (e.g. configs/fashion_mnist.py:quick); "
        "any field can be overridden, e.g. --config.student.epochs=5.", lock_config=True)
    flags.DEFINE_string("workdir", None, "Folder for every output of the run.", required=True)
    flags.DEFINE_enum("strategy", "mirrored", ["mirrored", "multi_worker", "default"],
                      "tf.distribute strategy: mirrored over local devices, multi_worker "
                      "from TF_CONFIG, or default (none).")


def define_teacher_flags() -> None:
    """``--teacher`` spec, what it answers, and where its bearer token lives."""
    flags.DEFINE_string("teacher", None,
                        "Teacher to query: savedmodel:DIR, keras:FILE.keras, "
                        "http(s)://host:port/v1/models/NAME[/versions/V] (TF Serving REST), or "
                        "grpc://host:port/models/NAME[/versions/V] (TF Serving gRPC, faster).")
    flags.DEFINE_enum("teacher_output", None, ["probs", "logits", "label", "topk"],
                      "What the teacher answers (default: the config's query.output, probs).")
    flags.DEFINE_string("teacher_signature", None,
                        "Signature to call: for a SavedModel (default serving_default), or sent "
                        "as signature_name to a TF Serving endpoint.")
    flags.DEFINE_string("teacher_token_env", None,
                        "Name of an environment variable holding a bearer token for an HTTP "
                        "or gRPC teacher; the token itself never appears in logs, configs or "
                        "reports.")


def apply_teacher_flags(config) -> None:
    """Copies --teacher_output into the config, so the resolved config records it."""
    if flags.FLAGS.teacher_output:
        with config.unlocked():
            config.query.output = flags.FLAGS.teacher_output


def run(main: Callable[[list], None]) -> None:
    """Runs an absl main; a KdKerasError becomes one 'error:' line and exit status 1."""

    def guarded(argv):
        logging.set_verbosity(logging.WARNING)  # keep TF's info chatter out of progress
        try:
            main(argv)
        except KdKerasError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            sys.exit(1)
        except KeyboardInterrupt:
            print("interrupted: answers and checkpoints written so far are kept; "
                  "run again with --resume to continue", file=sys.stderr)
            sys.exit(130)

    app.run(guarded)
