#!/usr/bin/env python3
"""PyTorch eager CUDA baseline for cnnc's CUDA target.

Times training steps (forward, backward, SGD with momentum 0.9) and
inference for LeNet-5 and VGG-small at batches 64 and 256 on the GPU (with
the batch on the device: torch, synchronised on the loss or the logits as
cnnc is, and torch-async, not; and torch-h2d, synchronised, with the batch
copied in from page-locked host memory every call as cnnc's is), the
same models as shared/anchors/models.py (copied here: the device machine
has only this folder). Writes tab-separated lines like cudacheck's:

    impl  model  batch  metric  value  unit

Usage: python3 torch_bench.py [--tsv FILE] [--bench-time SECONDS]
"""
import argparse
import sys
import time

import torch
import torch.nn as nn


class LeNet5(nn.Module):
    """1x28x28: conv(1->6,5x5,pad2)+ReLU+maxpool2, conv(6->16,5x5)+ReLU+maxpool2,
    fc 400->120 ReLU, fc 120->84 ReLU, fc 84->10."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


def _cbr(cin, cout):
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


class VGGSmall(nn.Module):
    """3x32x32: [conv3x3 32, BN, ReLU]x2, maxpool, [conv3x3 64, BN, ReLU]x2, maxpool,
    fc 4096->256 ReLU dropout(0.5) fc 256->10."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            *_cbr(3, 32), *_cbr(32, 32), nn.MaxPool2d(2),
            *_cbr(32, 64), *_cbr(64, 64), nn.MaxPool2d(2))
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(4096, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))

    def forward(self, x):
        return self.classifier(self.features(x))


MODELS = {'lenet5': (LeNet5, (1, 28, 28)), 'vggsmall': (VGGSmall, (3, 32, 32))}


def rate(fn, budget):
    """Calls of fn per second: 5 warm-up calls, then as many as fit in budget."""
    for _ in range(5):
        fn()
    torch.cuda.synchronize()
    t = time.perf_counter()
    calls = 0
    while calls < 3 or time.perf_counter() - t < budget:
        fn()
        calls += 1
    torch.cuda.synchronize()
    return calls / (time.perf_counter() - t)


def bench(name, batch, budget, sync_loss, upload=False):
    cls, shape = MODELS[name]
    torch.manual_seed(0)
    dev = torch.device('cuda')
    model = cls().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    lossf = nn.CrossEntropyLoss()
    x = torch.randn(batch, *shape, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    host = x.cpu().pin_memory()

    def batch_in():
        # upload: the batch comes from page-locked host memory each call,
        # as cnnc's TrainStep and Predict take it.
        return host.to(dev) if upload else x

    def step():
        opt.zero_grad(set_to_none=True)
        loss = lossf(model(batch_in()), y)
        loss.backward()
        opt.step()
        if sync_loss:
            loss.item()  # as cnnc's TrainStep, which returns the loss

    model.train()
    train = rate(step, budget)
    model.eval()

    def infer():
        with torch.no_grad():
            out = model(batch_in())
        if sync_loss:
            out.cpu()  # as cnnc's Predict, which returns the logits

    inf = rate(infer, budget)
    return train, inf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--tsv', default='')
    ap.add_argument('--bench-time', type=float, default=2.0)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print('torch_bench: no CUDA device for PyTorch')
        return 1
    print(f'torch {torch.__version__}, {torch.cuda.get_device_name(0)}, cuDNN {torch.backends.cudnn.version()}, '
          f'cudnn.allow_tf32={torch.backends.cudnn.allow_tf32}, matmul.allow_tf32={torch.backends.cuda.matmul.allow_tf32}')
    lines = ['impl\tmodel\tbatch\tmetric\tvalue\tunit']
    for name in MODELS:
        for batch in (64, 256):
            for sync, upload, impl in ((True, False, 'torch'), (False, False, 'torch-async'), (True, True, 'torch-h2d')):
                train, inf = bench(name, batch, args.bench_time, sync, upload)
                print(f'{impl:11s} {name:9s} batch {batch:3d}: train {train:8.1f} steps/s = {train * batch:9.0f} images/s; '
                      f'inference {inf * batch:9.0f} images/s', flush=True)
                lines.append(f'{impl}\t{name}\t{batch}\ttrain_images_per_s\t{train * batch:.6g}\timg/s')
                lines.append(f'{impl}\t{name}\t{batch}\tinfer_images_per_s\t{inf * batch:.6g}\timg/s')
    if args.tsv:
        with open(args.tsv, 'w') as f:
            f.write('\n'.join(lines) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
