#!/usr/bin/python3
"""Writes the small ONNX files test_batchnorm_onnx.c imports: one
BatchNormalization node per file, at the opsets and attribute spellings
that other exporters produce. Run with Debian's python3-onnx (1.12):
    /usr/bin/python3 gen_batchnorm_onnx.py
Weights are fixed: scale 1.5, B 0.5, mean 0.1*(c+1), var 2.0+c."""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

C = 3


def weights():
    c = np.arange(C, dtype=np.float32)
    vals = {"s": np.full(C, 1.5, np.float32), "b": np.full(C, 0.5, np.float32),
            "m": (0.1 * (c + 1)).astype(np.float32), "v": (2.0 + c).astype(np.float32)}
    return [numpy_helper.from_array(v, k) for k, v in vals.items()]


def save(name, opset, nodes, xshape, yshape):
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, xshape)]
    if opset < 9:
        # IR 3 lists every initializer among the graph inputs too
        inputs += [helper.make_tensor_value_info(k, TensorProto.FLOAT, [C]) for k in "sbmv"]
    g = helper.make_graph(nodes, name, inputs,
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, yshape)],
                          weights())
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="gen_batchnorm_onnx.py")
    m.ir_version = 3 if opset < 9 else 4
    onnx.checker.check_model(m)
    onnx.save(m, name + ".onnx")


def bn(attrs, x="x", y="y"):
    return helper.make_node("BatchNormalization", [x, "s", "b", "m", "v"], [y], name="bn0",
                            **attrs)


nchw = ["N", C, 4, 4]
save("opset1_consumed_inputs", 1, [bn({"is_test": 1, "consumed_inputs": [0, 0, 0, 1, 1]})],
     nchw, nchw)
save("opset6_is_test", 6, [bn({"is_test": 1, "epsilon": 1e-3})], nchw, nchw)
save("opset7_spatial1", 7, [bn({"spatial": 1, "epsilon": 1e-2, "momentum": 0.8})], nchw, nchw)
save("opset7_spatial0", 7, [bn({"spatial": 0})], nchw, nchw)
save("opset9_defaults", 9, [bn({})], nchw, nchw)
nhwc = ["N", 4, 4, C]
save("opset15_nhwc_transposed", 15,
     [helper.make_node("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
      bn({"epsilon": 1e-3, "momentum": 0.9}, "xt", "yt"),
      helper.make_node("Transpose", ["yt"], ["y"], perm=[0, 2, 3, 1])], nhwc, nhwc)
