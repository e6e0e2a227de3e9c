"""keras-hub citizenship: a LeNet as a `keras_hub` Backbone, ImageClassifier and preset directory.

The `hub` extra (`pip install "lenet_blocks[hub]"`, keras-hub >= 0.32); this module is the only
one that imports `keras_hub`, and nothing imports it until it is used.

- `LeNetBackbone`: the convolution blocks of a `build_lenet` preset (with the preset's input
  rescaling and global pooling, if it has them) as a functional `keras_hub.models.Backbone`.
  Its config is its constructor arguments: the preset name, the image shape and the
  architecture arguments that override the preset's.
- `LeNetImageClassifier`: a `keras_hub.models.ImageClassifier` with the preset's own head
  (dense layers, or LeNet-5's F6 and RBF output), so that it predicts exactly as the
  `build_lenet` model with the same weights.
- `LeNetImageConverter` / `LeNetImageClassifierPreprocessor`: resize (padding to the aspect
  ratio, as `preprocess_input`) to the model's image size. Pixels stay 0-255: the rescaling is
  in the model, which carries its input range like every model of the package.

`save_preset(model, directory)` writes any `build_lenet` classifier (or a `.keras` file of one)
as a keras-hub preset directory; `keras_hub.models.ImageClassifier.from_preset(directory)`
rebuilds it, weights included, once `lenet_blocks.hub` is imported (keras-hub finds the task
class among the registered subclasses).

Example:
>>> import tempfile
>>> from lenet_blocks import build_lenet
>>> directory = tempfile.mkdtemp()
>>> save_preset(build_lenet(), directory)
>>> restored = keras_hub.models.ImageClassifier.from_preset(directory)
>>> type(restored).__name__, restored.backbone.lenet_preset
('LeNetImageClassifier', 'notebook')
"""

from __future__ import annotations

import os
from pathlib import Path

import keras

try:
    import keras_hub
except ImportError as error:  # the optional `hub` extra
    raise ImportError(
        f"lenet_blocks.hub needs keras-hub ({error}); install it with "
        "`pip install 'lenet_blocks[hub]'`."
    ) from error

from lenet_blocks.builder import build_lenet
from lenet_blocks.layers import ClassifierHead, ConvBlock

__all__ = [
    "LeNetBackbone",
    "LeNetImageClassifier",
    "LeNetImageClassifierPreprocessor",
    "LeNetImageConverter",
    "classifier_from_model",
    "save_preset",
]

_LENET5_LAYERS = frozenset({"c1", "s2", "c3", "s4", "c5", "f6", "rbf"})
_GLOBAL_POOLS = {"global_avg_pool": "avg", "global_max_pool": "max"}


@keras.saving.register_keras_serializable(package="lenet_blocks")
class LeNetBackbone(keras_hub.models.Backbone):
    """The convolution blocks of a LeNet preset as a keras-hub Backbone.

    The graph is `build_lenet(lenet_preset, include_top=False, ...)`'s: the same layers with
    the same names, so weights move between the two by layer name.

    Args:
        lenet_preset: str. A preset of `lenet_blocks.list_presets()`.
        image_shape: `(height, width, channels)`; height and width may be `None` (any size
            the blocks accept). Default: the preset's input shape.
        architecture: optional dict of `build_lenet` architecture arguments overriding the
            preset's (`filters`, `kernel_size`, `padding`, `convolutions`, `block_pooling`,
            `pool_size`, `activation`, `batch_norm`, `include_rescaling`, `pooling`).
        **kwargs: `keras_hub.models.Backbone` arguments (`name`, `dtype`).

    Example:
    >>> LeNetBackbone("notebook", image_shape=(None, None, 1)).output_shape
    (None, None, None, 16)
    """

    def __init__(self, lenet_preset="notebook", image_shape=None, architecture=None, **kwargs):
        architecture = dict(architecture or {})
        if image_shape is not None:
            architecture["input_shape"] = tuple(image_shape)
        features = build_lenet(lenet_preset, include_top=False, **architecture)
        super().__init__(inputs=features.input, outputs=features.output, **kwargs)
        self.lenet_preset = lenet_preset
        self.image_shape = tuple(features.input_shape[1:])
        self.architecture = {k: v for k, v in architecture.items() if k != "input_shape"}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "lenet_preset": self.lenet_preset,
                "image_shape": list(self.image_shape),
                "architecture": self.architecture,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="lenet_blocks")
