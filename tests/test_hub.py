"""Tests of `lenet_blocks.hub` against keras-hub's own expectations (the `hub` extra).

keras-hub's test helpers (`keras_hub.src.tests.test_case.TestCase`: `run_backbone_test`,
`run_task_test`) run where they import (they need `grain`, in the `all` extra); the same
checks by hand (config round trip, variable input shapes, preset save and load, predictions
equal to `build_lenet`'s) run everywhere keras-hub is installed. Every test holds on each
Keras backend (marked `backend_agnostic`).
"""

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import keras  # noqa: E402

from lenet_blocks import build_lenet  # noqa: E402
from lenet_blocks.hub import (  # noqa: E402
    LeNetBackbone,
    LeNetImageClassifier,
    LeNetImageClassifierPreprocessor,
    LeNetImageConverter,
    classifier_from_model,
    save_preset,
)
from lenet_blocks.pretrained import pretrained_presets  # noqa: E402

pytestmark = pytest.mark.backend_agnostic
PRESETS = sorted(pretrained_presets())


def images(count=8, seed=0, side=28):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, side, side, 1)).astype("float32")


def outputs(model, batch):
    return keras.ops.convert_to_numpy(model(batch))  # eager: no predict function to compile


def test_every_shipped_preset_round_trips_through_a_keras_hub_preset(tmp_path):
    batch = images()
    for preset in PRESETS:
        model = build_lenet(preset, weights="fashion_mnist")
        save_preset(model, tmp_path / preset)
        restored = keras_hub.models.ImageClassifier.from_preset(str(tmp_path / preset))
        assert isinstance(restored, LeNetImageClassifier), preset
        np.testing.assert_array_equal(outputs(restored, batch), outputs(model, batch), preset)


def test_backbone_from_preset_is_the_headless_build_lenet(tmp_path):
    save_preset(build_lenet("lenet5_1998", weights="fashion_mnist"), tmp_path)
    backbone = keras_hub.models.Backbone.from_preset(str(tmp_path))
    assert isinstance(backbone, LeNetBackbone) and backbone.lenet_preset == "lenet5_1998"
    features = build_lenet("lenet5_1998", include_top=False, weights="fashion_mnist")
    np.testing.assert_array_equal(outputs(backbone, images()), outputs(features, images()))


def test_classifier_predict_applies_the_preprocessor_and_matches_build_lenet(tmp_path):
    model = build_lenet("notebook", weights="fashion_mnist")
    save_preset(model, tmp_path)
    restored = keras_hub.models.ImageClassifier.from_preset(str(tmp_path))
    batch = images()
    expected = np.asarray(model.predict(batch, verbose=0))
    np.testing.assert_array_equal(np.asarray(restored.predict(batch, verbose=0)), expected)


@pytest.mark.parametrize("preset", ["notebook", "lenet5_1998", "tuned_gap"])
def test_backbone_config_round_trips_and_takes_variable_sizes(preset):
    backbone = LeNetBackbone(preset, image_shape=(None, None, 1))
    config = backbone.get_config()
    assert {"lenet_preset", "image_shape", "architecture"} <= set(config)
    revived = LeNetBackbone.from_config(config)
    assert revived.get_config() == config
    for side in (28, 36):
        assert backbone(images(2, side=side)).shape[0] == 2


def test_classifier_from_model_keeps_two_convolution_blocks():
    model = build_lenet("modern", convolutions=(2, 1), padding=("same", "valid"))
    task = classifier_from_model(model)
    assert task.backbone.architecture["convolutions"] == [2, 1]
    assert task.count_params() == model.count_params()
    np.testing.assert_allclose(outputs(task, images()), outputs(model, images()), atol=1e-6)


def test_task_config_round_trips_through_keras_serialization():
    task = classifier_from_model(build_lenet("d2l"))
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(task))
    assert revived.get_config() == task.get_config()
    assert revived.count_params() == task.count_params()


def test_preprocessor_resizes_other_image_sizes_to_the_model_input():
    task = classifier_from_model(build_lenet("d2l", weights="fashion_mnist"))
    outputs = task.predict(images(3, side=56), verbose=0)
    assert outputs.shape == (3, 10)
    np.testing.assert_allclose(outputs.sum(axis=-1), 1.0, rtol=1e-5)


def test_a_model_that_is_not_a_lenet_is_refused():
    inputs = keras.Input((28, 28, 1))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    with pytest.raises(ValueError, match="`model` must be a classifier built by `build_lenet`"):
        classifier_from_model(model)


def _keras_hub_test_case():
    try:
        from keras_hub.src.tests.test_case import TestCase
    except ImportError as error:
        pytest.skip(f"keras-hub's test helpers do not import here: {error}")
    return TestCase


def test_keras_hub_run_backbone_test():
    TestCase = _keras_hub_test_case()

    class BackboneTest(TestCase):
        def runTest(self):
            self.run_backbone_test(
                cls=LeNetBackbone,
                init_kwargs={"lenet_preset": "d2l", "image_shape": (28, 28, 1)},
                input_data=images(2),
                expected_output_shape=(2, 5, 5, 16),
                run_mixed_precision_check=False,
                run_quantization_check=False,
            )

    result = BackboneTest().run()
    assert result.wasSuccessful(), result.errors + result.failures


def test_keras_hub_run_task_test():
    TestCase = _keras_hub_test_case()
    backbone = LeNetBackbone("d2l")
    preprocessor = LeNetImageClassifierPreprocessor(LeNetImageConverter(image_size=(28, 28)))

    class TaskTest(TestCase):
        def runTest(self):
            self.run_task_test(
                cls=LeNetImageClassifier,
                init_kwargs={"backbone": backbone, "num_classes": 4, "preprocessor": preprocessor},
                train_data=(images(4), np.array([0, 1, 2, 3])),
                expected_output_shape=(4, 4),
            )

    result = TaskTest().run()
    assert result.wasSuccessful(), result.errors + result.failures
