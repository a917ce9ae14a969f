#!/usr/bin/env python3
"""Generate the small ONNX example models shipped with zkinfer.

Every model is built with ``onnx.helper`` only (no torch), using opset 13,
IR version 8, float32 tensors, static shapes and a batch dimension of 1.
Next to each ``model.onnx`` the script writes, in EZKL's JSON formats:

* ``input.json``       -- ``{"input_data": [[...]]}``, one flattened list per
                          model input;
* ``calibration.json`` -- same format, 8 samples concatenated per list;
* ``expected.json``    -- ``{"outputs": [[...]], "shapes": [[...]]}``, the
                          outputs of ``onnx.reference.ReferenceEvaluator`` on
                          ``input.json``.

Why fixed seeds: the examples are checked into the repository and used by
tests, benchmarks and docs (proof sizes, circuit sizes, expected outputs).
All randomness comes from ``numpy.random.default_rng(seed)``, drawn in a fixed
order, and ONNX/JSON serialisation is deterministic, so re-running the script
rewrites every file byte-identically. A diff after regeneration therefore
means the generator (or a dependency pinned in ``requirements.txt``) changed.

Usage:
    python3 scripts/make_models.py                 # (re)write all of examples/
    python3 scripts/make_models.py mlp --sizes 784,256,64,10 --seed 7 --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

OPSET = 13
IR_VERSION = 8
PRODUCER = "zkinfer/scripts/make_models.py"
CALIBRATION_SAMPLES = 8
REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = REPO_ROOT / "examples"

# Bound on |intermediate value| for the tiny model (keeps fixed-point small).
TINY_BOUND = 8.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def f32(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float32)


def init(name: str, array) -> TensorProto:
    """Initializer from a numpy array (dtype preserved)."""
    return numpy_helper.from_array(np.asarray(array), name=name)


def float_list(a: np.ndarray) -> list[float]:
    """Flatten to Python floats that are exactly the float32 values."""
    return [float(np.float32(v)) for v in np.asarray(a, dtype=np.float32).ravel()]


def uniform(rng: np.random.Generator, low: float, high: float, shape) -> np.ndarray:
    return f32(rng.uniform(low, high, size=shape))


def torch_like_init(rng: np.random.Generator, fan_in: int, shape) -> np.ndarray:
    """PyTorch nn.Linear default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return uniform(rng, -bound, bound, shape)


def make_model(graph: onnx.GraphProto, opset: int = OPSET) -> onnx.ModelProto:
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", opset)],
        producer_name=PRODUCER,
        producer_version="1",
    )
    model.ir_version = IR_VERSION
    # Record intermediate shapes as value_info (handy for importers).
    model = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    onnx.checker.check_model(model, full_check=True)
    return model


def run_reference(model: onnx.ModelProto, inputs: dict[str, np.ndarray],
                  intermediates: bool = False) -> list[np.ndarray]:
    """Outputs (or, with intermediates=True, every node output) from onnx.reference."""
    if intermediates:
        model = onnx.ModelProto.FromString(model.SerializeToString())
        existing = {o.name for o in model.graph.output}
        for vi in model.graph.value_info:
            if vi.name not in existing:
                model.graph.output.append(vi)
    sess = ReferenceEvaluator(model)
    return [f32(o) for o in sess.run(None, inputs)]


def write_json(path: Path, obj) -> None:
    path.write_text(json.dumps(obj) + "\n")