class LeNetImageConverter(keras_hub.layers.ImageConverter):
    """Resizes images to the LeNet's input size, padding to the aspect ratio; keeps 0-255.

    Example:
    >>> import numpy as np
    >>> converter = LeNetImageConverter(image_size=(28, 28))
    >>> tuple(converter(np.zeros((2, 56, 40, 1), "float32")).shape)
    (2, 28, 28, 1)
    """

    backbone_cls = LeNetBackbone

    def __init__(self, image_size=(28, 28), pad_to_aspect_ratio=True, **kwargs):
        kwargs.setdefault("crop_to_aspect_ratio", False)
        super().__init__(image_size=image_size, pad_to_aspect_ratio=pad_to_aspect_ratio, **kwargs)


@keras.saving.register_keras_serializable(package="lenet_blocks")
class LeNetImageClassifierPreprocessor(keras_hub.models.ImageClassifierPreprocessor):
    """keras-hub's image classifier preprocessor with `LeNetImageConverter`."""

    backbone_cls = LeNetBackbone
    image_converter_cls = LeNetImageConverter


@keras.saving.register_keras_serializable(package="lenet_blocks")
class LeNetImageClassifier(keras_hub.models.ImageClassifier):
    """A LeNet classifier as a keras-hub ImageClassifier task: backbone, then the preset's head.

    The head is the one `build_lenet` puts after the backbone (its dense layers, or LeNet-5's
    F6 and RBF output), so the task predicts as the `build_lenet` model with the same weights.

    Args:
        backbone: a `LeNetBackbone` (with a static image size).
        num_classes: int. Number of classes.
        preprocessor: `None` or a `LeNetImageClassifierPreprocessor`.
        head: optional dict of `build_lenet` head arguments overriding the preset's (`units`,
            `classifier_activation`, `dropout`).
        class_names: optional sequence of `num_classes` names (the head carries them).
        **kwargs: `keras_hub.models.Task` arguments (`name`, `compile`, ...).

    Example:
    >>> task = LeNetImageClassifier(LeNetBackbone("notebook"), num_classes=10)
    >>> task.output_shape, task.count_params()
    ((None, 10), 44426)
    """

    backbone_cls = LeNetBackbone
    preprocessor_cls = LeNetImageClassifierPreprocessor

    def __init__(
        self, backbone, num_classes=10, preprocessor=None, head=None, class_names=None, **kwargs
    ):
        head = dict(head or {})
        full = build_lenet(
            backbone.lenet_preset,
            input_shape=backbone.image_shape,
            classes=num_classes,
            class_names=class_names,
            **backbone.architecture,
            **head,
        )
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.head_layers = full.layers[len(backbone.layers) :]
        inputs = backbone.input
        x = backbone(inputs)
        for layer in self.head_layers:
            x = layer(x)
        keras_hub.models.Task.__init__(self, inputs=inputs, outputs=x, **kwargs)
        self.num_classes = num_classes
        self.head = head
        self.class_names = None if class_names is None else list(class_names)

    def compile(self, optimizer="auto", loss="auto", *, metrics="auto", **kwargs):
        """keras-hub's `compile`, with the loss and metric that fit the head's output.

        `loss="auto"` / `metrics="auto"` take `lenet_blocks.objectives.loss_and_metrics`:
        cross-entropy on the outputs of a softmax or sigmoid head (keras-hub's default expects
        logits), LeNet-5's RBF loss for its distances.
        """
        if self.built and (loss == "auto" or metrics == "auto"):
            from lenet_blocks.objectives import loss_and_metrics

            default_loss, default_metrics = loss_and_metrics(self)
            loss = default_loss if loss == "auto" else loss
            metrics = default_metrics if metrics == "auto" else metrics
        super().compile(optimizer=optimizer, loss=loss, metrics=metrics, **kwargs)

    def get_config(self):
        config = keras_hub.models.Task.get_config(self)
        config.update(
            {"num_classes": self.num_classes, "head": self.head, "class_names": self.class_names}
        )
        return config


