"""Metrics: accuracy vs time, firing rates, and the SOP/energy counter on hand-computed examples."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lmht import metrics as M


class FixedSpikes(nn.Module):
    """A stand-in spiking layer: ignores its input and emits a fixed level pattern ``[T, C, ...]`` × θ
    for every image, time-folded as ``[T·B, C, ...]`` (the layout inside a SpikingNetwork)."""

    def __init__(self, levels: torch.Tensor, threshold: float):
        super().__init__()
        self.levels, self.threshold, self.L, self.T = levels, threshold, int(levels.max()), levels.shape[0]

    batch = 1  # images per forward; set by the parent network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = self.batch
        out = (self.levels * self.threshold).unsqueeze(1).expand(self.T, batch, *self.levels.shape[1:])
        return out.flatten(0, 1).clone()


class TwoLayer(nn.Module):
    """stem conv (analog) -> spikes A (θ=0.5) -> conv 2x2 -> spikes B (θ=1) -> flatten -> linear."""

    def __init__(self):
        super().__init__()
        a = torch.zeros(2, 2, 3, 3)
        a[0, 0, 1, 1] = 2  # step 1, channel 0, centre: level 2 (fan-out 4 positions x 4 channels)
        a[0, 1, 0, 0] = 1  # step 1, channel 1, corner: level 1 (fan-out 1 x 4)
        a[1, 1, 2, 2] = 3  # step 2, channel 1, corner: level 3 (fan-out 1 x 4)
        b = torch.zeros(2, 4, 2, 2)
        b[0, 0] = 1  # step 1: 4 spikes of level 1
        b[1, 2, 1, 0] = 2  # step 2: one spike of level 2
        self.stem = nn.Conv2d(1, 2, 3, padding=1)
        self.spike_a = FixedSpikes(a, 0.5)
        self.conv = nn.Conv2d(2, 4, 2)
        self.spike_b = FixedSpikes(b, 1.0)
        self.head = nn.Linear(16, 5)

    def spiking_layers(self):
        return [self.spike_a, self.spike_b]

    def forward(self, x):
        batch = x.shape[0]
        self.spike_a.batch = self.spike_b.batch = batch
        s = self.spike_a(self.stem(x))  # stem runs once on [B, ...]; spikes are [T*B, ...]
        s = self.spike_b(self.conv(s))
        return self.head(s.flatten(1)).unflatten(0, (2, batch))


@pytest.mark.parametrize("batch", [1, 3])
def test_sop_counter_hand_example(batch):
    net = TwoLayer()
    with M.SynapticOpsCounter(net) as counter:
        net(torch.randn(batch, 1, 3, 3))
    rep = counter.report()
    # stem: 2x3x3 outputs x (1 x 3 x 3) weights = 162 MACs per image
    assert rep.first_layer_macs == pytest.approx(162)
    # conv: centre level 2 x 4 positions x 4 ch = 32; corner 1 x 1 x 4 = 4; corner 3 x 1 x 4 = 12 -> 48
    # head: levels 4 + 2 = 6, x 5 outputs = 30
    assert rep.per_layer["conv"]["sops"] == pytest.approx(48)
    assert rep.per_layer["head"]["sops"] == pytest.approx(30)
    assert rep.sops == pytest.approx(78)
    # the authors' value count: layer A's spikes are worth k x 0.5 -> conv 24; layer B has θ = 1 -> 30
    assert rep.per_layer["conv"]["sops_value"] == pytest.approx(24)
    assert rep.sops_value == pytest.approx(54)
    # ANN MACs, once per image: stem 162, conv 4 outputs x 4 ch x (2 x 2 x 2) = 128, head 5 x 16 = 80
    assert rep.ann_macs == pytest.approx(162 + 128 + 80)
    assert rep.images == batch
    assert rep.energy_mj == pytest.approx(0.9 * 78 * 1e-9)
    assert rep.energy_first_layer_mac_mj == pytest.approx((0.9 * 78 + 4.6 * 162) * 1e-9)
    assert rep.ann_energy_mj == pytest.approx(4.6 * 370 * 1e-9)
    assert rep.as_ratio == pytest.approx(4.6 * 370 / (0.9 * 78))
    d = rep.as_dict()
    assert set(d) == {
        "sops", "sops_value", "first_layer_macs", "energy_mj", "energy_first_layer_mac_mj", "ann_macs",
        "ann_energy_mj", "as_ratio", "images", "per_layer",
    }  # fmt: skip
    assert d["energy_mj"] == rep.energy_mj and d["as_ratio"] == rep.as_ratio


def test_firing_rates_are_level_weighted():
    net = TwoLayer()
    with M.FiringRateMonitor(net, [("a", net.spike_a), ("b", net.spike_b)]) as mon:
        net(torch.randn(2, 1, 3, 3))
    rates = mon.rates()
    assert rates["a"] == pytest.approx(6 / 36)  # levels 2 + 1 + 3 over 2 steps x 2 x 3 x 3 neurons
    assert rates["b"] == pytest.approx(6 / 32)


class SpikesIntoConv(nn.Module):
    """Fixed spike levels (``FixedSpikes``) read by one conv layer: the SOP counter's smallest case."""

    def __init__(self, spk: nn.Module, conv: nn.Conv2d):
        super().__init__()
        self.spk, self.conv = spk, conv

    def spiking_layers(self):
        return [self.spk]

    def forward(self, x):
        self.spk.batch = x.shape[0]
        return self.conv(self.spk(x))


