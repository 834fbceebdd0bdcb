# Sourced by the scripts in tools/gpu/: install the carried GL loaders (.gl/), cp312 wheels and stripped suite trees
# (.whl/, tools/gpu/strip_suites.py) into /tmp/site, and set the environment every step needs.
# NVLink multicast stays off (it can take the host's shared GPUs down): these stay set for every process.
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || exit 1
for f in .whl/*-stripped.tar.xz; do tar -xJf "$f" -C /tmp/site || exit 1; done
export PYTHONPATH=/tmp/site:$PWD/src MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 \
  TOKENIZERS_PARALLELISM=false
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
