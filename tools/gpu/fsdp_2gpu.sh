#!/usr/bin/env bash
# One call on a 2-GPU machine (device kind nvidia-h200-x2: 32 cores, 2 H200s, no network): the `sft_embedded` recipe
# on synthesised Meta-World data, first on one GPU, then with accelerate FSDP on two, same seed and global batch (32);
# overlaid losses, throughput scaling, peak memory, and both checkpoints evaluated by the rewarder on held-out tasks.
# Needs .whl/ (docs/training.md, "On a GPU machine") and .gl/.
#   OUT=/tmp/out bash tools/gpu/fsdp_2gpu.sh
set -u
FINAL_OUT=${OUT:?set OUT to the folder for results}
OUT=/tmp/results; mkdir -p $OUT
STEPS=${STEPS:-300}
HOLDOUT="metaworld/reach-v3 metaworld/button-press-topdown-v3 metaworld/door-open-v3 metaworld/drawer-close-v3"
source tools/gpu/prepare.sh

python3 -m sole_r1_model synth --out /tmp/synth --tasks metaworld:all --holdout-tasks $HOLDOUT --episodes-per-task 5 \
  --workers $(( $(nproc) - 2 )) --reasoning brief --image-format jpeg --quiet > $OUT/synth.log 2>&1
tail -n 2 $OUT/synth.log

COMMON=(--recipe sft_embedded --data /tmp/synth/dataset --max-steps "$STEPS" --set schedule.seed=0
        --set schedule.logging_steps=1 --set schedule.progress_bar=false --set schedule.save_steps=100000
        --set schedule.dataloader_workers=12)
# 1 GPU: per-device batch 32 = the global batch.
CUDA_VISIBLE_DEVICES=0 python3 -m sole_r1_model train sft "${COMMON[@]}" --output-dir /tmp/sft1 \
  --set optim.per_device_batch_size=32 > $OUT/sft1.log 2>&1
tail -n 2 $OUT/sft1.log
# 2 GPUs, FSDP: per-device batch 16 x 2 processes = the same global batch.
accelerate launch --config_file config/accelerate/fsdp.yaml --num_processes 2 -m sole_r1_model.training sft \
  "${COMMON[@]}" --output-dir /tmp/sft2 --set optim.per_device_batch_size=16 > $OUT/sft2.log 2>&1
tail -n 2 $OUT/sft2.log
python3 -m sole_r1_model.training.compare /tmp/sft1 /tmp/sft2 --gpus 1 2 --first 100 --tolerance 0.05 \
  --out "$FINAL_OUT/loss_overlay.png" | tee $OUT/compare.md

for n in 1 2; do
  printf 'backend: sole_r1\nmodel: .\nuse_official_image_processor: false\ntemperature: 0\nmax_new_tokens: 96\nconstrain_format: true\nmax_think_tokens: 80\n' \
    > /tmp/sft$n/final/rewarder.yaml
  python3 -m sole_r1_model eval /tmp/synth/heldout --rewarder /tmp/sft$n/final/rewarder.yaml --out /tmp/eval$n \
    --limit 12 --quiet > $OUT/eval$n.log 2>&1
  cp /tmp/eval$n/report.md $OUT/eval$n.md; cp /tmp/sft$n/train_summary.json $OUT/train_summary$n.json
  head -n 8 /tmp/eval$n/report.md | tail -n 3
done
tar -C $OUT -czf "$FINAL_OUT/results.tar.gz" .
ls -la "$FINAL_OUT"