def write_example(out: Path, model: onnx.ModelProto, sample: np.ndarray,
                  calibration: np.ndarray | None) -> list[np.ndarray]:
    """Write model.onnx, input.json, calibration.json and expected.json.

    The model must have a single input; ``sample`` has the input's shape and
    ``calibration`` has shape [CALIBRATION_SAMPLES, *input_shape].
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(model.SerializeToString())
    write_json(out / "input.json", {"input_data": [float_list(sample)]})
    if calibration is not None:
        write_json(out / "calibration.json", {"input_data": [float_list(calibration)]})

    input_name = model.graph.input[0].name
    outputs = run_reference(model, {input_name: sample})
    write_json(out / "expected.json", {
        "outputs": [float_list(o) for o in outputs],
        "shapes": [list(o.shape) for o in outputs],
    })
    return outputs


# --------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------


def build_mlp(sizes: list[int], seed: int):
    """MLP: Gemm(transB=1) + Relu between layers, no Relu after the last.

    Returns (model, sample input [1, sizes[0]], calibration [8, 1, sizes[0]]).
    Draw order: for each layer weight then bias; then the sample; then the
    calibration batch. Inputs are U[0, 1) like MNIST pixels.
    """
    if len(sizes) < 2 or any(s <= 0 for s in sizes):
        raise ValueError(f"need at least two positive sizes, got {sizes}")
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    current = "input"
    n_layers = len(sizes) - 1
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        w = torch_like_init(rng, fan_in, (fan_out, fan_in))
        b = torch_like_init(rng, fan_in, (fan_out,))
        inits += [init(f"fc{i}.weight", w), init(f"fc{i}.bias", b)]
        last = i == n_layers
        gemm_out = "output" if last else f"fc{i}_out"
        nodes.append(helper.make_node(
            "Gemm", [current, f"fc{i}.weight", f"fc{i}.bias"], [gemm_out],
            name=f"fc{i}", transB=1))
        current = gemm_out
        if not last:
            nodes.append(helper.make_node(
                "Relu", [gemm_out], [f"relu{i}_out"], name=f"relu{i}"))
            current = f"relu{i}_out"

    graph = helper.make_graph(
        nodes, "mlp_" + "_".join(map(str, sizes)),
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, sizes[0]])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, sizes[-1]])],
        initializer=inits,
    )
    model = make_model(graph)
    sample = uniform(rng, 0.0, 1.0, (1, sizes[0]))
    calibration = uniform(rng, 0.0, 1.0, (CALIBRATION_SAMPLES, 1, sizes[0]))
    return model, sample, calibration


def build_tiny(seed: int = 1):
    """A tiny graph exercising every supported op. Input [1,8] -> output [1,4].

    Node order (tensor shapes in brackets):
      gemm_scaled   Gemm(input[1,8], W[6,8], b[6]) transA=0 transB=1
                    alpha=0.5 beta=2.0                          -> [1,6]
      relu1         Relu                                        -> [1,6]
      matmul1       MatMul(relu1_out, M[6,8] initializer)       -> [1,8]
      add_bias      Add(matmul1_out, c[8])  (broadcast)         -> [1,8]
      reshape_3d    Reshape(add_bias_out, [1,2,4] int64 init)   -> [1,2,4]
      flatten       Flatten axis=1                              -> [1,8]
      identity      Identity(reshape_3d_out)                    -> [1,2,4]
      reshape_2d    Reshape(identity_out, [1,8] int64 init)     -> [1,8]
      add_act       Add(flatten_out, reshape_2d_out) (elementwise)   -> [1,8]
      sub_const     Sub(add_act_out, k[8])  (broadcast)         -> [1,8]
      mul_act       Mul(sub_const_out, add_bias_out) (elementwise)   -> [1,8]
      mul_vec       Mul(mul_act_out, v[8])  (broadcast)         -> [1,8]
      const_scale   Constant value=0.5 (rank-0 float scalar)    -> []
      mul_scalar    Mul(mul_vec_out, const_scale_out)           -> [1,8]
      relu2         Relu                                        -> [1,8]
      gemm_plain    Gemm(relu2_out, W2[8,4], b2[4]) (defaults)  -> output [1,4]

    Parameters are U(-1, 1); inputs are U(-1, 1) so Relu sees both signs.
    """
    rng = np.random.default_rng(seed)
    w1 = uniform(rng, -0.5, 0.5, (6, 8))
    b1 = uniform(rng, -0.5, 0.5, (6,))
    m1 = uniform(rng, -0.5, 0.5, (6, 8))
    c_add = uniform(rng, -0.5, 0.5, (8,))
    k_sub = uniform(rng, -0.5, 0.5, (8,))
    v_mul = uniform(rng, -1, 1, (8,))
    w2 = uniform(rng, -1, 1, (8, 4))
    b2 = uniform(rng, -0.5, 0.5, (4,))

    inits = [
        init("gemm_scaled.weight", w1),
        init("gemm_scaled.bias", b1),
        init("matmul1.weight", m1),
        init("add_bias.bias", c_add),
        init("reshape_3d.shape", np.array([1, 2, 4], dtype=np.int64)),
        init("reshape_2d.shape", np.array([1, 8], dtype=np.int64)),
        init("sub_const.k", k_sub),
        init("mul_vec.v", v_mul),
        init("gemm_plain.weight", w2),
        init("gemm_plain.bias", b2),
    ]
    n = helper.make_node
    nodes = [
        n("Gemm", ["input", "gemm_scaled.weight", "gemm_scaled.bias"], ["gemm_scaled_out"],
          name="gemm_scaled", transA=0, transB=1, alpha=0.5, beta=2.0),
        n("Relu", ["gemm_scaled_out"], ["relu1_out"], name="relu1"),
        n("MatMul", ["relu1_out", "matmul1.weight"], ["matmul1_out"], name="matmul1"),
        n("Add", ["matmul1_out", "add_bias.bias"], ["add_bias_out"], name="add_bias"),
        n("Reshape", ["add_bias_out", "reshape_3d.shape"], ["reshape_3d_out"], name="reshape_3d"),
        n("Flatten", ["reshape_3d_out"], ["flatten_out"], name="flatten", axis=1),
        n("Identity", ["reshape_3d_out"], ["identity_out"], name="identity"),
        n("Reshape", ["identity_out", "reshape_2d.shape"], ["reshape_2d_out"], name="reshape_2d"),
        n("Add", ["flatten_out", "reshape_2d_out"], ["add_act_out"], name="add_act"),
        n("Sub", ["add_act_out", "sub_const.k"], ["sub_const_out"], name="sub_const"),
        n("Mul", ["sub_const_out", "add_bias_out"], ["mul_act_out"], name="mul_act"),
        n("Mul", ["mul_act_out", "mul_vec.v"], ["mul_vec_out"], name="mul_vec"),
        n("Constant", [], ["const_scale_out"], name="const_scale",
          value=helper.make_tensor("const_scale.value", TensorProto.FLOAT, [], [0.5])),
        n("Mul", ["mul_vec_out", "const_scale_out"], ["mul_scalar_out"], name="mul_scalar"),
        n("Relu", ["mul_scalar_out"], ["relu2_out"], name="relu2"),
        n("Gemm", ["relu2_out", "gemm_plain.weight", "gemm_plain.bias"], ["output"],
          name="gemm_plain"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_all_ops",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 8])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        initializer=inits,
    )
    model = make_model(graph)
    sample = uniform(rng, -1, 1, (1, 8))
    calibration = uniform(rng, -1, 1, (CALIBRATION_SAMPLES, 1, 8))

    # Keep every intermediate moderate on the sample and calibration inputs.
    for x in [sample, *calibration]:
        worst = max(float(np.max(np.abs(t))) for t in run_reference(model, {"input": x}, True))
        if worst >= TINY_BOUND:
            raise AssertionError(f"tiny model intermediate {worst} exceeds {TINY_BOUND}")
    return model, sample, calibration


def build_cnn(seed: int = 3, side: int = 12):
    """LeNet-style CNN on a 1x{side}x{side} image.

    Conv(4, 3x3) -> Relu -> MaxPool(2) -> Conv(8, 3x3, pad 1) -> Relu -> MaxPool(2)
    -> Flatten -> Gemm(10). Draw order: conv1 w, b; conv2 w, b; fc w, b; sample;
    calibration. Inputs are U[0, 1) like image pixels.
    """
    rng = np.random.default_rng(seed)
    c1w = torch_like_init(rng, 9, (4, 1, 3, 3))
    c1b = torch_like_init(rng, 9, (4,))
    c2w = torch_like_init(rng, 36, (8, 4, 3, 3))
    c2b = torch_like_init(rng, 36, (8,))
    h1 = (side - 2) // 2          # after conv1 (no pad) and pool
    h2 = h1 // 2                  # conv2 keeps size (pad 1), then pool
    flat = 8 * h2 * h2
    fw = torch_like_init(rng, flat, (10, flat))
    fb = torch_like_init(rng, flat, (10,))
    inits = [init("conv1.weight", c1w), init("conv1.bias", c1b), init("conv2.weight", c2w),
             init("conv2.bias", c2b), init("fc.weight", fw), init("fc.bias", fb)]
    nodes = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["c1"], name="conv1", kernel_shape=[3, 3]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("MaxPool", ["r1"], ["p1"], name="pool1", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Conv", ["p1", "conv2.weight", "conv2.bias"], ["c2"], name="conv2", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c2"], ["r2"], name="relu2"),
        helper.make_node("MaxPool", ["r2"], ["p2"], name="pool2", kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("Flatten", ["p2"], ["f"], name="flatten", axis=1),
        helper.make_node("Gemm", ["f", "fc.weight", "fc.bias"], ["output"], name="fc", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "lenet_style_cnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 1, side, side])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 10])],
        initializer=inits,
    )
    model = make_model(graph)
    sample = uniform(rng, 0.0, 1.0, (1, 1, side, side))
    calibration = uniform(rng, 0.0, 1.0, (CALIBRATION_SAMPLES, 1, 1, side, side))
    return model, sample, calibration


def build_transformer(seed: int = 4, seq: int = 16, dim: int = 32, classes: int = 10):
    """One transformer block (single head) on a [1, seq, dim] input.

    Q/K/V MatMuls, Transpose, Q·Kᵀ scaled by 1/√dim, Softmax, ·V, output projection
    with bias, residual Add, layer normalization (written out as ReduceMean, Sub, Pow,
    Add, Sqrt, Div, Mul, Add, as exporters emit it before opset 17), final MatMul.
    Draw order: Wq, Wk, Wv, Wo, bo, gamma, beta, Wout; sample; calibration.
    Inputs are U[-1, 1).
    """
    rng = np.random.default_rng(seed)
    wq, wk, wv, wo = (torch_like_init(rng, dim, (dim, dim)) for _ in range(4))
    bo = torch_like_init(rng, dim, (dim,))
    gamma = uniform(rng, 0.8, 1.2, (dim,))
    beta = uniform(rng, -0.1, 0.1, (dim,))
    wout = torch_like_init(rng, dim, (dim, classes))
    inits = [init("wq", wq), init("wk", wk), init("wv", wv), init("wo", wo), init("bo", bo),
             init("ln.gamma", gamma), init("ln.beta", beta), init("wout", wout),
             init("scale", np.array(1.0 / np.sqrt(dim), dtype=np.float32)),
             init("two", np.array(2.0, dtype=np.float32)),
             init("eps", np.array(1e-5, dtype=np.float32))]
    n = helper.make_node
    nodes = [
        n("MatMul", ["input", "wq"], ["q"], name="q_proj"),
        n("MatMul", ["input", "wk"], ["k"], name="k_proj"),
        n("MatMul", ["input", "wv"], ["v"], name="v_proj"),
        n("Transpose", ["k"], ["kt"], name="k_transpose", perm=[0, 2, 1]),
        n("MatMul", ["q", "kt"], ["scores"], name="qk"),
        n("Mul", ["scores", "scale"], ["scaled"], name="scale_scores"),
        n("Softmax", ["scaled"], ["attn"], name="softmax", axis=-1),
        n("MatMul", ["attn", "v"], ["context"], name="attn_v"),
        n("MatMul", ["context", "wo"], ["proj"], name="out_proj"),
        n("Add", ["proj", "bo"], ["proj_b"], name="out_bias"),
        n("Add", ["proj_b", "input"], ["resid"], name="residual"),
        n("ReduceMean", ["resid"], ["mu"], name="ln_mean", axes=[-1], keepdims=1),
        n("Sub", ["resid", "mu"], ["centered"], name="ln_center"),
        n("Pow", ["centered", "two"], ["sq"], name="ln_square"),
        n("ReduceMean", ["sq"], ["var"], name="ln_var", axes=[-1], keepdims=1),
        n("Add", ["var", "eps"], ["var_eps"], name="ln_eps"),
        n("Sqrt", ["var_eps"], ["std"], name="ln_std"),
        n("Div", ["centered", "std"], ["normed"], name="ln_div"),
        n("Mul", ["normed", "ln.gamma"], ["scaled_ln"], name="ln_gamma"),
        n("Add", ["scaled_ln", "ln.beta"], ["ln_out"], name="ln_beta"),
        n("MatMul", ["ln_out", "wout"], ["output"], name="classifier"),
    ]
    graph = helper.make_graph(
        nodes, "transformer_block",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, seq, dim])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, seq, classes])],
        initializer=inits,
    )
    model = make_model(graph)
    sample = uniform(rng, -1.0, 1.0, (1, seq, dim))
    calibration = uniform(rng, -1.0, 1.0, (CALIBRATION_SAMPLES, 1, seq, dim))
    return model, sample, calibration


def build_decoder(seed: int = 5, blocks: int = 2, dim: int = 32, heads: int = 2, seq: int = 16,
                  vocab: int = 16, mask: str = "add", tokens: bool = False):
    """A GPT-style decoder on [1, seq, dim] embeddings, written as torch.onnx does at opset 17.

    Each pre-LN block: LayerNormalization, Q/K/V projections with bias, multi-head Reshape
    [1, seq, heads, dim/heads] and 4-D Transposes, Q·Kᵀ / √(dim/heads), a causal mask, Softmax,
    ·V, heads merged back, output projection, residual; LayerNormalization, a 4× MLP with
    erf-GELU (x·0.5·(1 + erf(x/√2))), residual. Then a final LayerNormalization and the logits.
    The mask: ``add`` adds a constant [seq, seq] of 0 and -1e4 (an additive attention mask);
    ``where`` is masked_fill's Where(mask, -inf, scores).
    Draw order, per block: ln1 γ β, Wq bq Wk bk Wv bv Wo bo, ln2 γ β, W1 b1 W2 b2; then the
    final γ β, Whead; sample; calibration. Inputs are N(0, 1), like embeddings. With
    ``tokens``, the input is INT64 token ids in [0, vocab) instead, embedded by a Gather of a
    token table and an Add of a position table (both drawn after Whead).
    """
    if dim % heads:
        raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
    rng = np.random.default_rng(seed)
    hd = dim // heads
    n = helper.make_node
    inits, nodes = [], []

    def linear(name: str, x: str, fan_in: int, fan_out: int, out: str) -> None:
        inits.extend([init(f"{name}.weight", torch_like_init(rng, fan_in, (fan_in, fan_out))),
                      init(f"{name}.bias", torch_like_init(rng, fan_in, (fan_out,)))])
        nodes.append(n("MatMul", [x, f"{name}.weight"], [f"{out}_mm"], name=f"{name}/MatMul"))
        nodes.append(n("Add", [f"{out}_mm", f"{name}.bias"], [out], name=f"{name}/Add"))

    def layer_norm(name: str, x: str, out: str) -> None:
        inits.extend([init(f"{name}.weight", uniform(rng, 0.8, 1.2, (dim,))),
                      init(f"{name}.bias", uniform(rng, -0.1, 0.1, (dim,)))])
        nodes.append(n("LayerNormalization", [x, f"{name}.weight", f"{name}.bias"], [out],
                       name=f"{name}/LayerNormalization", axis=-1, epsilon=1e-5))

    causal = np.triu(np.ones((seq, seq), dtype=bool), k=1)
    inits += [init("split_heads", np.array([1, seq, heads, hd], dtype=np.int64)),
              init("merge_heads", np.array([1, seq, dim], dtype=np.int64)),
              init("sqrt_hd", np.array(math.sqrt(hd), dtype=np.float32)),
              init("sqrt2", np.array(math.sqrt(2.0), dtype=np.float32)),
              init("one", np.array(1.0, dtype=np.float32)),
              init("half", np.array(0.5, dtype=np.float32))]
    if mask == "add":
        inits.append(init("attn_mask", f32(np.where(causal, -1e4, 0.0))))
    elif mask == "where":
        inits += [init("causal_mask", causal), init("neg_inf", np.array(-np.inf, dtype=np.float32))]
    else:
        raise ValueError(f"mask must be add or where, got {mask!r}")
    x = "input"
    if tokens:
        x = "embedded"
    for b in range(blocks):
        p = f"h{b}"
        layer_norm(f"{p}.ln_1", x, f"{p}_ln1")
        for t in "qkv":
            linear(f"{p}.attn.{t}", f"{p}_ln1", dim, dim, f"{p}_{t}")
            nodes.append(n("Reshape", [f"{p}_{t}", "split_heads"], [f"{p}_{t}4"], name=f"{p}.attn/Reshape_{t}"))
        nodes += [
            n("Transpose", [f"{p}_q4"], [f"{p}_qh"], name=f"{p}.attn/Transpose_q", perm=[0, 2, 1, 3]),
            n("Transpose", [f"{p}_k4"], [f"{p}_kt"], name=f"{p}.attn/Transpose_k", perm=[0, 2, 3, 1]),
            n("Transpose", [f"{p}_v4"], [f"{p}_vh"], name=f"{p}.attn/Transpose_v", perm=[0, 2, 1, 3]),
            n("MatMul", [f"{p}_qh", f"{p}_kt"], [f"{p}_qk"], name=f"{p}.attn/MatMul_qk"),
            n("Div", [f"{p}_qk", "sqrt_hd"], [f"{p}_scores"], name=f"{p}.attn/Div"),
        ]
        if mask == "add":
            nodes.append(n("Add", [f"{p}_scores", "attn_mask"], [f"{p}_masked"], name=f"{p}.attn/Add_mask"))
        else:
            nodes.append(n("Where", ["causal_mask", "neg_inf", f"{p}_scores"], [f"{p}_masked"],
                           name=f"{p}.attn/Where_mask"))
        nodes += [
            n("Softmax", [f"{p}_masked"], [f"{p}_attn"], name=f"{p}.attn/Softmax", axis=-1),
            n("MatMul", [f"{p}_attn", f"{p}_vh"], [f"{p}_ctx"], name=f"{p}.attn/MatMul_v"),
            n("Transpose", [f"{p}_ctx"], [f"{p}_ctx_t"], name=f"{p}.attn/Transpose_ctx", perm=[0, 2, 1, 3]),
            n("Reshape", [f"{p}_ctx_t", "merge_heads"], [f"{p}_ctx_m"], name=f"{p}.attn/Reshape_ctx"),
        ]
        linear(f"{p}.attn.proj", f"{p}_ctx_m", dim, dim, f"{p}_attn_out")
        nodes.append(n("Add", [x, f"{p}_attn_out"], [f"{p}_res1"], name=f"{p}/Add_res1"))
        layer_norm(f"{p}.ln_2", f"{p}_res1", f"{p}_ln2")
        linear(f"{p}.mlp.fc", f"{p}_ln2", dim, 4 * dim, f"{p}_fc")
        nodes += [
            n("Div", [f"{p}_fc", "sqrt2"], [f"{p}_g_div"], name=f"{p}.mlp/gelu/Div"),
            n("Erf", [f"{p}_g_div"], [f"{p}_g_erf"], name=f"{p}.mlp/gelu/Erf"),
            n("Add", [f"{p}_g_erf", "one"], [f"{p}_g_add"], name=f"{p}.mlp/gelu/Add"),
            n("Mul", [f"{p}_fc", f"{p}_g_add"], [f"{p}_g_mul"], name=f"{p}.mlp/gelu/Mul"),
            n("Mul", [f"{p}_g_mul", "half"], [f"{p}_gelu"], name=f"{p}.mlp/gelu/Mul_1"),
        ]
        linear(f"{p}.mlp.proj", f"{p}_gelu", 4 * dim, dim, f"{p}_mlp_out")
        nodes.append(n("Add", [f"{p}_res1", f"{p}_mlp_out"], [f"{p}_out"], name=f"{p}/Add_res2"))
        x = f"{p}_out"
    layer_norm("ln_f", x, "final")
    # A head with torch's init gives logits of about ±1; scaled up, they reach about ±3.
    inits.append(init("lm_head.weight", f32(3.0 * torch_like_init(rng, dim, (dim, vocab)))))
    nodes.append(n("MatMul", ["final", "lm_head.weight"], ["output"], name="lm_head/MatMul"))
    if tokens:
        inits += [init("wte.weight", f32(rng.standard_normal((vocab, dim)) * 0.5)),
                  init("wpe.weight", f32(rng.standard_normal((seq, dim)) * 0.1))]
        nodes = [n("Gather", ["wte.weight", "input"], ["tok"], name="wte/Gather", axis=0),
                 n("Add", ["tok", "wpe.weight"], ["embedded"], name="wpe/Add")] + nodes
    input_type = TensorProto.INT64 if tokens else TensorProto.FLOAT
    input_shape = [1, seq] if tokens else [1, seq, dim]
    graph = helper.make_graph(
        nodes, f"decoder_{blocks}x{dim}_{heads}h_{mask}",
        [helper.make_tensor_value_info("input", input_type, input_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, seq, vocab])],
        initializer=inits,
    )
    model = make_model(graph, opset=17)
    if tokens:
        sample = rng.integers(0, vocab, size=(1, seq), dtype=np.int64)
        calibration = rng.integers(0, vocab, size=(CALIBRATION_SAMPLES, 1, seq), dtype=np.int64)
    else:
        sample = f32(rng.standard_normal((1, seq, dim)))
        calibration = f32(rng.standard_normal((CALIBRATION_SAMPLES, 1, seq, dim)))
    return model, sample, calibration


def build_unsupported(seed: int = 2):
    """Gemm [1,4]->[1,4] followed by a Sin node named "act_sin".

    zkinfer does not support Sin; the importer must reject this model and
    name both the op type and the node.
    """
    rng = np.random.default_rng(seed)
    w = torch_like_init(rng, 4, (4, 4))
    b = torch_like_init(rng, 4, (4,))
    nodes = [
        helper.make_node("Gemm", ["input", "fc1.weight", "fc1.bias"], ["fc1_out"],
                         name="fc1", transB=1),
        helper.make_node("Sin", ["fc1_out"], ["output"], name="act_sin"),
    ]
    graph = helper.make_graph(
        nodes, "unsupported_sigmoid",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 4])],
        initializer=[init("fc1.weight", w), init("fc1.bias", b)],
    )
    model = make_model(graph)
    sample = uniform(rng, 0.0, 1.0, (1, 4))
    return model, sample


# --------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------


def report(out: Path, outputs: list[np.ndarray]) -> None:
    files = ", ".join(f"{p.name} {p.stat().st_size} B" for p in sorted(out.iterdir()))
    print(f"{out}: {files}")
    for o in outputs:
        print(f"  output {list(o.shape)}: {np.array2string(o.ravel(), precision=6)}")


def cmd_all(args: argparse.Namespace) -> None:
    root = Path(args.examples_dir)

    model, sample, calib = build_mlp([784, 128, 10], seed=0)
    report(root / "mlp", write_example(root / "mlp", model, sample, calib))

    model, sample, calib = build_tiny(seed=1)
    report(root / "tiny", write_example(root / "tiny", model, sample, calib))

    model, sample, calib = build_cnn(seed=3)
    report(root / "cnn", write_example(root / "cnn", model, sample, calib))

    model, sample, calib = build_transformer(seed=4)
    report(root / "transformer", write_example(root / "transformer", model, sample, calib))

    model, sample, calib = build_decoder(seed=5)
    report(root / "decoder", write_example(root / "decoder", model, sample, calib))

    model, sample = build_unsupported(seed=2)
    out = root / "unsupported"
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.onnx").write_bytes(model.SerializeToString())
    write_json(out / "input.json", {"input_data": [float_list(sample)]})
    report(out, [])


def cmd_mlp(args: argparse.Namespace) -> None:
    try:
        sizes = [int(s) for s in args.sizes.split(",")]
    except ValueError:
        raise SystemExit(f"--sizes must be comma-separated integers, got {args.sizes!r}")
    model, sample, calib = build_mlp(sizes, seed=args.seed)
    out = Path(args.out)
    report(out, write_example(out, model, sample, calib))


def cmd_decoder(args: argparse.Namespace) -> None:
    model, sample, calib = build_decoder(seed=args.seed, blocks=args.blocks, dim=args.dim,
                                         heads=args.heads, seq=args.seq, vocab=args.vocab,
                                         mask=args.mask, tokens=args.tokens)
    out = Path(args.out)
    report(out, write_example(out, model, sample, calib))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="With no subcommand, (re)writes all shipped examples under examples/.",
    )
    parser.add_argument("--examples-dir", default=str(EXAMPLES_DIR),
                        help="where the shipped examples go (default: %(default)s)")
    parser.set_defaults(func=cmd_all)
    sub = parser.add_subparsers(title="subcommands")

    p_all = sub.add_parser("all", help="(re)write all shipped examples (the default)")
    p_all.set_defaults(func=cmd_all)

    p_mlp = sub.add_parser(
        "mlp", help="write an arbitrary MLP (Gemm transB=1 + Relu) with its JSON files")
    p_mlp.add_argument("--sizes", default="784,128,10",
                       help="comma-separated layer widths, input first (default: %(default)s)")
    p_mlp.add_argument("--seed", type=int, default=0, help="RNG seed (default: %(default)s)")
    p_mlp.add_argument("--out", required=True, help="output directory")
    p_mlp.set_defaults(func=cmd_mlp)

    p_dec = sub.add_parser(
        "decoder", help="write a GPT-style decoder with a causal mask (opset 17) with its JSON files")
    for flag, default in [("--blocks", 2), ("--dim", 32), ("--heads", 2), ("--seq", 16),
                          ("--vocab", 16), ("--seed", 5)]:
        p_dec.add_argument(flag, type=int, default=default, help="(default: %(default)s)")
    p_dec.add_argument("--mask", choices=["add", "where"], default="add",
                       help="an additive -1e4 mask or masked_fill's Where with -inf (default: %(default)s)")
    p_dec.add_argument("--tokens", action="store_true",
                       help="take INT64 token ids in [0, vocab) (a Gather of a token table) instead of embeddings")
    p_dec.add_argument("--out", required=True, help="output directory")
    p_dec.set_defaults(func=cmd_decoder)

    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
