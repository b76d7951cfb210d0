"""Builds docs/RESULTS.md (tables and a plot) from the benchmark JSONL files: every number
in it is read from a measured run, none is typed in.

  python bench/make_results.py
"""

import glob
import json
import os
import platform
import re
import textwrap
from collections import defaultdict

import numpy as np

from teacher_twins import teacher_twins, with_overrides

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
DOCS = os.path.join(ROOT, "docs")

# The paper's Table (FS-BBT, ECCV 2022) and DivBFKD (2024), from ../shared/DESIGN.md.
PAPER = {
    "fashion_mnist": {"teacher": 90.15, "student_alone": 81.37, "standard_kd": 83.87,
                      "fsbbt": 84.73, "divbfkd": 86.50, "answers": 50000},
    "mnist": {"teacher": 99.18, "student_alone": 95.97, "standard_kd": 95.99, "fsbbt": 98.42,
              "divbfkd": 98.58, "answers": 26000},
    # CIFAR-10 (AlexNet -> AlexNet-Half); ours is CIFAR-10 (JPEG) with a CPU-sized pair, so
    # only the shares of each run's own teacher compare.
    "cifar10_jpeg": {"teacher": 84.07, "fsbbt": 74.10, "divbfkd": 76.97, "answers": 42000},
}
# The papers' students as shares of their own teachers (FS-BBT: 84.73 of 90.15; DivBFKD:
# 86.50 of 90.90), for the share column.
PAPER_SHARES = {"fashion_mnist": "94.0 % of its 90.15 % teacher (DivBFKD: 95.2 % of 90.90 %)",
                "mnist": "99.2 % of its 99.18 % teacher (DivBFKD: 99.3 % of 99.28 %)",
                "cifar10_jpeg": "88.1 % of its 84.07 % teacher on CIFAR-10, AlexNet -> "
                                "AlexNet-Half (DivBFKD: 85.5 % of 90.05 %)"}
# The headline: per data set and budget (answers), the records of our default and of the
# paper's method measured here, as (result file, row). Runs before the "default" row existed
# name the default's settings: real + CutMix, KL T = 2, batch 128, EMA 0.999, auto epochs
# (at 50K answers auto epochs are the 50 the rule gives).
HEADLINE = {
    # today's default (unpaid.count=-1: three first students of the config's teacher.model
    # label 4x the budget of unpaid images; rows named for it: unpaid4x+tm3, or at 10,000
    # answers ens3lenet5unpaid40k where LeNet-5 is the teacher's model) against the teachers
    # of the newest sections; where it is not measured yet, the default before it (one first
    # student: unpaid4x, unpaid40k+tm1, ens3unpaid20k+tm1; HEADLINE_BEFORE says so)
    # a teacher of another seed (11), the nearest here to the 89.34 % one issue #26's targets
    # were set on (bench/teacher_seeds.py; section "Bench teachers by seed"); these two are
    # filled by _today below, named here for the headline's order
    "fashion_mnist_t89_79": None,
    "fashion_mnist_t90_51": None,
    "fashion_mnist": {
        10000: {"default": ("fashion_mnist.budget", "default@B10000+checked"),
                "paper": ("fashion_mnist.budget", "fsbbt@B10000")},
        50000: {"default": ("fashion_mnist.plugins", "real_cutmix@kl2+bs128+ema"),
                "paper": ("fashion_mnist.plugins", "fsbbt@cvae_mlp")}},
    "mnist_t98_78": {
        5000: {"default": ("mnist_t98_78", "default@B5000+checked+unpaid4x+tm3"),
               "paper": ("mnist_t98_78", "fsbbt@B5000")},
        10000: {"default": ("mnist_t98_78", "default@B10000+checked+ens3lenet5unpaid40k"),
                "paper": ("mnist_t98_78", "fsbbt@B10000")},
        26000: {"default": ("mnist_t98_78", "default@B26000+checked+unpaid4x+tm3"),
                "paper": ("mnist_t98_78", "fsbbt")}},
    "mnist": {
        10000: {"default": ("mnist", "default@B10000+checked"),
                "paper": ("mnist", "fsbbt@B10000")},
        26000: {"default": ("mnist", "default@B26000+checked"), "paper": ("mnist", "fsbbt")}},
    # the default on colour images flips and shifts (student.augment=auto): rows run before
    # that rule name it (+flip)
    "cifar10_jpeg": {
        5000: {"default": ("cifar10_jpeg", "default@B5000+checked+ens3unpaid20k+tm1"),
               "paper": ("cifar10_jpeg", "fsbbt@B5000")},
        10000: {"default": ("cifar10_jpeg", "default@B10000+checked+ens3unpaid20k"),
                "paper": ("cifar10_jpeg", "fsbbt@B10000")},
        42000: {"default": ("cifar10_jpeg", "default@B42000+checked"),
                "paper": ("cifar10_jpeg", "fsbbt@B42000")}},
    # the cnn4 teacher retrained by the same command on the machine of 2026-12-04 (session 25)
    "cifar10_jpeg_t84_80": {
        5000: {"default": ("cifar10_jpeg_t84_80", "default@B5000+checked+unpaid4x+tm3"),
               "paper": ("cifar10_jpeg_t84_80", "fsbbt@B5000")}},
}


def _today(tag: str) -> dict:
    """Headline cells of today's default and the paper's method at 5,000, 10,000 and 50,000
    answers in the results ``tag`` (the Fashion-MNIST teachers of the newest sections)."""
    rows = {5000: "default@B5000+checked+unpaid4x+tm3",
            10000: "default@B10000+checked+ens3lenet5unpaid40k",
            50000: "default@B50000+checked+unpaid4x+tm3"}
    return {b: {"default": (tag, row), "paper": (tag, f"fsbbt@B{b}")} for b, row in rows.items()}


HEADLINE.update({t: _today(f"{t}.budget")
                 for t in ("fashion_mnist_t89_79", "fashion_mnist_t90_51")})
# today's default where unpaid.epochs=-1 changes it (above about 20,000 answers): measured
# against these teachers; the 90.51 % one's 50,000 cell ran the default before it
HEADLINE["fashion_mnist_t89_79"][50000]["default"] = (
    "fashion_mnist_t89_79.rerun", "default@B50000+checked+unpaid4x+tm3+lsteps")
HEADLINE["mnist_t98_78"][26000]["default"] = ("mnist_t98_78",
                                              "default@B26000+checked+unpaid4x+tm3+lsteps")


# Headline cells whose default ran before today's augmentation rule (student.augment=auto
# asking the teacher, 2026-12-03): what they ran instead.
BEFORE_UNPAID = "before unpaid images: unpaid.count=0"
BEFORE_TM1 = ("the default before 2026-12-04: 2x the answers in unpaid images, 3 first "
              "students of the student's model")
BEFORE_TM3 = "the default of 2026-12-04: one first student of the teacher's model"
BEFORE_LSTEPS = "the default before session 33: first students trained 50 epochs"
HEADLINE_BEFORE = {("fashion_mnist", 50000): "before the augmentation rule, which chooses no "
                                             "augmentation with this teacher, and " + BEFORE_UNPAID,
                   ("fashion_mnist", 10000): BEFORE_UNPAID, ("mnist", 10000): BEFORE_UNPAID,
                   ("mnist", 26000): BEFORE_UNPAID, ("cifar10_jpeg", 42000): BEFORE_UNPAID,
                   ("cifar10_jpeg", 10000): BEFORE_TM1, ("cifar10_jpeg", 5000): BEFORE_TM3,
                   ("fashion_mnist_t90_51", 50000): BEFORE_LSTEPS}
