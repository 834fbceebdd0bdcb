# Robot PC image: ROS 2 Jazzy + franka_ros2 v3.4 (built as its README says) + crisp_controllers + sole_r1.
# One image, two compose services (docker/compose.yaml): `franka_bringup` (franka_ros2, the state broadcaster and
# the target controller: `ros2 launch sole_r1 franka_bringup.launch.py`) and `robot_pc` (the sole_r1 graph:
# cameras, safety gate, Franka bridge, episode manager, learner). The reward model runs on the GPU box
# (docker/reward_gpu.Dockerfile). See docs/real_robot.md.
#
#   docker build -f docker/robot_pc.Dockerfile -t sole_r1/robot_pc .      # from the repository root
#   docker compose -f docker/compose.yaml --profile robot up               # host network, real-time limits
#
# The host needs a PREEMPT_RT kernel for libfranka's 1 kHz loop; the container only inherits it.
# franka_ros2 v3.x requires ROS 2 Jazzy (its README and changelog), hence this base image.
ARG ROS_DISTRO=jazzy
FROM ros:${ROS_DISTRO}-ros-base

ARG ROS_DISTRO
# franka_ros2 release to build: its libfranka (dependency.repos) must match your robot's system version.
ARG FRANKA_ROS2_REF=v3.4.0
# crisp_controllers release (the `crisp` target controller); built in the same workspace, against the same
# ros2_control sources as franka_ros2.
ARG CRISP_CONTROLLERS_REF=v1.0.0
# Where torch comes from: the CPU build by default (tools/setup/install_python_deps.sh pins the version, the index
# picks the build); for a CUDA learner pass --build-arg TORCH_INDEX_URL=https://pypi.org/simple.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# LARGE_DATA: camera frames over DDS with ~5x lower latency than the default transports (docs/real_robot.md).
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    RCUTILS_COLORIZED_OUTPUT=1 \
    FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA

RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        git python3-venv python3-pip python3-colcon-common-extensions python3-vcstool python3-rosdep \
        ros-${ROS_DISTRO}-rviz2 ros-${ROS_DISTRO}-cv-bridge ros-${ROS_DISTRO}-tf2-msgs \
    && rm -rf /var/lib/apt/lists/*

# ---- franka_ros2 + crisp_controllers ---------------------------------------------------------------------
# As franka_ros2's README: vcs import of its dependency.repos (libfranka, franka_description and its own
# ros2_control sources, so hardware_interface and controller_manager share one ABI), rosdep with
# --skip-keys=zed_wrapper, a Release build without tests. Its entrypoint's manage_overruns patch is applied here.
# Only the packages the robot needs (and their dependencies) are built.
WORKDIR /ros2_ws
RUN git clone --depth 1 --branch ${FRANKA_ROS2_REF} https://github.com/frankarobotics/franka_ros2.git src/franka_ros2 \
    && git clone --depth 1 --branch ${CRISP_CONTROLLERS_REF} https://github.com/utiasDSL/crisp_controllers.git \
        src/crisp_controllers \
    && vcs import src < src/franka_ros2/dependency.repos --recursive --skip-existing \
    && git -C src/ros2_control apply /ros2_ws/src/franka_ros2/patches/manage_overruns.patch \
    && apt-get update \
    && (rosdep init 2>/dev/null || true) && rosdep update --rosdistro ${ROS_DISTRO} \
    && rosdep install --from-paths src --ignore-src --rosdistro ${ROS_DISTRO} -y --skip-keys=zed_wrapper \
    && rm -rf /var/lib/apt/lists/* \
    && . /opt/ros/${ROS_DISTRO}/setup.sh \
    && colcon build --cmake-args -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTS=OFF -DBUILD_TESTING=OFF \
        --packages-up-to franka_bringup franka_gripper franka_msgs franka_robot_state_broadcaster \
            franka_example_controllers crisp_controllers \
    && rm -rf build log

# ---- sole_r1 --------------------------------------------------------------------------------------------
# SOLE_R1_SHARE_DIR: graphs and parameters are read from the source copy, so compose can mount config/ over it.
ENV SOLE_R1_SRC=/ros2_ws/src/sole_r1 \
    SOLE_R1_SHARE_DIR=/ros2_ws/src/sole_r1 \
    VIRTUAL_ENV=/opt/sole_r1_venv \
    PATH=/opt/sole_r1_venv/bin:${PATH}
WORKDIR ${SOLE_R1_SRC}
# Python dependencies first (their layer survives source edits), with the script native installs use too.
# --system-site-packages: rclpy and the generated messages come from /opt/ros and the workspace install.
COPY requirements requirements
COPY tools/setup/install_python_deps.sh tools/setup/install_python_deps.sh
RUN python3 -m venv --system-site-packages ${VIRTUAL_ENV} \
    && PYTHON=${VIRTUAL_ENV}/bin/python TORCH_INDEX_URL=${TORCH_INDEX_URL} \
        tools/setup/install_python_deps.sh --robot \
    && rm -rf /root/.cache/pip

COPY package.xml CMakeLists.txt pyproject.toml README.md ./
COPY src src
COPY launch launch
COPY config config
COPY models models
# The ROS package (interfaces, node executables, launch/ and config/ in share/sole_r1), then the `sole-r1`
# console script as an editable install of the same sources.
RUN . /opt/ros/${ROS_DISTRO}/setup.sh && . /ros2_ws/install/setup.sh \
    && cd /ros2_ws \
    && colcon build --packages-select sole_r1 \
        --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=${VIRTUAL_ENV}/bin/python \
    && rm -rf build log \
    && pip install --no-cache-dir --no-deps -e ${SOLE_R1_SRC} \
    && printf 'source /opt/ros/%s/setup.bash\nsource /ros2_ws/install/setup.bash\n' "${ROS_DISTRO}" >> /etc/bash.bashrc

ENV ROS_DISTRO=${ROS_DISTRO}
WORKDIR /ros2_ws
ENTRYPOINT ["/bin/bash", "-c", "source /opt/ros/${ROS_DISTRO}/setup.bash && source /ros2_ws/install/setup.bash && exec \"$@\"", "--"]
CMD ["ros2", "launch", "sole_r1", "real_franka.launch.py"]
