"""The paper's table, measured here: one distill run per (row, seed), each appended to a
JSONL file as it finishes, so a long benchmark survives interruptions (rerun to continue).

  python bench/paper_table.py --config=configs/fashion_mnist.py --seeds=0,1,2 \
      --rows=student_alone,standard_kd,real_mixup,real_cvae,fsbbt,upper_bound \
      --workroot=runs/bench_fmnist --out=bench/results/fashion_mnist.jsonl

Rows: student_alone (N real images, true labels), standard_kd (N real, teacher labels),
real_mixup, real_cvae, fsbbt (real + MixUp + CVAE), upper_bound (all labelled training
images, true labels), default (the config's own defaults, nothing changed), fsbbt_M<count> (FS-BBT with M = count synthetic images), and
<row>@<variant>[+<variant>...] to run a row with named sets of extra overrides (see
VARIANTS; ``B10000`` is a training budget of 10,000 answers). One teacher is trained (or
reused) under WORKROOT and every run shares one answer cache. ``--answers=topk|label``
makes the teacher answer only its top 5 (classes and scores) or its top-1 class, as many
prediction APIs do: a SavedModel wrapping the teacher's, so nothing else changes.
"""

import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags  # noqa: E402

from teacher_twins import teacher_seed, teacher_twins, with_overrides  # noqa: E402

flags.DEFINE_string("config", "configs/fashion_mnist.py", "Experiment config file.")
flags.DEFINE_list("rows", ["student_alone", "standard_kd", "real_mixup", "real_cvae", "fsbbt",
                           "upper_bound"], "Rows to run (see module doc).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds: each draws its own N real images and init.")
flags.DEFINE_string("workroot", "runs/bench", "Folder for the teacher, cache and each run.")
flags.DEFINE_string("out", "bench/results/results.jsonl", "JSONL file results are appended to.")
flags.DEFINE_list("overrides", [], "Extra --config.* overrides for every run, e.g. "
                  "student.epochs=20.")
flags.DEFINE_integer("teacher_seed", None, "Seed the bench teacher is trained with (default: "
                     "the config's seed); a teacher already under WORKROOT must have been "
                     "trained with it.")
flags.DEFINE_enum("answers", "probs", ["probs", "topk", "label"],
                  "What the teacher answers: all probabilities, the top 5, or the top-1 class.")
FLAGS = flags.FLAGS

# Every row starts from the paper's method whatever the config's defaults are; rows and
# variants change only what they name.
PAPER_METHOD = ["student.lr_schedule=constant", "synthesis.selection=random",
                "student.loss=soft_ce", "student.augment=none", "student.ema=0.0",
                "student.batch_mix=none", "student.batch_size=64", "student.learning_rate=0.001",
                "student.epochs=50", "unpaid.count=0"]
