#!/usr/bin/env bash
# One call on a GPU machine (one H200, 16 cores, no network) that measures issue 17's speed rows side by side:
#   1. learner updates/s, ours vs the official DrQ-v2 agent in the same run (benchmarks/learner_speed.py --peer),
#      official `medium` config, 1 camera 9x84x84, batch 256, 3 interleaved rounds;
#   2. SOLE-R1-8B-shaped decode (random-init Qwen3-VL-8B architecture) at batch 1 and 8, plain `generate` and the
#      library's static-cache + compiled decode, bound at the H200's 4.8 TB/s (benchmarks/reward_latency.py);
#   3. the in-process trainer with 1, 4 and 8 envs in worker processes, env side only (benchmarks/trainer_envs.py);
#   4. (only when time is left) the same with updates every 2 env steps at batch 256, 1 and 8 envs.
# Every step runs under `timeout`, sized so that the whole call ends within BUDGET seconds (default 465) even when a
# step hangs; a step cut short keeps the lines it printed. Logs go to /tmp/speed_results, packed into
# $OUT/speed_results.tar.gz with speed_summary.txt beside it; the key figures are printed at the end.
# Needs, carried: .whl/ and .gl/ (docs/training.md, "On a GPU machine"; for the Meta-World step) and .cache/drqv2,
# a checkout of facebookresearch/drqv2 (git-ignored; the project ships none of its code), e.g.
#   mkdir -p .cache/drqv2 && git -C <a clone of facebookresearch/drqv2> archive HEAD -- . ':(exclude)curves' \
#     | tar -x -C .cache/drqv2
#   OUT=/tmp/out bash tools/gpu/speed_bench.sh              # carry [".whl", ".gl", ".cache/drqv2"]
# Knobs (environment): BUDGET (s), LEARNER_SECONDS (per variant and round, default 4), DECODE_REPEATS (default 2),
# DECODE_TOKENS (default 200), BANDWIDTH_TBS (default 4.8, H200), TRAINER_EPISODES (per env, default 3).
# The reserves are fixed: with BUDGET=330 (Dec 2) the learner step was skipped and the decode step cut after batch 1,
# so give it the default 465 s (plus ~100 s start-up) or run steps in separate calls.
set -u
FINAL_OUT=${OUT:?set OUT to the folder for results}
mkdir -p "$FINAL_OUT"
RES=/tmp/speed_results; rm -rf "$RES"; mkdir -p "$RES"
BUDGET=${BUDGET:-465}
PEER=${PEER:-.cache/drqv2}
SECONDS=0
stamp() { echo "[$SECONDS s] $*"; }

