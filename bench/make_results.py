"""Builds docs/RESULTS.md (tables and a plot) from the benchmark JSONL files: every number
in it is read from a measured run, none is typed in.

  python bench/make_results.py
"""

import glob
import json
import os
import platform
from collections import defaultdict

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, "bench", "results")
DOCS = os.path.join(ROOT, "docs")

# The paper's Table (FS-BBT, ECCV 2022) and DivBFKD (2024), from ../shared/DESIGN.md.
PAPER = {
    "fashion_mnist": {"teacher": 90.15, "student_alone": 81.37, "standard_kd": 83.87,
                      "fsbbt": 84.73, "divbfkd": 86.50},
}
# The papers' students as shares of their own teachers (FS-BBT: 84.73 of 90.15; DivBFKD:
# 86.50 of 90.90), for the share column.
PAPER_SHARES = {"fashion_mnist": "94.0 % of its 90.15 % teacher (DivBFKD: 95.2 % of 90.90 %)"}
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
ROW_NAMES = {
    "student_alone": "student alone (N real, true labels)",
    "standard_kd": "standard KD (N real, teacher labels)",
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
    paper = PAPER.get(dataset.split(".")[0], {})
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
        # Images the teacher labelled for this run: sent now or found in the cache that
        # the benchmark's runs share (a standalone run would have sent them all).
        queries = sorted({x["teacher_queries"] + x.get("teacher_cache_hits", 0) for x in rep})
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
                (rep["student_accuracy"], rep["teacher_queries"] + rep.get("teacher_cache_hits", 0),
                 r["seed"]))
    if any(r["row"].startswith("fsbbt_M") for r in records):
        lines += ["", "Query efficiency (FS-BBT, the paper's method, by synthetic images M):", "",
                  "| M | teacher queries | student top-1 % | per seed |", "|---|---|---|---|"]
        for m, runs in sorted(curve.items()):
            runs.sort(key=lambda run: run[2])
            lines.append(f"| {m} | {max(q for _, q, _ in runs)} | {fmt([a for a, _, _ in runs])} | "
                         + ", ".join(f"s{seed}: {100 * a:.2f}" for a, _, seed in runs) + " |")
    teacher = whole_set_teacher(records)
    return "\n".join(lines), teacher


LEVER_NAMES = {"base": "student:mirrored:spe1", "jit": "student:mirrored:spe1:jit",
               "spe32": "student:mirrored", "jit+spe32": "student:mirrored:jit"}


def speed_levers_section(records) -> list:
    """One table of every lever measured by bench/speed_levers.py: seconds per epoch."""
    lines = ["## Speed levers (issue #11)", "",
             "`python bench/speed_levers.py --reps=3 --levers=...` (older lines: `python "
             "bench/speed_levers.py 20000 3`): each lever in turn in one process, alternating, "
             "on random 28x28 images: the LeNet-5-Half student over the line's images at batch 64 "
             "(`steps_per_execution` 32 unless `spe1`), the FS-BBT CVAE over 2,000 at batch 256. "
             "A lever is MODEL:STRATEGY[:option]: `mirrored` is MirroredStrategy over the one "
             "CPU, `default` no distribution (what `--strategy=mirrored` now gives on a one-device "
             "machine: the same arithmetic); `bsN` batch size, `speN` steps per execution, `bf16` "
             "mixed_bfloat16, `jit` XLA, `fused` Adam as TF's fused `ResourceApplyAdam` kernel. "
             "Seconds per epoch, median (each run); the machine's timing noise is large, so "
             "only levers measured side by side in one line compare.", "",
             "| when | student images | threads (intra, inter) | lever | s/epoch median (runs) |",
             "|---|---|---|---|---|"]
    for r in records:
        threads = f"{r.get('intra', 0) or 'TF'}, {r.get('inter', 0) or 'TF'}"
        for lever, v in r["seconds_per_epoch"].items():
            lines.append(f"| {r['finished']} | {r.get('images', 20000):,} | {threads} | "
                         f"{LEVER_NAMES.get(lever, lever)} | "
                         f"{np.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)}) |")
    return lines + [""]


