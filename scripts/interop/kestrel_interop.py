#!/usr/bin/env python3
"""Python side of Kestrel's interop tests: Keras 3 (JAX backend, CPU) and onnxruntime.

Tensors travel as JSON files {"shape": [...], "data": [...]} (float32 values), which keeps the
Swift side free of any array-format code.

Commands:
  keras-predict MODEL.keras INPUT.json [INPUT2.json ...] OUTPUT.json
      Load a .keras file with keras.saving.load_model and write its predictions.
  keras-predict-many JOBS.json
      The same for several models in one process (Keras and JAX load once): JOBS.json is a
      list of {"model": MODEL.keras, "inputs": [INPUT.json, ...], "output": OUTPUT.json}.
  keras-resume MODEL.keras X.json Y.json OUTPUT.json
      Load a .keras file (compiled, with optimizer state), train one epoch without shuffling
      and write the resulting weights (flattened, concatenated) and the optimizer iterations.
  keras-make DIR
      Write .keras files made by Keras 3 itself (nested models among them), with inputs and
      Keras's predictions, for Kestrel to load: DIR/<name>.keras, DIR/<name>.input<k>.json,
      DIR/<name>.expected.json; prints the names.
  onnx-run MODEL.onnx INPUT.json [INPUT2.json ...] OUTPUT.json
      Check the model with onnx.checker, run it with onnxruntime (the inputs feed the model's
      inputs in order) and write the first output.
  safetensors-read FILE.safetensors OUTPUT.json
      Read a safetensors file with the safetensors package and write {name: shape}.
  torch-net-numpy FILE.safetensors INPUT.json OUTPUT.json
      Run PyTorch's introductory MNIST `Net` (see torch_state_dict_check.py) in numpy from a
      PyTorch state_dict stored as safetensors (NCHW convolutions, Linear as x @ W.T + b) on
      channels-last images and write its logits (the output before log_softmax).
  numpy-read FILE.npy|FILE.npz [...]
      Load each file with np.load and print {path: {array name ("" for .npy): {dtype,
      shape, values}}} as JSON.
"""
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def read_tensor(path):
    import numpy as np
    with open(path) as f:
        t = json.load(f)
    return np.asarray(t["data"], dtype=np.float32).reshape(t["shape"])


def write_tensor(path, array):
    import numpy as np
    array = np.asarray(array, dtype=np.float32)
    with open(path, "w") as f:
        json.dump({"shape": list(array.shape), "data": [float(v) for v in array.reshape(-1)]}, f)


def keras_predict(model_path, *paths):
    import keras
    *inputs, output = paths
    model = keras.saving.load_model(model_path)
    xs = [read_tensor(p) for p in inputs]
    y = model.predict(xs if len(xs) > 1 else xs[0], verbose=0)
    write_tensor(output, y[0] if isinstance(y, list) else y)


def keras_predict_many(jobs_path):
    with open(jobs_path) as f:
        jobs = json.load(f)
    for job in jobs:
        keras_predict(job["model"], *job["inputs"], job["output"])


def keras_resume(model_path, x_path, y_path, output):
    import keras
    import numpy as np
    model = keras.saving.load_model(model_path)
    x, y = read_tensor(x_path), read_tensor(y_path)
    before = int(np.asarray(model.optimizer.iterations))
    model.fit(x, y, epochs=1, batch_size=8, shuffle=False, verbose=0)
    flat = np.concatenate([np.asarray(w).reshape(-1) for w in model.get_weights()])
    write_tensor(output, flat)
    with open(output + ".iterations", "w") as f:
        json.dump({"before": before, "after": int(np.asarray(model.optimizer.iterations))}, f)


