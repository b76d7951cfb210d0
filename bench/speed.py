"""Speed: whole runs of two commits (or checkouts), alternating in one sitting.

  python bench/speed.py --old=e0f4b9a --new=HEAD --variants=paper,default --seeds=0,1,2 \
      --teacher=runs/bench_fmnist/teacher/teacher --sitting=1

``--old`` and ``--new`` each name a commit (checked out once as a git worktree under
``runs/worktrees/``, so edits made meanwhile do not leak in) or a folder holding a checkout.
For each seed, for each config variant, runs ``bin/distill.py`` of the old tree and then of
the new one (same flags, same teacher, each run its own fresh answer cache, so both do the
same work: every answer paid, generators prepared, the student trained and exported) and
appends one JSON line per run: wall seconds of the whole command, the report's per-stage
seconds and accuracy. Run it alone on the machine. Rerun to continue: finished (sitting,
tree, variant, seed) runs are skipped; a new ``--sitting`` label times both trees again.
"""

import json
import os
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
from absl import app, flags  # noqa: E402

flags.DEFINE_string("old", None, "The old code: a commit, or a folder with a checkout.",
                    required=True)
flags.DEFINE_string("new", "HEAD", "The new code: a commit (default HEAD, as a worktree), or a "
                    "folder with a checkout.")
flags.DEFINE_list("variants", ["paper", "default"], "Config variants: paper, default, ...")
flags.DEFINE_list("seeds", ["0", "1", "2"], "One old and one new run per seed and variant.")
flags.DEFINE_string("config", "configs/fashion_mnist.py", "Config file (same path in both trees).")
flags.DEFINE_string("teacher", "runs/bench_fmnist/teacher/teacher", "SavedModel teacher.")
flags.DEFINE_string("workroot", "runs/speed_runs", "Folder for the runs (made by this bench).")
flags.DEFINE_string("out", "bench/results/speed_runs.jsonl", "JSONL file to append to.")
flags.DEFINE_string("sitting", "1", "Label of this sitting: runs compare within a sitting, and "
                    "a new label times old and new again (records without one are sitting 1).")
FLAGS = flags.FLAGS


def _done(path):
    if not os.path.exists(path):
        return set()
    with open(path) as f:
        return {(r.get("sitting", "1"), r["tree"], r["variant"], r["seed"])
                for r in map(json.loads, f)}


def checkout(ref: str) -> str:
    """A folder holding ``ref``: the folder itself, or a git worktree of the commit."""
    if os.path.isdir(ref):
        return os.path.abspath(ref)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", ref], check=True,
                            capture_output=True, text=True).stdout.strip()
    path = os.path.join(ROOT, "runs", "worktrees", commit)
    if not os.path.isdir(path):
        subprocess.run(["git", "-C", ROOT, "worktree", "add", "--detach", path, commit],
                       check=True)
    return path


def main(argv):
    del argv
    trees = {"old": checkout(FLAGS.old), "new": checkout(FLAGS.new)}
    commits = {k: subprocess.run(["git", "-C", v, "rev-parse", "--short", "HEAD"],
                                 capture_output=True, text=True).stdout.strip()
               for k, v in trees.items()}
    done = _done(FLAGS.out)
    for seed in map(int, FLAGS.seeds):
        for variant in FLAGS.variants:
            for tree, path in trees.items():
                if (FLAGS.sitting, tree, variant, seed) in done:
                    continue
                workdir = os.path.abspath(os.path.join(FLAGS.workroot, f"{tree}_{variant}_s{seed}"))
                shutil.rmtree(workdir, ignore_errors=True)  # only ever a folder this bench made
                config = os.path.join(path, FLAGS.config) + ("" if variant == "default" else f":{variant}")
                cmd = [sys.executable, os.path.join(path, "bin", "distill.py"), f"--config={config}",
                       f"--workdir={workdir}", f"--teacher=savedmodel:{os.path.abspath(FLAGS.teacher)}",
                       f"--config.seed={seed}"]
                print(f"speed_runs: {tree} {variant} seed {seed}", flush=True)
                load = os.getloadavg()[0]
                start = time.perf_counter()
                proc = subprocess.run(cmd, capture_output=True, text=True, cwd=path)
                seconds = time.perf_counter() - start
                os.makedirs(FLAGS.workroot, exist_ok=True)
                with open(workdir + ".log", "w") as f:
                    f.write(proc.stdout + proc.stderr)
                if proc.returncode:
                    print(f"speed_runs: FAILED ({proc.returncode}):\n{proc.stderr[-1500:]}", flush=True)
                    continue
                report = json.load(open(os.path.join(workdir, "report.json")))
                record = {"sitting": FLAGS.sitting, "tree": tree, "commit": commits[tree],
                          "variant": variant, "seed": seed,
                          "command": " ".join(cmd[1:]).replace(path + "/", ""),
                          "wall_seconds": round(seconds, 1), "load_at_start": round(load, 2),
                          "student_accuracy": report.get("student_accuracy"),
                          "teacher_accuracy": report.get("teacher_accuracy"),
                          "teacher_queries": report.get("teacher_queries"),
                          "stage_seconds": report.get("stage_seconds"),
                          "finished": time.strftime("%Y-%m-%d %H:%M")}
                with open(FLAGS.out, "a") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"speed_runs: {tree} {variant} seed {seed}: {seconds:.0f} s, "
                      f"accuracy {record['student_accuracy']}", flush=True)


if __name__ == "__main__":
    app.run(main)