def epoch_gaps_section(records) -> list:
    """Student epochs of two trees, alternating: total, first-step waits, stalls."""
    lines = ["## Stalls between student epochs (issue #11)", "",
             "Some student epochs started only after the whole process sat idle for 2.2-2.5 s. "
             "`py-spy dump --native` during such a wait showed the main thread destroying the "
             "previous epoch's tf.data iterator (`~RootDataset::Iterator`), waiting for the "
             "thread of tf.data's autotuner. `fit` makes a new iterator every epoch. The epoch "
             "pipelines of the student and the CVAE now run with autotuning off "
             "(`kd_keras.data.epochs`); the arithmetic and the data order are unchanged.", "",
             "`python bench/epoch_gaps.py --trees=BEFORE,AFTER --variant=V --epochs=15 --reps=3`: "
             "each run a fresh process training the config's student (`train_student`) on "
             "52,000 random images, trees alternating; the wait is the time from an epoch's start "
             "to its first step, a stall a wait over 1 s.", "",
             "| variant | code | runs | seconds for the epochs, median (each run) | waits s "
             "(each run) | stalls (each run) |", "|---|---|---|---|---|---|"]
    by = defaultdict(list)
    for r in records:
        by[(r["variant"], r["commit"], r["epochs"])].append(r)
    for (variant, commit, epochs), runs in by.items():
        lines.append(f"| {variant} | {commit} | {len(runs)} x {epochs} epochs | "
                     f"{np.median([r['total_seconds'] for r in runs]):.1f} ("
                     + ", ".join(f"{r['total_seconds']:.1f}" for r in runs) + ") | "
                     + ", ".join(f"{r['wait_seconds']:.1f}" for r in runs) + " | "
                     + ", ".join(str(r["stalls"]) for r in runs) + " |")
    return lines + [""]


