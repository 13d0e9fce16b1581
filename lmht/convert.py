"""Network-level conversions between ANNs, QCFS ANNs and SNNs (generic over ``nn.Module`` trees).

* ``replace_activations`` — swap every module matching a type for a new one (one per site).
* ``relu_to_qcfs`` — ReLU -> QCFS for quantized ANN training.
* ``qcfs_to_if`` — classic conversion: QCFS -> IF with θ = ϑ, v_init = 0.5 (evaluate at long T).
* ``qcfs_to_lmht`` — hybrid initialization (Sec. 4.5, Theorem 4.4): LM-HT with L levels, θ = ϑ,
  v_init = 0.5, uniform T-GIM, λ = 1, the first neuron layer's analog input × L. ``init="algorithm1"``
  (default) is the paper's Algorithm 1: nothing else changes, so Theorem 4.4 holds at the first neuron
  layer and fine-tuning absorbs the rest. ``init="exact"`` (our variant) also scales every later
  constant term (bias, BN shift and running mean) × L — BN as a whole, see ``scale_constant_terms`` —
  so that with Q = T·L the SNN's time-mean logits are L × the QCFS ANN's logits on static inputs.
* ``build_snn`` — ReLU ANN -> SNN with any neuron (direct STBP training).
* ``reparameterize`` — LM-HT network (T steps, L levels) -> single-threshold network over T·L steps
  (Sec. 4.4): neurons via ``to_single_threshold``, later constant terms ÷ L, first input ÷ L.

Exactness needs every layer between neurons to be positively homogeneous and commute with the time
mean: conv, linear, BN (eval), average pooling, residual sums, flatten/dropout. Max pooling, LayerNorm
and other non-homogeneous layers are rejected with ``ValueError`` where exactness is asked for
(``init="exact"``, ``reparameterize``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

from torch import nn

from lmht.layers import EncodingPoint, SpikingActivation
from lmht.network import SpikingNetwork
from lmht.neurons import QCFS, IFNeuron, LMHTNeuron, create_neuron

__all__ = [
    "HYBRID_INITS",
    "build_snn",
    "qcfs_to_if",
    "qcfs_to_lmht",
    "relu_to_qcfs",
    "reparameterize",
    "replace_activations",
    "scale_constant_terms",
]

#: hybrid initializations: the paper's Algorithm 1 (default), our exact constant scaling
HYBRID_INITS = ("algorithm1", "exact")

# Layers with a constant (input-independent) term: scaling it by c scales the layer's output by c when
# its input is scaled by c.
_AFFINE = (nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm)
# Layers that break "time mean of the output = layer of the time mean" or homogeneity.
_NOT_EXACT = (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd, nn.LayerNorm,
              nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.Softmax, nn.GELU, nn.SiLU,
              nn.Sigmoid, nn.Tanh)


def replace_activations(model: nn.Module, match: type | tuple[type, ...],
                        factory: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """Replace, in place, every submodule that is an instance of ``match`` by ``factory(old)``.

    Raises ValueError if one matching instance is registered at two places (it would become one
    stateful neuron shared by two sites). Returns ``model`` (or the replacement if ``model`` matches).
    """
    if isinstance(model, match):
        return factory(model)
    sites: dict[int, list[str]] = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, match):
            sites.setdefault(id(module), []).append(name)
    shared = [names for names in sites.values() if len(names) > 1]
    if shared:
        raise ValueError(f"activation module registered at several sites {shared}: use one instance per site")
    for names in sites.values():
        parent_name, _, child = names[0].rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, factory(getattr(parent, child)))
    return model


def relu_to_qcfs(ann: nn.Module, levels: int, threshold: float = 8.0) -> nn.Module:
    """Replace every ``nn.ReLU`` of ``ann`` (in place) by ``QCFS(levels, threshold)``."""
    return replace_activations(ann, nn.ReLU, lambda _: QCFS(levels, threshold))


def _count(model: nn.Module, kind) -> int:
    return sum(isinstance(m, kind) for m in model.modules())


def qcfs_to_if(qcfs_ann: nn.Module, T: int, encoding: str = "direct",
               input_shape: Sequence[int] | None = None, frame_input: str = "mean") -> SpikingNetwork:
    """Classic ANN→SNN conversion: each QCFS becomes an IF neuron with θ = ϑ and v_init = 0.5.

    Returns a new network (the ANN is deep-copied) of default ``IFNeuron``s (the authors' BPTT IF; for
    evaluation the gradient mode does not matter). Its ``T`` may be changed afterwards.
    """
    if _count(qcfs_ann, QCFS) == 0:
        raise ValueError("qcfs_ann has no QCFS activations (train it with relu_to_qcfs first)")
    ann = copy.deepcopy(qcfs_ann)

    def to_if(q: QCFS) -> SpikingActivation:
        return SpikingActivation(IFNeuron(T, threshold=float(q.threshold.detach()), v_init=0.5))

    return SpikingNetwork(replace_activations(ann, QCFS, to_if), T, encoding, input_shape, frame_input)


def _layers_after_first_spike(net: SpikingNetwork, input_shape) -> tuple[nn.Module, list]:
    """The point where the analog input enters the spiking part, and the layers that run after it.

    That point is the first neuron layer, or an ``EncodingPoint`` placed before it (MS-ResNet: the stem's
    output reaches both the first neuron and the first block's shortcut, so both must see the × L).
    """
    order = net.execution_order(input_shape)
    first = next(i for i, (_, m) in enumerate(order) if isinstance(m, (SpikingActivation, EncodingPoint)))
    before = {id(m) for _, m in order[:first]}
    later, seen = [], set()
    for name, module in order[first + 1:]:
        if id(module) in before:
            raise ValueError(f"layer {name!r} runs both before and after the first neuron")
        if id(module) not in seen:
            seen.add(id(module))
            later.append((name, module))
    return order[first][1], later


def _check_exact(layers, what: str) -> None:
    bad = [f"{name} ({type(m).__name__})" for name, m in layers if isinstance(m, _NOT_EXACT)]
    if bad:
        raise ValueError(f"{what} needs positively homogeneous layers after the first neuron (use "
                         f"average pooling instead of max pooling); found: {', '.join(bad)}")


def scale_constant_terms(layers, factor: float) -> None:
    """Make each conv/linear/BN layer ``c``-homogeneous: ``layer'(c·x) = c · layer(x)`` (in place).

    Conv/linear: the bias × c. BatchNorm: the shift β and the running mean × c (the spec's constant
    terms), and also the scale γ × c with the running variance and ε × c². In eval mode this is the
    same function as scaling β and the mean alone (up to ε), and in training mode, where BN normalises
    by batch statistics and would undo an input scale of c, the output is still c × the original —
    so hybrid fine-tuning starts from the converted function instead of shrinking it by 1/L.
    """
    for _, module in layers:
        if not isinstance(module, _AFFINE):
            continue
        if getattr(module, "bias", None) is not None:
            module.bias.data.mul_(factor)
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            if module.weight is not None:
                module.weight.data.mul_(factor)
            if module.running_mean is not None:
                module.running_mean.mul_(factor)
                module.running_var.mul_(factor**2)
            module.eps *= factor**2


def qcfs_to_lmht(qcfs_ann: nn.Module, L: int, T: int, input_shape: Sequence[int], encoding: str = "direct",
                 init: str = "algorithm1", frame_input: str = "mean", **neuron_kw) -> SpikingNetwork:
    """Hybrid initialization: QCFS ANN -> LM-HT SNN (Sec. 4.5, Algorithm 1, Theorem 4.4).

    Each QCFS(Q, ϑ) becomes ``LMHTNeuron(L, T, threshold=ϑ, v_init=0.5, tgim_init="uniform",
    leak_init=1.0)`` — uniform T-GIM in the default sigmoid form (ω = 0), learnable λ = σ(0) + 0.5 = 1
    (``neuron_kw`` may add e.g. ``tgim_param``/``surrogate``/``backend``/``learn_*``) — and the first
    neuron layer's analog input is scaled by L (``input_scale``):

    ``init="algorithm1"`` (default): the paper's Algorithm 1 (and the authors' hybrid_train.py); no
        other layer changes, so the first neuron layer's mean output / L is ``QCFS_{T·L}`` of its mean
        input (Theorem 4.4) and deeper layers are approximate until fine-tuning.
    ``init="exact"`` (our variant): also every constant term after the first neuron × L
        (``scale_constant_terms``), so that each layer's mean current is L × the ANN's pre-activation:
        with Q = T·L, time-mean logits = L × ANN logits (same predictions). Needs homogeneous layers
        after the first neuron (no max pooling): ``ValueError`` otherwise.

    Args:
        qcfs_ann: network with QCFS activations (deep-copied).
        L, T: levels and steps. input_shape: per-sample input shape for tracing the layer order.
        encoding: ``"direct"`` or ``"frames"``. init: one of ``HYBRID_INITS``.
        frame_input: how event frames enter (``SpikingNetwork``): ``"mean"`` (the authors') or ``"bins"``.
    """
    if init not in HYBRID_INITS:
        raise ValueError(f"init: the hybrid initialization must be one of {HYBRID_INITS}, got {init!r}")
    if _count(qcfs_ann, QCFS) == 0:
        raise ValueError("qcfs_ann has no QCFS activations (train it with relu_to_qcfs first)")
    for fixed in ("threshold", "v_init", "tgim_init", "leak_init"):
        if fixed in neuron_kw:
            raise ValueError(f"{fixed}: fixed by the hybrid initialization (Theorem 4.4)")
    ann = copy.deepcopy(qcfs_ann)

    def to_lmht(q: QCFS) -> SpikingActivation:
        neuron = LMHTNeuron(L, T, threshold=float(q.threshold.detach()), v_init=0.5, tgim_init="uniform",
                            leak_init=1.0, **neuron_kw)
        return SpikingActivation(neuron)

    net = SpikingNetwork(replace_activations(ann, QCFS, to_lmht), T, encoding, input_shape, frame_input)
    first, later = _layers_after_first_spike(net, input_shape)
    first.input_scale *= L
    if init == "exact":
        _check_exact(later, "exact hybrid initialization (init='exact')")
        scale_constant_terms(later, float(L))
    return net


def build_snn(ann: nn.Module, neuron: str, L: int, T: int, input_shape: Sequence[int] | None = None,
              encoding: str = "direct", frame_input: str = "mean", **neuron_kw) -> SpikingNetwork:
    """Direct-training SNN: every ``nn.ReLU`` (or QCFS) of ``ann`` becomes ``create_neuron(neuron, ...)``.

    ``ann`` is deep-copied. ``neuron`` is a name from ``lmht.neurons.list_neurons()``.
    """
    ann = copy.deepcopy(ann)
    if _count(ann, (nn.ReLU, QCFS)) == 0:
        raise ValueError("ann has no nn.ReLU/QCFS activations to replace with neurons")

    def to_neuron(_: nn.Module) -> SpikingActivation:
        return SpikingActivation(create_neuron(neuron, L=L, T=T, **neuron_kw))

    return SpikingNetwork(replace_activations(ann, (nn.ReLU, QCFS), to_neuron), T, encoding, input_shape,
                          frame_input)


def reparameterize(snn: SpikingNetwork, input_shape: Sequence[int] | None = None) -> SpikingNetwork:
    """LM-HT network (T steps, L levels) -> single-threshold network over T·L steps (Sec. 4.4).

    Every ``LMHTNeuron`` becomes ``to_single_threshold()`` (T-GIM expanded to TL×TL blocks ÷ L, leak at
    the first sub-step of each window); every constant term after the first neuron is divided by L and
    the first neuron layer's input scale is divided by L, so each sub-step carries 1/L of the step's
    current; the input is repeated T·L times. Time-mean logits become (1/L) × the LM-HT network's, with
    the same predictions in the theorem's regime. Returns a deep copy.
    """
    layers = snn.spiking_layers()
    if not all(isinstance(layer.neuron, LMHTNeuron) for layer in layers):
        kinds = sorted({type(layer.neuron).__name__ for layer in layers})
        raise ValueError(f"reparameterize needs LMHTNeuron in every spiking layer, found {kinds}")
    levels, steps = snn.L, snn.T
    net = copy.deepcopy(snn)
    first, later = _layers_after_first_spike(net, input_shape or snn.input_shape)
    _check_exact(later, "reparameterization")
    for layer in net.spiking_layers():
        layer.neuron = layer.neuron.to_single_threshold()
    first.input_scale /= levels
    scale_constant_terms(later, 1.0 / levels)
    net.T = steps * levels
    return net
