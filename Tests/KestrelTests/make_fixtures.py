"""Reference outputs from real Keras 3 for Kestrel's numeric tests.

Backend: JAX (``KERAS_BACKEND=jax``, CPU). The NumPy backend runs layers forward, but the
loss fixtures also record d(loss)/d(y_pred), which needs ``jax.grad``; the optimizers run
through Keras's own ``optimizer.apply``. The script forces the backend itself, so it
cannot silently run on another one.

How to regenerate (from the repository root; the virtual environment lives OUTSIDE the repo):

    python3 -m venv /tmp/kestrel-venv
    /tmp/kestrel-venv/bin/pip install 'keras==3.15.*' numpy jax
    KERAS_BACKEND=jax JAX_PLATFORMS=cpu /tmp/kestrel-venv/bin/python Tests/KestrelTests/make_fixtures.py

It writes Tests/KestrelTests/Fixtures/{activations,layers,conv_layers,recurrent_layers,losses,metrics,optimizers,training}.json,
read by KerasReferenceTests.swift, OptimizerTests.swift, ConvReferenceTests.swift,
RecurrentReferenceTests.swift and TrainingReferenceTests.swift (pass
group names, e.g. ``conv_layers``, to write only those). Everything is deterministic: the
inputs come from fixed NumPy seeds, weights are set explicitly, and the numbers written are
the float32 values Keras produced (shortest decimal that reads back as the same float32).

Formats: a tensor is {"shape": [...], "values": [...]} (row-major). Each file holds a list of
named cases; "config" holds only the arguments passed to the Keras constructor, so a case
without an argument checks that Kestrel's default equals Keras's.
"""

import inspect
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

assert keras.backend.backend() == "jax", keras.backend.backend()

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "Fixtures")


# ---------------------------------------------------------------- JSON helpers

def f32(x):
    return np.asarray(x, dtype=np.float32)


def short(v):
    """The shortest decimal that reads back as float32 ``v``, as a Python float.

    Swift's JSON readers parse to Double and round to Float; check that path too.
    """
    f = np.float32(v)
    if not np.isfinite(f):
        raise ValueError(f"non-finite value {f}")
    s = np.format_float_positional(f, unique=True, trim="-")
    e = np.format_float_scientific(f, unique=True, trim="-")
    text = e if len(e) < len(s) else s
    d = float(text)
    assert np.float32(d) == f, (v, text)
    assert np.float32(float(repr(d))) == f, (v, repr(d))
    return d


def compact(d):
    """Whole numbers as JSON integers (``2`` rather than ``2.0``), which keeps fixtures small."""
    return int(d) if d.is_integer() and abs(d) < 1e6 else d


def tensor(x):
    a = np.asarray(x)
    return {"shape": list(a.shape), "values": [compact(short(v)) for v in f32(a).reshape(-1)]}


def scalar(x):
    return short(np.asarray(x).reshape(()))


def write(name, payload):
    payload = {"keras_version": keras.__version__, "backend": keras.backend.backend(), **payload}
    path = os.path.join(OUT, name)
    with open(path, "w") as fh:
        json.dump(payload, fh, separators=(",", ":"))
        fh.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes)")


def np_(x):
    return np.asarray(keras.ops.convert_to_numpy(x))


# ---------------------------------------------------------------- activations

def activations():
    rng = np.random.default_rng(1)
    # 21 values spread over [-5, 5] with jitter, exact 0 kept, shuffled into a (3, 7) grid
    # so each softmax row mixes large and small values.
    x = np.linspace(-5.0, 5.0, 21) + rng.uniform(-0.2, 0.2, 21)
    x[10] = 0.0
    x = f32(rng.permutation(x).reshape(3, 7))
    A = keras.activations
    specs = [
        ("linear", "linear", {}, lambda t: A.linear(t)),
        ("relu", "relu", {}, lambda t: A.relu(t)),
        ("sigmoid", "sigmoid", {}, lambda t: A.sigmoid(t)),
        ("tanh", "tanh", {}, lambda t: A.tanh(t)),
        ("softmax", "softmax", {}, lambda t: A.softmax(t)),
        ("elu", "elu", {}, lambda t: A.elu(t)),
        ("elu_alpha_0.5", "elu", {"alpha": 0.5}, lambda t: A.elu(t, alpha=0.5)),
        ("selu", "selu", {}, lambda t: A.selu(t)),
        ("gelu", "gelu", {}, lambda t: A.gelu(t)),
        ("gelu_exact", "gelu", {"approximate": False}, lambda t: A.gelu(t, approximate=False)),
        ("gelu_approximate", "gelu", {"approximate": True}, lambda t: A.gelu(t, approximate=True)),
        ("softplus", "softplus", {}, lambda t: A.softplus(t)),
        ("softsign", "softsign", {}, lambda t: A.softsign(t)),
        ("silu", "silu", {}, lambda t: A.silu(t)),
        ("swish", "swish", {}, lambda t: A.swish(t)),
        ("leaky_relu", "leaky_relu", {}, lambda t: A.leaky_relu(t)),
        ("leaky_relu_0.1", "leaky_relu", {"negative_slope": 0.1},
         lambda t: A.leaky_relu(t, negative_slope=0.1)),
        ("hard_sigmoid", "hard_sigmoid", {}, lambda t: A.hard_sigmoid(t)),
        ("exponential", "exponential", {}, lambda t: A.exponential(t)),
    ]
    cases = [{"name": n, "function": fn, "args": args, "output": tensor(np_(f(x)))}
             for n, fn, args, f in specs]
    write("activations.json", {"input": tensor(x), "cases": cases})


# ---------------------------------------------------------------- layers

def layers():
    rng = np.random.default_rng(2)
    L = keras.layers
    cases = []

    def run(name, layer, x, config, weights=None):
        x = f32(x)
        layer.build(x.shape)
        if weights is not None:
            layer.set_weights([f32(w) for w in weights])
        y = np_(layer(x, training=False))
        case = {"name": name, "layer": type(layer).__name__, "config": config,
                "input": tensor(x), "output": tensor(y)}
        if weights is not None:
            case["weights"] = [tensor(w) for w in weights]
        cases.append(case)

    x2 = rng.normal(0, 1.0, (4, 5))
    kernel = rng.normal(0, 0.6, (5, 3))
    bias = rng.normal(0, 0.3, (3,))
    for act in ["linear", "relu", "tanh", "sigmoid", "softmax", "gelu"]:
        run(f"dense_{act}", L.Dense(3, activation=act), x2,
            {"units": 3, "activation": act}, [kernel, bias])
    run("dense_relu_no_bias", L.Dense(3, activation="relu", use_bias=False), x2,
        {"units": 3, "activation": "relu", "use_bias": False}, [kernel])
    run("dense_default_activation", L.Dense(3), x2, {"units": 3}, [kernel, bias])
    x3 = rng.normal(0, 1.0, (2, 3, 4))
    run("dense_rank3_relu", L.Dense(5, activation="relu"), x3,
        {"units": 5, "activation": "relu"}, [rng.normal(0, 0.6, (4, 5)), rng.normal(0, 0.3, (5,))])
    run("dense_rank3_softmax", L.Dense(5, activation="softmax"), x3,
        {"units": 5, "activation": "softmax"}, [rng.normal(0, 0.6, (4, 5)), rng.normal(0, 0.3, (5,))])

    run("flatten", L.Flatten(), x3, {})
    run("reshape_-1_2", L.Reshape((-1, 2)), x3, {"target_shape": [-1, 2]})
    for act in ["tanh", "softmax", "gelu", "sigmoid"]:
        run(f"activation_{act}", L.Activation(act), x3, {"activation": act})

    xr = rng.uniform(-2, 2, (3, 8))
    run("relu_default", L.ReLU(), xr, {})
    run("relu_max_value_0.8", L.ReLU(max_value=0.8), xr, {"max_value": 0.8})
    run("relu_negative_slope_0.1", L.ReLU(negative_slope=0.1), xr, {"negative_slope": 0.1})
    run("relu_threshold_0.2", L.ReLU(threshold=0.2), xr, {"threshold": 0.2})
    run("relu_all_three", L.ReLU(max_value=0.8, negative_slope=0.1, threshold=0.2), xr,
        {"max_value": 0.8, "negative_slope": 0.1, "threshold": 0.2})
    # Inputs exactly at the threshold and the cap: Keras 3 keeps x only where x > threshold
    # (strictly), so ReLU(threshold=0.2)(0.2) == 0 and, with a negative slope, also 0.
    edge = [[-1.0, 0.0, 0.1, 0.2, 0.3, 0.8, 0.9, 2.0]]
    run("relu_threshold_boundary", L.ReLU(threshold=0.2), edge, {"threshold": 0.2})
    run("relu_all_three_boundary", L.ReLU(max_value=0.8, negative_slope=0.1, threshold=0.2), edge,
        {"max_value": 0.8, "negative_slope": 0.1, "threshold": 0.2})
    run("leaky_relu_layer_default", L.LeakyReLU(), xr, {})
    run("leaky_relu_layer_0.05", L.LeakyReLU(negative_slope=0.05), xr, {"negative_slope": 0.05})
    xs = rng.normal(0, 2.0, (2, 3, 4))
    run("softmax_axis_-1", L.Softmax(axis=-1), xs, {"axis": -1})
    run("softmax_axis_1", L.Softmax(axis=1), xs, {"axis": 1})
    run("softmax_default", L.Softmax(), xs, {})
    run("dropout_inference", L.Dropout(0.5), xs, {"rate": 0.5})
    write("layers.json", {"cases": cases})


# ---------------------------------------------------------------- convolution, pooling, normalization

