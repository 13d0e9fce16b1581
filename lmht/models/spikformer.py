"""Spikformer-style Transformer-4-384 (the LM-HT appendix "Transformer-4-384", Table S1).

Source: Zhou et al., "Spikformer: When Spiking Neural Network Meets Transformer", ICLR 2023; written as
an ANN with ReLU in every place Spikformer has a spiking neuron (the LM-HT library swaps them).

Layout for a [B, 3, 32, 32] input, D = 384 (``embed_dim``), N = 64 tokens (``patch_size`` 4)::

    SPS (spiking patch splitting)
      stem   conv3×3 3→D/8 + BN + ReLU                 [B, 48, 32, 32]
      conv   conv3×3 D/8→D/4 + BN + ReLU               [B, 96, 32, 32]
      conv   conv3×3 D/4→D/2 + BN + ReLU, pool         [B, 192, 16, 16]
      conv   conv3×3 D/2→D + BN + ReLU, pool           [B, 384, 8, 8]    = x_feat
      rpe    conv3×3 D→D + BN + ReLU                   [B, 384, 8, 8]
      x = x_feat + rpe, tokens                         [B, 64, 384]
    4 × encoder block
      x = x + SSA(x)                                   [B, 64, 384]
      x = x + MLP(x)                                   [B, 64, 384]
    mean over tokens                                   [B, 384]
    head linear D→classes                              [B, classes]

Spiking self-attention (Zhou et al. Eqs. 13–15; H = 12 heads of d = 32, no softmax)::

    Q = ReLU_q(BN(Linear_q(x))), K = ReLU_k(BN(Linear_k(x))), V = ReLU_v(BN(Linear_v(x)))   [B, H, N, d]
    SSA'(x) = ReLU_attn( Q Kᵀ V · s ),  s = 0.125
    SSA(x) = ReLU_proj( BN(Linear_proj(SSA'(x))) )

MLP (ratio 4): ``ReLU(BN(Linear(ReLU(BN(Linear(x))))))`` with hidden width 4·D.
Each Linear has a bias (as in the authors' models/Spikformer.py, although BN follows); BN1d normalizes
the channel dimension of every token. Initialization as the authors': Linear weights truncated normal
(std 0.02) with zero bias, convolutions and BN at PyTorch's defaults.

The SPS pools are the authors' (and Zhou et al.'s) 3×3 stride-2 **max** pools (padding 1) by default;
``pool="avg"`` is our conversion-exact variant (3×3 stride-2 average pools, same geometry). ReLU sits
in place of every LIF neuron (the LM-HT library swaps them; the attention scale keeps 0.125).
``patch_size`` 4 puts the two pools after the last two SPS convs (CIFAR, the authors'); 16 pools after
all four (ImageNet, 224×224 -> 14×14 tokens).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ._factory import build, default_cfg, register
from .layers import Classifier, check_common_args, conv_bn_relu, make_pool

ATTN_SCALE = 0.125
POOLS_BY_PATCH = {4: 2, 8: 3, 16: 4}  # SPS patch size -> number of stride-2 pools


class LinearBN(nn.Module):
    """Linear + BatchNorm1d over channels, for tokens: [B, N, in] -> [B, N, out]."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.bn = nn.BatchNorm1d(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.linear(x).transpose(1, 2)).transpose(1, 2)


class SpikingSelfAttention(nn.Module):
    """Softmax-free self-attention of Spikformer: [B, N, D] -> [B, N, D] (equations in the module doc)."""

    def __init__(self, dim: int, num_heads: int, scale: float = ATTN_SCALE) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"embed_dim {dim} must be divisible by num_heads {num_heads}")
        self.num_heads, self.scale = num_heads, scale
        self.q, self.q_act = LinearBN(dim, dim), nn.ReLU()
        self.k, self.k_act = LinearBN(dim, dim), nn.ReLU()
        self.v, self.v_act = LinearBN(dim, dim), nn.ReLU()
        self.attn_act = nn.ReLU()
        self.proj, self.proj_act = LinearBN(dim, dim), nn.ReLU()

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        """[B, N, D] -> [B, H, N, D/H]."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = self._heads(self.q_act(self.q(x)))
        k = self._heads(self.k_act(self.k(x)))
        v = self._heads(self.v_act(self.v(x)))
        attn = (q @ k.transpose(-2, -1)) @ v * self.scale  # [B, H, N, d]
        out = self.attn_act(attn.transpose(1, 2).flatten(2))  # [B, N, D]
        return self.proj_act(self.proj(out))


class MLP(nn.Module):
    """Linear-BN-ReLU twice: [B, N, D] -> [B, N, hidden] -> [B, N, D]."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.act1 = LinearBN(dim, hidden), nn.ReLU()
        self.fc2, self.act2 = LinearBN(hidden, dim), nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act2(self.fc2(self.act1(self.fc1(x))))


