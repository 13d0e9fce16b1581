"""Neuron forward+backward: this library's backends vs baselines with the reference code's structure.

Baselines (written here, after the structure of the authors' public code):
* LM-HT: per step, the T-GIM row ``2σ(ω)/T`` is broadcast-multiplied with the whole input sequence and
  summed; the multi-level spike is a sum of one comparison per level; the surrogate window is saved as
  a float mask; the membrane and the reset are detached (STBP); autograd records every step.
* IF (BPTT): the authors' ``IFNeuron``: per step ``v = v + x_t``, spike ``(v >= θ)·θ`` with the window
  ``[0.5θ, 1.5θ]`` saved as a float mask, ``v -= spike`` with nothing detached (full BPTT).
Ours: ``lmht.neurons.LMHTNeuron`` / ``IFNeuron`` (default: BPTT) with each registered backend
(``--backends``; default: all but ``plain`` and the ``auto`` dispatcher): ``torch`` (fused autograd
function, chunked over neurons), ``compile`` (torch.compile), ``triton`` (CUDA).

Cases (``--cases``): ``LxT`` is LM-HT with L levels and T steps at θ = 1, ``LxT@θ`` at another θ (a
threshold that is not a power of two, like a hybrid ϑ, takes the boundary-corrected staircase),
``ifT`` is the IF neuron with BPTT over T steps (θ = 1).

Reports, per case on input ``[T, 32, 64, 16, 16]``: median and IQR of fwd+bwd wall time over
``--repeats`` runs (implementations interleaved within each repeat, so load from other processes
hits all of them alike), bytes saved for backward, and peak memory growth of a fwd+bwd: resident set
of a fresh subprocess (CPU) or ``torch.cuda.max_memory_allocated`` (CUDA). ``floor`` is what any
implementation must allocate: the spikes and ``dL/dx`` (2·T·N floats).

Second table (``--sj``, L = 1): our IF neuron vs SpikingJelly's multi-step IF node with soft reset
(``IFNode(step_mode='m', v_reset=None)``, torch/CPU path, Sigmoid surrogate; ours with the ``sigmoid``
surrogate too). SpikingJelly is optional (``pip install spikingjelly``); the table is skipped with a
message when it is missing. Both back-propagate through the membrane (BPTT).

    python benchmarks/neuron_bench.py                 # CPU, every case + SpikingJelly
    python benchmarks/neuron_bench.py --threads 1     # one intra-op thread (stable on a shared CPU)
    python benchmarks/neuron_bench.py --device cuda --repeats 50
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import NamedTuple

import torch
from torch import nn

from lmht.kernels import list_backends
from lmht.neurons import IFNeuron, LMHTNeuron

CASES = ("2x2", "4x2", "2x4", "4x8", "4x2@0.37", "2x4@0.6667", "if4", "if8")
SJ_STEPS = (2, 4, 8)
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


class _ReferenceOneLevel(torch.autograd.Function):
    """The reference IF neuron's spike: ``(v >= θ)·θ``, float window mask ``[0.5θ, 1.5θ]`` saved."""

    @staticmethod
    def forward(ctx, mem, threshold):
        out = (mem >= threshold).float() * threshold
        ctx.save_for_backward(((mem.detach() >= 0.5 * threshold) * (mem.detach() <= 1.5 * threshold)).float())
        return out

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None


class ReferenceStructureIF(nn.Module):
    """Baseline with the reference ``IFNeuron``'s structure: full BPTT, nothing detached."""

    def __init__(self, T, threshold=1.0):
        super().__init__()
        self.T, self.threshold = T, threshold

    def forward(self, x_seq):
        mem = torch.zeros_like(x_seq[0])
        out = []
        for t in range(self.T):
            mem = mem + x_seq[t]
            spike = _ReferenceOneLevel.apply(mem, self.threshold)
            mem = mem - spike
            out.append(spike)
        return torch.stack(out)


