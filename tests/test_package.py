"""Tests of the package surface: version, public names, lazily loaded submodules."""

import importlib.metadata

import pytest

import lenet_blocks as lb


def test_version_matches_installed_metadata():
    assert lb.__version__ == importlib.metadata.version("lenet_blocks")


@pytest.mark.parametrize("name", ["datasets", "export", "pipeline", "search", "training", "tuning"])
def test_submodule_is_reachable_after_plain_import(name):
    module = getattr(lb, name)
    assert module.__name__ == f"lenet_blocks.{name}"


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nonsense'"):
        lb.nonsense  # noqa: B018
