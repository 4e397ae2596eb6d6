#!/usr/bin/python3
"""Writes the sample models in models/ and their seeded sample data:

    /usr/bin/python3 tools/gen_models.py [OUT_DIR]      (default: models/)

Needs Debian's python3-torch, python3-onnx and python3-numpy (/usr/bin/python3).
Deterministic: every run writes the same models and data.

Keras JSON (the layouts Keras writes with model.to_json(indent=2)):
  cnn_channels_last.json     Keras 3.10: Conv2D-BatchNormalization-ReLU-MaxPooling2D,
                             Conv2D-BatchNormalization-ReLU-GlobalAveragePooling2D,
                             Dense(3); input [N, 8, 8, 3], seeded initializers
  seq_time_distributed.json  tf.keras 2.15: Dense(16) on every step,
                             TimeDistributed(BatchNormalization), ReLU, Flatten,
                             Dense(3); input [N, 6, 8]. tf.keras 2 rather than
                             Keras 3 because nnplug's TimeDistributed takes the
                             statistics over batch and time together, as tf.keras
                             2 does (Keras 3 calls the layer once per step)
ONNX exported by PyTorch 1.13 (torch.onnx.export of the module in eval mode,
training=TrainingMode.PRESERVE, do_constant_folding=False so that the
BatchNormalization nodes stay, batch axis "N"):
  cnn_channels_first.onnx    the CNN above in channels_first (NCHW), opset 15
  mlp_bn_opset9.onnx         Linear-BatchNorm1d-ReLU x2 - Linear, opset 9 (IR 4;
                             BatchNormalization without training_mode, as old
                             exporters write it)
  mlp_bn_opset15.onnx        the same MLP and weights at opset 15 (IR 8;
                             BatchNormalization with training_mode=0)
The PyTorch weights are torch's initialization under torch.manual_seed, with
gamma ~ U(0.5, 1.5) and beta ~ N(0, 0.1^2); the running statistics are those of
one training-mode pass over the sample data, so inference is well scaled.

Sample data in OUT_DIR/data/ (float32 inputs, int64 class labels):
  cnn_channels_last_x.npy [64, 8, 8, 3], cnn_channels_first_x.npy (the same
  images, [64, 3, 8, 8]), cnn_y.npy [64]: N(0, 1) noise plus one of 3 fixed
  random patterns, the pattern's index being the label;
  seq_x.npy [64, 6, 8], seq_y.npy [64]; mlp_x.npy [64, 10], mlp_y.npy [64]: the
  same kind of data.
models/spirals.json and models/data/spirals_{x,y}.npy are not written here:
spirals.json is the model `nnplug demo` trains (compiled into the command), and
`nnplug demo --data models/data` writes its data."""
import io
import json
import os
import sys

import numpy as np

SAMPLES = 64
CLASSES = 3


# ---- Keras JSON -------------------------------------------------------------

def k3_dtype():
    return {"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"},
            "registered_name": None}


def k3_init(cls, **cfg):
    return {"module": "keras.initializers", "class_name": cls, "config": cfg,
            "registered_name": None}


def k3_layer(cls, name, input_shape, **cfg):
    config = {"name": name, "trainable": True, "dtype": k3_dtype()}
    config.update(cfg)
    return {"module": "keras.layers", "class_name": cls, "config": config,
            "registered_name": None, "build_config": {"input_shape": input_shape}}


def k3_bn(name, input_shape):
    # Keras 3 also writes "synchronized": false, which nnplug refuses today.
    return k3_layer("BatchNormalization", name, input_shape, axis=-1, momentum=0.99,
                    epsilon=0.001, center=True, scale=True,
                    beta_initializer=k3_init("Zeros"), gamma_initializer=k3_init("Ones"),
                    moving_mean_initializer=k3_init("Zeros"),
                    moving_variance_initializer=k3_init("Ones"), beta_regularizer=None,
                    gamma_regularizer=None, beta_constraint=None, gamma_constraint=None)


