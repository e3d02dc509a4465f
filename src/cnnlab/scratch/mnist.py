"""The classic two-convolution MNIST network in pure NumPy, and its training loop.

conv 3×3 (1 -> c1, 'same') -> ReLU -> max-pool 2 -> conv 3×3 (c1 -> c2) -> ReLU
-> max-pool 2 -> dense (c2·7·7 -> hidden) -> ReLU -> dense (hidden -> 10),
trained with Adam on softmax cross-entropy. Used by ``cnnlab scratch train mnist``.

>>> net = build_mnist_net("im2col", channels=(4, 8), hidden=16)
>>> [type(layer).__name__ for layer in net.layers][:3]
['Conv2d', 'ReLU', 'MaxPool2d']
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.scratch.conv import Conv2d
from cnnlab.scratch.layers import Dense, Flatten, ReLU
from cnnlab.scratch.loss import SoftmaxCrossEntropy
from cnnlab.scratch.optim import SGD, Adam
from cnnlab.scratch.pooling import MaxPool2d
from cnnlab.scratch.sequential import Sequential

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # of the training pixels scaled to [0, 1]


def build_mnist_net(algorithm: str = "im2col", channels=(32, 64), hidden: int = 128, seed: int = 0,
                    image_size: int = 28) -> Sequential:
    """The two-convolution net; ``algorithm`` picks how both convolutions are computed."""
    rng = np.random.default_rng(seed)
    c1, c2 = channels
    side = image_size // 4
    first = Conv2d(1, c1, 3, padding=1, algorithm=algorithm, rng=rng)
    first.input_grad = False  # nothing needs the gradient of the images
    return Sequential(
        first, ReLU(), MaxPool2d(2),  # (N, c1, 14, 14)
        Conv2d(c1, c2, 3, padding=1, algorithm=algorithm, rng=rng), ReLU(), MaxPool2d(2),  # (N, c2, 7, 7)
        Flatten(), Dense(c2 * side * side, hidden, rng=rng), ReLU(), Dense(hidden, 10, rng=rng),
    )


def prepare_images(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> standardised float32 (N, 1, 28, 28)."""
    if images.ndim != 3:
        raise CnnlabError(f"expected images of shape (N, H, W), got {images.shape}")
    return ((images.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD)[:, None]


def evaluate(net: Sequential, x: np.ndarray, y: np.ndarray, batch_size: int = 1000) -> float:
    """Fraction of ``x`` classified as ``y`` (evaluation mode)."""
    net.eval()
    correct = 0
    for start in range(0, len(x), batch_size):
        logits = net(x[start : start + batch_size])
        correct += int((logits.argmax(axis=1) == y[start : start + batch_size]).sum())
    net.train()
    return correct / max(1, len(x))


def train_mnist(train_x, train_y, test_x, test_y, algorithm="im2col", epochs=1, batch_size=64, lr=1e-3,
                optimizer="adam", seed=0, channels=(32, 64), hidden=128,
                progress: Callable[[str], None] | None = None) -> tuple[Sequential, dict]:
    """Train on uint8 images and labels; returns the net and a summary dict.

    The learning rate decays linearly to 0 over the run (one cycle of the
    schedule), which helps a single epoch reach a good accuracy.
    """
    if epochs < 1 or batch_size < 1 or lr <= 0:
        raise CnnlabError(f"epochs and batch_size must be >= 1 and lr > 0, got {epochs}, {batch_size}, {lr}")
    say = progress or (lambda message: None)
    rng = np.random.default_rng(seed)
    xtr, ytr = prepare_images(train_x), train_y.astype(np.int64)
    xte, yte = prepare_images(test_x), test_y.astype(np.int64)
    net = build_mnist_net(algorithm, channels, hidden, seed, image_size=xtr.shape[-1])
    opt = Adam(net.parameters(), lr=lr) if optimizer == "adam" else SGD(net.parameters(), lr=lr, momentum=0.9)
    loss_fn = SoftmaxCrossEntropy()
    steps_per_epoch = -(-len(xtr) // batch_size)
    total_steps, step = epochs * steps_per_epoch, 0
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(xtr))
        running, seen, epoch_start = 0.0, 0, time.perf_counter()
        for b in range(steps_per_epoch):
            idx = order[b * batch_size : (b + 1) * batch_size]
            opt.lr = lr * (1.0 - step / total_steps)
            loss = loss_fn(net(xtr[idx]), ytr[idx])
            net.backward(loss_fn.backward())
            opt.step()
            step += 1
            running += loss * len(idx)
            seen += len(idx)
            if (b + 1) % 100 == 0 or b + 1 == steps_per_epoch:
                rate = seen / (time.perf_counter() - epoch_start)
                say(f"epoch {epoch}/{epochs} step {b + 1}/{steps_per_epoch} loss {running / seen:.4f} {rate:.0f} img/s")
        history.append({"epoch": epoch, "train_loss": running / seen})
    train_seconds = time.perf_counter() - start
    eval_start = time.perf_counter()
    accuracy = evaluate(net, xte, yte)
    summary = {
        "test_accuracy": accuracy,
        "train_seconds": round(train_seconds, 3),
        "eval_seconds": round(time.perf_counter() - eval_start, 3),
        "images_per_second": round(epochs * len(xtr) / train_seconds, 1),
        "algorithm": algorithm,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "optimizer": optimizer,
        "seed": seed,
        "channels": list(channels),
        "hidden": hidden,
        "train_examples": int(len(xtr)),
        "test_examples": int(len(xte)),
        "history": history,
    }
    say(f"test accuracy {accuracy:.4f} after {train_seconds:.1f} s ({summary['images_per_second']:.0f} img/s)")
    return net, summary
