"""Peak memory of loading an image folder (``folder:`` source), against the size of the result.

  python bench/folder_memory.py --images=100000 --size=28 --out=bench/results/folder_memory.json

Writes ``--images`` small grayscale PNGs into a temporary folder (10 class sub-folders),
then loads them in a fresh process and reports its peak resident memory (ru_maxrss) after
and before the load, next to the size of the float32 array the load returns.
"""

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_integer("images", 100000, "How many PNG files to write and load.")
flags.DEFINE_integer("size", 28, "Side of the square images.")
flags.DEFINE_string("out", "bench/results/folder_memory.json", "Where to write the result.")
flags.DEFINE_string("load", None, "Internal: load this folder and print peak memory.")
FLAGS = flags.FLAGS


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _load(folder: str) -> None:
    import tensorflow as tf  # noqa: F401 (imported before measuring the baseline)

    from kd_keras import data

    before = _peak_mib()
    start = time.time()
    loaded = data.load(f"folder:{folder}", (FLAGS.size, FLAGS.size, 1))
    print(json.dumps({"peak_before_mib": round(before, 1), "peak_after_mib": round(_peak_mib(), 1),
                      "result_mib": round(loaded.images.nbytes / 2**20, 1),
                      "images": len(loaded), "load_seconds": round(time.time() - start, 1)}))


def main(argv):
    del argv
    if FLAGS.load:
        return _load(FLAGS.load)
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder:
        for c in range(10):
            os.makedirs(os.path.join(folder, f"class{c}"))
        for i in range(FLAGS.images):
            pixels = rng.integers(0, 256, (FLAGS.size, FLAGS.size, 1), dtype=np.uint8)
            with open(os.path.join(folder, f"class{i % 10}", f"{i}.png"), "wb") as f:
                f.write(tf.io.encode_png(pixels).numpy())
        proc = subprocess.run([sys.executable, __file__, f"--load={folder}",
                               f"--size={FLAGS.size}"], capture_output=True, text=True, check=True)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["extra_mib"] = round(result["peak_after_mib"] - result["peak_before_mib"], 1)
    result["command"] = "python " + " ".join(sys.argv)
    print(json.dumps(result))
    with open(FLAGS.out, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    app.run(main)