def k3_conv(name, filters, seed, input_shape):
    return k3_layer("Conv2D", name, input_shape, filters=filters, kernel_size=[3, 3],
                    strides=[1, 1], padding="same", data_format="channels_last",
                    dilation_rate=[1, 1], groups=1, activation="linear", use_bias=False,
                    kernel_initializer=k3_init("GlorotUniform", seed=seed),
                    bias_initializer=k3_init("Zeros"), kernel_regularizer=None,
                    bias_regularizer=None, activity_regularizer=None, kernel_constraint=None,
                    bias_constraint=None)


def k3_relu(name, input_shape):
    return k3_layer("ReLU", name, input_shape, max_value=None, negative_slope=0.0,
                    threshold=0.0)


def cnn_channels_last():
    s0, s1, s2 = [None, 8, 8, 3], [None, 8, 8, 8], [None, 4, 4, 16]
    layers = [
        {"module": "keras.layers", "class_name": "InputLayer",
         "config": {"batch_shape": s0, "dtype": "float32", "sparse": False, "ragged": False,
                    "name": "image", "optional": False}, "registered_name": None},
        k3_conv("conv_1", 8, 11, s0),
        k3_bn("bn_1", s1),
        k3_relu("relu_1", s1),
        k3_layer("MaxPooling2D", "pool_1", s1, pool_size=[2, 2], padding="valid",
                 strides=[2, 2], data_format="channels_last"),
        k3_conv("conv_2", 16, 12, [None, 4, 4, 8]),
        k3_bn("bn_2", s2),
        k3_relu("relu_2", s2),
        k3_layer("GlobalAveragePooling2D", "pool_2", s2, data_format="channels_last",
                 keepdims=False),
        k3_layer("Dense", "logits", [None, 16], units=CLASSES, activation="linear",
                 use_bias=True, kernel_initializer=k3_init("GlorotUniform", seed=13),
                 bias_initializer=k3_init("Zeros"), kernel_regularizer=None,
                 bias_regularizer=None, kernel_constraint=None, bias_constraint=None),
    ]
    return {"module": "keras", "class_name": "Sequential",
            "config": {"name": "cnn_channels_last", "trainable": True, "dtype": k3_dtype(),
                       "layers": layers, "build_input_shape": s0},
            "registered_name": None, "build_config": {"input_shape": s0}}


def k2_init(cls, **cfg):
    return {"class_name": cls, "config": cfg}


def k2_dense(name, units, seed):
    return {"class_name": "Dense", "config": {
        "name": name, "trainable": True, "dtype": "float32", "units": units,
        "activation": "linear", "use_bias": True,
        "kernel_initializer": k2_init("GlorotUniform", seed=seed),
        "bias_initializer": k2_init("Zeros"), "kernel_regularizer": None,
        "bias_regularizer": None, "activity_regularizer": None, "kernel_constraint": None,
        "bias_constraint": None}}


def seq_time_distributed():
    bn = {"class_name": "BatchNormalization", "config": {
        "name": "bn", "trainable": True, "dtype": "float32", "axis": -1, "momentum": 0.99,
        "epsilon": 0.001, "center": True, "scale": True,
        "beta_initializer": k2_init("Zeros"), "gamma_initializer": k2_init("Ones"),
        "moving_mean_initializer": k2_init("Zeros"),
        "moving_variance_initializer": k2_init("Ones"), "beta_regularizer": None,
        "gamma_regularizer": None, "beta_constraint": None, "gamma_constraint": None}}
    layers = [
        {"class_name": "InputLayer", "config": {
            "batch_input_shape": [None, 6, 8], "dtype": "float32", "sparse": False,
            "ragged": False, "name": "sequence"}},
        k2_dense("dense", 16, 21),
        {"class_name": "TimeDistributed", "config": {
            "name": "td_bn", "trainable": True, "dtype": "float32", "layer": bn}},
        {"class_name": "ReLU", "config": {
            "name": "relu", "trainable": True, "dtype": "float32", "max_value": None,
            "negative_slope": 0.0, "threshold": 0.0}},
        {"class_name": "Flatten", "config": {
            "name": "flatten", "trainable": True, "dtype": "float32",
            "data_format": "channels_last"}},
        k2_dense("logits", CLASSES, 22),
    ]
    return {"class_name": "Sequential", "config": {"name": "seq_time_distributed",
                                                   "layers": layers},
            "keras_version": "2.15.0", "backend": "tensorflow"}


