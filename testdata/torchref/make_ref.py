#!/usr/bin/python3
"""Generate PyTorch reference files for cnnc's Go tests.

Run from the module root:  /usr/bin/python3 testdata/torchref/make_ref.py
Needs torch (1.13 was used) and numpy only; writes safetensors with a tiny
built-in writer (the python `safetensors` package is not required).
All computation is float64 and deterministic (CPU, fixed seeds).
"""
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
torch.use_deterministic_algorithms(True)

OUT_DIR = os.path.dirname(os.path.abspath(__file__))
MASK64 = (1 << 64) - 1
BN_MOMENTUM = 0.1
BN_EPS = 1e-5

# ---------------------------------------------------------------- dropout RNG


def splitmix64(z):
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def uniform01(seed, step, index):
    x = splitmix64((seed ^ splitmix64((step ^ splitmix64(index)) & MASK64)) & MASK64)
    # float32(x >> 40) * 2^-24 : x>>40 has 24 bits, so this is exact in float32/float64.
    return float(np.float32(x >> 40) * np.float32(2.0 ** -24))


def fnv1a64(s):
    h = 0xCBF29CE484222325
    for b in s.encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & MASK64
    return h


DROPOUT_FORMULA = (
    "splitmix64(z): z=(z+0x9e3779b97f4a7c15) mod 2^64; z=((z^(z>>30))*0xbf58476d1ce4e5b9) mod 2^64; "
    "z=((z^(z>>27))*0x94d049bb133111eb) mod 2^64; return z^(z>>31). "
    "Uniform01(seed,step,index)=float32(x>>40)*2^-24 with x=splitmix64(seed^splitmix64(step^splitmix64(index))). "
    "seed=FNV-1a-64(layer name) (basis 0xcbf29ce484222325, prime 0x100000001b3, UTF-8 bytes). "
    "Element i (flat row-major index of the activation) kept iff Uniform01(seed,0,i) < keep; y = x*mask/keep."
)


def dropout_mask(name, shape, keep, step=0):
    seed = fnv1a64(name)
    n = int(np.prod(shape))
    m = np.array([1.0 if uniform01(seed, step, i) < keep else 0.0 for i in range(n)], dtype=np.float64)
    return torch.from_numpy(m.reshape(shape))


# ---------------------------------------------------------------- safetensors


