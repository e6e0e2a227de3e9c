"""Tests of `RunSettings`: one validated object, the same after a JSON round trip."""

import dataclasses
import json

import pytest

from lenet_blocks.settings import RunSettings


def test_settings_equal_themselves_after_a_json_round_trip():
    settings = RunSettings(model_overrides={"units": (120, 84), "padding": ["same", "valid"]})
    recorded = json.loads(json.dumps(settings.to_dict()))
    assert recorded["model_overrides"]["units"] == [120, 84]
    assert RunSettings.from_dict(recorded) == settings
    assert settings.model_overrides["padding"] == ("same", "valid")


def test_fields_left_out_take_the_presets_training_defaults():
    settings = RunSettings(preset="modern", epochs=2)
    assert (settings.optimizer, settings.lr_schedule, settings.epochs) == ("adam", "cosine", 2)


def test_settings_recorded_before_a_field_existed_take_its_value_of_then():
    recorded = RunSettings(preset="modern").to_dict()
    del recorded["lr_schedule"], recorded["augmentation"]
    settings = RunSettings.from_dict(recorded)
    assert (settings.lr_schedule, settings.augmentation) == ("constant", "none")


@pytest.mark.parametrize("recorded", [[], {"preset": "notebook", "epoch": 3}])
def test_recorded_settings_that_are_no_settings_are_a_value_error(recorded):
    with pytest.raises(ValueError, match="Received:"):
        RunSettings.from_dict(recorded)


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        RunSettings().epochs = 3
