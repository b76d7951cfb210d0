"""Speed of the FS-BBT stages and the overhead of the tf.data pipelines.

  python bench/speed.py --teacher=savedmodel:runs/bench_fmnist/teacher/teacher \
      --report=runs/bench_fmnist/fsbbt_s0/report.json --out=bench/results/speed.json

Measures, in one process:
* student training: epochs fed by the training pipeline (shuffle, batch, prefetch from
  host arrays) against the same epochs on batches already materialised in memory;
* MixUp labelling: the streaming pipeline (generation overlapped with teacher queries)
  against generating every image first and then querying;
and copies the per-stage times of a finished run's report.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

flags.DEFINE_string("teacher", None, "Teacher spec.", required=True)
flags.DEFINE_string("unlabeled", "fashion_mnist:train[:2000]", "The real images.")
flags.DEFINE_integer("synthetic", 20000, "MixUp images for the measurements.")
flags.DEFINE_integer("epochs", 5, "Student epochs per measurement.")
flags.DEFINE_string("report", None, "report.json of a finished run, for per-stage times.")
flags.DEFINE_string("out", "bench/results/speed.json", "Where to write results.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras
    import numpy as np
    import tensorflow as tf

    from kd_keras import data, models
    from kd_keras.distill import Distiller
    from kd_keras.teachers.labelling import collect, label_batches
    from kd_keras.distill.student import training_dataset
    from kd_keras.synthesis import mixup_dataset, plan_mixup
    from kd_keras.teachers import Teacher, backend_from_spec

    real = data.load(FLAGS.unlabeled, (28, 28, 1)).images
    plan = plan_mixup(len(real), FLAGS.synthetic, fill=True)
    results = {"load_average_at_start": [round(v, 2) for v in os.getloadavg()]}

    # MixUp labelling: streaming vs generate-then-query, each with a fresh in-memory cache
    # (the SavedModel is loaded once). A first untimed pass traces both pipelines; then the
    # two alternate, and the median of each is kept.
    backend = backend_from_spec(FLAGS.teacher)
    backend.predict(real[:256])

    def streaming():
        teacher, start = Teacher(backend, 10), time.perf_counter()
        ds, raised = label_batches(mixup_dataset(real, plan), teacher)
        collect(ds, raised, len(plan), "mixup (streaming)", teacher)
        return time.perf_counter() - start

    def sequential():
        teacher, start = Teacher(backend, 10), time.perf_counter()
        teacher.query(np.concatenate(list(mixup_dataset(real, plan).as_numpy_iterator())))
        return time.perf_counter() - start

    label_times = {"streaming": [], "sequential": []}
    for rep in range(4):
        for name, fn in (("streaming", streaming), ("sequential", sequential)):
            seconds = fn()
            if rep:
                label_times[name].append(seconds)
    for name, times in label_times.items():
        results[f"mixup_label_{name}_s"] = float(np.median(times))
        results[f"mixup_label_{name}_all_s"] = [round(t, 3) for t in times]
    teacher = Teacher(backend, 10)
    ds, raised = label_batches(mixup_dataset(real, plan), teacher)
    x, y = collect(ds, raised, len(plan), "mixup (training set)", teacher)

    # Student epochs: training pipeline vs batches already in memory.
    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.times.append(time.perf_counter() - self.start)

    def fit(dataset, timer):
        keras.utils.set_random_seed(0)
        d = Distiller(models.build("lenet5_half", (28, 28, 1), 10))
        d.compile(optimizer=keras.optimizers.Adam(1e-3))
        d.fit(dataset.take(5), epochs=1, verbose=0)  # build and trace outside the timing
        d.fit(dataset, epochs=FLAGS.epochs, verbose=0, shuffle=False, callbacks=[timer])

    pipeline = training_dataset(x, y, 64, 0)
    in_memory = tf.data.Dataset.from_tensor_slices((x, y)).batch(64).cache()
    for _ in in_memory:  # materialise the cache before timing
        pass

    def iterate(dataset) -> float:
        """Median seconds to run through ``dataset`` once with no training: its own cost."""
        times = []
        for _ in range(3):
            start = time.perf_counter()
            for _ in dataset:
                pass
            times.append(time.perf_counter() - start)
        return float(np.median(times))

    results["iterate_pipeline_s"] = iterate(pipeline)
    results["iterate_in_memory_s"] = iterate(in_memory)
    # Alternate the two so a load that comes and goes (2 shared cores) hits both alike;
    # the median epoch of each is compared.
    timers = {"pipeline": EpochTimer(), "in_memory": EpochTimer()}
    for timer in timers.values():
        timer.times = []
    for _ in range(2):
        fit(pipeline, timers["pipeline"])
        fit(in_memory, timers["in_memory"])
    for name, timer in timers.items():
        results[f"student_epoch_{name}_s"] = float(np.median(timer.times))
        results[f"student_epoch_{name}_all_s"] = [round(t, 3) for t in timer.times]
    results["pipeline_overhead"] = (results["student_epoch_pipeline_s"]
                                    / results["student_epoch_in_memory_s"] - 1)
    # The pipeline's own work per epoch, as a share of an in-memory training epoch: the
    # stable part of the comparison above (epoch times on 2 shared cores are noisy).
    results["pipeline_own_cost"] = ((results["iterate_pipeline_s"] - results["iterate_in_memory_s"])
                                    / results["student_epoch_in_memory_s"])
    results["n_images"] = len(x)
    if FLAGS.report:
        results["stage_seconds_of_run"] = json.load(open(FLAGS.report))["stage_seconds"]
        results["run_report"] = FLAGS.report
    print(json.dumps(results, indent=2))
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    with open(FLAGS.out, "w") as f:
        json.dump(results, f, indent=2)


if __name__ == "__main__":
    app.run(main)
