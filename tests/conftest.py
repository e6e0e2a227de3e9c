"""Shared fixtures and Hypothesis profiles.

Profiles: `dev` (default, more examples) and `ci` (chosen when `CI` is set; sized for a
2-core CPU). Neither has a deadline: the first call of a Keras model traces a graph.
"""

import os

import keras
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "dev", max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "ci", max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts with the float32 policy and a fresh Keras name scope."""
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()
    yield
    keras.config.set_dtype_policy("float32")
