"""Times Kestrel's benchmark workloads in Keras (TensorFlow backend) and PyTorch.

One workload in one framework per process, so that peak memory is that run's own:

    python frameworks.py --framework keras --workload mlp-tutorial-b32

prints one JSON object: per-epoch training time (the second epoch, after warm-up), inference
samples per second and peak resident memory. `compare-frameworks.sh` runs every pair and
Kestrel's `kestrel-bench --json`, and prints the table for Docs/Performance.md.

The data is random (like kestrel-bench's): time does not depend on the values.
"""
import argparse
import json
import os
import resource
import time

import numpy as np

WORKLOADS = {
    "mlp-tutorial-b32": dict(kind="mlp", hidden=[128], batch=32, input=(28, 28)),
    "mlp-tutorial-b256": dict(kind="mlp", hidden=[128], batch=256, input=(28, 28)),
    "mlp-3x1024-b256": dict(kind="mlp", hidden=[1024, 1024, 1024], batch=256, input=(784,)),
    "cnn-mnist-convnet-b128": dict(kind="cnn", batch=128, input=(28, 28, 1)),
    # Images as 28 timesteps of 28 features.
    "lstm-b128": dict(kind="lstm", batch=128, input=(28, 28)),
    "attention-b128": dict(kind="attention", batch=128, input=(28, 28)),
    "gru-b128": dict(kind="gru", batch=128, input=(28, 28)),
    "bigru-b128": dict(kind="bigru", batch=128, input=(28, 28)),
    # Keras's "3D image classification from CT scans" network (first three blocks) on 48×48×24
    # scans, 160 an epoch, predicted 4 at a time.
    "cnn3d-ct-b4": dict(kind="cnn3d", batch=4, input=(48, 48, 24, 1), samples=160, classes=2, inference_batch=4),
    # Clips of 10 frames of 32×32 through two convolutional LSTMs (Keras's next-frame
    # prediction example's layers, smaller), 320 clips an epoch.
    "convlstm-b8": dict(kind="convlstm", batch=8, input=(10, 32, 32, 1), samples=320, inference_batch=8),
}
SAMPLES = 60000


