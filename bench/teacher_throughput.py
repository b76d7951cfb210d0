"""Teacher query throughput: in-process SavedModel vs the same model served over the
TensorFlow Serving REST protocol on loopback (bin/serve_teacher.py in its own process, as
a real server would be), queried in batches with concurrency.

  python bench/teacher_throughput.py --savedmodel=runs/fmnist_teacher/teacher \
      --images=fashion_mnist:train[:20000] --out=bench/results/teacher_throughput.json
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("savedmodel", None, "Teacher SavedModel folder.")
flags.DEFINE_string("model", None, "Instead of --savedmodel: export an untrained model of this "
                    "name (e.g. resnet32; throughput does not depend on weights) and use it.")
flags.DEFINE_string("images", "fashion_mnist:train[:20000]", "Images to send, or random:N:H:W:C.")
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Images per request to try.")
flags.DEFINE_list("concurrency", ["1", "2", "4"], "Requests in flight to try (HTTP).")
flags.DEFINE_string("out", "bench/results/teacher_throughput.json", "Where to write results.")
FLAGS = flags.FLAGS


def _rate(teacher, images):
    start = time.perf_counter()
    teacher.query(images)
    return len(images) / (time.perf_counter() - start)


def main(argv):
    del argv
    from kd_keras import data
    from kd_keras.teachers import HttpBackend, SavedModelBackend, Teacher
    import tempfile

    import numpy as np

    if FLAGS.images.startswith("random:"):
        n, *shape = map(int, FLAGS.images.split(":")[1:])
        images = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    else:
        images = data.load(FLAGS.images).images
    savedmodel = FLAGS.savedmodel
    if FLAGS.model:
        from kd_keras import models
        from kd_keras.export import export_classifier

        tmp = tempfile.mkdtemp()
        savedmodel = os.path.join(tmp, "sm")
        export_classifier(models.build(FLAGS.model, images.shape[1:], 10), savedmodel,
                          os.path.join(tmp, "m.keras"))
    if not savedmodel:
        raise app.UsageError("give --savedmodel or --model")
    backend = SavedModelBackend(savedmodel)
    results = {"teacher": FLAGS.model or FLAGS.savedmodel, "images": len(images),
               "image_shape": list(images.shape[1:]), "in_process": {}, "http": {}}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    server = subprocess.Popen([sys.executable, os.path.join(root, "bin", "serve_teacher.py"),
                               f"--savedmodel={savedmodel}", "--port=0"],
                              stdout=subprocess.PIPE, text=True)
    url = server.stdout.readline().split(" at ")[1].split(":predict")[0]
    for bs in map(int, FLAGS.batch_sizes):
        backend.predict(images[:bs])  # warm up
        results["in_process"][bs] = _rate(Teacher(backend, 10, batch_size=bs), images)
        print(f"in-process batch {bs}: {results['in_process'][bs]:.0f} images/s", flush=True)
        for c in map(int, FLAGS.concurrency):
            rate = _rate(Teacher(HttpBackend(url), 10, batch_size=bs, concurrency=c), images)
            results["http"][f"{bs}x{c}"] = rate
            print(f"http batch {bs} concurrency {c}: {rate:.0f} images/s", flush=True)
    server.kill()
    best_http = max(results["http"].values())
    best_local = max(results["in_process"].values())
    results["best_ratio"] = best_http / best_local
    print(f"best HTTP / best in-process: {results['best_ratio']:.2f}", flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
