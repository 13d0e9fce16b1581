"""GPU benchmark in one call: neuron kernel bandwidth per backend, and ResNet-19 training throughput.

1. Copy bandwidth: a large ``dst.copy_(src)``, bytes read + written per second; the device's practical
   streaming ceiling.
2. Neuron kernels, for every registered backend (``torch``, ``compile``, ``triton``, and the ``auto``
   dispatcher): forward and backward of an LM-HT neuron (L = 2, learned T-GIM and leak, STBP) and of an
   IF neuron (L = 1, no T-GIM, full BPTT) on
   ``[T, N]``; achieved bandwidth = the bytes a fused kernel must move / time (forward: read x, write
   spikes and the final membrane, ``(2T + 1)·N`` floats; backward: read x, spikes and dL/ds, write dL/dx,
   ``4T·N`` floats), and its fraction of the copy bandwidth. With T-GIM the backends also run the
   ``Ω x`` matmuls, whose traffic is not counted: the fraction shows what they cost.
3. ResNet-19 (CIFAR-sized synthetic data, 10 classes) direct training at T = 2, L = 2: images/s of
   fwd + bwd + SGD steps with bf16 autocast and channels_last, eager vs ``torch.compile``, for each
   backend; the ANN under the same settings for reference.

Medians (and inter-quartile ranges) over ``--iters`` timed runs after warm-up, CUDA events on GPU.
Without CUDA (or with ``--cpu-smoke``) everything runs with tiny sizes and few iterations, to prove
that the script works; those numbers mean nothing. Every case is guarded: a failure prints its error
and the script goes on, so one call on a lent GPU always returns a full report.

    python benchmarks/gpu_bench.py --json gpu_bench.json          # on a GPU, about 5 minutes
    python benchmarks/gpu_bench.py --cpu-smoke                    # anywhere, about a minute
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from neuron_bench import _iqr, cpu_name

from lmht.convert import build_snn
from lmht.kernels import list_backends
from lmht.models import create_model
from lmht.neurons import IFNeuron, LMHTNeuron

#: per mode: copy elements, neuron elements per step, neuron T values, model batch, timed iterations
SIZES = {
    "gpu": dict(copy=1 << 28, neurons=1 << 26, steps=(2, 4), batch=128, iters=20, warmup=5, model_iters=20),
    "cpu-smoke": dict(copy=1 << 20, neurons=1 << 14, steps=(2,), batch=2, iters=3, warmup=1, model_iters=2),
}


def versions() -> str:
    out = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for pkg in ("triton", "spikingjelly"):
        try:
            out.append(f"{pkg} {importlib.metadata.version(pkg)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    if torch.cuda.is_available():
        out.append(f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}")
    return " | ".join(out)


def hardware(device: torch.device) -> str:
    cpu = f"{cpu_name()}, torch threads {torch.get_num_threads()}"
    if device.type != "cuda":
        return f"CPU {cpu} (no GPU: smoke mode)"
    prop = torch.cuda.get_device_properties(device)
    return (f"GPU {prop.name}, {prop.total_memory / 2**30:.0f} GiB, {prop.multi_processor_count} SMs, "
            f"compute {prop.major}.{prop.minor} | host CPU {cpu}")


def timed(fn, device, iters, warmup):
    """Seconds per call of ``fn`` (CUDA events on GPU), ``iters`` samples after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(iters):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            samples.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - t0)
    return samples


def guarded(label, fn, rows):
    """Run one case; on failure print its error and record it instead of stopping."""
    try:
        return fn()
    except Exception as exc:  # one failed case must not lose the rest of the run
        print(f"| {label} | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:150]} |", flush=True)
        traceback.print_exc(limit=3, file=sys.stderr)
        rows.append(dict(case=label, error=f"{type(exc).__name__}: {exc}"))
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return None


# ----------------------------------------------------------------------------------------------------
# 1 + 2: bandwidth
# ----------------------------------------------------------------------------------------------------
def copy_bandwidth(device, size, sz):
    src = torch.randn(sz["copy"], device=device)
    dst = torch.empty_like(src)
    samples = timed(lambda: dst.copy_(src), device, sz["iters"], sz["warmup"])
    return 2 * src.numel() * src.element_size() / statistics.median(samples), samples


def neuron_case(backend, kind, T, n, device, sz):
    torch.manual_seed(0)
    if kind == "lmht":
        neuron = LMHTNeuron(2, T, tgim_init="random", leak_init=0.9, backend=backend).to(device)
    else:
        neuron = IFNeuron(T, backend=backend).to(device)
    x = (torch.randn(T, n, device=device) + 0.5).requires_grad_(True)
    grad = torch.randn(T, n, device=device)
    fwd = timed(lambda: neuron(x), device, sz["iters"], sz["warmup"])
    spikes = neuron(x)

    def backward():
        spikes.backward(grad, retain_graph=True)
        x.grad = None

    return fwd, timed(backward, device, sz["iters"], sz["warmup"])


