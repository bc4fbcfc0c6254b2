"""The PyTorch reference of the benchmark: the training workloads (the same nets, weights and data
as focalgrad's, read from a JSON file; one checked step, then timed steps) and the focal loss
workloads (the seed's focal loss on the anchor batch, read from raw float32 files; forward and
backward to the prediction's gradient, written back as raw float32 for the cross-check), on the
thread counts asked for. Prints one JSON object. Optional: the benchmark runs it only where
python3 can import torch."""

import json
import resource
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn


def conv(cin, cout):
    return nn.Conv2d(cin, cout, 3, padding=1)


class TrainstepNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(
            conv(3, 16), nn.ReLU(), nn.MaxPool2d(2),
            conv(16, 32), nn.ReLU(), nn.MaxPool2d(2),
            conv(32, 64), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.cls = nn.Sequential(conv(64, 64), nn.ReLU(), conv(64, 9))
        self.box = nn.Sequential(conv(64, 64), nn.ReLU(), conv(64, 12))

    def loss(self, x, cls_target, box_target, positives):
        features = self.backbone(x)
        logits = self.cls(features)
        p = torch.sigmoid(logits)
        ce = F.binary_cross_entropy_with_logits(logits, cls_target, reduction="none")
        p_t = p * cls_target + (1 - p) * (1 - cls_target)
        alpha_t = 0.25 * cls_target + 0.75 * (1 - cls_target)
        focal = (alpha_t * ce * (1 - p_t) ** 2).sum() / positives
        return focal + (self.box(features) - box_target).abs().mean()


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))

    def loss(self, x, labels):
        return F.cross_entropy(self.layers(x), labels)


def cpu_ms():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return (usage.ru_utime + usage.ru_stime) * 1000


def focal_loss(y_true, y_pred, alpha, gamma):
    """The seed's focal loss (keras-retinanet's, Keras BCE with clip 1e-7): targets [B, N, C + 1],
    the last column the anchor state (-1 ignored, 0 background, 1 object); summed over the anchors
    that are not ignored, over max(1, the object anchors in the batch)."""
    labels, state = y_true[..., :-1], y_true[..., -1]
    keep = (state != -1).unsqueeze(-1).to(y_pred.dtype)
    positive = labels == 1
    alpha_factor = torch.where(positive, torch.full_like(labels, alpha), torch.full_like(labels, 1 - alpha))
    weight = alpha_factor * torch.where(positive, 1 - y_pred, y_pred) ** gamma
    p = y_pred.clamp(1e-7, 1 - 1e-7)
    bce = -(labels * torch.log(p) + (1 - labels) * torch.log(1 - p))
    normalizer = (state == 1).sum().clamp(min=1)
    return (keep * weight * bce).sum() / normalizer


def timed(step, spec):
    """Wall and CPU milliseconds of timed calls of `step` on each of spec's thread counts."""
    times = {}
    for threads in spec["threads"]:
        torch.set_num_threads(threads)
        # The warm-up count, and at least warmupSeconds of it (never without a count), as for
        # the other rows.
        until = time.perf_counter() + spec.get("warmupSeconds", 0)
        done = 0
        while done < spec["warmup"] or (spec["warmup"] > 0 and time.perf_counter() < until):
            step()
            done += 1
        wall, cpu, spent = [], [], 0.0
        while len(wall) < spec["iterations"] and (not wall or spent < spec["maxSeconds"] * 1000):
            c0, t0 = cpu_ms(), time.perf_counter()
            step()
            ms = (time.perf_counter() - t0) * 1000
            wall.append(ms)
            cpu.append(cpu_ms() - c0)
            spent += ms
        times[str(threads)] = {"wallMs": wall, "cpuMs": cpu}
    return times


def focal_main(spec):
    def read(name):
        size = 1
        for d in spec[name + "Shape"]:
            size *= d
        return torch.from_file(spec[name + "Path"], size=size, dtype=torch.float32).reshape(spec[name + "Shape"])

    y_true, y_pred = read("yTrue"), read("yPred").clone().requires_grad_(True)

    def step():
        y_pred.grad = None
        loss = focal_loss(y_true, y_pred, spec["alpha"], spec["gamma"])
        loss.backward()
        return loss.item()

    torch.set_num_threads(1)
    loss = step()
    with open(spec["gradPath"], "wb") as out:
        out.write(y_pred.grad.contiguous().numpy().tobytes())
    print(json.dumps({"loss": loss, "torch": torch.__version__, "threads": timed(step, spec)}))


def main():
    spec = json.load(open(sys.argv[1]))
    if spec["workload"] == "focal":
        focal_main(spec)
        return
    torch.manual_seed(0)
    net = TrainstepNet() if spec["workload"] == "trainstep" else Mlp()
    params = list(net.parameters())
    if len(params) != len(spec["params"]):
        raise SystemExit(f"pytorch.py: {len(spec['params'])} parameters given, the net has {len(params)}")
    with torch.no_grad():
        for p, values in zip(params, spec["params"]):
            p.copy_(torch.tensor(values, dtype=torch.float32).reshape(p.shape))
    inputs = [
        torch.tensor(t["data"], dtype=torch.int64 if t["dtype"] == "int64" else torch.float32).reshape(t["shape"])
        for t in spec["inputs"]
    ] + spec.get("scalars", [])
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)

    def step():
        opt.zero_grad()
        loss = net.loss(*inputs)
        loss.backward()
        grad_abs = sum(p.grad.abs().sum().item() for p in params)
        opt.step()
        return loss.item(), grad_abs

    torch.set_num_threads(1)
    loss, grad_abs = step()
    result = {"loss": loss, "gradAbs": grad_abs, "torch": torch.__version__, "threads": timed(step, spec)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