def write_safetensors(path, tensors, metadata):
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    blobs = []
    off = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype == torch.float64:
            dt, arr = "F64", t.numpy().astype("<f8")
        elif t.dtype == torch.int64:
            dt, arr = "I64", t.numpy().astype("<i8")
        else:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        b = arr.tobytes(order="C")
        header[name] = {"dtype": dt, "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    hj = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    hj += b" " * ((-len(hj)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hj)))
        f.write(hj)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        b, e = info["data_offsets"]
        dt = {"F64": "<f8", "I64": "<i8"}[info["dtype"]]
        out[name] = np.frombuffer(raw[base + b:base + e], dtype=dt).reshape(info["shape"])
    return out, meta, header


# ---------------------------------------------------------------- models


class LeNetBN(nn.Module):
    ARCH = ("1x28x28 -> conv1(1->6,5x5,pad2,no bias) -> bn1 -> relu -> maxpool2 -> conv2(6->16,5x5,no bias) -> bn2 "
            "-> relu -> maxpool2 -> flatten(400) -> fc1(400->120) -> relu -> fc2(120->84) -> relu "
            "-> drop1(keep 0.5, hash mask) -> fc3(84->10); loss = cross-entropy mean")

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(6, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(6, 16, 5, bias=False)
        self.bn2 = nn.BatchNorm2d(16, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.fc1 = nn.Linear(400, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)
        self.keep = 0.5
        self.last_mask = None

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2)
        x = F.max_pool2d(F.relu(self.bn2(self.conv2(x))), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        if self.training:
            mask = dropout_mask("drop1", tuple(x.shape), self.keep)
            self.last_mask = mask
            x = x * mask / self.keep
        return self.fc3(x)


class Strided(nn.Module):
    ARCH = ("3x16x16 -> conv1(3->8,3x3,stride2,pad1,bias) -> leaky_relu(0.1) -> conv2(8->16,3x3,stride2,pad1,groups2,bias) "
            "-> tanh -> avgpool(2,stride2) -> flatten(64) -> bn3(BatchNorm1d 64) -> fc1(64->32) -> sigmoid -> fc2(32->10); "
            "loss = cross-entropy mean + 0.01*sum(fc1.weight^2)")
    LAMBDA = 0.01

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = nn.Conv2d(8, 16, 3, stride=2, padding=1, groups=2, bias=True)
        self.bn3 = nn.BatchNorm1d(64, eps=BN_EPS, momentum=BN_MOMENTUM)
        self.fc1 = nn.Linear(64, 32)
        self.fc2 = nn.Linear(32, 10)

    def forward(self, x):
        x = F.leaky_relu(self.conv1(x), 0.1)
        x = torch.tanh(self.conv2(x))
        x = F.avg_pool2d(x, 2, stride=2)
        x = torch.flatten(x, 1)
        x = self.bn3(x)
        x = torch.sigmoid(self.fc1(x))
        return self.fc2(x)

    def loss(self, logits, labels):
        data = F.cross_entropy(logits, labels)
        return data, data + self.LAMBDA * (self.fc1.weight ** 2).sum()


class SVMLinear(nn.Module):
    ARCH = ("1x28x28 -> flatten(784) -> fc(784->10); loss = mean_n sum_{j!=y} max(0, s_j - s_y + 1) "
            "+ 0.001*sum(|fc.weight|)")
    LAMBDA = 0.001

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(784, 10)

    def forward(self, x):
        return self.fc(torch.flatten(x, 1))

    def loss(self, s, labels):
        sy = s.gather(1, labels[:, None])
        margins = torch.clamp(s - sy + 1.0, min=0.0)
        margins = margins.masked_fill(F.one_hot(labels, s.shape[1]).bool(), 0.0)
        data = margins.sum(1).mean()
        return data, data + self.LAMBDA * self.fc.weight.abs().sum()


class OverlapPool(nn.Module):
    ARCH = ("2x11x11 -> conv1(2->4,3x3,dilation2,pad2,bias) -> relu -> maxpool(3,stride2,pad1) [4x6x6] "
            "-> conv2(4->6,1x1,bias) -> sigmoid -> avgpool(3,stride2,pad1,count_include_pad) [6x3x3] "
            "-> flatten(54) -> fc(54->10); loss = cross-entropy mean")

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3, dilation=2, padding=2, bias=True)
        self.conv2 = nn.Conv2d(4, 6, 1)
        self.fc = nn.Linear(6 * 3 * 3, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 3, stride=2, padding=1)
        x = torch.sigmoid(self.conv2(x))
        x = F.avg_pool2d(x, 3, stride=2, padding=1)
        return self.fc(torch.flatten(x, 1))


def ce_loss(logits, labels):
    d = F.cross_entropy(logits, labels)
    return d, d


# name, class, input CHW, batch, param seed, loss description, lambda
SPECS = [
    ("lenet_bn", LeNetBN, (1, 28, 28), 8, 1, "cross_entropy_mean", "0"),
    ("strided", Strided, (3, 16, 16), 4, 2, "cross_entropy_mean + lambda*sum(fc1.weight^2)", "0.01"),
    ("svm_linear", SVMLinear, (1, 28, 28), 16, 3,
     "mean_n sum_{j!=y} max(0, s_j - s_y + 1) + lambda*sum(|fc.weight|)", "0.001"),
    ("overlap_pool", OverlapPool, (2, 11, 11), 3, 4, "cross_entropy_mean", "0"),
]
DATA_SEED_OFFSET = 1000


def make(name, cls, chw, batch, pseed, loss_desc, lam):
    torch.manual_seed(pseed)
    model = cls().double()
    g = torch.Generator().manual_seed(DATA_SEED_OFFSET + pseed)
    x = torch.randn((batch,) + chw, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 10, (batch,), generator=g, dtype=torch.int64)

    tensors = {"x": x.clone(), "labels": labels.clone()}
    for k, v in model.state_dict().items():
        tensors[k] = v.detach().clone()

    model.train()
    xg = x.clone().requires_grad_(True)
    logits = model(xg)
    lossfn = getattr(model, "loss", ce_loss)
    data_loss, loss = lossfn(logits, labels)
    loss.backward()

    tensors["out.logits"] = logits.detach().clone()
    tensors["out.loss"] = loss.detach().clone().reshape([])
    if hasattr(model, "LAMBDA"):
        tensors["aux.data_loss"] = data_loss.detach().clone().reshape([])
    tensors["grad.x"] = xg.grad.detach().clone()
    for pn, p in model.named_parameters():
        tensors["grad." + pn] = p.grad.detach().clone()
    for mn, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            tensors[f"after.{mn}.running_mean"] = m.running_mean.detach().clone()
            tensors[f"after.{mn}.running_var"] = m.running_var.detach().clone()

    meta = {
        "model": name,
        "arch": cls.ARCH,
        "batch": str(batch),
        "input_shape": json.dumps([batch] + list(chw)),
        "loss": loss_desc,
        "lambda": lam,
        "param_seed": str(pseed),
        "data_seed": str(DATA_SEED_OFFSET + pseed),
        "bn_momentum": str(BN_MOMENTUM),
        "bn_eps": str(BN_EPS),
        "torch_version": torch.__version__,
        "dtype": "float64",
        "generator": "testdata/torchref/make_ref.py",
    }
    if isinstance(model, LeNetBN):
        tensors["aux.drop1.mask"] = model.last_mask.clone()
        seed = fnv1a64("drop1")
        meta.update({
            "dropout_layer": "drop1",
            "dropout_keep": "0.5",
            "dropout_step": "0",
            "dropout_seed": str(seed),
            "dropout_seed_hex": "0x%016x" % seed,
            "dropout_formula": DROPOUT_FORMULA,
            "dropout_u_first8": json.dumps([uniform01(seed, 0, i) for i in range(8)]),
        })
        model.eval()
        with torch.no_grad():
            tensors["eval.logits"] = model(x).detach().clone()
    path = os.path.join(OUT_DIR, name + ".safetensors")
    write_safetensors(path, tensors, meta)
    return path, tensors, meta


def verify(path, tensors, meta):
    got, gmeta, header = read_safetensors(path)
    assert set(got) == set(tensors), (set(got) ^ set(tensors))
    assert gmeta == meta
    for k, v in tensors.items():
        a = v.detach().numpy()
        assert got[k].dtype == a.dtype and got[k].shape == a.shape, k
        assert np.array_equal(got[k], a), k
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    assert n % 8 == 0
    # data regions tile the buffer contiguously in sorted-name order
    off = 0
    for k in sorted(header):
        b, e = header[k]["data_offsets"]
        assert b == off, k
        off = e
    assert os.path.getsize(path) == 8 + n + off
    return got


def main():
    seed = fnv1a64("drop1")
    u8 = [uniform01(seed, 0, i) for i in range(8)]
    print("drop1 seed = %d = 0x%016x" % (seed, seed))
    print("first 8 u (step 0, index 0..7):", ", ".join(repr(u) for u in u8))
    for spec in SPECS:
        path, tensors, meta = make(*spec)
        got = verify(path, tensors, meta)
        print(f"{os.path.basename(path)}: {os.path.getsize(path)} bytes, loss={float(got['out.loss']):.17g}")
        for k in sorted(got):
            print(f"  {k:28s} {got[k].dtype.str} {list(got[k].shape)}")


if __name__ == "__main__":
    sys.exit(main())
