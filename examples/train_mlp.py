"""Train the reference model (10 -> 64 relu -> 32 relu -> 10 softmax) with nnengine's Tensor API.

The data is synthetic but learnable: 10 features drawn from a normal
distribution, labelled by the argmax of a fixed random linear "teacher".
The model trains with Adam (Keras defaults) on mini-batches of 32 and prints
its loss and accuracy after each epoch; the loss falls as it learns.

    python examples/train_mlp.py [--epochs 10] [--samples 2000] [--device cpu]
"""
import argparse
import sys
import time

import numpy as np

import nnengine as nn
import nnengine.functional as F

LAYER_SIZES = (10, 64, 32, 10)


def make_data(samples, seed):
    """Inputs x (samples, 10) float32 and integer labels from a random linear teacher."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((samples, LAYER_SIZES[0])).astype(np.float32)
    teacher = rng.standard_normal((LAYER_SIZES[0], LAYER_SIZES[-1]))
    return x, np.argmax(x @ teacher, axis=1)


def glorot_uniform(rng, fan_in, fan_out):
    """Keras's default kernel initializer: U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32)


class MLP:
    """Dense layers as (kernel, bias) pairs; relu inside, logits out (softmax lives in the loss)."""

    def __init__(self, sizes, device, seed):
        rng = np.random.default_rng(seed)
        self.layers = [
            (nn.tensor(glorot_uniform(rng, n_in, n_out), device=device, requires_grad=True),
             nn.zeros(n_out, device=device, requires_grad=True))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])
        ]

    def parameters(self):
        return [p for layer in self.layers for p in layer]

    def logits(self, x):
        for i, (w, b) in enumerate(self.layers):
            x = F.linear(x, w, b, "relu" if i < len(self.layers) - 1 else None)
        return x


class Adam:
    """Adam with Keras's defaults, over the fused in-place update of the backend."""

    def __init__(self, params, lr=0.001):
        self.params, self.lr, self.step = params, lr, 0
        self.m = [nn.zeros(p.shape, device=p.device) for p in params]
        self.v = [nn.zeros(p.shape, device=p.device) for p in params]

    def update(self):
        self.step += 1
        for p, m, v in zip(self.params, self.m, self.v):
            F.adam_update(p, p.grad, m, v, self.step, lr=self.lr)
            p.zero_grad()


def evaluate(model, x, y):
    """(mean loss, accuracy) over the whole set, without recording a graph."""
    with nn.no_grad():
        logits = model.logits(x)
        loss = F.softmax_cross_entropy(logits, y).item()
        accuracy = float((logits.argmax(axis=1) == y).mean().item())
    return loss, accuracy


def train(epochs=10, samples=2000, batch_size=32, device=None, seed=0, log=print):
    """Train the reference model; return the per-epoch training losses and the final accuracy."""
    x_host, y_host = make_data(samples, seed)
    x, y = nn.tensor(x_host, device=device), nn.tensor(y_host, device=device)
    model = MLP(LAYER_SIZES, x.device, seed)
    optimizer = Adam(model.parameters())
    order_rng = np.random.default_rng(seed + 1)
    losses = []
    for epoch in range(1, epochs + 1):
        start = time.perf_counter()
        total = 0.0
        for batch in np.array_split(order_rng.permutation(samples), int(np.ceil(samples / batch_size))):
            loss = F.softmax_cross_entropy(model.logits(x[batch]), y[batch])
            loss.backward()
            optimizer.update()
            total += loss.item() * len(batch)
        losses.append(total / samples)
        _, accuracy = evaluate(model, x, y)
        log(f"Epoch {epoch}/{epochs} - {time.perf_counter() - start:.2f}s - loss: {losses[-1]:.4f} "
            f"- accuracy: {accuracy:.4f}")
    return losses, evaluate(model, x, y)[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--device", default=None, help="cpu, numpy, cuda (default: nnengine's default device)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.device is not None:
        try:
            nn.get_backend(args.device)
        except (nn.DeviceUnavailableError, ValueError, TypeError) as error:   # one line, no traceback
            print(f"examples/train_mlp.py: {error}", file=sys.stderr)
            raise SystemExit(2)
    losses, accuracy = train(args.epochs, args.samples, device=args.device, seed=args.seed)
    print(f"Loss fell from {losses[0]:.4f} to {losses[-1]:.4f}")
    print("Accuracy:", round(accuracy, 4))


if __name__ == "__main__":
    main()
