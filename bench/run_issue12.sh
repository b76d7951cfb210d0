#!/bin/sh
# Issue #12 benchmark queue, most needed first; each line appends to its JSONL as runs
# finish and skips runs already there (rerun to continue). One benchmark at a time.
set -x
PY=${PYTHON:-.venv/bin/python}
# WORKROOT and RESULTS may point into another checkout, so that the queue can run from a
# worktree of one commit while the main tree is edited.
WORKROOT=${WORKROOT:-runs/bench_fmnist}
RESULTS=${RESULTS:-bench/results}
PT="$PY bench/paper_table.py --config=configs/fashion_mnist.py --workroot=$WORKROOT"
B=$RESULTS/fashion_mnist.budget.jsonl
A=$RESULTS/fashion_mnist.answers.jsonl
# the default (real + CutMix) at a fifth of the paper's answers
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@B10000
# answers are dear, steps are cheap: longer training and shifted copies at B = 10K (seed 0)
$PT --out=$B --seeds=0 --rows=real_cutmix@B10000+e150,real_cutmix@B10000+shift+e150
# label-only teacher: which loss serves it (seed 0), then 3 seeds at 50K
$PT --out=$A --answers=label --seeds=0 --rows=real_cutmix@hard,real_cutmix@smooth
# the better of the two on seed 0 goes on to seeds 1 and 2 and to B = 10K
LOSS=$($PY -c "import json; r={x['row']: x['report']['student_accuracy'] for x in map(json.loads, open('$A')) if x.get('answers') == 'label' and x['seed'] == 0}; print(max(('hard', 'smooth'), key=lambda k: r.get('real_cutmix@' + k, 0)))")
$PT --out=$A --answers=label --seeds=1,2 --rows=real_cutmix@$LOSS
# more at B = 10K, seed 0: other losses, schedules, selection, mixes, shifted copies
$PT --out=$B --seeds=0 --rows=real_cutmix@B10000+kl4,real_cutmix@B10000+cosine,real_cutmix@uncertain_cutmix+B10000,real_cutmix@half_mixup+B10000,real_cutmix@B10000+shift,real_cutmix@B10000+shift+e100
# the best single changes at B = 10K combined, and KL alone, over 3 seeds
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@half_mixup+kl4+B10000,real_cutmix@B10000+kl4
# the held-out check rehearsed: an MLP teacher over REST, a PNG folder, B = 10,000
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout
# KL T=4 beat soft CE at B = 10K (3 seeds): does it at 50K too? It becomes the default if so
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=1,2 --rows=real_cutmix@kl4
DEF=$($PY -c "import json, numpy as np; r=[x for x in map(json.loads, open('$RESULTS/fashion_mnist.plugins.jsonl')) if x['row'] in ('real_cutmix', 'real_cutmix@kl4')]; m={k: np.mean([x['report']['student_accuracy'] for x in r if x['row'] == k]) for k in ('real_cutmix', 'real_cutmix@kl4')}; print('kl4+' if m['real_cutmix@kl4'] >= m['real_cutmix'] else '')")
$PT --out=$B --seeds=0,1,2 --rows=fsbbt@B10000
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@${DEF}B5000,real_cutmix@${DEF}B25000
$PT --out=$A --answers=topk --seeds=0,1,2 --rows=real_cutmix
$PT --out=$A --answers=label --seeds=0,1,2 --rows=real_cutmix@$LOSS+B10000
$PT --out=$A --answers=topk --seeds=0,1,2 --rows=real_cutmix@B10000
$PT --out=$B --seeds=0,1,2 --rows=fsbbt@B5000,fsbbt@B25000
# not run yet (session time): cosine decay with CutMix towards 87 % at 50K
# $PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0 --rows=real_cutmix@cosine,real_cutmix@kl4+cosine
# session 6 (towards 87 % at 50K; seed 0 explorations, each paired with real_cutmix@kl4 s0)
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0 --rows=real_cutmix@kl4+cosine,real_cutmix@kl4+ema,real_cutmix@kl4+ema4,real_cutmix@kl4+bs128
# unpaid in-batch mixes of answered images (targets mixed alike), at 50K and 10K
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0 --rows=real_cutmix@kl4+bmix,real_cutmix@kl4+bmixup
$PT --out=$B --seeds=0 --rows=real_cutmix@kl4+bmix+B10000,real_cutmix@kl4+bmixup+B10000
# batch 128 over 3 seeds at 50K and 10K (it became the default), and with EMA
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=1,2 --rows=real_cutmix@kl4+bs128
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0 --rows=real_cutmix@kl4+bs128+ema4
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl4+bs128+B10000
$PT --out=$B --seeds=0 --rows=real_cutmix@kl4+ema4+B10000,real_cutmix@kl4+bs128+ema4+B10000
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0 --rows=real_cutmix@kl2+bs128,real_cutmix@kl4+bs128+e80
# the paper's method with its own MLP CVAE
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0,1,2 --rows=fsbbt@cvae_mlp
# the new default's curve
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl4+bs128+B5000,real_cutmix@kl4+bs128+B25000
# the held-out rehearsal for the loss and batch choices (session 6), then T = 2 over 3 seeds
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout --overrides=student.batch_size=64,student.learning_rate=0.001
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout --overrides=student.loss=soft_ce
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout --overrides=student.temperature=2.0
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@bs128+B10000,real_cutmix@kl2+bs128+B10000
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0,1,2 --rows=real_cutmix@kl2+bs128
# session 7: more epochs at 10K (100 became the default through student.min_steps), the
# paper's method at batch 128 (issue #11's batch lever), then the auto-epoch default's curve
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl2+bs128+e100+B10000,real_cutmix@kl2+bs128+e150+B10000
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0,1,2 --rows=fsbbt@bs128
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl2+bs128+auto+B5000
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl2+bs128+auto+B25000
# session 7, towards 87 % at 50K: 80 epochs (seed 0), real images 4 times an epoch (seed 0),
# weight averaging 0.999 (3 seeds; it became the default), then the EMA default's curve
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0 --rows=real_cutmix@kl2+bs128+e80,real_cutmix@kl2+bs128+real4
$PT --out=$RESULTS/fashion_mnist.plugins.jsonl --seeds=0,1,2 --rows=real_cutmix@kl2+bs128+ema
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl2+bs128+auto+ema+B10000
$PY bench/heldout_check.py --seeds=0,1,2 --out=$RESULTS/heldout_check.jsonl --workroot=$WORKROOT/../heldout
$PT --out=$B --seeds=0,1,2 --rows=real_cutmix@kl2+bs128+auto+ema+B5000,real_cutmix@kl2+bs128+auto+ema+B25000