# What a data set's section says before its table.
DATASET_NOTES = {
    "cifar10_jpeg": "CIFAR-10 (JPEG): the workplace's lossy JPEG re-encode of CIFAR-10 "
                    "(`configs/cifar10_jpeg.py`), with a CPU-sized pair: teacher `cnn4` "
                    "(24.5 MMAC per image, trained 30 epochs with flips and shifts), student "
                    "`cnn4_half` (6.3 MMAC, a quarter). Compare with published CIFAR-10 figures "
                    "only as shares of each run's teacher. `default@B10000` ran before any "
                    "augmentation rule; `default@B10000+flip` with the rule for colour images "
                    "that came next (always flip_shift); rows ending in `+checked` are today's "
                    "default, which asks the teacher (it chose flip_shift on every seed here). "
                    "`upper_bound` trains the student on all 50,000 true labels with the paper's "
                    "recipe (no augmentation): the recipe's ceiling, not the student's.",
}
MAIN_SEEDS = 3  # rows with fewer seeds are explorations (docs/EXPLORATIONS.md)
# Result files named <dataset>.<tag>.jsonl hold reruns under changed conditions; each tag says which.
TAG_NOTES = {
    "teacher_b": "The same benchmark rerun on a second machine of the same kind, with a teacher "
                 "retrained there by the same command and seed (`bin/train_teacher.py`, through "
                 "`bench/paper_table.py`): floating-point differences between CPUs give a "
                 "different teacher, so these runs are compared only with each other, seed by seed. "
                 "That machine ran these runs about 4x slower (two at a time, as before): wall "
                 "seconds are not comparable with the first section.",
    "plugins": "Runs after the synthesizer plug-in refactor (issue #9): generators behind one "
               "interface, CutMix added, `steps_per_execution` for the student. The teacher was "
               "retrained on this session's machine by the same command and seed and scored "
               "89.34 %, as the first section's. Runs shared the two cores with the test suite "
               "and each other's tooling: wall seconds are not speed measurements. Later runs take "
               "the teacher's accuracy and the agreement from a 1,000-image sample of the test set "
               "(`eval.teacher_sample`); the student's accuracy is always on all 10,000. "
               "CutMix against MixUp (real + X, random choice, first section's MixUp rows), seed "
               "by seed: 86.68 vs 85.08, 86.65 vs 86.00, 85.75 vs 85.02: CutMix wins on each of "
               "the 3 seeds, +1.0 points on average. Uncertainty selection of CutMix images "
               "(one seed so far) was worse than random CutMix: 85.78 vs 86.68. Rows named "
               "with FS-BBT's own MLP CVAE use the paper's dense CVAE (`cvae.architecture=mlp`, "
               "the Fashion-MNIST config's choice since 2026-11-28); every other CVAE row used "
               "the convolutional one.",
}
TAG_NOTES.update({
    "reproduce": "The check that the refactors of 2026-12-02 (registries, settings table, "
                 "paid-answer ledger, BatchNorm recomputation) changed no result: our default "
                 "and the paper's method, seed 0, against a teacher retrained on this machine "
                 "by the same command and seed, beside the same rows of earlier sections.",
    "budget": "Budget-first runs (issue #12) against the plugins section's teacher (89.34 %): a "
              "row ending in `B<count>` ran with `--config.query.budget=<count>`, so it planned "
              "M = count - 2,000 synthetic images and paid at most <count> training answers. "
              "The teacher's accuracy and the agreement come from a 1,000-image sample of the "
              "test set (`eval.teacher_sample`), at most 1,000 answers, never from the training "
              "budget; the student's accuracy is on all 10,000 test images, which needs no answers.",
    "answers": "Teachers that answer less (issue #12): the same teacher behind a SavedModel "
               "that answers only its top 5 classes with their scores (`--answers=topk`; the "
               "student learns with soft cross-entropy on the partial answer, the missing mass "
               "spread evenly over the other classes) or only its top-1 class (`--answers=label`, "
               "with hard or label-smoothed cross-entropy, `hard`/`smooth`). Real + CutMix "
               "otherwise as the default; a row ending in `B<count>` had that training budget.",
})
# Notes on sections of a teacher other than the first (``<data set>_t<acc>.<tag>``), by tag.
OWN_TEACHER_NOTES = {
    "rerun": "Rows run again on a later machine of the same kind (2026-12-05), against the "
             "89.79 % teacher (seed 11) retrained there by the same command: it came out the "
             "same to the last digit. Runs repeat exactly on that machine (FS-BBT at 5,000 "
             "answers, seed 1: 83.79 % twice), but not always across machines (84.17 % "
             "before; today's default gave 86.39 % at 10,000 answers, seed 1, and 88.01 / "
             "87.58 % at 50,000, seeds 1 and 2, on both). So the rows here are compared with "
             "each other, seed by seed, run in one sitting; a run after another of the same "
             "seed found the paid answers in the workroot's cache.",
}
ROW_NAMES = {
    "student_alone": "student alone (N real, true labels)",
    "standard_kd": "standard KD (N real, teacher labels)",
    "default": "kd_keras default (the config's own settings)",
    "real_mixup": "real + MixUp",
    "real_cvae": "real + CVAE",
    "real_cutmix": "real + CutMix (Yun et al., 2019)",
    "fsbbt": "FS-BBT (real + MixUp + CVAE)",
    "upper_bound": "upper bound (all labelled train images)",
    "fsbbt@cosine": "FS-BBT + cosine learning-rate decay",
    "fsbbt@uncertain": "FS-BBT + uncertainty-selected MixUp",
    "fsbbt@kl4": "FS-BBT + KL loss, T = 4",
    "fsbbt@cosine_uncertain": "FS-BBT + cosine decay + uncertainty-selected MixUp",
    "fsbbt@uncertain_shift": "FS-BBT + uncertainty + shifted copies (augment=shift)",
    "fsbbt@uncertain_flip_shift": "FS-BBT + uncertainty + shifted/mirrored copies (flip_shift)",
    "fsbbt@uncertain_kl4": "FS-BBT + uncertainty + KL loss, T = 4",
    "fsbbt@uncertain_e100": "FS-BBT + uncertainty + 100 student epochs",
    "fsbbt@uncertain_cvae_mixup": "FS-BBT + uncertainty + CVAE trained on real and MixUp",
    "fsbbt@uncertain_w03": "FS-BBT + uncertainty, 30 % random warm-up (default 50 %)",
    "fsbbt@uncertain_pool6": "FS-BBT + uncertainty, 6 candidates per paid image (default 3)",
    "real_cutmix@uncertain_cutmix": "real + CutMix, uncertainty-selected",
    "real_cutmix@half_mixup": "real + MixUp (half of M) + CutMix (half)",
    "real_cutmix@with_cvae": "real + CutMix (89 % of M) + CVAE (11 %)",
    "real_cutmix@kl4": "real + CutMix, KL loss, T = 4",
}


VARIANT_NAMES = {"kl4": "KL loss, T = 4", "uncertain": "uncertainty-selected MixUp",
                 "hard": "hard CE on the top-1", "smooth": "label-smoothed CE (0.1)",
                 "soft": "soft CE", "cosine": "cosine decay", "e150": "150 epochs", "e100": "100 epochs", "e80": "80 epochs",
                 "kl2": "KL loss, T = 2", "auto": "auto epochs (at least 7,900 steps)",
                 "shift": "shifted copies (augment=shift)",
                 "flip": "mirrored and shifted copies (augment=flip_shift)",
                 "mirror": "mirrored copies (augment=flip)",
                 "checked": "today's default: the augmentations the teacher keeps "
                            "(augment=auto, 2 x 200 answers asking)",
                 "unpaid40k": "a second student also on 40,000 unpaid CutMix images answered "
                              "by the first",
                 "unpaid40k_c8": "a second student also on the unpaid CutMix images (of 40,000) "
                                 "the first is >= 0.8 sure of",
                 "primer3": "a second student on 0.7 x the answers + 0.3 x the first "
                            "student's predictions (primer)",
                 "primer5": "a second student on 0.5 x the answers + 0.5 x the first "
                            "student's predictions (primer)",
                 "kcenter4": "CutMix paid for in 4 rounds after a random half, chosen by "
                             "k-center on a probe's features, class-balanced",
                 "uncertain4": "CutMix paid for in 4 rounds after a random half, the probe's "
                               "least sure, class-balanced",
                 "warp25": "a quarter of the synthetic budget paid for warps of real images "
                           "(turned, scaled, shifted), CutMix the rest",
                 "warp50": "half the synthetic budget paid for warps of real images, CutMix "
                           "the rest",
                 "warpflip25": "a quarter of the synthetic budget paid for warps of real "
                               "images, half of them mirrored, CutMix the rest",
                 "cm_a05": "CutMix box areas ~ Beta(0.5, 0.5)",
                 "cm_a2": "CutMix box areas ~ Beta(2, 2)",
                 "unpaidwarp40k": "a second student also on 40,000 unpaid warps of real images "
                                  "answered by the first",
                 "ens3unpaid40k": "a second student also on 40,000 unpaid CutMix images "
                                  "answered by 3 first students together",
                 "ens3unpaid20k": "a second student also on 20,000 unpaid CutMix images "
                                  "answered by 3 first students together",
                 "unpaid2x": "a second student also on unpaid CutMix images, twice the "
                             "answers, answered by 3 first students together (the default "
                             "of 2026-12-03)",
                 "unpaid4x": "a second student also on unpaid CutMix images, 4x the answers, "
                             "answered by one first student of the config's teacher.model "
                             "(the default of 2026-12-04; with tm3 today's)",
                 "nounpaid": "no unpaid images (the default before 2026-12-03)",
                 "students5": "5 first students label the unpaid images",
                 "f8": "8x the answers in unpaid CutMix images, not 4x",
                 "f2": "twice the answers in unpaid CutMix images, not 4x",
                 "le20": "the first students train 20 epochs, not the student's plan",
                 "lsteps": "the first students train about student.min_steps steps "
                           "(unpaid.epochs=-1: 21 epochs at 50,000 answers, not 50; the "
                           "default since session 33)",
                 "prep2": "the paid images twice an epoch beside the unpaid ones "
                          "(unpaid.paid_repeat=2: the teacher's answers weigh more)",
                 "tm1": "one first student of the config's teacher.model (twice the "
                        "student's width) labels the unpaid images",
                 "tm3": "three first students of the config's teacher.model (twice the "
                        "student's width) label the unpaid images (the default since "
                        "2026-12-05)",
                 "wide3": "three LeNet-5s at twice the teacher's width (lenet5_wide) label "
                          "the unpaid images",
                 "hint1": "a feature hint from the first first student (unpaid.hint=1: the "
                          "student's last hidden layer, mapped, pulled toward its)",
                 "cmh05": "CutMix boxes (paid and unpaid) cover at most half the image "
                          "(cutmix.high=0.5)",
                 "le21": "the first students train 21 epochs (what unpaid.epochs=-1 gives "
                         "at 50,000 answers)",
                 "lt4": "the first students learn the paid answers at KL T = 4, the "
                        "student at its T = 2 (unpaid.temperature=4)",
                 "cap40k": "auto epochs capped at about 40,000 steps (student.max_steps=40000)",
                 "rounds2": "a second round of 3 first students, trained on the paid answers "
                            "and the first round's answers to the unpaid images, answers them "
                            "anew (unpaid.rounds=2)",
                 "fresh05": "new CutMix of each second-student batch, half a batch more, "
                            "answered by the first students in the step (unpaid.fresh=0.5)",
                 "fresh1": "new CutMix of each second-student batch, a batch more, answered "
                           "by the first students in the step (unpaid.fresh=1)",
                 "ens5unpaid40k": "a second student also on 40,000 unpaid CutMix images "
                                  "answered by 5 first students together",
                 "ens3lenet5unpaid40k": "a second student also on 40,000 unpaid CutMix images "
                                        "answered by 3 first LeNet-5s (teacher-sized) together",
                 "ens3tmunpaid40k": "a second student also on 40,000 unpaid CutMix images "
                                    "answered by 3 first students of the config's teacher "
                                    "model together",
                 "ens5lenet5unpaid40k": "a second student also on 40,000 unpaid CutMix images "
                                        "answered by 5 first LeNet-5s (teacher-sized) together",
                 "ens3lenet5unpaid80k": "a second student also on 80,000 unpaid CutMix images "
                                        "answered by 3 first LeNet-5s (teacher-sized) together",
                 "t1": "KL at T = 1 (every student)",
                 "real4": "the real images 4 times an epoch",
                 "real10": "the real images 10 times an epoch",
                 "c5": "unpaid images the labellers are < 0.5 sure of left out",
                 "uwarp": "the unpaid images warps of the real ones, not CutMix",
                 "ema": "weight averaging (EMA 0.999)", "ema4": "weight averaging (EMA 0.9999)",
                 "bs128": "batch 128 at lr 2e-3", "bmix": "unpaid in-batch CutMix (half a batch)",
                 "bmixup": "unpaid in-batch MixUp (half a batch)",
                 "cvae_mlp": "FS-BBT's own MLP CVAE", "cvae_conv": "conv CVAE"}


