#!/bin/bash
# Issue 12's GPU figures in one call of at most 5 minutes on one H200; each table goes to $OUT/ and is printed.
#
#   bash benchmarks/gpu_speed.sh                 # on the GPU machine (diffusers etc. importable, e.g. from .whl/)
#   bash benchmarks/gpu_speed.sh --device cpu    # dry run of every part at a small size on the CPU
#   bash benchmarks/gpu_speed.sh --compile-only  # part 3 alone with BUDGET seconds (default 570) for compiling (a call of its own:
#                                                # inductor's compile and autotune of the paper models outlast what
#                                                # the full run leaves them)
#   POINTMAP_VAE=paper-light bash benchmarks/gpu_speed.sh --compile-only   # that row with the lighter pointmap VAE
#   FUSE_QKV=1 bash benchmarks/gpu_speed.sh --compile-only                 # that row with fused QKV projections
#   CAMERA_COMPILE=reduce-overhead bash benchmarks/gpu_speed.sh --compile-only   # camera recovery with CUDA graphs
#   COMPILE=reduce-overhead bash benchmarks/gpu_speed.sh --compile-only          # the transformer in CUDA graphs (the VAEs compile without)
#
# 1. camera recovery of a 17x384x512 synthetic pointmap (clean and 30 % outliers) against the plain DLT
#    (benchmarks/bench_camera_recovery.py);
# 2. the quick check of the bundled model on 24 held-out clips with its time per clip and a profile of where that
#    time goes, then 8 clips with torch's default CPU threads (one per core) to show what oversubscription costs;
# 3. bench_inference, paper presets 17x384x512, bf16, 4 steps, --peak-tflops 790: plain diffusers eager, sora3r
#    default, each SDPA backend, fused QKV projections, channels-last VAEs, then torch.compile (default mode, with its compile time) - the
#    compile row last and cut off at the time left, so the rows before it are always there.
set -uo pipefail
device=cuda compile_only=0
[ "${1:-}" = "--device" ] && device=$2
[ "${1:-}" = "--compile-only" ] && compile_only=1
OUT=${OUT:-/tmp/gpu_speed}
mkdir -p "$OUT"
started=$(date +%s)
if ! python -c "import diffusers" 2>/dev/null && [ -d .whl ]; then
  python -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl >/dev/null 2>&1
  export PYTHONPATH=$PWD:/tmp/site:$PWD/.carry/avstub
fi
export PYTHONPATH=${PYTHONPATH:-$PWD}
if [ "$device" = cuda ]; then
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/gpu.txt"
  size=(--frames 17 --height 384 --width 512) clips=24 preset=paper dtype=bf16 repeats=3 budget=285
  attention=(flash efficient cudnn)
else
  size=(--frames 9 --height 64 --width 96) clips=2 preset=tiny dtype=fp32 repeats=1 budget=${BUDGET:-1200}
  attention=(flash math)
fi
left() { t=$(( budget - ($(date +%s) - started) )); echo $(( t < 30 ? 30 : t )); }
# inference TABLE_FILE [bench_inference.py options...]: the inference table of $preset presets, cut off at the time left
inference() {
  local table=$1; shift
  timeout --signal=INT "$(left)" python benchmarks/bench_inference.py --preset "$preset" "${size[@]}" --steps 4 \
    --device "$device" --dtype "$dtype" --repeats "$repeats" --peak-tflops 790 \
    ${POINTMAP_VAE:+--pointmap-vae-preset "$POINTMAP_VAE"} "$@" 2>&1 \
    | grep -v "should be kept in float32" | tee "$OUT/$table"
}

if [ "$compile_only" = 1 ]; then
  budget=${BUDGET:-570}  # seconds for the whole part (less where the call's device time is shorter)
  echo "== inference with torch.compile, $preset presets, $dtype ($(left) s)"
  inference inference_compile.txt --compile "${COMPILE:-default}" ${FUSE_QKV:+--fuse-qkv} \
    ${CAMERA_COMPILE:+--camera-compile "$CAMERA_COMPILE"}
  exit 0
fi

echo "== camera recovery ($device)"
python benchmarks/bench_camera_recovery.py --device "$device" "${size[@]}" --repeats 5 2>&1 | tee "$OUT/camera_recovery.txt"

echo "== quick check of the bundled model ($device, $clips clips)"
python benchmarks/quick_check_model.py sora3r/weights/sora3r-tiny --device "$device" --clips "$clips" --steps 4 \
  --json "$OUT/quick_check.json" --profile > "$OUT/quick_check_profile.txt" 2>&1
grep -A4 "held-out" "$OUT/quick_check_profile.txt" | tee "$OUT/quick_check.txt"
sed -n "/Ordered by/,+28p" "$OUT/quick_check_profile.txt" | cut -c1-160
python benchmarks/quick_check_model.py sora3r/weights/sora3r-tiny --device "$device" --clips $(( clips < 8 ? clips : 8 )) \
  --steps 4 --threads "$(nproc)" 2>&1 | grep -A2 "held-out" | tee -a "$OUT/quick_check.txt"

echo "== inference, $preset presets, $dtype ($(left) s left for it)"
inference inference.txt --attention "${attention[@]}" --fuse-qkv --channels-last --compile default
echo "== done in $(( $(date +%s) - started )) s; tables in $OUT"
