"""Shared data of the training tests: an 8-row dataset whose composites the rewarder rebuilds exactly."""
import numpy as np

from sole_r1_model.rewarder import ProgressQuery

TASK = "Pick up cube number {i} from the table"
REASONING = "the gripper is over the cube"
# One label per row; the row's task names its index, so a model can tell the rows apart.
LABELS = [5, 18, 30, 42, 57, 66, 81, 95]
PREVIOUS = [0, 10, 20, 35, 50, 60, 75, 90]
TINY_OVERRIDES = ("schedule.report_to=[]", "schedule.progress_bar=false")


def colour_frames(i: int) -> tuple:
    """(first, previous, current) 32x32 frames of example i: a flat colour per timestep, distinct per example."""
    rng = np.random.default_rng(i)
    return tuple(np.full((32, 32, 3), rng.integers(0, 256, 3), dtype=np.uint8) for _ in range(3))


def query_for(i: int) -> ProgressQuery:
    """The rewarder query that rebuilds row i's composite image and prompt exactly."""
    frames = colour_frames(i)
    return ProgressQuery(task=TASK.format(i=i), external=frames, wrist=frames[::-1],
                         previous_progress=PREVIOUS[i], query_index=1)


def write_dataset(path, count: int = len(LABELS)):
    """A mini dataset of `count` make_example rows with composites built like the rewarder builds them."""
    from sole_r1_model.composite import CompositeFrameBuilder
    from sole_r1_model.examples import make_example
    from sole_r1_model.training.data import to_dataset

    builder = CompositeFrameBuilder()
    rows = [make_example(builder.build(query_for(i)), task=TASK.format(i=i), progress=LABELS[i],
                         previous_progress=PREVIOUS[i], reasoning=REASONING, suite="test", task_name="cube",
                         episode=f"ep{i}", frame_index=i + 1, num_frames=10, success=False, policy="scripted")
            for i in range(count)]
    to_dataset(rows).save_to_disk(str(path))
    return path
