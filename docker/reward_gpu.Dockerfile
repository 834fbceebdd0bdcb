# GPU reward box image: CUDA + torch + transformers + sole_r1, serving SOLE-R1 progress over the official
# ZeroMQ protocol (port 8001) with `sole-r1 serve`. No ROS: the robot PC's reward node is the client (the `zmq`
# rewarder, the real_franka graph's default; compose points it here with REWARD_HOST).
#
#   docker build -f docker/reward_gpu.Dockerfile -t sole_r1/reward_gpu .   # from the repository root
#   docker compose -f docker/compose.yaml --profile reward up              # needs the NVIDIA container toolkit
#
# Model weights are NOT baked in: mount a Hugging Face cache that already holds Philip-MIT/SOLE-R1-8B
# (compose does, read-only, with HF_HUB_OFFLINE=1) -- see docs/real_robot.md "GPU reward box".
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

# torch from PyPI's default index is the CUDA build (the lock file pins the CPU build used in development).
ARG TORCH_SPEC=torch==2.13.0

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8 \
    SOLE_R1_SRC=/opt/sole_r1 \
    VIRTUAL_ENV=/opt/sole_r1_venv \
    PATH=/opt/sole_r1_venv/bin:${PATH} \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-pip \
    && rm -rf /var/lib/apt/lists/*

WORKDIR ${SOLE_R1_SRC}
COPY requirements requirements
# Simulators are not needed here; every other pin comes from the lock file (minus its CPU torch pin).
RUN python3 -m venv ${VIRTUAL_ENV} \
    && pip install --no-cache-dir "${TORCH_SPEC}" \
    && grep -v '^torch==' requirements/lock.txt > /tmp/constraints.txt \
    && grep -v -E '^(torch|mujoco|robosuite|metaworld)\b' requirements/base.in > /tmp/requirements.txt \
    && pip install --no-cache-dir -r /tmp/requirements.txt -c /tmp/constraints.txt

COPY pyproject.toml README.md ./
COPY src src
COPY config config
COPY models models
RUN pip install --no-cache-dir --no-deps -e ${SOLE_R1_SRC}

EXPOSE 8001
# --bind 0.0.0.0: reachable from the robot PC; keep the box on the robot's private network.
CMD ["sole-r1", "serve", "--rewarder", "sole_r1", "--bind", "0.0.0.0", "--port", "8001"]
