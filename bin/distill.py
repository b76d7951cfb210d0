"""``kd_keras.commands.distill`` run from the repository (installed: ``kd-distill``); see --help."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_keras.commands.distill import entry  # noqa: E402

if __name__ == "__main__":
    entry()
