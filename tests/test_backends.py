"""Every available neuron backend against the plain path: equal spikes, close gradients (CPU, seconds).

Backends checked here: ``torch`` (always), ``compile`` (torch.compile; the first run compiles each
specialisation, seconds each, cached on disk by inductor), ``triton`` (registered only with CUDA; on
CPU its kernels still run through Triton's interpreter in a subprocess), ``auto`` (the dispatcher).
Under STBP (LM-HT) and BPTT (the IF baseline) alike; the level boundary rule ``v ≥ fl(kθ)`` and the IF
neuron's BPTT gradients are checked from their equations. CUDA-only checks skip with their reason
when there is no GPU.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest
import torch

from lmht import kernels
from lmht.functional import NeuronParams, fire_constants, staircase
from lmht.kernels import auto, default_backend, fused, get_backend, list_backends, set_default_backend
from lmht.neurons import IFNeuron, LMHTNeuron
from lmht.surrogate import create_surrogate

CUDA = torch.cuda.is_available()
NO_CUDA = "needs a CUDA device: the triton backend and the GPU equality checks run only on a GPU"
HAS_TRITON = importlib.util.find_spec("triton") is not None
FAST = [name for name in list_backends() if name != "plain"]


# ------------------------------------------------------------------------------------------------
# One case = one call of a backend function; its spikes, final membrane and gradients vs plain
# ------------------------------------------------------------------------------------------------
def _case(L=4, T=3, threshold=0.7, v_init=0.25, tgim="random", leak="learned", surrogate="rectangle",
          shape=(4, 3, 5), seed=0, device="cpu", dtype=torch.float32, bptt=False):
    g = torch.Generator().manual_seed(seed + 31 * L + T)
    x = (torch.randn(T, *shape, generator=g, dtype=torch.float64) * 1.5 + 0.3).to(dtype)
    omega = None
    if tgim == "random":
        omega = torch.rand(T, T, generator=g, dtype=torch.float64) + 0.05
        omega = (omega / omega.sum(1, keepdim=True)).to(dtype)
    leak_seq = None
    if leak == "learned":
        leak_seq = torch.full((T,), 0.9, dtype=dtype)
    elif leak == "fixed":
        leak_seq = torch.full((T,), 0.5, dtype=dtype)
    weights = torch.linspace(-1, 1, x.numel(), dtype=dtype).view_as(x)
    to = dict(device=device)
    return dict(x=x.to(**to), omega=None if omega is None else omega.to(**to),
                leak=None if leak_seq is None else leak_seq.to(**to), weights=weights.to(**to),
                params=NeuronParams(L, threshold, v_init, bptt), surrogate=create_surrogate(surrogate),
                learn=dict(omega=omega is not None, leak=leak == "learned"))


def _run(name, case):
    x = case["x"].clone().requires_grad_(True)
    omega = case["omega"]
    if omega is not None and case["learn"]["omega"]:
        omega = omega.clone().requires_grad_(True)
    leak = case["leak"]
    if leak is not None and case["learn"]["leak"]:
        leak = leak.clone().requires_grad_(True)
    spikes, v_last = get_backend(name)(x, case["params"], omega, leak, case["surrogate"])
    (spikes * case["weights"]).sum().backward()
    grads = [t.grad if t is not None and t.requires_grad else None for t in (x, omega, leak)]
    return spikes.detach(), v_last, grads


def _assert_matches_plain(name, case):
    ref_s, ref_v, ref_g = _run("plain", case)
    s, v, g = _run(name, case)
    assert s.shape == ref_s.shape and s.dtype == ref_s.dtype
    assert torch.equal(s, ref_s), f"{name}: {(s != ref_s).sum().item()} spikes differ from plain"
    assert torch.equal(v, ref_v), f"{name}: final membrane differs from plain"
    for what, a, b in zip(("x", "tgim", "leak"), ref_g, g, strict=True):
        assert (a is None) == (b is None), what
        if a is not None:
            # sums over many neurons in another order: scale the tolerance by the summed magnitude
            scale = (case["x"].abs().sum() if what != "x" else 1.0)
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6 * float(scale), msg=f"{name}: d/d{what}")


# (L, T) at θ = 0.7, v_init = 0.25, random T-GIM, learned leak: the specialisations of
# tests/test_neurons.py, so the compile backend compiles them once per session
GRID = [(1, 1), (2, 2), (4, 3), (2, 8)]
# each property varied from (L, T) = (4, 3); thresholds ride along (θ = 1: floor; 2^k: scaled floor;
# anything else: ATen's floor division) to keep the number of compiled specialisations small
VARIANTS = [
    dict(surrogate="triangle"),
    dict(surrogate="sigmoid"),
    dict(leak="none", threshold=1.0),
    dict(leak="fixed", threshold=0.5),
    dict(tgim="none", threshold=2.0 / 3.0),
    dict(tgim="none", leak="none", L=1, threshold=1.0, v_init=0.0),  # the IF neuron
    dict(threshold=2.0, v_init=0.0),
    # full BPTT (the IF baseline's gradient; the kernels take it for any L, Ω and λ)
    dict(bptt=True),
    dict(bptt=True, surrogate="sigmoid", tgim="none", threshold=1.0),
    dict(bptt=True, tgim="none", leak="fixed", L=1, threshold=0.7, v_init=0.3),  # LIF
    dict(bptt=True, tgim="none", leak="none", L=1, threshold=1.0, v_init=0.0),  # the authors' IF
]


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("L,T", GRID)
def test_backend_matches_plain_over_levels_and_steps(name, L, T):
    _assert_matches_plain(name, _case(L=L, T=T))


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(f"{k}={v[k]}" for k in v))
def test_backend_matches_plain_surrogates_leaks_tgim_thresholds(name, variant):
    _assert_matches_plain(name, _case(**variant))


@pytest.mark.parametrize("name", [b for b in FAST if b != "compile"])
def test_backend_float64(name):
    # not compile: on CPU it rounds a float64 leaky charge twice (see lmht.kernels.compiled), and
    # compiling a float64 specialisation costs ~40 s on a cold cache for no training use
    _assert_matches_plain(name, _case(dtype=torch.float64, L=3, T=4, threshold=0.4))


def test_torch_backend_chunks_cover_every_neuron(monkeypatch):
    """Several chunks and a ragged last one (CHUNK forced small), with and without T-GIM.

    Chunks are multiples of 64 neurons, the column blocking of the BLAS matmul, so the chunked
    ``Ω x`` equals the single matmul of the plain path bit for bit.
    """
    monkeypatch.setattr(fused, "CHUNK", 64)
    for tgim in ("random", "none"):
        for surrogate in ("rectangle", "sigmoid"):
            for bptt in (False, True):
                _assert_matches_plain("torch", _case(L=3, T=4, tgim=tgim, surrogate=surrogate, shape=(5, 67),
                                                     bptt=bptt))


#: LMHTNeuron keywords that give the (θ, v_init, Ω, λ) of ``_case``
NEURON = dict(threshold=0.7, v_init=0.25, tgim_init="random", leak_init=0.9)


# ------------------------------------------------------------------------------------------------
# Layouts: channels_last and expanded (direct-encoding) inputs are used in place, layout kept
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", FAST)
def test_channels_last_input_keeps_its_layout(name):
    torch.manual_seed(0)
    x = torch.randn(2 * 3, 4, 5, 6).to(memory_format=torch.channels_last).unflatten(0, (2, 3)) + 0.5
    neuron = LMHTNeuron(2, 2, **NEURON, backend=name)
    xx = x.clone().requires_grad_(True)
    out = neuron(xx)
    assert out.stride() == x.stride(), "spikes must keep the input's memory layout"
    ref = LMHTNeuron(2, 2, **NEURON, backend="plain")
    ref.load_state_dict(neuron.state_dict())
    xr = x.contiguous().requires_grad_(True)
    out_ref = ref(xr)
    assert torch.equal(out, out_ref)
    out.sum().backward()
    out_ref.sum().backward()
    assert xx.grad.stride() == x.stride()
    torch.testing.assert_close(xx.grad, xr.grad, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", FAST)
def test_input_expanded_over_time(name):
    """Direct encoding repeats one analog step over T with a stride-0 view."""
    step = torch.randn(3, 4, 5) + 0.5
    x = step.unsqueeze(0).expand(3, 3, 4, 5)
    a = LMHTNeuron(4, 3, **NEURON, backend=name)
    b = LMHTNeuron(4, 3, **NEURON, backend="plain")
    b.load_state_dict(a.state_dict())
    sa, sb = step.clone().requires_grad_(True), step.clone().requires_grad_(True)
    oa = a(sa.unsqueeze(0).expand(3, 3, 4, 5))
    ob = b(sb.unsqueeze(0).expand(3, 3, 4, 5))
    assert torch.equal(oa, ob) and torch.equal(oa, a(x))
    oa.sum().backward()
    ob.sum().backward()
    torch.testing.assert_close(sa.grad, sb.grad, rtol=1e-6, atol=1e-6)


# ------------------------------------------------------------------------------------------------
# Registry behaviour
# ------------------------------------------------------------------------------------------------
def test_default_backend_switches_neurons_built_without_one():
    before = default_backend()
    assert before == "auto"
    try:
        for name in FAST:
            set_default_backend(name)
            x = torch.randn(3, 2, 7)
            assert torch.equal(IFNeuron(3)(x), IFNeuron(3, backend="plain")(x))
        with pytest.raises(ValueError, match="backend"):
            set_default_backend("no-such-backend")
    finally:
        set_default_backend(before)


def test_triton_registered_only_with_cuda_and_triton():
    assert ("triton" in list_backends()) == (CUDA and HAS_TRITON)


@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("bptt", [False, True])
def test_backend_saves_only_input_and_spikes(name, bptt):
    """Activation memory: nothing saved for backward but the input and the spikes (plus Ω and λ)."""
    case = _case(shape=(64, 8), bptt=bptt)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    x = case["x"].clone().requires_grad_(True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        spikes, _ = get_backend(name)(x, case["params"], case["omega"], case["leak"], case["surrogate"])
    big = [t for t in saved if t.numel() >= x.numel()]
    assert len(big) == 2, [tuple(t.shape) for t in saved]
    assert any(t.untyped_storage().data_ptr() == x.untyped_storage().data_ptr() for t in big)
    assert any(t.untyped_storage().data_ptr() == spikes.untyped_storage().data_ptr() for t in big)


# ------------------------------------------------------------------------------------------------
# Triton kernels on CPU through the interpreter (subprocess: TRITON_INTERPRET must be set first)
# ------------------------------------------------------------------------------------------------
_INTERPRETER_CHECK = textwrap.dedent("""
    import os, sys, warnings
    os.environ["TRITON_INTERPRET"] = "1"
    warnings.simplefilter("ignore", RuntimeWarning)  # numpy exp overflow inside tl.sigmoid
    sys.path.insert(0, {tests!r})
    import torch
    import test_backends as tb
    from lmht.kernels import register_backend, triton_backend
    assert triton_backend.AVAILABLE and triton_backend.INTERPRET
    register_backend("triton-interpreter", triton_backend.lmht_triton)
    cases = [dict(L=L, T=T) for L, T in tb.GRID] + tb.VARIANTS
    cases += [dict(shape=(3, 1500), L=3, T=4), dict(shape=(3, 1500), L=2, T=5, bptt=True)]  # ragged blocks
    for case in cases:
        tb._assert_matches_plain("triton-interpreter", tb._case(**case))
    for threshold in tb.BOUNDARY_THRESHOLDS:
        for levels in tb.BOUNDARY_LEVELS:
            tb._assert_boundary_rule("triton-interpreter", threshold, levels)
    for case in tb.CORRECTED_CASES:
        tb._assert_boundary_rule("triton-interpreter", *case)
    for case in tb.IF_CASES:
        tb._assert_if_bptt_matches_hand_loop("triton-interpreter", *case)
    for threshold, levels in tb.WINDOW_CASES:
        tb._assert_window_rule("triton-interpreter", threshold, levels, bptt=levels == 1)
    print("ok", len(cases))