def test_conv_count_matches_brute_force_with_stride_padding_groups():
    torch.manual_seed(0)
    theta = 0.25
    levels = torch.randint(0, 3, (1, 4, 5, 5)).float()  # T = 1

    net = SpikesIntoConv(FixedSpikes(levels, theta), nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2))
    with M.SynapticOpsCounter(net) as counter:
        net(torch.zeros(1, 1))
    # brute force: one accumulate per (input level, weight that reads it, output position)
    conv = net.conv
    brute = 0.0
    w = torch.zeros_like(conv.weight)
    for k in range(w.numel()):
        w.zero_()
        w.view(-1)[k] = 1.0
        brute += float(nn.functional.conv2d(levels, w, stride=2, padding=1, groups=2).sum())
    assert counter.report().sops == pytest.approx(brute)
    assert counter.report().sops_value == pytest.approx(brute * theta)
    assert brute > 0


def test_residual_input_uses_theta_of_its_producer():
    """A shortcut conv reading an older spike tensor must use that tensor's θ, not the latest layer's."""
    lv = torch.ones(1, 2, 2, 2)

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.s1 = FixedSpikes(lv, 0.5)
            self.s2 = FixedSpikes(lv, 4.0)
            self.short = nn.Conv2d(2, 3, 1, bias=False)
            self.stem = nn.Conv2d(1, 2, 1)

        def spiking_layers(self):
            return [self.s1, self.s2]

        def forward(self, x):
            self.s1.batch = self.s2.batch = x.shape[0]
            a = self.s1(self.stem(x))
            self.s2(a)  # a later neuron with another θ runs first
            return self.short(a)  # ... the shortcut still reads s1's spikes

    net = Res()
    with M.SynapticOpsCounter(net) as counter:
        net(torch.randn(1, 1, 2, 2))
    assert counter.report().per_layer["short"]["sops"] == pytest.approx(8 * 3)  # 8 level-1 spikes x 3


def test_ann_counts_only_macs():
    net = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    with M.SynapticOpsCounter(net) as counter:
        net(torch.randn(2, 1, 4, 4))
    rep = counter.report()
    assert rep.sops == 0 and rep.sops_value == 0 and rep.as_ratio is None
    assert rep.first_layer_macs == pytest.approx(2 * 16 * 9 + 3 * 32)
    assert rep.ann_macs == rep.first_layer_macs


