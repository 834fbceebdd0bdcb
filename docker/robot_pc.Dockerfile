# Robot PC image: ROS 2 Kilted + franka_ros2 (built from source) + sole_r1 (the ROS package and the `sole-r1` CLI).
# Runs cameras, safety gate, Franka bridge, episode manager and learner; the reward model runs on the GPU box
# (docker/reward_gpu.Dockerfile). See docs/real_robot.md.
#
#   docker build -f docker/robot_pc.Dockerfile -t sole_r1/robot_pc .      # from the repository root
#   docker compose -f docker/compose.yaml --profile robot up               # host network, real-time limits
#
# The host needs a PREEMPT_RT kernel for libfranka's 1 kHz loop; the container only inherits it.
ARG ROS_DISTRO=kilted
FROM ros:${ROS_DISTRO}-ros-base

ARG ROS_DISTRO
# franka_ros2 release to build. franka_msgs is identical in the v2.x (humble) and v3.x (jazzy) lines; pick the
# release whose libfranka (its dependency.repos) matches your robot's system version.
ARG FRANKA_ROS2_REF=v3.4.0
# CPU torch by default (the learner can also run on a GPU workstation); for CUDA pass e.g.
#   --build-arg TORCH_SPEC=torch==2.13.0 --build-arg TORCH_INDEX_URL=https://pypi.org/simple
ARG TORCH_SPEC=torch==2.13.0+cpu
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
        ros-${ROS_DISTRO}-rviz2 ros-${ROS_DISTRO}-cv-bridge \
    && rm -rf /var/lib/apt/lists/*

# ---- franka_ros2 ----------------------------------------------------------------------------------------
# ros2_control and gz_ros2_control come from the distro's binary packages, not from the jazzy sources that
# franka_ros2's dependency.repos lists, so their source copies are removed before building.
WORKDIR /ros2_ws
RUN git clone --depth 1 --branch ${FRANKA_ROS2_REF} https://github.com/frankarobotics/franka_ros2.git src/franka_ros2 \
    && vcs import src < src/franka_ros2/dependency.repos --recursive --skip-existing \
    && rm -rf src/ros2_control src/gz_ros2_control \
    && apt-get update \
    && (rosdep init 2>/dev/null || true) && rosdep update --rosdistro ${ROS_DISTRO} \
    && rosdep install --from-paths src --ignore-src --rosdistro ${ROS_DISTRO} -y --skip-keys="zed_wrapper" \
    && rm -rf /var/lib/apt/lists/* \
    && . /opt/ros/${ROS_DISTRO}/setup.sh \
    && colcon build --merge-install --cmake-args -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        --packages-up-to franka_bringup franka_gripper franka_msgs franka_robot_state_broadcaster \
    && rm -rf build log

# ---- sole_r1 --------------------------------------------------------------------------------------------
# SOLE_R1_SHARE_DIR: graphs and parameters are read from the source tree, so compose can mount config/ over it.
ENV SOLE_R1_SRC=/ros2_ws/src/sole_r1 \
    SOLE_R1_SHARE_DIR=/ros2_ws/src/sole_r1 \
    VIRTUAL_ENV=/opt/sole_r1_venv \
    PATH=/opt/sole_r1_venv/bin:${PATH}
WORKDIR ${SOLE_R1_SRC}
# Python dependencies first (their layer survives source edits). --system-site-packages: rclpy and the
# generated messages come from /opt/ros and the workspace install.
COPY requirements requirements
RUN python3 -m venv --system-site-packages ${VIRTUAL_ENV} \
    && pip install --no-cache-dir --index-url ${TORCH_INDEX_URL} "${TORCH_SPEC}" \
    && pip install --no-cache-dir -r requirements/base.in -c requirements/lock.txt

COPY package.xml CMakeLists.txt pyproject.toml README.md ./
COPY src src
COPY launch launch
COPY config config
# The ROS package (interfaces, node executables, launch/ and config/ in share/sole_r1), then the `sole-r1`
# console script as an editable install of the same sources.
RUN . /opt/ros/${ROS_DISTRO}/setup.sh && . /ros2_ws/install/setup.sh \
    && cd /ros2_ws \
    && colcon build --merge-install --packages-select sole_r1 \
        --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE=${VIRTUAL_ENV}/bin/python \
    && rm -rf build log \
    && pip install --no-cache-dir --no-deps -e ${SOLE_R1_SRC} \
    && printf 'source /opt/ros/%s/setup.bash\nsource /ros2_ws/install/setup.bash\n' "${ROS_DISTRO}" >> /etc/bash.bashrc

ENV ROS_DISTRO=${ROS_DISTRO}
WORKDIR /ros2_ws
ENTRYPOINT ["/bin/bash", "-c", "source /opt/ros/${ROS_DISTRO}/setup.bash && source /ros2_ws/install/setup.bash && exec \"$@\"", "--"]
CMD ["ros2", "launch", "sole_r1", "real_franka.launch.py"]
