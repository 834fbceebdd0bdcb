"""`python -m sole_r1_model.training {sft,grpo} ...`: the entry point `accelerate launch -m` runs on every process."""
import sys

from sole_r1_model.commands.train import main

if __name__ == "__main__":
    sys.exit(main())
