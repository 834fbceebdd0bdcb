"""Learner tests: headless MuJoCo and one torch thread (the machine has 2 cores shared with other runs)."""
import os

os.environ.setdefault("MUJOCO_GL", "egl")

import torch  # noqa: E402

torch.set_num_threads(1)
