#!/usr/bin/env bash
# One run of the stage-2 recipe study (docs/recipe_study.md): a fresh DiT trained on one GPU for MINUTES with the
# bundled model's frozen VAEs, exported and scored on 24 held-out synthetic clips (1 and 4 sampling steps, with the
# input-blind and static baselines) by benchmarks/quick_check_model.py.
#   benchmarks/recipe_study.sh RECIPE MINUTES RESULTS_DIR [extra `sora3r train dit` options]
# The run folder is $RUNS/RECIPE (default runs/); a second call continues it (--resume) for MINUTES more.
set -euo pipefail
recipe=$1; minutes=$2; results=$3; shift 3
RUNS=${RUNS:-runs}
BUNDLE=sora3r/weights/sora3r-tiny
case $recipe in
  # the bundled model's objective: velocity, logit-normal t centred at 0.5
  flow) recipe_args=(--preset mini --prediction velocity) ;;
  # x-prediction with the loss on the clean latent, t weighted towards high noise (median t = 0.73)
  xpred) recipe_args=(--preset mini --prediction sample --loss sample --logit-mean 1.0) ;;
  # the same plus the Huber loss on the decoded pointmaps
  xpred_pm) recipe_args=(--preset mini --prediction sample --loss sample --logit-mean 1.0 --pointmap-loss-weight 1.0) ;;
  # x-prediction with the flow (velocity) loss and the flow's t distribution
  xpred_v) recipe_args=(--preset mini --prediction sample --loss velocity) ;;
  *) echo "unknown recipe $recipe" >&2; exit 2 ;;
esac
mkdir -p "$results"
python3 -m sora3r.cli train dit --output "$RUNS/$recipe" --video-vae "$BUNDLE/video_vae" \
  --pointmap-vae "$BUNDLE/pointmap_vae" --squash --num-frames 17 --height 64 --width 96 \
  --max-minutes "$minutes" --steps 1000000 --checkpoint-mode light --light-ema-only --checkpoint-every 1000 \
  --log-every 50 --resume --batch-size 16 --replay-clips 4096 --replay-batch-size 128 --data-workers 12 \
  --lr 3e-4 --warmup-steps 300 --ema-decay 0.999 "${recipe_args[@]}" "$@" > "$results/$recipe.train.log" 2>&1
cp "$RUNS/$recipe/loss.jsonl" "$results/$recipe.loss.jsonl"
rm -rf "$RUNS/$recipe.export"
python3 -m sora3r.cli train export --output "$RUNS/$recipe.export" --video-vae "$BUNDLE/video_vae" \
  --pointmap-vae "$BUNDLE/pointmap_vae" --transformer "$RUNS/$recipe/model" --sampler-steps 4 > /dev/null
python3 benchmarks/quick_check_model.py "$RUNS/$recipe.export" --clips 24 --steps 1 4 \
  --json "$results/$recipe.check.json" | tee "$results/$recipe.check.txt"
