#!/usr/bin/env bash
# Train srkit's built-in texture families exactly as shipped (benchmarks/results/textures.md has the record):
#   bash benchmarks/train_builtin_textures.sh stone|wood|fabric|grass [RUNS_DIR] [STEPS]          # issue 20's run
#   bash benchmarks/train_builtin_textures.sh tune stone|wood|fabric|grass [RUNS_DIR] [STEPS]     # issue 33's
#   bash benchmarks/train_builtin_textures.sh scratch stone|wood|fabric|grass [RUNS_DIR] [STEPS]  # from scratch
#   bash benchmarks/train_builtin_textures.sh waves fabric [RUNS_DIR] [STEPS]  # + wave fields, from scratch's
#   bash benchmarks/train_builtin_textures.sh materials stone|wood|grass [RUNS_DIR] [STEPS]  # one material per exemplar
# then `python benchmarks/ship_texture_family.py RUNS_DIR/<family>-tuned/generator.safetensors <family>` (or
# <family>-scratch, <family>-waves, <family>-materials). "scratch" is one run with today's defaults of `srkit train gan` (crops as
# oriented, the moving average with its ramp-up), no earlier weights, 5000 steps. "waves" starts from scratch's
# generator with 2 wave fields at the exemplar's strongest periodicities (--waves 2; their weights start at zero),
# --lr 0.0001, 2000 steps (the shipped fabric: scratch, then waves). "materials" starts from tune's generator with one
# material per exemplar (--materials; the code's weights start at zero), 3000 steps (the shipped stone: train, tune,
# then materials; its file was exported again after per-material phase centring was added: results/textures.md).
# wood and grass learn their materials from the registry's exemplars (srkit/train/exemplar_sources.py; OpenArena's
# are extracted from its archive): wood's three photographed woods (not GIMP's drawn wood2 and pine), grass's three
# OpenArena grasses (not the grey photo it began on); the shipped wood and grass: train, tune, then materials
# (wood's for 1500 steps: give STEPS 1500; grass's 3000).
# Needs Debian's gimp-data (GIMP's patterns) and openarena-081-textures, and scikit-image. Stage 1 uses the defaults of `srkit train gan`
# as they were then (64 px crops from 4x4 noise cells, batch 16, hinge loss with a spectrally normalised
# discriminator, texture statistics weight 1, seed 0, randomly flipped crops: --flips, no moving average:
# --ema-decay 0), 2000 steps shipped. Stage 2 starts the generator from stage 1's (--init; the discriminator
# afresh), on the same exemplars as they are oriented (no flips), and exports the moving average of its weights
# (--ema-decay 0.999); 2000 steps shipped (stone, wood, grass), at git 77114fe, before the average's ramp-up.
# Both on the CPU with one thread; the shipped runs went side by side.
set -euo pipefail
P=/usr/share/gimp/2.0/patterns
SK=$(python -c "import skimage, os; print(os.path.dirname(skimage.__file__))")/data
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
usage() { echo "usage: $0 [tune|scratch|waves|materials] stone|wood|fabric|grass [RUNS_DIR] [STEPS]" >&2; exit 2; }

stage=train
if [ "${1:-}" = tune ] || [ "${1:-}" = scratch ] || [ "${1:-}" = waves ] || [ "${1:-}" = materials ]; then
  stage=$1 && shift
fi
family=${1:-}
RUNS=${2:-runs}
tune=()  # stage 2's options beside the common ones
case "$family" in
  stone) data=("$P/Stone/granite1.pat" "$P/Stone/rock.pat" "$P/Stone/slate.pat" "$P/Stone/stone33.pat"
               "$P/Stone/cracked.pat" "$SK/gravel.png") ;;
  wood) data=("$P/Wood/wood1.pat") ;;
  fabric) data=("$P/Fabric/burlap.pat") tune=(--lr 0.0001) ;;
  grass) data=("$SK/grass.png") ;;
  *) usage ;;
esac
registry() {  # the registry's exemplars of family $1 as files (OpenArena's extracted), one per line, but $2...
  python -c "import sys; from srkit.train.exemplar_sources import exemplar_paths
print('\n'.join(str(p) for p in exemplar_paths(sys.argv[1]) if p.name not in sys.argv[2:]))" "$@"
}
materials=("${data[@]}")  # the materials stage's exemplars, one material each
case "$family" in
  wood) mapfile -t materials < <(registry wood wood2.pat pine.pat) ;;
  grass) mapfile -t materials < <(registry grass grass.png) ;;
esac
COMMON=(--family "$family" --checkpoint-every 250 --sample-every 500 --device cpu)
if [ "$stage" = train ]; then
  srkit train gan "${data[@]}" -o "$RUNS/$family" --steps "${3:-2000}" --ema-decay 0 --flips "${COMMON[@]}"
elif [ "$stage" = scratch ]; then
  srkit train gan "${data[@]}" -o "$RUNS/$family-scratch" --steps "${3:-5000}" "${COMMON[@]}" --checkpoint-every 500
elif [ "$stage" = waves ]; then
  srkit train gan "${data[@]}" -o "$RUNS/$family-waves" --init "$RUNS/$family-scratch/generator.safetensors" \
    --waves 2 --lr 0.0001 --steps "${3:-2000}" "${COMMON[@]}" --checkpoint-every 500
elif [ "$stage" = materials ]; then
  srkit train gan "${materials[@]}" -o "$RUNS/$family-materials" --init "$RUNS/$family-tuned/generator.safetensors" \
    --materials --steps "${3:-3000}" "${COMMON[@]}" --checkpoint-every 500
else
  srkit train gan "${data[@]}" -o "$RUNS/$family-tuned" --init "$RUNS/$family/generator.safetensors" \
    --steps "${3:-2000}" --ema-decay 0.999 "${tune[@]}" "${COMMON[@]}"
fi
