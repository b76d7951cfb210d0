#!/usr/bin/env bash
# The benchmark in the order that gives the most information soonest: every row for one
# seed, then more seeds. Each finished run is appended to bench/results/*.jsonl at once,
# so this can be stopped and rerun; finished (row, seed) pairs are skipped.
set -u
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
FM="--config=configs/fashion_mnist.py --workroot=runs/bench_fmnist --out=bench/results/fashion_mnist.jsonl"
DG="--config=configs/digits.py --workroot=runs/bench_digits --out=bench/results/digits.jsonl"
$PY bench/paper_table.py $FM --seeds=0 --rows=student_alone,standard_kd,fsbbt,fsbbt@cosine,real_mixup,real_cvae,upper_bound
$PY bench/paper_table.py $DG --seeds=0,1,2 --rows=student_alone,standard_kd,fsbbt,upper_bound
$PY bench/paper_table.py $DG --seeds=0 --rows=real_mixup,real_cvae
$PY bench/paper_table.py $FM --seeds=1,2 --rows=student_alone,standard_kd,fsbbt,fsbbt@cosine
$PY bench/paper_table.py $FM --seeds=0 --rows=fsbbt_M5000,fsbbt_M10000,fsbbt_M25000
$PY bench/paper_table.py $DG --seeds=1,2 --rows=real_mixup,real_cvae
$PY bench/paper_table.py $FM --seeds=1,2 --rows=real_mixup,real_cvae,upper_bound
$PY bench/paper_table.py $FM --seeds=1,2 --rows=fsbbt_M5000,fsbbt_M10000,fsbbt_M25000
