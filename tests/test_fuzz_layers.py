"""Fuzzing the layers and the builder: hand-edited configs and nonsense arguments.

Every registered layer's `from_config` gets its valid config with one field replaced by a
hostile value, and `build_lenet` gets one argument replaced so; each must either give a working
layer/model or refuse with a documented exception (`ValueError`, or the `TypeError` with which
Keras' `from_config` wraps a layer's `ValueError`). A low parameter budget
(`LENET_BLOCKS_MAX_PARAMS`) keeps every accepted case small, and the process' peak memory is
checked after the run. The example count follows the Hypothesis profile (`ci` under `CI`,
`dev` otherwise; `HYPOTHESIS_PROFILE=fuzz` for a long local run, see docs/reliability.md).
"""

from __future__ import annotations

import math
import resource

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_layers import LAYER_CASES

import lenet_blocks as lb

# Values a hand-edited file or a careless call may hold, for any field.
HOSTILE_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.sampled_from([0, -1, 2**31, 10**9, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.lists(st.integers(-3, 2**20), max_size=4),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
BUILDER_ARGUMENTS = (
    "input_shape", "pooling", "classes", "classifier_activation", "activation", "filters",
    "kernel_size", "padding", "convolutions", "block_pooling", "pool_size", "units", "dropout",
    "batch_norm", "include_rescaling", "include_top",
)  # fmt: skip
FUZZ_BUDGET = "200000"
PEAK_MEMORY_GROWTH_BYTES = 2 * 2**30


def peak_memory_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@pytest.fixture(autouse=True)
def small_budget(monkeypatch):
    monkeypatch.setenv("LENET_BLOCKS_MAX_PARAMS", FUZZ_BUDGET)


@pytest.fixture(scope="module", autouse=True)
def bounded_memory():
    before = peak_memory_bytes()
    yield
    assert peak_memory_bytes() - before < PEAK_MEMORY_GROWTH_BYTES


def documented_refusal(error: BaseException) -> bool:
    """A `ValueError`, or Keras' deserialization `TypeError` raised while handling one."""
    wrapped = error.__cause__ or error.__context__
    return isinstance(error, ValueError) or (
        isinstance(error, TypeError)
        and str(error).startswith("Error when deserializing class")
        and isinstance(wrapped, ValueError)
    )


@pytest.mark.parametrize(("cls", "kwargs", "input_shape", "output_shape"), LAYER_CASES)
@settings(max_examples=max(settings().max_examples, 10))
@given(data=st.data())
def test_layer_from_mutated_config_works_or_refuses(cls, kwargs, input_shape, output_shape, data):
    config = cls(**kwargs).get_config()
    field = data.draw(st.sampled_from(sorted(config)), label="field")
    config[field] = data.draw(HOSTILE_VALUES, label="value")
    try:
        layer = cls.from_config(config)
        output = layer(np.ones(input_shape, "float32"))
    except Exception as error:
        assert documented_refusal(error), repr(error)
        return
    assert output.shape[0] == input_shape[0]


@settings(max_examples=max(settings().max_examples, 20))
@given(
    argument=st.sampled_from(BUILDER_ARGUMENTS),
    value=HOSTILE_VALUES,
    preset=st.sampled_from(lb.list_presets()),
)
def test_build_lenet_with_one_hostile_argument_works_or_refuses(argument, value, preset):
    try:
        model = lb.build_lenet(preset, **{argument: value})
    except ValueError:
        return
    shape = [28 if d is None else d for d in model.input_shape[1:]]
    outputs = keras.ops.convert_to_numpy(model(np.zeros((1, *shape), "float32")))
    assert outputs.shape[0] == 1
    assert all(math.isfinite(v) for v in outputs.reshape(-1).tolist())