def classifier_from_model(model: keras.Model) -> LeNetImageClassifier:
    """The keras-hub classifier of a `build_lenet` model, with its weights and preprocessor.

    Args:
        model: a `keras.Model` built by `build_lenet` with its head (any preset, including
            `lenet5_1998`), e.g. a trained model loaded with `lenet_blocks.load_model`.

    Raises:
        ValueError: if `model` is not a `build_lenet` classifier.

    Example:
    >>> from lenet_blocks import build_lenet
    >>> classifier_from_model(build_lenet("d2l")).backbone.architecture["block_pooling"]
    'avg'
    """
    names = {layer.name for layer in model.layers}
    shape = tuple(model.input_shape[1:])
    if names >= _LENET5_LAYERS:
        backbone = LeNetBackbone("lenet5_1998", image_shape=shape)
        classes = model.get_layer("rbf").units
        head, class_names = {}, model.get_layer("rbf").get_config().get("class_names")
    else:
        blocks = [layer for layer in model.layers if isinstance(layer, ConvBlock)]
        heads = [layer for layer in model.layers if isinstance(layer, ClassifierHead)]
        if not blocks or len(heads) != 1:
            raise ValueError(
                "`model` must be a classifier built by `build_lenet` (ConvBlock layers and a "
                f"ClassifierHead). Received: a model with layers {sorted(names)}"
            )
        first = blocks[0]
        pools = [_GLOBAL_POOLS[name] for name in names if name in _GLOBAL_POOLS]
        architecture = {
            "filters": [block.filters for block in blocks],
            "kernel_size": [block.kernel_size for block in blocks],
            "padding": [block.padding for block in blocks],
            "convolutions": [block.convolutions for block in blocks],
            "block_pooling": first.pooling,
            "pool_size": first.pool_size,
            "activation": first.activation,
            "batch_norm": first.batch_norm,
            "include_rescaling": "rescaling" in names,
            "pooling": pools[0] if pools else None,
        }
        backbone = LeNetBackbone("notebook", image_shape=shape, architecture=architecture)
        config = heads[0].get_config()
        head = {k: config[k] for k in ("units", "classifier_activation", "dropout")}
        classes, class_names = config["classes"], config["class_names"]
    converter = LeNetImageConverter(image_size=shape[:2])
    classifier = LeNetImageClassifier(
        backbone,
        num_classes=classes,
        preprocessor=LeNetImageClassifierPreprocessor(converter),
        head=head,
        class_names=class_names,
    )
    for layer in [*backbone.layers, *classifier.head_layers]:
        if layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    return classifier


def save_preset(model: keras.Model | str | os.PathLike, directory: str | os.PathLike) -> None:
    """Writes a `build_lenet` classifier as a keras-hub preset directory (task and weights).

    Args:
        model: a `build_lenet` classifier, or the path of a `.keras` file of one.
        directory: the preset directory to write (created; keras-hub's `save_to_preset`).

    Example:
    >>> import tempfile
    >>> from lenet_blocks import build_lenet
    >>> directory = Path(tempfile.mkdtemp())
    >>> save_preset(build_lenet("lenet5_1998"), directory)
    >>> sorted(path.name for path in directory.glob("*.json"))
    ['config.json', 'image_converter.json', 'metadata.json', 'preprocessor.json', 'task.json']
    """
    if not isinstance(model, keras.Model):
        from lenet_blocks.saving import load_model

        model = load_model(model, compile=False)
    classifier_from_model(model).save_to_preset(str(Path(directory)))