ROWS = {
    "student_alone": ["synthesis.sources=real", "student.targets=true_labels"],
    "standard_kd": ["synthesis.sources=real"],
    "real_mixup": ["synthesis.sources=real,mixup"],
    "real_cvae": ["synthesis.sources=real,cvae"],
    "real_cutmix": ["synthesis.sources=real,cutmix"],
    "fsbbt": ["synthesis.sources=real,mixup,cvae"],
    "upper_bound": ["synthesis.sources=real", "student.targets=true_labels"],
}
# Named changes to try on top of a row, written <row>@<variant>.
VARIANTS = {
    "kl4": ["student.loss=kl", "student.temperature=4.0"],
    "cosine": ["student.lr_schedule=cosine"],
    "ema": ["student.ema=0.999"],     # weight averaging over about the last 1,000 steps
    "ema4": ["student.ema=0.9999"],   # ... over about the last 10,000 steps
    "uncertain": ["synthesis.selection=uncertainty"],
    "cosine_uncertain": ["student.lr_schedule=cosine", "synthesis.selection=uncertainty"],
    "cosine80": ["student.lr_schedule=cosine", "student.epochs=80"],
    "uncertain_shift": ["synthesis.selection=uncertainty", "student.augment=shift"],
    "uncertain_flip_shift": ["synthesis.selection=uncertainty", "student.augment=flip_shift"],
    "uncertain_kl4": ["synthesis.selection=uncertainty", "student.loss=kl", "student.temperature=4.0"],
    "uncertain_e100": ["synthesis.selection=uncertainty", "student.epochs=100"],
    "uncertain_w03": ["synthesis.selection=uncertainty", "selection.warmup=0.3"],
    "uncertain_pool6": ["synthesis.selection=uncertainty", "selection.pool_factor=6.0"],
    "uncertain_cutmix": ["synthesis.selection=uncertainty", "selection.generators=cutmix"],
    "half_mixup": ["synthesis.sources=real,mixup:0.5,cutmix:0.5"],
    "bmix": ["student.batch_mix=cutmix"],   # unpaid CutMix of answered images, half a batch
    "bmixup": ["student.batch_mix=mixup"],  # unpaid MixUp of answered images, half a batch
    "cvae_mlp": ["cvae.architecture=mlp"],    # FS-BBT's own dense CVAE
    "cvae_conv": ["cvae.architecture=conv"],  # the convolutional CVAE of rows before 2026-11-28
    "bs128": ["student.batch_size=128", "student.learning_rate=0.002"],  # half the steps
    "e150": ["student.epochs=150"],
    "e80": ["student.epochs=80"],
    "kl2": ["student.loss=kl", "student.temperature=2.0"],
    "e100": ["student.epochs=100"],
    "real4": ["student.real_repeat=4"],  # the real images 4 times an epoch
    "real10": ["student.real_repeat=10"],  # ... 10 times (at 50,000 answers 0.8 % of a set)
    "auto": ["student.epochs=0"],  # 50 epochs, more for small sets (student.min_steps)
    "shift": ["student.augment=shift"],
    "flip": ["student.augment=flip_shift"],  # mirrored and shifted copies reuse each answer
    "mirror": ["student.augment=flip"],  # mirrored copies only
    # the default since 2026-12-03 (augment=auto asks the teacher which of flip and shift
    # keep the class, 2 x 200 answers), named so rows of the old default stay apart
    "checked": ["student.augment_check=200"],
    "nounpaid": ["unpaid.count=0"],  # the default before unpaid images (2026-12-03)
    # the default of 2026-12-03/04, named so its rows stay apart from the rows of a bare
    # "default@..." recorded before it: twice the planned answers in unpaid CutMix images,
    # labelled by 3 first students of the student's own model (every unpaid setting named,
    # so the row keeps its meaning when the defaults move)
    "unpaid2x": ["unpaid.count=-1", "unpaid.factor=2", "unpaid.students=3", "unpaid.model="],
    # 4x the planned answers, labelled by one first student of the config's teacher.model
    "unpaid4x": ["unpaid.count=-1", "unpaid.factor=4", "unpaid.students=1",
                 "unpaid.model=teacher"],
    # fresh CutMix of each second-student batch, answered by the first students in the step
    "fresh05": ["unpaid.fresh=0.5"],
    "fresh1": ["unpaid.fresh=1.0"],
    "fresh2": ["unpaid.fresh=2.0"],
    "students5": ["unpaid.students=5"],  # 5 first students label the unpaid images
    "f8": ["unpaid.factor=8"],  # 8x the planned answers in unpaid images, not 4x
    "f2": ["unpaid.factor=2"],  # ... twice, not 4x
    "le20": ["unpaid.epochs=20"],  # the first students train 20 epochs (time, not answers)
    # ... about student.min_steps steps: fewer than 50 epochs on a large paid set only
    "lsteps": ["unpaid.epochs=-1"],
    # ... 21 epochs, what -1 gives at 50,000 answers: the same first students beside a
    # student.epochs variant (which would set theirs too)
    "le21": ["unpaid.epochs=21"],
    # the paid images twice an epoch beside the unpaid ones: the teacher's answers weigh more
    "prep2": ["unpaid.paid_repeat=2"],
    "rounds2": ["unpaid.rounds=2"],  # a second round of first students relabels them
    # one first student of the config's teacher.model (twice the student's width in every
    # config here) labels the unpaid images: about the cost of three of the student's own
    "tm1": ["unpaid.students=1", "unpaid.model=teacher"],
    "tm3": ["unpaid.students=3", "unpaid.model=teacher"],  # ... three of them
    # three LeNet-5s at twice the teacher's width label the unpaid images (grey data sets)
    "wide3": ["unpaid.students=3", "unpaid.model=lenet5_wide"],
    # the first students learn the paid answers at KL T = 4, the student at its 2
    "lt4": ["unpaid.temperature=4"],
    # auto epochs capped at about 40,000 steps: the second student on 250,000 images at
    # 50,000 answers trains 20 epochs, not 50 (the first students and smaller sets as before)
    "cap40k": ["student.max_steps=40000"],
    # choosing in rounds (kd_keras/synthesis/selection.py, choosers.py): CutMix images paid
    # for in 4 rounds after a random half, each round's probe choosing, class-balanced
    # a primer (kd_keras/distill/primer.py): a second student on the answers mixed with the
    # first student's softened predictions
    "primer3": ["primer.weight=0.3"],
    "primer5": ["primer.weight=0.5"],
    "kcenter4": ["synthesis.selection=kcenter", "selection.generators=cutmix",
                 "selection.rounds=4", "selection.balance=True"],
    "uncertain4": ["synthesis.selection=uncertainty", "selection.generators=cutmix",
                   "selection.rounds=4", "selection.balance=True"],
    # self-training (kd_keras/distill/unpaid.py): a second student also learns from unpaid
    # CutMix images answered by the first
    # (the rows below that name no unpaid.model ran with the student's own, "")
    "unpaid40k": ["unpaid.count=40000", "unpaid.students=1", "unpaid.model="],
    "unpaid40k_c8": ["unpaid.count=40000", "unpaid.students=1", "unpaid.min_confidence=0.8",
                     "unpaid.model="],
    # warps (kd_keras/synthesis/warp.py): real images turned, scaled and shifted a little,
    # paid for beside CutMix (a quarter or half of the synthetic budget; mirrored half of them)
    "warp25": ["synthesis.sources=real,cutmix:0.75,warp:0.25"],
    "warp50": ["synthesis.sources=real,cutmix:0.5,warp:0.5"],
    "warpflip25": ["synthesis.sources=real,cutmix:0.75,warp:0.25", "warp.flip=0.5"],
    "cm_a05": ["cutmix.alpha=0.5"],  # box areas ~ Beta(0.5, 0.5): more small and large boxes
    "cm_a2": ["cutmix.alpha=2.0"],    # ... Beta(2, 2): boxes nearer half the image
    # a feature hint (kd_keras/distill/hint.py): the student's last hidden layer, through a
    # learned map, pulled toward the first first student's (FitNets)
    "hint1": ["unpaid.hint=1.0"],
    "cmh05": ["cutmix.high=0.5"],  # boxes cover at most half: images nearer a real one
    "unpaidwarp40k": ["unpaid.count=40000", "unpaid.students=1", "unpaid.generator=warp",
                      "unpaid.model="],
    "ens3unpaid40k": ["unpaid.count=40000", "unpaid.students=3", "unpaid.model="],  # 3 answer
    "ens5unpaid40k": ["unpaid.count=40000", "unpaid.students=5", "unpaid.model="],  # 5 answer
    "ens3unpaid20k": ["unpaid.count=20000", "unpaid.students=3", "unpaid.model="],  # cheaper
    # the first students are the teacher-sized LeNet-5 (Fashion-MNIST, MNIST): a better
    # labeller the student never sees
    "ens3lenet5unpaid40k": ["unpaid.count=40000", "unpaid.students=3", "unpaid.model=lenet5"],
    "ens5lenet5unpaid40k": ["unpaid.count=40000", "unpaid.students=5", "unpaid.model=lenet5"],
    "ens3lenet5unpaid80k": ["unpaid.count=80000", "unpaid.students=3", "unpaid.model=lenet5"],
    "t1": ["student.temperature=1.0"],  # KL at T = 1: the targets as they are
    "c5": ["unpaid.min_confidence=0.5"],  # unpaid images the labellers are less sure of left out
    "uwarp": ["unpaid.generator=warp"],  # the unpaid images are warps of the real ones
    # ... the config's teacher.model whatever the data set (cnn4 for CIFAR-10 (JPEG))
    "ens3tmunpaid40k": ["unpaid.count=40000", "unpaid.students=3", "unpaid.model=teacher"],
    "hard": ["student.loss=hard_ce"],
    "smooth": ["student.loss=smooth_ce", "student.label_smoothing=0.1"],
    "with_cvae": ["synthesis.sources=real,cutmix:0.89,cvae:0.11"],
}