def keras_make(directory):
    import keras
    import numpy as np
    from keras import layers
    os.makedirs(directory, exist_ok=True)
    keras.utils.set_random_seed(1)
    rng = np.random.default_rng(0)
    models = {}

    models["mlp"] = keras.Sequential([
        keras.Input((28, 28)), layers.Flatten(), layers.Dense(32, activation="relu"), layers.Dropout(0.2),
        layers.Dense(16, activation="tanh"), layers.Dense(10), layers.Softmax(),
    ])
    models["activations"] = keras.Sequential([
        keras.Input((12,)), layers.Dense(8, activation="sigmoid"), layers.Dense(8, activation="elu"),
        layers.Dense(8, activation="gelu"), layers.Dense(8, activation="swish"), layers.ReLU(max_value=0.8),
        layers.LeakyReLU(negative_slope=0.1), layers.Dense(6, activation="softplus", use_bias=False),
        layers.Activation("selu"), layers.Reshape((2, 3)), layers.Dense(4, activation="softsign"),
    ])
    models["cnn"] = keras.Sequential([
        keras.Input((10, 10, 2)), layers.Conv2D(4, 3, padding="same", activation="relu"), layers.BatchNormalization(),
        layers.MaxPooling2D(), layers.Conv2D(6, (3, 2), strides=(2, 1)), layers.AveragePooling2D(2, 1, padding="same"),
        layers.LayerNormalization(), layers.GlobalAveragePooling2D(), layers.Dense(3),
    ])
    a = keras.Input((6,), name="left")
    b = keras.Input((6,), name="right")
    shared = layers.Dense(5, activation="relu", name="shared")
    x, y = shared(a), shared(b)
    merged = layers.Concatenate()([layers.Add()([x, y]), layers.Subtract()([x, y]), layers.Multiply()([x, y]),
                                   layers.Average()([x, y]), layers.Maximum()([x, y]), layers.Minimum()([x, y])])
    d = layers.Dot(axes=1)([x, y])
    out = layers.Dense(3, activation="softmax")(layers.Concatenate()([merged, d]))
    models["functional"] = keras.Model([a, b], out)

    # Nested models: a Sequential inside a Sequential; a Functional model using a two-output
    # Functional model (called twice, so its second call is inbound node 1) and a Sequential
    # as layers; a Sequential holding a branching Functional model.
    block = keras.Sequential([keras.Input((6,)), layers.Dense(5, activation="tanh"), layers.BatchNormalization(),
                              layers.Dense(4)], name="block")
    models["nested_sequential"] = keras.Sequential([
        keras.Input((8,)), layers.Dense(6, activation="relu"), block, layers.Dense(3),
    ])
    t = keras.Input((4,), name="pair_in")
    hidden = layers.Dense(4, activation="relu", name="pair_hidden")(t)
    pair = keras.Model(t, [layers.Dense(3, name="pair_a")(hidden), layers.Dense(3, activation="sigmoid", name="pair_b")(hidden)],
                       name="pair")
    head = keras.Sequential([keras.Input((3,)), layers.Dense(3, activation="elu"), layers.Dense(2)], name="head")
    u = keras.Input((5,), name="u")
    v = keras.Input((5,), name="v")
    pu = pair(layers.Dense(4, name="stem_u")(u))
    pv = pair(layers.Dense(4, name="stem_v")(v))
    joined = layers.Concatenate()([head(layers.Add()([pu[0], pv[1]])), pu[1], pv[0]])
    models["nested_functional"] = keras.Model([u, v], layers.Dense(2)(joined))
    w = keras.Input((6,))
    branches = keras.Model(w, layers.Multiply()([layers.Dense(4, activation="relu")(w), layers.Dense(4)(w)]), name="branches")
    models["sequential_of_functional"] = keras.Sequential([
        keras.Input((7,)), layers.Dense(6), branches, layers.Dense(2, activation="softmax"),
    ])
    # Preprocessing: Rescaling, Normalization adapted per channel, given per position (nested
    # lists in the config) and over everything, inverted.
    per_channel = layers.Normalization(axis=-1)
    per_channel.adapt(rng.normal(3, 2, (50, 4, 3)).astype("float32"))
    everything = layers.Normalization(axis=None, invert=True)
    everything.adapt(rng.normal(-1, 0.5, (20, 4, 3)).astype("float32"))
    given = layers.Normalization(axis=(1, 2), mean=rng.normal(0, 1, (4, 3)).tolist(),
                                 variance=rng.uniform(0.5, 2, (4, 3)).tolist())
    models["preprocessing"] = keras.Sequential([
        keras.Input((4, 3)), layers.Rescaling(0.5, offset=1.0), per_channel, given, everything,
        layers.Flatten(), layers.Dense(3),
    ])
    models["augmentation"] = keras.Sequential([
        keras.Input((6, 5, 2)), layers.Resizing(7, 4, crop_to_aspect_ratio=True),
        layers.RandomFlip("horizontal", seed=3), layers.RandomRotation(0.1),
        layers.RandomZoom(0.2, fill_mode="constant", fill_value=0.5),
        layers.RandomTranslation((-0.1, 0.2), 0.2, interpolation="nearest", fill_mode="wrap"),
        layers.RandomContrast(0.2, seed=4), layers.RandomBrightness((-0.2, 0.1), value_range=(0, 1)),
        layers.RandomInvert((0.2, 0.6), value_range=(0, 1), seed=5), layers.Conv2D(3, 3),
        layers.RandomGrayscale(0.3, seed=6), layers.Flatten(), layers.Dense(3),
    ])

    # Sequences: token ids through Embedding and two LSTMs (one reading backwards); attention:
    # causal self-attention with a residual connection, then cross-attention called by keyword with
    # its own key, output size and no biases. (Its value_dim stays key_dim: Keras 3.15 on JAX
    # fails when they differ, as jax.nn.dot_product_attention wants equal head sizes.)
    models["sequence"] = keras.Sequential([
        keras.Input((6,), dtype="int32"), layers.Embedding(12, 5), layers.LSTM(4, return_sequences=True, recurrent_dropout=0.25),
        layers.LSTM(3, go_backwards=True, return_sequences=True), layers.SimpleRNN(2, return_sequences=True, recurrent_dropout=0.2), layers.Flatten(),
        layers.Dense(2),
    ])
    q = keras.Input((5, 4), name="query")
    c = keras.Input((3, 6), name="context")
    h = layers.LayerNormalization()(layers.Add()([q, layers.MultiHeadAttention(num_heads=2, key_dim=3)(q, q, use_causal_mask=True)]))
    cross = layers.MultiHeadAttention(num_heads=3, key_dim=2, output_shape=5, use_bias=False)(
        query=h, value=c, key=layers.Dense(2)(c))
    # Then Keras's attention without projections: concat scores (scaled, causal), additive with a key.
    concat = layers.Attention(use_scale=True, score_mode="concat")([cross, cross], use_causal_mask=True)
    additive = layers.AdditiveAttention()([concat, h, layers.Dense(5)(h)])
    models["attention"] = keras.Model([q, c], layers.Dense(2)(layers.GlobalAveragePooling1D()(additive)))
    # Recurrent: GRU, a summed bidirectional SimpleRNN, and a bidirectional layer whose
    # backward half is another kind (a GRU without reset_after forward, an LSTM backward).
    models["recurrent"] = keras.Sequential([
        keras.Input((6, 3)), layers.GRU(4, return_sequences=True, dropout=0.2, recurrent_dropout=0.1), layers.TimeDistributed(layers.Dense(4, activation="tanh")),
        layers.Bidirectional(layers.SimpleRNN(3, return_sequences=True), merge_mode="sum"),
        layers.Bidirectional(layers.GRU(3, reset_after=False), backward_layer=layers.LSTM(3, go_backwards=True)),
        layers.Dense(2),
    ])
    # Keras's other activation, noise and normalization layers (PReLU's slopes move from
    # zero in the training epoch; the noise layers are the identity in prediction).
    models["normalization"] = keras.Sequential([
        keras.Input((5, 4, 4)), layers.Conv2D(6, 3, padding="same"), layers.GroupNormalization(groups=3),
        layers.PReLU(shared_axes=[1, 2]), layers.GaussianNoise(0.1), layers.UnitNormalization(axis=[1, 2]),
        layers.GlobalAveragePooling2D(), layers.Dense(6, activation="selu"), layers.AlphaDropout(0.1),
        layers.GaussianDropout(0.2), layers.ELU(alpha=0.7), layers.Identity(), layers.UnitNormalization(),
        layers.Dense(3),
    ])
    # Masks: Embedding(mask_zero) into a bidirectional LSTM, a dense layer and a GRU, a masked
    # average of a residual sum, a SimpleRNN reading backwards, Attention and causal
    # MultiHeadAttention (with dropout); Masking into an LSTM whose masked outputs are zero, then a GRU.
    tokens = keras.Input((8,), dtype="int32")
    embedded = layers.Embedding(12, 5, mask_zero=True)(tokens)
    projected = layers.Dense(4, activation="tanh")(layers.Bidirectional(layers.LSTM(3, return_sequences=True))(embedded))
    averaged = layers.GlobalAveragePooling1D()(layers.Add()([projected, layers.Dense(4)(embedded)]))
    frames = keras.Input((8, 3))
    masked_frames = layers.Masking(0.0)(frames)
    joined = layers.Concatenate()([layers.GRU(3)(projected), averaged, layers.SimpleRNN(2, go_backwards=True)(embedded),
                                   layers.LSTM(2)(masked_frames),
                                   layers.GlobalAveragePooling1D()(layers.Dense(2)(masked_frames)),
                                   layers.GlobalAveragePooling1D()(
                                       layers.Attention(use_scale=True)([projected, layers.Dense(4)(embedded)])),
                                   layers.GlobalAveragePooling1D()(layers.MultiHeadAttention(num_heads=2, key_dim=2, dropout=0.1)(
                                       projected, embedded, use_causal_mask=True))])
    models["masked"] = keras.Model([tokens, frames], layers.Dense(2)(joined))
    # Masks through Concatenate: an LSTM over the tokens joined end to end with unmasked frames
    # (their steps all kept), a GRU over masked features joined with more masked features.
    tokens = keras.Input((8,), dtype="int32")
    frames = keras.Input((8, 3))
    embedded = layers.Embedding(12, 5, mask_zero=True)(tokens)
    steps = layers.LSTM(2)(layers.Concatenate(axis=1)([embedded, layers.Dense(5)(frames)]))
    features = layers.GRU(2)(layers.Concatenate()([layers.Dense(4)(embedded), layers.Dense(3)(embedded)]))
    models["masked_concat"] = keras.Model([tokens, frames], layers.Dense(2)(layers.Concatenate()([steps, features])))
    models["masking"] = keras.Sequential([
        keras.Input((6, 3)), layers.Masking(0.0), layers.LSTM(3, return_sequences=True, zero_output_for_mask=True),
        layers.GRU(2), layers.Dense(2),
    ])
    # Keras's seq2seq example: an encoder's final states start the decoder (initial_state,
    # return_state); a GRU starts from a Dense of the cell state, a SimpleRNN from the hidden one.
    source = keras.Input((6, 5))
    target = keras.Input((4, 3))
    _, state_h, state_c = layers.LSTM(4, return_state=True)(source)
    decoded, _, _ = layers.LSTM(4, return_sequences=True, return_state=True)(target, initial_state=[state_h, state_c])
    _, refined = layers.GRU(3, return_state=True)(decoded, initial_state=[layers.Dense(3)(state_c)])
    simple = layers.SimpleRNN(2)(target, initial_state=layers.Dense(2)(state_h))
    _, forward, backward = layers.Bidirectional(layers.GRU(2, return_state=True))(
        source, initial_state=[layers.Dense(2)(state_h), layers.Dense(2)(state_c)])
    summary = layers.RepeatVector(4)(layers.Concatenate()([refined, simple, backward, forward]))
    # Self-attention over the decoded steps, its weights (return_attention_scores) read too.
    attended, scores = layers.MultiHeadAttention(num_heads=2, key_dim=2)(decoded, decoded, return_attention_scores=True)
    weights = layers.Reshape((4, 8))(layers.Permute((2, 1, 3))(scores))
    models["seq2seq"] = keras.Model([source, target], layers.Dense(3, activation="softmax")(
        layers.Concatenate()([decoded, summary, attended, weights])))
    # Structured data: integer codes multi-hot encoded, a number bucketed at adapted quantiles.
    codes = keras.Input((2,), dtype="int32")
    amount = keras.Input((1,))
    code_weights = keras.Input((2,))
    buckets = layers.Discretization(num_bins=4, output_mode="one_hot")
    # What `adapt` does with an array, without its tf.data check (TensorFlow is not installed).
    buckets.update_state(rng.standard_normal((200, 1)).astype("float32"))
    buckets.finalize_state()
    models["categorical"] = keras.Model([codes, amount, code_weights], layers.Dense(3)(layers.Concatenate()([
        layers.CategoryEncoding(num_tokens=6, output_mode="multi_hot")(codes), buckets(amount),
        layers.CategoryEncoding(num_tokens=6, output_mode="count")(codes),
        layers.CategoryEncoding(num_tokens=6, output_mode="count")(codes, count_weights=code_weights)])))
    # Volumes (video clips, scans): every 3-D layer.
    models["volume"] = keras.Sequential([
        keras.Input((4, 6, 5, 2)), layers.ZeroPadding3D(((1, 0), (0, 1), (1, 1))),
        layers.Conv3D(4, (2, 3, 3), strides=(1, 2, 1), padding="same", activation="relu"),
        layers.Conv3D(4, 2, dilation_rate=(1, 1, 2), groups=2), layers.MaxPooling3D((2, 2, 3), (1, 2, 1), padding="same"),
        layers.SpatialDropout3D(0.2), layers.Conv3DTranspose(3, 3, strides=2, padding="same", output_padding=1),
        layers.AveragePooling3D(3, 2, padding="same"), layers.Cropping3D(((0, 1), (1, 0), (0, 1))),
        layers.UpSampling3D((2, 1, 3)), layers.GlobalAveragePooling3D(keepdims=True), layers.GlobalMaxPooling3D(),
        layers.Dense(3),
    ])
    models["separable_1d"] = keras.Sequential([
        keras.Input((9, 3)), layers.DepthwiseConv1D(3, padding="same", depth_multiplier=2, activation="relu"),
        layers.SeparableConv1D(4, 2, strides=2, activation="tanh"), layers.DepthwiseConv1D(2, dilation_rate=2, use_bias=False),
        layers.GlobalMaxPooling1D(), layers.Dense(2),
    ])
    # Convolutional LSTMs over clips, signals and volumes; states returned and passed on.
    clip, signal, volume = keras.Input((4, 6, 6, 2)), keras.Input((5, 8, 2)), keras.Input((3, 3, 4, 4, 1))
    frames = layers.ConvLSTM2D(3, 3, padding="same", return_sequences=True, dropout=0.1, recurrent_dropout=0.1)(clip)
    last, state_h, state_c = layers.ConvLSTM2D(2, (3, 2), strides=2, return_state=True, go_backwards=True)(frames)
    again = layers.ConvLSTM2D(2, (3, 2), strides=2, activation="relu", recurrent_activation="hard_sigmoid")(
        frames, initial_state=[state_h, state_c])
    steps = layers.ConvLSTM1D(2, 3, dilation_rate=2, return_sequences=True, use_bias=False)(signal)
    cube = layers.ConvLSTM3D(2, 2, padding="same", unit_forget_bias=False)(volume)
    models["conv_lstm"] = keras.Model([clip, signal, volume], layers.Dense(3)(layers.Concatenate()([
        layers.Flatten()(last), layers.Flatten()(again), layers.Flatten()(steps), layers.Flatten()(cube)])))
    vocabulary = {"sequence": 12, "masked": 12, "masked_concat": 12, "categorical": 6}

    for name, model in models.items():
        inputs = [rng.integers(0, vocabulary[name], (7,) + tuple(i.shape[1:])).astype("int32")
                  if name in vocabulary and "int" in str(i.dtype)
                  else rng.standard_normal((7,) + tuple(i.shape[1:])).astype("float32") for i in model.inputs]
        if name in ("masked", "masked_concat", "masking"):
            # Padding at the end, at the start and in the middle.
            for x in inputs:
                x[1, -3:] = 0
                x[3, :2] = 0
                x[5, 2] = 0
        model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
        target = rng.standard_normal((7,) + tuple(model.outputs[0].shape[1:])).astype("float32")
        model.fit(inputs if len(inputs) > 1 else inputs[0], target, epochs=1, verbose=0)
        model.save(os.path.join(directory, name + ".keras"))
        expected = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
        for k, x in enumerate(inputs):
            write_tensor(os.path.join(directory, f"{name}.input{k}.json"), x)
        write_tensor(os.path.join(directory, name + ".expected.json"), expected)
    print(" ".join(models))


