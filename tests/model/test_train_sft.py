"""`sole-r1 train sft` on the tiny Qwen3-VL: answer-only loss, export the rewarder loads, resume, LoRA, overfitting."""
import json

import pytest
import yaml

from tests.model.train_testlib import LABELS, REASONING, TINY_OVERRIDES, query_for

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def tiny_recipe(tiny_model_path, mini_dataset, tmp_path):
    """Factory: the sft_tiny recipe on the tiny model and mini dataset, writing under tmp_path, plus overrides."""
    from sole_r1_model.commands.train import recipe_path
    from sole_r1_model.training.recipe import load_recipe

    def make(*overrides, name="sft_tiny"):
        base = (f"model.path={json.dumps(str(tiny_model_path))}", f"data.train={json.dumps([str(mini_dataset)])}",
                f"output_dir={json.dumps(str(tmp_path / 'run'))}")
        return load_recipe(recipe_path(name), base + TINY_OVERRIDES + overrides)

    return make


def test_collated_labels_cover_only_the_answer(tiny_recipe, tiny_model_path, mini_dataset):
    from sole_r1_model.training import model as model_lib
    from sole_r1_model.training.data import load_examples
    from sole_r1_model.training.sft import build_trainer

    recipe = tiny_recipe()
    processor = model_lib.load_training_processor(recipe.model, tiny_model_path)
    dataset = load_examples([mini_dataset])
    trainer = build_trainer(recipe, tiny_model_path, processor, dataset)
    batch = trainer.data_collator([dataset[0], dataset[3]])
    tokenizer = processor.tokenizer
    image_token = tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert (batch["input_ids"] == image_token).sum() > 0
    for row, index in enumerate((0, 3)):
        labels, ids = batch["labels"][row], batch["input_ids"][row]
        kept = labels != -100
        # Exactly the assistant answer (with its end-of-turn) is trained: no system, question or image token.
        expected = f"<think>{REASONING}</think><answer>{LABELS[index]}%</answer><|im_end|>\n"
        assert tokenizer.decode(ids[kept]) == expected
        assert (labels[kept] == ids[kept]).all()
        assert not (ids[kept] == image_token).any()
        first = int(kept.nonzero()[0])
        assert kept[first:].sum() == kept.sum()  # one contiguous span after the prompt
        assert tokenizer.decode(ids[:first]).endswith("<|im_start|>assistant\n")


def test_two_steps_export_a_checkpoint_the_rewarder_loads(tiny_model_path, mini_dataset, tmp_path):
    from sole_r1_model.commands.train import main
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.rewarders.qwen_processor import load_processor

    out = tmp_path / "sft"
    code = main(["sft", "--recipe", "sft_tiny", "--model", str(tiny_model_path), "--data", str(mini_dataset),
                 "--output-dir", str(out), "--max-steps", "2", "--set", "schedule.report_to=[]",
                 "--set", "schedule.progress_bar=false"])
    assert code == 0
    final = out / "final"
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja",
                 "preprocessor_config.json", "generation_config.json", "recipe.yaml", "rewarder.yaml"):
        assert (final / name).is_file(), name
    # The recipe's pixel bounds are the checkpoint's image settings, so the rewarder sees images as in training.
    assert load_processor(final, use_official_image_processor=False).image_processor.size["longest_edge"] == 24576
    assert yaml.safe_load((final / "recipe.yaml").read_text())["schedule"]["max_steps"] == 2
    # The run reports its throughput and loss curve beside the checkpoint (figures for docs/training.md).
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 2 and summary["examples"] == 2 * 2   # 2 steps of sft_tiny's batch of 2
    assert summary["examples_per_s"] > 0 and summary["first_loss"] > 0 and (out / "loss_curve.png").stat().st_size
    spec = yaml.safe_load((final / "rewarder.yaml").read_text())
    assert spec["backend"] == "sole_r1" and spec["model"] == "."   # the folder the YAML lies in
    # The exported folder moves as a whole (e.g. into models/): its rewarder.yaml still finds the weights.
    moved = final.rename(tmp_path / "shipped")
    from sole_r1_model.rewarders.config import resolve_spec

    assert resolve_spec(str(moved / "rewarder.yaml"))[1].model == str(moved.resolve())
    beside = tmp_path / "fast.yaml"   # a YAML of one's own beside the folder, naming it relatively
    beside.write_text(yaml.safe_dump({**spec, "model": "shipped", "device": "cpu", "max_new_tokens": 8, "seed": 0}))
    with make_rewarder(str(beside)) as rewarder:
        [result] = rewarder.score([query_for(0)])
    assert result.rewarder == "sole_r1" and isinstance(result.progress, float)
    final = moved.rename(final)
    # The plain `{backend, model}` spec of the brief loads the same folder too (official image settings).
    with make_rewarder({"backend": "sole_r1", "model": str(final), "device": "cpu", "max_new_tokens": 4}) as plain:
        assert len(plain.score([query_for(1)])) == 1


