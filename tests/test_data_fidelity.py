"""Dataset metadata (paper names, files needed), the authors' transforms per dataset (dataprocess.py,
built from torchvision ops), and synthetic data of any dataset's shape."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torchvision import transforms as T

import lmht.data as data
from lmht.data import cifar, tiny_imagenet
from lmht.data.transforms import AUTOAUGMENT_FILL, Cutout, static_transform

PAPER_NAMES = {
    "fashion_mnist": "Fashion-MNIST",
    "cifar10": "CIFAR-10",
    "cifar100": "CIFAR-100",
    "imagenet200": "ImageNet-200",
    "imagenet": "ImageNet-1k",
    "cifar10_dvs": "CIFAR10-DVS",
    "synthetic": "synthetic",
}


def test_paper_names_and_files_needed():
    assert set(PAPER_NAMES) == set(data.list_datasets())
    for name, paper in PAPER_NAMES.items():
        info = data.dataset_info(name)
        assert info.paper_name == paper
        assert info.needs_files == (name != "synthetic")


def test_normalization_constants_of_the_authors():
    c10, c100 = data.dataset_info("cifar10"), data.dataset_info("cifar100")
    assert c10.mean == (0.4914, 0.4822, 0.4465) and c10.std == (0.2023, 0.1994, 0.2010)
    assert c100.mean == pytest.approx([129.3 / 255, 124.1 / 255, 112.4 / 255])
    assert c100.std == pytest.approx([68.2 / 255, 65.4 / 255, 70.4 / 255])
    tiny = data.dataset_info("imagenet200")
    assert tiny.mean == (0.480, 0.448, 0.398) and tiny.std == (0.272, 0.266, 0.274)


def types(compose) -> list[type]:
    return [type(t) for t in compose.transforms]


def test_static_pipeline_order_autoaugment_fill_and_cutout_after_normalize():
    cfg = data.TransformConfig(augment=True, autoaugment=True, cutout=16)
    crop = (T.RandomCrop(32, padding=4), T.RandomHorizontalFlip())
    tr = static_transform(
        cfg, True, mean=(0.5,) * 3, std=(0.5,) * 3, train_crop=crop, autoaugment_policy="cifar10"
    )
    assert types(tr) == [T.RandomCrop, T.RandomHorizontalFlip, T.AutoAugment, T.ToTensor, T.Normalize, Cutout]
    aa = tr.transforms[2]
    assert aa.policy == T.AutoAugmentPolicy.CIFAR10 and aa.fill == list(AUTOAUGMENT_FILL)
    assert tr.transforms[-1].length == 16
    out = tr(Image.new("RGB", (32, 32), (255, 255, 255)))
    assert out.shape == (3, 32, 32) and (out == 0).any()  # the erased square holds 0 = the mean


def test_tiny_imagenet_transforms_of_the_authors(tmp_path):
    for k, wnid in enumerate(("n01", "n02")):
        d = tmp_path / "train" / wnid / "images"
        d.mkdir(parents=True)
        Image.new("RGB", (64, 64), (40 * k, 0, 0)).save(d / f"{wnid}_0.JPEG")
    (tmp_path / "val" / "images").mkdir(parents=True)
    Image.new("RGB", (64, 64), (0, 0, 50)).save(tmp_path / "val" / "images" / "val_0.JPEG")
    (tmp_path / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn01\t0\t0\t63\t63\n")
    train = data.create_dataset("imagenet200", tmp_path, True, autoaugment=True)
    test = data.create_dataset("imagenet200", tmp_path, False)
    assert types(train.transform)[:3] == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.AutoAugment]
    assert train.transform.transforms[0].size == (64, 64)
    assert train.transform.transforms[2].policy == T.AutoAugmentPolicy.IMAGENET
    assert types(test.transform) == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert test.transform.transforms[0].size == 64 and test.transform.transforms[1].size == (64, 64)
    assert train[0][0].shape == test[0][0].shape == (3, 64, 64)
    assert tiny_imagenet.INFO.autoaugment_policy == "imagenet"


def test_imagenet_transforms_of_the_authors(tmp_path):
    """ImageNet-1k (authors' dataprocess.py): RandomResizedCrop(224) + flip + AutoAugment IMAGENET for
    training; Resize(256) + CenterCrop(224) for testing; torchvision's ImageNet mean/std."""
    from lmht.data import imagenet

    for split in ("train", "val"):
        for k, wnid in enumerate(("n01440764", "n01443537")):
            d = tmp_path / split / wnid
            d.mkdir(parents=True)
            Image.new("RGB", (300, 260), (60 * k, 20, 0)).save(d / f"{wnid}_0.JPEG")
    train = data.create_dataset("imagenet", tmp_path, True, autoaugment=True)
    test = data.create_dataset("imagenet", tmp_path, False)
    assert types(train.transform)[:3] == [T.RandomResizedCrop, T.RandomHorizontalFlip, T.AutoAugment]
    assert train.transform.transforms[0].size == (224, 224)
    assert train.transform.transforms[2].policy == T.AutoAugmentPolicy.IMAGENET
    assert types(test.transform) == [T.Resize, T.CenterCrop, T.ToTensor, T.Normalize]
    assert test.transform.transforms[0].size == 256 and test.transform.transforms[1].size == (224, 224)
    normalize = test.transform.transforms[-1]
    assert tuple(normalize.mean) == (0.485, 0.456, 0.406) and tuple(normalize.std) == (0.229, 0.224, 0.225)
    assert train[0][0].shape == test[0][0].shape == (3, 224, 224)
    assert imagenet.INFO.autoaugment_policy == "imagenet"


def test_cifar_transforms_use_the_cifar10_policy():
    assert cifar.CIFAR10_INFO.autoaugment_policy == cifar.CIFAR100_INFO.autoaugment_policy == "cifar10"


@pytest.mark.parametrize("like", ["fashion_mnist", "cifar10", "cifar100", "imagenet200", "cifar10_dvs"])
def test_synthetic_data_of_any_datasets_shape(like):
    ref = data.dataset_info(like)
    info = data.dataset_info("synthetic", like=like)
    for key in ("num_classes", "in_chans", "image_size", "encoding", "frames", "input_size"):
        assert getattr(info, key) == getattr(ref, key), key
    assert info.needs_files is False and info.paper_name == f"synthetic ({ref.paper_name})"
    ds = data.create_dataset("synthetic", like=like, length=3)
    assert tuple(ds[0][0].shape) == ref.input_size and ds.info == info
    assert max(ds.targets) < ref.num_classes


def test_synthetic_like_overrides_and_errors():
    assert data.dataset_info("synthetic", like="cifar10_dvs", frames=4).input_size == (4, 2, 48, 48)
    assert data.dataset_info("synthetic", like="cifar10_dvs", frames=0).encoding == "direct"
    assert data.dataset_info("synthetic", like="imagenet", image_size=32).input_size == (3, 32, 32)
    assert data.dataset_info("synthetic").input_size == (3, 32, 32)  # the default shape is unchanged
    with pytest.raises(ValueError, match="unknown dataset"):
        data.dataset_info("synthetic", like="mnist9")
    with pytest.raises(ValueError, match="like='synthetic'"):
        data.dataset_info("synthetic", like="synthetic")
    a = data.create_dataset("synthetic", like="cifar10", length=4, seed=1)
    b = data.create_dataset("synthetic", like="cifar10", length=4, seed=1)
    assert torch.equal(a.data, b.data)