def data(w):
    samples = w.get("samples", SAMPLES)
    rng = np.random.default_rng(1)
    x = rng.random((samples,) + w["input"], dtype=np.float32)
    y = (np.arange(samples) % w.get("classes", 10)).astype(np.int64)
    return x, y


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_keras(w):
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from keras import layers

    x, y = data(w)
    if w["kind"] == "mlp":
        model = keras.Sequential([keras.Input(shape=w["input"]), layers.Flatten()]
                                 + [layers.Dense(h, activation="relu") for h in w["hidden"]]
                                 + [layers.Dense(10)])
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    elif w["kind"] == "lstm":
        model = keras.Sequential([keras.Input(shape=w["input"]), layers.LSTM(128),
                                  layers.Dense(10, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    elif w["kind"] in ("gru", "bigru"):
        recurrent = layers.GRU(128) if w["kind"] == "gru" else layers.Bidirectional(layers.GRU(64))
        model = keras.Sequential([keras.Input(shape=w["input"]), recurrent, layers.Dense(10, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    elif w["kind"] == "attention":
        inputs = keras.Input(shape=w["input"])
        h = layers.Dense(64)(inputs)
        h = layers.LayerNormalization()(layers.Add()([h, layers.MultiHeadAttention(num_heads=4, key_dim=16)(h, h)]))
        outputs = layers.Dense(10, activation="softmax")(layers.GlobalAveragePooling1D()(h))
        model = keras.Model(inputs, outputs)
        loss = "sparse_categorical_crossentropy"
    elif w["kind"] == "cnn3d":
        blocks = []
        for filters in (64, 64, 128):
            blocks += [layers.Conv3D(filters, 3, activation="relu"), layers.MaxPooling3D(2), layers.BatchNormalization()]
        model = keras.Sequential([keras.Input(shape=w["input"])] + blocks + [
            layers.GlobalAveragePooling3D(), layers.Dense(512, activation="relu"), layers.Dropout(0.3),
            layers.Dense(2, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    elif w["kind"] == "convlstm":
        model = keras.Sequential([
            keras.Input(shape=w["input"]),
            layers.ConvLSTM2D(16, 3, padding="same", return_sequences=True), layers.BatchNormalization(),
            layers.ConvLSTM2D(16, 3, padding="same"), layers.GlobalAveragePooling2D(),
            layers.Dense(10, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    else:
        model = keras.Sequential([
            keras.Input(shape=w["input"]),
            layers.Conv2D(32, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"), layers.MaxPooling2D(2),
            layers.Flatten(), layers.Dropout(0.5), layers.Dense(10, activation="softmax")])
        loss = "sparse_categorical_crossentropy"
    model.compile(optimizer="adam", loss=loss, metrics=["accuracy"])

    times = []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.start)

    model.fit(x, y, batch_size=w["batch"], epochs=2, verbose=0, callbacks=[Timer()])
    start = time.perf_counter()
    model.predict(x, batch_size=w.get("inference_batch", 256), verbose=0)
    inference = len(x) / (time.perf_counter() - start)
    return dict(epoch_seconds=times[-1], first_epoch_seconds=times[0], inference_samples_per_second=inference,
                version=f"keras {keras.__version__} / tensorflow")


def run_torch(w):
    import torch
    from torch import nn

    torch.set_num_threads(os.cpu_count())
    torch.manual_seed(1)
    x, y = data(w)
    if w["kind"] == "mlp":
        sizes = [int(np.prod(w["input"]))] + w["hidden"]
        mods = [nn.Flatten()]
        for a, b in zip(sizes, sizes[1:]):
            mods += [nn.Linear(a, b), nn.ReLU()]
        mods.append(nn.Linear(sizes[-1], 10))
        model = nn.Sequential(*mods)
        xt = torch.from_numpy(x)
    elif w["kind"] == "lstm":
        class LSTMClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.lstm = nn.LSTM(28, 128, batch_first=True)
                self.out = nn.Linear(128, 10)

            def forward(self, x):
                return self.out(self.lstm(x)[0][:, -1])

        model = LSTMClassifier()
        xt = torch.from_numpy(x)
    elif w["kind"] in ("gru", "bigru"):
        class GRUClassifier(nn.Module):
            # PyTorch's GRU is Keras's reset_after one; both directions' final states, as Keras's
            # Bidirectional concatenates them.
            def __init__(self, bidirectional):
                super().__init__()
                self.gru = nn.GRU(28, 64 if bidirectional else 128, batch_first=True, bidirectional=bidirectional)
                self.out = nn.Linear(128, 10)

            def forward(self, x):
                h = self.gru(x)[1]
                return self.out(torch.cat([h[0], h[1]], dim=1) if h.shape[0] == 2 else h[0])

        model = GRUClassifier(w["kind"] == "bigru")
        xt = torch.from_numpy(x)
    elif w["kind"] == "attention":
        class AttentionClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = nn.Linear(28, 64)
                self.attention = nn.MultiheadAttention(64, 4, batch_first=True)   # 4 heads of 16
                self.norm = nn.LayerNorm(64, eps=1e-3)
                self.out = nn.Linear(64, 10)

            def forward(self, x):
                h = self.embed(x)
                h = self.norm(h + self.attention(h, h, h, need_weights=False)[0])
                return self.out(h.mean(dim=1))

        model = AttentionClassifier()
        xt = torch.from_numpy(x)
    elif w["kind"] == "cnn3d":
        # BatchNorm as Keras's (momentum 0.99 is PyTorch's 0.01, epsilon 1e-3).
        mods, channels = [], 1
        for filters in (64, 64, 128):
            mods += [nn.Conv3d(channels, filters, 3), nn.ReLU(), nn.MaxPool3d(2),
                     nn.BatchNorm3d(filters, eps=1e-3, momentum=0.01)]
            channels = filters
        model = nn.Sequential(*mods, nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(128, 512), nn.ReLU(),
                              nn.Dropout(0.3), nn.Linear(512, 2))
        xt = torch.from_numpy(x).permute(0, 4, 1, 2, 3).contiguous()   # NCDHW
    elif w["kind"] == "convlstm":
        class ConvLSTMCell(nn.Module):
            # PyTorch has no ConvLSTM: the usual cell, one convolution of [input, state] giving
            # the four gates (Keras's input and recurrent convolutions, both "same", summed).
            def __init__(self, channels, filters):
                super().__init__()
                self.filters = filters
                self.conv = nn.Conv2d(channels + filters, 4 * filters, 3, padding=1)

            def forward(self, frames):   # (N, T, C, H, W) → (N, T, F, H, W)
                n, steps, _, height, width = frames.shape
                h = frames.new_zeros(n, self.filters, height, width)
                c = torch.zeros_like(h)
                outputs = []
                for t in range(steps):
                    i, f, g, o = self.conv(torch.cat([frames[:, t], h], dim=1)).chunk(4, dim=1)
                    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                    h = torch.sigmoid(o) * torch.tanh(c)
                    outputs.append(h)
                return torch.stack(outputs, dim=1)

        class ConvLSTMClassifier(nn.Module):
            def __init__(self):
                super().__init__()
                self.first, self.second = ConvLSTMCell(1, 16), ConvLSTMCell(16, 16)
                self.norm = nn.BatchNorm3d(16, eps=1e-3, momentum=0.01)   # over (T, H, W), as Keras's
                self.out = nn.Linear(16, 10)

            def forward(self, x):
                y = self.norm(self.first(x).transpose(1, 2)).transpose(1, 2)
                return self.out(self.second(y)[:, -1].mean(dim=(2, 3)))

        model = ConvLSTMClassifier()
        xt = torch.from_numpy(x).permute(0, 1, 4, 2, 3).contiguous()   # (N, T, C, H, W)
    else:
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
        xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()   # NCHW
    yt = torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()
    batch = w["batch"]
    times = []
    samples = len(xt)
    for _ in range(2):
        start = time.perf_counter()
        model.train()
        order = torch.randperm(samples)
        for i in range(0, samples, batch):
            idx = order[i:i + batch]
            optimizer.zero_grad()
            loss = loss_fn(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    model.eval()
    start = time.perf_counter()
    step = w.get("inference_batch", 256)
    with torch.no_grad():
        for i in range(0, samples, step):
            model(xt[i:i + step])
    inference = samples / (time.perf_counter() - start)
    return dict(epoch_seconds=times[-1], first_epoch_seconds=times[0], inference_samples_per_second=inference,
                version=f"torch {torch.__version__}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=["keras", "torch"], required=True)
    parser.add_argument("--workload", choices=sorted(WORKLOADS), required=True)
    args = parser.parse_args()
    w = WORKLOADS[args.workload]
    result = run_keras(w) if args.framework == "keras" else run_torch(w)
    result.update(framework=args.framework, workload=args.workload, peak_resident_mb=peak_mb())
    print(json.dumps(result))


if __name__ == "__main__":
    main()
