"""The `oracle` backend: privileged simulator progress, loudly labelled, refused without simulator state."""
import math

import pytest

from sole_r1_model.rewarders import make_rewarder


def test_oracle_returns_privileged_progress_labelled_as_such(make_query):
    oracle = make_rewarder("oracle")
    results = oracle.score([make_query(privileged_progress=37.5), make_query(privileged_progress=140.0)])
    assert [r.progress for r in results] == [37.5, 100.0]  # clamped to the model's range
    for result in results:
        assert result.privileged and result.valid
        assert result.rewarder == "oracle"
        assert "PRIVILEGED ORACLE" in result.reasoning and "PRIVILEGED ORACLE" in result.raw_text


def test_oracle_refuses_queries_without_privileged_progress(make_query):
    with pytest.raises(ValueError, match="privileged_progress"):
        make_rewarder("oracle").score([make_query()])


def test_oracle_refuses_non_finite_progress(make_query):
    with pytest.raises(ValueError, match="finite"):
        make_rewarder("oracle").score([make_query(privileged_progress=math.nan)])


def test_oracle_takes_no_options():
    with pytest.raises(ValueError, match="unknown key 'noise'"):
        make_rewarder({"backend": "oracle", "noise": 0.1})
