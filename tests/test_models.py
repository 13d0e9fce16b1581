"""Model zoo: registration, shapes, and the conventions the ANN→SNN conversion relies on.

Every registered architecture is checked for: creation through timm and through
``lmht.models.create_model``; output shape; no max pooling; one ``nn.ReLU`` instance per activation
site, each called exactly once per forward; a conv+BN+ReLU stem first; gradients reaching every
parameter.
"""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

import lmht.models as zoo

NAMES = zoo.list_models()
EXPECTED = {
    "lmht_fmnist_cnn", "lmht_cifarnet", "lmht_resnet18", "lmht_resnet19", "lmht_resnet20",
    "lmht_resnet34", "lmht_ms_resnet18", "lmht_ms_resnet34", "lmht_vgg11", "lmht_vgg13", "lmht_vgg16",
    "lmht_spikformer_4_384",
}  # fmt: skip


def input_for(name: str, batch: int = 2) -> torch.Tensor:
    """A tiny batch: [B, 1, 28, 28] for Fashion-MNIST, [B, 3, 32, 32] otherwise."""
    torch.manual_seed(0)
    if name == "lmht_fmnist_cnn":
        return torch.randn(batch, 1, 28, 28)
    return torch.randn(batch, 3, 32, 32)


def in_chans_for(name: str) -> int:
    return 1 if name == "lmht_fmnist_cnn" else 3


def test_registry_has_every_contract_name():
    assert set(NAMES) == EXPECTED
    assert set(timm.list_models("lmht_*")) == EXPECTED


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
def test_relu_sites_pooling_stem_and_gradients(name):
    model = zoo.create_model(name, num_classes=5, in_chans=in_chans_for(name)).train()
    all_modules = [m for _, m in model.named_modules(remove_duplicate=False)]
    assert not [m for m in all_modules if isinstance(m, nn.MaxPool1d | nn.MaxPool2d | nn.MaxPool3d)]
    assert not [m for m in all_modules if isinstance(m, nn.AdaptiveMaxPool2d)]
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
    assert [type(m) for m in order[:3]] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU], "stem must be conv+BN+ReLU"
    assert order[0].bias is None

    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def test_tiny_imagenet_and_dvs_input_sizes():
    """VGG-13 on 64×64 Tiny-ImageNet; ResNet-18 on 2-polarity 48×48 CIFAR10-DVS frames."""
    vgg = zoo.create_model("vgg13", num_classes=200).eval()
    resnet = zoo.create_model("resnet18", num_classes=10, in_chans=2).eval()
    with torch.no_grad():
        assert vgg(torch.randn(2, 3, 64, 64)).shape == (2, 200)
        assert resnet(torch.randn(2, 2, 48, 48)).shape == (2, 10)


def test_timm_defaults_come_from_the_pretrained_cfg():
    fm = timm.create_model("lmht_fmnist_cnn")
    assert (fm.in_chans, fm.num_classes) == (1, 10)
    assert fm.pretrained_cfg["input_size"] == (1, 28, 28)
    r34 = timm.create_model("lmht_resnet34")
    assert r34.num_classes == 1000
    assert timm.data.resolve_data_config({}, model=r34)["input_size"] == (3, 224, 224)


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


def test_architecture_details():
    r19 = zoo.create_model("resnet19", num_classes=100)
    assert [len(s) for s in r19.stages] == [3, 3, 2]
    assert r19.stem[0].out_channels == 128 and r19.stem[0].kernel_size == (3, 3)
    assert [type(m) for m in r19.pre_logits] == [nn.Linear, nn.ReLU]
    assert (r19.pre_logits[0].in_features, r19.pre_logits[0].out_features) == (512, 256)
    r20 = zoo.create_model("resnet20")
    assert [s[0].conv1[0].out_channels for s in r20.stages] == [16, 32, 64]
    r34 = zoo.create_model("resnet34")
    assert r34.stem[0].kernel_size == (7, 7) and r34.stem[0].stride == (2, 2)
    assert isinstance(r34.stem[3], nn.AvgPool2d)
    sf = zoo.create_model("spikformer_4_384")
    assert len(sf.blocks) == 4 and sf.num_features == 384
    assert sf.blocks[0].attn.num_heads == 12 and sf.blocks[0].attn.scale == 0.125
    ms = zoo.create_model("ms_resnet18")
    assert isinstance(ms.stages[0][0].relu1, nn.Identity)  # the stem's ReLU activates the first block
    assert isinstance(ms.stages[0][1].relu1, nn.ReLU)


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
        ("resnet20", {}),
        ("resnet34", {"widths": (8, 8, 16, 16), "stem_width": 8}),
        ("ms_resnet18", {"widths": (8, 16, 16, 32)}),
        ("vgg11", {"hidden": 64}),
    ],
)
def test_exact_hybrid_conversion_through_the_architecture(name, kwargs):
    """With Q = T·L, the converted LM-HT network's time-mean logits are L × the QCFS ANN's logits:
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
    relu_to_qcfs(ann, 4, threshold=1.0)
    ann = ann.double()
    shape = (1, 28, 28) if name == "fmnist_cnn" else (3, 32, 32)
    x = torch.randn(4, *shape, dtype=torch.float64)
    with torch.no_grad():
        ref = ann.eval()(x)
        snn = qcfs_to_lmht(ann, 2, 2, shape).eval()
        out = snn(x).mean(0) / 2
    assert ref.abs().max() > 1e-3
    torch.testing.assert_close(out, ref, atol=1e-9, rtol=1e-9)