def test_level2_spike_with_half_threshold_and_avg_pool_after_the_neuron():
    """One level-2 spike at θ = 0.5 (value 1.0), then a 2×2 average pool, then a 1×1 conv (3 channels)
    and a linear layer: hand counts of the level and value SOPs."""
    levels = torch.zeros(1, 1, 2, 2)
    levels[0, 0, 0, 0] = 2  # T = 1, one neuron of level 2

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Conv2d(1, 1, 1)
            self.spk = FixedSpikes(levels, 0.5)
            self.pool = nn.AvgPool2d(2)
            self.conv = nn.Conv2d(1, 3, 1)
            self.fc = nn.Linear(3, 2)

        def spiking_layers(self):
            return [self.spk]

        def forward(self, x):
            self.spk.batch = x.shape[0]
            s = self.pool(self.spk(self.stem(x)))  # [1, 1, 1, 1] holding 2 x 0.5 / 4 = 0.25
            return self.fc(self.conv(s).flatten(1))

    net = Net()
    with M.SynapticOpsCounter(net) as counter:
        net(torch.zeros(1, 1, 2, 2))
    rep = counter.report()
    # the pooled input is 0.25 = level 0.5: conv 0.5 x 3 outputs = 1.5 level-SOPs, 0.25 x 3 = 0.75 value-SOPs
    assert rep.per_layer["conv"]["sops"] == pytest.approx(1.5)
    assert rep.per_layer["conv"]["sops_value"] == pytest.approx(0.75)
    # the linear layer reads the conv's real-valued output: levels x / θ of the latest spiking layer
    with torch.no_grad():
        conv_out = net.conv(torch.full((1, 1, 1, 1), 0.25)).flatten()
    assert rep.per_layer["fc"]["sops"] == pytest.approx(float(conv_out.sum()) / 0.5 * 2)
    assert rep.first_layer_macs == pytest.approx(4)  # the stem: 4 outputs x 1 weight
    assert rep.ann_macs == pytest.approx(4 + 3 + 6)


def test_sops_equal_value_sops_at_unit_threshold():
    """θ = 1 (every setting of the paper's Tables 1–2): the two counts agree."""
    levels = torch.tensor([[[[0.0, 2.0], [1.0, 0.0]]], [[[2.0, 2.0], [0.0, 1.0]]]])  # T = 2

    net = SpikesIntoConv(FixedSpikes(levels, 1.0), nn.Conv2d(1, 2, 2))
    with M.SynapticOpsCounter(net) as counter:
        net(torch.zeros(3, 1))
    rep = counter.report()
    assert rep.sops == pytest.approx(rep.sops_value) and rep.sops == pytest.approx(8 * 2)


def test_table1_energy_arithmetic():
    """Table 1 of the paper: 1.60 G SOPs -> 1.44 mJ, 0.73 G -> 0.66 mJ, … (E = 0.9 pJ × SOPs)."""
    for sops, mj in ((1.60e9, 1.44), (1.08e9, 0.97), (0.73e9, 0.66), (3.20e9, 2.88), (1.72e9, 1.55)):
        assert round(M.sop_energy_mj(sops), 2) == mj
    assert M.ann_energy_mj(1e9) == pytest.approx(4.6)
    assert M.energy_first_layer_mac_mj(1e9, 1e9) == pytest.approx(5.5)


def test_report_from_reduced_totals():
    """``report(totals, images)`` turns sums gathered from several processes into per-image figures."""
    net = TwoLayer()
    with M.SynapticOpsCounter(net) as counter:
        net(torch.randn(2, 1, 3, 3))
    doubled = {k: 2 * v for k, v in counter.totals.items()}
    rep = counter.report(doubled, 2 * counter.images)
    assert rep.sops == pytest.approx(counter.report().sops) and rep.images == 4


def test_accuracy_per_step_uses_cumulative_mean():
    target = torch.tensor([0, 1, 1])
    logits = torch.tensor(
        [
            [[2.0, 0.0], [3.0, 0.0], [0.0, 1.0]],  # step 1: right, wrong, right
            [[0.0, 1.0], [0.0, 4.0], [1.0, 0.0]],  # cumulative: [2,1] ok, [3,4] ok, [1,1] tie -> 0
        ]
    )
    assert M.correct_per_step(logits, target).tolist() == [2, 2]
    acc = M.accuracy_per_step(logits, target)
    assert acc.tolist() == pytest.approx([200 / 3, 200 / 3])
    assert M.correct_per_step(logits[0], target).tolist() == [2]  # [B, C] = one step


def test_accuracy_per_step_rejects_bad_shapes():
    with pytest.raises(ValueError, match="T, B, C"):
        M.correct_per_step(torch.zeros(2, 4, 3), torch.zeros(5, dtype=torch.long))
