"""Registered Keras layers of `lenet_blocks` (package name `lenet_blocks` in `.keras` files)."""

from lenet_blocks.layers.classifier_head import ClassifierHead
from lenet_blocks.layers.connection_table_conv import (
    LENET5_CONNECTION_TABLE,
    ConnectionTableConv2D,
)
from lenet_blocks.layers.conv_block import ConvBlock
from lenet_blocks.layers.rbf_output import RBFOutput
from lenet_blocks.layers.scaled_tanh import ScaledTanh, scaled_tanh
from lenet_blocks.layers.subsampling import Subsampling

__all__ = [
    "LENET5_CONNECTION_TABLE",
    "ClassifierHead",
    "ConnectionTableConv2D",
    "ConvBlock",
    "RBFOutput",
    "ScaledTanh",
    "Subsampling",
    "scaled_tanh",
]
