"""sole_r1_config: one dataclass field per setting, CLI flags derived from it, ranges enforced everywhere."""
from __future__ import annotations

import argparse
import dataclasses
from typing import Optional

import pytest

from sole_r1_config import ConfigError, add_arguments, check_ranges, from_arguments, param, parse_key_values
from sole_r1_rl.cli import parse_args
from sole_r1_rl.reward import RewardConfig
from sole_r1_rl.run_config import TrainerConfig


@dataclasses.dataclass
class Inner:
    """A nested group."""

    kind: str = param("a", "one of a, b", choices=("a", "b"))
    scale: float = param(0.5, "a positive gain", low=0.0, high=1.0)


@dataclasses.dataclass
class Outer:
    """Settings with every field type the CLI derivation handles."""

    name: str = param("x", "a name")
    steps: int = param(10, "at least one", low=1)
    limit: Optional[int] = param(None, "optional", low=1)
    box: tuple = param((0.0, 1.0), "two numbers")
    verbose: bool = param(False, "talk more")
    inner: Inner = param(Inner, "the nested group")


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_arguments(parser, Outer)
    return from_arguments(Outer, parser.parse_args(argv))


def test_flags_default_to_the_dataclass_defaults():
    assert _parse([]) == Outer()


def test_every_field_becomes_a_flag_with_its_type():
    config = _parse(["--name", "y", "--steps", "3", "--limit", "4", "--box", "0.5", "2", "--verbose",
                     "--inner.kind", "b", "--inner.scale", "0.25"])
    assert config == Outer(name="y", steps=3, limit=4, box=[0.5, 2.0], verbose=True, inner=Inner("b", 0.25))


def test_ranges_and_choices_are_enforced_for_flags():
    with pytest.raises(ConfigError, match="'steps' = 0 is below its minimum 1"):
        _parse(["--steps", "0"])
    with pytest.raises(ConfigError, match="'inner.scale' = 2.0 is above its maximum 1.0"):
        _parse(["--inner.scale", "2"])
    with pytest.raises(SystemExit):  # argparse rejects a value outside `choices` itself (exit 2)
        _parse(["--inner.kind", "c"])


def test_check_ranges_walks_nested_dataclasses():
    with pytest.raises(ConfigError, match="inner.scale"):
        check_ranges(Outer(inner=Inner(scale=-1.0)))


def test_parse_key_values_reads_yaml_scalars_and_names_bad_items():
    assert parse_key_values(["batch_size=64", "lr=1e-4", "name=drq", "flag=true"]) == {
        "batch_size": 64, "lr": 1e-4, "name": "drq", "flag": True}
    with pytest.raises(ConfigError, match="--set: expected name=value, got 'batch_size'"):
        parse_key_values(["batch_size"], "--set")


def test_trainer_flags_are_trainer_config_fields_with_one_name_per_setting(tmp_path):
    trainer, agent, threads = parse_args(["--task", "button-press-topdown-v3", "--steps", "20", "--out",
                                          str(tmp_path), "--reward.kind", "delta", "--reward.mode", "hold_last",
                                          "--no-resume", "--no-progress-bar", "--preset", "serl", "--set",
                                          "batch_size=32", "--threads", "1"])
    assert trainer.task == "button-press-topdown-v3" and trainer.steps == 20 and trainer.out == str(tmp_path)
    assert trainer.reward == RewardConfig(mode="hold_last", kind="delta")
    assert (trainer.resume, trainer.progress_bar) == (False, False)
    assert agent.batch_size == 32 and threads == 1
    defaults, _, _ = parse_args([])
    assert defaults == TrainerConfig()


def test_trainer_refuses_an_out_of_range_setting_with_its_name():
    with pytest.raises(SystemExit, match="query_every"):
        parse_args(["--query-every", "0"])


def test_trainer_help_lists_the_derived_flags(capsys):
    with pytest.raises(SystemExit) as stop:
        parse_args(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    assert "--reward.first-frame-progress" in out and "0 %" in out and "--no-resume" in out


def test_side_venvs_are_found_in_the_venv_root_or_the_checkout_never_the_working_directory(tmp_path, monkeypatch):
    from sole_r1_config import paths

    monkeypatch.chdir(tmp_path)
    (tmp_path / ".venv-x" / "bin").mkdir(parents=True)
    (tmp_path / ".venv-x" / "bin" / "python").write_text("")
    monkeypatch.delenv(paths.VENV_ROOT_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match="SOLE_R1_VENV_ROOT"):
        paths.venv_python(".venv-x")               # only in the working directory: not found
    monkeypatch.setenv(paths.VENV_ROOT_ENV, str(tmp_path))
    assert paths.venv_python(".venv-x") == tmp_path / ".venv-x" / "bin" / "python"
    assert paths.venv_python(str(tmp_path / ".venv-x")) == tmp_path / ".venv-x" / "bin" / "python"
    assert paths.source_root() is not None and (paths.source_root() / "config").is_dir()
    assert paths.installed_executable("franka_bridge") is None      # a checkout runs modules, not lib/sole_r1
