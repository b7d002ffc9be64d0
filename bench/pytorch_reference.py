#!/usr/bin/env python3
"""PyTorch reference for bench/train_throughput.sh: the paper's SimpleCNN, identical to
greenlab's spec (crates/model), trained one epoch on Fashion-MNIST with Adam; prints one JSON
line with the training throughput (images/s, data already in memory, evaluation excluded).

    python bench/pytorch_reference.py --conv 2 --linear 3 --batch-size 512 --threads 2

What is timed is what greenlab's training loop times (crates/train/src/run.rs): from the
first step of the epoch to the last, each step gathering its batch from the shuffled training
set in memory, running forward, backward and Adam, and keeping the epoch's training loss and
correct predictions (here accumulated on the device and read once at the end, so a GPU run
is not synchronised per step). The shuffle, building the model and loading the data are
outside the timed part, on both sides.
"""
import argparse
import gzip
import json
import os
import struct
import sys
import time

import torch
from torch import nn


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        sys.exit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return torch.frombuffer(bytearray(data[4 + 4 * ndim :]), dtype=torch.uint8).reshape(dims)


def find(data_dir, stem):
    for name in (stem + ".gz", stem):
        p = os.path.join(data_dir, name)
        if os.path.exists(p):
            return p
    sys.exit(f"missing {stem}[.gz] in {data_dir}")


def simple_cnn(conv, linear, relu, channels=1, size=28, classes=10):
    layers, c, h = [], channels, size
    for d in range(conv):
        out = channels * 3 ** (d + 1)
        layers += [nn.Conv2d(c, out, 3, stride=1, padding=1), nn.BatchNorm2d(out)]
        if relu:
            layers.append(nn.ReLU())
        layers.append(nn.MaxPool2d(2, 2))
        c, h = out, h // 2
    layers.append(nn.Flatten())
    features = c * h * h
    width = features
    for d in range(linear - 1):
        out = max(features >> (d + 1), c)
        layers.append(nn.Linear(width, out))
        width = out
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--conv", type=int, default=2)
    ap.add_argument("--linear", type=int, default=3)
    ap.add_argument("--no-relu", action="store_true")
    ap.add_argument("--batch-size", type=int, default=512)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--warmup-epochs", type=int, default=0,
                    help="epochs trained before the timed ones (not counted)")
    ap.add_argument("--cudnn-benchmark", action="store_true",
                    help="torch.backends.cudnn.benchmark = True (what greenlab's torch engine sets on GPUs)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--limit-train", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    a = ap.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True
    device = torch.device(a.device)
    images = read_idx(find(a.data_dir, "train-images-idx3-ubyte"))
    labels = read_idx(find(a.data_dir, "train-labels-idx1-ubyte")).long()
    if a.limit_train:
        images, labels = images[: a.limit_train], labels[: a.limit_train]
    x = (images.float() / 255.0).unsqueeze(1).to(device)
    y = labels.to(device)
    n = x.shape[0]

    model = simple_cnn(a.conv, a.linear, not a.no_relu).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    seen, start = 0, None
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    epoch_times = []
    for epoch in range(a.warmup_epochs + a.epochs):
        order = torch.randperm(n, device=device)
        if epoch == a.warmup_epochs:
            # The timed part starts here; warm-up epochs trained the same way before it.
            sync()
            loss_sum.zero_()
            correct.zero_()
            seen, start = 0, time.perf_counter()
        if epoch >= a.warmup_epochs:
            sync()
            epoch_times.append([time.time(), None])
        for i in range(0, n, a.batch_size):
            idx = order[i : i + a.batch_size]
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            logits = model(xb)
            loss = loss_fn(logits, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                loss_sum += loss.detach() * idx.shape[0]
                correct += (logits.argmax(1) == yb).sum()
            seen += idx.shape[0]
        if epoch >= a.warmup_epochs:
            sync()
            epoch_times[-1][1] = time.time()
    train_loss, train_accuracy = loss_sum.item() / seen, correct.item() / seen
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    print(
        json.dumps(
            {
                "engine": "pytorch",
                "torch": torch.__version__,
                "network": f"SimpleCNN(conv={a.conv}, linear={a.linear})",
                "threads": torch.get_num_threads(),
                "images": seen,
                "seconds": seconds,
                "images_per_second": seen / seconds,
                "train_loss": train_loss,
                "train_accuracy": train_accuracy,
                "last_loss": float(loss.item()),
                "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                "device": str(device),
                "epoch_unix_times": epoch_times,
            }
        )
    )


if __name__ == "__main__":
    main()
