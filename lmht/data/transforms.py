"""Image and frame transforms: the authors' augmentation (dataprocess.py) from torchvision ops.

Static images (PIL input) — train::

    geometric: RandomCrop(32, padding=4) + RandomHorizontalFlip     (CIFAR)
               RandomResizedCrop(64 | 224) + RandomHorizontalFlip   (Tiny-ImageNet | ImageNet)
    [AutoAugment(policy, fill=128)]     (``autoaugment=True``; torchvision's CIFAR10 policy on CIFAR,
                                         IMAGENET policy on Tiny-ImageNet / ImageNet; grey fill as the
                                         authors' policies)
    ToTensor + Normalize(mean, std)
    [Cutout(n)]                         (``cutout=n`` pixels after normalization; the authors: 16 on
                                         CIFAR-10, 12 on CIFAR-100, none on Tiny-ImageNet / ImageNet)

test: [Resize + CenterCrop (Tiny-ImageNet 64/64, ImageNet 256/224)] + ToTensor + Normalize.

Event frames [F, 2, H, W] (CIFAR10-DVS) — train, ``policy="nda"`` (the authors' ``Augment``): see
:class:`DVSAugment`; ``policy="crop_flip"`` is our earlier variant (one random crop with padding 4
and a horizontal flip for all frames).

Every random draw uses torch's global generator, which :func:`lmht.data.create_loader` seeds per
sample (seed, epoch, index), so augmentation is reproducible whatever the number of workers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torchvision import transforms as T
from torchvision.transforms import v2


@dataclass(frozen=True)
class TransformConfig:
    """What augmentation to apply to a training split (test splits only normalize).

    Attributes:
        augment: crop + flip (None: the dataset's default, on for CIFAR/ImageNet/DVS, off for Fashion-MNIST).
        autoaugment: torchvision AutoAugment with the dataset's policy (static RGB datasets only).
        cutout: side in pixels of the Cutout square (0: off).
        normalize: subtract the dataset mean and divide by its std.
    """

    augment: bool | None = None
    autoaugment: bool = False
    cutout: int = 0
    normalize: bool = True

    def __post_init__(self) -> None:
        if self.cutout < 0:
            raise ValueError(f"cutout must be >= 0 pixels, got {self.cutout}")


AUTOAUGMENT_FILL = (128, 128, 128)  # the authors' policies fill with grey (fillcolor=(128, 128, 128))


class Cutout(torch.nn.Module):
    """Cutout (DeVries & Taylor 2017): zero one ``length`` × ``length`` square of a [C, H, W] tensor.

    The square's centre is uniform over the image and the square is clipped at the borders, as in the
    reference implementation; applied after normalization, so the erased value is the dataset mean.
    """

    def __init__(self, length: int) -> None:
        super().__init__()
        if length <= 0:
            raise ValueError(f"Cutout length must be > 0 pixels, got {length}")
        self.length = length

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half = self.length // 2
        y0, y1 = max(cy - half, 0), min(cy + half, h)
        x0, x1 = max(cx - half, 0), min(cx + half, w)
        out = img.clone()
        out[..., y0:y1, x0:x1] = 0
        return out

    def extra_repr(self) -> str:
        return f"length={self.length}"


AUTOAUGMENT_POLICIES = {
    "cifar10": T.AutoAugmentPolicy.CIFAR10,
    "imagenet": T.AutoAugmentPolicy.IMAGENET,
}


def static_transform(
    cfg: TransformConfig,
    train: bool,
    *,
    mean: Sequence[float],
    std: Sequence[float],
    train_crop: Sequence[Callable] = (),
    test_crop: Sequence[Callable] = (),
    autoaugment_policy: str | None = None,
) -> T.Compose:
    """Build the PIL -> [C, H, W] float pipeline described in the module docstring.

    Args:
        cfg: augmentation switches (only read when ``train``).
        train: training split (augment) or test split (deterministic).
        mean, std: per-channel normalization.
        train_crop: geometric augmentation (e.g. RandomCrop + flip) used when augmenting.
        test_crop: deterministic resizing / cropping for both splits (e.g. Resize + CenterCrop).
        autoaugment_policy: key of :data:`AUTOAUGMENT_POLICIES`; None when AutoAugment is unsupported.
    """
    steps: list[Callable] = []
    if train and cfg.augment:
        steps += list(train_crop)
    else:
        steps += list(test_crop)
    if train and cfg.autoaugment:
        if autoaugment_policy not in AUTOAUGMENT_POLICIES:
            raise ValueError("autoaugment=True is not supported for this dataset (no AutoAugment policy)")
        steps.append(T.AutoAugment(AUTOAUGMENT_POLICIES[autoaugment_policy], fill=list(AUTOAUGMENT_FILL)))
    steps.append(T.ToTensor())
    if cfg.normalize:
        steps.append(T.Normalize(mean, std))
    if train and cfg.cutout:
        steps.append(Cutout(cfg.cutout))
    return T.Compose(steps)


def tensor_transform(
    cfg: TransformConfig, train: bool, *, size: int, padding: int, mean: Sequence[float], std: Sequence[float]
) -> Callable[[torch.Tensor], torch.Tensor]:
    """Pipeline for uint8 tensors [C, H, W] (Fashion-MNIST): optional crop/flip, scale to [0, 1], normalize.

    AutoAugment is not offered here (grey 28×28 images); ``cfg.autoaugment`` raises ValueError.
    """
    if train and cfg.autoaugment:
        raise ValueError("autoaugment=True is not supported for single-channel tensor datasets")
    steps: list[Callable] = []
    if train and cfg.augment:
        steps += [v2.RandomCrop(size, padding=padding), v2.RandomHorizontalFlip()]
    steps.append(ScaleNormalize(mean, std) if cfg.normalize else ScaleNormalize((0.0,), (1.0,)))
    if train and cfg.cutout:
        steps.append(Cutout(cfg.cutout))
    return steps[0] if len(steps) == 1 else v2.Compose(steps)


class ScaleNormalize(torch.nn.Module):
    """uint8 [C, H, W] -> float32 ``(x / 255 - mean) / std`` in one cheap step (~8 µs for 28×28)."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        super().__init__()
        mean_t = torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1)
        std_t = torch.tensor(std, dtype=torch.float32).view(-1, 1, 1)
        self.register_buffer("scale", 1.0 / (255.0 * std_t))
        self.register_buffer("offset", mean_t / std_t)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return img.to(torch.float32) * self.scale - self.offset