def test_resume_continues_from_the_saved_step(tiny_recipe):
    from sole_r1_model.training.sft import train_sft

    every_step = ("schedule.save_steps=1", "schedule.logging_steps=1")
    first = train_sft(tiny_recipe("schedule.max_steps=2", *every_step))
    assert first.global_step == 2 and (first.final_dir.parent / "checkpoint-2").is_dir()
    resumed = train_sft(tiny_recipe("schedule.max_steps=4", *every_step), resume="latest")
    assert resumed.start_step == 2 and resumed.global_step == 4
    # The history of steps 1-2 came back from checkpoint-2; this run logged steps 3 and 4 only.
    assert [record["step"] for record in resumed.log_history if "loss" in record] == [1, 2, 3, 4]


def test_lora_run_exports_merged_weights(tiny_recipe):
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.training.sft import train_sft

    result = train_sft(tiny_recipe("lora.enabled=true", "lora.r=4", "schedule.max_steps=2"))
    assert not (result.final_dir / "adapter_config.json").exists()  # merged: a plain checkpoint
    spec = {**yaml.safe_load((result.final_dir / "rewarder.yaml").read_text()), "model": str(result.final_dir)}
    with make_rewarder({**spec, "device": "cpu", "max_new_tokens": 4}) as rewarder:
        assert len(rewarder.score([query_for(2)])) == 1


@pytest.mark.slow
def test_overfits_eight_examples_to_their_exact_answers(tiny_recipe):
    from sole_r1_model.rewarders import make_rewarder
    from sole_r1_model.training.sft import train_sft

    # Full batches of the 8 rows at a high constant learning rate: the loss is ~0.005 after 40 steps.
    result = train_sft(tiny_recipe("schedule.max_steps=40", "optim.per_device_batch_size=8",
                                   "optim.learning_rate=3e-3", "schedule.save_steps=1000"))
    spec = {**yaml.safe_load((result.final_dir / "rewarder.yaml").read_text()), "model": str(result.final_dir)}
    with make_rewarder({**spec, "device": "cpu", "temperature": 0, "max_new_tokens": 32}) as rewarder:
        results = rewarder.score([query_for(i) for i in range(len(LABELS))])
    answers = [(r.valid, r.progress) for r in results]
    assert answers == [(True, float(label)) for label in LABELS], [r.raw_text for r in results]


def test_print_recipe_applies_flags_and_overrides(capsys):
    from sole_r1_model.commands.train import main

    assert main(["sft", "--recipe", "sft_tiny", "--max-steps", "7", "--lora", "--data", "a", "b",
                 "--set", "optim.learning_rate=1e-4", "--print-recipe"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["schedule"]["max_steps"] == 7 and printed["lora"]["enabled"] is True
    assert printed["data"]["train"] == ["a", "b"] and printed["optim"]["learning_rate"] == 1e-4
    assert main(["sft", "--recipe", "sft_tiny", "--set", "optim.learning_rat=1", "--print-recipe"]) == 2


def test_recipes_shipped_in_config_load(repo_root):
    from sole_r1_model.training.recipe import load_recipe

    for path in sorted((repo_root / "config" / "training").glob("*.yaml")):
        recipe = load_recipe(path)
        assert json.loads(json.dumps(recipe.to_dict()))  # plain data all the way down