""")


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_triton_kernels_match_plain_in_interpreter():
    here = os.path.dirname(os.path.abspath(__file__))
    out = subprocess.run([sys.executable, "-c", _INTERPRETER_CHECK.format(tests=here)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().startswith("ok")


# ------------------------------------------------------------------------------------------------
# CUDA
# ------------------------------------------------------------------------------------------------
@pytest.mark.skipif(not CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("name", FAST)
@pytest.mark.parametrize("case", [dict(L=L, T=T) for L, T in GRID] + VARIANTS + [dict(shape=(64, 33, 17))],
                         ids=str)
def test_backend_matches_plain_on_cuda(name, case):
    _assert_matches_plain(name, _case(device="cuda", **case))


@pytest.mark.skipif(not CUDA, reason=NO_CUDA)
@pytest.mark.parametrize("name", FAST)
def test_backend_under_bf16_autocast_runs_neuron_in_float32(name):
    x = torch.randn(4, 8, 16, device="cuda") + 0.5
    a = LMHTNeuron(2, 4, tgim_init="random", backend=name).cuda()
    b = LMHTNeuron(2, 4, tgim_init="random", backend="plain").cuda()
    b.load_state_dict(a.state_dict())
    with torch.autocast("cuda", dtype=torch.bfloat16):
        out = a(x.bfloat16())
    assert out.dtype == torch.float32
    assert torch.equal(out, b(x.bfloat16().float()))


@pytest.mark.skipif(not (CUDA and HAS_TRITON), reason=NO_CUDA)
def test_triton_falls_back_to_torch_outside_its_scope():
    case = _case(surrogate="rectangle", dtype=torch.float64)  # CPU float64: torch backend
    _assert_matches_plain("triton", case)


# ------------------------------------------------------------------------------------------------
# auto: the fastest candidate measured correct on the device
# ------------------------------------------------------------------------------------------------
def test_auto_on_cpu_is_torch_without_probing(monkeypatch):
    auto.clear_auto_cache()
    monkeypatch.setattr(auto, "probe", lambda *a, **k: pytest.fail("a single candidate needs no probe"))
    assert kernels.auto_backend("cpu") == "torch"
    case = _case(bptt=True)
    _assert_matches_plain("auto", case)


def test_auto_picks_the_fastest_correct_candidate(monkeypatch):
    """The probe drops a backend whose spikes differ from plain; ``auto`` takes the lowest median of
    the rest (timings faked here: no timed assertions) and caches it per device."""
    def wrong(x_seq, params, tgim=None, leak_seq=None, surrogate=None):
        spikes, v = get_backend("torch")(x_seq, params, tgim, leak_seq, surrogate)
        return spikes + 1.0, v

    kernels.register_backend("wrong", wrong)
    kernels.register_backend("slow", get_backend("torch"))
    try:
        with pytest.warns(RuntimeWarning, match="'wrong' dropped"):
            seconds = auto.probe("cpu", ["torch", "wrong", "slow"], repeats=2)
        assert seconds["wrong"] is None and seconds["torch"] > 0 and seconds["slow"] > 0
        monkeypatch.setattr(auto, "CANDIDATES", ("slow", "torch", "wrong"))
        monkeypatch.setattr(auto, "probe", lambda device, names: {"slow": 2.0, "torch": 1.0, "wrong": None})
        monkeypatch.setattr(auto, "_key", lambda device: "fake:0")
        auto.clear_auto_cache()
        assert auto.auto_backend("cuda") == "torch"  # the fastest correct one
        assert auto._CHOICE == {"fake:0": "torch"}
    finally:
        kernels.registry._BACKENDS.pop("wrong", None)
        kernels.registry._BACKENDS.pop("slow", None)
        auto.clear_auto_cache()


def test_auto_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    auto.probe("cpu", ["torch"], repeats=1)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.skipif(not CUDA, reason=NO_CUDA)
def test_auto_on_cuda_picks_a_correct_registered_backend():
    auto.clear_auto_cache()
    assert kernels.auto_backend("cuda") in [n for n in auto.CANDIDATES if n in list_backends()]
    _assert_matches_plain("auto", _case(device="cuda", bptt=True))


def _lmht_imports(path: pathlib.Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {name for name in names if name.startswith("lmht")}


def test_kernel_modules_import_one_way():
    """registry <- backends: only the package's __init__ imports its backend modules; the modules import
    the leaves (registry, layout) and nothing else of lmht.kernels; the pure maths never import kernels."""
    root = pathlib.Path(kernels.__file__).parent
    leaves = {"lmht.kernels.registry", "lmht.kernels.layout"}
    for path in root.glob("*.py"):
        if path.name != "__init__.py":
            inside = {name for name in _lmht_imports(path) if name.startswith("lmht.kernels")}
            assert inside <= leaves, f"{path.name} imports {inside - leaves}: backends import only leaves"
    for leaf in ("registry.py", "layout.py"):
        assert not _lmht_imports(root / leaf), f"{leaf} is a leaf"
    for maths in ("functional.py", "surrogate.py"):
        assert not any(name.startswith("lmht.kernels") for name in _lmht_imports(root.parent / maths))
    assert not (root.parent / "backends").exists() and not (root.parent / "kernels.py").exists()


# ------------------------------------------------------------------------------------------------
# Firing at a level boundary: level k when v >= fl(k·θ), bit-identical in every backend
# ------------------------------------------------------------------------------------------------
BOUNDARY_THRESHOLDS = (1.0, 0.5, 2.0 / 3.0, 0.37, 2.5, 3.1)
BOUNDARY_LEVELS = (1, 2, 4, 3)


def _assert_boundary_rule(name, threshold, levels, dtype=torch.float32):
    """v exactly at each boundary fl(kθ) (k·θ rounded in the dtype) and at the next float below it."""
    theta = torch.tensor(threshold, dtype=dtype)
    bounds = torch.stack([torch.tensor(float(k), dtype=dtype) * theta for k in range(levels + 2)])
    below = torch.nextafter(bounds, torch.full_like(bounds, -1.0))
    v = torch.cat([bounds, below, torch.tensor([-1.0, 1e4], dtype=dtype)])
    expected = torch.zeros_like(v)  # the authors' rule: the highest k with v >= fl(kθ) fires fl(kθ)
    for k in range(1, levels + 1):
        expected = torch.where(v >= bounds[k], bounds[k], expected)
    with torch.no_grad():  # T = 1, no T-GIM, no leak, v_0 = 0: the membrane is the input
        spikes, _ = get_backend(name)(v.unsqueeze(0), NeuronParams(levels, threshold, 0.0), None, None,
                                      create_surrogate("rectangle"))
    assert torch.equal(spikes[0], expected), (name, threshold, levels, v[spikes[0] != expected])


@pytest.mark.parametrize("name", ["plain", *FAST])
@pytest.mark.parametrize("threshold", BOUNDARY_THRESHOLDS, ids=lambda t: f"theta={t:.4g}")
@pytest.mark.parametrize("levels", BOUNDARY_LEVELS)
def test_level_boundaries_fire_at_fl_k_theta(name, threshold, levels):
    _assert_boundary_rule(name, threshold, levels)


#: θ one float below and above 1 (float32)
BELOW_ONE, ABOVE_ONE = 0.9999999403953552, 1.0000001192092896
#: (θ, L) without an exact level multiplier: the corrected estimate runs (pinned below)
CORRECTED_CASES = ((0.37, 8), (3.1, 8), (BELOW_ONE, 2))


@pytest.mark.parametrize("name", ["plain", *FAST])
@pytest.mark.parametrize("case", CORRECTED_CASES, ids=lambda c: f"theta={c[0]}-L={c[1]}")
def test_level_boundaries_with_the_corrected_estimate(name, case):
    assert not fire_constants(*case, torch.float32).exact
    assert fire_constants(0.37, 4, torch.float32).exact and fire_constants(2.0 / 3.0, 3, torch.float32).exact
    assert fire_constants(ABOVE_ONE, 4, torch.float32).exact
    _assert_boundary_rule(name, *case)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fire_constants_give_the_level_at_every_boundary_for_random_thresholds(dtype):
    """The staircase equals the definition k = max{k : v ≥ fl(kθ)} at every boundary, the floats on
    either side and random points, for θ one float around 1 and 200 random θ, L up to 16 (exact and
    corrected paths)."""
    g = torch.Generator().manual_seed(7)
    paths = set()
    randoms = (torch.rand(200, generator=g, dtype=torch.float64) * 10 + 0.01).tolist()
    for threshold in [BELOW_ONE, ABOVE_ONE, *randoms]:
        for levels in (1, 2, 3, 4, 8, 16):
            theta = torch.tensor(threshold, dtype=dtype)
            bounds = torch.arange(levels + 2, dtype=dtype) * theta
            v = torch.cat([bounds, torch.nextafter(bounds, torch.full_like(bounds, -1.0)),
                           torch.nextafter(bounds, torch.full_like(bounds, 1e9)),
                           torch.rand(64, generator=g, dtype=torch.float64).to(dtype) * bounds[-1]])
            expected = torch.zeros_like(v)
            for k in range(1, levels + 1):
                expected = torch.where(v >= bounds[k], bounds[k], expected)
            assert torch.equal(staircase(v, threshold, levels), expected), (threshold, levels, dtype)
            paths.add(fire_constants(threshold, levels, dtype).exact)
    assert paths == {True, False}


#: (θ, L) whose surrogate window [0.5θ, (L + 0.5)θ] is checked at its bounds
WINDOW_CASES = ((1.0, 1), (0.37, 2), (2.0 / 3.0, 3))


def _assert_window_rule(name, threshold, levels, bptt=False, dtype=torch.float32):
    """dL/dv = 1 on the closed window [0.5θ, (L + 0.5)θ] (bounds rounded in the dtype), 0 just outside."""
    lo, hi = (torch.tensor(b, dtype=dtype) for b in (0.5 * threshold, (levels + 0.5) * threshold))
    v = torch.stack([lo, hi, torch.nextafter(lo, torch.tensor(-1.0, dtype=dtype)),
                     torch.nextafter(hi, torch.tensor(1e9, dtype=dtype)), (lo + hi) / 2])
    v = v.unsqueeze(0).requires_grad_(True)  # T = 1: the membrane is the input
    spikes, _ = get_backend(name)(v, NeuronParams(levels, threshold, 0.0, bptt), None, None,
                                  create_surrogate("rectangle"))
    spikes.sum().backward()
    assert v.grad[0].tolist() == [1.0, 1.0, 0.0, 0.0, 1.0], (name, threshold, levels, v.grad)


@pytest.mark.parametrize("name", ["plain", *FAST])
@pytest.mark.parametrize("case", WINDOW_CASES, ids=lambda c: f"theta={c[0]:.3g}-L={c[1]}")
def test_surrogate_window_is_closed_in_every_backend(name, case):
    _assert_window_rule(name, *case, bptt=case[1] == 1)


def test_boundary_rule_differs_from_floor_division():
    """Why the rule matters: floor(v/θ) misses a level exactly at fl(kθ) for some θ (here 2/3, 3.1)."""
    misses = 0
    for threshold in BOUNDARY_THRESHOLDS:
        theta = torch.tensor(threshold)
        bounds = torch.stack([torch.tensor(float(k)) * theta for k in range(1, 5)])
        misses += int((torch.div(bounds, threshold, rounding_mode="floor") != torch.arange(1.0, 5.0)).sum())
    assert misses > 0


# ------------------------------------------------------------------------------------------------
# The IF baseline's BPTT against a hand-unrolled loop (plain autograd, nothing detached)
# ------------------------------------------------------------------------------------------------
#: (T, θ, v_init, λ): θ ≠ 1, v_init ≠ 0, LIF leaks < 1
IF_CASES = [(1, 0.7, 0.3, 1.0), (3, 0.7, 0.3, 0.6), (6, 1.3, 0.5, 0.9), (8, 2.0 / 3.0, 0.25, 1.0)]


def _hand_unrolled_if(x_seq, threshold, v_init, leak):
    """v_t = λ v_{t-1} + x_t; s_t = θ·H(v_t − θ) with ds/dv = [0.5θ ≤ v ≤ 1.5θ]; v_t ← v_t − s_t."""
    v = torch.full_like(x_seq[0], v_init * threshold)
    out = []
    for x in x_seq:
        v = torch.addcmul(x, v, torch.tensor(leak)) if leak != 1.0 else x + v
        window = ((v >= 0.5 * threshold) & (v <= 1.5 * threshold)).to(v.dtype)
        s = ((v >= threshold).to(v.dtype) * threshold).detach() + (window * v - (window * v).detach())
        v = v - s
        out.append(s)
    return torch.stack(out)


def _assert_if_bptt_matches_hand_loop(name, T, threshold, v_init, leak):
    g = torch.Generator().manual_seed(T)
    x = torch.randn(T, 64, 9, generator=g) * 0.8 + 0.4
    weights = torch.randn(T, 64, 9, generator=g)
    grads = []
    for run in (lambda x: IFNeuron(T, threshold, v_init, leak, backend=name)(x),
                lambda x: _hand_unrolled_if(x, threshold, v_init, leak)):
        xx = x.clone().requires_grad_(True)
        spikes = run(xx)
        (spikes * weights).sum().backward()
        grads.append((spikes.detach(), xx.grad))
    (ours, g_ours), (ref, g_ref) = grads
    assert torch.equal(ours, ref), f"{name}: spikes differ"
    torch.testing.assert_close(g_ours, g_ref, rtol=1e-5, atol=1e-5, msg=f"{name}: dL/dx")
    # not vacuous: the detached variant's gradient is different
    xx = x.clone().requires_grad_(True)
    (IFNeuron(T, threshold, v_init, leak, gradient="detached")(xx) * weights).sum().backward()
    assert T == 1 or not torch.allclose(xx.grad, g_ref)


@pytest.mark.parametrize("name", ["plain", *FAST])
@pytest.mark.parametrize("case", IF_CASES, ids=lambda c: "T={}-theta={:.3g}-v_init={}-leak={}".format(*c))
def test_if_bptt_gradients_equal_a_hand_unrolled_loop(name, case):
    _assert_if_bptt_matches_hand_loop(name, *case)