summary() {  # the key figures of every log that exists
  echo "== steps (name, rc, seconds, timeout; rc 124/137 = cut by its timeout, 'skipped' = no time left)"
  column -t "$RES/steps.tsv" 2>/dev/null || cat "$RES/steps.tsv" 2>/dev/null
  if [ -f "$RES/learner_speed.log" ]; then
    echo "== 1. learner updates/s: ours vs the official DrQ-v2 agent, same run"
    grep -E "^learner_speed:|updates/s|official DrQ-v2 from| / |note:" "$RES/learner_speed.log" | cut -c1-400
  fi
  if [ -f "$RES/reward_latency.log" ]; then
    echo "== 2. SOLE-R1-8B-shaped decode"
    grep -E "architecture, random init|^bandwidth bound|^batch|^best" "$RES/reward_latency.log"
  fi
  for name in trainer_envs trainer_envs_learn; do
    [ -f "$RES/$name.log" ] || continue
    echo "== 3. $name"
    grep -E "^# trainer_envs|^\||^one env step" "$RES/$name.log"
  done
  for log in "$RES"/*.log; do  # the end of every failed or cut step's log
    [ -f "$log" ] || continue
    if grep -qE "Traceback|Error|^Killed|Terminated" "$log"; then
      echo "== errors in $(basename "$log") (last lines):"
      grep -nE "Traceback|Error|^Killed|Terminated" "$log" | tail -n 5 | cut -c1-300
      tail -n 12 "$log" | cut -c1-300
    fi
  done
}

finish() {  # runs on any exit (prepare.sh failing included): pack what exists, print the figures
  trap - EXIT
  summary > "$RES/summary.txt" 2>&1
  cp "$RES/summary.txt" "$FINAL_OUT/speed_summary.txt"
  tar -C /tmp -czf "$FINAL_OUT/speed_results.tar.gz" "$(basename "$RES")"
  echo; echo "=================== issue 17 speed figures ($(date -u +%FT%TZ), ${SECONDS} s) ==================="
  cat "$RES/summary.txt"
  ls -la "$FINAL_OUT"
}
trap finish EXIT

# step NAME CAP RESERVE MIN -- CMD...: run CMD with a timeout of min(CAP, what is left of BUDGET after RESERVE
# seconds kept for the later steps); skip it when that is under MIN. stdout+stderr -> $RES/NAME.log.
step() {
  local name=$1 cap=$2 reserve=$3 min=$4; shift 5
  local left=$((BUDGET - SECONDS - reserve)) limit start rc
  limit=$(( cap < left ? cap : left ))
  if [ "$limit" -lt "$min" ]; then
    stamp "$name: skipped ($limit s left for it, needs $min)"
    printf '%s\tskipped\t0\t%s\n' "$name" "$limit" >> "$RES/steps.tsv"
    return 0
  fi
  stamp "$name: start (timeout $limit s): $*"
  echo "# $* (timeout $limit s)" > "$RES/$name.log"
  start=$SECONDS
  timeout -k 5 "$limit" "$@" >> "$RES/$name.log" 2>&1 < /dev/null
  rc=$?
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$((SECONDS - start))" "$limit" >> "$RES/steps.tsv"
  stamp "$name: rc $rc after $((SECONDS - start)) s"
}
printf 'step\trc\tseconds\ttimeout\n' > "$RES/steps.tsv"

source tools/gpu/prepare.sh
# A warm machine keeps ignored folders between calls: the decode step's compiled kernels are then reused.
export TORCHINDUCTOR_CACHE_DIR=$PWD/.cache/inductor
stamp installed
{ nvidia-smi; timeout 60 python3 -c "import sys, torch, transformers; print(sys.version.split()[0], 'torch',
  torch.__version__, 'cuda', torch.version.cuda, 'transformers', transformers.__version__)"; nproc; } > "$RES/env.log" 2>&1
if [ ! -f "$PEER/drqv2.py" ]; then
  echo "no $PEER/drqv2.py: carry .cache/drqv2 (a checkout of facebookresearch/drqv2); step 1 runs without it"
fi

# 1. Learner: bare, ours, ours_on_dev, official, official_on_dev x 3 interleaved rounds x LEARNER_SECONDS each.
LEARNER_PEER=(); [ -f "$PEER/drqv2.py" ] && LEARNER_PEER=(--peer "$PEER")
step learner_speed 110 310 40 -- python3 benchmarks/learner_speed.py --device cuda --cameras 1 --batch 256 \
  --rounds 3 --seconds "${LEARNER_SECONDS:-4}" "${LEARNER_PEER[@]}"

# 2. Decode at batch 1 and 8 in one process (one model build); both paths always run. Batch 1's lines are printed
#    before batch 8 starts, so a cut run still reports them. The JSON is written at the end only.
step reward_latency 250 80 60 -- python3 benchmarks/reward_latency.py --device cuda --batch-sizes 1 8 \
  --new-tokens "${DECODE_TOKENS:-200}" --repeats "${DECODE_REPEATS:-2}" --bandwidth-tbs "${BANDWIDTH_TBS:-4.8}" \
  --json "$RES/reward_latency.json"

# 3. Trainer, env side: 1 / 4 / 8 envs in worker processes (EGL rendering on the GPU), policy acting, no updates;
#    then one env step in process vs through a worker pipe.
step trainer_envs 100 10 30 -- python3 benchmarks/trainer_envs.py --num-envs 1 4 8 --device cuda --threads 4 \
  --episodes "${TRAINER_EPISODES:-3}"

# 4. Only if time is left: the same with learning (one update every 2 env steps, batch 256), 1 and 8 envs.
step trainer_envs_learn 90 10 60 -- python3 benchmarks/trainer_envs.py --num-envs 1 8 --device cuda --threads 4 \
  --episodes 3 --update-every 2 --batch-size 256 --seed-steps 100 --no-pipe
