"""The paper's lemmas and theorems, and the neuron contract, as CPU unit tests (seconds)."""

from __future__ import annotations

import itertools

import pytest
import torch

from lmht.functional import NeuronParams, lmht_multistep_plain, qcfs
from lmht.kernels import get_backend
from lmht.neurons import IF_GRADIENTS, QCFS, TGIM_PARAMS, IFNeuron, LMHTNeuron, create_neuron

GRID = list(itertools.product([1, 2, 4, 8], [1, 2, 4, 8]))  # (L, T)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------------
# Lemma 4.1 / Theorem 4.2: one M-HT step with L levels == L IF steps receiving I/L
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("L,T", GRID)
@pytest.mark.parametrize("threshold", [1.0, 0.37, 2.5])
@pytest.mark.parametrize("v_init", [0.0, 0.5])
def test_mht_step_equals_L_if_steps(L, T, threshold, v_init):
    x = torch.rand(T, 64, 7, generator=_gen(L * 100 + T), dtype=torch.float64) * 3 * threshold
    mht, mht_v = lmht_multistep_plain(x, NeuronParams(L, threshold, v_init), return_state=True)
    sub = (x / L).repeat_interleave(L, 0)
    ifs, if_v = lmht_multistep_plain(sub, NeuronParams(1, threshold, v_init), return_state=True)
    counts = ifs.unflatten(0, (T, L)).sum(1) / threshold
    assert torch.equal(counts, mht / threshold)  # spike counts per window (Thm 4.2 i)
    torch.testing.assert_close(if_v, mht_v, rtol=0, atol=1e-9)  # residual membrane (Thm 4.2 ii)
    levels = mht / threshold
    torch.testing.assert_close(levels, levels.round(), rtol=0, atol=1e-12)
    assert levels.min() >= 0 and levels.round().max() <= L


def test_compression_is_only_approximate_outside_its_regime():
    # Non-uniform currents inside a window ([3, -3] sums to 0): IF fires once, M-HT never. This shows
    # the exact test above is not vacuous.
    y = torch.tensor([[3.0], [-3.0]], dtype=torch.float64)
    single = lmht_multistep_plain(y, NeuronParams(1, 1.0, 0.0)).sum(0)
    mht = lmht_multistep_plain(y.sum(0, keepdim=True), NeuronParams(2, 1.0, 0.0)).sum(0)
    assert single.item() == 1.0 and mht.item() == 0.0


# ------------------------------------------------------------------------------------------------
# Theorem 4.4: uniform T-GIM, λ = 1, v_init = 0.5, input × L  =>  mean output / L == QCFS_{TL}(mean x)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("L,T", GRID)
@pytest.mark.parametrize("theta", [1.0, 0.8, 3.0])
def test_theorem_4_4_qcfs_equivalence(L, T, theta):
    x = (torch.rand(T, 256, generator=_gen(L * 10 + T), dtype=torch.float64) * 1.6 - 0.3) * theta
    neuron = LMHTNeuron(L, T, threshold=theta, v_init=0.5, tgim_init="uniform").double()
    assert torch.equal(neuron.leak, torch.tensor(1.0, dtype=torch.float64))
    out = neuron(x * L)
    expected = qcfs(x.mean(0), T * L, theta)
    torch.testing.assert_close(out.mean(0) / L, expected, rtol=0, atol=1e-12)


def test_qcfs_matches_formula_and_trains_threshold():
    q = QCFS(levels=4, threshold=2.0)
    x = torch.linspace(-1, 3, 101, requires_grad=True)
    y = q(x)
    ref = 2.0 / 4 * torch.clamp(torch.floor(x.detach() * 4 / 2.0 + 0.5), 0, 4)
    torch.testing.assert_close(y.detach(), ref)
    y.sum().backward()
    assert q.threshold.grad is not None and q.threshold.grad.abs() > 0
    assert x.grad is not None


