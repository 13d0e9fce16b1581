"""Model zoo: registration and metadata, shapes, the authors' layouts, and the conventions the ANN→SNN
conversion relies on.

Every registered architecture is checked for: creation through timm and through
``lmht.models.create_model``; output shape; its registered depth against its own weight layers; one
``nn.ReLU`` instance per activation site, each called exactly once per forward; a conv+BN stem first,
followed by the first neuron (or an ``EncodingPoint``); gradients reaching every parameter. Then the
layout details taken from the authors' models/*.py and ann_models/*.py, and every (architecture,
dataset) pair of the paper as an SNN trained one step on synthetic data of the dataset's shape.
"""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import lmht.models as zoo
from lmht import data
from lmht.convert import build_snn
from lmht.layers import EncodingPoint
from lmht.metrics import SynapticOpsCounter
from lmht.network import SpikingNetwork

NAMES = zoo.list_models()
EXPECTED = {
    "lmht_fmnist_cnn", "lmht_fmnist_cnn_d4", "lmht_fmnist_cnn_d6", "lmht_fmnist_cnn_d8", "lmht_cifarnet",
    "lmht_resnet18", "lmht_resnet19", "lmht_resnet20", "lmht_resnet34", "lmht_ms_resnet18",
    "lmht_ms_resnet34", "lmht_vgg11", "lmht_vgg13", "lmht_vgg16", "lmht_spikformer_4_384",
}  # fmt: skip
FMNIST = {n for n in EXPECTED if "fmnist" in n}
MAX_POOL = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)


def input_for(name: str, batch: int = 2) -> torch.Tensor:
    """A tiny batch: [B, 1, 28, 28] for Fashion-MNIST, [B, 3, 32, 32] otherwise."""
    torch.manual_seed(0)
    if name in FMNIST:
        return torch.randn(batch, 1, 28, 28)
    return torch.randn(batch, 3, 32, 32)


def in_chans_for(name: str) -> int:
    return 1 if name in FMNIST else 3


def main_path_weight_layers(model: nn.Module) -> int:
    """Conv and Linear layers outside residual shortcut projections (the convention behind 'ResNet-18')."""
    return sum(
        isinstance(m, nn.Conv2d | nn.Linear) and ".shortcut." not in f".{name}."
        for name, m in model.named_modules()
    )


def test_registry_has_every_contract_name():
    assert set(NAMES) == EXPECTED
    assert set(timm.list_models("lmht_*")) == EXPECTED


@pytest.mark.parametrize("name", NAMES)
def test_model_info_matches_the_built_model(name):
    info = zoo.model_info(name)
    assert info == zoo.model_info(name.removeprefix("lmht_")) and info.name == name
    assert info.paper_name and info.family
    model = zoo.create_model(name, num_classes=10, in_chans=in_chans_for(name))
    if info.family == "Transformer":
        assert info.depth == len(model.blocks)
    else:
        assert info.depth == main_path_weight_layers(model)


def test_model_info_of_the_papers_networks_and_the_depth_series():
    papers = {n: (zoo.model_info(n).paper_name, zoo.model_info(n).depth) for n in NAMES}
    assert papers["lmht_resnet19"] == ("ResNet-19", 19)
    assert papers["lmht_spikformer_4_384"] == ("Transformer-4-384", 4)
    assert papers["lmht_ms_resnet18"] == ("MS-ResNet-18", 18)
    assert papers["lmht_vgg13"] == ("VGG-13", 13)
    series = sorted(zoo.model_info(n).depth for n in ("fmnist_cnn_d4", "fmnist_cnn_d6", "fmnist_cnn_d8"))
    assert series == [4, 6, 8]
    assert {zoo.model_info(n).family for n in FMNIST} == {"FMNIST-CNN"}
    with pytest.raises(ValueError, match="resnet19"):
        zoo.model_info("resnet1000")