# ---- data -------------------------------------------------------------------

def patterned(rng, shape):
    """N(0, 1) noise plus one of CLASSES fixed N(0, 1) patterns; the labels."""
    patterns = rng.normal(0, 1, (CLASSES,) + shape)
    y = np.arange(SAMPLES) % CLASSES
    rng.shuffle(y)
    x = rng.normal(0, 1, (SAMPLES,) + shape) + patterns[y]
    return x.astype(np.float32), y.astype(np.int64)


# ---- PyTorch exports --------------------------------------------------------

def torch_models():
    import torch
    from torch import nn

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            # Keras's BatchNormalization defaults: epsilon 1e-3, momentum 0.99
            self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8, eps=1e-3, momentum=0.01)
            self.pool1 = nn.MaxPool2d(2)
            self.conv2 = nn.Conv2d(8, 16, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(16, eps=1e-3, momentum=0.01)
            self.pool2 = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, CLASSES)

        def forward(self, x):
            x = self.pool1(torch.relu(self.bn1(self.conv1(x))))
            x = self.pool2(torch.relu(self.bn2(self.conv2(x))))
            return self.fc(torch.flatten(x, 1))

    def mlp():
        return nn.Sequential(nn.Linear(10, 32), nn.BatchNorm1d(32), nn.ReLU(),
                             nn.Linear(32, 32), nn.BatchNorm1d(32), nn.ReLU(),
                             nn.Linear(32, CLASSES))

    def prepare(model, x):
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)
            # running statistics of one training-mode pass (momentum None: the
            # cumulative average, here the batch's own statistics)
            saved = {}
            for m in model.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    saved[m] = m.momentum
                    m.momentum = None
            model.train()(torch.from_numpy(x))
            for m, mom in saved.items():
                m.momentum = mom
        return model.eval()

    def export(model, x, opset):
        f = io.BytesIO()
        torch.onnx.export(model, torch.from_numpy(x[:4]), f, opset_version=opset,
                          training=torch.onnx.TrainingMode.PRESERVE,
                          do_constant_folding=False, input_names=["input"],
                          output_names=["logits"],
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        return f.getvalue()

    return torch, CNN, mlp, prepare, export


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "models")
    data = os.path.join(out, "data")
    os.makedirs(data, exist_ok=True)

    def write(name, blob):
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
        print("%s/%s: %d bytes" % (out, name, len(blob)))

    def save(name, arr):
        np.save(os.path.join(data, name), arr)

    write("cnn_channels_last.json", (json.dumps(cnn_channels_last(), indent=2) + "\n").encode())
    write("seq_time_distributed.json",
          (json.dumps(seq_time_distributed(), indent=2) + "\n").encode())

    rng = np.random.RandomState(20250101)
    x_img, y_img = patterned(rng, (8, 8, 3))
    save("cnn_channels_last_x.npy", x_img)
    save("cnn_channels_first_x.npy", np.ascontiguousarray(x_img.transpose(0, 3, 1, 2)))
    save("cnn_y.npy", y_img)
    x_seq, y_seq = patterned(rng, (6, 8))
    save("seq_x.npy", x_seq)
    save("seq_y.npy", y_seq)
    x_mlp, y_mlp = patterned(rng, (10,))
    save("mlp_x.npy", x_mlp)
    save("mlp_y.npy", y_mlp)

    torch, CNN, mlp, prepare, export = torch_models()
    torch.manual_seed(1)
    cnn = prepare(CNN(), np.ascontiguousarray(x_img.transpose(0, 3, 1, 2)))
    write("cnn_channels_first.onnx", export(cnn, np.ascontiguousarray(
        x_img.transpose(0, 3, 1, 2)), 15))
    torch.manual_seed(2)
    net = prepare(mlp(), x_mlp)
    write("mlp_bn_opset9.onnx", export(net, x_mlp, 9))
    write("mlp_bn_opset15.onnx", export(net, x_mlp, 15))


if __name__ == "__main__":
    main()