def row_name(row: str) -> str:
    row, _, answers = row.partition(" [")
    suffix = f", teacher answers {answers.rstrip(']')}" if answers else ""
    if row.startswith("fsbbt_M"):
        return f"FS-BBT, M = {int(row[7:])} synthetic images" + suffix
    if row in ROW_NAMES:
        return ROW_NAMES[row] + suffix
    base, _, variants = row.partition("@")
    parts = [f"budget {int(v[1:]):,}" if v[:1] == "B" and v[1:].isdigit()
             else VARIANT_NAMES.get(v, v) for v in variants.split("+") if v]
    return ", ".join([ROW_NAMES.get(base, base)] + parts) + suffix


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


TEACHER_TAG = re.compile(r"_t(\d+)_(\d+)$")


def family(dataset: str) -> str:
    """The data set a results key belongs to: ``fashion_mnist_t90_51.budget`` ->
    ``fashion_mnist`` (the paper's figures, targets and notes are the family's)."""
    return TEACHER_TAG.sub("", dataset.split(".")[0])


def first_teachers(files: dict) -> dict:
    """{data set: the whole-set accuracy of its first teacher}: the one of its earliest
    finished record, over all its results files."""
    first = {}
    for name, records in files.items():
        for r in records:
            if r.get("teacher_test_accuracy") is not None:
                seen = first.get(family(name))
                if seen is None or r.get("finished", "") < seen[0]:
                    first[family(name)] = (r.get("finished", ""), r["teacher_test_accuracy"])
    return {k: acc for k, (_, acc) in first.items()}


def by_teacher(name: str, records: list, first) -> dict:
    """A results file's records split by teacher: a teacher retrained on another machine
    scores differently (the same command and seed gave 89.34 % and 90.51 %), so its rows get
    a key of their own (``<data set>_t90_51[.<section>]``) and are never averaged with the
    ``first`` teacher's. Records without a whole-set accuracy belong to the first teacher."""
    base, dot, section = name.partition(".")
    out = defaultdict(list)
    for r in records:
        acc = r.get("teacher_test_accuracy")
        key = name
        if acc is not None and first is not None and round(acc, 4) != round(first, 4):
            key = f"{base}_t{100 * acc:.2f}".replace(".", "_") + dot + section
        out[key].append(r)
    return dict(out)


def machines(records) -> str:
    """The machines a set of records measured on, as the records name them."""
    return "; ".join(sorted({r["machine"] for r in records if r.get("machine")}))


def answers_used(rep: dict) -> int:
    """The teacher answers a run's training set took: those this process sent plus those it
    found in the cache (the benchmark's runs share one; a standalone run would have sent
    them all). A resumed run's ``teacher_queries`` also counts what the stopped process
    sent, which it now finds in the cache: counted once."""
    return int(rep.get("teacher_queries_this_process", rep["teacher_queries"])
               + rep.get("teacher_cache_hits", 0))


def fmt(values, scale=100.0):
    values = np.asarray(values, float) * scale
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f} ({len(values)} seeds)"


def row_key(r) -> str:
    """A record's row, with the teacher's answer kind when it is not full probabilities."""
    answers = r.get("answers", "probs")
    return r["row"] if answers == "probs" else f"{r['row']} [{answers}]"


def whole_set_teacher(records) -> list:
    """The teacher's accuracy on the whole test set, from runs that asked about all of it
    (runs that asked about a sample only, eval.teacher_sample, are left out)."""
    return sorted({round(r["report"]["teacher_accuracy"] * 100, 2) for r in records
                   if "teacher_accuracy" in r["report"]
                   and r["report"].get("eval_teacher_sample", r["report"].get("n_eval"))
                   == r["report"].get("n_eval")})


def share(acc, teacher_pct) -> str:
    """Student accuracy as a share of the teacher's: the fair comparison across papers."""
    return f"{100 * np.mean(acc) / (teacher_pct / 100):.1f}" if acc and teacher_pct else "–"


def table(records, dataset, teacher_pct=None):
    by_row = defaultdict(list)
    for r in records:
        by_row[row_key(r)].append(r)
    paper = PAPER.get(family(dataset), {})
    lines = ["| row | student top-1 % (mean ± std) | per seed | share of teacher % | paper % "
             "| teacher queries (training) | agreement % | wall s (mean) |",
             "|---|---|---|---|---|---|---|---|"]
    order = list(ROW_NAMES)
    for row in sorted(by_row, key=lambda k: (order.index(k) if k in order else 99,
                                             int(k[7:]) if k.startswith("fsbbt_M") else 0, k)):
        runs = sorted(by_row[row], key=lambda r: r["seed"])
        rep = [r["report"] for r in runs]
        acc = [x["student_accuracy"] for x in rep if "student_accuracy" in x]
        agree = [x["agreement"] for x in rep if "agreement" in x]
        queries = sorted({answers_used(x) for x in rep})
        name = row_name(row)
        per_seed = ", ".join(f"s{r['seed']}: {100 * r['report']['student_accuracy']:.2f}"
                             for r in runs if "student_accuracy" in r["report"]) if len(acc) > 1 else ""
        lines.append(f"| {name} | {fmt(acc)} | {per_seed} | {share(acc, teacher_pct)} | "
                     f"{paper.get(row, '–')} | "
                     f"{'/'.join(map(str, queries))} | {fmt(agree)} | "
                     f"{np.mean([x['wall_seconds'] for x in rep]):.0f} |")
    curve = defaultdict(list)  # M -> [(accuracy, queries, seed)]
    for r in records:
        if (r["row"] == "fsbbt" or r["row"].startswith("fsbbt_M")) and "student_accuracy" in r["report"]:
            rep = r["report"]
            synthetic = (sum(v for k, v in rep["images_per_source"].items() if k != "real")
                         if "images_per_source" in rep else rep["n_mixup"] + rep["n_cvae"])
            curve[synthetic].append(
                (rep["student_accuracy"], answers_used(rep), r["seed"]))
    if any(r["row"].startswith("fsbbt_M") for r in records):
        lines += ["", "Query efficiency (FS-BBT, the paper's method, by synthetic images M):", "",
                  "| M | teacher queries | student top-1 % | per seed |", "|---|---|---|---|"]
        for m, runs in sorted(curve.items()):
            runs.sort(key=lambda run: run[2])
            lines.append(f"| {m} | {max(q for _, q, _ in runs)} | {fmt([a for a, _, _ in runs])} | "
                         + ", ".join(f"s{seed}: {100 * a:.2f}" for a, _, seed in runs) + " |")
    teacher = whole_set_teacher(records)
    return "\n".join(lines), teacher


def speed_runs_section(records) -> list:
    """Whole runs of the old and the new code, alternated: wall time, ratio, stage shares."""
    lines = ["## Speed: whole runs, old code against new", "",
             "`python bench/speed.py --old=COMMIT --new=COMMIT --variants=paper,default "
             "--seeds=0,1,2 --sitting=N` (each commit checked out as a git worktree under "
             "`runs/worktrees/`): for each seed, the old and the new "
             "`bin/distill.py` run one after the other on an otherwise idle machine, each with a "
             "fresh answer cache (same work: every answer paid, CVAE and student trained, "
             "student exported). Wall seconds of the whole command.", "",
             "Each sitting times its old and new runs alternately; compare within a sitting.",
             "", "| sitting | variant | code | wall s median (range) | runs | student top-1 % "
             "per seed | new / old |", "|---|---|---|---|---|---|---|"]
    by = defaultdict(list)
    for r in records:
        by[(r.get("sitting", "1"), r["variant"], r["tree"])].append(r)
    for sitting, variant in sorted({(s_, v) for s_, v, _ in by}):
        med = {}
        for tree in ("old", "new"):
            runs = sorted(by.get((sitting, variant, tree), []), key=lambda r: r["seed"])
            if not runs:
                continue
            wall = [r["wall_seconds"] for r in runs]
            med[tree] = np.median(wall)
            ratio = ""
            if tree == "new" and "old" in med:
                speedup = med["old"] / med["new"]
                ratio = (f"{speedup:.2f}x faster" if speedup >= 1
                         else f"{1 / speedup:.2f}x slower")
            lines.append(f"| {sitting} | {variant} | {tree} ({runs[0]['commit']}) | {med[tree]:.0f} "
                         f"({min(wall):.0f}–{max(wall):.0f}) | {len(runs)} | "
                         + ", ".join(f"s{r['seed']}: {100 * r['student_accuracy']:.2f}" for r in runs)
                         + f" | {ratio} |")
    lines += ["", "Where the time goes (median seconds per stage; share of the median wall "
              "time):", "", "| sitting | variant | code | stage | seconds | share % |",
              "|---|---|---|---|---|---|"]
    for (sitting, variant, tree), runs in sorted(by.items()):
        wall = np.median([r["wall_seconds"] for r in runs])
        stages = defaultdict(list)
        for r in runs:
            for k, v in (r.get("stage_seconds") or {}).items():
                stages[k].append(v)
        for k, v in stages.items():
            lines.append(f"| {sitting} | {variant} | {tree} | {k} | {np.median(v):.1f} | "
                         f"{100 * np.median(v) / wall:.0f} |")
        rest = wall - sum(np.median(v) for v in stages.values())
        lines.append(f"| {sitting} | {variant} | {tree} | start-up, loading, other | {rest:.1f} | "
                     f"{100 * rest / wall:.0f} |")
    return lines + [""]


