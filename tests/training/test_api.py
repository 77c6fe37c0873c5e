"""effconv.training.api's request path (what `effconv train` calls): the overrides a TrainRequest
sets, the refusals that come before any data is read, and the target-accuracy verdict."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from effconv.errors import CheckFailedError, UsageError
from effconv.training.api import TrainRequest, check_target, run_request


def test_overrides_are_the_values_given_and_the_switches_that_are_on():
    got = TrainRequest(spec="resnet20", steps=10, lr=0.1, deterministic=True).overrides()
    assert got == {"steps": 10, "batch_size": None, "lr": 0.1, "optimizer": None, "precision": None, "seed": None,
                   "eval_every": None, "subset": None, "compile": None, "deterministic": True,
                   "synthetic_gradients": None}


@pytest.mark.parametrize("extra", [{"spec": "resnet20"}, {"activation": "swish"}, {"lr": 0.1}, {"compile": True},
                                   {"batch_size": 8}])
def test_resume_takes_only_steps_data_and_quiet(tmp_path, extra):
    with pytest.raises(UsageError, match="--resume continues a run as configured"):
        run_request(TrainRequest(resume=tmp_path, steps=4, **extra))


def test_no_model_and_no_resume_is_a_usage_error():
    with pytest.raises(UsageError, match="give a model"):
        run_request(TrainRequest())


@pytest.mark.parametrize("acc, target, fails", [(0.5, 0.5, False), (0.5, 50, False), (0.499, 50, True),
                                                (0.9, 0.95, True), (None, 0.1, True), (0.1, None, False)])
def test_target_is_a_fraction_or_a_percentage(acc, target, fails):
    result = SimpleNamespace(test_acc=acc)  # check_target reads only the final accuracy
    if fails:
        with pytest.raises(CheckFailedError, match="below the target"):
            check_target(result, target)
    else:
        check_target(result, target)
