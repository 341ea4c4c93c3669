#!/usr/bin/env bash
# How the bundled model (sora3r/weights/sora3r-tiny) is trained: one resumable chunk of one stage per call.
#   scripts/bundled_model.sh STAGE MINUTES      STAGE: video-vae | pointmap-vae | dit | export
# Runs live under $RUNS (default runs/); a chunk resumes from its run's light checkpoint when there is one.
# In a new session (no runs/), `dit` continues from the committed bundle: its transformer (bf16 -> fp32, fresh
# optimizer) and its frozen VAEs. The DiT recipe is the bundle's (docs/recipe_study.md, `xpred`): the mini preset,
# x-prediction with the loss on the clean latent, logit-normal(1, 1) flow times. See docs/training.md, "Training on a
# lent GPU".
# LAUNCH replaces the Python launcher, e.g. both GPUs of a host through DDP:
#   LAUNCH="accelerate launch --multi_gpu --num_processes 2 --mixed_precision bf16" scripts/bundled_model.sh dit 8
# DATA_WORKERS sets the scene-drawing processes per training process (default 12).
set -euo pipefail
stage=$1; minutes=${2:-8}
RUNS=${RUNS:-runs}
BUNDLE=sora3r/weights/sora3r-tiny
CLIP="--num-frames 17 --height 64 --width 96"
DIT_RECIPE="--preset mini --prediction sample --loss sample --logit-mean 1.0"
CHUNK="--max-minutes $minutes --steps 1000000 --checkpoint-mode light --checkpoint-every 500 --log-every 50 --resume"
VIDEO_VAE=$RUNS/video_vae/model; [ -d "$VIDEO_VAE" ] || VIDEO_VAE=$BUNDLE/video_vae
POINTMAP_VAE=$RUNS/pointmap_vae/model; [ -d "$POINTMAP_VAE" ] || POINTMAP_VAE=$BUNDLE/pointmap_vae
sora3r_train() { ${LAUNCH:-python3} -m sora3r.cli train "$@"; }
WORKERS=${DATA_WORKERS:-12}
case $stage in
  video-vae)
    sora3r_train video-vae --output "$RUNS/video_vae" --preset tiny $CLIP $CHUNK --batch-size 16 --data-workers $WORKERS \
      --lr 5e-4 --warmup-steps 200 ;;
  pointmap-vae)
    sora3r_train pointmap-vae --output "$RUNS/pointmap_vae" --init-video-vae "$VIDEO_VAE" --squash \
      --preset tiny $CLIP $CHUNK --batch-size 16 --data-workers $WORKERS --lr 3e-4 --warmup-steps 200 ;;
  dit)
    init=(); [ -d "$RUNS/dit/light" ] || init=(--init-transformer "$BUNDLE/transformer")
    sora3r_train dit --output "$RUNS/dit" --video-vae "$VIDEO_VAE" --pointmap-vae "$POINTMAP_VAE" --squash "${init[@]}" \
      $DIT_RECIPE $CLIP $CHUNK --light-ema-only --batch-size 16 --replay-clips 4096 --replay-batch-size 128 \
      --data-workers $WORKERS --lr 3e-4 --warmup-steps 500 --ema-decay 0.999 ;;
  export)
    # The export replaces $BUNDLE, and an output folder may not hold its own inputs (sora3r.fs): VAEs taken from the
    # bundle are copied out of it first.
    for part in video_vae pointmap_vae; do
      if [ ! -d "$RUNS/$part/model" ]; then
        rm -rf "$RUNS/bundle_$part"; mkdir -p "$RUNS"; cp -r "$BUNDLE/$part" "$RUNS/bundle_$part"
      fi
    done
    [ -d "$RUNS/video_vae/model" ] || VIDEO_VAE=$RUNS/bundle_video_vae
    [ -d "$RUNS/pointmap_vae/model" ] || POINTMAP_VAE=$RUNS/bundle_pointmap_vae
    sora3r_train export --output "$BUNDLE" --video-vae "$VIDEO_VAE" --pointmap-vae "$POINTMAP_VAE" \
      --transformer "$RUNS/dit/model" --sampler-steps 4 ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
