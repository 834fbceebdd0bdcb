"""`sole-r1 synth`: reward-model training data in the exact SOLE-R1 query format, from simulated rollouts.

    from sole_r1_model.synth import SynthConfig, run_synth
    result = run_synth(SynthConfig(out="data/synth", tasks=("metaworld:all",), episodes_per_task=4))

Writes OUT/dataset (a `datasets` save_to_disk folder of `sole_r1_model.examples` rows + a dataset card),
OUT/test_videos (official layout: side-by-side videos + data.json ground truth) and OUT/heldout/test_videos.
See docs/training.md, "Data synthesis".
"""
from sole_r1_model.synth.config import POLICIES, SynthConfig
from sole_r1_model.synth.run import SynthResult, run_synth

__all__ = ["POLICIES", "SynthConfig", "SynthResult", "run_synth"]
