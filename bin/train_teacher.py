"""``kd_keras.commands.train_teacher`` run from the repository (installed: ``kd-train-teacher``); see --help."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_keras.commands.train_teacher import entry  # noqa: E402

if __name__ == "__main__":
    entry()
