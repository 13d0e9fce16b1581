"""LM-HT neuron forward+backward: this library vs a baseline with the reference code's structure.

Baseline (written here, after the structure of the authors' public code): per step, the T-GIM row is
broadcast-multiplied with the whole input sequence and summed; the multi-level spike is a sum of one
comparison per level; the surrogate window is saved as a float mask; autograd records every step.
Ours: ``lmht.neurons.LMHTNeuron`` with its default backend (one fused autograd function, T-GIM as one
matmul, one floor for all levels, bool masks).

Reports, per (L, T) on input ``[T, 32, 64, 16, 16]``: median and IQR of fwd+bwd wall time over
``--repeats`` runs, bytes saved for backward, and peak resident-memory growth of a fwd+bwd measured in
a fresh subprocess (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA).

    python benchmarks/neuron_bench.py                 # CPU, the issue's four cases
    python benchmarks/neuron_bench.py --device cuda --repeats 50
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

import torch
from torch import nn

from lmht.neurons import LMHTNeuron

CASES = [(2, 2), (4, 2), (2, 4), (4, 8)]
SHAPE = (32, 64, 16, 16)


class _ReferenceFire(torch.autograd.Function):
    """Multi-level fire as in the reference: one comparison per level, float surrogate mask."""

    @staticmethod
    def forward(ctx, mem, threshold, levels):
        out = torch.zeros_like(mem)
        for level in range(1, levels + 1):
            out = out + (mem >= level * threshold).float()
        mask = ((mem >= 0.5 * threshold) & (mem <= (levels + 0.5) * threshold)).float()
        ctx.save_for_backward(mask)
        return out * threshold

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


class ReferenceStructureLMHT(nn.Module):
    """Baseline with the reference code's structure (see module docstring)."""

    def __init__(self, L, T, threshold=1.0):
        super().__init__()
        self.L, self.T, self.threshold = L, T, threshold
        self.omega = nn.Parameter(torch.zeros(T, T))
        self.leak = nn.Parameter(torch.zeros(1))

    def forward(self, x_seq):
        steps = self.T
        weights = 2.0 * torch.sigmoid(self.omega) / steps
        lam = torch.sigmoid(self.leak) + 0.5
        mem = torch.zeros_like(x_seq[0])
        view = (steps,) + (1,) * (x_seq.dim() - 1)
        out = []
        for t in range(steps):
            current = (weights[t].view(view) * x_seq).sum(0)
            mem = lam * mem.detach() + current
            spike = _ReferenceFire.apply(mem, self.threshold, self.L)
            mem = mem - spike.detach()
            out.append(spike)
        return torch.stack(out)


IMPLS = {"reference": ReferenceStructureLMHT, "lmht": lambda L, T: LMHTNeuron(L, T)}


def _make(impl, L, T, device, seed=0):
    torch.manual_seed(seed)
    neuron = IMPLS[impl](L, T).to(device)
    x = (torch.randn(T, *SHAPE, device=device) + 0.5).requires_grad_(True)
    grad = torch.randn(T, *SHAPE, device=device)
    return neuron, x, grad


def _step(neuron, x, grad):
    out = neuron(x)
    out.backward(grad)
    x.grad = None
    neuron.zero_grad(set_to_none=True)


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_case(impl, L, T, device, repeats, warmup=2):
    neuron, x, grad = _make(impl, L, T, device)
    for _ in range(warmup):
        _step(neuron, x, grad)
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        _step(neuron, x, grad)
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def saved_bytes(impl, L, T, device):
    """Bytes of distinct storages autograd keeps for backward after one forward."""
    neuron, x, _ = _make(impl, L, T, device)
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = neuron(x)
    storages.pop(x.untyped_storage().data_ptr(), None)  # the input exists anyway
    del out
    return sum(storages.values())


def peak_memory(impl, L, T, device):
    """Peak memory growth of one fwd+bwd beyond inputs (fresh subprocess on CPU)."""
    if device.type == "cuda":
        neuron, x, grad = _make(impl, L, T, device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _step(neuron, x, grad)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import torch, sys; sys.path.insert(0, {here!r}); import neuron_bench as nb;"
        f"n, x, g = nb._make({impl!r}, {L}, {T}, torch.device('cpu')); nb._step(n, x, g);"
        "print(nb._rss_peak_of(lambda: nb._step(n, x, g)))"
    )
    # Large blocks always mmap-ed, so freed memory leaves the resident set at once.
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()), MALLOC_MMAP_THRESHOLD_="65536")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.strip().splitlines()[-1])


def _status_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _rss_peak_of(fn):
    """Peak resident-set growth (bytes) while ``fn`` runs: reset the high-water mark, run, read it."""
    base = _status_kib("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    fn()
    return (_status_kib("VmHWM") - base) * 1024


def header(device):
    cpu = platform.processor() or platform.machine()
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    return (f"# {platform.node()} | {cpu} | {os.cpu_count()} cores, torch threads {torch.get_num_threads()}"
            f" | GPU {gpu}\n# python {platform.python_version()} | torch {torch.__version__} | "
            f"input [T, {', '.join(map(str, SHAPE))}] float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per case (>= 5)")
    parser.add_argument("--cases", default=",".join(f"{L}x{T}" for L, T in CASES),
                        help="comma-separated LxT list")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    device = torch.device(args.device)
    cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]

    print(header(device))
    cols = ("L", "T", "ref ms", "ours ms", "speed-up", "ref saved MB", "ours saved MB", "ref peak MB",
            "ours peak MB", "peak ratio")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    rows = []
    for L, T in cases:
        t_ref = time_case("reference", L, T, device, args.repeats)
        t_ours = time_case("lmht", L, T, device, args.repeats)
        med_ref, med_ours = statistics.median(t_ref), statistics.median(t_ours)
        s_ref, s_ours = saved_bytes("reference", L, T, device), saved_bytes("lmht", L, T, device)
        p_ref, p_ours = peak_memory("reference", L, T, device), peak_memory("lmht", L, T, device)
        row = dict(L=L, T=T, ref_ms=med_ref * 1e3, ours_ms=med_ours * 1e3,
                   ref_iqr_ms=_iqr(t_ref) * 1e3, ours_iqr_ms=_iqr(t_ours) * 1e3,
                   speedup=med_ref / med_ours, ref_saved_mb=s_ref / 2**20, ours_saved_mb=s_ours / 2**20,
                   ref_peak_mb=p_ref / 2**20, ours_peak_mb=p_ours / 2**20, peak_ratio=p_ours / max(p_ref, 1))
        rows.append(row)
        print(f"| {L} | {T} | {row['ref_ms']:.1f} ± {row['ref_iqr_ms']:.1f} | {row['ours_ms']:.1f} ± "
              f"{row['ours_iqr_ms']:.1f} | {row['speedup']:.2f}x | {row['ref_saved_mb']:.0f} | "
              f"{row['ours_saved_mb']:.0f} | {row['ref_peak_mb']:.0f} | {row['ours_peak_mb']:.0f} | "
              f"{row['peak_ratio']:.2f} |", flush=True)
    print(f"# medians of {args.repeats} runs after 2 warm-ups; ± is the inter-quartile range; "
          "peak = resident-memory growth of one fwd+bwd in a fresh process")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return rows


def _iqr(values):
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


if __name__ == "__main__":
    main()
