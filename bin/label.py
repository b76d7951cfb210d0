"""``kd_keras.commands.label`` run from the repository (installed: ``kd-label``); see --help."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kd_keras.commands.label import entry  # noqa: E402

if __name__ == "__main__":
    entry()
