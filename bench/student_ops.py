"""Where a student training step's time goes (issue #11): each LeNet-5-Half layer's forward
and backward at the paper's batch of 64, the whole step, and two other ways to compute the
convolutions, each timed inside one tf.function loop (no Python per step).

  python bench/student_ops.py >> bench/results/student_ops.jsonl
  TF_ENABLE_ONEDNN_OPTS=0 python bench/student_ops.py >> bench/results/student_ops.jsonl

Ways: ``conv`` is tf.nn.conv2d (oneDNN unless TF_ENABLE_ONEDNN_OPTS=0); ``patches`` is
im2col (tf.image.extract_patches then one matmul); ``depthwise`` (one input channel only)
is tf.nn.depthwise_conv2d with the same kernel: all three are the same arithmetic. Milliseconds per
step, best of 3 loops of --steps steps.
"""
import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from absl import app, flags  # noqa: E402

flags.DEFINE_integer("batch", 64, "Images per step.")
flags.DEFINE_integer("steps", 300, "Steps per timed loop.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from kd_keras import models

    sink = tf.Variable(0.0)

    def ms_per_step(fn) -> float:
        @tf.function
        def loop():
            for _ in tf.range(FLAGS.steps):
                sink.assign_add(fn())  # a side effect: nothing is pruned
        loop()
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            loop()
            best = min(best, time.perf_counter() - start)
        return round(1e3 * best / FLAGS.steps, 3)

    def total(grads):
        return tf.add_n([tf.reduce_sum(g) for g in grads])

    b = FLAGS.batch
    student = models.build("lenet5_half", (28, 28, 1), 10)
    out = {}
    for layer in student.layers[1:]:
        x = tf.random.uniform([b, *layer.input.shape[1:]])

        def layer_step(layer=layer, x=x):
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(layer(x, training=True))
            return total(tape.gradient(y, [x] + layer.trainable_variables))
        out[f"layer {layer.name} fwd+bwd"] = ms_per_step(layer_step)

    images = tf.random.uniform([b, 28, 28, 1])
    targets = tf.nn.softmax(tf.random.normal([b, 10]))
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(student.trainable_variables)

    def whole_step():
        with tf.GradientTape() as tape:
            logits = student(images, training=True)
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(targets, logits))
        optimizer.apply(tape.gradient(loss, student.trainable_variables),
                        student.trainable_variables)
        return loss
    out["whole step (forward, backward, Adam)"] = ms_per_step(whole_step)

    for side, c_in, c_out, padding in ((28, 1, 3, "SAME"), (14, 3, 8, "VALID")):
        x = tf.random.uniform([b, side, side, c_in])
        w = tf.Variable(tf.random.normal([5, 5, c_in, c_out]))

        def conv(x=x, w=w, padding=padding):
            return tf.nn.conv2d(x, w, 1, padding)

        def patches(x=x, w=w, padding=padding, c_in=c_in, c_out=c_out):
            p = tf.image.extract_patches(x, [1, 5, 5, 1], [1, 1, 1, 1], [1, 1, 1, 1], padding)
            flat = tf.reshape(p, [-1, 25 * c_in]) @ tf.reshape(w, [25 * c_in, c_out])
            return tf.reshape(flat, tf.concat([tf.shape(p)[:3], [c_out]], 0))

        def depthwise(x=x, w=w):  # a one-channel input: the same arithmetic, another kernel
            return tf.nn.depthwise_conv2d(x, w, [1, 1, 1, 1], "SAME")

        ways = [("conv", conv), ("patches", patches)] + ([("depthwise", depthwise)]
                                                         if c_in == 1 else [])
        for name, fn in ways:
            def step(fn=fn, x=x, w=w):
                with tf.GradientTape() as tape:
                    tape.watch(x)
                    y = tf.reduce_sum(tf.nn.relu(fn()))
                return total(tape.gradient(y, [x, w]))
            out[f"{side}x{side} {c_in}->{c_out} 5x5 as {name} fwd+bwd"] = ms_per_step(step)

    for k, v in out.items():
        print(f"{k:45s} {v:8.3f} ms/step", file=sys.stderr)
    print(json.dumps({"batch": b, "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default"),
                      "load_at_start": round(os.getloadavg()[0], 2), "ms_per_step": out,
                      "finished": time.strftime("%Y-%m-%d %H:%M")}))


if __name__ == "__main__":
    app.run(main)