# What the default was at each commit of the held-out rehearsal's records.
HELDOUT_CODE = {"13376ae": "KL T = 4, batch 128, 50 epochs",
                "e4ef788 and 73aecbd": "the same (the overrides change it)",
                "9548442": "KL T = 2, batch 128, auto epochs (100 at 10K answers)",
                "d7c1db7": "the same with weight averaging (EMA 0.999)",
                "8b7dd5b": "the same default after the speed and multi-worker fixes of "
                           "session 8-9 (identical results: the arithmetic did not change)",
                "6893ded": "unpaid images labelled by one first student of teacher.model (the "
                           "default of 2026-12-04)",
                "7d1f225": "the same code; with `unpaid.students=3` today's default (2026-12-05)"}

AUTO = "real_cutmix@kl2+bs128+auto+ema"  # today's default
AUTO_BEFORE = "real_cutmix@kl2+bs128+auto"  # the default before weight averaging
CURVES = {"fsbbt": "FS-BBT (the paper's method)",
          "default": "kd_keras default (the config's own settings)",
          AUTO: "kd_keras default (real + CutMix, KL T = 2, batch 128, auto epochs, EMA 0.999)",
          AUTO_BEFORE: "real + CutMix, KL T = 2, batch 128, auto epochs (no EMA)",
          "real_cutmix@kl2+bs128": "real + CutMix, KL T = 2, batch 128, 50 epochs",
          "real_cutmix@kl4+bs128": "real + CutMix, KL T = 4, batch 128",
          "real_cutmix@kl4": "real + CutMix, KL T = 4, batch 64 (the default before batch 128)",
          "default@flip": "kd_keras default, mirrored and shifted copies (augment=flip_shift, "
                          "the rule for colour images before the teacher was asked)",
          "default@mirror": "kd_keras default + mirrored copies (augment=flip)",
          "default@checked": "kd_keras default before unpaid images (augmentations the teacher "
                             "keeps)",
          "default@checked+unpaid4x": "kd_keras default of 2026-12-04: + unpaid CutMix images, "
                                      "4x the answers, labelled by one first student of the "
                                      "config's teacher.model",
          "default@checked+unpaid2x": "kd_keras default of 2026-12-03: + unpaid CutMix images, "
                                      "twice the answers, labelled by 3 first students (the "
                                      "student's model)",
          "default@checked+unpaid4x+tm3": "kd_keras default of 2026-12-05, sessions 28-32: "
                                          "today's with first students trained 50 epochs "
                                          "(drawn where that differs: above about 20,000 "
                                          "answers)",
          "default@checked+unpaid4x+tm3+lsteps": "kd_keras default (since 2026-12-05, session "
                                                 "33): + unpaid CutMix images, 4x the answers, "
                                                 "labelled by 3 first students of the config's "
                                                 "teacher.model trained about student.min_steps "
                                                 "steps"}


# Where a data set's runs of a curve ran with other settings than the curve's name says.
CURVE_NAMES = {("cifar10_jpeg", "default"): "kd_keras default before any rule for colour "
                                            "images (augment=none)",
               ("mnist", "default"): "kd_keras default before the augmentation rule (none)",
               ("fashion_mnist", "default"): "kd_keras default before the augmentation rule "
                                             "(none)"}


# Rows that ran a default under another name: (last variants, budget) -> the default's name
# (twice the answers, 3 first students of the student's model: unpaid2x; 4x the answers,
# one first student of the config's teacher.model: unpaid4x; three of them: unpaid4x+tm3,
# which the 3 first LeNet-5s are where LeNet-5 is the teacher's model: the grey data sets).
# unpaid.epochs=-1 (+lsteps) is unpaid.epochs=0 below about 20,000 answers (the unit test).
SAME_AS = {("ens3unpaid20k", 10000): "unpaid2x", ("unpaid40k+tm1", 10000): "unpaid4x",
           ("ens3unpaid20k+tm1", 5000): "unpaid4x",
           ("ens3lenet5unpaid40k", 10000): "unpaid4x+tm3+lsteps",
           ("unpaid4x+tm3", 5000): "unpaid4x+tm3+lsteps",
           ("unpaid4x+tm3", 10000): "unpaid4x+tm3+lsteps"}
SAME_AS_ONLY = {"ens3lenet5unpaid40k": ("fashion_mnist", "mnist")}  # data sets where it holds


def canonical(row: str, budget, dataset: str = "") -> str:
    """The curve a row (without its budget) of ``dataset`` belongs to when it ran a default
    under another name: ``+nounpaid`` is the default before unpaid images, the rest
    :data:`SAME_AS` (on the data sets :data:`SAME_AS_ONLY` allows)."""
    if row.endswith("+nounpaid"):
        return row[:-len("+nounpaid")]
    for (tail, at), name in SAME_AS.items():
        where = SAME_AS_ONLY.get(tail)
        if row.endswith("+" + tail) and budget == at and (not where or family(dataset) in where):
            return row[:-len(tail)] + name
    return row


def curve_name(dataset: str, row: str) -> str:
    return CURVE_NAMES.get((family(dataset), row), CURVES[row])


def _share_target(teacher: float, share: float, budget: int) -> tuple:
    return budget, round(teacher * share, 2), f"{100 * share:.1f} % of the teacher at B ≤ {budget // 1000}K"


# Open targets (3-seed means): issue #26 for Fashion-MNIST, #23 for MNIST and CIFAR-10 (JPEG)
# as shares of this page's teachers (98.86 %, 84.64 %).
TARGETS = {"fashion_mnist": [(5000, 85.0, "≥ 85.0 at B ≤ 5K"), (10000, 86.5, "≥ 86.5 at B ≤ 10K"),
                             (50000, 88.0, "≥ 88.0 at B ≤ 50K")],
           "mnist": [_share_target(98.86, 0.994, 10000), _share_target(98.86, 0.995, 26000)],
           "cifar10_jpeg": [_share_target(84.64, 0.88, 10000),
                            _share_target(84.64, 0.90, 42000)]}


def targets_for(dataset: str, teacher_pct, first_pct) -> list:
    """A data set's targets; for a retrained teacher (``<data set>_t..``), the first teacher's
    targets as the same shares of this one."""
    targets = TARGETS.get(family(dataset), [])
    if dataset == family(dataset) or not (teacher_pct and first_pct):
        return targets
    return [(b, round(v * teacher_pct / first_pct, 2),
             f"{100 * v / first_pct:.1f} % of the teacher ({v * teacher_pct / first_pct:.2f}) at "
             f"B ≤ {b // 1000}K") for b, v, _ in targets]


def budget_of(row: str):
    """(row without its budget variant, planned budget or None)."""
    base, _, variants = row.partition("@")
    rest, budget = [], None
    for v in filter(None, variants.split("+")):
        if v[:1] == "B" and v[1:].isdigit():
            budget = int(v[1:])
        else:
            rest.append(v)
    return base + ("@" + "+".join(rest) if rest else ""), budget




def same_as_auto(row: str, n_train: int):
    """The auto-epoch curve a run of ``row`` on ``n_train`` images belongs to, when it
    trained exactly as that default would (its fixed epoch count, 50 unless named, is what
    ``student.epochs = 0`` plans there), else None."""
    import sys

    from kd_keras.distill.student import planned_epochs

    sys.path.insert(0, ROOT)
    from configs.fashion_mnist import get_config

    base, _, variants = row.partition("@")
    parts = [v for v in variants.split("+") if v]
    if base != "real_cutmix" or parts[:2] != ["kl2", "bs128"]:
        return None
    rest = parts[2:]
    ema = "ema" in rest
    rest = [v for v in rest if v != "ema"]
    epochs = [v for v in rest if v[:1] == "e" and v[1:].isdigit()]
    if "auto" in rest:
        rest.remove("auto")
    elif not epochs:
        epochs = ["e50"]
    if [v for v in rest if v not in epochs] or len(epochs) > 1:
        return None
    if epochs and planned_epochs(get_config().student, n_train) != int(epochs[0][1:]):
        return None
    return AUTO if ema else AUTO_BEFORE


