"""Continue a focalgrad run in PyTorch: load its weights into the same RetinaNet, check that both
frameworks agree on the batches exported by `pnpm detect -- batches`, train on those batches with
DistributedDataParallel (gloo, CPU; start it with torchrun), and write a run directory whose
model.safetensors focalgrad loads back (`pnpm detect -- predict --run OUT` scores it).

    torchrun --nproc_per_node=2 handoff.py --run runs/demo --data batches.safetensors --out runs/demo-torch
"""

import argparse
import json
import math
import os
import shutil
import sys
import time
from copy import deepcopy

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from losses import focal_sum, object_anchors, smooth_l1_sum  # noqa: E402
from retinanet import RetinaNet  # noqa: E402
from safetensors_io import HAVE_SAFETENSORS, load_file, save_file  # noqa: E402

TOLERANCE = 1e-5


class HandoffError(Exception):
    """A problem with the inputs, printed as one line."""


def log(*parts):
    if not dist.is_initialized() or dist.get_rank() == 0:
        print(*parts, flush=True)


def load_run(run_dir):
    """The run's config.json, a RetinaNet with its weights (strict), and the weights' dtypes."""
    with open(os.path.join(run_dir, "config.json")) as f:
        config = json.load(f)
    model = RetinaNet(config["detector"]["model"])
    weights, _ = load_file(os.path.join(run_dir, "model.safetensors"))
    expected = set(model.state_dict())
    if set(weights) != expected:
        missing, unexpected = sorted(expected - set(weights)), sorted(set(weights) - expected)
        raise HandoffError(f"{run_dir}/model.safetensors does not fit the config: missing {missing}, unexpected {unexpected}")
    model.load_state_dict(weights, strict=True)
    return config, model, {k: v.dtype for k, v in weights.items()}


def worst(a, b):
    return (a.double() - b.double()).abs().max().item()


def check(model, data, metadata, config):
    """Outputs on the first batch (eval mode) and its losses (training mode) against focalgrad's."""
    batch = int(metadata["batch_size"])
    images, labels, targets = data["images"][:batch], data["labels"][:batch], data["regression"][:batch]
    model.eval()
    with torch.no_grad():
        logits, regression = model(images)
    # A training-mode pass updates BatchNorm's running statistics: it runs on a copy, so that
    # training starts from the weights and buffers focalgrad saved.
    copy = deepcopy(model).train()
    with torch.no_grad():
        train_logits, train_regression = copy(images)
        normaliser = max(1, object_anchors(labels).item())
        alpha, gamma = float(metadata["alpha"]), float(metadata["gamma"])
        cls = focal_sum(labels, torch.sigmoid(train_logits), alpha, gamma).item() / normaliser
        box = smooth_l1_sum(targets, train_regression, float(metadata["sigma"])).item() / normaliser
    reference_cls = float(metadata["focalgrad_classification_loss"])
    reference_box = float(metadata["focalgrad_box_loss"])
    result = {
        "logits": worst(logits, data["check.logits"]),
        "regression": worst(regression, data["check.regression"]),
        "classification loss": abs(cls - reference_cls) / max(1.0, abs(reference_cls)),
        "box loss": abs(box - reference_box) / max(1.0, abs(reference_box)),
    }
    log(
        f"check on {batch} images: max |PyTorch - focalgrad| logits {result['logits']:.2e}, "
        f"regression {result['regression']:.2e}; losses {cls:.6f} / {box:.6f} against focalgrad's "
        f"{reference_cls:.6f} / {reference_box:.6f}"
    )
    bad = [k for k, v in result.items() if not v <= TOLERANCE]
    if bad:
        raise HandoffError(f"PyTorch and focalgrad disagree beyond {TOLERANCE} on: {', '.join(bad)}")
    return result