class DVSAugment(torch.nn.Module):
    """The authors' CIFAR10-DVS training augmentation (dataprocess.py ``Augment``, after NDA, Li et al.
    ECCV 2022) for frames ``[F, C, H, W]``; the same draw applies to every frame:

    1. horizontal flip with probability 0.5;
    2. ``n_ops`` = 2 operations drawn uniformly *with replacement* from
       * roll: ``torch.roll`` by ``a, b ~ U{-roll, …, roll}`` pixels along H and W (roll = 7),
       * rotate: ``RandomRotation(degrees)`` (angle ~ U(-45°, 45°), nearest, zero fill),
       * cutout: :class:`Cutout` of side ``int(cutout_ratio · H)`` (half the side),
       applied in the drawn order.

    Every draw uses torch's global generator (seeded per sample by the loader), unlike the authors'
    ``random`` / ``numpy`` draws, so runs are reproducible.
    """

    OPS = ("roll", "rotate", "cutout")

    def __init__(
        self,
        roll: int = 7,
        degrees: float = 45.0,
        cutout_ratio: float = 0.5,
        n_ops: int = 2,
        ops: Sequence[str] = OPS,
    ) -> None:
        super().__init__()
        if roll < 0 or degrees < 0 or not 0 < cutout_ratio <= 1 or n_ops < 0:
            raise ValueError(f"DVSAugment: roll {roll}, degrees {degrees} must be >= 0, cutout_ratio "
                             f"{cutout_ratio} in (0, 1], n_ops {n_ops} >= 0")
        unknown = sorted(set(ops) - set(self.OPS))
        if unknown or not ops:
            raise ValueError(f"DVSAugment ops: a non-empty subset of {list(self.OPS)}, got {list(ops)}")
        self.roll, self.degrees, self.cutout_ratio, self.n_ops = roll, degrees, cutout_ratio, n_ops
        self.ops = tuple(ops)
        self.rotate = T.RandomRotation(degrees)

    def draw(self) -> tuple[bool, list[str]]:
        """Draw the flip and the ``n_ops`` operation names (uniform, with replacement)."""
        flip = float(torch.rand(())) < 0.5
        return flip, [self.ops[i] for i in torch.randint(len(self.ops), (self.n_ops,)).tolist()]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flip, names = self.draw()
        if flip:
            x = x.flip(-1)
        for name in names:
            if name == "roll":
                dy, dx = torch.randint(-self.roll, self.roll + 1, (2,)).tolist()
                x = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))
            elif name == "rotate":
                x = self.rotate(x)
            else:
                x = Cutout(max(int(self.cutout_ratio * x.shape[-2]), 1))(x)
        return x

    def extra_repr(self) -> str:
        return (f"roll={self.roll}, degrees={self.degrees}, cutout_ratio={self.cutout_ratio}, "
                f"n_ops={self.n_ops}")


FRAME_POLICIES = ("nda", "crop_flip")


def frame_transform(
    cfg: TransformConfig, train: bool, *, size: int, policy: str = "nda", padding: int = 4
) -> Callable | None:
    """Training augmentation for event frames [F, 2, H, W]: ``"nda"`` (the authors', :class:`DVSAugment`)
    or ``"crop_flip"`` (our earlier variant: one random crop with ``padding`` and a flip for all frames).

    Returns None when nothing is applied (test split or ``augment`` off). AutoAugment and the static
    Cutout switch are for static images only and raise ValueError here.
    """
    if policy not in FRAME_POLICIES:
        raise ValueError(f"frame augmentation policy must be one of {list(FRAME_POLICIES)}, got {policy!r}")
    if train and (cfg.autoaugment or cfg.cutout):
        raise ValueError("autoaugment and cutout apply to static images, not to DVS event frames "
                         "(their own augmentation includes a Cutout of half the side)")
    if not (train and cfg.augment):
        return None
    if policy == "nda":
        return DVSAugment()
    return v2.Compose([v2.RandomCrop(size, padding=padding), v2.RandomHorizontalFlip()])
