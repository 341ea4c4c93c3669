#!/usr/bin/env bash
# How the bundled model (sora3r/weights/sora3r-tiny) is trained: one resumable chunk of one stage per call.
#   scripts/bundled_model.sh STAGE MINUTES      STAGE: video-vae | pointmap-vae | pointmap-decoder | dit | export
#                                                      | export-decoder
#   scripts/bundled_model.sh average FOLDER...  the bundle's transformer replaced by the mean of its weights and those
#                                               of the FOLDERs' transformers (model folders or transformer folders)
# Runs live under $RUNS (default runs/); a chunk resumes from its run's light checkpoint when there is one.
# In a new session (no runs/), `dit` continues from the committed bundle: its transformer (bf16 -> fp32, fresh
# optimizer) and its frozen VAEs; `video-vae` likewise continues the bundle's video VAE (a later `dit` run then trains
# on its latents, and `export` bundles it; FRESH=1: a fresh one of preset VIDEO_VAE_PRESET, default tiny). The DiT recipe
# is the bundle's (docs/recipe_study.md, `xpred`): the mini preset, x-prediction with the loss on the clean latent,
# logit-normal(1, 1) flow times. See docs/training.md, "Training on a lent GPU".
# LAUNCH replaces the Python launcher, e.g. both GPUs of a host through DDP:
#   LAUNCH="accelerate launch --multi_gpu --num_processes 2 --mixed_precision bf16" scripts/bundled_model.sh dit 8
# DATA_WORKERS sets the scene-drawing processes per training process (default 12).
# STEPS and DECAY_STEPS end a chunk at a step count with a linear learning-rate decay to 0 over its last DECAY_STEPS
# (warmup-stable-decay; the run's final chunk), e.g. STEPS=2400 DECAY_STEPS=2400 scripts/bundled_model.sh dit 8
# SYNTHETIC picks the synthetic preset of the video-vae, dit and pointmap-decoder stages (default | realistic | mixed;
# default: default). GROW=N (stage dit) deepens the bundle's transformer to N blocks, each new one a copy with its
# residual gates closed (same predictions at the start; `JointLatentTransformer.deepened`). DECODE_SAMPLES=1 trains
# pointmap-decoder on the latents the bundle's transformer samples (what the decoder decodes at inference) instead of
# on the encoder's. KNOWN=P (stage dit) conditions a fraction P of the training clips on their first latent frames
# (--known-frames-prob; the bundle's transformer gets known-frame inputs, which the window stitching then uses).
# LR (stage dit) sets the peak learning rate (default 3e-4), e.g. a gentler fine-tune of the bundle: LR=1e-4.
# CAMERA=W (stages dit and pointmap-decoder) adds the camera-motion loss at weight W (--camera-loss-weight: each frame's
# camera centre where its rays meet the decoded points, against the target's).
# FRAMES sets the training clips' length (default 17; 4k+1 frames), e.g. FRAMES=33 fine-tunes the bundle's transformer
# (rotary positions, so any length) for windows of 33 frames; `export` then bundles a model of that window.
set -euo pipefail
stage=$1; minutes=${2:-8}
RUNS=${RUNS:-runs}
BUNDLE=sora3r/weights/sora3r-tiny
CLIP="--num-frames ${FRAMES:-17} --height 64 --width 96"
DATA="--synthetic ${SYNTHETIC:-default}"
DIT_RECIPE="--preset mini --prediction sample --loss sample --logit-mean 1.0 --known-frames-prob ${KNOWN:-0} --camera-loss-weight ${CAMERA:-0}"
CHUNK="--max-minutes $minutes --steps ${STEPS:-1000000} --decay-steps ${DECAY_STEPS:-0} --checkpoint-mode light --checkpoint-every 500 --log-every 50 --resume"
VIDEO_VAE=$RUNS/video_vae/model; [ -d "$VIDEO_VAE" ] || VIDEO_VAE=$BUNDLE/video_vae
POINTMAP_VAE=$RUNS/pointmap_vae/model; [ -d "$POINTMAP_VAE" ] || POINTMAP_VAE=$BUNDLE/pointmap_vae
sora3r_train() { ${LAUNCH:-python3} -m sora3r.cli train "$@"; }
WORKERS=${DATA_WORKERS:-12}
case $stage in
  video-vae)
    init=(); [ -d "$RUNS/video_vae/light" ] || init=(--init "$BUNDLE/video_vae")
    # FRESH=1: a fresh video VAE of preset VIDEO_VAE_PRESET (default tiny, how the bundle's first one started)
    [ "${FRESH:-0}" = 1 ] && init=(--preset "${VIDEO_VAE_PRESET:-tiny}")
    sora3r_train video-vae --output "$RUNS/video_vae" "${init[@]}" $CLIP $DATA $CHUNK --batch-size 16 \
      --data-workers $WORKERS --lr 5e-4 --warmup-steps 200 ;;
  pointmap-vae)
    sora3r_train pointmap-vae --output "$RUNS/pointmap_vae" --init-video-vae "$VIDEO_VAE" --squash \
      --preset tiny $CLIP $CHUNK --batch-size 16 --data-workers $WORKERS --lr 3e-4 --warmup-steps 200 ;;
  pointmap-decoder)
    # The bundle's pointmap VAE with its encoder and scaling factor frozen: the decoder alone learns, so the latent
    # space (and the transformer trained in it) stays valid while the round trip's floor drops.
    samples=(); [ "${DECODE_SAMPLES:-0}" = 1 ] && samples=(--decode-samples-of "$BUNDLE")
    sora3r_train pointmap-vae --output "$RUNS/pointmap_vae" --init-pointmap-vae "$BUNDLE/pointmap_vae" --decoder-only --squash \
      "${samples[@]}" $CLIP $DATA $CHUNK --batch-size 16 --data-workers $WORKERS --lr 2e-4 --warmup-steps 100 \
      --camera-loss-weight ${CAMERA:-0} ;;
  dit)
    init=(); [ -d "$RUNS/dit/light" ] || init=(--init-transformer "$BUNDLE/transformer")
    # GROW=N deepens the bundle's transformer to N blocks; every chunk of that run passes it (a resumed run needs the
    # grown shape before its checkpoint loads over it).
    [ -n "${GROW:-}" ] && init=(--init-transformer "$BUNDLE/transformer" --grow-layers "$GROW")
    sora3r_train dit --output "$RUNS/dit" --video-vae "$VIDEO_VAE" --pointmap-vae "$POINTMAP_VAE" --squash "${init[@]}" \
      $DIT_RECIPE $CLIP $DATA $CHUNK --light-ema-only --batch-size 16 --replay-clips 4096 --replay-batch-size 128 \
      --data-workers $WORKERS --lr ${LR:-3e-4} --warmup-steps 500 --ema-decay 0.999 ;;
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
  export-decoder)
    # After pointmap-decoder alone: the bundle with its pointmap VAE replaced (same encoder and latent space, so the
    # bundle's transformer stays valid); written beside the bundle, then swapped in.
    python3 - "$BUNDLE" "$RUNS/pointmap_vae/model" "$RUNS/bundle_new" <<'PY'