class EncoderBlock(nn.Module):
    """``x + SSA(x)`` then ``x + MLP(x)``: [B, N, D] -> [B, N, D]."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.attn = SpikingSelfAttention(dim, num_heads)
        self.mlp = MLP(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(x)
        return x + self.mlp(x)


class SPS(nn.Module):
    """Spiking patch splitting: [B, C, H, W] -> tokens [B, H·W/patch², D] (layout in the module doc).

    The stem (first conv+BN+ReLU) is kept as ``stem`` so direct encoding runs it once.
    """

    def __init__(self, in_chans: int, dim: int, patch_size: int = 4, pool: str = "max") -> None:
        super().__init__()
        if patch_size not in POOLS_BY_PATCH:
            raise ValueError(f"patch_size must be one of {sorted(POOLS_BY_PATCH)}, got {patch_size}")
        if dim % 8:
            raise ValueError(f"embed_dim must be divisible by 8, got {dim}")
        n_pools = POOLS_BY_PATCH[patch_size]
        widths = [dim // 8, dim // 4, dim // 2, dim]
        self.stem = conv_bn_relu(in_chans, widths[0])
        convs: list[nn.Module] = [make_pool(pool, 3, 2, padding=1)] if n_pools == 4 else []
        for i in range(1, 4):
            convs.append(conv_bn_relu(widths[i - 1], widths[i]))
            if i >= 4 - n_pools:
                convs.append(make_pool(pool, 3, 2, padding=1))
        self.convs = nn.Sequential(*convs)
        self.rpe = conv_bn_relu(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.stem(x))
        x = x + self.rpe(x)
        return x.flatten(2).transpose(1, 2)


class Spikformer(Classifier):
    """Spikformer-style Transformer-L-D (see the module docstring).

    Args:
        num_classes: classifier outputs.
        in_chans: input channels.
        embed_dim: token width D (divisible by 8 and by ``num_heads``).
        depth: encoder blocks.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width / D.
        patch_size: 4 (CIFAR), 8 or 16 (ImageNet): total downsampling of SPS.
        pool: ``"max"`` (the authors') or ``"avg"``: the SPS pools.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_chans: int = 3,
        embed_dim: int = 384,
        depth: int = 4,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        patch_size: int = 4,
        pool: str = "max",
    ) -> None:
        super().__init__()
        check_common_args(num_classes, in_chans)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.patch_embed = SPS(in_chans, embed_dim, patch_size, pool)
        self.blocks = nn.Sequential(*(EncoderBlock(embed_dim, num_heads, mlp_ratio) for _ in range(depth)))
        self.num_features = embed_dim
        self.pre_logits = nn.Identity()
        self.head = nn.Linear(embed_dim, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """[B, in_chans, H, W] -> token mean [B, D]."""
        return self.blocks(self.patch_embed(x)).mean(1)


default_cfgs = {"lmht_spikformer_4_384": default_cfg(first_conv="patch_embed.stem.0")}


@register(paper_name="Transformer-4-384", family="Transformer", depth=4)
def lmht_spikformer_4_384(pretrained: bool = False, **kwargs: Any) -> Spikformer:
    """Spikformer Transformer-4-384 (4 blocks, D = 384, 12 heads, MLP ratio 4), CIFAR patch size 4."""
    return build(Spikformer, "lmht_spikformer_4_384", pretrained, **kwargs)
