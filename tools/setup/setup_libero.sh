#!/usr/bin/env bash
# Create the LIBERO venv (.venv-libero): LIBERO brings robosuite 1.4 with its own MuJoCo and NumPy 2, which cannot
# share the main venv (robosuite 1.5.2 / Meta-World / ManiSkill need mujoco 3.3.0 and NumPy 1.26). The venv gets
#   1. the exact pins of requirements/libero.lock.txt (LIBERO + its offline asset packages),
#   2. the ROS 2 wheels of requirements/ros.in at the versions of requirements/lock.txt, so the LIBERO bridge node
#      joins the same ROS graph as everything else,
#   3. this project, editable, and its ROS interfaces (tools/setup/build_interfaces.sh).
# Idempotent: a stamp holding the inputs' checksum makes a rerun with unchanged inputs a no-op.
#
# usage: tools/setup/setup_libero.sh [VENV]   (default .venv-libero; PYTHON_LIBERO picks the interpreter, python3.11)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
venv=${1:-$root/.venv-libero}
python=${PYTHON_LIBERO:-python3.11}
cd "$root"

inputs=(requirements/libero.lock.txt requirements/ros.in requirements/lock.txt pyproject.toml CMakeLists.txt
        package.xml src/sole_r1_interfaces/*/*)
checksum=$(cat "${inputs[@]}" | sha256sum | cut -d' ' -f1)
stamp=$venv/.sole_r1-libero
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$checksum" ]; then
  echo "libero: $venv is up to date"
  exit 0
fi

if ! command -v "$python" >/dev/null 2>&1; then
  echo "libero: $python not found; LIBERO's venv needs Python 3.11 (set PYTHON_LIBERO to another interpreter)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
# The wheels' bootstrap re-executes Python with *this* venv's ROS library path unless told it already ran.
unset _ROS_WHEELS_BOOTSTRAP_COMPLETE LD_LIBRARY_PATH
"${pip[@]}" install "pip==26.3"
"${pip[@]}" install -r requirements/libero.lock.txt

# Constraints for the ROS wheels: LIBERO's pins win where both lists name a package (e.g. numpy, PyYAML), the main
# lock pins everything else (all ros-kilted-* wheels among them).
constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$venv/bin/python" - "$constraints" <<'EOF'
import re
import sys

def entries(path):
    for line in open(path, encoding="utf-8"):
        line = line.split("#", 1)[0].strip()
        if line:
            yield re.sub(r"[-_.]+", "-", re.split(r"[=<>!~;\[ ]", line, 1)[0]).lower(), line

libero = dict(entries("requirements/libero.lock.txt"))
main = [line for name, line in entries("requirements/lock.txt") if name not in libero]
with open(sys.argv[1], "w", encoding="utf-8") as out:
    out.write("\n".join(list(libero.values()) + main) + "\n")
EOF
"${pip[@]}" install -r requirements/ros.in -c "$constraints"
"${pip[@]}" install --no-deps --no-build-isolation -e .
tools/setup/build_interfaces.sh "$venv"

# Smoke test: LIBERO, robosuite 1.4, rclpy, the generated messages and this project all import in the new venv.
smoke_log=$(mktemp)
if ! MUJOCO_GL=egl "$venv/bin/python" -c "
import rclpy, robosuite
from libero.libero import benchmark
from sole_r1.msg import ProgressEstimate
from sole_r1_sim.libero_env import TASKS
assert robosuite.__version__ == '1.4.0', robosuite.__version__
assert benchmark.get_benchmark_dict()['libero_object']().n_tasks == 10
" >"$smoke_log" 2>&1; then
  grep -v -e "robosuite WARNING" -e "^\[info\]" "$smoke_log" >&2 || true
  echo "libero: $venv was built but LIBERO / rclpy / sole_r1 do not import (output above)" >&2
  rm -f "$smoke_log"
  exit 1
fi
rm -f "$smoke_log"
echo "$checksum" > "$stamp"
echo "libero: $venv ready (LIBERO + ROS 2 wheels + sole_r1); run its code with $venv/bin/python"