class SpikingJellyIF(nn.Module):
    """SpikingJelly's multi-step soft-reset IF node, reset before every sequence (it is stateful)."""

    def __init__(self, T):
        super().__init__()
        from spikingjelly.activation_based import neuron

        kw = dict(step_mode="m", v_reset=None)
        try:  # SpikingJelly < 2.0 selects the kernel by name; 2.0 dispatches on the device itself
            self.node = neuron.IFNode(backend="torch", **kw)
        except TypeError:
            self.node = neuron.IFNode(**kw)

    def forward(self, x_seq):
        self.node.reset()
        return self.node(x_seq)


class Case(NamedTuple):
    """One benchmark case: ``kind`` ``lmht`` (STBP) or ``if`` (BPTT), L, T and θ."""

    kind: str
    L: int
    T: int
    threshold: float = 1.0

    @classmethod
    def parse(cls, text: str) -> Case:
        """``LxT``, ``LxT@θ`` or ``ifT`` (see the module docstring)."""
        if text.startswith("if"):
            return cls("if", 1, int(text[2:]))
        shape, _, theta = text.partition("@")
        levels, steps = (int(v) for v in shape.split("x"))
        return cls("lmht", levels, steps, float(theta) if theta else 1.0)

    def __str__(self) -> str:
        if self.kind == "if":
            return f"IF BPTT, T={self.T}"
        theta = "" if self.threshold == 1.0 else f", θ={self.threshold:g}"
        return f"LM-HT L={self.L}, T={self.T}{theta}"


def _factory(impl, case: Case):
    """``reference``, ``sj``, ``lmht:<backend>`` or ``if:<backend>[:<surrogate>]`` for ``case``."""
    L, T, theta = case.L, case.T, case.threshold
    if impl == "reference":
        return ReferenceStructureIF(T, theta) if case.kind == "if" else ReferenceStructureLMHT(L, T, theta)
    if impl == "sj":
        return SpikingJellyIF(T)
    kind, backend, *rest = impl.split(":")
    if kind == "lmht":
        return LMHTNeuron(L, T, threshold=theta, backend=backend)
    if kind == "if":
        return IFNeuron(T, threshold=theta, backend=backend, surrogate=rest[0] if rest else "rectangle")
    raise ValueError(f"unknown implementation {impl!r}")


def spikingjelly_version():
    try:
        return importlib.metadata.version("spikingjelly")
    except importlib.metadata.PackageNotFoundError:
        return None


def _make(impl, case: Case, device, seed=0):
    torch.manual_seed(seed)
    T = case.T
    neuron = _factory(impl, case).to(device)
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


def time_case(impl, case: Case, device, repeats, warmup=2):
    neuron, x, grad = _make(impl, case, device)
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


def time_interleaved(impls, case: Case, device, repeats, warmup=2):
    """Fwd+bwd times of several implementations, one run of each per repeat (same load for all).

    Returns ``({impl: [seconds]}, {impl: seconds of the first call})``; the first call includes any
    compilation (``compile`` backend).
    """
    made = {impl: _make(impl, case, device) for impl in impls}
    first = {}
    for impl, args in made.items():
        _sync(device)
        start = time.perf_counter()
        _step(*args)
        _sync(device)
        first[impl] = time.perf_counter() - start
        for _ in range(warmup - 1):
            _step(*args)
    times = {impl: [] for impl in impls}
    for _ in range(repeats):
        for impl, args in made.items():
            _sync(device)
            start = time.perf_counter()
            _step(*args)
            _sync(device)
            times[impl].append(time.perf_counter() - start)
    return times, first