def budget_curves(all_records, dataset):
    """{method: {budget: [(accuracy, seed, answers paid)]}} over every section of a data set."""
    curves, newest = defaultdict(lambda: defaultdict(list)), defaultdict(list)
    for name, records in all_records.items():
        if name.split(".")[0] != dataset or name.endswith("teacher_b"):
            continue
        for r in records:
            row, budget = budget_of(r["row"])
            row = canonical(row, budget, dataset)
            rep = r["report"]
            if r.get("answers", "probs") != "probs" or "student_accuracy" not in rep:
                continue
            paid = answers_used(rep)
            for name in {row, same_as_auto(row, rep["n_train"]) or row}:
                if name in CURVES:
                    newest[(name, budget or rep["n_train"] - rep.get("n_unpaid", 0),
                            r["seed"])].append(
                        (r.get("finished", ""), rep["student_accuracy"], paid))
    for (row, budget, seed), runs in newest.items():  # a seed rerun by newer code replaces it
        _, accuracy, paid = max(runs)
        curves[row][budget].append((accuracy, seed, paid))
    return curves


def lead_order(dataset: str, curve: str) -> int:
    """Where a curve goes in its data set's table: the headline's (today's default, then the
    paper's method) first, the rest as they were measured."""
    lead = [name for answers, budgets in HEADLINE.get(dataset, {}).items()
            for _, row in (budgets["default"], budgets["paper"])
            for name in (canonical(*budget_of(row), dataset), same_as_auto(budget_of(row)[0], answers))]
    return lead.index(curve) if curve in lead else len(lead)


def budget_section(all_records, dataset, teacher_pct, path, first_pct=None) -> list:
    """The accuracy-per-answer table and plot of a data set (``first_pct``: its first
    teacher's accuracy, for a retrained teacher's targets)."""
    curves = budget_curves(all_records, dataset)
    if not curves:
        return []
    goals = targets_for(dataset, teacher_pct, first_pct)
    targets = "; ".join(t for _, _, t in goals)
    lines = [f"## {dataset}: accuracy per paid answer", "",
             "Student top-1 % against the training budget B (`--config.query.budget=B`: the run "
             "plans M = B - N synthetic images and pays at most B answers). Runs from every "
             f"section of this data set with the same teacher; the share is student / teacher "
             f"({teacher_pct} %)." + (f" Targets: {targets}." if targets else "")
             + (" The headline's rows (today's default, the paper's method) come first."
                if dataset in HEADLINE else ""), "",
             "| method | B | student top-1 % | per seed | share of teacher % | answers paid (max) |",
             "|---|---|---|---|---|---|"]
    for row, points in sorted(curves.items(), key=lambda item: lead_order(dataset, item[0])):
        for budget, runs in sorted(points.items()):
            runs.sort(key=lambda x: x[1])
            acc = [a for a, _, _ in runs]
            lines.append(f"| {curve_name(dataset, row)} | {budget:,} | {fmt(acc)} | "
                         + ", ".join(f"s{seed}: {100 * a:.2f}" for a, seed, _ in runs)
                         + f" | {share(acc, teacher_pct)} | {max(p for _, _, p in runs):,} |")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for i, (row, points) in enumerate(curves.items()):
        xs = sorted(points)
        means = [100 * np.mean([a for a, _, _ in points[b]]) for b in xs]
        stds = [100 * np.std([a for a, _, _ in points[b]], ddof=1) if len(points[b]) > 1 else 0
                for b in xs]
        ax.errorbar(xs, means, yerr=stds, fmt="o-", capsize=3, color=f"C{i}", label=textwrap.fill(curve_name(dataset, row), 60))
    for budget, value, text in goals:
        ax.plot([0, budget], [value, value], ":", color="gray", lw=1)
        ax.text(0, value, "target " + text, fontsize=7, va="bottom", ha="left")
    ax.set_xlabel("training answers paid, budget B")
    ax.set_ylabel("student test accuracy %")
    ax.set_title(f"{dataset}: accuracy per paid answer (teacher {teacher_pct} %)")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(0, -0.12))  # below: no point hidden
    fig.savefig(path, dpi=110, bbox_inches="tight")
    name = os.path.basename(path)
    return lines + ["", f"![accuracy per paid answer]({name})", ""]


def plot(all_records, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(all_records), figsize=(6 * len(all_records), 6),
                             squeeze=False)
    for ax, (dataset, records) in zip(axes[0], all_records.items()):
        by_row = defaultdict(list)
        for r in records:
            if "student_accuracy" in r["report"]:
                by_row[r["row"]].append((answers_used(r["report"]),
                                         100 * r["report"]["student_accuracy"]))
        names = list(ROW_NAMES)
        for row, points in sorted(by_row.items(), key=lambda kv: (
                names.index(kv[0]) if kv[0] in names else 99, kv[0])):
            q, a = np.array(points).T
            style = dict(color=f"C{names.index(row) % 10}") if row in names else dict(color="black")
            ax.errorbar(q.mean(), a.mean(), yerr=a.std() if len(a) > 1 else 0, fmt="o",
                        capsize=3, label=row_name(row),
                        ms=4 if row.startswith("fsbbt_M") else 6, **style)
        curve = sorted((np.mean([q for q, _ in v]), np.mean([a for _, a in v]))
                       for k, v in by_row.items() if k == "fsbbt" or k.startswith("fsbbt_M"))
        if len(curve) > 1:
            ax.plot(*zip(*curve), "k--", lw=1, label="FS-BBT vs M (paper's method)")
        for name, value in PAPER.get(family(dataset), {}).items():
            if name in ("fsbbt", "divbfkd"):
                ax.axhline(value, ls=":", lw=1, color="gray")
                ax.text(ax.get_xlim()[0], value, f" paper {name} {value}", fontsize=7, va="bottom")
        ax.set_title(dataset)
        ax.set_xlabel("teacher queries (training)")
        ax.set_ylabel("student test accuracy %")
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# JSONL files under bench/results/ that get a section of their own rather than an accuracy table.
def memory_section(records) -> list:
    """``bench/memory.py``: a whole run's peak resident memory by image side and budget."""
    lines = ["## Memory of a whole run", "",
             "`python bench/memory.py`: `bin/distill.py` on N RGB images (2,000 unless "
             "`--n_real` says) with the default sources (real + CutMix), a tiny teacher and "
             "student and one student epoch, so that memory is what is measured; peak resident "
             "memory of the whole process (ru_maxrss). The labelled set's size as uint8 and "
             "float32 is beside it. Target (issue #24): 224x224x3, budget 50,000, at most 3 "
             "GiB. From 443dea0 on, a set of at most `student.hold_mib` (256 MiB) is held "
             "made; larger ones are made per batch.", "",
             "| code | real images N | side | budget | peak RSS GiB | finished | set as uint8 GiB "
             "| as float32 GiB | seconds | command |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        done = "yes" if r["finished"] else (f"stopped at {r['stopped_at_gib']} GiB"
                                            if r.get("stopped_at_gib") else "no")
        lines.append(f"| {r['code']} | {r.get('n_real', 2000):,} | {r['side']} | {r['budget']:,} | "
                     f"{r['peak_rss_gib']:.2f} | "
                     f"{done} | {r['uint8_set_gib']:.2f} | {r['float32_set_gib']:.2f} | "
                     f"{r['seconds']:.0f} | `{clean(r['command'])}` |")
    return lines + [""]


