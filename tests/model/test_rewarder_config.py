"""`make_rewarder` specs: backend names, dicts, YAML files (the shipped ones included), and clear errors."""
import dataclasses

import pytest
import yaml

from sole_r1_model.rewarder import ProgressResult, Rewarder
from sole_r1_model.rewarders import make_rewarder
from sole_r1_model.rewarders.config import (BACKEND_CONFIGS, HFRewarderConfig, OpenAIRewarderConfig,
                                            resolve_spec)


def test_backend_name_gives_official_sampling_defaults():
    backend, config = resolve_spec("sole_r1")
    assert backend == "sole_r1"
    assert (config.model, config.temperature, config.top_p, config.top_k, config.max_new_tokens) == \
        ("Philip-MIT/SOLE-R1-8B", 1.0, 0.9, 50, 200)


def test_unknown_key_is_named_in_the_error():
    with pytest.raises(ValueError, match="unknown key 'temprature' for rewarder backend 'sole_r1'"):
        make_rewarder({"backend": "sole_r1", "temprature": 0.5})


def test_unknown_backend_and_missing_backend_are_errors():
    with pytest.raises(ValueError, match="neither a backend"):
        make_rewarder("gpt9")
    with pytest.raises(ValueError, match="'backend'"):
        make_rewarder({"model": "x"})


def test_yaml_file_spec_is_loaded_and_validated(tmp_path):
    good = tmp_path / "r.yaml"
    good.write_text("backend: openai\nbase_url: http://10.0.0.2:9000/v1\ntop_k: null\n")
    rewarder = make_rewarder(str(good))
    assert rewarder.name == "openai" and rewarder.config.top_k is None
    assert rewarder.url == "http://10.0.0.2:9000/v1/chat/completions"
    bad = tmp_path / "bad.yaml"
    bad.write_text("backend: openai\nretries: 3\n")
    with pytest.raises(ValueError, match=r"bad\.yaml: unknown key 'retries'"):
        make_rewarder(bad)


@pytest.mark.parametrize("name", ["sole_r1", "openai", "oracle", "tiny"])
def test_shipped_rewarder_configs_are_valid_and_complete(repo_root, name):
    path = repo_root / "config" / "rewarders" / f"{name}.yaml"
    backend, config = resolve_spec(path)
    assert backend == yaml.safe_load(path.read_text())["backend"]
    assert resolve_spec(name) == (backend, config)  # also found by name under config/rewarders/
    if name in ("sole_r1", "openai"):  # the full files restate every default, so they must equal the code's
        assert config == BACKEND_CONFIGS[backend]()
        assert set(yaml.safe_load(path.read_text())) - {"backend"} == {f.name for f in dataclasses.fields(config)} \
            - {"image_processor_overrides"}


@pytest.mark.parametrize("options", [{"top_p": 1.5}, {"temperature": -1.0}, {"max_new_tokens": 0},
                                     {"dtype": "int8"}, {"device": "tpu"}, {"variant": "diagonal"},
                                     {"max_batch_size": 0}, {"max_think_tokens": 0}, {"constrain_format": "yes"}])
def test_invalid_sole_r1_options_are_rejected(options):
    with pytest.raises(ValueError):
        HFRewarderConfig(**options)


def test_tiny_yaml_builds_a_working_rewarder(tiny_model_path, monkeypatch, make_query):
    monkeypatch.setenv("SOLE_R1_TINY_MODEL", str(tiny_model_path))
    with make_rewarder("tiny") as rewarder:
        assert rewarder.checkpoint == tiny_model_path
        [result] = rewarder.score([make_query(previous=3.0)])
    assert result.valid or result.progress == 3.0


def test_openai_config_reads_no_secret_from_yaml():
    assert "api_key" not in {f.name for f in dataclasses.fields(OpenAIRewarderConfig)}


class ConstantRewarder(Rewarder):
    """A test rewarder named by `module:Class`: answers `value` % to every query."""

    name = "constant"

    def __init__(self, value: float = 50.0, label: str = "") -> None:
        self.value, self.label = value, label

    def _score(self, queries):
        return [ProgressResult(progress=self.value, reasoning=self.label) for _ in queries]


NotARewarder = dict
CLASS_SPEC = f"{__name__}:ConstantRewarder"


def test_module_class_spec_builds_that_rewarder_class(make_query):
    rewarder = make_rewarder(CLASS_SPEC)
    assert type(rewarder) is ConstantRewarder and rewarder.value == 50.0
    [result] = rewarder.score([make_query()])
    assert (result.progress, result.rewarder) == (50.0, "constant")
    oracle = make_rewarder("sole_r1_model.rewarders.oracle:OracleRewarder")
    assert oracle.name == "oracle" and oracle.privileged


def test_module_class_dict_spec_passes_the_other_options_as_keyword_arguments(make_query, tmp_path):
    rewarder = make_rewarder({"backend": CLASS_SPEC, "value": -20.0, "label": "from a dict"})
    [result] = rewarder.score([make_query()])
    assert (result.progress, result.reasoning) == (-20.0, "from a dict")
    spec = tmp_path / "custom.yaml"
    spec.write_text(f"backend: {CLASS_SPEC}\nvalue: 7.5\n")
    assert make_rewarder(spec).value == 7.5
    assert resolve_spec(spec) == resolve_spec({"backend": CLASS_SPEC, "value": 7.5})


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:Thing", "cannot import module 'no_such_module_xyz'"),
    (f"{__name__}:Missing", "has no attribute 'Missing'"),
    (f"{__name__}:NotARewarder", "not a concrete Rewarder subclass"),
    ("sole_r1_model.rewarder:Rewarder", "not a concrete Rewarder subclass"),  # abstract
])
def test_module_class_spec_that_is_not_a_rewarder_is_an_error_naming_the_spec(spec, message):
    with pytest.raises(ValueError, match=f"rewarder spec '{spec}'.*{message}"):
        make_rewarder(spec)


def test_module_class_spec_with_unknown_options_is_an_error_naming_the_spec():
    with pytest.raises(ValueError, match=f"rewarder spec '{CLASS_SPEC}': options \\['colour'\\] do not fit"):
        make_rewarder({"backend": CLASS_SPEC, "colour": "red"})