def saved_bytes(impl, case: Case, device):
    """Bytes of distinct storages autograd keeps for backward after one forward."""
    neuron, x, _ = _make(impl, case, device)
    storages = {}

    def pack(t):
        storages[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = neuron(x)
    storages.pop(x.untyped_storage().data_ptr(), None)  # the input exists anyway
    del out
    return sum(storages.values())


def peak_memory(impl, case: Case, device):
    """Peak memory growth of one fwd+bwd beyond inputs (fresh subprocess on CPU)."""
    if device.type == "cuda":
        neuron, x, grad = _make(impl, case, device)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        _step(neuron, x, grad)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    here = os.path.dirname(os.path.abspath(__file__))
    code = (
        f"import torch, sys; sys.path.insert(0, {here!r}); import neuron_bench as nb;"
        f"n, x, g = nb._make({impl!r}, nb.Case(*{tuple(case)!r}), torch.device('cpu')); nb._step(n, x, g);"
        "print(nb._rss_peak_of(lambda: nb._step(n, x, g)))"
    )
    # Large blocks always mmap-ed, so freed memory leaves the resident set at once.
    env = dict(os.environ, OMP_NUM_THREADS=str(torch.get_num_threads()), MALLOC_MMAP_THRESHOLD_="65536")
    env.pop("TRITON_INTERPRET", None)
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


def cpu_name():
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def header(device):
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    try:
        load = " | load avg {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:
        load = ""
    return (f"# {platform.node()} | {cpu_name()} | {os.cpu_count()} cores, torch threads "
            f"{torch.get_num_threads()}{load} | GPU {gpu}\n# python {platform.python_version()} | torch "
            f"{torch.__version__} | spikingjelly {spikingjelly_version() or '-'} | "
            f"input [T, {', '.join(map(str, SHAPE))}] float32")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=11, help="timed runs per case (>= 5)")
    parser.add_argument("--cases", default=",".join(CASES),
                        help="comma-separated cases: LxT, LxT@θ (LM-HT), ifT (IF with BPTT)")
    measured = [b for b in list_backends() if b not in ("plain", "auto")]
    parser.add_argument("--backends", default=",".join(measured),
                        help="comma-separated lmht.kernels backends to measure")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--sj", default="auto", choices=("auto", "off"),
                        help="SpikingJelly IF table (auto: when spikingjelly is installed)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    if args.repeats < 5:
        parser.error("--repeats must be >= 5")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cases = [Case.parse(c) for c in args.cases.split(",")]
    backends = [b for b in args.backends.split(",") if b]

    print(header(device))
    cols = ("case", "backend", "ref ms", "ours ms", "speed-up", "ref saved MB", "ours saved MB",
            "ref peak MB", "ours peak MB", "peak ratio", "floor MB")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    rows, notes = [], []
    for case in cases:
        impls = ["reference", *(f"{case.kind}:{b}" for b in backends)]
        times, first = time_interleaved(impls, case, device, args.repeats)
        ref = times["reference"]
        s_ref = saved_bytes("reference", case, device)
        p_ref = None if args.no_memory else peak_memory("reference", case, device)
        floor = 2 * case.T * _numel() * 4
        for backend in backends:
            impl = f"{case.kind}:{backend}"
            ours = times[impl]
            s_ours = saved_bytes(impl, case, device)
            p_ours = None if args.no_memory else peak_memory(impl, case, device)
            row = dict(case=str(case), kind=case.kind, L=case.L, T=case.T, threshold=case.threshold,
                       backend=backend, ref_ms=statistics.median(ref) * 1e3,
                       ours_ms=statistics.median(ours) * 1e3, ref_iqr_ms=_iqr(ref) * 1e3,
                       ours_iqr_ms=_iqr(ours) * 1e3, speedup=statistics.median(ref) / statistics.median(ours),
                       ref_saved_mb=s_ref / 2**20, ours_saved_mb=s_ours / 2**20,
                       ref_peak_mb=None if p_ref is None else p_ref / 2**20,
                       ours_peak_mb=None if p_ours is None else p_ours / 2**20,
                       peak_ratio=None if p_ref is None else p_ours / max(p_ref, 1), floor_mb=floor / 2**20,
                       first_call_s=first[impl])
            rows.append(row)
            print(f"| {case} | {backend} | {row['ref_ms']:.1f} ± {row['ref_iqr_ms']:.1f} | "
                  f"{row['ours_ms']:.1f} ± {row['ours_iqr_ms']:.1f} | {row['speedup']:.2f}x | "
                  f"{row['ref_saved_mb']:.0f} | {row['ours_saved_mb']:.0f} | {_mb(row['ref_peak_mb'])} | "
                  f"{_mb(row['ours_peak_mb'])} | {_ratio(row['peak_ratio'])} | {row['floor_mb']:.0f} |",
                  flush=True)
            if backend == "compile":
                notes.append(f"compile {case}: first call {first[impl]:.1f} s (compile + run)")
    print(f"# medians of {args.repeats} interleaved runs after 2 warm-ups; ± is the inter-quartile range; "
          "peak = memory growth of one fwd+bwd in a fresh process; floor = spikes + dL/dx")
    for note in notes:
        print("# " + note)

    sj_rows = []
    if args.sj == "auto":
        if spikingjelly_version() is None:
            print("\n# SpikingJelly table skipped: spikingjelly is not installed "
                  "(pip install spikingjelly, or the project's [bench] extra)")
        else:
            sj_rows = spikingjelly_table(device, backends, args)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"lmht": rows, "spikingjelly": sj_rows}, fh, indent=1)
    return rows