@pytest.mark.parametrize("name", NAMES)
def test_forward_shape_timm_and_project_factory(name):
    x = input_for(name)
    via_timm = timm.create_model(name, num_classes=7, in_chans=in_chans_for(name)).eval()
    short = name.removeprefix("lmht_")
    via_lmht = zoo.create_model(short, num_classes=7, in_chans=in_chans_for(name)).eval()
    assert type(via_timm) is type(via_lmht)
    with torch.no_grad():
        assert via_timm(x).shape == (2, 7)
        assert via_lmht(x).shape == (2, 7)
    assert via_lmht.pretrained_cfg["architecture"] == name


@pytest.mark.parametrize("name", NAMES)
def test_relu_sites_stem_and_gradients(name):
    model = zoo.create_model(name, num_classes=5, in_chans=in_chans_for(name)).train()
    all_modules = [m for _, m in model.named_modules(remove_duplicate=False)]
    has_max = bool([m for m in all_modules if isinstance(m, MAX_POOL)])
    assert has_max == (name == "lmht_spikformer_4_384"), "max pooling only where the authors' default has it"
    relus = [m for m in all_modules if isinstance(m, nn.ReLU)]
    assert len(relus) == len({id(m) for m in relus}), "an nn.ReLU instance is used at two places"
    assert relus, "no activation sites"

    calls: dict[int, int] = {}
    order: list[nn.Module] = []

    def hook(module, inputs, output):
        calls[id(module)] = calls.get(id(module), 0) + 1

    def record(module, inputs, output):
        order.append(module)

    handles = [m.register_forward_hook(hook) for m in relus]
    handles += [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    out = model(input_for(name))
    for h in handles:
        h.remove()
    assert all(calls.get(id(m)) == 1 for m in relus), "every ReLU must run exactly once per forward"
    first_neuron = EncodingPoint if name.startswith("lmht_ms_resnet") else nn.ReLU
    assert [type(m) for m in order[:3]] == [nn.Conv2d, nn.BatchNorm2d, first_neuron], "stem: conv+BN, neuron"
    authors_bias = name.startswith(("lmht_vgg", "lmht_cifarnet"))
    assert (order[0].bias is not None) == authors_bias

    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def test_pooling_options_remove_every_max_pool():
    sf = zoo.create_model("spikformer_4_384", pool="avg")
    r34 = zoo.create_model("resnet34", stem="imagenet", stem_pool="avg")
    vgg = zoo.create_model("vgg16", pool="max")
    assert not [m for m in sf.modules() if isinstance(m, MAX_POOL)]
    assert not [m for m in r34.modules() if isinstance(m, MAX_POOL)]
    assert sum(isinstance(m, nn.MaxPool2d) for m in vgg.modules()) == 5


def test_timm_defaults_come_from_the_pretrained_cfg():
    fm = timm.create_model("lmht_fmnist_cnn_d8")
    assert (fm.in_chans, fm.num_classes) == (1, 10)
    assert fm.pretrained_cfg["input_size"] == (1, 28, 28)
    r34 = timm.create_model("lmht_resnet34")  # CIFAR stem by default: CIFAR metadata
    assert r34.num_classes == 10
    assert timm.data.resolve_data_config({}, model=r34)["std"] == (0.2023, 0.1994, 0.2010)


def test_create_model_errors():
    with pytest.raises(ValueError, match="resnet19"):
        zoo.create_model("resnet1000")
    with pytest.raises(ValueError, match="pretrained"):
        zoo.create_model("resnet20", pretrained=True)
    with pytest.raises(ValueError, match="pretrained"):
        timm.create_model("lmht_resnet20", pretrained=True)
    with pytest.raises(ValueError, match="num_classes"):
        zoo.create_model("resnet20", num_classes=0)
    with pytest.raises(ValueError, match="stem"):
        zoo.create_model("resnet20", stem="bogus")
    with pytest.raises(ValueError, match="'avg' or 'max'"):
        zoo.create_model("resnet34", stem="imagenet", stem_pool="min")
    with pytest.raises(ValueError, match="final_pool"):
        zoo.create_model("vgg13", final_pool="max")
    with pytest.raises(ValueError, match="strides"):
        zoo.create_model("resnet19", strides=(1, 2))


def test_resnet_layouts_of_the_authors():
    """models/ResNet.py: ResNet-19 stem 64 ch then 128/256/512 × [3, 3, 2], FC 512→256→classes; the
    DVS variant strides 2, 2, 2; ResNet-18/34 CIFAR stem by default, ImageNet stem with max pool."""
    r19 = zoo.create_model("resnet19", num_classes=100)
    assert r19.stem[0].out_channels == 64 and r19.stem[0].kernel_size == (3, 3)
    assert [len(s) for s in r19.stages] == [3, 3, 2]
    assert [s[0].conv1[0].out_channels for s in r19.stages] == [128, 256, 512]
    assert [s[0].conv1[0].stride for s in r19.stages] == [(1, 1), (2, 2), (2, 2)]
    assert not isinstance(r19.stages[0][0].shortcut, nn.Identity)  # 64 -> 128 projection
    assert [type(m) for m in r19.pre_logits] == [nn.Linear, nn.ReLU]
    assert (r19.pre_logits[0].in_features, r19.pre_logits[0].out_features) == (512, 256)
    dvs19 = zoo.create_model("resnet19", in_chans=2, strides=(2, 2, 2))
    assert dvs19(torch.randn(1, 2, 48, 48)).shape == (1, 10)
    assert [s[0].conv1[0].stride for s in dvs19.stages] == [(2, 2)] * 3
    for name in ("resnet18", "resnet34"):
        cifar = zoo.create_model(name)
        assert [type(m) for m in cifar.stem] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
        assert cifar.stem[0].kernel_size == (3, 3) and cifar.stem[0].stride == (1, 1)
        net = zoo.create_model(name, num_classes=1000, stem="imagenet")
        conv, pool = net.stem[0], net.stem[3]
        assert conv.kernel_size == (7, 7) and conv.stride == (2, 2) and conv.out_channels == 64
        assert isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding) == (3, 2, 1)
    r20 = zoo.create_model("resnet20")
    assert [s[0].conv1[0].out_channels for s in r20.stages] == [16, 32, 64]
    assert sum(p.numel() for p in r20.parameters()) == pytest.approx(0.27e6, rel=0.02)


