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
               "(one seed so far) was worse than random CutMix: 85.78 vs 86.68.",
}
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


def row_name(row: str) -> str:
    if row.startswith("fsbbt_M"):
        return f"FS-BBT, M = {int(row[7:])} synthetic images"
    return ROW_NAMES.get(row, row)


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def fmt(values, scale=100.0):
    values = np.asarray(values, float) * scale
    if len(values) == 1:
        return f"{values[0]:.2f} (1 seed)"
    return f"{values.mean():.2f} ± {values.std(ddof=1):.2f} ({len(values)} seeds)"


def table(records, dataset):
    by_row = defaultdict(list)
    for r in records:
        by_row[r["row"]].append(r)
    paper = PAPER.get(dataset.split(".")[0], {})
    lines = ["| row | student top-1 % (mean ± std) | per seed | paper % | teacher queries (training) "
             "| agreement % | wall s (mean) |", "|---|---|---|---|---|---|---|"]
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
        lines.append(f"| {name} | {fmt(acc)} | {per_seed} | {paper.get(row, '–')} | "
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
    # The teacher's accuracy on the whole test set; runs that asked the teacher about a
    # sample only (eval.teacher_sample) are left out of this line.
    teacher = sorted({round(r["report"]["teacher_accuracy"] * 100, 2) for r in records
                      if "teacher_accuracy" in r["report"]
                      and r["report"].get("eval_teacher_sample", r["report"].get("n_eval"))
                      == r["report"].get("n_eval")})
    return "\n".join(lines), teacher


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


def main():
    os.makedirs(DOCS, exist_ok=True)
    all_records = {}
    for path in sorted(p for p in glob.glob(os.path.join(RESULTS, "*.jsonl"))
                       if not os.path.basename(p).startswith("speed")):
        all_records[os.path.basename(path)[:-6]] = load(path)
    out = ["# Results", "",
           "Generated by `python bench/make_results.py` from `bench/results/*.jsonl`, which "
           "`bench/paper_table.py` appends to as each run finishes. Every number below is "
           "measured on this machine; the paper's numbers are from ../shared/DESIGN.md.", "",
           f"Machine: {platform.machine()}, {os.cpu_count()} cores, no GPU, Python "
           f"{platform.python_version()}.", ""]
    for dataset, records in all_records.items():
        tab, teacher = table(records, dataset)
        commands = sorted({r.get("command") or f"python bench/paper_table.py --config="
                           f"{r['config']} --out=bench/results/{dataset}.jsonl" for r in records})
        base, _, tag = dataset.partition(".")
        out += [f"## {dataset}", "", *([TAG_NOTES[tag], ""] if tag else []),
                f"Teacher test accuracy measured: {teacher} % "
                f"(paper: {PAPER.get(base, {}).get('teacher', '–')}).", "", tab, "",
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
    levers = os.path.join(RESULTS, "speed_levers.jsonl")
    if os.path.exists(levers):
        out += ["## Speed levers for the student (issue #11)", "",
                "`python bench/speed_levers.py 20000 3`: LeNet-5-Half at batch 64 on random images, "
                "each lever in turn in one process, 1 warm-up epoch then 2 timed; seconds per "
                "epoch, median (runs). `steps_per_execution` gives the same updates; it is the "
                "default now (32).", "",
                "| when | images | plain fit | jit_compile | steps_per_execution=32 | both |",
                "|---|---|---|---|---|---|"]
        for line in open(levers):
            r = json.loads(line)
            cells = [f"{np.median(v):.2f} ({', '.join(f'{x:.2f}' for x in v)})"
                     for v in (r["seconds_per_epoch"][k] for k in ("base", "jit", "spe32", "jit+spe32"))]
            out.append(f"| {r['finished']} | {r['images']} | " + " | ".join(cells) + " |")
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
    if all_records:
        plot(all_records, os.path.join(DOCS, "results.png"))
        out += ["## Accuracy against teacher queries", "", "![accuracy vs queries](results.png)", ""]
    with open(os.path.join(DOCS, "RESULTS.md"), "w") as f:
        f.write("\n".join(out))
    print(f"wrote {os.path.join(DOCS, 'RESULTS.md')}")


if __name__ == "__main__":
    main()
