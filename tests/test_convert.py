"""Network-level conversions: hybrid initialization (Algorithm 1 and our exact variant, Thm 4.4),
classic QCFS -> IF conversion, reparameterization (Sec. 4.4)."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lmht.convert import (
    HYBRID_INITS,
    build_snn,
    qcfs_to_if,
    qcfs_to_lmht,
    relu_to_qcfs,
    reparameterize,
    replace_activations,
)
from lmht.functional import qcfs
from lmht.layers import SeqToBatch, SpikingActivation
from lmht.network import SpikingNetwork
from lmht.neurons import QCFS, IFNeuron, LMHTNeuron

INPUT = (3, 8, 8)


class Block(nn.Module):
    """Basic residual block: act(BN(conv(act(BN(conv x)))) + shortcut(x))."""

    def __init__(self, cin, cout, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.act2 = nn.ReLU()

    def forward(self, x):
        return self.act2(self.bn2(self.conv2(self.act1(self.bn1(self.conv1(x))))) + self.shortcut(x))


class TinyResNet(nn.Module):
    def __init__(self, classes=10, pool=nn.AvgPool2d):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 1, 1, bias=True), nn.BatchNorm2d(8))
        self.act = nn.ReLU()
        self.block1 = Block(8, 8)
        self.block2 = Block(8, 16, stride=2)
        self.pool = pool(2)
        self.fc1 = nn.Linear(16 * 2 * 2, 32)
        self.act_fc = nn.ReLU()
        self.fc2 = nn.Linear(32, classes)

    def forward(self, x):
        x = self.pool(self.block2(self.block1(self.act(self.stem(x)))))
        return self.fc2(self.act_fc(self.fc1(x.flatten(1))))


def _randomize(model: nn.Module, seed: int, nonneg: bool = False) -> nn.Module:
    """Random weights and BN statistics (eval mode), optionally non-negative everywhere."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                w = torch.randn(m.weight.shape, generator=g) / m.weight[0].numel() ** 0.5 * 1.5
                m.weight.copy_(w.abs() if nonneg else w)
                if m.bias is not None:
                    b = torch.randn(m.bias.shape, generator=g) * 0.2
                    m.bias.copy_(b.abs() if nonneg else b)
            if isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=g) * 0.3 if nonneg else
                             torch.randn(m.bias.shape, generator=g) * 0.3)
                m.running_mean.copy_(torch.zeros_like(m.running_mean) if nonneg else
                                     torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            if isinstance(m, QCFS):
                m.threshold.fill_(float(torch.rand(1, generator=g)) * 2 + 0.5)
    return model.eval()


def _qcfs_ann(levels, seed):
    return _randomize(relu_to_qcfs(TinyResNet(), levels), seed).double()


# ------------------------------------------------------------------------------------------------
# Hybrid initialization: the paper's Algorithm 1 (default)
# ------------------------------------------------------------------------------------------------
def _affine_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Parameters and buffers of every conv / linear / BN layer (what Algorithm 1 must leave alone)."""
    return {f"{name}.{key}": value for name, m in model.named_modules()
            if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))
            for key, value in m.state_dict().items()}


@pytest.mark.parametrize("L,T", [(2, 2), (4, 2), (2, 4), (1, 4)])
def test_algorithm1_scales_only_the_first_neuron_layer(L, T):
    """Algorithm 1: θ = ϑ, v_init = 0.5, uniform T-GIM (sigmoid form, ω = 0), λ = 1, first input × L;
    every bias and BN statistic untouched; the first layer's mean output / L is QCFS_{T·L} of its input."""
    assert HYBRID_INITS == ("algorithm1", "exact")
    ann = _qcfs_ann(T * L, seed=L * 10 + T)
    snn = qcfs_to_lmht(ann, L, T, INPUT).double().eval()
    before, after = _affine_state(ann), _affine_state(snn.model)
    assert before.keys() == after.keys() and len(before) > 10
    assert all(torch.equal(before[k], after[k]) for k in before), "Algorithm 1 changed a later layer"
    layers = snn.spiking_layers()
    assert layers[0].input_scale == L and all(layer.input_scale == 1.0 for layer in layers[1:])
    thresholds = [float(m.threshold.detach()) for m in ann.modules() if isinstance(m, QCFS)]
    for layer, theta in zip(layers, thresholds, strict=True):
        neuron = layer.neuron
        assert neuron.threshold == theta and neuron.v_init == 0.5 and neuron.L == L
        assert neuron.tgim_param == "sigmoid"
        assert torch.equal(neuron.tgim_raw, torch.zeros(T, T, dtype=torch.float64))
        assert neuron.learn_leak and neuron.leak.item() == 1.0
    seen = {}
    layers[0].register_forward_hook(lambda m, args, out: seen.update(x=args[0], out=out))
    x = torch.rand(16, *INPUT, dtype=torch.float64) * 2 - 0.5
    with torch.no_grad():
        snn(x)
    first_out = seen["out"].unflatten(0, (T, -1)).mean(0) / L
    expected = qcfs(seen["x"], T * L, layers[0].neuron.threshold)  # Theorem 4.4 at the first layer
    torch.testing.assert_close(first_out, expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# Hybrid initialization, our exact variant (Theorem 4.4 made network-wide)
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("L,T", [(2, 2), (4, 2), (2, 4), (1, 4), (3, 1)])
def test_hybrid_init_is_exact(L, T):
    ann = _qcfs_ann(T * L, seed=L * 10 + T)
    x = torch.rand(16, *INPUT, dtype=torch.float64) * 2 - 0.5
    with torch.no_grad():
        ann_logits = ann(x)
        snn = qcfs_to_lmht(ann, L, T, INPUT, init="exact").double().eval()
        out = snn(x)
    assert out.shape == (T, 16, 10)
    torch.testing.assert_close(out.mean(0) / L, ann_logits, rtol=0, atol=1e-4)
    assert torch.equal(out.mean(0).argmax(1), ann_logits.argmax(1))
    first = snn.spiking_layers()[0]
    assert first.input_scale == L and all(s.input_scale == 1 for s in snn.spiking_layers()[1:])
    for layer in snn.spiking_layers():
        neuron = layer.neuron
        assert isinstance(neuron, LMHTNeuron) and neuron.v_init == 0.5
        assert torch.equal(neuron.tgim, torch.full((T, T), 1.0 / T, dtype=torch.float64))
        assert neuron.leak.item() == 1.0


def test_hybrid_init_is_not_exact_without_constant_scaling():
    ann = _qcfs_ann(4, seed=3)
    x = torch.rand(64, *INPUT, dtype=torch.float64)
    with torch.no_grad():
        exact = qcfs_to_lmht(ann, 2, 2, INPUT, init="exact").double()(x).mean(0) / 2
        reference = qcfs_to_lmht(ann, 2, 2, INPUT).double()(x).mean(0) / 2  # Algorithm 1
        target = ann(x)
    torch.testing.assert_close(exact, target, rtol=0, atol=1e-4)
    assert (reference - target).abs().max() > 1e-3


def test_hybrid_rejects_max_pooling():
    ann = _randomize(relu_to_qcfs(TinyResNet(pool=nn.MaxPool2d), 4), 0)
    with pytest.raises(ValueError, match="MaxPool2d"):
        qcfs_to_lmht(ann, 2, 2, INPUT, init="exact")
    qcfs_to_lmht(ann, 2, 2, INPUT)  # Algorithm 1 (the paper's) needs no homogeneity


def test_hybrid_init_argument_checks():
    ann = _qcfs_ann(4, seed=2)
    with pytest.raises(ValueError, match="init"):
        qcfs_to_lmht(ann, 2, 2, INPUT, init="paper")
    exact = qcfs_to_lmht(ann, 2, 2, INPUT, init="exact").model.fc2.bias
    assert torch.equal(exact, 2 * ann.fc2.bias)  # every later constant term × L
    assert torch.equal(qcfs_to_lmht(ann, 2, 2, INPUT).model.fc2.bias, ann.fc2.bias)  # Algorithm 1


@pytest.mark.parametrize("init", HYBRID_INITS)
def test_hybrid_and_reparam_scale_at_the_encoding_point_of_ms_resnet(init):
    """MS-ResNet: the stem's output feeds the first neuron and the first shortcut (``EncodingPoint``),
    so the × L of Algorithm 1 applies there; exact init and reparameterization stay exact."""
    from lmht.layers import EncodingPoint
    from lmht.models import create_model

    torch.manual_seed(0)
    ann = relu_to_qcfs(create_model("lmht_ms_resnet18", num_classes=10, in_chans=3), 4)
    with torch.no_grad():
        ann.train()(torch.randn(16, 3, 16, 16))  # non-trivial BN statistics
    ann = ann.double().eval()
    x = torch.randn(6, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        snn = qcfs_to_lmht(ann, 2, 2, (3, 16, 16), init=init).eval()
        out = snn(x)
        single = reparameterize(snn).eval()(x)
    point = next(m for m in snn.modules() if isinstance(m, EncodingPoint))
    assert point.input_scale == 2 and all(s.input_scale == 1 for s in snn.spiking_layers())
    torch.testing.assert_close(single.mean(0) * 2, out.mean(0), rtol=0, atol=1e-9)
    if init == "exact":
        torch.testing.assert_close(out.mean(0) / 2, ann(x), rtol=0, atol=1e-9)


@pytest.mark.parametrize("init", HYBRID_INITS)
def test_hybrid_leaves_the_ann_untouched(init):
    ann = _qcfs_ann(4, seed=1)
    before = {k: v.clone() for k, v in ann.state_dict().items()}
    qcfs_to_lmht(ann, 2, 2, INPUT, init=init)
    assert all(torch.equal(before[k], v) for k, v in ann.state_dict().items())


# ------------------------------------------------------------------------------------------------
# Classic conversion (QCFS -> IF)
# ------------------------------------------------------------------------------------------------
def test_qcfs_to_if_first_layer_exact_and_converges():
    ann = _qcfs_ann(8, seed=5)
    x = torch.rand(200, *INPUT, dtype=torch.float64)
    snn = qcfs_to_if(ann, T=8).double()
    neurons = [layer.neuron for layer in snn.spiking_layers()]
    assert all(isinstance(n, IFNeuron) and n.v_init == 0.5 and n.gradient == "bptt" for n in neurons)
    assert neurons[0].threshold == pytest.approx(float(ann.act.threshold.detach()))
    with torch.no_grad():
        target = ann(x).argmax(1)
        agree = []
        for steps in (4, 64):
            snn.T = steps
            agree.append((snn(x).mean(0).argmax(1) == target).double().mean().item())
    assert agree[1] > 0.8 and agree[1] >= agree[0]


# ------------------------------------------------------------------------------------------------
# Reparameterization
# ------------------------------------------------------------------------------------------------
def _trained_like_lmht(L, T, seed, nonneg):
    torch.manual_seed(seed)
    # the tests below write Ω itself into tgim_raw: our direct parametrization
    snn = build_snn(_randomize(TinyResNet(), seed, nonneg=nonneg), "lmht", L, T, INPUT, tgim_init="random",
                    tgim_param="direct", leak_init=0.85, v_init=0.3, threshold=0.7).double().eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in snn.spiking_layers():  # "learned" T-GIM (non-negative) and leak != 1
            layer.neuron.tgim_raw.copy_(torch.rand(T, T, generator=g, dtype=torch.float64))
            layer.neuron.leak_raw.fill_(float(torch.randn(1, generator=g)))
    return snn


@pytest.mark.parametrize("L,T", [(2, 2), (4, 2), (2, 3)])
def test_reparameterization_exact_on_nonnegative_nets(L, T):
    snn = _trained_like_lmht(L, T, seed=L + T, nonneg=True)
    x = torch.rand(8, *INPUT, dtype=torch.float64)
    single = reparameterize(snn)
    assert single.T == T * L
    assert all(set(layer.neuron.tgim.shape) == {T * L} for layer in single.spiking_layers())
    with torch.no_grad():
        a, b = snn(x), single(x)
    assert b.shape == (T * L, 8, 10)
    torch.testing.assert_close(b.unflatten(0, (T, L)).sum(1), a, rtol=0, atol=1e-9)
    # spike trains: per-window counts of the single-threshold layers equal the LM-HT levels
    counts = _spike_outputs(single, x)
    levels = _spike_outputs(snn, x)
    for c, lv in zip(counts, levels, strict=True):
        torch.testing.assert_close(c.unflatten(0, (T, L)).sum(1), lv, rtol=0, atol=1e-9)


@pytest.mark.parametrize("L,T", [(2, 2), (4, 2)])
def test_reparameterization_keeps_the_synaptic_operations(L, T):
    """Table 2: the single-threshold network does the same SOPs (a level-k spike = k binary spikes)."""
    from lmht.metrics import SynapticOpsCounter

    snn = _trained_like_lmht(L, T, seed=3 * L + T, nonneg=True)
    single = reparameterize(snn)
    x = torch.rand(8, *INPUT, dtype=torch.float64)
    reports = []
    for net in (snn, single):
        with torch.no_grad(), SynapticOpsCounter(net) as counter:
            net(x)
        reports.append(counter.report())
    assert reports[0].sops > 0
    assert reports[1].sops == pytest.approx(reports[0].sops, rel=1e-12)
    assert reports[1].energy_mj == pytest.approx(reports[0].energy_mj, rel=1e-12)


def _spike_outputs(net, x):
    outs = []
    hooks = [layer.register_forward_hook(lambda m, a, o: outs.append(o.unflatten(0, (m.T, -1))))
             for layer in net.spiking_layers()]
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return outs


def test_reparameterization_agrees_on_random_nets():
    agree, total = 0, 0
    for seed in range(4):
        snn = _trained_like_lmht(2, 2, seed=seed, nonneg=False)
        with torch.no_grad():
            for layer in snn.spiking_layers():  # learned T-GIMs stay close to uniform, rows ~ sum 1
                layer.neuron.tgim_raw.copy_(torch.full((2, 2), 0.5) + 0.1 * torch.rand(2, 2))
        x = torch.rand(250, *INPUT, dtype=torch.float64)
        with torch.no_grad():
            p1 = snn(x).mean(0).argmax(1)
            p2 = reparameterize(snn)(x).mean(0).argmax(1)
        agree += (p1 == p2).sum().item()
        total += len(x)
    assert agree / total >= 0.99


def test_reparameterize_hybrid_network_roundtrip():
    # exact hybrid (constants × L) followed by reparameterization (÷ L) recovers the ANN's constants
    ann = _qcfs_ann(4, seed=9)
    snn = qcfs_to_lmht(ann, 2, 2, INPUT, init="exact").double()
    single = reparameterize(snn)
    assert torch.allclose(single.model.fc2.bias, ann.fc2.bias)
    assert single.spiking_layers()[0].input_scale == 1.0
    x = torch.rand(32, *INPUT, dtype=torch.float64)
    with torch.no_grad():
        assert (single(x).mean(0).argmax(1) == ann(x).argmax(1)).double().mean() >= 0.95


def test_reparameterize_rejects_non_lmht():
    snn = build_snn(TinyResNet(), "if", 1, 2, INPUT)
    with pytest.raises(ValueError, match="LMHTNeuron"):
        reparameterize(snn)


# ------------------------------------------------------------------------------------------------
# Plumbing
# ------------------------------------------------------------------------------------------------
def test_direct_encoding_runs_stem_once():
    snn = build_snn(TinyResNet(), "lmht", 2, 3, INPUT)
    seen = []
    snn.model.stem[0].register_forward_hook(lambda m, a, o: seen.append(a[0].shape[0]))
    snn(torch.rand(5, *INPUT))
    assert seen == [5]
    names = [n for n, m in snn.execution_order() if isinstance(m, SpikingActivation)]
    assert names[0] == "act" and len(names) == 6


class Flat(nn.Module):
    """ReLU then a linear layer over a [2, 4, 4] frame: the smallest network with event-frame input."""

    def __init__(self):
        super().__init__()
        self.act = nn.ReLU()
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def forward(self, x):
        return self.fc(self.act(x).flatten(1))


def test_frames_encoding_bins_frames():
    snn = build_snn(Flat(), "if", 1, 2, encoding="frames", frame_input="bins")
    out = snn(torch.rand(4, 10, 2, 4, 4))
    assert out.shape == (2, 4, 3)
    with pytest.raises(ValueError, match="frames"):
        snn(torch.rand(4, 9, 2, 4, 4))


def test_frames_encoding_mean_of_frames_by_default():
    """The authors' DVS input: the mean of all F frames, repeated over T (any F, any T)."""
    frames = torch.rand(4, 9, 2, 4, 4)
    ann = Flat()
    snn = build_snn(ann, "if", 1, 2, encoding="frames")
    reference = build_snn(ann, "if", 1, 2)  # direct encoding of the mean frame, same weights
    with torch.no_grad():
        torch.testing.assert_close(snn(frames), reference(frames.mean(1)))


def test_shared_activation_is_rejected():
    relu = nn.ReLU()
    model = nn.Sequential(nn.Linear(4, 4), relu, nn.Linear(4, 4), relu)
    with pytest.raises(ValueError, match="several sites"):
        build_snn(model, "lmht", 2, 2)
    with pytest.raises(ValueError, match="activation"):
        replace_activations(model, nn.ReLU, lambda m: QCFS(4))


def test_seq_to_batch():
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.rand(2, 5, 3, 6, 6)
    out = SeqToBatch(conv)(x)
    torch.testing.assert_close(out[1], conv(x[1]))


def test_if_network_accepts_new_T_but_lmht_does_not():
    snn = build_snn(TinyResNet(), "if", 1, 2, INPUT)
    snn.T = 7
    assert snn(torch.rand(2, *INPUT)).shape == (7, 2, 10)
    lm = build_snn(TinyResNet(), "lmht", 2, 2, INPUT)
    with pytest.raises(ValueError, match="T"):
        lm.T = 3
    assert isinstance(lm, SpikingNetwork)


def test_scaled_batchnorm_is_homogeneous_in_train_and_eval_mode():
    from lmht.convert import scale_constant_terms

    bn = _randomize(nn.Sequential(nn.BatchNorm2d(4)), 0)[0].double()
    scaled = copy.deepcopy(bn)
    scale_constant_terms([("bn", scaled)], 3.0)
    x = torch.randn(8, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(scaled.eval()(3 * x), 3 * bn.eval()(x))
    torch.testing.assert_close(scaled.train()(3 * x), 3 * bn.train()(x))
    torch.testing.assert_close(scaled.running_mean, 3 * bn.running_mean)  # stats updated consistently
