"""Teacher query throughput: in-process SavedModel vs the same model served over the
TensorFlow Serving REST and gRPC protocols on loopback (bin/serve_teacher.py in its own
process, as a real server would be), queried in batches with concurrency.

  python bench/teacher_throughput.py --savedmodel=runs/fmnist_teacher/teacher \
      --images=fashion_mnist:train[:20000] --out=bench/results/teacher_throughput.json

With ``--model=linear`` (softmax(x @ W), next to free to compute, so the protocols'
own cost is what is measured) the same teacher is also served by MLServer, a real Open
Inference Protocol server (``.venv-mlserver``), over its REST and gRPC paths:

  python bench/teacher_throughput.py --model=linear --images=fashion_mnist:train[:20000] \
      --protocols=http,grpc,v2_http,oip_http,oip_grpc \
      --out=bench/results/teacher_throughput_linear.json

(from another checkout, e.g. a worktree, name the server: KD_KERAS_MLSERVER=PATH/mlserver).
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("savedmodel", None, "Teacher SavedModel folder.")
flags.DEFINE_string("model", None, "Instead of --savedmodel: export an untrained model of this "
                    "name (e.g. resnet32; throughput does not depend on weights) and use it; "
                    "'linear' is softmax(x @ W), also servable by MLServer (oip_* protocols).")
flags.DEFINE_string("images", "fashion_mnist:train[:20000]", "Images to send, or random:N:H:W:C.")
flags.DEFINE_list("batch_sizes", ["256", "1024"], "Images per request to try.")
flags.DEFINE_list("concurrency", ["1", "2", "4"], "Requests in flight to try (served).")
flags.DEFINE_list("protocols", ["http", "grpc", "v2_http"], "Served protocols to measure: "
                  "TF Serving REST and gRPC, and the Open Inference Protocol's REST paths of the "
                  "same server (v2_http); with --model=linear also MLServer's Open Inference "
                  "Protocol REST and gRPC (oip_http, oip_grpc).")
flags.DEFINE_string("out", "bench/results/teacher_throughput.json", "Where to write results.")
FLAGS = flags.FLAGS


def _rate(teacher, images):
    start = time.perf_counter()
    teacher.query(images)
    return len(images) / (time.perf_counter() - start)


def measure(backend, images, urls: dict, results: dict) -> None:
    """Fills ``results`` with images/s in-process and over each protocol's URL."""
    from kd_keras.teachers import Teacher, backend_from_spec

    for bs in map(int, FLAGS.batch_sizes):
        backend.predict(images[:bs])  # warm up
        results["in_process"][bs] = _rate(Teacher(backend, 10, batch_size=bs), images)
        print(f"in-process batch {bs}: {results['in_process'][bs]:.0f} images/s", flush=True)
        for protocol in FLAGS.protocols:
            for c in map(int, FLAGS.concurrency):
                teacher = Teacher(backend_from_spec(urls[protocol]), 10, batch_size=bs,
                                  concurrency=c)
                rate = _rate(teacher, images)
                results[protocol][f"{bs}x{c}"] = rate
                print(f"{protocol} batch {bs} concurrency {c}: {rate:.0f} images/s", flush=True)


def main(argv):
    del argv
    from kd_keras import data
    from kd_keras.teachers import SavedModelBackend

    if FLAGS.images.startswith("random:"):
        n, *shape = map(int, FLAGS.images.split(":")[1:])
        images = np.random.default_rng(0).random((n, *shape), dtype=np.float32)
    else:
        images = data.load(FLAGS.images).images
    savedmodel = FLAGS.savedmodel
    oip = [p for p in FLAGS.protocols if p.startswith("oip_")]
    if oip and FLAGS.model != "linear":
        raise app.UsageError(f"{', '.join(oip)} need --model=linear (MLServer's NumPy runtime)")
    tmp = tempfile.mkdtemp()
    w = np.random.default_rng(0).normal(
        size=(int(np.prod(images.shape[1:])), 10)).astype(np.float32) * 0.05
    if FLAGS.model:
        import keras

        from kd_keras import models
        from kd_keras.export import export_classifier

        savedmodel = os.path.join(tmp, "sm")
        model = (keras.Sequential([keras.Input(images.shape[1:]), keras.layers.Flatten(),
                                   keras.layers.Dense(10, use_bias=False)])
                 if FLAGS.model == "linear" else models.build(FLAGS.model, images.shape[1:], 10))
        if FLAGS.model == "linear":
            model.set_weights([w])
        export_classifier(model, tmp, "sm")
    if not savedmodel:
        raise app.UsageError("give --savedmodel or --model")
    backend = SavedModelBackend(savedmodel)
    results = {"teacher": FLAGS.model or FLAGS.savedmodel, "images": len(images),
               "image_shape": list(images.shape[1:]), "in_process": {},
               **{p: {} for p in FLAGS.protocols}}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    server = subprocess.Popen([sys.executable, os.path.join(root, "bin", "serve_teacher.py"),
                               f"--savedmodel={savedmodel}", "--port=0", "--grpc_port=0"],
                              stdout=subprocess.PIPE, text=True)
    urls = {}
    for _ in range(2):  # "serving DIR at URL" for REST, then for gRPC
        url = server.stdout.readline().strip().split(" at ")[1]
        urls["http" if url.startswith("http") else "grpc"] = url
    urls["v2_http"] = urls["http"].split(":predict")[0].replace("/v1/models/", "/v2/models/")
    with contextlib.ExitStack() as stack:
        if oip:
            sys.path.insert(0, os.path.join(root, "tests"))
            from mlserver_toy import serving

            urls["oip_http"], urls["oip_grpc"] = stack.enter_context(
                serving(os.path.join(tmp, "mlserver"), w, images.shape[1:], name="linear"))
        measure(backend, images, urls, results)
    server.kill()
    best_local = max(results["in_process"].values())
    for protocol in FLAGS.protocols:
        results[f"best_ratio_{protocol}"] = max(results[protocol].values()) / best_local
        print(f"best {protocol} / best in-process: {results[f'best_ratio_{protocol}']:.2f}",
              flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