def test_resnet_initializations():
    """models/ResNet.py: Kaiming convs, Linear at PyTorch's default (bias not zeroed); ann_models'
    ResNet-20: PyTorch's defaults everywhere."""
    torch.manual_seed(0)
    r18 = zoo.create_model("resnet18")
    assert r18.head.bias.abs().sum() > 0
    w = r18.stages[0][0].conv1[0].weight
    assert w.std().item() == pytest.approx((2 / (64 * 9)) ** 0.5, rel=0.1)  # kaiming fan_out
    torch.manual_seed(0)
    r20 = zoo.create_model("resnet20")
    w = r20.stages[0][0].conv1[0].weight  # kaiming_uniform(a=√5): std = 1/√(3·fan_in)
    assert w.std().item() == pytest.approx((1 / (3 * 16 * 9)) ** 0.5, rel=0.1)


def test_ms_resnet_layouts():
    """The authors' MS-ResNet: no neuron after the stem or the last block, every block pre-activated;
    our conversion-exact variant (stem_neuron=True) keeps the earlier layout."""
    ms = zoo.create_model("ms_resnet18")
    assert [type(m) for m in ms.stem] == [nn.Conv2d, nn.BatchNorm2d, EncodingPoint]
    assert all(isinstance(b.relu1, nn.ReLU) for s in ms.stages for b in s)
    assert isinstance(ms.final_act, nn.Identity)
    variant = zoo.create_model("ms_resnet18", stem_neuron=True)
    assert [type(m) for m in variant.stem] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]
    assert isinstance(variant.stages[0][0].relu1, nn.Identity)
    assert isinstance(variant.stages[0][1].relu1, nn.ReLU)
    assert isinstance(variant.final_act, nn.ReLU)
    ms34 = zoo.create_model("ms_resnet34", stem="imagenet")
    assert [type(m) for m in ms34.stem] == [nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, EncodingPoint]


