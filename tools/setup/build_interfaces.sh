#!/usr/bin/env bash
# Generate the sole_r1 ROS interfaces (msg/srv) into the virtual environment with colcon.
# --merge-install into the venv puts the Python module in site-packages and the typesupport libraries in
# <venv>/lib, which the ROS wheels' bootstrap already puts on LD_LIBRARY_PATH: no `source` step is needed.
set -euo pipefail
venv=${1:?usage: build_interfaces.sh VENV}
venv=$(cd "$venv" && pwd)
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$root/build/interfaces/$(basename "$venv")  # one CMake build folder per venv
mkdir -p "$build"
"$venv/bin/python" "$root/tools/setup/fix_ros_wheel_cmake.py"
cd "$build"
# Only AMENT_PREFIX_PATH/CMAKE_PREFIX_PATH pointing into the venv are needed; an outer ROS install (if any) is
# left out of the environment so that the venv's wheels are the one ROS this build sees.
env -u AMENT_PREFIX_PATH -u CMAKE_PREFIX_PATH -u COLCON_PREFIX_PATH \
  AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" \
  "$venv/bin/colcon" --log-base "$build/log" build \
    --base-paths "$root" --packages-select sole_r1 \
    --build-base "$build/build" --install-base "$venv" --merge-install \
    --event-handlers console_direct- console_cohesion- status- summary+ \
    --cmake-args -DSOLE_R1_INTERFACES_ONLY=ON -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$venv/bin/python" -DCMAKE_BUILD_TYPE=Release \
  > "$build/colcon.log" 2>&1 || { tail -40 "$build/colcon.log"; echo "interface build failed: full log in $build/colcon.log" >&2; exit 1; }
"$venv/bin/python" -c "from sole_r1.msg import ProgressEstimate, EEDeltaCommand, EpisodeInfo; from sole_r1.srv import ResetEpisode, QueryProgress" \
  || { echo "interfaces built but do not import: see $build/colcon.log" >&2; exit 1; }
echo "interfaces: sole_r1.msg / sole_r1.srv generated into $venv"
