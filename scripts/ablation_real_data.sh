#!/usr/bin/env bash
# Does training on the nuisances of real data make a model robust to them?  Two small
# models, the same recipe and the same galaxies, one trained on the clean hsc preset and
# one on hsc-real (hsc plus the nuisances), each calibrated on its own preset and run
# through the robustness battery.  A quick ablation (about 40 CPU-minutes on 2 cores), not
# the shipped recipe: it says which way to go before the full retrain.
#
#   scripts/ablation_real_data.sh [WORK_DIR] [N_TRAIN] [EPOCHS]
#
# Reruns skip finished steps.  Results: WORK_DIR/{hsc,hsc-real}/battery/battery.md.
set -euo pipefail

WORK=${1:-ablation-real-data}
N_TRAIN=${2:-8000}
EPOCHS=${3:-8}
HERE=$(cd "$(dirname "$0")" && pwd)
GAMPEN=${GAMPEN:-gampen}
PYTHON=${PYTHON:-python}
mkdir -p "$WORK"
cd "$WORK"

for preset in hsc hsc-real; do
    mkdir -p "$preset"
    (
        cd "$preset"
        [ -e train/.done ] || { "$GAMPEN" simulate --preset "$preset" --n "$N_TRAIN" --seed 101 \
            --out train --no-progress && touch train/.done; }
        [ -e cal/.done ] || { "$GAMPEN" simulate --preset "$preset" --n 3000 --seed 102 \
            --out cal --no-progress && touch cal/.done; }
        [ -e base ] || "$GAMPEN" train train/info.csv --out base --epochs "$EPOCHS" --seed 3 \
            --val-fraction 0.1 --test-fraction 0 --cache --resume --no-progress
        [ -e model ] || "$GAMPEN" calibrate base --catalog cal/info.csv --out model \
            --no-progress --force
        [ -e battery/battery.md ] || "$PYTHON" "$HERE/robustness.py" --model model \
            --out battery --seed 4242 --n 600
    )
done
for preset in hsc hsc-real; do
    echo "== trained on $preset"
    cat "$preset/battery/battery.md"
done
