"""``auto`` backend: the fastest candidate backend measured correct on the device, chosen on first use.

On the first call for a device (``cpu``, ``cuda:0``, ...), ``auto_backend`` runs a probe once and
caches its answer for the process:

1. candidates: the registered backends among ``CANDIDATES`` (``torch``, ``triton``). ``compile`` is
   not a candidate: its first use per specialisation compiles for seconds to minutes; select it
   explicitly. With a single candidate (any CPU: ``triton`` is registered only with CUDA) it is the
   answer and nothing runs.
2. correctness: each candidate runs a small fixed problem (an LM-HT layer with T = 4, L = 2,
   θ = 0.37, v_init = 0.5, a random T-GIM and learned leak, STBP; and the IF neuron with BPTT) and must
   give the spikes of the ``plain`` path bit for bit and its gradients to 1e-4; a candidate that fails
   or raises is dropped (with a warning).
3. speed: the correct candidates run forward + backward of both problems, interleaved, ``REPEATS``
   times after a warm-up; the lowest median wins (ties: ``CANDIDATES`` order).

The probe uses its own random generator (the global RNG is untouched), gradients on and autocast off.
Inside ``torch.compile`` tracing no probe can run: a cached answer is used, or else the rule
"``triton`` on CUDA when registered, ``torch`` otherwise".
"""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable

import torch

from lmht.functional import NeuronParams, lmht_multistep_plain
from lmht.kernels.registry import get_backend, list_backends
from lmht.surrogate import create_surrogate

__all__ = ["CANDIDATES", "REPEATS", "auto_backend", "clear_auto_cache", "lmht_auto", "probe"]

#: backends ``auto`` may pick, in order of preference on a tie; to add one, register it and list it here
CANDIDATES = ("torch", "triton")
#: timed runs per candidate in the probe
REPEATS = 5
_CHOICE: dict[str, str] = {}


def _key(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def _problems(device: torch.device):
    """The probe's two problems: ``(args of a backend call, output weights)`` each."""
    g = torch.Generator().manual_seed(0)
    n = (1 << 20) if device.type == "cuda" else (1 << 14)
    x = torch.randn(4, n, generator=g) + 0.3
    omega = torch.rand(4, 4, generator=g) + 0.05
    omega = omega / omega.sum(1, keepdim=True)
    weights = torch.randn(4, n, generator=g)
    to = dict(device=device)
    lmht = (x.to(**to), NeuronParams(2, 0.37, 0.5), omega.to(**to), torch.full((4,), 0.9, **to))
    if_bptt = (x.to(**to), NeuronParams(1, 1.0, 0.0, bptt=True), None, None)
    return [(lmht, weights.to(**to)), (if_bptt, weights.to(**to))]


def _run(backend: Callable, args, weights):
    """Forward + backward of one problem; ``(spikes, [dL/dx, dL/dΩ, dL/dλ])``."""
    x, params, omega, leak = args
    leaves = [t if t is None else t.detach().clone().requires_grad_(True) for t in (x, omega, leak)]
    spikes, _ = backend(leaves[0], params, leaves[1], leaves[2], create_surrogate("rectangle"))
    (spikes * weights).sum().backward()
    return spikes.detach(), [None if t is None else t.grad for t in leaves]


def _plain(x_seq, params, tgim=None, leak_seq=None, surrogate=None):
    return lmht_multistep_plain(x_seq, params, tgim, leak_seq, surrogate, return_state=True)


def _correct(name: str, problems, references) -> bool:
    try:
        for (args, weights), (ref_spikes, ref_grads) in zip(problems, references, strict=True):
            spikes, grads = _run(get_backend(name), args, weights)
            if not torch.equal(spikes, ref_spikes):
                raise AssertionError("spikes differ from the plain path")
            for a, b in zip(ref_grads, grads, strict=True):
                if a is not None:
                    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4 * float(a.abs().max()) + 1e-6)
    except Exception as error:  # any failure disqualifies the candidate
        warnings.warn(f"backend auto: {name!r} dropped on this device: {error}", RuntimeWarning, stacklevel=3)
        return False
    return True


def probe(device: torch.device | str, names, clock: Callable[[], float] = time.perf_counter,
          repeats: int = REPEATS) -> dict[str, float | None]:
    """Median seconds of forward + backward of the probe problems per backend in ``names``, or None for
    a backend that is not correct on ``device`` (see the module docstring)."""
    device = torch.device(device)
    with torch.enable_grad(), torch.autocast(device.type, enabled=False):
        problems = _problems(device)
        references = [_run(_plain, args, weights) for args, weights in problems]
        correct = [name for name in names if _correct(name, problems, references)]
        times: dict[str, list[float]] = {name: [] for name in correct}
        for _ in range(repeats):
            for name in correct:
                backend = get_backend(name)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                start = clock()
                for args, weights in problems:
                    _run(backend, args, weights)
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
                times[name].append(clock() - start)
    return {name: statistics.median(times[name]) if name in times else None for name in names}


def auto_backend(device: torch.device | str) -> str:
    """The backend ``auto`` runs on ``device``: measured on the first call, then cached."""
    key = _key(device)
    if key in _CHOICE:
        return _CHOICE[key]
    names = [name for name in CANDIDATES if name in list_backends()]
    if torch.device(device).type != "cuda":
        names = [name for name in names if name != "triton"]  # triton runs CUDA tensors only
    if len(names) <= 1:
        choice = names[0] if names else "torch"
    else:
        seconds = probe(device, names)
        timed = [(value, CANDIDATES.index(name), name) for name, value in seconds.items()
                 if value is not None]
        choice = min(timed)[2] if timed else "torch"
    _CHOICE[key] = choice
    return choice


def clear_auto_cache() -> None:
    """Forget the measured choices (the next call of ``auto`` probes again)."""
    _CHOICE.clear()


def _rule(device: torch.device) -> str:
    return "triton" if device.type == "cuda" and "triton" in list_backends() else "torch"


def lmht_auto(x_seq, params: NeuronParams, tgim=None, leak_seq=None, surrogate=None):
    """``auto`` backend: the call runs on ``auto_backend(x_seq.device)``."""
    if torch.compiler.is_compiling():
        name = _CHOICE.get(_key(x_seq.device)) or _rule(x_seq.device)
    else:
        name = auto_backend(x_seq.device)
    return get_backend(name)(x_seq, params, tgim, leak_seq, surrogate)
