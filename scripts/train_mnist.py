"""Train BMXNet's LeNet on MNIST, written out step by step.

This is what ``tinybnn train`` does, without the checkpoints and options:

    python scripts/train_mnist.py --data ../shared/datasets --epochs 10            # float LeNet
    python scripts/train_mnist.py --data ../shared/datasets --epochs 15 --binary   # binary LeNet
"""

import argparse
import time

import numpy as np

from tinybnn.autograd import Tensor, no_grad, softmax_cross_entropy
from tinybnn.data import iterate_batches, load_dataset, to_float_nchw
from tinybnn.models import lenet
from tinybnn.optim import Adam, CosineLR
from tinybnn.serialization import save_model
from tinybnn.workspace import Workspace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder with mnist-5k/ or mnist/ (default: $TINYBNN_DATA or download)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--binary", action="store_true", help="binary middle layers (BMXNet's binary LeNet)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="lenet.npz")
    args = parser.parse_args()

    # 1. Data: uint8 images -> float32 (N, 1, 28, 28) in [0, 1].
    data = load_dataset("mnist", data_dir=args.data)
    train_x, train_y = to_float_nchw(data.train_images), data.train_labels
    test_x, test_y = to_float_nchw(data.test_images), data.test_labels

    # 2. The network; its parameters are created by a first (zero) input.
    rng = np.random.default_rng(args.seed)
    model = lenet(binary=args.binary, rng=rng).build((1, 28, 28))

    # 3. Adam with a cosine learning-rate schedule.
    optimizer = Adam(model.parameters(), lr=1e-3)
    schedule = CosineLR(1e-3, args.epochs)

    # 4. Scratch memory: each step's arrays come from a workspace the next step reuses.
    memory = Workspace("training step")

    for epoch in range(args.epochs):
        optimizer.lr = schedule.lr_at(epoch)
        model.train()
        start, total = time.perf_counter(), 0.0
        for images, labels in iterate_batches(train_x, train_y, 100, rng=rng):
            with memory.use():
                loss = softmax_cross_entropy(model(Tensor(images)), labels)  # forward
                optimizer.zero_grad()
                loss.backward()  # gradients
                optimizer.step()  # update (+ clip latent weights)
                total += loss.item() * len(labels)
        seconds = time.perf_counter() - start

        # 5. Evaluation: BatchNorm uses its running statistics, no graph is recorded.
        model.eval()
        with no_grad():
            predictions = np.concatenate(
                [model(Tensor(test_x[i : i + 500])).data.argmax(axis=1) for i in range(0, len(test_x), 500)]
            )
        accuracy = float((predictions == test_y).mean())
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {total / len(train_x):.4f}  "
            f"test accuracy {accuracy:.4f}  {seconds:.1f} s"
        )

    save_model(args.out, model, (1, 28, 28), metadata={"test_accuracy": accuracy})
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
