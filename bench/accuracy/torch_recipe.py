#!/usr/bin/python3
"""PyTorch reference run of cnnc's LeNet5BN / Fashion-MNIST training recipe.

Recipe (meant to match what cnnc's trainer runs):
  * model: LeNet5BN from ../shared/anchors/models.py (beside the checkout)
      conv1 1->6 5x5 pad 2 (no bias), BN, ReLU, maxpool 2;
      conv2 6->16 5x5 (no bias), BN, ReLU, maxpool 2;
      fc 400-120 ReLU, fc 120-84 ReLU, dropout 0.5, fc 84-10.
    PyTorch default initialisation, torch.manual_seed(seed) (default 0).
  * data: full Fashion-MNIST (60k train / 10k test) read from the gz IDX files,
    pixels scaled to [0,1]; then per-pixel standardisation with the training
    set's mean image and population std image (std == 0 replaced by 1).
  * augmentation: random horizontal flip, p=0.5 per training sample, applied
    to the [0,1] pixels before normalisation; nothing else.
  * optimiser: SGD lr 0.05, momentum 0.9, weight_decay 5e-4 (PyTorch's coupled
    L2), batch 64, reshuffled every epoch, last partial batch kept
    (60000 = 937*64 + 32 -> 938 batches/epoch). Loss: cross-entropy (mean).
  * schedule: cosine annealing over the whole run, set before every batch:
      lr = 0.5 * 0.05 * (1 + cos(pi * t / T)),  t = epoch + batch/batches_per_epoch,
      T = number of epochs (min lr 0).
  * reports test accuracy (eval mode: BN running stats, no dropout) after
    every epoch plus the training time of that epoch; torch.set_num_threads(threads).
  * --tta also reports, after every epoch, the accuracy of the mean soft-max
    probabilities of each test image and its mirror image (the mirror taken
    of the [0,1] pixels, then normalised), as cnnc's -tta flip.

Usage: /usr/bin/python3 bench/accuracy/torch_recipe.py --epochs 20 --seed 0 --threads 2
"""
import argparse
import gzip
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', 'shared', 'anchors'))
from models import LeNet5BN  # noqa: E402


def read_idx(path):
    with gzip.open(path, 'rb') as f:
        data = f.read()
    magic = int.from_bytes(data[0:4], 'big')
    ndim = magic & 0xff
    assert (magic >> 8) == 0x08, 'expected unsigned byte IDX data'
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim)]
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    return arr.reshape(dims)


def load(data_dir):
    xtr = read_idx(os.path.join(data_dir, 'train-images-idx3-ubyte.gz')).astype(np.float32) / 255.0
    ytr = read_idx(os.path.join(data_dir, 'train-labels-idx1-ubyte.gz')).astype(np.int64)
    xte = read_idx(os.path.join(data_dir, 't10k-images-idx3-ubyte.gz')).astype(np.float32) / 255.0
    yte = read_idx(os.path.join(data_dir, 't10k-labels-idx1-ubyte.gz')).astype(np.int64)
    return xtr, ytr, xte, yte


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--epochs', type=int, default=20)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--threads', type=int, default=2)
    ap.add_argument('--data', default='/usr/share/datasets/fashion-mnist')
    ap.add_argument('--lr', type=float, default=0.05)
    ap.add_argument('--batch', type=int, default=64)
    ap.add_argument('--tta', action='store_true', help='also report the flip test-time augmentation accuracy')
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)

    xtr, ytr, xte, yte = load(args.data)
    mean = xtr.mean(axis=0)
    std = xtr.std(axis=0)  # population std (ddof=0)
    std[std == 0] = 1.0
    mean_t = torch.from_numpy(mean).view(1, 1, 28, 28)
    std_t = torch.from_numpy(std).view(1, 1, 28, 28)

    xtr_t = torch.from_numpy(xtr).view(-1, 1, 28, 28)  # [0,1], normalised per batch after flip
    ytr_t = torch.from_numpy(ytr)
    xte_raw = torch.from_numpy(xte).view(-1, 1, 28, 28)
    xte_t = ((xte_raw - mean_t) / std_t).contiguous()
    xte_m = ((xte_raw.flip(-1) - mean_t) / std_t).contiguous()
    yte_t = torch.from_numpy(yte)

    model = LeNet5BN()
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)

    n = xtr_t.shape[0]
    bs = args.batch
    nb = (n + bs - 1) // bs
    T = args.epochs
    print(f'torch {torch.__version__}, threads {torch.get_num_threads()}, seed {args.seed}, '
          f'epochs {T}, batch {bs}, {nb} batches/epoch', flush=True)

    def evaluate(tta=False):
        model.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, xte_t.shape[0], 1000):
                out = F.softmax(model(xte_t[i:i + 1000]), dim=1)
                if tta:
                    out = (out + F.softmax(model(xte_m[i:i + 1000]), dim=1)) / 2
                correct += (out.argmax(1) == yte_t[i:i + 1000]).sum().item()
        return correct / xte_t.shape[0]

    total_train = 0.0
    t_run = time.time()
    acc = 0.0
    for epoch in range(T):
        model.train()
        t0 = time.time()
        perm = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for b in range(nb):
            t = epoch + b / nb
            lr = 0.5 * args.lr * (1 + math.cos(math.pi * t / T))
            for g in opt.param_groups:
                g['lr'] = lr
            idx = perm[b * bs:(b + 1) * bs]
            x = xtr_t[idx]
            flip = torch.rand(x.shape[0], generator=gen) < 0.5
            if flip.any():
                x[flip] = x[flip].flip(-1)
            x = (x - mean_t) / std_t
            y = ytr_t[idx]
            out = model(x)
            loss = F.cross_entropy(out, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * x.shape[0]
        dt = time.time() - t0
        total_train += dt
        acc = evaluate()
        tta = f'  tta_flip_acc {evaluate(True) * 100:.2f}%' if args.tta else ''
        print(f'epoch {epoch + 1:2d}  loss {loss_sum / n:.4f}  test_acc {acc * 100:.2f}%{tta}  '
              f'lr_end {lr:.5f}  epoch_time {dt:.1f}s', flush=True)
    tta = f'  tta_flip_acc {evaluate(True) * 100:.2f}%' if args.tta else ''
    print(f'final test_acc {acc * 100:.2f}%{tta}  train_time {total_train:.1f}s  '
          f'total_time {time.time() - t_run:.1f}s  ({total_train / T:.1f}s/epoch)', flush=True)


if __name__ == '__main__':
    main()