def speed_runs_section(records) -> list:
    """Whole runs of the old and the new code, alternated: wall time, ratio, stage shares."""
    lines = ["## Whole runs: old code against new (issue #11)", "",
             "`python bench/speed_runs.py --old=/work/old_e0f4b9a --variants=... --seeds=0,1,2` "
             "(the old tree is a git worktree of e0f4b9a): for each seed, the old and the new "
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
            ratio = (f"{med['old'] / med['new']:.2f}x faster" if tree == "new" and "old" in med
                     else "")
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
    arithmetic = os.path.join(RESULTS, "arithmetic.json")
    if os.path.exists(arithmetic):
        lines += ["", arithmetic_paragraph(json.load(open(arithmetic)), records)]
    lever = batch_lever_paragraph()
    return lines + (["", lever] if lever else []) + [""]


def batch_lever_paragraph() -> str:
    """The issue's batch-size lever tried on the paper's method: accuracy against the
    condition (within one std of 85.09 +- 0.11) and wall time, from the plugins rows."""
    path = os.path.join(RESULTS, "fashion_mnist.plugins.jsonl")
    if not os.path.exists(path):
        return ""
    rows = defaultdict(dict)
    for r in map(json.loads, open(path)):
        if r.get("report", {}).get("student_accuracy") is not None:
            rows[r["row"]][r["seed"]] = (r["report"]["student_accuracy"], r.get("seconds"))
    if len(rows.get("fsbbt@bs128", {})) < 3:
        return ""
    def describe(row):
        runs = [rows[row][k] for k in sorted(rows[row])]
        acc = [100 * a for a, _ in runs]
        walls = [w for _, w in runs if w]
        return (f"{np.mean(acc):.2f} ± {np.std(acc, ddof=1):.2f} ("
                + ", ".join(f"{a:.2f}" for a in acc) + ")"
                + (f", {np.median(walls):.0f} s median wall, not a timing sitting"
                   if walls else ""))
    base = describe("fsbbt@cvae_mlp") if len(rows.get("fsbbt@cvae_mlp", {})) >= 3 else "–"
    ok = np.mean([a for a, _ in rows["fsbbt@bs128"].values()]) * 100 >= 85.09 - 0.11
    return ("The batch lever on the paper's method (`python bench/paper_table.py "
            "--rows=fsbbt@bs128 --seeds=0,1,2`: batch 128 at lr 2e-3, everything else the "
            f"paper's): {describe('fsbbt@bs128')}, against {base} at the paper's batch of 64. "
            + ("It stays within one standard deviation of today's 85.09 ± 0.11."
               if ok else "That is below 84.98, the accuracy condition (85.09 ± 0.11), "
               "so `:paper` keeps its batch of 64."))


def arithmetic_paragraph(a: dict, records: list) -> str:
    """How far the newest sitting's stages are from what two perfectly busy cores need."""
    best = max(a["flops_per_second"].values())
    conv_rate = min(a["flops_per_second"].values())
    student = 50000 * 50 * 3 * a["student_forward_flops_per_image"] / best
    cvae_flops = a["cvae_forward_flops_per_image"]
    if not isinstance(cvae_flops, dict):  # older records: the conv CVAE only
        cvae_flops = {"conv": cvae_flops}
    newest = max((r.get("sitting", "1") for r in records), default="1",
                 key=lambda label: (len(label), label))  # "10" after "9"
    new = [r for r in records if r["tree"] == "new" and r.get("sitting", "1") == newest
           and r["variant"] == "paper"]
    measured = {k: np.median([r["stage_seconds"][k] for r in new
                              if (r.get("stage_seconds") or {}).get(k)] or [np.nan])
                for k in ("student_train", "cvae_train")}
    cvae = {k: 2000 * 100 * 3 * v / best for k, v in cvae_flops.items()}
    return ("Arithmetic limit (`python bench/arithmetic.py`): LeNet-5-Half does "
            f"{a['student_forward_flops_per_image'] / 1e6:.2f} MFLOP forward per image, the CVAE "
            + ", ".join(f"{v / 1e6:.1f} MFLOP ({k})" for k, v in cvae_flops.items())
            + "; this CPU reached "
            + ", ".join(f"{v / 1e9:.0f} GFLOP/s ({k})" for k, v in a["flops_per_second"].items())
            + ". With training = 3x forward, 50 student epochs over 50,000 images need "
            f"{student:.0f} s at the matmul rate, {student * best / conv_rate:.0f} s at the rate the "
            "student's own small convolutions reach even at batch 1,024; the newest sitting's "
            f"new paper-method runs took {measured['student_train']:.0f} s (sitting {newest}; "
            "`bench/student_ops.py` shows where a step goes). 100 CVAE epochs over 2,000 images "
            "need " + ", ".join(f"{v:.1f} s ({k})" for k, v in cvae.items())
            + f" at the matmul rate; measured {measured['cvae_train']:.0f} s.")


STEP_WAYS = {"fit": "`fit` on the run's epoch pipeline",
             "loop_pipeline": "`train_step` in a bare loop over the same pipeline",
             "loop_one_batch": "`train_step` in a bare loop over one batch repeated by tf.data",
             "loop_constant": "`train_step` in a bare loop on a constant batch (the floor)"}


def step_floor_section(records) -> list:
    """Milliseconds per paper-student step through fit and through bare loops."""
    lines = ["## How far `fit` is from the step itself (issue #11)", "",
             "`python bench/step_floor.py --reps=5`: the paper's LeNet-5-Half at batch 64, the "
             "Distiller's `train_step` four ways, alternating in one process (`fit`: median epoch "
             "after the first; loops: best of 3 epochs). Milliseconds per step, median (each "
             "round). What `fit` and tf.data add over the constant-batch floor is the most any "
             "change to the training loop could save; the rest is TensorFlow's kernels for the "
             "student's small convolutions.", "",
             "| when | batch | way | ms/step median (rounds) | over the floor |", "|---|---|---|---|---|"]
    for r in records:
        floor = float(np.median(r["ms_per_step"]["loop_constant"]))
        for way, v in r["ms_per_step"].items():
            lines.append(f"| {r['finished']} | {r['batch']} | {STEP_WAYS.get(way, way)} | "
                         f"{np.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)}) | "
                         f"{100 * (np.median(v) / floor - 1):+.0f} % |")
    return lines + [""]


FORMS = {"stock": "the library's student and pipeline through `fit` (as a run)",
         "conv1_bxc": "first convolution as a depthwise one over batch x channels",
         "convs_bxc": "both convolutions over batch x channels",
         "gather": "tf.data yields indices; `train_step` gathers from resident images",
         "stock_spe1": "the library's student, one step per execution",
         "mirrored2_spe1": "MirroredStrategy over two logical CPUs (32 per replica), one step "
                           "per execution"}


def student_forms_section(records) -> list:
    """Milliseconds per paper-student step computed other ways, against the stock student."""
    lines = ["## Other ways to compute the student's step (issue #11)", "",
             "`python bench/student_forms.py --reps=5`: the paper's LeNet-5-Half at batch 64 "
             "through `fit`, one epoch of random images per way and round, alternating in one "
             "process. Milliseconds per step, median (each round); the last column compares "
             "with `stock` (or `stock_spe1` for the one-step-per-execution row). The other ways "
             "are defined in the benchmark only, not in the library.", "",
             "| when | way | ms/step median (rounds) | against stock |", "|---|---|---|---|"]
    for r in records:
        ms = r["ms_per_step"]
        for way, v in ms.items():
            base = ms.get("stock_spe1" if way.endswith("spe1") else "stock")
            against = f"{100 * (np.median(v) / np.median(base) - 1):+.0f} %" if base else "–"
            lines.append(f"| {r['finished']} | {FORMS.get(way, way)} | {np.median(v):.2f} "
                         f"({', '.join(f'{x:.2f}' for x in v)}) | {against} |")
    return lines + [""]


def student_ops_section(records) -> list:
    """Milliseconds per student training step, layer by layer and convolution by method."""
    lines = ["## Where a student step goes (issue #11)", "",
             "`python bench/student_ops.py` (and with `TF_ENABLE_ONEDNN_OPTS=0`): each "
             "LeNet-5-Half layer's forward and backward at batch 64, the whole step, and its two "
             "convolutions computed as tf.nn.conv2d or as im2col (extract_patches + one matmul), "
             "(a layer row includes the gradient with respect to the layer's input, which "
             "training does not compute for the first convolution), "
             "each in one tf.function loop. Milliseconds per step, best of 3.", ""]
    keys = list(dict.fromkeys(k for r in records for k in r["ms_per_step"]))
    head = [f"oneDNN {r['onednn']}, {r['finished']}, load {r['load_at_start']}" for r in records]
    lines += ["| op | " + " | ".join(head) + " |", "|---" * (len(records) + 1) + "|"]
    for k in keys:
        lines.append(f"| {k} | " + " | ".join(f"{r['ms_per_step'].get(k, float('nan')):.2f}"
                                              for r in records) + " |")
    return lines + [""]


# What the default was at each commit of the held-out rehearsal.
HELDOUT_CODE = {"13376ae": "KL T = 4, batch 128, 50 epochs",
                "e4ef788 and 73aecbd": "the same (the overrides change it)",
                "9548442": "KL T = 2, batch 128, auto epochs (100 at 10K answers)",
                "d7c1db7": "the same with weight averaging (EMA 0.999)",
                "8b7dd5b": "the same default after the speed and multi-worker fixes of "
                           "session 8-9 (identical results: the arithmetic did not change)"}

# Methods on the accuracy-per-answer curve: rows whose name, without a budget variant
# (B<count>), is one of these. A run without a budget variant paid about 50,000 answers.
AUTO = "real_cutmix@kl2+bs128+auto+ema"  # today's default
AUTO_BEFORE = "real_cutmix@kl2+bs128+auto"  # the default before weight averaging
CURVES = {"fsbbt": "FS-BBT (the paper's method)",
          AUTO: "kd_keras default (real + CutMix, KL T = 2, batch 128, auto epochs, EMA 0.999)",
          AUTO_BEFORE: "real + CutMix, KL T = 2, batch 128, auto epochs (no EMA)",
          "real_cutmix@kl2+bs128": "real + CutMix, KL T = 2, batch 128, 50 epochs",
          "real_cutmix@kl4+bs128": "real + CutMix, KL T = 4, batch 128",
          "real_cutmix@kl4": "real + CutMix, KL T = 4, batch 64 (the default before batch 128)"}
TARGETS = {"fashion_mnist": [(10000, 84.73, "≥ 84.73 at B ≤ 10K"), (50000, 87.0, "≥ 87.0 at B ≤ 50K")]}


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
            rep = r["report"]
            if r.get("answers", "probs") != "probs" or "student_accuracy" not in rep:
                continue
            paid = rep["teacher_queries"] + rep.get("teacher_cache_hits", 0)
            for name in {row, same_as_auto(row, rep["n_train"]) or row}:
                if name in CURVES:
                    newest[(name, budget or rep["n_train"], r["seed"])].append(
                        (r.get("finished", ""), rep["student_accuracy"], paid))
    for (row, budget, seed), runs in newest.items():  # a seed rerun by newer code replaces it
        _, accuracy, paid = max(runs)
        curves[row][budget].append((accuracy, seed, paid))
    return curves


def budget_section(all_records, dataset, teacher_pct, path) -> list:
    curves = budget_curves(all_records, dataset)
    if not curves:
        return []
    lines = [f"## Accuracy per paid answer ({dataset}, issue #12)", "",
             "Student top-1 % against the training budget B (`--config.query.budget=B`: the run "
             "plans M = B - N synthetic images and pays at most B answers). Runs from every section above of the same teacher; the "
             f"share is student / teacher ({teacher_pct} %). Targets: "
             + "; ".join(t for _, _, t in TARGETS.get(dataset, [])) + ".", "",
             "| method | B | student top-1 % | per seed | share of teacher % | answers paid (max) |",
             "|---|---|---|---|---|---|"]
    for row, points in curves.items():
        for budget, runs in sorted(points.items()):
            runs.sort(key=lambda x: x[1])
            acc = [a for a, _, _ in runs]
            lines.append(f"| {CURVES[row]} | {budget:,} | {fmt(acc)} | "
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
        ax.errorbar(xs, means, yerr=stds, fmt="o-", capsize=3, color=f"C{i}", label=CURVES[row])
    for budget, value, text in TARGETS.get(dataset, []):
        ax.plot([0, budget], [value, value], ":", color="gray", lw=1)
        ax.text(budget, value, " target " + text, fontsize=7, va="center")
    ax.set_xlabel("training answers paid, budget B")
    ax.set_ylabel("student test accuracy %")
    ax.set_title(f"{dataset}: accuracy per paid answer (teacher {teacher_pct} %)")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
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
                by_row[r["row"]].append((r["report"]["teacher_queries"]
                                         + r["report"].get("teacher_cache_hits", 0),
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
        for name, value in PAPER.get(dataset.split(".")[0], {}).items():
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
SECTIONS = (("speed_levers", speed_levers_section), ("epoch_gaps", epoch_gaps_section),
            ("speed_runs", speed_runs_section), ("student_ops", student_ops_section),
            ("step_floor", step_floor_section), ("student_forms", student_forms_section))


def main():
    os.makedirs(DOCS, exist_ok=True)
    all_records = {}
    for path in sorted(p for p in glob.glob(os.path.join(RESULTS, "*.jsonl"))
                       if not os.path.basename(p).startswith(
                           ("speed", "heldout", *(stem for stem, _ in SECTIONS)))):
        all_records[os.path.basename(path)[:-6]] = load(path)
    out = ["# Results", "",
           "Generated by `python bench/make_results.py` from `bench/results/*.jsonl`, which "
           "`bench/paper_table.py` appends to as each run finishes. Every number below is "
           "measured on this machine; the paper's numbers are from ../shared/DESIGN.md.", "",
           f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU, Python "
           f"{platform.python_version()}.", ""]
    main_teacher = {}  # the first section of a data set with a whole-test-set teacher
    for dataset, records in all_records.items():
        found = whole_set_teacher(records)
        if len(found) == 1:
            main_teacher.setdefault(dataset.split(".")[0], found[0])
    for dataset, records in all_records.items():
        found = whole_set_teacher(records)
        teacher_pct = found[0] if len(found) == 1 else main_teacher.get(dataset.split(".")[0])
        tab, teacher = table(records, dataset, teacher_pct)
        teacher_line = (", ".join(map(str, teacher)) + " %" if teacher else
                        f"{teacher_pct} % (from the first section; these runs asked the teacher "
                        "about a sample)")
        commands = sorted({r.get("command") or f"python bench/paper_table.py --config="
                           f"{r['config']} --out=bench/results/{dataset}.jsonl" for r in records})
        base, _, tag = dataset.partition(".")
        out += [f"## {dataset}", "", *([TAG_NOTES[tag], ""] if tag else []),
                f"Teacher test accuracy measured: "
                f"{teacher_line} "
                f"(paper: {PAPER.get(base, {}).get('teacher', '–')}). The share of the teacher is "
                f"student / {teacher_pct} %; the paper's FS-BBT is {PAPER_SHARES.get(base, '–')}.",
                "", tab, "",
                "Rows with one seed are explorations: the standard deviation between seeds is "
                "shown above, and a one-seed difference smaller than it is not evidence.", "",
                "Commands (rows and seeds as in each record of the JSONL):", "",
                *[f"    {c}" for c in commands], ""]
    speed = os.path.join(RESULTS, "speed.json")
    if os.path.exists(speed):
        sp = json.load(open(speed))
        loadavg = sp.get("load_average_at_start")
        out += ["## Speed", "", "`bench/speed.py`, in one process; load average (1, 5, 15 min) "
                f"when it started: {loadavg or 'not recorded'} on {os.cpu_count()} cores "
                "(other work on the cores makes single timings noisy).", "",
                f"Time per stage of `{sp.get('run_report', '?')}` (a benchmark run; other runs may have "
                "shared the cores):", "",
                "| stage | seconds |", "|---|---|",
                *[f"| {k} | {v:.1f} |" for k, v in sp.get("stage_seconds_of_run", {}).items()], "",
                f"Student epoch over {sp['n_images']} images: training pipeline "
                f"{sp['student_epoch_pipeline_s']:.2f} s, batches already in memory "
                f"{sp['student_epoch_in_memory_s']:.2f} s (medians): pipeline overhead "
                f"{100 * sp['pipeline_overhead']:+.0f}%."
                + (f" Iterating the data alone, no training: pipeline {sp['iterate_pipeline_s']:.2f} s, "
                   f"in memory {sp['iterate_in_memory_s']:.2f} s per epoch, so the pipeline's own "
                   f"work is {100 * sp['pipeline_own_cost']:+.1f}% of a training epoch; the rest of "
                   "the difference is timing noise of the shared cores."
                   if "pipeline_own_cost" in sp else ""), "",
                f"Labelling {sp['n_images']} MixUp images with the in-process teacher: streaming "
                f"pipeline {sp['mixup_label_streaming_s']:.2f} s, generate-then-query "
                f"{sp['mixup_label_sequential_s']:.2f} s (medians after an untimed warm-up pass).", ""]
    for stem, section in SECTIONS:  # benchmarks with a section of their own, in page order
        path = os.path.join(RESULTS, stem + ".jsonl")
        if os.path.exists(path):
            out += section(load(path))
    heldout = os.path.join(RESULTS, "heldout_check.jsonl")
    if os.path.exists(heldout):
        rows = load(heldout)
        out += ["## Held-out check, rehearsed (issue #12)", "",
                "`python bench/heldout_check.py --seeds=0,1,2`: the default config with "
                "`--config.query.budget=10000` against a teacher of another architecture (an MLP, "
                "784-512-256-10) served over TensorFlow Serving REST on loopback, learning from a "
                "folder of 2,000 PNGs; the teacher's accuracy is measured on all 10,000 test "
                "images in-process by the bench. Passing: student >= 94 % of the teacher, <= "
                "10,000 training and <= 1,000 evaluation answers. The code's default then: "
                + "; ".join(f"{k}: {v}" for k, v in HELDOUT_CODE.items()) + ".", "",
                "| code | seed | overrides | teacher % | student % | share % | training answers | "
                "eval answers | passed |", "|---|---|---|---|---|---|---|---|---|"]
        for r in rows:
            out.append(f"| {r.get('commit', 'soft-CE CutMix default, before KL')} | {r['seed']} | "
                       f"{' '.join(r.get('overrides', [])) or '–'} | "
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
                "in flight.", "",
                "| teacher | image shape | best in-process | protocol | best served (batch x "
                "concurrency) | served / in-process |", "|---|---|---|---|---|---|"]
        for path in throughputs:
            t = json.load(open(path))
            local = max(t["in_process"].values())
            for protocol in ("http", "grpc"):
                if not t.get(protocol):
                    continue
                best = max(t[protocol], key=t[protocol].get)
                out.append(f"| {t.get('teacher', os.path.basename(path))} "
                           f"| {t.get('image_shape', '')} | {local:.0f} | {protocol} "
                           f"| {t[protocol][best]:.0f} ({best}) | {t[protocol][best] / local:.2f} |")
        out.append("")
    for base in sorted({d.split(".")[0] for d in all_records}):
        out += budget_section(all_records, base, main_teacher.get(base),
                              os.path.join(DOCS, f"budget_{base}.png"))
    if all_records:
        plot(all_records, os.path.join(DOCS, "results.png"))
        out += ["## Accuracy against teacher queries", "", "![accuracy vs queries](results.png)", ""]
    with open(os.path.join(DOCS, "RESULTS.md"), "w") as f:
        f.write("\n".join(out))
    print(f"wrote {os.path.join(DOCS, 'RESULTS.md')}")


if __name__ == "__main__":
    main()