def test_ms_resnet_snn_repeats_the_analog_stem_output_for_the_residual_stream():
    """Direct encoding with the authors' MS-ResNet: the stem runs once on [B, ...]; the EncodingPoint
    repeats its analog output over T, and the first block's identity shortcut adds exactly that."""
    torch.manual_seed(0)
    ann = zoo.create_model("ms_resnet18", widths=(8, 8, 16, 16)).eval()
    snn = build_snn(ann, "lmht", L=2, T=3, input_shape=(3, 32, 32)).eval()
    seen = {}

    def keep(key, value):
        seen.setdefault(key, value)  # first forward only; the hook returns None (output unchanged)

    block = snn.model.stages[0][0]
    snn.model.stem[0].register_forward_hook(lambda m, i, o: keep("stem", o.shape))
    snn.model.stem[1].register_forward_hook(lambda m, i, o: keep("analog", o.detach()))
    block.register_forward_hook(lambda m, i, o: keep("block", (i[0].detach(), o.detach())))
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = snn(x)
        branch = block.conv2(block.relu2(block.conv1(block.relu1(seen["block"][0]))))
    assert out.shape == (3, 2, 10)
    assert seen["stem"][0] == 2  # the stem ran once on the batch
    block_in, block_out = seen["block"]
    assert torch.equal(block_in, seen["analog"].repeat(3, 1, 1, 1))
    torch.testing.assert_close(block_out, block_in + branch)


def test_vgg_layouts_and_heads_per_dataset():
    """models/VGG.py and ann_models/VGG.py: average pooling, conv bias, VGG-13's 10 convs ending in a
    global pool, and the classifier per dataset (the module docstring's table)."""
    vgg13 = zoo.create_model("vgg13", num_classes=200, hidden=0)
    convs = [m.out_channels for m in vgg13.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [64, 64, 128, 128, 256, 256, 512, 512, 512, 512]
    assert isinstance(vgg13.features[-1], nn.AdaptiveAvgPool2d)
    assert (vgg13.head.in_features, vgg13.head.out_features) == (512, 200)
    with torch.no_grad():
        assert vgg13.eval()(torch.randn(2, 3, 64, 64)).shape == (2, 200)
    vgg16 = zoo.create_model("vgg16", num_classes=200, head_pool=2)  # the hybrid VGG-16 on ImageNet-200
    assert vgg16.pre_logits[0].in_features == 2 * 2 * 512
    with torch.no_grad():
        assert vgg16.eval()(torch.randn(1, 3, 64, 64)).shape == (1, 200)
    cifar16 = zoo.create_model("vgg16", num_classes=100)
    assert [type(m) for m in cifar16.pre_logits] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU]
    assert (cifar16.pre_logits[0].in_features, cifar16.head.in_features) == (512, 4096)
    assert sum(isinstance(m, nn.AvgPool2d) for m in cifar16.modules()) == 5
    assert all(m.bias is not None for m in cifar16.modules() if isinstance(m, nn.Conv2d))
    dropped = zoo.create_model("vgg11", drop_rate=0.1)
    n_relu = sum(isinstance(m, nn.ReLU) for m in dropped.modules())
    assert sum(isinstance(m, nn.Dropout) for m in dropped.modules()) == n_relu  # one after every ReLU


