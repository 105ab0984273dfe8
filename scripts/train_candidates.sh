#!/usr/bin/env bash
# The candidates for the next default trained on 2026-12-07 (none shipped; the model card's
# "Candidates" section has their figures), from stage 5 of scripts/train_default.sh:
#   6   stage 5 + 12 epochs on hsc-real with a curved residual sky (hsc-real-bump.yaml),
#       the border background fitted with the border's sources masked;
#   7   stage 6 + 6 epochs on half stage 6's set, half clean hsc (no pure galaxies);
#   7b  the same with clean hsc holding hsc-real's pure disks and bulges (hsc-clean-pure.yaml);
#   7c  the same with hsc-real keeping only what an image shows instead of clean hsc
#       (hsc-real-observable.yaml: no clumps, canonical Sersic indices, exact PSF FWHM);
#   7d  7c + 8 epochs at a lower rate (2e-4) on 7c's own mixture.
# Each is calibrated on the default's clean calibration set (hsc, seed 23).
#
#   scripts/train_candidates.sh WORK_DIR     (the WORK_DIR of a finished train_default.sh)
#
# Resumable like train_default.sh. About 95 + 3 x 35 + 45 minutes of training and 5 x 10
# of calibration on 2 CPU cores.
set -euo pipefail

WORK=${1:?usage: scripts/train_candidates.sh WORK_DIR}
SCRIPTS=$(cd "$(dirname "$0")" && pwd)
GAMPEN=${GAMPEN:-gampen}
PYTHON=${PYTHON:-python}
N_TRAIN=${N_TRAIN:-24000}
cd "$WORK"
[ -d base-centred ] && [ -e cal/.done ] || { echo "run scripts/train_default.sh $WORK first"; exit 1; }

simulate_set() {  # simulate_set PRESET N SEED FOLDER [SIMULATE OPTIONS]
    [ -e "$4/.done" ] && return
    "$GAMPEN" simulate --preset "$1" --n "$2" --seed "$3" --out "$4" --no-progress "${@:5}"
    touch "$4/.done"
}
tune() {  # tune OUT INIT CATALOG EPOCHS LR SEED
    [ -e "$1/gampen.json" ] && return
    "$GAMPEN" train "$3" --out "$1" --init-from "$2" --psf-image --epochs "$4" --lr "$5" \
        --seed "$6" --val-fraction 0.1 --test-fraction 0 --background masked-centred --cache \
        --resume --no-progress
}
calibrate() {  # calibrate BASE OUT
    [ -e "$2/gampen.json" ] || "$GAMPEN" calibrate "$1" --catalog cal/info.csv --out "$2" --no-progress
}
mix() {  # mix OUT CLEAN: half of stage 6's set, then the clean set
    [ -e "$1/info.csv" ] || "$PYTHON" "$SCRIPTS/combine_catalogs.py" "$1/info.csv" \
        "train-bump/info.csv:$((N_TRAIN / 2))" "$2/info.csv"
}

simulate_set hsc-real "$N_TRAIN" 17 train-bump --config "$SCRIPTS/hsc-real-bump.yaml"
tune base-bump base-centred train-bump/info.csv 12 5e-4 17
calibrate base-bump candidate-6

simulate_set hsc $((N_TRAIN / 2)) 41 train-clean
mix train-mix train-clean
tune base-mix base-bump train-mix/info.csv 6 3e-4 41
calibrate base-mix candidate-7

simulate_set hsc $((N_TRAIN / 2)) 43 train-clean-pure --config "$SCRIPTS/hsc-clean-pure.yaml"
mix train-mix-pure train-clean-pure
tune base-mix-pure base-bump train-mix-pure/info.csv 6 3e-4 41
calibrate base-mix-pure candidate-7b

simulate_set hsc-real $((N_TRAIN / 2)) 47 train-observable --config "$SCRIPTS/hsc-real-observable.yaml"
mix train-mix-observable train-observable
tune base-mix-observable base-bump train-mix-observable/info.csv 6 3e-4 41
calibrate base-mix-observable candidate-7c

tune base-mix-observable-longer base-mix-observable train-mix-observable/info.csv 8 2e-4 41
calibrate base-mix-observable-longer candidate-7d
echo "candidates: $WORK/candidate-6 $WORK/candidate-7 $WORK/candidate-7b $WORK/candidate-7c" \
    "$WORK/candidate-7d"
