#!/usr/bin/env bash
# One call on a GPU machine (16 cores, one GPU): pixel DrQ-v2 on Meta-World reach-v3 and button-press-topdown-v3
# (both held out of the embedded rewarder's training data) and RoboSuite Lift (in its training data: the official
# Lift episodes are its evaluation set) with three rewards side by side, nine runs at once:
#   embedded  -- models/embedded, the project's own rewarder, the ONLY reward (greedy, batched on the GPU)
#   oracle    -- the simulator's privileged progress (upper bound)
#   tiny      -- the untrained random model of the same family (control: the reward, not the learner, works)
# Each run stops at the first episode end after TIME_LIMIT seconds, checkpoints, and resumes from its folder.
# The agent is the SERL preset with DrQ-v2's 50-wide trunk (feature_dim=50), so that the reach-v3 encoder + actor
# export to a few MB (sole_r1_rl.policy): policy_embedded.tar.gz / policy_oracle.tar.gz come back beside the curves.
# Needs in .whl/: the cp312 wheels and stripped suite trees of docs/training.md ("On a GPU machine"); .gl/.
# NUM_ENVS > 1 steps that many envs per run in worker processes (one batched reward call for all due envs); with
# ten runs on 16 cores keep it at 1-2.
#   OUT=/tmp/out TIME_LIMIT=450 bash tools/gpu/rl_from_embedded.sh
set -u
FINAL_OUT=${OUT:?set OUT to the folder for results}
RUNS=/tmp/rl; mkdir -p $RUNS
TIME_LIMIT=${TIME_LIMIT:-470}
source tools/gpu/prepare.sh
# The control: the tiny random model on the GPU (config/rewarders/tiny.yaml runs it on the CPU), format-constrained
# so that its answers parse: a random reward, not a missing one (unparsed answers store no transitions at all).
cat > /tmp/tiny_cuda.yaml <<'YAML'
backend: sole_r1
model: tiny
device: cuda
max_new_tokens: 48
constrain_format: true
max_think_tokens: 32
seed: 0
YAML
python3 -c "from sole_r1_model.tiny import build_tiny_qwen3vl; build_tiny_qwen3vl()" > /dev/null 2>&1

run() {  # suite task episode_steps rewarder_name rewarder_spec
  python3 -m sole_r1_rl.trainer --suite "$1" --task "$2" --rewarder "$5" --steps 60000 --device cuda \
    --preset serl --set feature_dim=50 --image-size 64 --render-size 192 --max-episode-steps "$3" --query-every 10 \
    --time-limit-s "$TIME_LIMIT" --checkpoint-every 100000 --no-progress-bar --threads 1 --num-envs "${NUM_ENVS:-1}" \
    --out "$RUNS/$2_$4" > "$RUNS/$2_$4.log" 2>&1
}
for spec in "embedded embedded" "oracle oracle" "tiny /tmp/tiny_cuda.yaml"; do
  set -- $spec
  run metaworld reach-v3 100 "$1" "$2" &
  run metaworld button-press-topdown-v3 150 "$1" "$2" &
  run robosuite Lift 150 "$1" "$2" &
done
# EXTRA="name=rewarder.yaml": one more reach-v3 run with another rewarder (a candidate checkpoint, carried)
[ -n "${EXTRA:-}" ] && run metaworld reach-v3 100 "${EXTRA%%=*}" "${EXTRA#*=}" &
wait
for d in $RUNS/*/; do
  n=$(($(wc -l < "$d/episodes.csv") - 1))
  echo "$(basename "$d"): $n episodes; last: $(tail -n 1 "$d/episodes.csv")"
done
grep -h "Error\|Traceback" $RUNS/*.log | sort | uniq -c | head
for reward in embedded oracle; do  # the reach policies, encoder + actor in bf16 (a few MB each)
  python3 -m sole_r1_rl.policy export "$RUNS/reach-v3_$reward" --out "/tmp/policy_$reward" --set task=reach-v3 \
    --set reward=$reward && tar -C /tmp -czf "$FINAL_OUT/policy_$reward.tar.gz" "policy_$reward"
done
tar -C $RUNS --exclude=replay --exclude=checkpoint.pt --exclude='*.prev.pt' -czf "$FINAL_OUT/rl_results.tar.gz" .
ls -la "$FINAL_OUT"
