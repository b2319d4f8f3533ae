"""The ONNX scoring graph of a trained autoencoder: preprocessing, the MLP's Gemm/Tanh layers
and the per-row error, so that scoring needs onnxruntime only."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

#: ONNX opset of the graph (ReduceMean still takes ``axes`` as an attribute here).
OPSET = 17
IR_VERSION = 8


def scoring_graph(
    names: tuple[str, ...],
    means: np.ndarray,
    inv_stds: np.ndarray,
    log_mask: np.ndarray,
    layers: list[tuple[np.ndarray, np.ndarray, bool]],
    *,
    keyed: bool,
    clip: float | None,
    deviation_weight: float,
) -> onnx.ModelProto:
    """The scoring graph: preprocessing, the MLP's Gemm/Tanh layers, the per-row error."""
    d = len(names)
    inits: list[TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(value, name))
        return name

    inputs = [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", d])]
    x = "features"
    if log_mask.any():
        nodes += [
            helper.make_node("Relu", [x], ["x_pos"]),
            helper.make_node("Add", ["x_pos", const("one", np.ones(1, np.float32))], ["x_1p"]),
            helper.make_node("Log", ["x_1p"], ["x_log"]),
            helper.make_node("Where", [const("log_mask", log_mask), "x_log", x], ["x_t"]),
        ]
        x = "x_t"
    if keyed:
        inputs.append(helper.make_tensor_value_info("key", TensorProto.INT64, ["N"]))
        nodes += [
            helper.make_node("Gather", [const("mean_table", means.astype(np.float32)), "key"],
                             ["mean"], axis=0),
            helper.make_node("Gather", [const("scale_table", inv_stds.astype(np.float32)), "key"],
                             ["scale"], axis=0),
        ]  # fmt: skip
        mean, scale = "mean", "scale"
    else:
        mean = const("mean", means[:1].astype(np.float32))
        scale = const("scale", inv_stds[:1].astype(np.float32))
    z = "z_raw" if clip is not None else "z"
    nodes += [
        helper.make_node("Sub", [x, mean], ["centred"]),
        helper.make_node("Mul", ["centred", scale], [z]),
    ]
    if clip is not None:
        bounds = [const("clip_min", np.float32(-clip)), const("clip_max", np.float32(clip))]
        nodes.append(helper.make_node("Clip", [z, *bounds], ["z"]))
    h = "z"
    for i, (w, b, hidden) in enumerate(layers):
        out = "reconstruction" if i == len(layers) - 1 else f"h{i}"
        gemm = f"{out}_lin" if hidden else out
        nodes.append(helper.make_node("Gemm", [h, const(f"w{i}", w), const(f"b{i}", b)], [gemm]))
        if hidden:
            nodes.append(helper.make_node("Tanh", [gemm], [out]))
        h = out
    error = "reconstruction_error" if deviation_weight else "error"
    nodes += [
        helper.make_node("Sub", ["z", "reconstruction"], ["residual"]),
        helper.make_node("Mul", ["residual", "residual"], ["squared"]),
        helper.make_node("ReduceMean", ["squared"], [error], axes=[1], keepdims=0),
    ]
    if deviation_weight:
        weight = const("deviation_weight", np.array([deviation_weight], np.float32))
        nodes += [
            helper.make_node("Mul", ["z", "z"], ["z_squared"]),
            helper.make_node("ReduceMean", ["z_squared"], ["deviation"], axes=[1], keepdims=0),
            helper.make_node("Mul", ["deviation", weight], ["weighted_deviation"]),
            helper.make_node("Add", [error, "weighted_deviation"], ["error"]),
        ]
    outputs = [
        helper.make_tensor_value_info("reconstruction", TensorProto.FLOAT, ["N", d]),
        helper.make_tensor_value_info("error", TensorProto.FLOAT, ["N"]),
    ]
    graph = helper.make_graph(nodes, "airis_autoencoder", inputs, outputs, inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="airis-mon",
        doc_string="Autoencoder: features -> reconstruction (standardised units), error per row",
    )
    model.ir_version = IR_VERSION
    return model
