#!/usr/bin/env bash
# How the bundled model (sora3r/weights/sora3r-tiny) is trained: one resumable chunk of one stage per call.
#   scripts/bundled_model.sh STAGE MINUTES      STAGE: video-vae | pointmap-vae | dit | export
# Runs are kept under $RUNS (default runs/); every chunk resumes from the run's light checkpoint, so the same
# command continues training across GPU sessions (see docs/training.md, "Training on a lent GPU").
set -euo pipefail
stage=$1; minutes=${2:-8}
RUNS=${RUNS:-runs}
CLIP="--preset tiny --num-frames 17 --height 64 --width 96"
CHUNK="--max-minutes $minutes --steps 1000000 --checkpoint-mode light --checkpoint-every 500 --log-every 50 --resume"
sora3r_train() { python3 -m sora3r.cli train "$@"; }
case $stage in
  video-vae)
    sora3r_train video-vae --output "$RUNS/video_vae" $CLIP $CHUNK --batch-size 16 --data-workers 12 --lr 5e-4 --warmup-steps 200 ;;
  pointmap-vae)
    sora3r_train pointmap-vae --output "$RUNS/pointmap_vae" --init-video-vae "$RUNS/video_vae/model" --squash \
      $CLIP $CHUNK --batch-size 16 --data-workers 12 --lr 3e-4 --warmup-steps 200 ;;
  dit)
    sora3r_train dit --output "$RUNS/dit" --video-vae "$RUNS/video_vae/model" --pointmap-vae "$RUNS/pointmap_vae/model" \
      $CLIP $CHUNK --light-ema-only --batch-size 16 --replay-clips 4096 --replay-batch-size 64 --data-workers 12 --lr 3e-4 --warmup-steps 500 --ema-decay 0.999 ;;
  export)
    sora3r_train export --output sora3r/weights/sora3r-tiny --video-vae "$RUNS/video_vae/model" \
      --pointmap-vae "$RUNS/pointmap_vae/model" --transformer "$RUNS/dit/model" --sampler-steps 4 ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
