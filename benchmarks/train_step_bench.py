"""One training step of an LM-HT SNN vs T steps of the same network as an ANN.

A step is forward + cross-entropy + backward + SGD update on one synthetic batch. The SNN is
``lmht.convert.build_snn(ann, "lmht", L, T, input_shape)`` (direct encoding: the stem runs once and the
first neuron repeats its output over T; logits are averaged over T); the ANN is the same
architecture with ReLUs. The figure of merit is

    ratio = SNN step / (T × ANN step)

which is 1 when the spiking neurons cost no more than the ReLUs they replace; the stem running once
puts the floor a little under 1. The ``floor`` column measures it: the same SNN with a ReLU in
place of every neuron. ANN and SNN steps are interleaved within each repeat (same machine
load for both); the table gives medians and inter-quartile ranges over ``--repeats`` runs, and the
ratio's median over the per-repeat ratios. ``--profile`` adds a torch.profiler table of both steps.

    python benchmarks/train_step_bench.py                          # CPU: FMNIST CNN and ResNet-19, T = 2, 4
    python benchmarks/train_step_bench.py --models fmnist_cnn --steps 2 --profile
    python benchmarks/train_step_bench.py --backend compile --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neuron_bench import _iqr, header

from lmht.convert import build_snn
from lmht.kernels import list_backends
from lmht.models import create_model

#: name -> (architecture, input channels, image size, CPU batch size)
MODELS = {
    "fmnist_cnn": ("lmht_fmnist_cnn", 1, 28, 128),
    "resnet19": ("lmht_resnet19", 3, 32, 8),
}
TARGET = 1.15  # the target for the FMNIST CNN at T = 2, L = 2


class ReLUInPlaceOfNeuron(nn.Module):
    """Stands in for a spiking neuron (``.T``, ``.L``, ``.threshold``) at the cost of a ReLU."""

    def __init__(self, neuron):
        super().__init__()
        self.T, self.L, self.threshold = neuron.T, neuron.L, neuron.threshold

    def forward(self, x_seq):
        return torch.relu(x_seq)


def build(name: str, snn: bool, L: int, T: int, backend: str | None, seed: int = 0, relu_neurons=False):
    """The ANN, or the SNN (``relu_neurons``: with every neuron replaced by a ReLU, the cost floor of the
    SNN's structure: T-fold batch after the stem, stem once)."""
    arch, in_chans, size, _ = MODELS[name]
    torch.manual_seed(seed)
    model = create_model(arch, num_classes=10, in_chans=in_chans)
    if snn:
        kw = {} if backend is None else {"backend": backend}
        model = build_snn(model, "lmht", L, T, (in_chans, size, size), **kw)
        if relu_neurons:
            for layer in model.spiking_layers():
                layer.neuron = ReLUInPlaceOfNeuron(layer.neuron)
    return model


def make_step(model, snn: bool, x, y, lr: float = 0.01):
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    model.train()

    def step():
        opt.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out.mean(0) if snn else out, y)
        loss.backward()
        opt.step()

    return step


def measure(name, L, T, batch, repeats, backend, warmup=2):
    _, in_chans, size, _ = MODELS[name]
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, in_chans, size, size, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    ann_step = make_step(build(name, False, L, T, backend), False, x, y)
    snn_step = make_step(build(name, True, L, T, backend), True, x, y)
    floor_step = make_step(build(name, True, L, T, backend, relu_neurons=True), True, x, y)
    first = time.perf_counter()
    snn_step()
    first = time.perf_counter() - first
    steps = {"ann": ann_step, "snn": snn_step, "floor": floor_step}
    for _ in range(warmup):
        for step in steps.values():
            step()
    times = {key: [] for key in steps}
    for _ in range(repeats):
        for key, step in steps.items():
            start = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - start)
    ann, snn, floor = times["ann"], times["snn"], times["floor"]
    ratios = [s / (T * a) for a, s in zip(ann, snn, strict=True)]
    floors = [f / (T * a) for a, f in zip(ann, floor, strict=True)]
    row = dict(model=name, L=L, T=T, batch=batch, backend=backend or "default",
               ann_ms=statistics.median(ann) * 1e3, ann_iqr_ms=_iqr(ann) * 1e3,
               snn_ms=statistics.median(snn) * 1e3, snn_iqr_ms=_iqr(snn) * 1e3,
               ratio=statistics.median(ratios), ratio_iqr=_iqr(ratios),
               floor_ratio=statistics.median(floors), floor_ratio_iqr=_iqr(floors), first_snn_step_s=first)
    return row, (ann_step, snn_step)


def profile(steps, label, rows=15):
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    ann_step, snn_step = steps
    for which, step in (("ANN", ann_step), ("SNN", snn_step)):
        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(3):
                step()
        print(f"\n# profile {label} {which} (3 steps), by self CPU time")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {list(MODELS)}")
    parser.add_argument("--steps", default="2,4", help="comma-separated T values")
    parser.add_argument("--levels", type=int, default=2, help="L")
    parser.add_argument("--batch", type=int, help="batch size (default: per model, sized for a CPU)")
    parser.add_argument("--repeats", type=int, default=7, help="timed steps per case (>= 5)")
    parser.add_argument("--backend", choices=list_backends(), help="neuron backend (default: the library's)")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table per case")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    if args.threads:
        torch.set_num_threads(args.threads)

    print(header(torch.device("cpu")).split("\n# python")[0])
    print(f"# python {sys.version.split()[0]} | torch {torch.__version__} | training step = fwd + CE + bwd + "
          f"SGD(momentum); synthetic data; L = {args.levels}")
    cols = ("model", "batch", "T", "backend", "ANN step ms", "SNN step ms", "SNN / (T·ANN)", "floor",
            "target")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    rows = []
    for name in args.models.split(","):
        batch = args.batch or MODELS[name][3]
        for T in (int(t) for t in args.steps.split(",")):
            row, steps = measure(name, args.levels, T, batch, args.repeats, args.backend)
            rows.append(row)
            target = f"≤ {TARGET}" if name == "fmnist_cnn" and T == 2 and args.levels == 2 else "-"
            print(f"| {name} | {batch} | {T} | {row['backend']} | {row['ann_ms']:.1f} ± "
                  f"{row['ann_iqr_ms']:.1f} | {row['snn_ms']:.1f} ± {row['snn_iqr_ms']:.1f} | "
                  f"{row['ratio']:.2f} ± {row['ratio_iqr']:.2f} | {row['floor_ratio']:.2f} ± "
                  f"{row['floor_ratio_iqr']:.2f} | {target} |", flush=True)
            if args.profile:
                profile(steps, f"{name} T={T}")
    print(f"# medians of {args.repeats} interleaved steps after 2 warm-ups; ± is the inter-quartile range; "
          "ratios are medians of per-repeat ratios; floor = the same SNN with ReLUs in place of its neurons "
          "(what its T-fold batch and single stem cost)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


if __name__ == "__main__":
    main()
