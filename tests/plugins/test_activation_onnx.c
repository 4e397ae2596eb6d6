/* ONNX import of every core layer kind against numpy references: the
 * models are written at test time with the onnx package's helper (foreign
 * files, with none of nnplug's metadata), and their expected outputs are
 * computed in float64 numpy from the ONNX operator definitions. Covers Conv
 * pads / auto_pad / dilations / group, Gemm transB / alpha / beta, MaxPool,
 * AveragePool count_include_pad and SAME_UPPER, GlobalAveragePool + Flatten,
 * Softmax at opsets 11 and 13, Relu / LeakyRelu / Elu, Reshape with 0 and
 * -1, Transpose, Dropout, Add; and the ops kinds list through the
 * "nnp.onnx_ops" extension (MatMul, Tanh, Clip, HardSigmoid, Softplus,
 * LogSoftmax, Sum), which are skipped while the registry does not serve
 * them. Skipped as a whole when /usr/bin/python3 lacks onnx or numpy. */
#include "test_activation_kit.h"

#include <jansson.h>
#include <unistd.h>

TestSuite(layers_onnx, .init = kit_setup, .fini = kit_teardown, .timeout = 300);

static const char generator[] =
    "import json, os, sys\n"
    "import numpy as np\n"
    "import onnx\n"
    "from onnx import helper, TensorProto, numpy_helper\n"
    "\n"
    "out = sys.argv[1]\n"
    "rng = np.random.RandomState(7)\n"
    "cases = []\n"
    "\n"
    "\n"
    "def f32(a):\n"
    "    return np.asarray(a, dtype=np.float32)\n"
    "\n"
    "\n"
    "def save(name, nodes, inits, x, y, opset, needs=()):\n"
    "    d = os.path.join(out, name)\n"
    "    os.makedirs(d, exist_ok=True)\n"
    "    g = helper.make_graph(\n"
    "        nodes, name,\n"
    "        [helper.make_tensor_value_info(\"x\", TensorProto.FLOAT, list(x.shape))],\n"
    "        [helper.make_tensor_value_info(\"y\", TensorProto.FLOAT, list(y.shape))],\n"
    "        [numpy_helper.from_array(v, k) for k, v in inits.items()])\n"
    "    m = helper.make_model(g, opset_imports=[helper.make_opsetid(\"\", opset)])\n"
    "    m.ir_version = 7 if opset <= 14 else 8\n"
    "    onnx.checker.check_model(m)\n"
    "    onnx.save(m, os.path.join(d, \"model.onnx\"))\n"
    "    np.save(os.path.join(d, \"x.npy\"), f32(x))\n"
    "    np.save(os.path.join(d, \"y.npy\"), y.astype(np.float64))\n"
    "    cases.append({\"name\": name, \"needs\": list(needs)})\n"
    "\n"
    "\n"
    "def conv_ref(x, w, b, strides, pads, dil, group):\n"
    "    N, C, H, W = x.shape\n"
    "    M, Cg, kh, kw = w.shape\n"
    "    xp = np.zeros((N, C, H + pads[0] + pads[2], W + pads[1] + pads[3]))\n"
    "    xp[:, :, pads[0]:pads[0] + H, pads[1]:pads[1] + W] = x\n"
    "    ekh, ekw = (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1\n"
    "    OH = (xp.shape[2] - ekh) // strides[0] + 1\n"
    "    OW = (xp.shape[3] - ekw) // strides[1] + 1\n"
    "    y = np.zeros((N, M, OH, OW))\n"
    "    Mg = M // group\n"
    "    for m in range(M):\n"
    "        g = m // Mg\n"
    "        for oh in range(OH):\n"
    "            for ow in range(OW):\n"
    "                h0, w0 = oh * strides[0], ow * strides[1]\n"
    "                patch = xp[:, g * Cg:(g + 1) * Cg, h0:h0 + ekh:dil[0], w0:w0 + ekw:dil[1]]\n"
    "                y[:, m, oh, ow] = (patch * w[m]).sum(axis=(1, 2, 3)) + (b[m] if b is not None else 0)\n"
    "    return y\n"
    "\n"
    "\n"
    "def same_upper(n, k, s, d=1):\n"
    "    out = -(-n // s)\n"
    "    total = max((out - 1) * s + (k - 1) * d + 1 - n, 0)\n"
    "    return total // 2, total - total // 2\n"
    "\n"
    "\n"
    "def pool_ref(x, k, s, pads, op, include_pad=False):\n"
    "    N, C, H, W = x.shape\n"
    "    OH = (H + pads[0] + pads[2] - k[0]) // s[0] + 1\n"
    "    OW = (W + pads[1] + pads[3] - k[1]) // s[1] + 1\n"
    "    y = np.zeros((N, C, OH, OW))\n"
    "    for oh in range(OH):\n"
    "        for ow in range(OW):\n"
    "            h0, w0 = oh * s[0] - pads[0], ow * s[1] - pads[1]\n"
    "            hs, ws = max(h0, 0), max(w0, 0)\n"
    "            he, we = min(h0 + k[0], H), min(w0 + k[1], W)\n"
    "            win = x[:, :, hs:he, ws:we]\n"
    "            if op == \"max\":\n"
    "                y[:, :, oh, ow] = win.max(axis=(2, 3))\n"
    "            else:\n"
    "                cnt = k[0] * k[1] if include_pad else (he - hs) * (we - ws)\n"
    "                y[:, :, oh, ow] = win.sum(axis=(2, 3)) / cnt\n"
    "    return y\n"
    "\n"
    "\n"
    "x4 = rng.randn(2, 4, 9, 8)\n"
    "\n"
    "# Conv: explicit pads that are neither valid nor same (stride 2)\n"
    "w = rng.randn(6, 4, 3, 3) * 0.3; b = rng.randn(6) * 0.1\n"
    "save(\"conv_pads\", [helper.make_node(\"Conv\", [\"x\", \"w\", \"b\"], [\"y\"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 2, 1])],\n"
    "     {\"w\": f32(w), \"b\": f32(b)}, x4, conv_ref(x4, w, b, [2, 2], [1, 0, 2, 1], [1, 1], 1), 13)\n"
    "# Conv: SAME_UPPER, stride 2, even kernel, groups\n"
    "w = rng.randn(6, 2, 4, 2) * 0.3\n"
    "ph, pw = same_upper(9, 4, 2), same_upper(8, 2, 2)\n"
    "save(\"conv_same_upper\", [helper.make_node(\"Conv\", [\"x\", \"w\"], [\"y\"], auto_pad=\"SAME_UPPER\", strides=[2, 2], group=2)],\n"
    "     {\"w\": f32(w)}, x4, conv_ref(x4, w, None, [2, 2], [ph[0], pw[0], ph[1], pw[1]], [1, 1], 2), 13)\n"
    "# Conv: SAME_LOWER stride 1 even kernel (the odd pixel before)\n"
    "w = rng.randn(3, 4, 2, 2) * 0.3\n"
    "save(\"conv_same_lower\", [helper.make_node(\"Conv\", [\"x\", \"w\"], [\"y\"], auto_pad=\"SAME_LOWER\")],\n"
    "     {\"w\": f32(w)}, x4, conv_ref(x4, w, None, [1, 1], [1, 1, 0, 0], [1, 1], 1), 13)\n"
    "# Conv: dilation 2 with symmetric pads 2 (Keras 'same' at stride 1)\n"
    "w = rng.randn(5, 4, 3, 3) * 0.3; b = rng.randn(5) * 0.1\n"
    "save(\"conv_dilated\", [helper.make_node(\"Conv\", [\"x\", \"w\", \"b\"], [\"y\"], dilations=[2, 2], pads=[2, 2, 2, 2])],\n"
    "     {\"w\": f32(w), \"b\": f32(b)}, x4, conv_ref(x4, w, b, [1, 1], [2, 2, 2, 2], [2, 2], 1), 11)\n"
    "\n"
    "# Gemm: PyTorch Linear layout (transB=1) with alpha, beta and C [1, units]\n"
    "x2 = rng.randn(5, 7)\n"
    "B = rng.randn(3, 7); C = rng.randn(1, 3)\n"
    "save(\"gemm_transb\", [helper.make_node(\"Gemm\", [\"x\", \"B\", \"C\"], [\"y\"], transB=1, alpha=0.5, beta=2.0)],\n"
    "     {\"B\": f32(B), \"C\": f32(C)}, x2, 0.5 * x2 @ B.T + 2.0 * C, 13)\n"
    "B = rng.randn(7, 4)\n"
    "save(\"gemm_nobias\", [helper.make_node(\"Gemm\", [\"x\", \"B\"], [\"y\"])], {\"B\": f32(B)}, x2, x2 @ B, 13)\n"
    "\n"
    "# pooling\n"
    "save(\"maxpool_pads\", [helper.make_node(\"MaxPool\", [\"x\"], [\"y\"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])],\n"
    "     {}, x4, pool_ref(x4, [3, 3], [2, 2], [1, 1, 1, 1], \"max\"), 13)\n"
    "save(\"avgpool_include_pad\", [helper.make_node(\"AveragePool\", [\"x\"], [\"y\"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], count_include_pad=1)],\n"
    "     {}, x4, pool_ref(x4, [3, 3], [1, 1], [1, 1, 1, 1], \"avg\", True), 13)\n"
    "ph, pw = same_upper(9, 2, 2), same_upper(8, 2, 2)\n"
    "save(\"avgpool_same_upper\", [helper.make_node(\"AveragePool\", [\"x\"], [\"y\"], kernel_shape=[2, 2], strides=[2, 2], auto_pad=\"SAME_UPPER\")],\n"
    "     {}, x4, pool_ref(x4, [2, 2], [2, 2], [ph[0], pw[0], ph[1], pw[1]], \"avg\"), 13)\n"
    "save(\"gap_flatten\", [helper.make_node(\"GlobalAveragePool\", [\"x\"], [\"g\"]), helper.make_node(\"Flatten\", [\"g\"], [\"y\"], axis=1)],\n"
    "     {}, x4, x4.mean(axis=(2, 3)), 13)\n"
    "save(\"gmp\", [helper.make_node(\"GlobalMaxPool\", [\"x\"], [\"y\"])], {}, x4, x4.max(axis=(2, 3), keepdims=True), 13)\n"
    "\n"
    "# activations\n"
    "def softmax(a, axis):\n"
    "    e = np.exp(a - a.max(axis=axis, keepdims=True))\n"
    "    return e / e.sum(axis=axis, keepdims=True)\n"
    "\n"
    "save(\"softmax_op11_2d\", [helper.make_node(\"Softmax\", [\"x\"], [\"y\"], axis=1)], {}, x2, softmax(x2, 1), 11)\n"
    "save(\"softmax_op13_axis1\", [helper.make_node(\"Softmax\", [\"x\"], [\"y\"], axis=1)], {}, x4, softmax(x4, 1), 13)\n"
    "save(\"leakyrelu\", [helper.make_node(\"LeakyRelu\", [\"x\"], [\"y\"], alpha=0.1)], {}, x4, np.where(x4 > 0, x4, 0.1 * x4), 13)\n"
    "save(\"elu\", [helper.make_node(\"Elu\", [\"x\"], [\"y\"], alpha=0.7)], {}, x4, np.where(x4 > 0, x4, 0.7 * np.expm1(x4)), 13)\n"
    "save(\"relu\", [helper.make_node(\"Relu\", [\"x\"], [\"y\"])], {}, x4, np.maximum(x4, 0), 13)\n"
    "\n"
    "# shape ops\n"
    "save(\"reshape_zero_minus1\", [helper.make_node(\"Reshape\", [\"x\", \"s\"], [\"y\"])], {\"s\": np.array([0, -1, 2], dtype=np.int64)},\n"
    "     x4, x4.reshape(2, -1, 2), 13)\n"
    "save(\"flatten\", [helper.make_node(\"Flatten\", [\"x\"], [\"y\"])], {}, x4, x4.reshape(2, -1), 13)\n"
    "save(\"transpose_nhwc\", [helper.make_node(\"Transpose\", [\"x\"], [\"y\"], perm=[0, 2, 3, 1])], {}, x4, x4.transpose(0, 2, 3, 1), 13)\n"
    "save(\"dropout_identity\", [helper.make_node(\"Dropout\", [\"x\", \"r\"], [\"y\"])], {\"r\": np.array(0.3, dtype=np.float32)}, x4, x4, 13)\n"
    "save(\"add_two_branches\", [helper.make_node(\"Relu\", [\"x\"], [\"a\"]), helper.make_node(\"LeakyRelu\", [\"x\"], [\"b\"], alpha=0.2),\n"
    "                          helper.make_node(\"Add\", [\"a\", \"b\"], [\"y\"])], {}, x4, np.maximum(x4, 0) + np.where(x4 > 0, x4, 0.2 * x4), 13)\n"
    "\n"
    "# ops served through the \"nnp.onnx_ops\" extension (need registry support)\n"
    "x3 = rng.randn(2, 3, 7)\n"
    "B = rng.randn(7, 4)\n"
    "save(\"matmul_3d\", [helper.make_node(\"MatMul\", [\"x\", \"B\"], [\"y\"])], {\"B\": f32(B)}, x3, x3 @ B, 13, [\"MatMul\"])\n"
    "save(\"tanh\", [helper.make_node(\"Tanh\", [\"x\"], [\"y\"])], {}, x4, np.tanh(x4), 13, [\"Tanh\"])\n"
    "save(\"clip_relu6\", [helper.make_node(\"Clip\", [\"x\", \"lo\", \"hi\"], [\"y\"])], {\"lo\": np.array(0, dtype=np.float32), \"hi\": np.array(1.5, dtype=np.float32)},\n"
    "     x4, np.clip(x4, 0, 1.5), 13, [\"Clip\"])\n"
    "save(\"hardsigmoid\", [helper.make_node(\"HardSigmoid\", [\"x\"], [\"y\"])], {}, x4, np.clip(0.2 * x4 + 0.5, 0, 1), 13, [\"HardSigmoid\"])\n"
    "save(\"softplus\", [helper.make_node(\"Softplus\", [\"x\"], [\"y\"])], {}, x4, np.log1p(np.exp(x4)), 13, [\"Softplus\"])\n"
    "save(\"logsoftmax\", [helper.make_node(\"LogSoftmax\", [\"x\"], [\"y\"], axis=-1)], {}, x4, np.log(softmax(x4, -1)), 13, [\"LogSoftmax\"])\n"
    "save(\"sum3\", [helper.make_node(\"Relu\", [\"x\"], [\"a\"]), helper.make_node(\"Sigmoid\", [\"x\"], [\"b\"]),\n"
    "              helper.make_node(\"Sum\", [\"a\", \"b\", \"x\"], [\"y\"])], {}, x4, np.maximum(x4, 0) + 1 / (1 + np.exp(-x4)) + x4, 13, [\"Sum\"])\n"
    "\n"
    "json.dump(cases, open(os.path.join(out, \"cases.json\"), \"w\"))\n"
    "print(len(cases))\n"
    "\n";

