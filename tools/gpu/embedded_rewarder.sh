#!/usr/bin/env bash
# One call on a GPU machine (16 cores, one GPU, no network) that trains the `embedded` rewarder shipped in
# models/embedded: synthesise Meta-World (4 tasks held out), RoboSuite Lift and Stack episodes on every core, train
# the small `sft_embedded` model from scratch on them, convert it to bf16, evaluate it on the held-out tasks and
# time it at batch 1 and 8. Results (model tarball, logs, curves, reports) go to $OUT.
# Needs in .whl/: the cp312 wheels and stripped suite trees of docs/training.md ("On a GPU machine"); .gl/.
#   OUT=/tmp/out bash tools/gpu/embedded_rewarder.sh                       # from scratch (the first shipped model)
#   INIT=models/embedded PREV_NOISE=0.3 LIFT_EPISODES=300 SFT_STEPS=1000 LR=5e-4 OUT=/tmp/out \
#     bash tools/gpu/embedded_rewarder.sh                                  # continue from the shipped one
# Besides the held-out Meta-World tasks it synthesises a Lift validation set with another seed (a policy mix like
# the official episodes') and evaluates the new model on both: model selection uses synthesised episodes only (the
# official Lift videos may not). The episode videos are too large to come back (34 MB); the same synth command with
# --workers 2 makes the Lift set on a laptop in ~2.5 min, to evaluate the shipped model on it there.
set -u
FINAL_OUT=${OUT:?set OUT to the folder for results}
OUT=/tmp/results; mkdir -p $OUT  # small files, packed into one tarball at the end ($OUT returns <= 8 files)
HOLDOUT="metaworld/reach-v3 metaworld/button-press-topdown-v3 metaworld/door-open-v3 metaworld/drawer-close-v3"
START=$(date +%s)
stamp() { echo "[$(( $(date +%s) - START )) s] $*"; }

source tools/gpu/prepare.sh
stamp installed

# 1. Data, two synth runs side by side: Meta-World (every task with an expert) and RoboSuite Lift + Stack in the
#    official Lift camera layout. Brief reasoning: half the tokens, so the model reasons at >= 2 queries/s on a CPU.
# MW_MIX: the Meta-World policy mix (add fidget=0.1: gripper activity that is not progress, against RL hacking).
# PREV_NOISE > 0 (e.g. 0.3) states a wrong previous progress in that fraction of examples, so that the model learns
# to correct an earlier mistake instead of copying it; the shipped checkpoint was trained with 0.
SYNTH="--reasoning brief --image-format jpeg --jpeg-quality 90 --previous-noise ${PREV_NOISE:-0} --quiet"
( time python3 -m sole_r1_model synth --out /tmp/synth_mw --tasks metaworld:all --holdout-tasks $HOLDOUT \
    --episodes-per-task "${MW_EPISODES:-7}" --workers 6 $SYNTH \
    --policy-mix "${MW_MIX:-expert=0.25,noisy=0.2,stall=0.25,derail=0.15,random=0.1,do_nothing=0.05}" ) \
    > "$OUT/synth_mw.log" 2>&1 &
# Lift weighs most (the official episodes are Lift), with more failing policies than the default mix: the model
# must tell a lifted cube from a gripper that rose empty.
( time python3 -m sole_r1_model synth --out /tmp/synth_lift --tasks robosuite/Lift --max-steps 150 \
    --episodes-per-task "${LIFT_EPISODES:-180}" --workers 8 $SYNTH \
    --policy-mix expert=0.25,noisy=0.15,stall=0.2,derail=0.2,random=0.15,do_nothing=0.05 ) > "$OUT/synth_lift.log" 2>&1 &
( time python3 -m sole_r1_model synth --out /tmp/synth_stack --tasks robosuite/Stack --max-steps 150 \
    --episodes-per-task "${STACK_EPISODES:-24}" --workers 2 $SYNTH ) > "$OUT/synth_stack.log" 2>&1 &
wait
# Validation only (never trained on): Lift episodes with another seed, after the training synthesis has the cores.
( time python3 -m sole_r1_model synth --out /tmp/synth_liftval --tasks robosuite/Lift --holdout-tasks robosuite/Lift \
    --max-steps 150 --episodes-per-task "${LIFTVAL_EPISODES:-16}" --workers 8 --seed 1 $SYNTH \
    --policy-mix expert=0.4,noisy=0.2,stall=0.2,derail=0.2 ) > "$OUT/synth_liftval.log" 2>&1 &
grep -h "^synth:" "$OUT"/synth_*.log
stamp synthesised

