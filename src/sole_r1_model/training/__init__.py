"""Training the reward model: `sole-r1 train sft` (SFTTrainer) and `sole-r1 train grpo` (GRPOTrainer, verifiable
rewards), from one YAML recipe (recipe.py), on datasets of `examples.make_example` rows (data.py), exporting a
checkpoint the `sole_r1` rewarder loads as is (export.py). Multi-GPU: `accelerate launch -m sole_r1_model.training`.

Submodules import torch/transformers/trl; this package itself imports nothing heavy.
"""
