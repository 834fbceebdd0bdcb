"""The distributed path of `sole-r1 train sft` on CPU: 2 processes (torchrun, gloo) train like 1 process.

Same global batch (2 processes x 2 rows = 1 process x 4 rows), same seed: the data sampler hands each process
its half of the same shuffled batch and DDP averages the gradients, so the logged losses must match. On GPUs the
same module runs under `accelerate launch` (config/accelerate/); `accelerate launch --cpu` starts one process
only (multi-CPU there means MPI), hence torchrun here.
"""
import json
import os
import socket
import subprocess
import sys

import pytest


COMMON = ["--recipe", "sft_tiny", "--max-steps", "2", "--set", "schedule.logging_steps=1", "--set",
          "schedule.save_steps=2", "--set", "schedule.report_to=[]", "--set", "schedule.progress_bar=false"]

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def logged_losses(output_dir) -> list[tuple[int, float]]:
    """(step, loss) records of a run, from its checkpoint's trainer state."""
    state = json.loads((output_dir / "checkpoint-2" / "trainer_state.json").read_text())
    return [(record["step"], record["loss"]) for record in state["log_history"] if "loss" in record]


@pytest.mark.slow
def test_two_gloo_processes_match_one_process(tiny_model_path, mini_dataset, tmp_path):  # noqa: F811
    from sole_r1_model.commands.train import main

    data = ["--model", str(tiny_model_path), "--data", str(mini_dataset)]
    one = tmp_path / "one"
    assert main(["sft", *COMMON, *data, "--output-dir", str(one), "--set", "optim.per_device_batch_size=4"]) == 0

    two = tmp_path / "two"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
               "--master_port", str(free_port()), "-m", "sole_r1_model.training", "sft", *COMMON, *data,
               "--output-dir", str(two), "--set", "optim.per_device_batch_size=2"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    assert finished.returncode == 0, finished.stderr[-4000:]

    single, distributed = logged_losses(one), logged_losses(two)
    assert [step for step, _ in distributed] == [1, 2]
    for (_, a), (_, b) in zip(single, distributed):
        assert b == pytest.approx(a, rel=1e-4)
    # The main process alone exported the checkpoint.
    assert (two / "final" / "model.safetensors").is_file() and (two / "final" / "rewarder.yaml").is_file()
