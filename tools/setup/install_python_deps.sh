#!/usr/bin/env bash
# Install sole_r1's Python dependencies (torch, MuJoCo, the suites, transformers, ...) into the Python environment
# that will run the ROS nodes -- the step a ROS install (apt + rosdep) cannot do: rosdep knows none of these pins.
# Use it in a virtual environment that sees the system's ROS packages:
#   python3 -m venv --system-site-packages ~/.venvs/sole_r1 && source ~/.venvs/sole_r1/bin/activate
#   tools/setup/install_python_deps.sh [--robot]
# Exact versions come from requirements/lock.txt (its ROS wheel pins are skipped: ROS comes from /opt/ros here).
#   --robot            the robot PC's set: everything except the Meta-World and ManiSkill suites (MuJoCo and
#                      robosuite stay: fake_franka, the twin, needs them)
#   PYTHON=...         interpreter to install into (default: python3 on PATH, i.e. the active venv)
#   TORCH_INDEX_URL=.. where torch comes from: unset = the default index (these dev machines: the pinned CPU wheel);
#                      https://download.pytorch.org/whl/cpu for a CPU build elsewhere, https://pypi.org/simple for CUDA
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
python=${PYTHON:-python3}
robot=0
for arg in "$@"; do
  case $arg in
    --robot) robot=1 ;;
    *) echo "usage: $0 [--robot]" >&2; exit 2 ;;
  esac
done
pip=("$python" -m pip --disable-pip-version-check)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# torch alone first: its version without the local tag (2.13.0, not 2.13.0+cpu) matches the CPU and CUDA builds
# alike, so the index decides which one comes; the constraints below then leave it alone.
torch=$(grep -i '^torch==' "$root/requirements/lock.txt" | sed 's/+.*//')
"${pip[@]}" install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "$torch"

grep -v -i -E '^(ros-|torch==)' "$root/requirements/lock.txt" > "$work/constraints.txt"
skip='^(torch)([=<> ]|$)'
if [ "$robot" = 1 ]; then
  skip='^(torch|metaworld|mani-skill)([=<> ]|$)'
fi
grep -v -i -E "$skip" "$root/requirements/base.in" > "$work/requirements.txt"
"${pip[@]}" install -r "$work/requirements.txt" -c "$work/constraints.txt"

"$python" -c "import torch, numpy, cv2, yaml, mujoco, zmq, lz4; print('sole_r1 Python dependencies: ok (torch', torch.__version__ + ')')"