static void run_case(const char *dir, const char *name)
{
    char path[1200];
    nnp_error err = {0};
    nnp_model *m = NULL;
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    nnp_status st = nnp_onnx_load(kit_reg, path, NULL, &m, &err);
    cr_assert_eq(st, NNP_OK, "%s: %s", name, err.msg);
    nnp_tensor x;
    snprintf(path, sizeof path, "%s/%s/x.npy", dir, name);
    tu_load_f32(path, &x);
    const nnp_tensor *ins[1] = {&x};
    st = nnp_model_forward(m, ins, 1, NNP_MODE_INFER, &err);
    cr_assert_eq(st, NNP_OK, "%s: %s", name, err.msg);
    const nnp_tensor *y = nnp_model_output(m, 0);
    nnp_shape es;
    int64_t n;
    snprintf(path, sizeof path, "%s/%s/y.npy", dir, name);
    double *e = tu_load_f64(path, &es, &n);
    cr_assert(kit_same_shape(&y->shape, &es), "%s: output shape differs from numpy's", name);
    tu_assert_close_f32(name, y->data, e, n, 1e-4, 1e-5);
    free(e);
    nnp_tensor_free(&x);
    nnp_model_free(m);
}

Test(layers_onnx, foreign_models_match_numpy)
{
    if (system("/usr/bin/python3 -c 'import onnx, numpy' >/dev/null 2>&1") != 0)
        cr_skip_test("/usr/bin/python3 with onnx and numpy is not available");
    char dir[] = "/tmp/nnp_layers_onnx_XXXXXX";
    cr_assert(mkdtemp(dir), "mkdtemp failed");
    char cmd[256];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 - %s >/dev/null", dir);
    FILE *py = popen(cmd, "w");
    cr_assert(py);
    fputs(generator, py);
    cr_assert_eq(pclose(py), 0, "the case generator failed");

    char path[1200];
    snprintf(path, sizeof path, "%s/cases.json", dir);
    json_error_t je;
    json_t *cases = json_load_file(path, 0, &je);
    cr_assert(json_is_array(cases), "%s: %s", path, je.text);
    int ran = 0, waiting = 0;
    for (size_t i = 0; i < json_array_size(cases); i++) {
        const json_t *c = json_array_get(cases, i);
        const char *name = json_string_value(json_object_get(c, "name"));
        const json_t *needs = json_object_get(c, "needs");
        int served = 1;
        for (size_t k = 0; k < json_array_size(needs); k++)
            served = served && nnp_registry_find_onnx(kit_reg, "",
                                                      json_string_value(json_array_get(needs, k)),
                                                      13) != NULL;
        if (!served) {
            cr_log_info("%s: skipped, its op is not served by the registry (it needs the "
                        "nnp.onnx_ops extension lookup)", name);
            waiting++;
            continue;
        }
        run_case(dir, name);
        ran++;
    }
    cr_assert(ran >= 21, "only %d cases ran (%d waiting)", ran, waiting);
    json_decref(cases);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}
