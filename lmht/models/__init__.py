"""Model zoo: plain ReLU ANNs, laid out as in the LM-HT authors' code, that :mod:`lmht.convert` turns
into SNNs.

Each architecture is registered with timm (``timm.create_model("lmht_resnet19", num_classes=100)``)
and available through :func:`create_model` with or without the ``lmht_`` prefix; :func:`model_info`
gives its paper name, family and depth without building it. Importing this package registers them all.
"""

from . import cifarnet, fmnist_cnn, ms_resnet, resnets, spikformer, vggs  # noqa: F401  (registers models)
from ._factory import ModelInfo, create_model, list_models, model_info
from .cifarnet import CIFARNet
from .fmnist_cnn import FMnistCNN
from .ms_resnet import MSResNet
from .resnets import ResNet
from .spikformer import Spikformer
from .vggs import VGG

__all__ = [
    "VGG",
    "CIFARNet",
    "FMnistCNN",
    "MSResNet",
    "ModelInfo",
    "ResNet",
    "Spikformer",
    "create_model",
    "list_models",
    "model_info",
]
