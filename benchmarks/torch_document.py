"""The document's program written in plain PyTorch: the peer for the start-up benchmark (a whole process).

Same data as ``examples/document_model.py`` (1000 samples, 10 features, a random linear teacher),
the same model (10 -> 64 relu -> 32 relu -> 10), Adam with Keras's defaults, categorical
cross-entropy, 10 epochs of batch 32 with the last 20% held out and evaluated each epoch, then the
accuracy on all samples and a saved file. It prints one line per epoch, as a user's script would.
PyTorch is an optional peer here, never a dependency of nnengine.

    python -m benchmarks.torch_document
"""
import os
import tempfile

import numpy as np
import torch


def main(samples=1000, epochs=10, batch_size=32):
    """Train, evaluate and save; return the accuracy."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((samples, 10)).astype(np.float32)
    labels = np.argmax(x @ rng.standard_normal((10, 10)), axis=1)
    split = int(samples * 0.8)
    x_t, y_t = torch.from_numpy(x), torch.from_numpy(labels)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(10, 64), torch.nn.ReLU(), torch.nn.Linear(64, 32), torch.nn.ReLU(),
                                torch.nn.Linear(32, 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(epochs):
        order = torch.randperm(split)
        for start in range(0, split, batch_size):
            index = order[start:start + batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x_t[index]), y_t[index])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            val_loss = loss_fn(model(x_t[split:]), y_t[split:]).item()
        print(f"Epoch {epoch + 1}/{epochs} - loss: {loss.item():.4f} - val_loss: {val_loss:.4f}")
    with torch.no_grad():
        accuracy = (model(x_t).argmax(dim=1) == y_t).float().mean().item()
    print("Accuracy:", accuracy)
    with tempfile.TemporaryDirectory() as folder:
        torch.save(model.state_dict(), os.path.join(folder, "model.pt"))
    return accuracy


if __name__ == "__main__":
    main()