import sys
from sora3r.models.vae import build_vae
from sora3r.pipeline import Sora3RPipeline
from sora3r.train.assemble import save_model_folder
bundle, decoder_run, staging = sys.argv[1:]
pipeline = Sora3RPipeline.from_pretrained(bundle)
pipeline.register_modules(pointmap_vae=build_vae(decoder_run))
save_model_folder(staging, pipeline)
PY
    rm -rf "$BUNDLE" && mv "$RUNS/bundle_new" "$BUNDLE" ;;
  average)
    # A model soup (sora3r.train.assemble.average_weights): cycles trained from the bundle, averaged with it; written
    # beside the bundle, then swapped in.
    shift
    python3 - "$BUNDLE" "$RUNS/bundle_new" "$@" <<'PY'
import sys
from pathlib import Path
import torch
from sora3r.models.transformer import JointLatentTransformer
from sora3r.pipeline import Sora3RPipeline
from sora3r.train.assemble import average_weights, save_model_folder
bundle, staging, *folders = sys.argv[1:]
pipeline = Sora3RPipeline.from_pretrained(bundle, "cpu", torch.float32)
others = [JointLatentTransformer.from_pretrained(Path(folder) / "transformer" if (Path(folder) / "transformer").is_dir()
                                                 else folder, torch_dtype=torch.float32) for folder in folders]
pipeline.register_modules(transformer=average_weights([pipeline.transformer, *others]))
save_model_folder(staging, pipeline)
PY
    rm -rf "$BUNDLE" && mv "$RUNS/bundle_new" "$BUNDLE" ;;
  *) echo "unknown stage $stage" >&2; exit 2 ;;
esac
