#!/usr/bin/env bash
# Create the ROS 2 Jazzy venv (.venv-jazzy): franka_ros2 v3.x requires Jazzy, so the real robot runs it while
# development uses Kilted (.venv). The venv gets
#   1. requirements/jazzy.in at the exact versions of requirements/jazzy.lock.txt (ROS 2 Jazzy wheels + what the ROS
#      interface / Franka graph tests import), and robosuite without its dependencies (the twin reads its meshes),
#   2. this project, editable, and its ROS interfaces generated with the Jazzy wheels (tools/setup/build_interfaces.sh).
# Idempotent: a stamp holding the inputs' checksum makes a rerun with unchanged inputs a no-op.
#
# usage: tools/setup/setup_jazzy.sh [VENV]   (default .venv-jazzy; PYTHON_JAZZY picks the interpreter, python3.11)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.venv-jazzy}
python=${PYTHON_JAZZY:-python3.11}
cd "$root"

inputs=(requirements/jazzy.in requirements/jazzy.lock.txt pyproject.toml CMakeLists.txt package.xml
        tools/setup/build_interfaces.sh src/sole_r1_interfaces/*/*)
checksum=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
stamp=$venv/.sole_r1-jazzy
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$checksum" ]; then
  echo "jazzy: $venv is up to date"
  exit 0
fi
if ! command -v "$python" >/dev/null 2>&1; then
  echo "jazzy: $python not found; the ros-jazzy-* wheels need Python 3.11 (set PYTHON_JAZZY to another interpreter)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# The wheels' bootstrap re-executes Python with *this* venv's ROS library path unless told it already ran.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE LD_LIBRARY_PATH
"${pip[@]}" install "pip==26.3"
"${pip[@]}" install -r requirements/jazzy.in -c requirements/jazzy.lock.txt
robosuite=$(grep -i '^robosuite==' requirements/jazzy.lock.txt)
"${pip[@]}" install --no-deps "$robosuite"
"${pip[@]}" install --no-deps --no-build-isolation -e .
tools/setup/build_interfaces.sh "$venv"

if ! "$venv/bin/python" -c "
import rclpy
from rclpy.serialization import serialize_message
from sole_r1.msg import ProgressEstimate
from sole_r1_ros.ros import conventions
assert len(serialize_message(ProgressEstimate())) > 0
" >/dev/null 2>&1; then
  echo "jazzy: $venv was built but rclpy / the generated messages / sole_r1_ros do not import" >&2
  exit 1
fi
echo "$checksum" > "$stamp"
echo "jazzy: $venv ready (ROS 2 Jazzy wheels + sole_r1); run the Jazzy tests with make test-jazzy"
