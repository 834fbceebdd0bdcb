#!/usr/bin/env bash
# One call on a GPU machine (16 cores, one GPU, no network): synthesise Meta-World data on every core, train the
# small `sft_embedded` model on it from scratch, and evaluate it on held-out tasks. Results go to $OUT.
# Needs the cp312 wheels in .whl/ and the GL loaders in .gl/ (docs/training.md, "On a GPU machine").
#   OUT=/tmp/out bash tools/gpu/reward_model_pilot.sh
set -u
OUT=${OUT:?set OUT to the folder for results}
EPISODES=${EPISODES:-6}
WORKERS=${WORKERS:-$(( $(nproc) - 1 ))}
HOLDOUT="metaworld/reach-v3 metaworld/button-press-topdown-v3 metaworld/door-open-v3 metaworld/drawer-close-v3"

for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
export PYTHONPATH=/tmp/site:$PWD/src MUJOCO_GL=egl PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, trl, datasets, pyarrow, mujoco; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'trl', trl.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__)"

# 1. Data: every Meta-World task with an expert, the held-out ones written apart for zero-shot evaluation.
( time timeout ${SYNTH_TIMEOUT:-170} python3 -m sole_r1_model synth --out /tmp/synth --tasks metaworld:all \
    --holdout-tasks $HOLDOUT --episodes-per-task "$EPISODES" --workers "$WORKERS" --quiet ) > "$OUT/synth.log" 2>&1
tail -n 25 "$OUT/synth.log"; cat /tmp/synth/dataset/README.md >> "$OUT/synth.log" 2>/dev/null

# 2. SFT from scratch, bounded in time; the run writes train_summary.json and loss_curve.png.
( time timeout ${SFT_TIMEOUT:-270} python3 -m sole_r1_model train sft --recipe sft_embedded --data /tmp/synth/dataset \
    --output-dir /tmp/sft --max-steps "${SFT_STEPS:-1200}" --set schedule.progress_bar=false \
    --set schedule.save_steps=300 ) > "$OUT/sft.log" 2>&1
grep -E "INFO|Error|error|loss" "$OUT/sft.log" | grep -v Warning | tail -n 30
cp /tmp/sft/train_summary.json /tmp/sft/loss_curve.png "$OUT/" 2>/dev/null
FINAL=/tmp/sft/final
[ -d "$FINAL" ] || FINAL=$(ls -d /tmp/sft/checkpoint-* 2>/dev/null | sort -t- -k2 -n | tail -n 1)

# 3. The checkpoint in bf16 (what ships), then zero-shot evaluation on the held-out tasks.
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
tar -C "$(dirname "$FINAL")" -czf "$OUT/model.tar.gz" "$(basename "$FINAL")"
( time timeout ${EVAL_TIMEOUT:-100} python3 -m sole_r1_model eval /tmp/synth/heldout --rewarder "$FINAL/rewarder.yaml" \
    --out /tmp/eval --limit "${EVAL_EPISODES:-8}" --quiet ) >> "$OUT/sft.log" 2>&1
cp /tmp/eval/report.json /tmp/eval/report.md /tmp/eval/report_curves.png "$OUT/" 2>/dev/null
cat /tmp/eval/report.md 2>/dev/null | head -n 20
ls -la "$OUT"