def test_spikformer_and_cifarnet_details():
    sf = zoo.create_model("spikformer_4_384")
    assert len(sf.blocks) == 4 and sf.num_features == 384
    assert sf.blocks[0].attn.num_heads == 12 and sf.blocks[0].attn.scale == 0.125
    pools = [m for m in sf.patch_embed.modules() if isinstance(m, nn.MaxPool2d)]
    assert [(p.kernel_size, p.stride, p.padding) for p in pools] == [(3, 2, 1)] * 2
    assert sf.blocks[0].attn.q.linear.bias is not None
    assert sf.head.weight.std().item() == pytest.approx(0.02, rel=0.2)  # trunc_normal(std=.02)
    net = zoo.create_model("cifarnet")
    convs = [m.out_channels for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs == [128, 256, 512, 1024, 512]
    assert [m.out_features for m in net.modules() if isinstance(m, nn.Linear)] == [1024, 512, 10]


def test_fmnist_depth_series_costs():
    """The depth series grows in MACs and keeps the interface (ANN MACs from the SOP counter)."""
    macs = []
    for name in ("fmnist_cnn_d4", "fmnist_cnn_d6", "fmnist_cnn_d8"):
        model = zoo.create_model(name, in_chans=1).eval()
        with SynapticOpsCounter(model) as counter, torch.no_grad():
            model(torch.randn(1, 1, 28, 28))
        macs.append(counter.report().ann_macs)
    assert macs[0] == pytest.approx(1.22e6, rel=0.02)
    assert macs[0] < macs[1] < macs[2]
    reference = zoo.create_model("fmnist_cnn", in_chans=1)
    assert str(reference) == str(zoo.create_model("fmnist_cnn_d4", in_chans=1))


def test_reset_classifier():
    model = zoo.create_model("resnet19", num_classes=10)
    model.reset_classifier(3)
    assert model.get_classifier().out_features == 3
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 3)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("fmnist_cnn", {"in_chans": 1}),
        ("fmnist_cnn_d6", {"in_chans": 1}),
        ("resnet20", {}),
        ("resnet34", {"widths": (8, 8, 16, 16), "stem_width": 8, "stem": "imagenet", "stem_pool": "avg"}),
        ("ms_resnet18", {"widths": (8, 16, 16, 32), "stem_neuron": True}),
        ("vgg11", {"hidden": 64}),
    ],
)
def test_exact_hybrid_conversion_through_the_architecture(name, kwargs):
    """With Q = T·L, our exact initialization (init="exact") gives time-mean logits = L × the QCFS ANN's:
    the architecture's residual sums and average pools keep the conversion exact (spec: hybrid).
    Float64 avoids float32 rounding flipping a level exactly at a quantization boundary."""
    from lmht.convert import qcfs_to_lmht, relu_to_qcfs

    torch.manual_seed(0)
    ann = zoo.create_model(name, num_classes=10, **kwargs)
    for m in ann.modules():  # non-trivial BN constants: the exact init must scale them too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    relu_to_qcfs(ann, 4, threshold=0.5)
    ann = ann.double()
    shape = (1, 28, 28) if name.startswith("fmnist_cnn") else (3, 32, 32)
    x = torch.randn(4, *shape, dtype=torch.float64)
    with torch.no_grad():
        ref = ann.eval()(x)
        snn = qcfs_to_lmht(ann, 2, 2, shape, init="exact").eval()
        out = snn(x).mean(0) / 2
    assert ref.abs().max() > 1e-3
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)


# (architecture, dataset, model options) of every network the paper trains: Tables 1–4 and S1.
PAPER_PAIRS = [
    ("resnet18", "cifar10", {}),
    ("resnet19", "cifar100", {}),
    ("resnet18", "cifar10_dvs", {}),
    ("vgg13", "imagenet200", {"hidden": 0}),
    pytest.param("resnet34", "imagenet", {"stem": "imagenet"}, marks=pytest.mark.slow),  # 224², ~25 s
    ("ms_resnet18", "cifar100", {}),
    ("spikformer_4_384", "cifar10", {}),
    ("vgg16", "cifar100", {}),
    ("resnet20", "cifar100", {}),
]


@pytest.mark.parametrize(("arch", "dataset", "options"), PAPER_PAIRS)
def test_paper_pairs_train_one_step_on_synthetic_data_of_the_datasets_shape(arch, dataset, options):
    """LM-HT L = 2, T = 4 (frames: F = 10 averaged, the default frame input) on two synthetic samples."""
    ds = data.create_dataset("synthetic", like=dataset, length=2)
    info = ds.info
    x = torch.stack([ds[i][0] for i in range(2)])
    y = torch.tensor([ds[i][1] for i in range(2)])
    assert tuple(x.shape[1:]) == info.input_size == data.dataset_info(dataset).input_size
    torch.manual_seed(0)
    ann = zoo.create_model(arch, num_classes=info.num_classes, in_chans=info.in_chans, **options)
    snn = build_snn(ann, "lmht", L=2, T=4, input_shape=info.input_size, encoding=info.encoding)
    assert isinstance(snn, SpikingNetwork) and snn.frame_input == "mean"
    opt = torch.optim.SGD(snn.parameters(), lr=0.01)
    out = snn.train()(x)
    assert out.shape == (4, 2, info.num_classes)
    loss = nn.functional.cross_entropy(out.mean(0), y)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
