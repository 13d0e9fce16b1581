"""Names shared by the tables and figures: the paper's dataset/arch/method names mapped to ours, method
labels, architecture depth and family."""

from __future__ import annotations

import re

__all__ = [
    "ARCH_DEPTH",
    "METHOD_LABELS",
    "NOT_IMPLEMENTED",
    "NOT_RUN",
    "PAPER_ARCHS",
    "PAPER_DATASETS",
    "PAPER_METHODS",
    "S1_ARCHS",
    "TIE",
    "method_label",
]

#: Paper dataset name -> (our dataset, note on the match)
PAPER_DATASETS = {
    "CIFAR-10": ("cifar10", ""),
    "CIFAR-100": ("cifar100", ""),
    "ImageNet-200": ("imagenet200", ""),
    "ImageNet-1k": ("imagenet", ""),
    "CIFAR10-DVS": ("cifar10_dvs", ""),
    "ImageNet-subset": (
        "imagenet200",
        "the paper's ImageNet subset is unspecified; compared on ImageNet-200",
    ),
    "unstated": ("imagenet200", "the paper does not name the dataset; compared on ImageNet-200"),
}
#: Paper architecture name -> our model name
PAPER_ARCHS = {
    "ResNet-18": "lmht_resnet18",
    "ResNet-19": "lmht_resnet19",
    "ResNet-20": "lmht_resnet20",
    "ResNet-34": "lmht_resnet34",
    "VGG-11": "lmht_vgg11",
    "VGG-13": "lmht_vgg13",
    "VGG-16": "lmht_vgg16",
    "MS-ResNet-18": "lmht_ms_resnet18",
    "MS-ResNet-34": "lmht_ms_resnet34",
    "Transformer-4-384": "lmht_spikformer_4_384",
}
#: Paper method (regex) -> how to find our number: cell name template, which value, (L, T) mapping.
#: value: "top1" | "before" | "after" (reparam) | "step" (conversion curve at step T).
PAPER_METHODS = [
    (r"LM-HT direct|LM-HT", "direct-lmht_L{L}_T{T}_uniform", "top1", None),
    (r"M-HT no T-GIM", "direct-mht_L{L}_T{T}_none", "top1", None),
    (r"LM-HT before reparam", "reparam-direct-lmht_L{L}_T{T}_uniform", "before", None),
    # Table 2 pairs each L=2 model with its single-threshold version over T·L steps (listed as L=1, T=4).
    (r"single-threshold after reparam", "reparam-direct-lmht_L2_T{half_T}_uniform", "after", None),
    (r"QCFS Tq=(?P<Q>\d+) ANN", "ann_Q{Q}", "top1", None),
    (r"QCFS Tq=(?P<Q>\d+) converted", "convert-Q{Q}_L1_T*_none", "step", None),
    (r"LM-HT hybrid from Tq=(?P<Q>\d+)", "hybrid-Q{Q}_L{L}_T{T}_uniform", "top1", None),
]
NOT_IMPLEMENTED = "baseline method of the paper's comparison table, not implemented here"
METHOD_LABELS = {
    "ann": "QCFS ANN",
    "convert": "QCFS→IF conversion",
    "hybrid": "LM-HT hybrid",
    "direct-lmht": "LM-HT direct",
    "direct-mht": "M-HT (no T-GIM)",
    "direct-if": "IF direct",
    "direct-lif": "LIF direct",
    "reparam-direct-lmht": "reparam. LM-HT direct",
    "reparam-direct-mht": "reparam. M-HT direct",
    "reparam-hybrid": "reparam. LM-HT hybrid",
}
#: Depth (weight layers; Transformer: blocks) and family of each architecture, for open question 2.
ARCH_DEPTH = {
    "lmht_resnet18": ("ResNet", 18),
    "lmht_resnet19": ("ResNet", 19),
    "lmht_resnet20": ("ResNet", 20),
    "lmht_resnet34": ("ResNet", 34),
    "lmht_ms_resnet18": ("MS-ResNet", 18),
    "lmht_ms_resnet34": ("MS-ResNet", 34),
    "lmht_vgg11": ("VGG", 11),
    "lmht_vgg13": ("VGG", 13),
    "lmht_vgg16": ("VGG", 16),
    "lmht_spikformer_4_384": ("Transformer", 4),
    "lmht_fmnist_cnn": ("CNN", None),
    "lmht_cifarnet": ("CNN", None),
}
S1_ARCHS = ("lmht_ms_resnet18", "lmht_ms_resnet34", "lmht_spikformer_4_384")
NOT_RUN = "not run"
TIE = 0.005  # accuracies closer than this (in points) are equal
# What identifies a cell (besides its seed), as columns of the per-run and per-cell tables.
CELL_FIELDS = ("dataset", "arch", "cell", "method", "kind", "neuron", "L", "T", "tgim", "Q", "src")


def method_label(method: str) -> str:
    """Readable method name; hybrid/convert/reparam-hybrid carry their Q (hybrid-Q4 -> LM-HT hybrid (Q=4))."""
    m = re.fullmatch(r"(reparam-)?(hybrid|convert)-Q(\d+)", method)
    if m:
        return f"{METHOD_LABELS[(m[1] or '') + m[2]]} (Q={m[3]})"
    return METHOD_LABELS.get(method, method)