@pytest.mark.parametrize("levels,theta", [(4, 2.0), (8, 0.37), (2, 3.1)])
def test_qcfs_gradients_clamp_after_the_floor(levels, theta):
    """y = ϑ·clamp(z, 0, 1), z = ⌊x/ϑ·Q + 0.5⌋/Q (straight-through floor, clamp *after* it, as the authors):
    dy/dx = [0 ≤ z ≤ 1] and dy/dϑ = clamp(z, 0, 1) − [0 ≤ z ≤ 1]·x/ϑ."""
    q = QCFS(levels, theta).double()
    x = (torch.linspace(-0.5, 1.5, 401, dtype=torch.float64) * theta).requires_grad_(True)
    y = q(x)
    gx, gt = torch.autograd.grad(y.sum(), (x, q.threshold))
    theta = q.threshold.detach()  # ϑ as stored (float32, then float64)
    z = torch.floor(x.detach() / theta * levels + 0.5) / levels
    inside = ((z >= 0) & (z <= 1)).double()
    assert torch.equal(gx, inside)
    torch.testing.assert_close(gt, (z.clamp(0, 1) - inside * x.detach() / theta).sum())
    # the clamp-before order would cut the gradient for x just below 0 and just above ϑ: here it flows
    below = (x.detach() < 0) & (z == 0)
    assert below.any() and torch.all(gx[below] == 1)


# ------------------------------------------------------------------------------------------------
# Neuron contract
# ------------------------------------------------------------------------------------------------
def test_default_tgim_is_the_papers_sigmoid_form():
    """Ω[t, j] = (2/T)·σ(ω[t, j]) with ω = 0 at start: uniform 1/T, bounded in (0, 2/T) (Sec. 4.3)."""
    for T in (1, 2, 5):
        neuron = LMHTNeuron(2, T, 0.5, 0.0)
        assert neuron.tgim_param == "sigmoid" and neuron.tgim_init == "uniform"
        assert torch.equal(neuron.tgim_raw, torch.zeros(T, T))
        assert torch.equal(neuron.tgim, torch.full((T, T), 1.0 / T))
        assert neuron.leak.item() == 1.0 and torch.equal(neuron.leak_raw, torch.tensor(0.0))  # λ = σ(0) + 0.5
        with torch.no_grad():
            neuron.tgim_raw.copy_(torch.linspace(-12, 12, T * T).view(T, T))
        assert torch.all(neuron.tgim > 0) and torch.all(neuron.tgim < 2.0 / T)
        torch.manual_seed(T)
        rnd = LMHTNeuron(2, T, tgim_init="random")
        torch.manual_seed(T)
        torch.testing.assert_close(rnd.tgim, 2.0 / T * torch.sigmoid(torch.randn(T, T)))  # ω ~ N(0, 1)
    assert torch.equal(LMHTNeuron(2, 1, tgim_init="identity").tgim, torch.ones(1, 1))  # T = 1: uniform is I
    with pytest.raises(ValueError, match="tgim_param='direct'"):
        LMHTNeuron(2, 2, tgim_init="identity")


@pytest.mark.parametrize("L,T,theta,v_init", [(2, 2, 1.0, 0.0), (4, 3, 0.5, 0.5), (3, 4, 0.37, 0.25)])
def test_default_lmht_neuron_is_the_papers_equations(L, T, theta, v_init):
    """``LMHTNeuron(L, T, θ, v_init)`` against a per-step loop written from Sec. 4 (Eqs. 5-9): Ω = 2σ(ω)/T,
    λ = σ(a) + 0.5, v_{t-1} and the reset detached, level k when v ≥ kθ, ds/dv = 1 on [θ/2, (L+1/2)θ]."""
    g = _gen(L * 7 + T)
    neuron = LMHTNeuron(L, T, theta, v_init).double()
    with torch.no_grad():
        neuron.tgim_raw.copy_(torch.randn(T, T, generator=g, dtype=torch.float64))
        neuron.leak_raw.fill_(0.3)
    x = (torch.rand(T, 40, 3, generator=g, dtype=torch.float64) * 2.5 * theta * L).requires_grad_(True)
    weights = torch.randn(T, 40, 3, generator=g, dtype=torch.float64)
    omega = neuron.tgim_raw.detach().clone().requires_grad_(True)
    a = neuron.leak_raw.detach().clone().requires_grad_(True)
    lam = torch.sigmoid(a) + 0.5
    v = torch.full_like(x[0], v_init * theta)
    spikes = []
    for t in range(T):
        current = ((2 * torch.sigmoid(omega[t]) / T).view(T, 1, 1) * x).sum(0)
        v = lam * v.detach() + current
        level = sum((v >= k * theta).double() for k in range(1, L + 1))
        window = ((v >= 0.5 * theta) & (v <= (L + 0.5) * theta)).double()
        s = (level * theta).detach() + (window * v - (window * v).detach())
        v = v - s.detach()
        spikes.append(s)
    ref = torch.stack(spikes)
    ref_grads = torch.autograd.grad((ref * weights).sum(), (x, omega, a))
    out = neuron(x)
    grads = torch.autograd.grad((out * weights).sum(), (x, neuron.tgim_raw, neuron.leak_raw))
    assert torch.equal(out, ref.detach())
    for ours, theirs in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-9)


