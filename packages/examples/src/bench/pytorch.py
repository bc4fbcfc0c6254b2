"""The PyTorch reference of the benchmark's training workloads: the same nets, weights and data
as focalgrad's (read from a JSON file), one checked step, then timed steps on 1 and 2 threads.
Prints one JSON object. Optional: the benchmark runs it only where python3 can import torch."""

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


def main():
    spec = json.load(open(sys.argv[1]))
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
    result = {"loss": loss, "gradAbs": grad_abs, "torch": torch.__version__, "threads": {}}
    for threads in spec["threads"]:
        torch.set_num_threads(threads)
        for _ in range(spec["warmup"]):
            step()
        wall, cpu, spent = [], [], 0.0
        while len(wall) < spec["iterations"] and (not wall or spent < spec["maxSeconds"] * 1000):
            c0, t0 = cpu_ms(), time.perf_counter()
            step()
            ms = (time.perf_counter() - t0) * 1000
            wall.append(ms)
            cpu.append(cpu_ms() - c0)
            spent += ms
        result["threads"][str(threads)] = {"wallMs": wall, "cpuMs": cpu}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