def conv_layers():
    """Image and sequence layers (issue 3): each case records the input, the weights in
    ``layer.weights`` order, the output, and the gradients of ``sum(output * projection)``
    with respect to the input and to every trainable weight (``jax.grad`` through
    ``stateless_call``). Training-mode cases also record the updated non-trainable weights."""
    rng = np.random.default_rng(6)
    L = keras.layers
    cases = []

    def run(name, cls, config, x, training=False, weight_scale=0.5):
        if cls == "TimeDistributed":
            inner = config["layer"]
            layer = L.TimeDistributed(getattr(L, inner["class_name"])(**inner["config"]))
        else:
            layer = getattr(L, cls)(**config)
        x = f32(x)
        layer.build(x.shape)
        weights = []
        for v in layer.weights:
            if "variance" in v.path:
                weights.append(f32(q(rng.uniform(0.5, 1.5, v.shape))))
            elif v.path.endswith("count"):
                weights.append(np.zeros(v.shape, dtype=v.dtype))
            else:
                weights.append(f32(q(rng.normal(0, weight_scale, v.shape))))
        layer.set_weights(weights)
        if hasattr(layer, "finalize_state"):
            # Normalization reads copies of its variables made when they were last loaded.
            layer.finalize_state()
        tv = [jnp.asarray(v.value) for v in layer.trainable_variables]
        ntv = [jnp.asarray(v.value) for v in layer.non_trainable_variables]
        # Only layers whose call takes `training` get it (as Keras's own __call__ does).
        kwargs = {"training": training} if "training" in inspect.signature(layer.call).parameters else {}
        y0, _ = layer.stateless_call(tv, ntv, jnp.asarray(x), **kwargs)
        projection = f32(q(rng.uniform(-1, 1, np.asarray(y0).shape)))

        def objective(xx, tt):
            y, new_ntv = layer.stateless_call(tt, ntv, xx, **kwargs)
            return jnp.sum(y * projection), (y, new_ntv)

        (_, (y, new_ntv)), (gx, gw) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
            jnp.asarray(x), tv)
        case = {"name": name, "layer": cls, "config": config, "training": training,
                "input": tensor(x), "weights": [tensor(w) for w in weights],
                "output": tensor(np.asarray(y)), "projection": tensor(projection),
                "input_gradient": tensor(np.asarray(gx)),
                "weight_gradients": [tensor(np.asarray(g)) for g in gw]}
        # (A random layer's seed-generator state is Keras's own bookkeeping, not a weight.)
        new_ntv = [v for v, variable in zip(new_ntv, layer.non_trainable_variables)
                   if "seed_generator" not in variable.path]
        if training and new_ntv:
            case["updated_non_trainable"] = [tensor(np.asarray(v)) for v in new_ntv]
        cases.append(case)

    # Inputs, weights and projections are multiples of 1/32, which print short and keep the
    # fixture small; max pooling gets distinct values so that no window has a tie.
    def q(a):
        return np.round(np.asarray(a) * 32) / 32

    def img(*shape):
        return q(rng.normal(0, 1.0, shape))

    def distinct(*shape):
        n = int(np.prod(shape))
        return (rng.permutation(n) - n / 2).reshape(shape) / 16

    run("conv2d_3x3_valid", "Conv2D", {"filters": 4, "kernel_size": 3}, img(2, 6, 5, 3))
    run("conv2d_2x3_strides2_same", "Conv2D",
        {"filters": 3, "kernel_size": [2, 3], "strides": 2, "padding": "same"}, img(2, 7, 6, 2))
    run("conv2d_strides_2_1_tanh_no_bias", "Conv2D",
        {"filters": 3, "kernel_size": 3, "strides": [2, 1], "activation": "tanh", "use_bias": False},
        img(2, 7, 5, 2))
    run("conv2d_dilation2_same_relu", "Conv2D",
        {"filters": 3, "kernel_size": 3, "padding": "same", "dilation_rate": 2, "activation": "relu"},
        img(2, 5, 6, 2))
    run("conv2d_groups2", "Conv2D", {"filters": 4, "kernel_size": 3, "groups": 2}, img(2, 5, 5, 4))
    run("conv2d_groups3_same_strides2", "Conv2D",
        {"filters": 6, "kernel_size": 3, "strides": 2, "padding": "same", "groups": 3}, img(2, 6, 5, 3))
    run("conv2d_pointwise", "Conv2D", {"filters": 3, "kernel_size": 1}, img(2, 3, 4, 5))
    run("conv1d_3_valid", "Conv1D", {"filters": 4, "kernel_size": 3}, img(2, 8, 3))
    run("conv1d_3_same_strides2", "Conv1D",
        {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same"}, img(2, 9, 2))
    run("conv1d_causal_dilation2", "Conv1D",
        {"filters": 3, "kernel_size": 2, "padding": "causal", "dilation_rate": 2}, img(2, 7, 2))
    run("conv1d_groups2_relu", "Conv1D",
        {"filters": 4, "kernel_size": 3, "groups": 2, "activation": "relu"}, img(2, 6, 4))
    run("conv2d_transpose_3_strides2_valid", "Conv2DTranspose",
        {"filters": 3, "kernel_size": 3, "strides": 2}, img(2, 3, 3, 2))
    run("conv2d_transpose_4_strides2_same", "Conv2DTranspose",
        {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "activation": "relu"}, img(2, 3, 3, 3))
    run("conv2d_transpose_3_same", "Conv2DTranspose",
        {"filters": 2, "kernel_size": [3, 2], "padding": "same", "use_bias": False}, img(2, 4, 3, 2))
    run("depthwise_conv2d_3", "DepthwiseConv2D", {"kernel_size": 3}, img(2, 5, 5, 3))
    run("depthwise_conv2d_multiplier2_same_strides2", "DepthwiseConv2D",
        {"kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2}, img(2, 6, 5, 2))
    run("separable_conv2d_3", "SeparableConv2D", {"filters": 4, "kernel_size": 3}, img(2, 5, 5, 3))
    run("separable_conv2d_multiplier2_same_relu", "SeparableConv2D",
        {"filters": 3, "kernel_size": 3, "padding": "same", "depth_multiplier": 2, "activation": "relu"},
        img(2, 4, 5, 2))

    run("max_pooling2d_default", "MaxPooling2D", {}, distinct(2, 4, 6, 3))
    run("max_pooling2d_3_strides2_same", "MaxPooling2D",
        {"pool_size": 3, "strides": 2, "padding": "same"}, distinct(2, 5, 5, 2))
    run("max_pooling2d_odd_valid", "MaxPooling2D", {}, distinct(2, 5, 5, 2))
    run("average_pooling2d_2", "AveragePooling2D", {"pool_size": 2}, img(2, 4, 4, 3))
    run("average_pooling2d_3_strides2_same", "AveragePooling2D",
        {"pool_size": 3, "strides": 2, "padding": "same"}, img(2, 5, 6, 2))
    run("max_pooling1d_default", "MaxPooling1D", {}, distinct(2, 7, 3))
    run("average_pooling1d_3_strides2_same", "AveragePooling1D",
        {"pool_size": 3, "strides": 2, "padding": "same"}, img(2, 7, 2))
    run("global_max_pooling2d", "GlobalMaxPooling2D", {}, distinct(2, 3, 4, 5))
    run("global_average_pooling2d_keepdims", "GlobalAveragePooling2D", {"keepdims": True}, img(2, 3, 4, 5))
    run("global_max_pooling1d", "GlobalMaxPooling1D", {}, distinct(2, 6, 3))
    run("global_average_pooling1d", "GlobalAveragePooling1D", {}, img(2, 6, 3))

    run("batch_normalization_inference", "BatchNormalization", {}, img(3, 3, 3, 4))
    run("batch_normalization_training", "BatchNormalization", {}, img(3, 3, 3, 4) * 2 + 1, training=True)
    run("batch_normalization_training_dense", "BatchNormalization", {"momentum": 0.9, "epsilon": 0.01},
        img(6, 4), training=True)
    run("batch_normalization_no_scale_center", "BatchNormalization", {"center": False, "scale": False},
        img(5, 2, 3), training=True)
    run("layer_normalization", "LayerNormalization", {}, img(3, 4, 6) * 2 + 0.5)
    run("layer_normalization_no_center", "LayerNormalization", {"center": False, "epsilon": 0.01}, img(4, 5))

    run("zero_padding2d_1", "ZeroPadding2D", {}, img(2, 3, 4, 2))
    run("zero_padding2d_asymmetric", "ZeroPadding2D", {"padding": [[1, 2], [0, 3]]}, img(2, 3, 4, 2))
    run("cropping2d_asymmetric", "Cropping2D", {"cropping": [[1, 0], [2, 1]]}, img(2, 4, 6, 2))
    run("up_sampling2d_default", "UpSampling2D", {}, img(2, 3, 2, 2))
    run("up_sampling2d_2_3", "UpSampling2D", {"size": [2, 3]}, img(2, 2, 3, 2))
    run("permute_2_1", "Permute", {"dims": [2, 1]}, img(2, 3, 4))
    run("permute_3_1_2", "Permute", {"dims": [3, 1, 2]}, img(2, 3, 4, 2))
    run("repeat_vector_3", "RepeatVector", {"n": 3}, img(2, 5))
    # Added after the first set, so that the cases above keep their random inputs; one
    # sample each, to stay within the fixture budget.
    run("up_sampling2d_bilinear", "UpSampling2D", {"interpolation": "bilinear"}, img(1, 3, 3, 2))
    run("up_sampling2d_bilinear_3_2", "UpSampling2D", {"size": [3, 2], "interpolation": "bilinear"}, img(1, 2, 3, 2))
    run("up_sampling2d_bilinear_1_4", "UpSampling2D", {"size": [1, 4], "interpolation": "bilinear"}, img(1, 3, 2, 1))
    run("conv2d_transpose_3_strides2_valid_output_padding1", "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 2, "output_padding": 1}, img(1, 2, 2, 2))
    run("conv2d_transpose_3_strides2_same_output_padding1", "Conv2DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1}, img(1, 2, 3, 2))
    run("conv2d_transpose_4_strides2_same_output_padding0", "Conv2DTranspose",
        {"filters": 2, "kernel_size": 4, "strides": 2, "padding": "same", "output_padding": 0,
         "activation": "relu"}, img(1, 3, 3, 2))
    run("conv2d_transpose_3x2_strides3x2_same_output_padding_2_1", "Conv2DTranspose",
        {"filters": 2, "kernel_size": [3, 2], "strides": [3, 2], "padding": "same", "output_padding": [2, 1]},
        img(1, 2, 3, 2))
    run("conv2d_transpose_5_strides3_same_output_padding1", "Conv2DTranspose",
        {"filters": 1, "kernel_size": 5, "strides": 3, "padding": "same", "output_padding": 1, "use_bias": False},
        img(1, 3, 2, 2))
    run("conv2d_transpose_2_dilation2_same_output_padding0", "Conv2DTranspose",
        {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "padding": "same", "output_padding": 0},
        img(1, 3, 3, 2))
    run("rescaling_1_256_offset", "Rescaling", {"scale": 0.00390625, "offset": -0.5}, img(2, 3, 2))
    run("rescaling_default_offset", "Rescaling", {"scale": -1.5}, img(2, 3))
    run("normalization_last_axis", "Normalization", {}, img(2, 3, 4))
    run("normalization_axes_1_3", "Normalization", {"axis": [1, 3]}, img(2, 2, 2, 3))
    run("normalization_axis_none_invert", "Normalization", {"axis": None, "invert": True}, img(2, 3, 2))
    run("normalization_given", "Normalization",
        {"axis": -1, "mean": [0.5, -1.0, 2.0], "variance": [4.0, 0.25, 1e-16]}, img(2, 2, 3))
    # Geometric augmentations in training, with each range one value wide so that Keras's draw
    # is fixed: its transform, fill modes and resampling against Kestrel's.
    run("random_rotation_36deg_reflect", "RandomRotation", {"factor": [0.1, 0.1]}, img(1, 5, 4, 2), training=True)
    run("random_rotation_-72deg_constant_nearest", "RandomRotation",
        {"factor": [-0.2, -0.2], "fill_mode": "constant", "fill_value": 0.5, "interpolation": "nearest"},
        img(1, 4, 5, 1), training=True)
    run("random_zoom_out_in_wrap", "RandomZoom", {"height_factor": [0.3, 0.3], "width_factor": [-0.2, -0.2],
                                                  "fill_mode": "wrap"}, img(1, 5, 5, 2), training=True)
    run("random_zoom_in_nearest_fill", "RandomZoom", {"height_factor": [-0.25, -0.25], "fill_mode": "nearest"},
        img(1, 4, 4, 1), training=True)
    run("random_translation_constant", "RandomTranslation",
        {"height_factor": [0.2, 0.2], "width_factor": [-0.3, -0.3], "fill_mode": "constant"},
        img(1, 5, 4, 1), training=True)
    run("random_translation_reflect_nearest", "RandomTranslation",
        {"height_factor": [-0.35, -0.35], "width_factor": [0.15, 0.15], "interpolation": "nearest"},
        img(1, 4, 6, 1), training=True)
    run("resizing_up_bilinear", "Resizing", {"height": 5, "width": 7}, img(1, 3, 4, 2))
    run("resizing_down_bilinear", "Resizing", {"height": 4, "width": 3}, img(1, 6, 5, 1))
    run("resizing_nearest", "Resizing", {"height": 3, "width": 6, "interpolation": "nearest"}, img(1, 5, 4, 1))
    run("resizing_crop_to_aspect_ratio", "Resizing", {"height": 3, "width": 3, "crop_to_aspect_ratio": True},
        img(1, 6, 4, 1))
    run("zero_padding1d_default", "ZeroPadding1D", {}, img(2, 3, 2))
    run("zero_padding1d_2_1", "ZeroPadding1D", {"padding": [2, 1]}, img(1, 3, 2))
    run("cropping1d_default", "Cropping1D", {}, img(2, 4, 2))
    run("cropping1d_0_2", "Cropping1D", {"cropping": [0, 2]}, img(1, 5, 2))
    run("up_sampling1d_default", "UpSampling1D", {}, img(2, 3, 2))
    run("up_sampling1d_3", "UpSampling1D", {"size": 3}, img(1, 2, 3))
    run("conv1d_transpose_3_strides2_valid", "Conv1DTranspose", {"filters": 2, "kernel_size": 3, "strides": 2},
        img(2, 4, 3))
    run("conv1d_transpose_4_strides3_same_output_padding2", "Conv1DTranspose",
        {"filters": 3, "kernel_size": 4, "strides": 3, "padding": "same", "output_padding": 2, "activation": "tanh"},
        img(1, 3, 2))
    run("conv1d_transpose_2_dilation3_same", "Conv1DTranspose",
        {"filters": 2, "kernel_size": 2, "dilation_rate": 3, "padding": "same", "use_bias": False}, img(1, 5, 2))
    # Colour augmentations in training, each range one value wide (Keras sorts a pair [a, b]
    # and draws contrast from 1 − a…1 + b, so [-0.3, 0.3] is 1.3): some pixels clip.
    run("random_contrast_1.3_clipped", "RandomContrast", {"factor": [-0.3, 0.3], "value_range": [-1.5, 1.5]},
        img(2, 4, 3, 2), training=True)
    run("random_contrast_1.5_default_range", "RandomContrast", {"factor": [-0.5, 0.5]},
        img(1, 3, 3, 3) * 16 + 100, training=True)
    run("random_brightness_0.2_clipped", "RandomBrightness", {"factor": [0.2, 0.2], "value_range": [-1, 1]},
        img(2, 3, 3, 2), training=True)
    run("random_brightness_-0.25_default_range", "RandomBrightness", {"factor": [-0.25, -0.25]},
        img(1, 3, 4, 1) * 32 + 100, training=True)
    # Activation, noise and normalization layers. The noise layers' training draws are random,
    # so only their inference (identity) is compared here; their statistics are tested in Swift.
    run("elu_default", "ELU", {}, img(2, 3, 4))
    run("elu_alpha_0.5", "ELU", {"alpha": 0.5}, img(1, 5))
    run("prelu_elementwise", "PReLU", {}, img(2, 3, 2))
    run("prelu_shared_1_2", "PReLU", {"shared_axes": [1, 2]}, img(2, 2, 3, 2))
    run("gaussian_noise_inference", "GaussianNoise", {"stddev": 0.5}, img(1, 4))
    run("gaussian_dropout_inference", "GaussianDropout", {"rate": 0.3}, img(1, 4))
    run("alpha_dropout_inference", "AlphaDropout", {"rate": 0.2}, img(1, 4))
    run("group_normalization_2", "GroupNormalization", {"groups": 2}, img(2, 3, 2, 4) * 2 + 0.5)
    run("group_normalization_instance_no_center", "GroupNormalization",
        {"groups": -1, "center": False, "epsilon": 0.01}, img(2, 4, 3))
    run("group_normalization_1_dense", "GroupNormalization", {"groups": 1, "scale": False}, img(3, 6))
    run("unit_normalization_default", "UnitNormalization", {}, img(2, 3, 4))
    run("unit_normalization_axes_1_2", "UnitNormalization", {"axis": [1, 2]}, img(2, 2, 3, 2))
    run("unit_normalization_axis_1", "UnitNormalization", {"axis": 1}, img(2, 3, 2))
    run("identity", "Identity", {}, img(1, 3))
    # RandomInvert and RandomGrayscale with probability 1 (Keras's draws then always apply).
    run("random_invert_always", "RandomInvert", {"factor": [1.0, 1.0], "value_range": [-1, 2]}, img(2, 3, 2, 2),
        training=True)
    run("random_grayscale_always", "RandomGrayscale", {"factor": 1.0}, img(2, 2, 3, 3), training=True)
    # TimeDistributed: a convolution on each frame, a dense layer on each step, batch
    # statistics over every step of every sample.
    run("time_distributed_conv2d", "TimeDistributed",
        {"layer": {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 2, "activation": "relu"}}},
        img(2, 3, 3, 3, 2))
    run("time_distributed_dense", "TimeDistributed",
        {"layer": {"class_name": "Dense", "config": {"units": 3, "activation": "tanh"}}}, img(2, 4, 3))
    run("time_distributed_batch_normalization_training", "TimeDistributed",
        {"layer": {"class_name": "BatchNormalization", "config": {"momentum": 0.5}}}, img(2, 3, 4), training=True)
    # CenterCrop: the centred window when the image covers the target (odd margins round the
    # start down), otherwise the largest centred window of the target's aspect ratio resized.
    run("center_crop_inside_odd_margins", "CenterCrop", {"height": 3, "width": 2}, img(2, 6, 5, 2))
    run("center_crop_smaller_resizes", "CenterCrop", {"height": 4, "width": 6}, img(1, 5, 3, 1))
    # 3-D layers: convolutions, transposed convolutions, pooling, padding, cropping, upsampling, spatial dropout.
    run("conv3d_2_valid", "Conv3D", {"filters": 2, "kernel_size": 2}, img(2, 3, 4, 3, 2))
    run("conv3d_2x3x2_strides_1_2_2_same_relu", "Conv3D",
        {"filters": 3, "kernel_size": [2, 3, 2], "strides": [1, 2, 2], "padding": "same", "activation": "relu"},
        img(1, 4, 5, 4, 2))
    run("conv3d_2_dilation2_same_no_bias", "Conv3D",
        {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "padding": "same", "use_bias": False},
        img(1, 4, 4, 5, 1))
    run("conv3d_groups2", "Conv3D", {"filters": 4, "kernel_size": 2, "groups": 2}, img(1, 3, 3, 3, 4))
    run("conv3d_transpose_2_strides2_valid", "Conv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2},
        img(1, 2, 3, 2, 2))
    run("conv3d_transpose_3_strides_1_2_2_same_tanh", "Conv3DTranspose",
        {"filters": 2, "kernel_size": 3, "strides": [1, 2, 2], "padding": "same", "activation": "tanh"},
        img(1, 2, 2, 3, 2))
    run("conv3d_transpose_3_strides2_same_output_padding1", "Conv3DTranspose",
        {"filters": 1, "kernel_size": 3, "strides": 2, "padding": "same", "output_padding": 1, "use_bias": False},
        img(1, 2, 2, 2, 2))
    run("max_pooling3d_default", "MaxPooling3D", {}, distinct(2, 4, 4, 5, 2))
    run("max_pooling3d_3_strides2_same", "MaxPooling3D",
        {"pool_size": 3, "strides": 2, "padding": "same"}, distinct(1, 5, 4, 5, 2))
    run("average_pooling3d_2", "AveragePooling3D", {"pool_size": 2}, img(2, 4, 4, 4, 2))
    run("average_pooling3d_2x3x2_strides_1_2_2_same", "AveragePooling3D",
        {"pool_size": [2, 3, 2], "strides": [1, 2, 2], "padding": "same"}, img(1, 3, 5, 4, 2))
    run("global_max_pooling3d", "GlobalMaxPooling3D", {}, distinct(2, 2, 3, 4, 3))
    run("global_average_pooling3d_keepdims", "GlobalAveragePooling3D", {"keepdims": True}, img(2, 2, 3, 4, 3))
    run("zero_padding3d_1", "ZeroPadding3D", {}, img(1, 2, 3, 2, 2))
    run("zero_padding3d_asymmetric", "ZeroPadding3D", {"padding": [[1, 0], [0, 2], [2, 1]]}, img(1, 2, 2, 3, 2))
    run("cropping3d_1", "Cropping3D", {}, img(1, 4, 4, 5, 2))
    run("cropping3d_asymmetric", "Cropping3D", {"cropping": [[0, 1], [2, 0], [1, 1]]}, img(1, 3, 4, 4, 2))
    run("up_sampling3d_default", "UpSampling3D", {}, img(1, 2, 2, 3, 2))
    run("up_sampling3d_1_3_2", "UpSampling3D", {"size": [1, 3, 2]}, img(1, 2, 2, 2, 2))
    run("spatial_dropout3d_inference", "SpatialDropout3D", {"rate": 0.3}, img(1, 2, 2, 2, 3))
    # Depthwise and separable convolutions over sequences.
    run("depthwise_conv1d_3", "DepthwiseConv1D", {"kernel_size": 3}, img(2, 6, 3))
    run("depthwise_conv1d_multiplier2_same_strides2_relu", "DepthwiseConv1D",
        {"kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2, "activation": "relu"}, img(2, 7, 2))
    run("depthwise_conv1d_dilation2_no_bias", "DepthwiseConv1D",
        {"kernel_size": 2, "dilation_rate": 2, "use_bias": False}, img(1, 6, 2))
    run("separable_conv1d_3", "SeparableConv1D", {"filters": 4, "kernel_size": 3}, img(2, 6, 3))
    run("separable_conv1d_multiplier2_same_strides2_tanh", "SeparableConv1D",
        {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same", "depth_multiplier": 2, "activation": "tanh"},
        img(2, 7, 2))
    # Convolutional LSTMs: sequences of images, of sequences and of volumes.
    run("conv_lstm2d_3", "ConvLSTM2D", {"filters": 2, "kernel_size": 3}, img(2, 3, 5, 5, 2))
    run("conv_lstm2d_3_same_return_sequences", "ConvLSTM2D",
        {"filters": 3, "kernel_size": 3, "padding": "same", "return_sequences": True}, img(1, 3, 4, 4, 2))
    run("conv_lstm2d_3x2_strides2_same_go_backwards", "ConvLSTM2D",
        {"filters": 2, "kernel_size": [3, 2], "strides": 2, "padding": "same", "go_backwards": True},
        img(2, 3, 5, 4, 1))
    run("conv_lstm2d_dilation2_relu_hard_sigmoid_no_bias", "ConvLSTM2D",
        {"filters": 2, "kernel_size": 2, "dilation_rate": 2, "activation": "relu",
         "recurrent_activation": "hard_sigmoid", "use_bias": False, "return_sequences": True}, img(1, 3, 5, 5, 2))
    run("conv_lstm1d_3_same_return_sequences", "ConvLSTM1D",
        {"filters": 3, "kernel_size": 3, "padding": "same", "return_sequences": True}, img(2, 4, 6, 2))
    run("conv_lstm3d_2", "ConvLSTM3D", {"filters": 2, "kernel_size": 2}, img(1, 3, 3, 3, 3, 1))
    run("conv_lstm2d_go_backwards_return_sequences", "ConvLSTM2D",
        {"filters": 1, "kernel_size": 2, "padding": "same", "go_backwards": True, "return_sequences": True},
        img(1, 3, 3, 3, 1))
    write("conv_layers.json", {"cases": cases})


# ---------------------------------------------------------------- recurrent and attention layers

def recurrent_layers():
    """Sequence layers: LSTM, MultiHeadAttention, Embedding (issue 8), GRU and SimpleRNN. Each case records the
    inputs (several for attention: query, value[, key]), the weights in ``layer.weights`` order,
    the output, and the gradients of ``sum(output * projection)`` with respect to every input
    and every weight (``jax.grad`` through ``stateless_call``). Embedding indices are not
    differentiable; its input gradient is recorded as zeros."""
    rng = np.random.default_rng(8)
    L = keras.layers
    cases = []

    def q(a):
        return np.round(np.asarray(a) * 32) / 32

    def run(name, cls, config, inputs, weight_scale=0.5, integer=False, mask=None, dropout_masks=None,
            input_masks=None, call_args=None):
        if cls == "Bidirectional":
            inner = config["layer"]
            layer = L.Bidirectional(getattr(L, inner["class_name"])(**inner["config"]),
                                    **{k: v for k, v in config.items() if k != "layer"})
        else:
            layer = getattr(L, cls)(**config)
        xs = [f32(x) for x in inputs]
        # Attention through Keras's explicit einsum/softmax path (asking for the scores selects
        # it): its fused jax.nn.dot_product_attention path rejects value_dim != key_dim.
        kwargs = {"return_attention_scores": True} if cls == "MultiHeadAttention" else {}
        # A mask (batch, steps) of the first input, as Embedding(mask_zero) or Masking would attach.
        call_kwargs = {"mask": jnp.asarray(mask)} if mask is not None else {}
        if dropout_masks is not None:
            call_kwargs["training"] = True
        if input_masks is not None and cls == "MultiHeadAttention":
            # Keras reads the query's mask from the tensor itself, which a traced array cannot
            # carry: the attention mask it would build, query[:, :, None] & value[:, None, :]
            # & key[:, None, :], goes in explicitly (the causal mask is and-ed in by Keras).
            allowed = np.ones((len(inputs[0]), inputs[0].shape[1], inputs[1].shape[1]), bool)
            for k, m in enumerate(input_masks):
                if m is not None:
                    allowed &= m[:, :, None] if k == 0 else m[:, None, :]
            kwargs["attention_mask"] = jnp.asarray(allowed)
        elif input_masks is not None:
            # Attention's mask list: the query's and the value's (either may be None).
            call_kwargs["mask"] = [None if m is None else jnp.asarray(m) for m in input_masks]
        if call_args:
            # Call arguments (use_causal_mask).
            call_kwargs.update(call_args)
        # Attention and AdditiveAttention take their tensors as one list, the others separately.
        listed = cls in ("Attention", "AdditiveAttention")
        if listed:
            layer(xs)
        else:
            layer(*xs, **kwargs)   # builds, for one or several inputs
        weights = [f32(q(rng.normal(0, weight_scale, v.shape))) for v in layer.weights]
        layer.set_weights(weights)
        if hasattr(layer, "finalize_state"):
            # Normalization reads copies of its variables made when they were last loaded.
            layer.finalize_state()
        tv = [jnp.asarray(v.value) for v in layer.trainable_variables]
        ntv = [jnp.asarray(v.value) for v in layer.non_trainable_variables]
        args = [jnp.asarray(x.astype(np.int32) if integer else x) for x in xs]

        def call(tt, xx):
            if dropout_masks is not None:
                # Keras's cells take the masks they find instead of drawing new ones (the layer
                # forgets them after each call): a list per gate with recurrent dropout.
                inputs_, recurrent = dropout_masks
                per_gate = getattr(layer.cell, "dropout_mask_count", None)
                wrap = (lambda ms: [jnp.asarray(m) for m in ms]) if per_gate else (lambda ms: jnp.asarray(ms[0]))
                layer.cell._dropout_mask = wrap(inputs_) if inputs_ else None
                layer.cell._recurrent_dropout_mask = wrap(recurrent) if recurrent else None
            y, new_ntv = (layer.stateless_call(tt, ntv, list(xx), **call_kwargs) if listed
                          else layer.stateless_call(tt, ntv, *xx, **kwargs, **call_kwargs))
            if not updated:   # the first, concrete call
                updated[:] = new_ntv
            return y[0] if kwargs else y

        updated = []
        y0 = call(tv, args)
        projection = f32(q(rng.uniform(-1, 1, np.asarray(y0).shape)))

        def objective(xx, tt):
            y = call(tt, xx)
            return jnp.sum(y * projection), y

        if integer:
            (_, y), gw = jax.value_and_grad(lambda tt: objective(args, tt), has_aux=True)(tv)
            gx = [np.zeros_like(x) for x in xs]
        else:
            (_, y), (gx, gw) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(args, tv)
        extra = {"mask": tensor(np.asarray(mask, np.float32))} if mask is not None else {}
        if input_masks is not None:
            extra["input_masks"] = [None if m is None else tensor(np.asarray(m, np.float32)) for m in input_masks]
        if dropout_masks is not None:
            # Kestrel's layout: the input masks, then the recurrent ones, each (batch, width).
            extra["dropout_masks"] = tensor(np.concatenate([np.ravel(m) for m in dropout_masks[0] + dropout_masks[1]]))
        if call_args:
            extra["call"] = call_args
        if call_args and call_args.get("training") and updated:
            # The moving statistics a training call leaves (BatchNormalization's).
            extra["updated_non_trainable"] = [tensor(np.asarray(v)) for v in updated]
        cases.append({"name": name, "layer": cls, "config": config, **extra,
                      "inputs": [tensor(x) for x in xs], "weights": [tensor(w) for w in weights],
                      "weight_paths": [v.path for v in layer.weights],
                      "output": tensor(np.asarray(y)), "projection": tensor(projection),
                      "input_gradients": [tensor(np.asarray(g)) for g in gx],
                      "weight_gradients": [tensor(np.asarray(g)) for g in gw]})

    def seq(*shape):
        return q(rng.normal(0, 1.0, shape))

    run("lstm_last", "LSTM", {"units": 4}, [seq(2, 5, 3)])
    run("lstm_sequences", "LSTM", {"units": 3, "return_sequences": True}, [seq(2, 4, 3)])
    run("lstm_go_backwards", "LSTM", {"units": 3, "go_backwards": True}, [seq(3, 4, 2)])
    run("lstm_go_backwards_sequences_no_bias", "LSTM",
        {"units": 3, "go_backwards": True, "return_sequences": True, "use_bias": False}, [seq(2, 5, 2)])
    run("lstm_relu_hard_sigmoid", "LSTM",
        {"units": 3, "activation": "relu", "recurrent_activation": "hard_sigmoid", "return_sequences": True},
        [seq(2, 4, 3)])
    x = seq(2, 4, 5)
    run("mha_self", "MultiHeadAttention", {"num_heads": 2, "key_dim": 3}, [x, x])
    run("mha_cross_lengths", "MultiHeadAttention", {"num_heads": 3, "key_dim": 2, "value_dim": 4},
        [seq(2, 3, 5), seq(2, 6, 4)])
    run("mha_key_output_shape_no_bias", "MultiHeadAttention",
        {"num_heads": 2, "key_dim": 3, "use_bias": False, "output_shape": 7},
        [seq(2, 4, 3), seq(2, 5, 2), seq(2, 5, 6)])
    run("embedding", "Embedding", {"input_dim": 7, "output_dim": 3},
        [rng.integers(0, 7, (3, 5)).astype(np.float32)], integer=True)
    run("gru_last", "GRU", {"units": 4}, [seq(2, 5, 3)])
    run("gru_sequences_go_backwards", "GRU", {"units": 3, "return_sequences": True, "go_backwards": True},
        [seq(2, 4, 3)])
    run("gru_reset_before", "GRU", {"units": 3, "reset_after": False, "return_sequences": True}, [seq(2, 4, 2)])
    run("gru_reset_before_no_bias", "GRU", {"units": 3, "reset_after": False, "use_bias": False}, [seq(3, 3, 2)])
    run("gru_no_bias_relu_hard_sigmoid", "GRU",
        {"units": 3, "use_bias": False, "activation": "relu", "recurrent_activation": "hard_sigmoid"}, [seq(2, 4, 3)])
    run("simple_rnn_last", "SimpleRNN", {"units": 4}, [seq(2, 5, 3)])
    run("simple_rnn_sequences_go_backwards", "SimpleRNN",
        {"units": 3, "return_sequences": True, "go_backwards": True}, [seq(2, 4, 2)])
    run("simple_rnn_relu_no_bias", "SimpleRNN", {"units": 3, "activation": "relu", "use_bias": False}, [seq(2, 4, 3)])
    run("bidirectional_lstm_concat", "Bidirectional", {"layer": {"class_name": "LSTM", "config": {"units": 3}}},
        [seq(2, 4, 3)])
    run("bidirectional_gru_sequences_sum", "Bidirectional",
        {"layer": {"class_name": "GRU", "config": {"units": 3, "return_sequences": True}}, "merge_mode": "sum"},
        [seq(2, 4, 2)])
    run("bidirectional_simple_rnn_sequences_mul", "Bidirectional",
        {"layer": {"class_name": "SimpleRNN", "config": {"units": 2, "return_sequences": True}}, "merge_mode": "mul"},
        [seq(2, 3, 2)])
    run("bidirectional_lstm_sequences_ave", "Bidirectional",
        {"layer": {"class_name": "LSTM", "config": {"units": 2, "return_sequences": True}}, "merge_mode": "ave"},
        [seq(1, 4, 2)])
    # Attention without projections: dot scores (self, scaled with a key), concat scores,
    # additive scores with and without the learned scale.
    x = seq(2, 4, 3)
    run("attention_dot_self", "Attention", {}, [x, x])
    run("attention_dot_scale_key", "Attention", {"use_scale": True}, [seq(2, 3, 4), seq(2, 5, 2), seq(2, 5, 4)])
    run("attention_concat_scale", "Attention", {"use_scale": True, "score_mode": "concat"}, [seq(2, 3, 3), seq(2, 4, 3)],
        weight_scale=2.0)
    run("attention_concat_key", "Attention", {"score_mode": "concat"}, [seq(1, 3, 2), seq(1, 2, 3), seq(1, 2, 2)],
        weight_scale=2.0)
    run("additive_attention_default", "AdditiveAttention", {}, [seq(2, 3, 4), seq(2, 5, 4)])
    run("additive_attention_no_scale_key", "AdditiveAttention", {"use_scale": False},
        [seq(2, 3, 2), seq(2, 4, 3), seq(2, 4, 2)])
    # Masked steps (Embedding(mask_zero) or Masking upstream): right padding, left padding and a
    # gap, in one batch. Keras carries the state over a masked step; Bidirectional zeroes the
    # masked steps of returned sequences (zero_output_for_mask).
    mask = np.array([[1, 1, 1, 0, 0], [0, 0, 1, 1, 1], [1, 1, 0, 1, 1]], bool)
    run("lstm_masked_last", "LSTM", {"units": 3}, [seq(3, 5, 2)], mask=mask)
    run("lstm_masked_sequences_go_backwards", "LSTM", {"units": 2, "return_sequences": True, "go_backwards": True},
        [seq(3, 5, 2)], mask=mask)
    run("lstm_masked_sequences_zero_output", "LSTM", {"units": 2, "return_sequences": True, "zero_output_for_mask": True},
        [seq(3, 5, 2)], mask=mask)
    run("gru_masked_sequences", "GRU", {"units": 2, "return_sequences": True}, [seq(3, 5, 2)], mask=mask)
    run("gru_masked_reset_before_go_backwards", "GRU", {"units": 3, "reset_after": False, "go_backwards": True},
        [seq(3, 5, 2)], mask=mask)
    run("simple_rnn_masked_sequences", "SimpleRNN", {"units": 2, "return_sequences": True}, [seq(3, 5, 2)], mask=mask)
    run("bidirectional_lstm_masked_concat", "Bidirectional", {"layer": {"class_name": "LSTM", "config": {"units": 2}}},
        [seq(3, 5, 2)], mask=mask)
    run("bidirectional_gru_masked_sequences_sum", "Bidirectional",
        {"layer": {"class_name": "GRU", "config": {"units": 2, "return_sequences": True}}, "merge_mode": "sum"},
        [seq(3, 5, 2)], mask=mask)
    run("global_average_pooling1d_masked", "GlobalAveragePooling1D", {}, [seq(3, 5, 2)], mask=mask)
    x = seq(2, 4, 3)
    x[0, 1] = 0.5
    x[1, 3] = 0.5
    run("masking_0.5", "Masking", {"mask_value": 0.5}, [x])
    # Recurrent dropout in training, with masks drawn here and handed to Keras's cells: one per
    # gate for the state and (then) for the input, as LSTM's implementation 1 uses them.
    def drop(count, shape, rate):
        return [f32((rng.uniform(size=shape) >= rate) / (1 - rate)) for _ in range(count)]
    run("lstm_recurrent_dropout_sequences", "LSTM",
        {"units": 3, "dropout": 0.3, "recurrent_dropout": 0.4, "return_sequences": True}, [seq(2, 4, 3)],
        dropout_masks=(drop(4, (2, 3), 0.3), drop(4, (2, 3), 0.4)))
    run("lstm_recurrent_dropout_only_go_backwards", "LSTM",
        {"units": 2, "recurrent_dropout": 0.5, "go_backwards": True}, [seq(3, 4, 2)],
        dropout_masks=([], drop(4, (3, 2), 0.5)))
    run("simple_rnn_recurrent_dropout_sequences", "SimpleRNN",
        {"units": 3, "dropout": 0.2, "recurrent_dropout": 0.3, "return_sequences": True}, [seq(2, 4, 2)],
        dropout_masks=(drop(1, (2, 2), 0.2), drop(1, (2, 3), 0.3)))
    run("gru_recurrent_dropout_sequences", "GRU",
        {"units": 2, "dropout": 0.25, "recurrent_dropout": 0.4, "return_sequences": True}, [seq(2, 4, 2)],
        dropout_masks=(drop(3, (2, 2), 0.25), drop(3, (2, 2), 0.4)))
    run("gru_reset_before_recurrent_dropout", "GRU",
        {"units": 3, "reset_after": False, "recurrent_dropout": 0.3, "go_backwards": True}, [seq(2, 4, 2)],
        dropout_masks=([], drop(3, (2, 3), 0.3)))
    run("gru_relu_recurrent_dropout", "GRU",
        {"units": 2, "activation": "relu", "recurrent_activation": "hard_sigmoid", "recurrent_dropout": 0.5}, [seq(2, 3, 2)],
        dropout_masks=([], drop(3, (2, 2), 0.5)))
    # Masked attention: the value's mask keeps value steps out of the softmax (one sample masks
    # every value step), the query's zeroes outputs; the key's is not used.
    value_mask = np.array([[1, 1, 0, 1], [0, 0, 0, 0]], bool)
    query_mask = np.array([[1, 0, 1], [1, 1, 0]], bool)
    run("attention_masked_query_value", "Attention", {"use_scale": True}, [seq(2, 3, 2), seq(2, 4, 2)],
        input_masks=[query_mask, value_mask])
    run("attention_concat_masked_value_key", "Attention", {"score_mode": "concat"}, [seq(2, 3, 2), seq(2, 4, 3), seq(2, 4, 2)],
        input_masks=[None, value_mask, None], weight_scale=2.0)
    run("additive_attention_masked_query", "AdditiveAttention", {}, [seq(2, 3, 2), seq(2, 4, 2)],
        input_masks=[query_mask, None])
    # MultiHeadAttention's masks: the query's, the value's and the key's and-ed into the
    # attention mask (a query step with nothing left to attend to gets zero weights, so the
    # output bias alone); the causal mask, alone and with the others, over equal and unequal
    # lengths; the causal mask of Attention and AdditiveAttention.
    key_mask = np.array([[1, 0, 1, 1], [1, 1, 1, 1]], bool)
    run("mha_masked_query_value_key", "MultiHeadAttention", {"num_heads": 2, "key_dim": 2},
        [seq(2, 3, 3), seq(2, 4, 2), seq(2, 4, 3)], input_masks=[query_mask, value_mask, key_mask])
    run("mha_causal_self", "MultiHeadAttention", {"num_heads": 2, "key_dim": 1, "value_dim": 2, "use_bias": False},
        [seq(2, 4, 2)] * 2, call_args={"use_causal_mask": True})
    run("mha_causal_masked_cross", "MultiHeadAttention", {"num_heads": 2, "key_dim": 2, "output_shape": 3},
        [seq(2, 4, 3), seq(2, 3, 2)], input_masks=[np.array([[1, 1, 0, 1], [0, 1, 1, 1]], bool),
                                                   np.array([[1, 0, 1], [0, 1, 1]], bool)],
        call_args={"use_causal_mask": True})
    run("attention_causal_masked_value", "Attention", {"use_scale": True}, [seq(2, 4, 2), seq(2, 4, 2)],
        input_masks=[None, value_mask], call_args={"use_causal_mask": True})
    run("additive_attention_causal", "AdditiveAttention", {}, [seq(2, 3, 2), seq(2, 5, 2)],
        call_args={"use_causal_mask": True})
    # BatchNormalization in training takes its batch statistics over unmasked steps only (and
    # normalises every step with them).
    run("batch_normalization_masked_training", "BatchNormalization", {"momentum": 0.8}, [seq(3, 5, 2) * 2 + 1],
        mask=mask, call_args={"training": True})
    write("recurrent_layers.json", {"cases": cases})


# ---------------------------------------------------------------- losses

def losses():
    rng = np.random.default_rng(3)
    Ls = keras.losses
    cases = []

    def run(name, loss, y_true, y_pred, config):
        y_true = f32(y_true)
        y_pred = f32(y_pred)
        if isinstance(loss, Ls.SparseCategoricalCrossentropy):
            yt = jnp.asarray(y_true.astype(np.int32))
        else:
            yt = jnp.asarray(y_true)
        value, grad = jax.value_and_grad(lambda p: loss(yt, p))(jnp.asarray(y_pred))
        cases.append({"name": name, "loss": type(loss).__name__, "config": config,
                      "y_true": tensor(y_true), "y_pred": tensor(y_pred),
                      "value": scalar(value), "gradient": tensor(np.asarray(grad))})

    def softmax(z):
        return np_(keras.ops.softmax(f32(z), axis=-1))

    batch, classes = 4, 5
    logits = rng.normal(0, 2.0, (batch, classes))
    labels = np.array([0, 3, 1, 4], dtype=np.float32)
    onehot = np.eye(classes, dtype=np.float32)[labels.astype(int)]
    probs = softmax(logits)
    S = Ls.SparseCategoricalCrossentropy
    C = Ls.CategoricalCrossentropy
    B = Ls.BinaryCrossentropy
    run("sparse_cce_logits", S(from_logits=True), labels, logits, {"from_logits": True})
    run("sparse_cce_probs", S(from_logits=False), labels, probs, {"from_logits": False})
    run("sparse_cce_default", S(), labels, probs, {})
    # Unnormalised scores: Keras divides by the row sum before the log.
    scores = rng.uniform(0.1, 2.0, (batch, classes))
    run("sparse_cce_unnormalised", S(), labels, scores, {})
    run("cce_logits", C(from_logits=True), onehot, logits, {"from_logits": True})
    run("cce_probs", C(from_logits=False), onehot, probs, {"from_logits": False})
    run("cce_logits_smooth_0.1", C(from_logits=True, label_smoothing=0.1), onehot, logits,
        {"from_logits": True, "label_smoothing": 0.1})
    run("cce_probs_smooth_0.1", C(from_logits=False, label_smoothing=0.1), onehot, probs,
        {"from_logits": False, "label_smoothing": 0.1})
    run("cce_default_unnormalised", C(), onehot, scores, {})

    bl = rng.normal(0, 2.0, (4, 3))
    bt = (rng.uniform(0, 1, (4, 3)) > 0.5).astype(np.float32)
    bp = np_(keras.ops.sigmoid(f32(bl)))
    run("bce_logits", B(from_logits=True), bt, bl, {"from_logits": True})
    run("bce_probs", B(from_logits=False), bt, bp, {"from_logits": False})
    run("bce_logits_smooth_0.1", B(from_logits=True, label_smoothing=0.1), bt, bl,
        {"from_logits": True, "label_smoothing": 0.1})
    run("bce_probs_smooth_0.1", B(from_logits=False, label_smoothing=0.1), bt, bp,
        {"from_logits": False, "label_smoothing": 0.1})
    run("bce_default", B(), bt, bp, {})

    rt = rng.normal(0, 1.0, (4, 3))
    rp = rt + rng.normal(0, 1.2, (4, 3))
    run("mse", Ls.MeanSquaredError(), rt, rp, {})
    run("mae", Ls.MeanAbsoluteError(), rt, rp, {})
    run("huber_default", Ls.Huber(), rt, rp, {})
    run("huber_delta_1", Ls.Huber(delta=1.0), rt, rp, {"delta": 1.0})
    run("huber_delta_0.5", Ls.Huber(delta=0.5), rt, rp, {"delta": 0.5})
    d = np.abs(rp - rt)
    assert (d < 0.5).any() and (d > 1.0).any() and ((d > 0.5) & (d < 1.0)).any(), d
    # Keras's other losses. Positive targets and predictions where a log or a ratio needs them
    # (one target below epsilon, one prediction too), ±1 and 0/1 labels for the hinges.
    pt = rng.uniform(0.1, 3.0, (4, 3))
    pp = rng.uniform(0.1, 3.0, (4, 3))
    pt[0, 0] = 0.0
    pp[1, 2] = 1e-9
    run("msle", Ls.MeanSquaredLogarithmicError(), pt, pp, {})
    run("mape", Ls.MeanAbsolutePercentageError(), rt, rp, {})
    run("log_cosh", Ls.LogCosh(), rt, rp * 3, {})
    run("cosine_similarity", Ls.CosineSimilarity(), rt, rp, {})
    run("cosine_similarity_sequence", Ls.CosineSimilarity(), rng.normal(0, 1, (2, 3, 4)), rng.normal(0, 1, (2, 3, 4)), {})
    signs = np.where(rng.uniform(0, 1, (4, 3)) > 0.5, 1.0, -1.0)
    scores = rng.normal(0, 1.5, (4, 3))
    run("hinge_binary", Ls.Hinge(), (signs + 1) / 2, scores, {})
    run("hinge_signed", Ls.Hinge(), signs, scores, {})
    run("squared_hinge_binary", Ls.SquaredHinge(), (signs + 1) / 2, scores, {})
    run("squared_hinge_signed", Ls.SquaredHinge(), signs, scores, {})
    run("categorical_hinge", Ls.CategoricalHinge(), onehot, logits, {})
    run("kl_divergence", Ls.KLDivergence(), softmax(rng.normal(0, 1, (4, 5))), probs, {})
    run("poisson", Ls.Poisson(), np.floor(pt * 2), pp, {})
    # Focal cross-entropies (probabilities, logits, class balancing, smoothing, other α and γ).
    BF, CF = Ls.BinaryFocalCrossentropy, Ls.CategoricalFocalCrossentropy
    run("bfce_default", BF(), bt, bp, {})
    run("bfce_logits_balanced_gamma3", BF(apply_class_balancing=True, alpha=0.4, gamma=3.0, from_logits=True), bt, bl,
        {"apply_class_balancing": True, "alpha": 0.4, "gamma": 3.0, "from_logits": True})
    run("bfce_smooth_0.1_gamma_0.5", BF(gamma=0.5, label_smoothing=0.1), bt, bp, {"gamma": 0.5, "label_smoothing": 0.1})
    run("cfce_default", CF(), onehot, probs, {})
    run("cfce_logits_alpha_0.5_gamma_1", CF(alpha=0.5, gamma=1.0, from_logits=True), onehot, logits,
        {"alpha": 0.5, "gamma": 1.0, "from_logits": True})
    run("cfce_unnormalised_smooth_0.1", CF(label_smoothing=0.1), onehot, rng.uniform(0.1, 2.0, (batch, classes)),
        {"label_smoothing": 0.1})
    write("losses.json", {"cases": cases})


# ---------------------------------------------------------------- metrics

def metrics():
    rng = np.random.default_rng(4)
    M = keras.metrics
    cases = []

    def run(name, metric, batches, config):
        metric.reset_state()
        out = []
        for yt, yp in batches:
            yt = f32(yt)
            yp = f32(yp)
            metric.update_state(yt.astype(np.int32) if "Sparse" in type(metric).__name__ else yt, yp)
            out.append({"y_true": tensor(yt), "y_pred": tensor(yp), "result": scalar(np_(metric.result()))})
        cases.append({"name": name, "metric": type(metric).__name__, "config": config, "batches": out})

    classes = 4
    def cat_batch(n):
        p = rng.uniform(0, 1, (n, classes))
        lab = rng.integers(0, classes, n).astype(np.float32)
        return lab, p
    b1, b2 = cat_batch(6), cat_batch(5)
    run("sparse_categorical_accuracy", M.SparseCategoricalAccuracy(), [b1, b2], {})
    oh = lambda lab: np.eye(classes, dtype=np.float32)[lab.astype(int)]  # noqa: E731
    run("categorical_accuracy", M.CategoricalAccuracy(), [(oh(b1[0]), b1[1]), (oh(b2[0]), b2[1])], {})
    # A tie in the second batch: the target's score equals the 2nd highest, which counts as
    # in the top 2 (rank = 1 + number of strictly larger scores).
    b2tie = (b2[0].copy(), b2[1].copy())
    b2tie[0][0] = 1.0
    b2tie[1][0] = [0.9, 0.5, 0.2, 0.5]
    run("top_k_categorical_accuracy_k2", M.TopKCategoricalAccuracy(k=2),
        [(oh(b1[0]), b1[1]), (oh(b2tie[0]), b2tie[1])], {"k": 2})
    run("sparse_top_k_categorical_accuracy_k2", M.SparseTopKCategoricalAccuracy(k=2), [b1, b2tie], {"k": 2})
    run("top_k_categorical_accuracy_default", M.TopKCategoricalAccuracy(),
        [(np.eye(7, dtype=np.float32)[[6, 0, 2]], rng.uniform(0, 1, (3, 7)))], {})

    def bin_batch(n):
        return (rng.uniform(0, 1, (n, 3)) > 0.5).astype(np.float32), rng.uniform(0, 1, (n, 3))
    c1, c2 = bin_batch(4), bin_batch(3)
    run("binary_accuracy_default", M.BinaryAccuracy(), [c1, c2], {})
    run("binary_accuracy_0.5", M.BinaryAccuracy(threshold=0.5), [c1, c2], {"threshold": 0.5})
    run("binary_accuracy_0.7", M.BinaryAccuracy(threshold=0.7), [c1, c2], {"threshold": 0.7})

    r1 = (rng.normal(0, 1, (4, 3)), rng.normal(0, 1, (4, 3)))
    r2 = (rng.normal(0, 1, (2, 3)), rng.normal(0, 1, (2, 3)))
    run("mean_squared_error", M.MeanSquaredError(), [r1, r2], {})
    run("mean_absolute_error", M.MeanAbsoluteError(), [r1, r2], {})
    # The loss-formula metrics and RootMeanSquaredError, over batches of different sizes.
    run("root_mean_squared_error", M.RootMeanSquaredError(), [r1, r2], {})
    run("mean_absolute_percentage_error", M.MeanAbsolutePercentageError(), [r1, r2], {})
    run("logcosh", M.LogCoshError(), [r1, r2], {})
    run("cosine_similarity", M.CosineSimilarity(), [r1, r2], {})
    q1 = (rng.uniform(0, 3, (4, 3)), rng.uniform(0.1, 3, (4, 3)))
    q2 = (rng.uniform(0, 3, (2, 3)), rng.uniform(0.1, 3, (2, 3)))
    run("mean_squared_logarithmic_error", M.MeanSquaredLogarithmicError(), [q1, q2], {})
    run("poisson", M.Poisson(), [(np.floor(q1[0]), q1[1]), (np.floor(q2[0]), q2[1])], {})
    run("hinge", M.Hinge(), [c1, (c2[0], c2[1] * 2 - 1)], {})
    run("squared_hinge", M.SquaredHinge(), [c1, (c2[0], c2[1] * 2 - 1)], {})
    run("categorical_hinge", M.CategoricalHinge(), [(oh(b1[0]), b1[1]), (oh(b2[0]), b2[1])], {})
    soft = lambda z: np_(keras.ops.softmax(f32(z), axis=-1))  # noqa: E731
    run("kl_divergence", M.KLDivergence(), [(soft(rng.normal(0, 1, (4, 4))), b1[1][:4] / b1[1][:4].sum(1, keepdims=True)),
                                            (soft(rng.normal(0, 1, (5, 4))), b2[1] / b2[1].sum(1, keepdims=True))], {})
    write("metrics.json", {"cases": cases})


# ---------------------------------------------------------------- optimizers

def optimizers():
    rng = np.random.default_rng(5)
    O = keras.optimizers
    # Two variables (so global and per-variable clipping differ) of size 6 and 3; values of
    # order 0.1 so that steps at Keras's default learning rates are a visible fraction of them.
    init = [f32(rng.uniform(-0.2, 0.2, (2, 3))), f32(rng.uniform(-0.2, 0.2, (3,)))]
    grads = []
    for _ in range(3):
        # Mixed magnitudes: some elements below clipvalue 0.05, the second variable larger.
        grads.append([f32(rng.normal(0, 0.3, (2, 3))), f32(rng.normal(0, 0.8, (3,)))])
    grads[0][0][0, 0] = 0.01
    grads[1][0][1, 2] = -0.03

    cases = []

    # Three more steps for the cases that accumulate gradients or average weights ("long"),
    # from a generator of their own so that the first three stay as they were.
    rng_more = np.random.default_rng(55)
    more_grads = [[f32(rng_more.normal(0, 0.3, (2, 3))), f32(rng_more.normal(0, 0.8, (3,)))] for _ in range(3)]

    def run(name, opt, config, long=False):
        # Named as a layer's weights, for exclude_from_weight_decay.
        variables = [keras.Variable(v.copy(), name=n) for v, n in zip(init, ["kernel", "bias"])]
        steps, averages = [], []
        for g in grads + (more_grads if long else []):
            opt.apply([jnp.asarray(x) for x in g], variables)
            steps.append([tensor(np_(v.value)) for v in variables])
            if opt.use_ema:
                averages.append([tensor(np_(a.value)) for a in opt._model_variables_moving_average])
        batches = len(grads) + (len(more_grads) if long else 0)
        assert int(np_(opt.iterations)) == batches // (opt.gradient_accumulation_steps or 1)
        case = {"name": name, "optimizer": type(opt).__name__, "config": config, "steps": steps}
        if long:
            case["long"] = True
        if averages:
            case["averages"] = averages
        cases.append(case)

    run("sgd_default", O.SGD(), {})
    run("sgd_momentum_0.9", O.SGD(momentum=0.9), {"momentum": 0.9})
    run("sgd_nesterov_0.9", O.SGD(momentum=0.9, nesterov=True), {"momentum": 0.9, "nesterov": True})
    run("adam_default", O.Adam(), {})
    run("adam_amsgrad", O.Adam(amsgrad=True), {"amsgrad": True})
    run("adamw_default", O.AdamW(), {})
    # The default decay (lr·0.004 per step) moves weights by ~4e-6 relatively, below the
    # test tolerance; a strong decay makes the decoupled term visible.
    run("adamw_decay_0.5_lr_0.01", O.AdamW(learning_rate=0.01, weight_decay=0.5),
        {"learning_rate": 0.01, "weight_decay": 0.5})
    run("rmsprop_default", O.RMSprop(), {})
    run("rmsprop_momentum_0.5", O.RMSprop(momentum=0.5), {"momentum": 0.5})
    run("rmsprop_centered", O.RMSprop(centered=True), {"centered": True})
    run("adagrad_default", O.Adagrad(), {})
    run("adam_clipnorm_0.1", O.Adam(clipnorm=0.1), {"clipnorm": 0.1})
    run("adam_clipvalue_0.05", O.Adam(clipvalue=0.05), {"clipvalue": 0.05})
    run("adam_global_clipnorm_0.1", O.Adam(global_clipnorm=0.1), {"global_clipnorm": 0.1})
    # Adam is nearly invariant to a gradient's scale, so clipping barely shows in it; SGD
    # moves by the clipped gradient itself.
    run("sgd_clipnorm_0.1", O.SGD(learning_rate=0.1, clipnorm=0.1), {"learning_rate": 0.1, "clipnorm": 0.1})
    run("sgd_clipvalue_0.05", O.SGD(learning_rate=0.1, clipvalue=0.05), {"learning_rate": 0.1, "clipvalue": 0.05})
    run("sgd_global_clipnorm_0.1", O.SGD(learning_rate=0.1, global_clipnorm=0.1),
        {"learning_rate": 0.1, "global_clipnorm": 0.1})
    run("adamax_default", O.Adamax(), {})
    run("nadam_default", O.Nadam(), {})
    run("nadam_lr_0.01_beta1_0.8", O.Nadam(learning_rate=0.01, beta_1=0.8), {"learning_rate": 0.01, "beta_1": 0.8})
    run("adadelta_lr_1", O.Adadelta(learning_rate=1.0), {"learning_rate": 1.0})
    run("lion_default", O.Lion(), {})
    run("lion_clipvalue_0.05", O.Lion(clipvalue=0.05), {"clipvalue": 0.05})
    # The base optimizer's options: weight decay (any optimizer), weight averaging, gradient
    # accumulation.
    run("sgd_weight_decay_0.1_lr_0.1", O.SGD(learning_rate=0.1, weight_decay=0.1),
        {"learning_rate": 0.1, "weight_decay": 0.1})
    adam = O.Adam(learning_rate=0.01, weight_decay=0.5)
    adam.exclude_from_weight_decay(var_names=["bias"])
    run("adam_weight_decay_0.5_excluding_bias", adam,
        {"learning_rate": 0.01, "weight_decay": 0.5, "exclude_from_weight_decay": ["bias"]})
    run("rmsprop_weight_decay_0.2_lr_0.01", O.RMSprop(learning_rate=0.01, weight_decay=0.2),
        {"learning_rate": 0.01, "weight_decay": 0.2})
    run("sgd_momentum_ema_0.9", O.SGD(momentum=0.9, use_ema=True, ema_momentum=0.9),
        {"momentum": 0.9, "use_ema": True, "ema_momentum": 0.9}, long=True)
    run("adam_ema_0.5_overwrite_2", O.Adam(learning_rate=0.01, use_ema=True, ema_momentum=0.5, ema_overwrite_frequency=2),
        {"learning_rate": 0.01, "use_ema": True, "ema_momentum": 0.5, "ema_overwrite_frequency": 2}, long=True)
    run("adam_accumulate_2", O.Adam(learning_rate=0.01, gradient_accumulation_steps=2),
        {"learning_rate": 0.01, "gradient_accumulation_steps": 2}, long=True)
    run("sgd_momentum_accumulate_3_global_clipnorm_0.1",
        O.SGD(learning_rate=0.1, momentum=0.9, gradient_accumulation_steps=3, global_clipnorm=0.1),
        {"learning_rate": 0.1, "momentum": 0.9, "gradient_accumulation_steps": 3, "global_clipnorm": 0.1}, long=True)
    run("nadam_accumulate_2_ema_weight_decay",
        O.Nadam(learning_rate=0.01, gradient_accumulation_steps=2, use_ema=True, weight_decay=0.1),
        {"learning_rate": 0.01, "gradient_accumulation_steps": 2, "use_ema": True, "weight_decay": 0.1}, long=True)
    run("lamb_default", O.Lamb(), {})
    run("lamb_lr_0.01_beta1_0.8", O.Lamb(learning_rate=0.01, beta_1=0.8), {"learning_rate": 0.01, "beta_1": 0.8})
    run("ftrl_default", O.Ftrl(), {})
    run("ftrl_lr_0.05_power_-0.25", O.Ftrl(learning_rate=0.05, learning_rate_power=-0.25),
        {"learning_rate": 0.05, "learning_rate_power": -0.25})
    run("ftrl_l1_l2_shrinkage_beta",
        O.Ftrl(learning_rate=0.1, initial_accumulator_value=0.5, l1_regularization_strength=0.01,
               l2_regularization_strength=0.01, l2_shrinkage_regularization_strength=0.01, beta=0.1),
        {"learning_rate": 0.1, "initial_accumulator_value": 0.5, "l1_regularization_strength": 0.01,
         "l2_regularization_strength": 0.01, "l2_shrinkage_regularization_strength": 0.01, "beta": 0.1})
    write("optimizers.json", {
        "variables": [tensor(v) for v in init],
        "gradients": [[tensor(x) for x in g] for g in grads],
        "more_gradients": [[tensor(x) for x in g] for g in more_grads],
        "cases": cases,
    })


# ---------------------------------------------------------------- training

def training():
    # A whole fit: a small convnet of the mnist_convnet kind (convolution, max pooling, dense
    # softmax) trained by model.fit from weights set here, without shuffling or dropout (whose
    # random streams Kestrel does not share), so every batch loss and the final weights are
    # Keras's own. 40 samples in batches of 16 leave a last batch of 8; pixel values have two
    # decimals to keep the file small.
    rng = np.random.default_rng(11)
    x = f32(np.round(rng.uniform(0, 1, (40, 6, 6, 1)), 2))
    # Labels from which quarter of the image is brightest (0..2, the fourth counted as 0).
    quarters = np.stack([x[:, :3, :3].sum((1, 2, 3)), x[:, :3, 3:].sum((1, 2, 3)),
                         x[:, 3:, :3].sum((1, 2, 3)), x[:, 3:, 3:].sum((1, 2, 3))], 1)
    y = (np.argmax(quarters, 1) % 3).astype("int64")
    L = keras.layers
    model = keras.Sequential([keras.Input(shape=(6, 6, 1)), L.Conv2D(4, 3, activation="relu"),
                              L.MaxPooling2D(2), L.Flatten(), L.Dense(3, activation="softmax")])
    init = [f32(rng.uniform(-0.5, 0.5, w.shape)) for w in model.get_weights()]
    model.set_weights(init)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    batch_losses = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batch_losses.append(float(logs["loss"]))

    history = model.fit(x, y, batch_size=16, epochs=3, shuffle=False, verbose=0, callbacks=[Record()])
    write("training.json", {
        "x": tensor(x), "y": [int(v) for v in y], "initial_weights": [tensor(w) for w in init],
        "batch_losses": [scalar(v) for v in batch_losses],
        "epoch_losses": [scalar(v) for v in history.history["loss"]],
        "epoch_accuracies": [scalar(v) for v in history.history["accuracy"]],
        "final_weights": [tensor(w) for w in model.get_weights()],
    })


def activity_regularization():
    # A whole fit with activity regularizers (Keras 3 adds regularizer(output) / batch size to
    # the loss): on a Dense layer after its relu, as an ActivityRegularization layer, and on
    # the output layer. 24 samples in batches of 10 leave a last batch of 4, so the division
    # by the batch's own size shows; evaluate reports the penalty too.
    rng = np.random.default_rng(12)
    x = f32(np.round(rng.uniform(-1, 1, (24, 5)), 2))
    y = f32(np.round(rng.uniform(-1, 1, (24, 3)), 2))
    L, R = keras.layers, keras.regularizers
    model = keras.Sequential([keras.Input(shape=(5,)),
                              L.Dense(4, activation="relu", activity_regularizer=R.L1(0.05)),
                              L.ActivityRegularization(l1=0.01, l2=0.02),
                              L.Dense(3, activity_regularizer=R.L2(0.03))])
    init = [f32(rng.uniform(-0.8, 0.8, w.shape)) for w in model.get_weights()]
    model.set_weights(init)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=0.1), loss="mse")
    initial_loss = model.evaluate(x, y, batch_size=24, verbose=0)
    batch_losses = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batch_losses.append(float(logs["loss"]))

    history = model.fit(x, y, batch_size=10, epochs=2, shuffle=False, verbose=0, callbacks=[Record()])
    write("activity_regularization.json", {
        "x": tensor(x), "y": tensor(y), "initial_weights": [tensor(w) for w in init],
        "initial_loss": scalar(initial_loss),
        "batch_losses": [scalar(v) for v in batch_losses],
        "epoch_losses": [scalar(v) for v in history.history["loss"]],
        "final_weights": [tensor(w) for w in model.get_weights()],
    })


def recurrent_states():
    """Recurrent layers called with ``initial_state`` and ``return_state=True``: each case
    records the sequence, the initial states (or none), the weights, the output and the final
    states, and the gradients of ``sum(output * P) + sum(state_k * P_k)`` with respect to the
    sequence, every initial state and every weight (``jax.grad`` through ``stateless_call``)."""
    rng = np.random.default_rng(13)
    L = keras.layers
    cases = []

    def q(a):
        return np.round(np.asarray(a) * 32) / 32

    def run(name, cls, config, batch=3, steps=4, features=3, initial=True, mask=None):
        if cls == "Bidirectional":
            # The wrapped layer returns its states (its config says so); both halves' states.
            inner = config["layer"]
            layer = L.Bidirectional(getattr(L, inner["class_name"])(**inner["config"]),
                                    **{k: v for k, v in config.items() if k != "layer"})
            units, count = inner["config"]["units"], 4 if inner["class_name"] == "LSTM" else 2
        else:
            layer = getattr(L, cls)(**config, return_state=True)
            units, count = config["units"], 2 if cls == "LSTM" else 1
        x = f32(q(rng.normal(0, 1.0, (batch, steps, features))))
        states = [f32(q(rng.normal(0, 0.7, (batch, units)))) for _ in range(count)] if initial else []
        layer(x, initial_state=states or None)
        weights = [f32(q(rng.normal(0, 0.5, v.shape))) for v in layer.weights]
        layer.set_weights(weights)
        tv = [jnp.asarray(v.value) for v in layer.trainable_variables]
        ntv = [jnp.asarray(v.value) for v in layer.non_trainable_variables]
        kwargs = {"mask": jnp.asarray(mask)} if mask is not None else {}

        def call(tt, xx, ss):
            out, _ = layer.stateless_call(tt, ntv, xx, initial_state=list(ss) or None, **kwargs)
            return out

        outs0 = call(tv, jnp.asarray(x), [jnp.asarray(h) for h in states])
        projections = [f32(q(rng.uniform(-1, 1, np.asarray(o).shape))) for o in outs0]

        def objective(xx, ss, tt):
            outs = call(tt, xx, ss)
            return sum(jnp.sum(o * p) for o, p in zip(outs, projections)), outs

        (_, outs), (gx, gs, gw) = jax.value_and_grad(objective, argnums=(0, 1, 2), has_aux=True)(
            jnp.asarray(x), [jnp.asarray(h) for h in states], tv)
        extra = {"mask": tensor(np.asarray(mask, np.float32))} if mask is not None else {}
        cases.append({"name": name, "layer": cls, "config": config, **extra,
                      "inputs": [tensor(x)] + [tensor(h) for h in states],
                      "weights": [tensor(w) for w in weights],
                      "outputs": [tensor(np.asarray(o)) for o in outs],
                      "projections": [tensor(p) for p in projections],
                      "input_gradients": [tensor(np.asarray(gx))] + [tensor(np.asarray(g)) for g in gs],
                      "weight_gradients": [tensor(np.asarray(g)) for g in gw]})

    gaps = np.array([[1, 1, 1, 0], [0, 1, 1, 1], [1, 0, 1, 1]], bool)
    run("lstm_initial_state", "LSTM", {"units": 3})
    run("lstm_initial_state_sequences", "LSTM", {"units": 3, "return_sequences": True})
    run("lstm_states_only", "LSTM", {"units": 2}, initial=False)
    run("lstm_initial_state_backwards_masked", "LSTM", {"units": 3, "go_backwards": True}, mask=gaps)
    run("gru_initial_state", "GRU", {"units": 3})
    run("gru_initial_state_reset_before_sequences", "GRU", {"units": 3, "reset_after": False, "return_sequences": True})
    run("gru_initial_state_masked", "GRU", {"units": 2, "return_sequences": True}, mask=gaps)
    run("simple_rnn_initial_state", "SimpleRNN", {"units": 3})
    run("simple_rnn_initial_state_backwards_sequences", "SimpleRNN",
        {"units": 2, "go_backwards": True, "return_sequences": True})
    run("bidirectional_lstm_initial_state", "Bidirectional",
        {"layer": {"class_name": "LSTM", "config": {"units": 3, "return_state": True}}})
    run("bidirectional_gru_states_sum_sequences_masked", "Bidirectional",
        {"layer": {"class_name": "GRU", "config": {"units": 2, "return_state": True, "return_sequences": True}},
         "merge_mode": "sum"}, initial=False, mask=gaps)

    def run_attention(name, config, query_shape, value_shape, causal=False):
        # MultiHeadAttention with return_attention_scores: the output and the weights (heads, Tq, Tv).
        layer = L.MultiHeadAttention(**config)
        xs = [f32(q(rng.normal(0, 1.0, query_shape))), f32(q(rng.normal(0, 1.0, value_shape)))]
        layer(*xs)
        weights = [f32(q(rng.normal(0, 0.5, v.shape))) for v in layer.weights]
        layer.set_weights(weights)
        tv = [jnp.asarray(v.value) for v in layer.trainable_variables]
        ntv = [jnp.asarray(v.value) for v in layer.non_trainable_variables]

        def call(tt, xx):
            out, _ = layer.stateless_call(tt, ntv, *xx, return_attention_scores=True, use_causal_mask=causal)
            return list(out)

        outs0 = call(tv, [jnp.asarray(x) for x in xs])
        projections = [f32(q(rng.uniform(-1, 1, np.asarray(o).shape))) for o in outs0]

        def objective(xx, tt):
            outs = call(tt, xx)
            return sum(jnp.sum(o * p) for o, p in zip(outs, projections)), outs

        (_, outs), (gx, gw) = jax.value_and_grad(objective, argnums=(0, 1), has_aux=True)(
            [jnp.asarray(x) for x in xs], tv)
        cases.append({"name": name, "layer": "MultiHeadAttention", "config": config, "causal": causal,
                      "inputs": [tensor(x) for x in xs], "weights": [tensor(w) for w in weights],
                      "outputs": [tensor(np.asarray(o)) for o in outs],
                      "projections": [tensor(p) for p in projections],
                      "input_gradients": [tensor(np.asarray(g)) for g in gx],
                      "weight_gradients": [tensor(np.asarray(g)) for g in gw]})

    run_attention("attention_scores_cross", {"num_heads": 2, "key_dim": 2}, (2, 3, 4), (2, 5, 3))
    run_attention("attention_scores_causal", {"num_heads": 2, "key_dim": 3}, (2, 4, 3), (2, 4, 3),
                  causal=True)
    write("recurrent_states.json", {"cases": cases})


def main():
    np.random.seed(0)
    keras.utils.set_random_seed(0)
    os.makedirs(OUT, exist_ok=True)
    # Optional arguments choose which groups to write (default: all of them).
    groups = {"activations": activations, "layers": layers, "conv_layers": conv_layers,
              "recurrent_layers": recurrent_layers,
              "losses": losses, "metrics": metrics, "optimizers": optimizers, "training": training,
              "activity_regularization": activity_regularization, "recurrent_states": recurrent_states}
    for name in sys.argv[1:] or list(groups):
        groups[name]()
    # The files of this script only (the other make_*_fixtures.py scripts write their own).
    total = sum(os.path.getsize(os.path.join(OUT, f"{name}.json")) for name in groups
                if os.path.exists(os.path.join(OUT, f"{name}.json")))
    print(f"total fixture size {total} bytes")
    if total > 650_000:
        sys.exit("fixtures exceed 650 KB")


if __name__ == "__main__":
    main()