def test_direct_tgim_inits_are_exact():
    for T in (1, 2, 5):
        assert torch.equal(LMHTNeuron(2, T, tgim_init="identity", tgim_param="direct").tgim, torch.eye(T))
        assert torch.equal(LMHTNeuron(2, T, tgim_param="direct").tgim, torch.full((T, T), 1.0 / T))
        rnd = LMHTNeuron(2, T, tgim_init="random", tgim_param="direct").tgim
        torch.testing.assert_close(rnd.sum(1), torch.ones(T))


@pytest.mark.parametrize("param", ["sigmoid", "direct"])
def test_weight_decay_pulls_sigmoid_tgim_to_uniform_and_direct_tgim_to_zero(param):
    """10k AdamW steps of the DVS preset (lr 0.02, wd 0.01) with a zero loss gradient: only the weight
    decay acts. The paper's Ω = 2σ(ω)/T stays in (0, 2/T) and moves towards uniform 1/T (ω → 0); our
    direct Ω shrinks towards 0 (row sums 1 → e^-2 ≈ 0.135)."""
    T = 4
    torch.manual_seed(0)
    neuron = LMHTNeuron(2, T, tgim_init="random", tgim_param=param)
    start, raw_start = neuron.tgim.detach().clone(), neuron.tgim_raw.detach().clone()
    uniform = torch.full((T, T), 1.0 / T)
    opt = torch.optim.AdamW([neuron.tgim_raw], lr=0.02, weight_decay=0.01, foreach=False)
    neuron.tgim_raw.grad = torch.zeros_like(neuron.tgim_raw)
    for _ in range(10_000):
        opt.step()
    omega = neuron.tgim.detach()
    if param == "sigmoid":
        decayed = raw_start * (1 - 0.02 * 0.01) ** 10_000  # ω → 0
        torch.testing.assert_close(neuron.tgim_raw.detach(), decayed, rtol=1e-3, atol=1e-6)
        assert torch.all(omega > 0) and torch.all(omega < 2.0 / T)
        assert (omega - uniform).abs().max() < 0.2 * (start - uniform).abs().max()
        torch.testing.assert_close(omega.sum(1), torch.ones(T), rtol=0, atol=0.1)
    else:
        torch.testing.assert_close(omega, start * (1 - 0.02 * 0.01) ** 10_000, rtol=1e-3, atol=1e-6)
        assert torch.all(omega.sum(1) < 0.14)


@pytest.mark.parametrize("shape", [(3,), (3, 4), (3, 2, 4, 5)])
def test_any_trailing_shape_and_level_values(shape):
    L, T, theta = 4, 3, 0.5
    x = torch.randn(T, *shape) * 2
    out = LMHTNeuron(L, T, threshold=theta)(x)
    assert out.shape == x.shape
    levels = (out / theta).unique()
    torch.testing.assert_close(levels, levels.round())
    assert levels.min() >= 0 and levels.round().max() <= L


def test_l1_identity_tgim_unit_leak_is_the_if_neuron():
    x = torch.randn(6, 8, 5)
    a = LMHTNeuron(1, 6, threshold=0.7, v_init=0.3, tgim_init="identity", tgim_param="direct")(x)
    b = IFNeuron(6, threshold=0.7, v_init=0.3)(x)
    assert torch.equal(a, b)
    assert torch.equal(b.unique(), torch.tensor([0.0, 0.7]))


def test_lif_leak_trace():
    x = torch.full((4, 1), 0.6, dtype=torch.float64)
    assert IFNeuron(4).double()(x).flatten().tolist() == [0.0, 1.0, 0.0, 1.0]  # 0.6 1.2 0.8 1.4
    # λ = 0.5: v = 0.6, 0.9, 1.05 -> fire (0.05), 0.625
    assert IFNeuron(4, leak=0.5).double()(x).flatten().tolist() == [0.0, 0.0, 1.0, 0.0]