def spikingjelly_table(device, backends, args):
    """L = 1: our IF neuron (each backend and surrogate) vs SpikingJelly's multi-step IF node."""
    print(f"\n# IF neuron (L = 1) vs SpikingJelly {spikingjelly_version()} "
          "IFNode(step_mode='m', v_reset=None) (its default Sigmoid(α=4) surrogate)")
    cols = ("T", "ours", "SJ ms", "ours ms", "speed-up", "SJ peak MB", "ours peak MB", "peak ratio")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    rows = []
    for T in SJ_STEPS:
        ours_impls = [f"if:{b}:{surrogate}" for b in backends for surrogate in ("rectangle", "sigmoid")]
        case = Case("if", 1, T)
        times, _ = time_interleaved(["sj", *ours_impls], case, device, args.repeats)
        sj = times["sj"]
        p_sj = None if args.no_memory else peak_memory("sj", case, device)
        for impl in ours_impls:
            ours = times[impl]
            p_ours = None if args.no_memory else peak_memory(impl, case, device)
            _, backend, surrogate = impl.split(":")
            row = dict(T=T, backend=backend, surrogate=surrogate, sj_ms=statistics.median(sj) * 1e3,
                       sj_iqr_ms=_iqr(sj) * 1e3, ours_ms=statistics.median(ours) * 1e3,
                       ours_iqr_ms=_iqr(ours) * 1e3, speedup=statistics.median(sj) / statistics.median(ours),
                       sj_peak_mb=None if p_sj is None else p_sj / 2**20,
                       ours_peak_mb=None if p_ours is None else p_ours / 2**20,
                       peak_ratio=None if p_sj is None else p_ours / max(p_sj, 1))
            rows.append(row)
            print(f"| {T} | {backend}, {surrogate} | {row['sj_ms']:.1f} ± {row['sj_iqr_ms']:.1f} | "
                  f"{row['ours_ms']:.1f} ± {row['ours_iqr_ms']:.1f} | {row['speedup']:.2f}x | "
                  f"{_mb(row['sj_peak_mb'])} | {_mb(row['ours_peak_mb'])} | {_ratio(row['peak_ratio'])} |",
                  flush=True)
    print(f"# medians of {args.repeats} interleaved runs; both back-propagate through the membrane (BPTT, "
          "the default of our IFNeuron); rectangle is our default surrogate")
    return rows


def _numel():
    n = 1
    for d in SHAPE:
        n *= d
    return n


def _mb(value):
    return "-" if value is None else f"{value:.0f}"


def _ratio(value):
    return "-" if value is None else f"{value:.2f}"


def _iqr(values):
    q = statistics.quantiles(values, n=4)
    return q[2] - q[0]


if __name__ == "__main__":
    main()