# 2. SFT from scratch, bounded by steps (so `final/` is exported); writes train_summary.json and loss_curve.png.
# INIT (a checkpoint folder, e.g. models/embedded) continues training from it instead of a new random model.
INIT_ARGS=""; [ -n "${INIT:-}" ] && INIT_ARGS="--set model.path=$PWD/$INIT"
( time timeout "${SFT_TIMEOUT:-330}" python3 -m sole_r1_model train sft --recipe sft_embedded $INIT_ARGS \
    --set optim.learning_rate=${LR:-1e-3} \
    --data /tmp/synth_mw/dataset /tmp/synth_lift/dataset /tmp/synth_stack/dataset --output-dir /tmp/sft --max-steps "${SFT_STEPS:-800}" \
    --set schedule.progress_bar=false --set schedule.save_steps=200 --set schedule.dataloader_workers=15 ) \
    > "$OUT/sft.log" 2>&1
grep -E "INFO|Error|error|loss" "$OUT/sft.log" | grep -v Warning | tail -n 12
cp /tmp/sft/train_summary.json /tmp/sft/loss_curve.png "$OUT/" 2>/dev/null
FINAL=/tmp/sft/final
[ -d "$FINAL" ] || FINAL=$(ls -d /tmp/sft/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -n 1)
stamp "trained: $FINAL"
wait  # the Lift validation synthesis
grep -h "^synth:" "$OUT"/synth_liftval.log

# 3. The checkpoint in bf16 (what ships), the data cards beside it, then held-out eval and speed.
python3 - "$FINAL" <<'PY'
import json, sys, torch
from pathlib import Path
from safetensors.torch import load_file, save_file
folder = Path(sys.argv[1]); weights = folder / "model.safetensors"
tensors = {k: (v.to(torch.bfloat16) if v.is_floating_point() else v) for k, v in load_file(weights).items()}
save_file(tensors, weights, metadata={"format": "pt"})
config = json.loads((folder / "config.json").read_text()); config["dtype"] = "bfloat16"
(folder / "config.json").write_text(json.dumps(config, indent=1))
print("bf16 checkpoint:", sum(p.stat().st_size for p in folder.iterdir()) / 1e6, "MB in", folder)
PY
rm -f "$FINAL"/training_args.bin "$FINAL"/optimizer.pt "$FINAL"/scheduler.pt "$FINAL"/rng_state.pth
for d in mw lift stack; do cp /tmp/synth_$d/dataset/README.md "$FINAL/data_$d.md"; cp /tmp/synth_$d/synth_run.json "$FINAL/synth_$d.json"; done
cat > "$FINAL/rewarder.yaml" <<'YAML'
backend: sole_r1
model: .
use_official_image_processor: false
temperature: 0
max_new_tokens: 96
constrain_format: true
max_think_tokens: 80
decode: static
YAML
tar -C "$(dirname "$FINAL")" -czf "$OUT/model.tar.gz" "$(basename "$FINAL")"
stamp packed
( time timeout "${EVAL_TIMEOUT:-60}" python3 -m sole_r1_model eval /tmp/synth_mw/heldout --rewarder "$FINAL/rewarder.yaml" \
    --out /tmp/eval --limit "${EVAL_EPISODES:-12}" --quiet ) > "$OUT/eval.log" 2>&1
cp /tmp/eval/report.json /tmp/eval/report_curves.png "$OUT/" 2>/dev/null
cat /tmp/eval/report.md 2>/dev/null | head -n 12
( time timeout "${EVAL_TIMEOUT:-60}" python3 -m sole_r1_model eval /tmp/synth_liftval/heldout --rewarder "$FINAL/rewarder.yaml" \
    --out /tmp/eval_liftval --quiet ) > "$OUT/eval_liftval.log" 2>&1
cp /tmp/eval_liftval/report.json "$OUT/report_liftval.json" 2>/dev/null
cat /tmp/eval_liftval/report.md 2>/dev/null | sed -n 5,8p
stamp evaluated
timeout 60 python3 benchmarks/rewarder_speed.py --rewarder "$FINAL/rewarder.yaml" --device cuda --batch-sizes 1 8 \
    --repeats 4 --json "$OUT/speed_gpu.json" 2>&1 | grep -v "Loading\|Warning" | tail -n 8
stamp done
mv "$OUT/model.tar.gz" "$OUT"/*.png "$FINAL_OUT/" 2>/dev/null
tar -C "$OUT" -czf "$FINAL_OUT/results.tar.gz" .
ls -la "$FINAL_OUT"