def _merge(*override_lists: list[str]) -> list[str]:
    """Overrides as one list in which a later setting of a key replaces an earlier one."""
    merged: dict[str, str] = {}
    for overrides in override_lists:
        merged.update(o.split("=", 1) for o in overrides)
    return [f"{k}={v}" for k, v in merged.items()]


def variant_overrides(variant: str) -> list[str]:
    """Overrides of ``v1+v2+...``: named VARIANTS, or ``B<count>`` for a training budget of
    <count> answers (the run plans M = count - N)."""
    out: list[list[str]] = []
    for name in filter(None, variant.split("+")):
        if name[:1] == "B" and name[1:].isdigit():
            out.append([f"query.budget={int(name[1:])}"])
        elif name in VARIANTS:
            out.append(VARIANTS[name])
        else:
            raise ValueError(f"unknown variant {name!r}")
    return _merge(*out)


def row_overrides(row: str) -> tuple[list[str], str | None]:
    """(config overrides, --unlabeled override) for a row name."""
    base, _, variant = row.partition("@")
    extra = variant_overrides(variant)
    if base.startswith("fsbbt_M"):
        return _merge(PAPER_METHOD, ROWS["fsbbt"], [f"synthesis.num_synthetic={int(base[7:])}"],
                      extra), None
    if base == "default":  # the config's own defaults, as a user runs it (rows recorded before
        return extra, None  # 2026-12-03 ran with no unpaid images: @...+nounpaid today)
    if base not in ROWS:
        raise ValueError(f"unknown row {row!r}")
    return _merge(PAPER_METHOD, ROWS[base], extra), ("ALL" if base == "upper_bound" else None)