# ------------------------------------------------------------------------------------------------
# Reparameterization at neuron level (learned T-GIM and leak)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("L,T", [(2, 2), (4, 2), (2, 4), (3, 3)])
@pytest.mark.parametrize("param", ["sigmoid", "direct"])
def test_to_single_threshold_exact_with_learned_tgim_and_leak(L, T, param):
    g = _gen(L + 7 * T)
    neuron = LMHTNeuron(L, T, threshold=0.6, v_init=0.2, tgim_init="random", leak_init=0.8,
                        tgim_param=param).double()
    with torch.no_grad():  # "learned": arbitrary non-negative Ω, λ != 1
        neuron.tgim_raw.copy_(torch.rand(T, T, generator=g, dtype=torch.float64))
    x = torch.rand(T, 32, 6, generator=g, dtype=torch.float64) * 2
    single = neuron.to_single_threshold()
    assert single.T == T * L
    sub = single((x / L).repeat_interleave(L, 0))
    assert set((sub / 0.6).unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(sub.unflatten(0, (T, L)).sum(1), neuron(x), rtol=0, atol=1e-12)


def test_to_single_threshold_keeps_lmht_gradients():
    single = LMHTNeuron(2, 3).to_single_threshold()
    assert single.gradient == "detached" and not single.params.bptt


# ------------------------------------------------------------------------------------------------
# Gradients
# ------------------------------------------------------------------------------------------------
def test_surrogate_window_gradient():
    L, theta = 2, 1.0
    v = torch.tensor([0.2, 0.5, 1.3, 2.5, 2.6, -1.0], dtype=torch.float64).unsqueeze(0)
    x = v.clone().requires_grad_(True)  # T = 1, identity T-GIM, v_init = 0: v_1 = x
    LMHTNeuron(L, 1, threshold=theta, tgim_init="identity", learn_tgim=False, learn_leak=False).double()(
        x
    ).sum().backward()
    assert x.grad.flatten().tolist() == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]


def test_detached_recurrence_only_tgim_crosses_time():
    # With identity T-GIM the gradient of step t's output w.r.t. earlier inputs is exactly zero.
    x = (torch.rand(4, 5, dtype=torch.float64) + 0.5).requires_grad_(True)
    neuron = LMHTNeuron(2, 4, tgim_init="identity", tgim_param="direct", learn_leak=False).double()
    neuron(x)[3].sum().backward()
    assert torch.all(x.grad[:3] == 0) and torch.any(x.grad[3] != 0)
    # With a full T-GIM, gradients cross time only through Ω: grad = Ω[3, j] * window_3.
    x.grad = None
    neuron = LMHTNeuron(2, 4, tgim_init="random", tgim_param="direct", learn_leak=False).double()
    out = neuron(x)
    out[3].sum().backward()
    current3 = (neuron.tgim @ x.detach())[3]
    assert torch.all(x.grad[:3] != 0) or torch.all(current3 > 0)
    window = (x.grad[3] != 0).double()
    torch.testing.assert_close(x.grad, neuron.tgim.detach()[3].unsqueeze(1) * window.unsqueeze(0))


def test_if_gradient_bptt_crosses_time_and_detached_does_not():
    # v: 0.3 (below the window [0.5, 1.5]: dv/du = 1 − σ' = 1), 1.2 (fires) -> 0.2, 0.8
    x = torch.tensor([[0.3], [0.9], [0.6]], dtype=torch.float64, requires_grad=True)
    for gradient, crosses in (("bptt", True), ("detached", False)):
        x.grad = None
        IFNeuron(3, gradient=gradient).double()(x)[1].sum().backward()
        # under BPTT x_1 reaches step 2's spike through the membrane; detached, it does not
        assert x.grad[1].item() == 1.0 and (x.grad[0].item() == 1.0) == crosses and x.grad[2].item() == 0.0


def test_gradients_reach_tgim_and_leak():
    neuron = LMHTNeuron(2, 3, tgim_init="uniform")
    x = torch.rand(3, 16, 4) * 2
    neuron(x).sum().backward()
    assert neuron.tgim_raw.grad is not None and neuron.tgim_raw.grad.abs().sum() > 0
    assert neuron.leak_raw.grad is not None and neuron.leak_raw.grad.abs() > 0


