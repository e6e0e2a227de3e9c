"""Repairs jax2onnx's max pooling, which ONNX Runtime cannot run.

jax2onnx 0.17 writes JAX's `reduce_window` max over an NHWC tensor as two `Unsqueeze` (to a
6-d tensor), a `MaxPool` whose four "spatial" axes are batch, height, width and channels
(kernel `[1, kh, kw, 1]`), and a `Squeeze`. ONNX Runtime runs pools of 1-3 spatial axes only
("Unsupported pooling size"). `repair_max_pools` replaces each such chain with the equivalent
`Transpose` to NCHW, a 2-d `MaxPool` and a `Transpose` back, and leaves the rest of the graph
as it is (less the initializers only the removed nodes used). A model without the pattern is
returned unchanged.

Example:
>>> import onnx
>>> from onnx import TensorProto, helper
>>> axes = helper.make_tensor("axes", TensorProto.INT64, [1], [0])
>>> nodes = [
...     helper.make_node("Unsqueeze", ["x", "axes"], ["u0"]),
...     helper.make_node("Unsqueeze", ["u0", "axes"], ["u1"]),
...     helper.make_node("MaxPool", ["u1"], ["p"], kernel_shape=[1, 2, 2, 1],
...                      strides=[1, 2, 2, 1]),
...     helper.make_node("Squeeze", ["p", "axes2"], ["y"]),
... ]
>>> axes2 = helper.make_tensor("axes2", TensorProto.INT64, [2], [0, 1])
>>> graph = helper.make_graph(
...     nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 3])],
...     [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 2, 3])],
...     initializer=[axes, axes2])
>>> repaired = repair_max_pools(helper.make_model(graph))
>>> [node.op_type for node in repaired.graph.node]
['Transpose', 'MaxPool', 'Transpose']
"""

from __future__ import annotations

__all__ = ["repair_max_pools"]

_NHWC_TO_NCHW = [0, 3, 1, 2]
_NCHW_TO_NHWC = [0, 2, 3, 1]


def repair_max_pools(model):
    """`model` (an `onnx.ModelProto`) with jax2onnx's 6-d max pools made 2-d (in place).

    Args:
        model: an `onnx.ModelProto`.

    Returns:
        The same `model`, repaired.
    """
    from onnx import helper

    graph = model.graph
    producers = {output: node for node in graph.node for output in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    replaced, new_nodes = set(), {}
    for pool in graph.node:
        chain = _pool_chain(pool, producers, consumers)
        if chain is None:
            continue
        first, second, squeeze = chain
        attributes = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
        spatial = {"kernel_shape": attributes["kernel_shape"][1:3]}
        spatial["strides"] = attributes.get("strides", [1, 1, 1, 1])[1:3]
        if "dilations" in attributes:
            spatial["dilations"] = attributes["dilations"][1:3]
        if "pads" in attributes:
            pads = attributes["pads"]  # begins of the 4 axes, then their ends
            spatial["pads"] = [pads[1], pads[2], pads[5], pads[6]]
        for name in ("auto_pad", "ceil_mode", "storage_order"):
            if name in attributes:
                spatial[name] = attributes[name]
        source, target = first.input[0], squeeze.output[0]
        nchw, pooled = f"{pool.output[0]}_nchw_in", f"{pool.output[0]}_nchw_out"
        new_nodes[id(pool)] = [
            helper.make_node("Transpose", [source], [nchw], perm=_NHWC_TO_NCHW),
            helper.make_node("MaxPool", [nchw], [pooled], **spatial),
            helper.make_node("Transpose", [pooled], [target], perm=_NCHW_TO_NHWC),
        ]
        replaced |= {id(first), id(second), id(squeeze)}
    if not new_nodes:
        return model
    nodes = []
    for node in graph.node:
        if id(node) in new_nodes:
            nodes.extend(new_nodes[id(node)])
        elif id(node) not in replaced:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {name for node in nodes for name in node.input}
    kept = [tensor for tensor in graph.initializer if tensor.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)  # the removed nodes' axes
    return model


def _pool_chain(pool, producers, consumers):
    """`(Unsqueeze, Unsqueeze, Squeeze)` around a jax2onnx 4-axis `MaxPool`, else None."""
    if pool.op_type != "MaxPool":
        return None
    kernel = next((a.ints for a in pool.attribute if a.name == "kernel_shape"), [])
    strides = next((a.ints for a in pool.attribute if a.name == "strides"), [1, 1, 1, 1])
    if len(kernel) != 4 or {kernel[0], kernel[3], strides[0], strides[3]} != {1}:
        return None
    second = producers.get(pool.input[0])
    first = producers.get(second.input[0]) if second is not None else None
    users = consumers.get(pool.output[0], [])
    if first is None or second.op_type != "Unsqueeze" or first.op_type != "Unsqueeze":
        return None
    if len(users) != 1 or users[0].op_type != "Squeeze":
        return None
    if len(consumers.get(first.output[0], [])) != 1:
        return None
    if len(consumers.get(second.output[0], [])) != 1:
        return None
    return first, second, users[0]