def onnx_run(model_path, *paths):
    import onnx
    import onnxruntime as ort
    *inputs, output = paths
    onnx.checker.check_model(onnx.load(model_path), full_check=True)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feeds = {i.name: read_tensor(p) for i, p in zip(session.get_inputs(), inputs)}
    y = session.run(None, feeds)[0]
    write_tensor(output, y)


def safetensors_read(path, output):
    from safetensors.numpy import load_file
    tensors = load_file(path)
    with open(output, "w") as f:
        json.dump({k: list(v.shape) for k, v in tensors.items()}, f)


def torch_net_numpy(path, input_path, output):
    import numpy as np
    from safetensors.numpy import load_file
    p = {k: v.astype(np.float64) for k, v in load_file(path).items()}

    def conv2d(x, w, b):
        # nn.Conv2d, stride 1, no padding: x (N, C, H, W), w (out, C, kH, kW).
        windows = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))
        return np.einsum("nchwij,ocij->nohw", windows, w) + b[None, :, None, None]

    def max_pool2d(x):
        n, c, h, w = x.shape
        return x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    def relu(x):
        return np.maximum(x, 0)

    x = read_tensor(input_path).astype(np.float64).transpose(0, 3, 1, 2)   # NHWC -> NCHW
    x = relu(max_pool2d(conv2d(x, p["conv1.weight"], p["conv1.bias"])))
    x = relu(max_pool2d(conv2d(x, p["conv2.weight"], p["conv2.bias"])))    # conv2_drop: eval
    x = x.reshape(x.shape[0], -1)                                         # x.view(-1, 320)
    x = relu(x @ p["fc1.weight"].T + p["fc1.bias"])
    write_tensor(output, x @ p["fc2.weight"].T + p["fc2.bias"])


def numpy_read(*paths):
    """Prints, as JSON, what np.load finds in each .npy or .npz file: dtype, shape, values."""
    import numpy as np

    result = {}
    for path in paths:
        loaded = np.load(path)
        arrays = {name: loaded[name] for name in loaded.files} if path.endswith(".npz") else {"": loaded}
        result[path] = {name: {"dtype": str(a.dtype), "shape": list(a.shape), "values": a.reshape(-1).tolist()}
                        for name, a in arrays.items()}
    print(json.dumps(result))


COMMANDS = {
    "keras-predict": keras_predict, "keras-predict-many": keras_predict_many, "keras-resume": keras_resume,
    "keras-make": keras_make,
    "onnx-run": onnx_run, "safetensors-read": safetensors_read, "torch-net-numpy": torch_net_numpy,
    "numpy-read": numpy_read,
}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](*sys.argv[2:])