def train(model, data, metadata, config, args):
    """Steps over the exported batches, each split evenly over the processes. The loss of each
    process is its share of the batch's sums over the whole batch's max(1, object anchors), times
    the process count, so that DDP's mean of the gradients is the gradient of the loss of the whole
    batch: the step train() would take on one machine."""
    world = dist.get_world_size() if dist.is_initialized() else 1
    rank = dist.get_rank() if dist.is_initialized() else 0
    batch = int(metadata["batch_size"])
    if batch % world != 0:
        raise HandoffError(f"the batch size {batch} does not split over {world} processes")
    share = batch // world
    steps = min(args.steps or int(metadata["steps"]), int(metadata["steps"]))
    training = config["training"]
    lr = args.lr if args.lr is not None else training["lr"] / 10
    net = DistributedDataParallel(model) if dist.is_initialized() else model
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=training["weightDecay"])
    alpha, gamma, sigma = float(metadata["alpha"]), float(metadata["gamma"]), float(metadata["sigma"])
    model.train()
    started = time.perf_counter()
    history = []
    for step in range(steps):
        for group in optimizer.param_groups:  # a cosine from lr down to 0 over these steps
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        begin = step * batch + rank * share
        images = data["images"][begin : begin + share]
        labels = data["labels"][begin : begin + share]
        targets = data["regression"][begin : begin + share]
        logits, regression = net(images)
        count = object_anchors(labels).double()
        sums = torch.stack([focal_sum(labels, torch.sigmoid(logits), alpha, gamma), smooth_l1_sum(targets, regression, sigma)])
        if dist.is_initialized():
            dist.all_reduce(count)
        normaliser = max(1.0, count.item())
        optimizer.zero_grad()
        (sums.sum() / normaliser * world).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), training["clipNorm"])
        optimizer.step()
        totals = sums.detach().double()
        if dist.is_initialized():
            dist.all_reduce(totals)
        cls, box = (totals / normaliser).tolist()
        history.append([step, cls, box])
        log(f"step {step + 1}/{steps}: classification loss {cls:.4f}, box loss {box:.4f}")
    seconds = time.perf_counter() - started
    log(f"trained {steps} steps of {batch} images on {world} processes ({share} each) in {seconds:.1f} s")
    return {"steps": steps, "lr": lr, "processes": world, "losses": history, "seconds": seconds}


def write_run(args, config, model, dtypes, report):
    """A run directory focalgrad reads: the same config.json (plus what PyTorch did) and the
    weights under the same names, in the dtypes of focalgrad's file (int32 step counters)."""
    os.makedirs(args.out, exist_ok=True)
    state = {k: v.detach().to(dtypes[k]).contiguous() for k, v in model.state_dict().items()}
    step = int(config["training"]["steps"]) + report["steps"]
    save_file(state, os.path.join(args.out, "model.safetensors"), {"format": "pt", "step": str(step)})
    continued = dict(config, pytorch={**report, "from": args.run, "data": args.data, "torch": torch.__version__})
    with open(os.path.join(args.out, "config.json.tmp"), "w") as f:
        json.dump(continued, f, indent=2)
        f.write("\n")
    os.replace(os.path.join(args.out, "config.json.tmp"), os.path.join(args.out, "config.json"))
    log(f"wrote {args.out}/model.safetensors ({len(state)} tensors, step {step}) and config.json")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="the focalgrad run directory to continue")
    parser.add_argument("--data", required=True, help="the file written by pnpm detect -- batches")
    parser.add_argument("--out", help="the run directory to write (default: only check)")
    parser.add_argument("--steps", type=int, help="steps to train (default: every exported batch)")
    parser.add_argument("--lr", type=float, help="peak learning rate of the cosine (default: the run's / 10)")
    args = parser.parse_args(argv)
    # One thread per process: torchrun starts one process per core.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    if "WORLD_SIZE" in os.environ:
        dist.init_process_group("gloo")
    try:
        config, model, dtypes = load_run(args.run)
        data, metadata = load_file(args.data)
        log(
            f"PyTorch {torch.__version__}, safetensors through {'safetensors.torch' if HAVE_SAFETENSORS else 'the fallback reader'}; "
            f"{args.run}: {sum(p.numel() for p in model.parameters())} parameters"
        )
        check(model, data, metadata, config)
        if args.out is not None:
            report = train(model, data, metadata, config, args)
            if not dist.is_initialized() or dist.get_rank() == 0:
                write_run(args, config, model, dtypes, report)
            if dist.is_initialized():
                dist.barrier()
    except HandoffError as e:
        print(f"handoff: {e}", file=sys.stderr)
        return 1
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
