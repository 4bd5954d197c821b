#!/usr/bin/env bash
# Train srkit's built-in texture families exactly as shipped (benchmarks/results/textures.md has the record):
#   bash benchmarks/train_builtin_textures.sh stone|wood|fabric|grass [RUNS_DIR] [STEPS]
# then `python benchmarks/ship_texture_family.py RUNS_DIR/<family>/generator.safetensors <family>`.
# Needs Debian's gimp-data (GIMP's patterns) and scikit-image. Every run uses the defaults of `srkit train gan`
# (64 px crops from 4x4 noise cells, batch 16, hinge loss with a spectrally normalised discriminator, texture
# statistics weight 1, seed 0) on the CPU with one thread; the shipped runs went side by side.
set -euo pipefail
P=/usr/share/gimp/2.0/patterns
SK=$(python -c "import skimage, os; print(os.path.dirname(skimage.__file__))")/data
RUNS=${2:-runs}
STEPS=${3:-3000}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
COMMON="--steps $STEPS --checkpoint-every 250 --sample-every 500 --device cpu"
case "${1:-}" in
  stone) srkit train gan $P/Stone/granite1.pat $P/Stone/rock.pat $P/Stone/slate.pat $P/Stone/stone33.pat \
           $P/Stone/cracked.pat $SK/gravel.png -o "$RUNS/stone" --family stone $COMMON ;;
  wood) srkit train gan $P/Wood/wood1.pat -o "$RUNS/wood" --family wood $COMMON ;;
  fabric) srkit train gan $P/Fabric/burlap.pat -o "$RUNS/fabric" --family fabric $COMMON ;;
  grass) srkit train gan $SK/grass.png -o "$RUNS/grass" --family grass $COMMON ;;
  *) echo "usage: $0 stone|wood|fabric|grass [RUNS_DIR] [STEPS]" >&2; exit 2 ;;
esac