def test_gradcheck_tgim_mixing_and_qcfs_straight_through():
    # The only exactly differentiable parts are checked numerically: the T-GIM mixing (w.r.t. Ω and x).
    from lmht.functional import tgim_mix

    x = (torch.rand(3, 4, dtype=torch.float64) + 0.2).requires_grad_(True)
    omega = torch.rand(3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(tgim_mix, (x, omega))
    # QCFS: straight-through floor then clamp, so d/dx is 1 where the rounded level lies in [0, Q].
    q = QCFS(4, 2.0).double()
    inp = (torch.rand(50, dtype=torch.float64) * 3 - 0.5).requires_grad_(True)
    (g_in,) = torch.autograd.grad(q(inp).sum(), inp)
    assert torch.equal(g_in, ((inp >= -0.25) & (inp < 2.25)).double())


# ------------------------------------------------------------------------------------------------
# Backends: identical values and gradients
# ------------------------------------------------------------------------------------------------
# The default backend here; tests/test_backends.py runs the same comparison for every backend.
@pytest.mark.parametrize("backend", ["torch"])
@pytest.mark.parametrize("surrogate", ["rectangle", "triangle", "sigmoid"])
@pytest.mark.parametrize("L,T", [(1, 1), (2, 2), (4, 3), (2, 8)])
def test_backends_match_plain(backend, surrogate, L, T):
    g = _gen(L * 31 + T)
    x = (torch.randn(T, 4, 3, 5, generator=g) * 1.5).requires_grad_(True)

    def run(name):
        torch.manual_seed(0)
        neuron = LMHTNeuron(L, T, threshold=0.7, v_init=0.25, tgim_init="random", leak_init=0.9,
                            surrogate=surrogate, backend=name)
        xx = x.detach().clone().requires_grad_(True)
        out = neuron(xx)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        return out, xx.grad, neuron.tgim_raw.grad, neuron.leak_raw.grad

    ref, test = run("plain"), run(backend)
    assert torch.equal(ref[0], test[0])
    for a, b in zip(ref[1:], test[1:], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_fused_final_state_matches_plain():
    x = torch.rand(5, 7, dtype=torch.float64) * 2
    params = NeuronParams(3, 0.4, 0.5)
    omega = torch.rand(5, 5, dtype=torch.float64)
    leak = torch.full((5,), 0.9, dtype=torch.float64)
    a, va = get_backend("plain")(x, params, omega, leak, LMHTNeuron(3, 5).surrogate)
    b, vb = get_backend("torch")(x, params, omega, leak, LMHTNeuron(3, 5).surrogate)
    assert torch.equal(a, b) and torch.equal(va, vb)


# ------------------------------------------------------------------------------------------------
# Bad arguments
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(L=0, T=2), "L"),
        (dict(L=2, T=0), "T"),
        (dict(L=2, T=2, threshold=0.0), "threshold"),
        (dict(L=2, T=2, threshold=-1.0), "threshold"),
        (dict(L=2, T=2, tgim_init="diagonal"), "tgim_init"),
        (dict(L=2, T=2, surrogate="erf"), "surrogate"),
        (dict(L=2, T=2, tgim_param="softmax"), "tgim_param"),
        (dict(L=2, T=2, leak_init=2.0), "leak_init"),
        (dict(L=1.5, T=2), "L"),
        (dict(L=2, T=2, backend="cuda-magic"), "backend"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        LMHTNeuron(**kwargs)
    with pytest.raises(ValueError, match="gradient"):
        IFNeuron(2, gradient="truncated")


def test_bad_input_rank_and_steps():
    neuron = LMHTNeuron(2, 3)
    with pytest.raises(ValueError, match="x_seq"):
        neuron(torch.rand(3))
    with pytest.raises(ValueError, match="T=3"):
        neuron(torch.rand(4, 2))
    with pytest.raises(ValueError, match="T"):
        neuron.T = 5
    with pytest.raises(ValueError, match="threshold"):
        IFNeuron(2, threshold=0)
    with pytest.raises(ValueError, match="levels"):
        QCFS(0)


def test_create_neuron_registry():
    assert isinstance(create_neuron("lmht", L=2, T=2), LMHTNeuron)
    assert create_neuron("lmht", L=4, T=2).threshold == 0.5  # θ = 2/L
    mht = create_neuron("mht", L=2, T=2)
    assert mht.tgim_or_none() is None and not mht.learn_leak
    assert create_neuron("lif", T=2).leak == 0.5
    assert create_neuron("if", T=2).gradient == "bptt" and create_neuron("if", T=2).params.bptt
    assert create_neuron("lif", T=2, gradient="detached").gradient == "detached"
    assert IF_GRADIENTS == ("bptt", "detached") and TGIM_PARAMS == ("sigmoid", "direct")
    assert IFNeuron(3).gradient == "bptt" and IFNeuron(3).threshold == 1.0 and IFNeuron(3).v_init == 0.0
    with pytest.raises(ValueError, match="tgim_param"):
        create_neuron("mht", L=2, T=2, tgim_param="sigmoid")
    with pytest.raises(ValueError, match="neuron"):
        create_neuron("izhikevich", T=2)
    with pytest.raises(ValueError, match="L"):
        create_neuron("if", L=2, T=2)