def tflite_section(all_records) -> list:
    """Runs that exported TFLite students (``export.tflite``): the int8 file against the
    float student on the whole test set, per data set and row (target, issue #25: within
    1 point)."""
    by_row = defaultdict(list)
    for dataset, records in all_records.items():
        for r in records:
            for kind, t in (r.get("report", {}).get("tflite") or {}).items():
                by_row[(dataset.split(".")[0], row_key(r), kind)].append((r, t))
    if not by_row:
        return []
    lines = ["## Students for devices (TFLite)", "",
             "Runs with `--overrides=export.tflite=int8` (or `float,int8`): each TFLite file run "
             "with LiteRT's interpreter on the whole test set beside the SavedModel student "
             "(`report.json`: `tflite`). int8 is full-integer, calibrated on the run's own "
             "training images. Target (issue #25): int8 within 1 point of the student.", "",
             "| data set | row | file | student % | TFLite % | difference (points) | per seed "
             "(TFLite - student) | agreement with the student % | size KB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for (dataset, row, kind), runs in sorted(by_row.items()):
        student = [r["report"]["student_accuracy"] for r, _ in runs]
        lite = [t["accuracy"] for _, t in runs]
        diffs = [100 * (b - a) for a, b in zip(student, lite)]
        seeds = ", ".join(f"s{r['seed']}: {d:+.2f}" for (r, _), d in zip(runs, diffs))
        lines.append(f"| {dataset} | {row_name(row)} | {kind} | {fmt(student)} | {fmt(lite)} | "
                     f"{np.mean(diffs):+.2f} (worst {min(diffs):+.2f}) | {seeds} | "
                     f"{fmt([t['agreement_with_student'] for _, t in runs])} | "
                     f"{np.mean([t['bytes'] for _, t in runs]) / 1000:.1f} |")
    return lines + [""]


def teacher_seeds_section(records) -> list:
    """``bench/teacher_seeds.py``: how much a bench teacher's accuracy moves with its seed
    alone, and which seed gave the teacher of a section made to match an issue's teacher."""
    lines = ["## Bench teachers by seed", "",
             "`bench/teacher_seeds.py`: the bench teacher's command (`bin/train_teacher.py`, the "
             "config's recipe) with other seeds, each scored on the whole test set. Issue #26's "
             "Fashion-MNIST targets were set on a 89.34 % LeNet-5 trained on an earlier machine "
             "(the same command and seed gave 90.51 % here); the seed nearest it, chosen by the "
             "teacher's accuracy alone before any student ran, is the teacher of the "
             "`fashion_mnist_t89_79` sections (`bench/paper_table.py --teacher_seed=11`).", "",
             "| config | seed | teacher % | machine |", "|---|---|---|---|"]
    for r in sorted(records, key=lambda r: (r["config"], r["seed"])):
        lines.append(f"| {r['config']} | {r['seed']} | {100 * r['teacher_test_accuracy']:.2f} | "
                     f"{r['machine']} |")
    lines += ["", "Commands:", "", *[f"    {c}" for c in
                                     sorted({clean(r["command"]) for r in records})]]
    by_config = defaultdict(list)
    for r in records:
        by_config[r["config"]].append(100 * r["teacher_test_accuracy"])
    for config, accs in sorted(by_config.items()):
        if len(accs) > 1:
            lines.append(f"\n{config}: {np.mean(accs):.2f} ± {np.std(accs, ddof=1):.2f} over "
                         f"{len(accs)} seeds, {min(accs):.2f}-{max(accs):.2f}.")
    return lines + [""]


SECTIONS = (("speed_runs", speed_runs_section), ("memory", memory_section),
            ("teacher_seeds", teacher_seeds_section))

# What the one-off speed probes of issues #10 and #11 found (their scripts and records are in
# git history before this page's rewrite; see the session notes of 2026-11-29).
SPEED_PROBES = """## Speed probes, concluded

The student's step on 2 cores is oneDNN kernel time for LeNet-5-Half's small convolutions:
`fit` is 4-13 % above a bare `train_step` loop; XLA, several steps per execution beyond 32,
a fused Adam, a depthwise or NCHW form of the first convolutions, gathering indices inside
`train_step`, MirroredStrategy over two logical CPUs and capping oneDNN's instruction set
were each measured and none was faster; two cores give 1.3x over one. Destroying an
autotuned tf.data iterator each epoch cost 2.2-2.5 s (fixed: the epoch pipelines run
without autotuning). The paper's method reached 2.4-2.8x the speed of e0f4b9a and our
default 2.8-3.9x, accuracy unchanged (the speed section below)."""


def clean(command: str) -> str:
    """A command as run from the repository: no machine path in it."""
    return command.replace(ROOT + os.sep, "").replace(ROOT, ".")


def seeds_of(records) -> dict:
    by_row = defaultdict(set)
    for r in records:
        by_row[row_key(r)].add(r["seed"])
    return by_row


def headline(all_records, teacher_of) -> list:
    """Per data set: our default against the paper's method measured here and the paper's
    figure, at each headline budget, with shares of each run's own teacher."""
    lines = ["## Headline", "",
             "Student top-1 % on the whole test set, mean ± std over 3 seeds, and as a share "
             "of the same run's teacher (teachers differ between papers; the share is the fair "
             "comparison). Every teacher answer paid is counted. Today's default has three first "
             "students of the config's teacher model, trained on the answers for about "
             "`student.min_steps` steps, label four times as many unpaid images for the student "
             "(`unpaid.count=-1`, `unpaid.epochs=-1`, section \"Unpaid images on every data "
             "set\"); rows measured before it say what they ran. Its seed-0 runs are left "
             "out (the first of their first students started from the bench teacher's own weights, section "
             "\"Runs left out\"): its cells are seeds 1-3. `_t90_51` and `_t98_78` are teachers "
             "retrained by the same command on a later machine; `_t89_79` is the same command "
             "with seed 11, the teacher nearest here to the 89.34 % one issue #26's targets "
             "were set on (section \"Bench teachers by seed\").", "",
             "| data set | teacher % | answers | kd_keras default | FS-BBT, measured here | "
             "FS-BBT, paper (its teacher) |", "|---|---|---|---|---|---|"]
    for dataset, budgets in HEADLINE.items():
        paper = PAPER.get(family(dataset), {})
        teacher_pct = teacher_of.get(dataset)
        for answers, methods in budgets.items():
            cells = []
            for method in ("default", "paper"):
                tag, row = methods[method]
                runs = [r for r in all_records.get(tag, []) if r["row"] == row
                        and r.get("answers", "probs") == "probs"
                        and "student_accuracy" in r["report"]]
                acc = [r["report"]["student_accuracy"] for r in runs]
                note = HEADLINE_BEFORE.get((dataset, answers)) if method == "default" else None
                cells.append((f"{fmt(acc)}; {share(acc, teacher_pct)} %" if acc else "not yet run")
                             + (f" ({note})" if note and acc else ""))
            paper_cell = (f"{paper['fsbbt']} ({100 * paper['fsbbt'] / paper['teacher']:.1f} % of "
                          f"{paper['teacher']})" if paper.get("answers") == answers else "–")
            lines.append(f"| {dataset} | {teacher_pct or '–'} | {answers:,} | {cells[0]} | "
                         f"{cells[1]} | {paper_cell} |")
    plots = [f"![{d}: accuracy per paid answer](budget_{d}.png)" for d in HEADLINE
             if os.path.exists(os.path.join(DOCS, f"budget_{d}.png"))]
    return lines + ["", *plots, ""]


# The augmentation rule's evidence: per data set, the 10,000-answer rows that differ from the
# default in the augmentation alone, as (result file, row, what it augments).
AUGMENT_ROWS = {
    "fashion_mnist": ("fashion_mnist.budget", [
        ("default@B10000", "none (the default before the rule)"),
        ("default@B10000+mirror", "flip"), ("default@B10000+shift", "shift"),
        ("default@B10000+flip", "flip_shift"),
        ("default@B10000+checked", "the rule (asks the teacher)")]),
    "mnist": ("mnist", [
        ("default@B10000", "none (the default before the rule)"),
        ("default@B10000+mirror", "flip"), ("default@B10000+shift", "shift"),
        ("default@B10000+checked", "the rule (asks the teacher)")]),
    "cifar10_jpeg": ("cifar10_jpeg", [
        ("default@B10000", "none (the default before any colour rule)"),
        ("default@B10000+flip", "flip_shift (the colour rule before the teacher was asked)"),
        ("default@B10000+checked", "the rule (asks the teacher)")]),
}


def augment_rule_section(all_records, teacher_of) -> list:
    """The rule of student.augment=auto, the teachers' agreement behind it and what each
    augmentation gives at 10,000 answers on each data set."""
    path = os.path.join(RESULTS, "augment_agreement.jsonl")
    if not os.path.exists(path):
        return []
    from kd_keras.distill.augment_check import AGREE, BLANK_FRAME, FRAME, kept

    lines = ["## One default for all data", "",
             "`student.augment=auto` (the default) pays for mirrored and shifted copies of 200 "
             "real images each, out of the budget and kept as training data, and uses a "
             f"transformation when the teacher gives at least {100 * AGREE:.0f} % of its copies "
             "the class it gave the original; shifts are also used when they only move "
             f"background (at most {100 * BLANK_FRAME:.0f} % of the frame they move out is not "
             "background: a teacher that is not shift-invariant, such as an MLP, disagrees with "
             "shifted copies that are still of their class; `kd_keras/distill/augment_check.py`). "
             "The teachers' agreement (`python bench/augment_agreement.py`), on all 2,000 real "
             "images and on the 200 each seed's check draws, and the frame's content:", "",
             "| data set | teacher | mirrored: all | seeds 0, 1, 2 | shifted: all | seeds 0, 1, 2 "
             "| frame not background | the rule uses |", "|---|---|---|---|---|---|---|---|"]
    rows = load(path)
    newest = {}
    for r in rows:  # the newest record of each (config, teacher)
        newest[(r["config"], r["teacher"].split("runs/")[-1])] = r  # absolute or relative
    for r in newest.values():
        name = os.path.basename(r["config"])[:-3]
        frame = r.get("shift_frame_content_all")
        used = kept({"flip": r["flip_all"], "shift": r["shift_all"],
                     **({FRAME: frame} if frame is not None else {})})
        teacher = "held-out MLP" if "heldout" in r["teacher"] else "the bench's"
        lines.append(f"| {name} | {teacher} | {100 * r['flip_all']:.1f} % | "
                     f"{', '.join(f'{100 * v:.1f}' for v in r['flip_check_by_seed'])} | "
                     f"{100 * r['shift_all']:.1f} % | "
                     f"{', '.join(f'{100 * v:.1f}' for v in r['shift_check_by_seed'])} | "
                     f"{'–' if frame is None else f'{100 * frame:.1f} %'} | "
                     f"{' + '.join(used) or 'none'} |")
    lines += ["", "What each augmentation gives at 10,000 answers (student top-1 %, the "
              "default otherwise; one-seed rows are explorations):", ""]
    return lines + evidence_table(all_records, AUGMENT_ROWS, "augmentation") + [""]


def evidence_table(all_records, spec: dict, what: str) -> list:
    """One line per (data set, row) of ``spec`` ({data set: (result tag, [(row, what it
    is)])}) measured: the student's accuracy over its seeds, each seed, the share of the
    run's own teacher and its mean wall seconds."""
    lines = [f"| data set | {what} | student % | per seed | share of teacher % | wall s (mean) |",
             "|---|---|---|---|---|---|"]
    for dataset, (tag, rows) in spec.items():
        for row, text in rows:
            runs = sorted((r for r in all_records.get(tag, []) if r["row"] == row
                           and "student_accuracy" in r["report"]), key=lambda r: r["seed"])
            if not runs:
                continue
            acc = [r["report"]["student_accuracy"] for r in runs]
            teacher = 100 * (runs[0].get("teacher_test_accuracy") or 0) or None
            lines.append(f"| {dataset} | {text} | {fmt(acc)} | "
                         + ", ".join(f"s{r['seed']}: {100 * a:.2f}" for r, a in zip(runs, acc))
                         + f" | {share(acc, teacher) if teacher else '–'} | "
                         f"{np.mean([r.get('seconds', 0) for r in runs]):.0f} |")
    return lines


# Learning from unpaid images on each data set (10,000 answers unless the data set's name
# says), against the teachers of today's rows: (result tag, [(row, unpaid images and who
# labels them)]).
_NONE = "none (no unpaid images)"
_OWN = ("20,000 CutMix, 3 first students of the student's model (`ens3unpaid20k`: the default "
        "of 2026-12-03)")
_BIG = ("40,000 CutMix, 3 first LeNet-5s, teacher-sized (`ens3lenet5unpaid40k`: today's "
        "default)")
_TM3 = "20,000 CutMix, 3 first students of the config's teacher.model (`unpaid2x+tm3`)"
_TM1 = "20,000 CutMix, one first student of the config's teacher.model (`unpaid2x+tm1`)"
_TM1_40K = ("40,000 CutMix, one first student of the config's teacher.model (`unpaid40k+tm1`: "
            "the default of 2026-12-04)")
_LT4 = ("4x the answers in CutMix, one first student of the config's teacher.model that learns "
        "the paid answers at KL T = 4 (`unpaid4x+lt4`: unpaid.temperature=4)")
_ROUNDS2 = ("20,000 CutMix, 3 first students of the student's model, then 3 more trained on "
            "the paid answers and their answers (`unpaid2x+rounds2`)")


def _twice(answers: int) -> str:
    return (f"{2 * answers:,} CutMix, 3 first students of the student's model (`unpaid2x`: "
            "the default of 2026-12-03)")


def _four(answers: int, students: int = 1) -> str:
    """4x the answers in unpaid CutMix labelled by ``students`` first students of the
    config's teacher.model: one was the default of 2026-12-04, three are today's."""
    who, row, when = (("one first student", "unpaid4x", "the default of 2026-12-04")
                      if students == 1 else
                      (f"{students} first students", f"unpaid4x+tm{students}", "today's default"))
    return f"{4 * answers:,} CutMix, {who} of the config's teacher.model (`{row}`: {when})"


UNPAID_ROWS = {
    "fashion_mnist": ("fashion_mnist_t90_51.budget", [
        ("default@B10000+checked", _NONE), ("default@B10000+checked+ens3unpaid20k", _OWN),
        ("default@B10000+checked+ens3lenet5unpaid40k", _BIG),
        ("default@B10000+checked+unpaid2x+tm3", _TM3),
        ("default@B10000+checked+unpaid2x+tm1", _TM1),
        ("default@B10000+checked+unpaid40k+tm1", _TM1_40K),
        ("default@B10000+checked+unpaid4x+lt4", _LT4),
        ("default@B10000+checked+unpaid2x+rounds2", _ROUNDS2)]),
    "fashion_mnist, 5,000 answers": ("fashion_mnist_t90_51.budget", [
        ("default@B5000+checked+nounpaid", _NONE),
        ("default@B5000+checked+unpaid2x", _twice(5000)),
        ("default@B5000+checked+unpaid4x", _four(5000)),
        ("default@B5000+checked+unpaid4x+tm3", _four(5000, 3))]),
    "fashion_mnist, 50,000 answers": ("fashion_mnist_t90_51.budget", [
        ("default@B50000+checked+nounpaid", _NONE),
        ("default@B50000+checked+unpaid2x", _twice(50000)),
        ("default@B50000+checked+ens3unpaid20k",
         "20,000 CutMix (a cap), 3 first students of the student's model (`ens3unpaid20k`)"),
        ("default@B50000+checked+unpaid4x", _four(50000)),
        ("default@B50000+checked+unpaid4x+tm3", _four(50000, 3)),
        ("default@B50000+checked+unpaid4x+cap40k",
         "the default of 2026-12-04, the student's auto epochs capped at about 40,000 steps: 20 "
         "epochs, not 50 (`unpaid4x+cap40k`, `student.max_steps=40000`)"),
        ("default@B50000+checked+unpaid4x+tm3+cap40k",
         "3 first students of the config's teacher.model, the student's epochs capped as "
         "above (`unpaid4x+tm3+cap40k`)")]),
    "fashion_mnist, label-only teacher": ("fashion_mnist_t90_51.answers", [
        ("default@B10000+checked+nounpaid", _NONE),
        ("default@B10000+checked+unpaid2x", _twice(10000)),
        ("default@B10000+checked+ens3unpaid40k",
         "40,000 CutMix, 3 first students of the student's model (`ens3unpaid40k`)"),
        ("default@B10000+checked+unpaid2x+students5",
         "20,000 CutMix, 5 first students of the student's model (`unpaid2x+students5`)"),
        ("default@B10000+checked+ens3lenet5unpaid40k", _BIG),
        ("default@B10000+checked+unpaid40k+tm1", _TM1_40K),
        ("default@B10000+checked+unpaid40k+tm3",
         "40,000 CutMix, 3 first students of the config's teacher.model (`unpaid40k+tm3`: "
         "today's default)")]),
    "mnist": ("mnist_t98_78", [
        ("default@B10000+checked", _NONE), ("default@B10000+checked+ens3unpaid20k", _OWN),
        ("default@B10000+checked+ens3lenet5unpaid40k", _BIG),
        ("default@B10000+checked+unpaid2x+tm1", _TM1),
        ("default@B10000+checked+unpaid40k+tm1", _TM1_40K),
        ("default@B10000+checked+unpaid4x+lt4", _LT4)]),
    "mnist, 5,000 answers": ("mnist_t98_78", [
        ("default@B5000+checked+nounpaid", _NONE),
        ("default@B5000+checked+unpaid2x", _twice(5000)),
        ("default@B5000+checked+unpaid4x", _four(5000)),
        ("default@B5000+checked+unpaid4x+tm3", _four(5000, 3))]),
    "mnist, 26,000 answers": ("mnist_t98_78", [
        ("default@B26000+checked+nounpaid", _NONE),
        ("default@B26000+checked+unpaid2x", _twice(26000)),
        ("default@B26000+checked+unpaid4x", _four(26000))]),
    "cifar10_jpeg": ("cifar10_jpeg", [
        ("default@B10000+checked", _NONE), ("default@B10000+checked+ens3unpaid20k", _OWN)]),
    "cifar10_jpeg_t84_80, 5,000 answers": ("cifar10_jpeg_t84_80", [
        ("default@B5000+checked+unpaid2x", _twice(5000)),
        ("default@B5000+checked+ens3unpaid20k+tm1",
         "20,000 CutMix, one first student of the config's teacher.model, cnn4 "
         "(`ens3unpaid20k+tm1`: the default of 2026-12-04)"),
        ("default@B5000+checked+unpaid4x+tm3",
         "20,000 CutMix, 3 first students of the config's teacher.model, cnn4s "
         "(`unpaid4x+tm3`: today's default)")]),
    "cifar10_jpeg, 5,000 answers": ("cifar10_jpeg", [
        ("default@B5000+checked+nounpaid", _NONE),
        ("default@B5000+checked+unpaid2x", _twice(5000)),
        ("default@B5000+checked+ens3unpaid20k+tm1",
         "20,000 CutMix, one first student of the config's teacher.model, cnn4 "
         "(`ens3unpaid20k+tm1`: the default of 2026-12-04)")]),
}


def unpaid_section(all_records) -> list:
    """What learning from unpaid images gives on every data set."""
    return ["## Unpaid images on every data set", "",
            "A second student learns from the paid answers and from unpaid CutMix images "
            "labelled by first students trained on those answers (`kd_keras/distill/unpaid.py`; "
            "no answer is bought for them). 10,000 answers unless the data set column says, today's "
            "augmentation rule, the teachers of each data set's newest section; one-seed rows "
            "are explorations:", "",
            *evidence_table(all_records, UNPAID_ROWS, "unpaid images, labelled by"), ""]


_CONFIGS = {}


def teacher_twins_of(r) -> list:
    """The models a record's run started from its bench teacher's own initial weights
    (``bench/teacher_twins.py``). Only runs from before ``paper_table.py`` refused them can
    (records without ``teacher_seed``); their teachers were all trained with seed 0, and first
    students whose row names no ``unpaid.model`` were of the student's own model, the default
    then."""
    if "teacher_seed" in r or not r.get("config"):
        return []
    from kd_keras.config import from_file

    if r["config"] not in _CONFIGS:
        _CONFIGS[r["config"]] = from_file(r["config"], ROOT)
    overrides = ["unpaid.model="] + list(r.get("overrides", [])) + [f"seed={r['seed']}"]
    return teacher_twins(with_overrides(_CONFIGS[r["config"]], overrides), 0)


def teacher_twins_section(left_out: list) -> list:
    """The runs left out because a first student started as the teacher did, (results file,
    record, the same row's other records), beside the same rows' fair seeds: what the head
    start was worth."""
    if not left_out:
        return []
    out = ["## Runs left out: a first student started from the teacher's own weights", "",
           "Before 2026-12-04 (session 27) a seed-0 run whose first student is the teacher's model "
           "(`unpaid.model=teacher`) started that first student from the very weights the bench "
           "teacher, trained with seed 0 by the same code, started from: a head start no user "
           "has (`bench/teacher_twins.py`; `bench/diagnostics/calibration.py` found it agreeing "
           "with the teacher far more than any other first student). These runs are left out "
           "of every other table and mean; `bench/paper_table.py` now refuses such a run.", "",
           "| results | row | seed | student % | first students % | the row's other seeds: "
           "student % | first students % |", "|---|---|---|---|---|---|---|"]
    for name, r, others in left_out:
        out.append(f"| {name} | {row_name(row_key(r))} | {r['seed']} | "
                   f"{100 * r['report']['student_accuracy']:.2f} | {_labellers(r)} | "
                   + (f"{fmt([o['report']['student_accuracy'] for o in others])} | "
                      f"{', '.join(_labellers(o) for o in others)} |" if others else "– | – |"))
    return out + [""]


def _labellers(r) -> str:
    """A run's first students' accuracy together, as %."""
    averaged = (r["report"].get("unpaid_labellers") or {}).get("averaged")
    return "–" if averaged is None else f"{100 * averaged:.2f}"


def dataset_section(dataset, records, teacher_pct, commands) -> list:
    tab, _ = table(records, dataset, teacher_pct)
    base, _, tag = dataset.partition(".")
    own = TEACHER_TAG.search(base)
    base = family(base)
    # teachers of a seed other than the configs' own (0)
    seeds = sorted({r["teacher_seed"] for r in records if r.get("teacher_seed")})
    where = machines(records) or "not recorded"
    how = (f"trained by the same command with seed {', '.join(map(str, seeds))} on {where} "
           "(section \"Bench teachers by seed\")" if seeds else
           f"retrained by the same command and seed on another machine ({where})")
    retrained = (f"Against a teacher {how}, which scored {teacher_pct} %: "
                 f"these rows are measured anew, never averaged with the first teacher's "
                 f"(section `{base}`).") if own else ""
    return [f"## {dataset}", "", *([retrained, ""] if retrained else []),
            *([TAG_NOTES[tag], ""] if tag and not own else []),  # notes name the first teacher
            *([OWN_TEACHER_NOTES[tag], ""] if own and tag in OWN_TEACHER_NOTES else []),
            *([DATASET_NOTES[base], ""] if base in DATASET_NOTES else []),
            f"Teacher test accuracy: {teacher_pct} % (paper: "
            f"{PAPER.get(base, {}).get('teacher', '–')}). The share of the teacher is student / "
            f"{teacher_pct} %; the paper's FS-BBT is {PAPER_SHARES.get(base, '–')}.", "",
            tab, "", "Commands (rows and seeds as in each record of the JSONL):", "",
            *[f"    {c}" for c in commands], ""]


def main():
    os.makedirs(DOCS, exist_ok=True)
    all_records = {}
    files = {os.path.basename(p)[:-6]: load(p)
             for p in sorted(glob.glob(os.path.join(RESULTS, "*.jsonl")))
             if not os.path.basename(p).startswith(("heldout", "augment_agreement",
                                                    *(stem for stem, _ in SECTIONS)))}
    first = first_teachers(files)
    left_out = []  # (results file, record) of runs that started as the teacher did
    for name, records in files.items():
        twins = [r for r in records if teacher_twins_of(r)]
        records = [r for r in records if r not in twins]
        left_out += [(name, r, [o for o in records if row_key(o) == row_key(r) and
                                o.get("teacher_test_accuracy") == r.get("teacher_test_accuracy")])
                     for r in twins]
        all_records.update(by_teacher(name, records, first.get(family(name))))
    teacher_of = {}  # data set -> its teacher's whole-test-set accuracy %
    for dataset, records in all_records.items():
        exact = sorted({round(100 * r["teacher_test_accuracy"], 2) for r in records
                        if "teacher_test_accuracy" in r})
        found = exact or whole_set_teacher(records)
        if len(found) == 1:
            teacher_of.setdefault(dataset.split(".")[0], found[0])
    main_page, explore = [], []
    for dataset, records in all_records.items():
        teacher_pct = teacher_of.get(dataset.split(".")[0])
        seeds = seeds_of(records)
        split = {True: [r for r in records if len(seeds[row_key(r)]) >= MAIN_SEEDS],
                 False: [r for r in records if len(seeds[row_key(r)]) < MAIN_SEEDS]}
        for main_rows, out in ((True, main_page), (False, explore)):
            if split[main_rows]:
                commands = sorted({clean(r.get("command") or f"python bench/paper_table.py "
                                   f"--config={r['config']} --out=bench/results/{dataset}.jsonl")
                                   for r in split[main_rows]})
                block = dataset_section(dataset, split[main_rows], teacher_pct, commands)
                out.append((dataset, block)) if main_rows else out.extend(block)
    out = ["# Results", "",
           "kd_keras against the paper's method (FS-BBT, Nguyen et al., ECCV 2022, arXiv "
           "2207.12106), measured on this machine by `bench/paper_table.py`. Generated by "
           "`python bench/make_results.py` from `bench/results/*.jsonl`: every number is read "
           "from a measured run, none is typed in. One-seed explorations are on "
           "[EXPLORATIONS.md](EXPLORATIONS.md).", "",
           f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU, Python "
           f"{platform.python_version()}.", ""]
    sections = {}
    order = list(HEADLINE)  # the headline data sets first, each followed by its other teachers
    for base in sorted({d.split(".")[0] for d in all_records},
                       key=lambda b: (order.index(family(b)) if family(b) in order else len(order),
                                      family(b), b != family(b), b)):
        sections[base] = budget_section(all_records, base, teacher_of.get(base),
                                        os.path.join(DOCS, f"budget_{base}.png"),
                                        first_pct=teacher_of.get(family(base)))
    out += headline(all_records, teacher_of)  # after the plots it shows are drawn
    out += augment_rule_section(all_records, teacher_of)
    out += unpaid_section(all_records)
    out += teacher_twins_section(left_out)
    for base, lines in sections.items():  # by importance: headline data sets first
        out += lines + [l for d, block in main_page if d.split(".")[0] == base for l in block]
    heldout = os.path.join(RESULTS, "heldout_check.jsonl")
    if os.path.exists(heldout):
        rows = load(heldout)
        out += ["## Held-out check, rehearsed", "",
                "`python bench/heldout_check.py --config=CONFIG --seeds=0,1,2`: the config's "
                "defaults with `--config.query.budget=10000` against a teacher of another "
                "architecture (grey images: an MLP, 784-512-256-10; colour: an all-convolutional "
                "net) served over TensorFlow Serving REST on loopback, learning from a folder of "
                "2,000 PNG (grey) or JPEG (colour) files, evaluated with `--eval=npz:TEST.npz`; the "
                "teacher's accuracy is measured on the whole test set in-process by the bench. "
                "Passing: the student reaches the data set's share of the teacher (Fashion-MNIST "
                "94 %, issue #12; MNIST 99.4 %, CIFAR-10 (JPEG) 88 %, issue #23), <= 10,000 "
                "training and <= 1,000 evaluation answers. The Fashion-MNIST code's default then: "
                + "; ".join(f"{k}: {v}" for k, v in HELDOUT_CODE.items()) + ".", "",
                "| config | code | seed | overrides | teacher | teacher % | student % | share % | "
                "training answers | eval answers | passed |",
                "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r.get('config', 'configs/fashion_mnist.py')} | "
                       f"{r.get('commit', 'soft-CE CutMix default, before KL')} | {r['seed']} | "
                       f"{' '.join(r.get('overrides', [])) or '–'} | {r['teacher']} | "
                       f"{100 * r['teacher_accuracy']:.2f} | {100 * r['student_accuracy']:.2f} | "
                       f"{100 * r['share']:.1f} | {r['teacher_queries']:,} | {r['eval_queries']:,} | "
                       f"{'yes' if r['passed'] else 'NO'} |")
        out.append("")
    throughputs = sorted(glob.glob(os.path.join(RESULTS, "teacher_throughput*.json")))
    if throughputs:
        out += ["## Teacher query throughput (images/s)", "",
                "`bench/teacher_throughput.py`: the teacher called in-process against the same "
                "SavedModel served by `bin/serve_teacher.py` in its own process on loopback "
                "over TF Serving REST (JSON) and gRPC (binary tensors), by batch size and requests "
                "in flight; `v2_http` is the Open Inference Protocol's REST path of the same "
                "server. The `linear` teacher (softmax(x @ W), next to free to compute, so the "
                "protocols' own cost is measured) is also served by MLServer, a real Open "
                "Inference Protocol server, over REST (`oip_http`, JSON) and gRPC (`oip_grpc`, "
                "binary `raw_input_contents`).", "",
                "| teacher | image shape | best in-process | protocol | best served (batch x "
                "concurrency) | served / in-process |", "|---|---|---|---|---|---|"]
        for path in throughputs:
            t = json.load(open(path))
            local = max(t["in_process"].values())
            for protocol in ("http", "grpc", "v2_http", "oip_http", "oip_grpc"):
                if not t.get(protocol):
                    continue
                best = max(t[protocol], key=t[protocol].get)
                out.append(f"| {t.get('teacher', os.path.basename(path))} "
                           f"| {t.get('image_shape', '')} | {local:.0f} | {protocol} "
                           f"| {t[protocol][best]:.0f} ({best}) | {t[protocol][best] / local:.2f} |")
        out.append("")
    out += tflite_section(all_records)
    for stem, section in SECTIONS:  # benchmarks with a section of their own
        path = os.path.join(RESULTS, stem + ".jsonl")
        if os.path.exists(path):
            out += section(load(path))
    out += [SPEED_PROBES, ""]
    if all_records:
        plot({k: v for k, v in all_records.items()}, os.path.join(DOCS, "results.png"))
    pages = {"RESULTS.md": out,
             "EXPLORATIONS.md": ["# Explorations", "",
                                 "Rows with fewer than 3 seeds: each is an exploration, not a "
                                 "claim (the standard deviation between seeds on "
                                 "[RESULTS.md](RESULTS.md) shows what a one-seed difference "
                                 "is worth). Generated by `python bench/make_results.py`.", "",
                                 *explore]}
    for name, lines in pages.items():
        text = "\n".join(lines)
        assert ROOT not in text, f"a machine path is on {name}"
        with open(os.path.join(DOCS, name), "w") as f:
            f.write(text)
        print(f"wrote docs/{name}")


if __name__ == "__main__":
    main()