def bandwidth_section(device, sz, rows):
    print("\n## Bandwidth: copy ceiling and neuron kernels (bytes a fused kernel must move / time)")
    cols = ("case", "T", "N per step", "fwd ms", "fwd GB/s", "fwd % copy", "bwd ms", "bwd GB/s", "bwd % copy")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    result = guarded("copy", lambda: copy_bandwidth(device, sz["copy"], sz), rows)
    if result is None:
        return
    copy_bw, samples = result
    ms = statistics.median(samples) * 1e3
    print(f"| dst.copy_(src) | - | {sz['copy']} | {ms:.3f} | {copy_bw / 1e9:.0f} | 100 | - | - | - |",
          flush=True)
    rows.append(dict(case="copy", numel=sz["copy"], ms=ms, gbps=copy_bw / 1e9))
    n = sz["neurons"]
    for backend in [b for b in list_backends() if b != "plain"]:
        for kind in ("if", "lmht"):
            for T in sz["steps"]:
                label = f"{kind} {backend}"

                def run(backend=backend, kind=kind, T=T):
                    return neuron_case(backend, kind, T, n, device, sz)

                result = guarded(f"{label} T={T}", run, rows)
                if result is None:
                    continue
                fwd, bwd = result
                fwd_bytes, bwd_bytes = (2 * T + 1) * n * 4, 4 * T * n * 4
                f_s, b_s = statistics.median(fwd), statistics.median(bwd)
                row = dict(case=label, backend=backend, neuron=kind, T=T, numel=n, fwd_ms=f_s * 1e3,
                           fwd_iqr_ms=_iqr(fwd) * 1e3, bwd_ms=b_s * 1e3, bwd_iqr_ms=_iqr(bwd) * 1e3,
                           fwd_gbps=fwd_bytes / f_s / 1e9, bwd_gbps=bwd_bytes / b_s / 1e9,
                           fwd_frac=fwd_bytes / f_s / copy_bw, bwd_frac=bwd_bytes / b_s / copy_bw)
                rows.append(row)
                print(f"| {label} | {T} | {n} | {row['fwd_ms']:.3f} ± {row['fwd_iqr_ms']:.3f} | "
                      f"{row['fwd_gbps']:.0f} | {100 * row['fwd_frac']:.0f} | {row['bwd_ms']:.3f} ± "
                      f"{row['bwd_iqr_ms']:.3f} | {row['bwd_gbps']:.0f} | {100 * row['bwd_frac']:.0f} |",
                      flush=True)


# ----------------------------------------------------------------------------------------------------
# 3: ResNet-19 training throughput
# ----------------------------------------------------------------------------------------------------
def train_case(device, sz, backend, compiled, snn, T=2, L=2):
    torch.manual_seed(0)
    model = create_model("lmht_resnet19", num_classes=10, in_chans=3)
    if snn:
        model = build_snn(model, "lmht", L, T, (3, 32, 32), backend=backend)
    model = model.to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batch = sz["batch"]
    x = torch.randn(batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    forward = torch.compile(model) if compiled else model

    def step():
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            out = forward(x)
            loss = F.cross_entropy((out.mean(0) if snn else out).float(), y)
        loss.backward()
        opt.step()

    start = time.perf_counter()
    step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    first = time.perf_counter() - start
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    samples = timed(step, device, sz["model_iters"], sz["warmup"])
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else float("nan")
    return samples, first, peak


def training_section(device, sz, rows, compile_modes):
    print(f"\n## ResNet-19 training, synthetic 32×32, batch {sz['batch']}, bf16 autocast, channels_last; "
          "SNN: T = 2, L = 2")
    cols = ("network", "backend", "torch.compile", "step ms", "images/s", "first step s", "peak GiB")
    print("| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    cases = [("ANN", None, c) for c in compile_modes]
    cases += [("SNN", b, c) for b in list_backends() if b not in ("plain",) for c in compile_modes]
    for net, backend, compiled in cases:
        label = f"{net} {backend or '-'} compile={compiled}"

        def run(backend=backend, compiled=compiled, net=net):
            return train_case(device, sz, backend, compiled, net == "SNN")

        result = guarded(label, run, rows)
        if result is None:
            continue
        samples, first, peak = result
        step = statistics.median(samples)
        row = dict(case="train", network=net, backend=backend, compiled=compiled, batch=sz["batch"],
                   step_ms=step * 1e3, step_iqr_ms=_iqr(samples) * 1e3, images_per_s=sz["batch"] / step,
                   first_step_s=first, peak_gib=peak)
        rows.append(row)
        print(f"| {net} | {backend or '-'} | {'on' if compiled else 'off'} | {row['step_ms']:.2f} ± "
              f"{row['step_iqr_ms']:.2f} | {row['images_per_s']:.0f} | {first:.1f} | {peak:.2f} |",
              flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on CPU (automatic without CUDA)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile training cases")
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: bandwidth, training")
    parser.add_argument("--json", help="also write all rows to this file")
    args = parser.parse_args(argv)
    smoke = args.cpu_smoke or not torch.cuda.is_available()
    device = torch.device("cpu" if smoke else "cuda")
    sz = SIZES["cpu-smoke" if smoke else "gpu"]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    print(f"# gpu_bench ({'CPU smoke mode: tiny sizes, numbers mean nothing' if smoke else 'GPU'})")
    print(f"# {hardware(device)}\n# {versions()}\n# backends: {', '.join(list_backends())}; "
          f"medians ± IQR of {sz['iters']} (kernels) / {sz['model_iters']} (training) timed runs")
    rows = []
    skip = set(filter(None, args.skip.split(",")))
    started = time.perf_counter()
    if "bandwidth" not in skip:
        bandwidth_section(device, sz, rows)
    if "training" not in skip:
        training_section(device, sz, rows, (False,) if args.no_compile else (False, True))
    print(f"\n# total {time.perf_counter() - started:.0f} s")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(dict(hardware=hardware(device), versions=versions(), smoke=smoke, rows=rows), fh,
                      indent=1)
    return rows


if __name__ == "__main__":
    main()
