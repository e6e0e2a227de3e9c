"""Registered Keras layers of `lenet_blocks` (package name `lenet_blocks` in `.keras` files)."""

from lenet_blocks.layers.classifier_head import ClassifierHead
from lenet_blocks.layers.conv_block import ConvBlock

__all__ = ["ClassifierHead", "ConvBlock"]
