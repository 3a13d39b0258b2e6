"""Trains Keras's mnist_convnet example, written in PyTorch, on Fashion-MNIST; prints its test accuracy.

A third framework's figure for the same model and schedule as `mnist-cnn --model convnet`
and keras-convnet-accuracy.py: Conv2D(32, 3, relu) -> MaxPool(2) -> Conv2D(64, 3, relu) ->
MaxPool(2) -> Flatten -> Dropout(0.5) -> Dense(10), softmax cross-entropy, batch 128, Adam with
Keras's defaults (lr 1e-3, betas 0.9/0.999, epsilon 1e-7), Keras's initialisers (Glorot
uniform weights, zero biases) instead of PyTorch's own, and a new sample order every epoch
(DataLoader-style, from --seed), as Kestrel's fit and an unseeded Keras do:

    python torch-convnet-accuracy.py --epochs 12 --seed 1 [--validation-split 0]

Keras's validation_split takes the last samples before shuffling; so does --validation-split.
Reads the IDX files of Debian's dataset-fashion-mnist (or --data DIR).
"""
import argparse
import json
import time

import fashion_idx


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--validation-split", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = parser.parse_args()
    if not 0 <= args.validation_split < 1:
        parser.error(f"--validation-split must be in [0, 1), found {args.validation_split}")
    import torch
    from torch import nn

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    # NCHW, PyTorch's layout; the flattened feature order differs from Keras's NHWC, which
    # changes nothing when training from a random start.
    x_train, y_train, x_test, y_test = (torch.from_numpy(a) for a in fashion_idx.load(args.data))
    x_train, x_test = x_train[:, None], x_test[:, None]
    keep = len(x_train) - int(len(x_train) * args.validation_split)
    x_val, y_val = x_train[keep:], y_train[keep:]
    x_train, y_train = x_train[:keep], y_train[:keep]

    model = nn.Sequential(
        nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))
    for module in model:
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)  # Keras's glorot_uniform: same fans for both layouts
            nn.init.zeros_(module.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    loss_fn = nn.CrossEntropyLoss()  # softmax + negative log-likelihood, as softmax output + SCCE
    generator = torch.Generator().manual_seed(args.seed)

    def evaluate(x, y):
        model.eval()
        loss, correct = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(x), 1000):
                logits = model(x[start:start + 1000])
                loss += loss_fn(logits, y[start:start + 1000]).item() * len(logits)
                correct += (logits.argmax(1) == y[start:start + 1000]).sum().item()
        return loss / len(x), correct / len(x)

    val_accuracy, epoch_seconds, train_loss = [], [], None
    for epoch in range(args.epochs):
        model.train()
        began = time.perf_counter()
        order = torch.randperm(len(x_train), generator=generator)
        total, seen = 0.0, 0
        for start in range(0, len(order), args.batch_size):
            rows = order[start:start + args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_train[rows]), y_train[rows])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(rows)
            seen += len(rows)
        epoch_seconds.append(time.perf_counter() - began)
        train_loss = total / seen
        line = f"epoch {epoch + 1}/{args.epochs}: {epoch_seconds[-1]:.1f}s loss {train_loss:.4f}"
        if len(x_val):
            val_accuracy.append(evaluate(x_val, y_val)[1])
            line += f" val_accuracy {val_accuracy[-1]:.4f}"
        print(line, flush=True)
    test_loss, test_accuracy = evaluate(x_test, y_test)
    print(json.dumps(dict(epochs=args.epochs, seed=args.seed, test_loss=test_loss, test_accuracy=test_accuracy,
                          train_loss=train_loss, val_accuracy=val_accuracy or None,
                          epoch_seconds=[round(s, 2) for s in epoch_seconds], torch=torch.__version__)))


if __name__ == "__main__":
    main()