def done_runs(path: str, teacher_acc: float) -> set:
    """(row, seed, answers) already measured in ``path`` against a teacher of the same
    whole-test-set accuracy: a teacher retrained on another machine differs (the same
    command and seed gave 89.34 % on one machine and 90.51 % on another), and its rows are
    measured anew rather than mixed with the old teacher's."""
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {(r["row"], r["seed"], r.get("answers", "probs")) for r in map(json.loads, f)
                if r.get("report") and r.get("teacher_test_accuracy") is not None
                and round(r["teacher_test_accuracy"], 4) == round(teacher_acc, 4)}


def main(argv):
    del argv
    os.makedirs(FLAGS.workroot, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
    py = sys.executable
    teacher_dir = os.path.join(FLAGS.workroot, "teacher")
    trained = os.path.exists(os.path.join(teacher_dir, "teacher", "saved_model.pb"))
    # the seed the teacher was (or is about to be) trained with
    wanted = int(_config().seed) if FLAGS.teacher_seed is None else FLAGS.teacher_seed
    seed_of_teacher = teacher_seed(teacher_dir) if trained else wanted
    if FLAGS.teacher_seed is not None and seed_of_teacher != wanted:
        sys.exit(f"error: the teacher in {teacher_dir} was trained with seed {seed_of_teacher},"
                 f" not --teacher_seed={wanted}; use another --workroot")
    refuse_teacher_twins(seed_of_teacher)
    if not trained:
        train_teacher(teacher_dir, seed_of_teacher)
    teacher_model = os.path.join(teacher_dir, "teacher")
    answer_overrides = []
    if FLAGS.answers != "probs":
        teacher_model = _answer_only_teacher(teacher_model, FLAGS.answers)
        answer_overrides = [f"query.output={FLAGS.answers}"]
    teacher_acc = teacher_test_accuracy(os.path.join(teacher_dir, "teacher"))
    print(f"bench: teacher accuracy on the whole test set {teacher_acc:.4f}", flush=True)
    done = done_runs(FLAGS.out, teacher_acc)
    for seed in map(int, FLAGS.seeds):
        for row in FLAGS.rows:
            if (row, seed, FLAGS.answers) in done:
                print(f"bench: {row} seed {seed} already in {FLAGS.out}", flush=True)
                continue
            overrides, unlabeled = row_overrides(row)
            name = row if FLAGS.answers == "probs" else f"{row}_{FLAGS.answers}"
            workdir = os.path.join(FLAGS.workroot, f"{name}_s{seed}")
            cmd = [py, os.path.join(ROOT, "bin", "distill.py"), f"--config={FLAGS.config}",
                   f"--workdir={workdir}", f"--teacher=savedmodel:{teacher_model}",
                   f"--cache={os.path.join(FLAGS.workroot, 'teacher_cache.sqlite')}",
                   f"--config.seed={seed}"]
            cmd += [f"--config.{o}" for o in _merge(overrides, answer_overrides, FLAGS.overrides)]
            if unlabeled == "ALL":
                cmd.append("--unlabeled=" + _train_spec())
            resumed = interrupted(workdir)
            if resumed:  # nothing paid or trained is thrown away; settings are checked
                cmd.append("--resume")
            print(f"bench: {row} seed {seed}: {' '.join(cmd[2:])}", flush=True)
            start = time.time()
            proc = subprocess.run(cmd, capture_output=True, text=True)
            with open(os.path.join(FLAGS.workroot, f"{name}_s{seed}.log"), "w") as f:
                f.write(proc.stdout + proc.stderr)
            if proc.returncode != 0:
                print(f"bench: {row} seed {seed} FAILED:\n{proc.stderr[-2000:]}", flush=True)
                continue
            report = json.load(open(os.path.join(workdir, "report.json")))
            record = {"command": "python " + " ".join(sys.argv), "config": FLAGS.config,
                      "row": row, "seed": seed, "answers": FLAGS.answers,
                      "teacher_test_accuracy": teacher_acc, "teacher_seed": seed_of_teacher,
                      "machine": machine(),
                      "overrides": _merge(overrides, answer_overrides, FLAGS.overrides), "report": report, "finished": time.strftime("%Y-%m-%d %H:%M"),
                      "seconds": round(time.time() - start, 1)}
            if resumed:  # its seconds are the resumed part's only
                record["resumed"] = True
            with open(FLAGS.out, "a") as f:
                f.write(json.dumps(record) + "\n")
            print(f"bench: {row} seed {seed}: student accuracy "
                  f"{report.get('student_accuracy', float('nan')):.4f}, queries "
                  f"{report['teacher_queries']}, {record['seconds']}s", flush=True)


def train_teacher(teacher_dir: str, seed: int) -> None:
    """Trains the bench teacher into ``teacher_dir`` with ``bin/train_teacher.py``, the
    config and ``seed`` (plus the ``data.``/``teacher.`` overrides a run is given)."""
    subprocess.run([sys.executable, os.path.join(ROOT, "bin", "train_teacher.py"),
                    f"--config={FLAGS.config}", f"--workdir={teacher_dir}", f"--config.seed={seed}"]
                   + [f"--config.{o}" for o in FLAGS.overrides
                      if o.startswith(("data.", "teacher."))], check=True)


def refuse_teacher_twins(seed_of_teacher: int) -> None:
    """Exits with one error line, before anything runs, when a (row, seed) would start a
    model from the bench teacher's own initial weights (:mod:`teacher_twins`)."""
    config = _config()
    clashes = []
    for seed in map(int, FLAGS.seeds):
        for row in FLAGS.rows:
            overrides = [f"seed={seed}"] + row_overrides(row)[0] + FLAGS.overrides
            twins = teacher_twins(with_overrides(config, overrides), seed_of_teacher)
            if twins:
                clashes.append(f"{row} seed {seed} ({', '.join(twins)})")
    if clashes:
        sys.exit(f"error: {'; '.join(clashes)} would start from the initial weights of the "
                 f"bench teacher (trained with seed {seed_of_teacher}), which no user has; "
                 "run other seeds (e.g. --seeds=1,2,3)")


def interrupted(workdir: str) -> bool:
    """Whether ``workdir`` holds a kd_keras run that started (its training set's manifest is
    written) but wrote no report: a benchmark killed with its session is then continued with
    ``--resume`` (answers from the cache, the first students' answers and the students'
    checkpoints kept) instead of being started over."""
    return (os.path.exists(os.path.join(workdir, "training_set.json"))
            and not os.path.exists(os.path.join(workdir, "report.json")))


def machine() -> str:
    """The CPU the run measured on (teachers and timings differ between machines)."""
    import platform

    try:
        with open("/proc/cpuinfo") as f:
            names = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")]
    except OSError:
        names = []
    return f"{names[0] if names else platform.processor() or platform.machine()}, " \
           f"{os.cpu_count()} cores"


def _answer_only_teacher(path: str, answers: str, k: int = 5) -> str:
    """A SavedModel beside ``path`` whose signature answers only the top ``k`` classes and
    their scores (``topk``) or the top-1 class (``label``) of the teacher at ``path``."""
    out = f"{path}_{answers}"
    if os.path.exists(os.path.join(out, "saved_model.pb")):
        return out
    import tensorflow as tf

    inner = tf.saved_model.load(path)
    fn = inner.signatures["serving_default"]
    name, spec = next(iter(fn.structured_input_signature[1].items()))

    class AnswerOnly(tf.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        @tf.function(input_signature=[tf.TensorSpec(spec.shape, spec.dtype, name=name)])
        def serve(self, images):
            probs = next(iter(fn(**{name: images}).values()))
            if answers == "label":
                return {"label": tf.argmax(probs, -1)}
            top = tf.math.top_k(probs, k)
            return {"classes": top.indices, "scores": top.values}

    module = AnswerOnly()
    tf.saved_model.save(module, out, signatures={"serving_default": module.serve})
    return out


def _config():
    from kd_keras.config import from_file

    return from_file(FLAGS.config, ROOT)


def _train_spec() -> str:
    return _config().data.train


def teacher_test_accuracy(savedmodel: str) -> float:
    """The teacher's accuracy on the config's whole test set, measured in this process (no
    answers are bought: the bench owns the teacher), so shares of the teacher are exact."""
    import numpy as np

    from kd_keras import data
    from kd_keras.teachers import SavedModelBackend

    config = _config()
    test = data.load(config.data.test, config.data.image_shape,
                     data_dir=config.data.data_dir or None)
    backend = SavedModelBackend(savedmodel)
    predictions = np.concatenate([np.asarray(backend.predict(test.images[i:i + 1000])).argmax(1)
                                  for i in range(0, len(test), 1000)])
    return float(np.mean(predictions == test.labels))


if __name__ == "__main__":
    app.run(main)
