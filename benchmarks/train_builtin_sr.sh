#!/usr/bin/env bash
# Train srkit's built-in SR models exactly as shipped (benchmarks/results/fidelity.md has the record).
#   bash benchmarks/train_builtin_sr.sh compact-x2|compact-x4|seednet-x2 [RUNS_DIR]     # stage 1 (from scratch)
#   bash benchmarks/train_builtin_sr.sh compact-x2-ft|compact-x4-ft [RUNS_DIR]          # stage 2 (--init stage 1)
# srkit-photo-x2/-x4 ship the stage-2 weights; srkit-seednet-x2 the stage-1 weights.
# Needs Debian's lomiri-wallpapers-16.04 (/usr/share/backgrounds) and scikit-image. The shipped weights were
# trained on CPU with OMP_NUM_THREADS=1, the three runs side by side (about 50 min each). Runs are seeded; a full
# rerun on the same machine and torch build was not repeated, so bit-identical weights are expected, not shown.
set -euo pipefail
SKIMAGE_DATA=$(python -c "import skimage, os; print(os.path.dirname(skimage.__file__))")/data
BG=/usr/share/backgrounds
RUNS=${2:-runs}
DATA="$BG $SKIMAGE_DATA/chelsea.png $SKIMAGE_DATA/rocket.jpg $SKIMAGE_DATA/motorcycle_left.png $SKIMAGE_DATA/camera.png"
VAL="$BG/Bridge_by_Sander_Klootwijk.jpg $BG/sunset_by_Aitzol_Berasategi.jpg $BG/umang_by_Abhishek_Mudgal.jpg"
VAL="$VAL $SKIMAGE_DATA/astronaut.png $SKIMAGE_DATA/coffee.png"
COMMON="--patch 48 --batch 16 --steps 4000 --lr 1e-3 --loss l1 --val-every 500 --checkpoint-every 500 --seed 0 --device cpu"
FINE="--patch 48 --batch 16 --steps 6000 --lr 5e-4 --loss l1 --val-every 1000 --checkpoint-every 500 --seed 1 --device cpu"
COMPACT="--arch compact --features 48 --num-conv 8"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
case "${1:-}" in
  compact-x2) srkit train sr $DATA --val $VAL -o "$RUNS/compact-x2" $COMPACT --scale 2 $COMMON ;;
  compact-x4) srkit train sr $DATA --val $VAL -o "$RUNS/compact-x4" $COMPACT --scale 4 $COMMON ;;
  compact-x2-ft) srkit train sr $DATA --val $VAL -o "$RUNS/compact-x2-ft" $COMPACT --scale 2 --init "$RUNS/compact-x2/model.safetensors" $FINE ;;
  compact-x4-ft) srkit train sr $DATA --val $VAL -o "$RUNS/compact-x4-ft" $COMPACT --scale 4 --init "$RUNS/compact-x4/model.safetensors" $FINE ;;
  seednet-x2) srkit train sr $DATA --val $VAL -o "$RUNS/seednet-x2" --arch seednet --scale 2 --features 32 --num-conv 3 $COMMON ;;
  *) echo "usage: $0 compact-x2|compact-x4|seednet-x2|compact-x2-ft|compact-x4-ft [RUNS_DIR]" >&2; exit 2 ;;
esac
