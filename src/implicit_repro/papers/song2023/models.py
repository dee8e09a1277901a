"""song2023's models: one shared block f(z; x) with input injection, and the variants that differ
only in depth, tying, solver, gradient and masks. Read top to bottom: the variants, the block, the
masks, the model, the parameter count, the builder.

The block (our choice, MDEQ-style; the paper's is unknown). For a state z of ``width`` channels and
the injection u = GN0(conv_in(x)), computed once per input and reused at every step:

    f(z; x) = GN3(ReLU(z + GN2(conv2(ReLU(GN1(conv1(z))))) + u))

conv1, conv2: 3x3 (3 on sequences), width -> width, no bias; conv_in: 3x3, in_channels -> width,
with bias; every GN is a GroupNorm with ``groups`` groups (default: the largest divisor of width
that is at most 8 and leaves two channels per group) and affine parameters. Images (dims=2) use 2-D convolutions, a state
(B, width, H, W) and a head of a 1x1 convolution (with bias) and ReLU, global average pooling and a
linear layer to ``classes`` logits; sequences (dims=1, anil2022's prefix sums, input (B, 1, L)) use 1-D convolutions, a state
(B, width, L) and a 1x1 convolution to (B, classes, L) logits.

Masks (our choice, modelled on the authors' later public method): conv1's and conv2's weights W
(not the injection, not the norms) get static binary masks drawn once at construction from a
generator seeded with ``mask_seed``, each keeping exactly round(density x numel) entries; step i
uses W ⊙ M_(i mod depth), so autograd gives dL/dW = sum_i M_i ⊙ dL/d(W ⊙ M_i). The masks are
buffers: saved in the state dict, identical after a resume, moved by ``.to(device)``.

Why the head mixes channels and applies a ReLU before it pools: the state leaves GN3, and a
GroupNorm makes each group's channel means over the image sum to zero, so pooling the state itself
(or any linear map of it) gives features of rank width - groups: 0 at width = groups, every input
the same logits. The ReLU is what restores full rank; MDEQ's classification head does the same
(a 1x1 convolution and activation before pooling). tests/test_song2023_models.py checks the rank
of the pooled features for every (width, groups) the config allows.

The solver and gradient of the DEQ variants are not here: the training loop hands ``step`` to
``implicit_repro.deq.deq_fixed_point`` with the variant's ``gradient``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from implicit_repro.papers.song2023.grid import MIN_CHANNELS_PER_GROUP, group_count
from implicit_repro.seeding import derive_seed


# ---------------------------------------------------------------- variants

@dataclass(frozen=True)
class Variant:
    name: str
    tying: str  # "tied": one block applied at every step | "untied": one block per step
    gradient: str  # "unrolled" (backprop through every step) | "ift" | "phantom" | "jfb"
    masks: str  # "none" | "distinct" (mask i at step i) | "shared" (one mask at every step)
    jacobian_reg: bool
    description: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("wt", "tied", "unrolled", "none", False, "weight-tied, L steps, backprop through all"),
        Variant("untied", "untied", "unrolled", "none", False, "explicit net of L distinct blocks"),
        Variant("deq_ift", "tied", "ift", "none", False, "DEQ, implicit differentiation"),
        Variant("deq_jr", "tied", "ift", "none", True, "DEQ, implicit differentiation + Jacobian penalty"),
        Variant("deq_phantom", "tied", "phantom", "none", False, "DEQ, phantom gradient"),
        Variant("deq_jfb", "tied", "jfb", "none", False, "DEQ, Jacobian-free backprop"),
        Variant("wt_masked_distinct", "tied", "unrolled", "distinct", False,
                "weight-tied with a distinct static sparse mask per step"),
        Variant("wt_masked_shared", "tied", "unrolled", "shared", False,
                "weight-tied with one static sparse mask at every step"),
    )
}


def get_variant(name: str) -> Variant:
    try:
        return VARIANTS[name]
    except KeyError:
        raise ValueError(f"unknown variant {name!r}; known: {', '.join(VARIANTS)}") from None


# ---------------------------------------------------------------- the block

def _conv(dims: int):
    return nn.Conv2d if dims == 2 else nn.Conv1d


class Block(nn.Module):
    """f(z; u) for a precomputed injection u. ``weights`` replaces conv1/conv2's weights (the
    masked products W ⊙ M_i), so a masked step runs the same code as a dense one.

    ``weight_norm``: each conv weight is g ⊙ v / ||v|| per output channel, with g learned (MDEQ's and
    torchdeq's stabilizer for the implicit layer; torch's parametrization, recomputed at every use,
    so a masked step masks the normalized weight). It starts as the plain weight (g = ||v||) and adds
    one parameter per output channel."""

    def __init__(self, width: int, groups: int, dims: int, weight_norm: bool = False):
        super().__init__()
        conv = _conv(dims)
        self.dims = dims
        self.conv1 = conv(width, width, 3, padding=1, bias=False)
        self.conv2 = conv(width, width, 3, padding=1, bias=False)
        if weight_norm:
            self.conv1, self.conv2 = parametrizations.weight_norm(self.conv1), parametrizations.weight_norm(self.conv2)
        self.norm1 = nn.GroupNorm(groups, width)
        self.norm2 = nn.GroupNorm(groups, width)
        self.norm3 = nn.GroupNorm(groups, width)

    def forward(self, z: torch.Tensor, u: torch.Tensor,
                weights: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        w1, w2 = weights if weights is not None else (self.conv1.weight, self.conv2.weight)
        conv = F.conv2d if self.dims == 2 else F.conv1d
        h = F.relu(self.norm1(conv(z, w1, padding=1)))
        h = self.norm2(conv(h, w2, padding=1))
        return self.norm3(F.relu(z + h + u))


# ---------------------------------------------------------------- masks

def random_masks(shape: torch.Size, count: int, density: float, g: torch.Generator) -> torch.Tensor:
    """``count`` binary masks of ``shape``, each keeping exactly round(density * numel) entries
    chosen uniformly at random (bool, stacked on a leading axis)."""
    numel = int(torch.Size(shape).numel())
    keep = round(density * numel)
    masks = torch.zeros(count, numel, dtype=torch.bool)
    for i in range(count):
        masks[i, torch.randperm(numel, generator=g)[:keep]] = True
    return masks.view(count, *shape)


# ---------------------------------------------------------------- the model

class ImplicitNet(nn.Module):
    """The EquilibriumModel interface of the training loop and the sweep: ``state_shape``,
    ``initial_state``, ``step(z, x, i)``, ``readout`` and ``forward(x, iters, z0)``.

    Step i uses block i mod depth (untied) and mask i mod depth (distinct masks): past its depth a
    net cycles through its blocks or masks (our choice for test-time extrapolation; the pipeline
    evaluates untied nets at their depth only). A masked variant at density 1 has no masks at all:
    it is the dense weight-tied net."""

    def __init__(self, variant: str, depth: int, width: int, in_channels: int, classes: int, dims: int,
                 density: float, groups: int, mask_seed: int, weight_norm: bool = False):
        super().__init__()
        self.variant = get_variant(variant)
        self.depth, self.width, self.density, self.dims = depth, width, density, dims
        conv = _conv(dims)
        self.injection = nn.Sequential(conv(in_channels, width, 3, padding=1), nn.GroupNorm(groups, width))
        n_blocks = depth if self.variant.tying == "untied" else 1
        self.blocks = nn.ModuleList(Block(width, groups, dims, weight_norm) for _ in range(n_blocks))
        if dims == 2:
            self.head = nn.Sequential(nn.Conv2d(width, width, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                      nn.Linear(width, classes))
        else:
            self.head = nn.Conv1d(width, classes, 1)
        self.masked = self.variant.masks != "none" and density < 1
        if self.masked:
            # Buffers: saved in the state dict (identical after a resume), moved by .to(device).
            g = torch.Generator().manual_seed(mask_seed)
            count = depth if self.variant.masks == "distinct" else 1
            block = self.blocks[0]
            self.register_buffer("masks1", random_masks(block.conv1.weight.shape, count, density, g))
            self.register_buffer("masks2", random_masks(block.conv2.weight.shape, count, density, g))

    def state_shape(self, x: torch.Tensor) -> tuple[int, ...]:
        return (x.shape[0], self.width, *x.shape[2:])

    @property
    def step_varies(self) -> bool:
        """Whether step i differs between iterations (untied blocks, distinct masks): a state fixed
        by one step need not be fixed by the next, so early exit does not apply."""
        return len(self.blocks) > 1 or (self.masked and len(self.masks1) > 1)

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(self.state_shape(x))

    def inject(self, x: torch.Tensor) -> torch.Tensor:
        """u = GN0(conv_in(x)), the same at every step."""
        return self.injection(x)

    def step_injected(self, z: torch.Tensor, u: torch.Tensor, i: int = 0) -> torch.Tensor:
        """One application f(z; u): block i mod depth (untied), mask i mod depth (distinct masks);
        dense weight-tied and DEQ variants ignore i."""
        block = self.blocks[i % len(self.blocks)]
        if not self.masked:
            return block(z, u)
        k = i % len(self.masks1)
        return block(z, u, (block.conv1.weight * self.masks1[k], block.conv2.weight * self.masks2[k]))

    def step(self, z: torch.Tensor, x: torch.Tensor, i: int = 0) -> torch.Tensor:
        """One application f(z; x), recomputing the injection (the DEQ solvers call this)."""
        return self.step_injected(z, self.inject(x), i)

    def readout(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(z)

    def pooled_features(self, z: torch.Tensor) -> torch.Tensor:
        """What the image head's linear layer sees: (B, width), after the 1x1 convolution, the ReLU
        and the pooling."""
        return self.head[:-1](z)

    def solve(self, x: torch.Tensor, iters: int, z0: torch.Tensor | None = None) -> torch.Tensor:
        """The state after ``iters`` steps from z0 (zeros by default); backprop flows through all."""
        u = self.inject(x)
        z = self.initial_state(x) if z0 is None else z0
        for i in range(iters):
            z = self.step_injected(z, u, i)
        return z

    def forward(self, x: torch.Tensor, iters: int, z0: torch.Tensor | None = None) -> torch.Tensor:
        """Logits after ``iters`` steps from z0."""
        return self.readout(self.solve(x, iters, z0))


# ---------------------------------------------------------------- parameters

def count_parameters(model: ImplicitNet) -> dict[str, int]:
    """``total``: trainable parameters. ``active``: those one step uses — a masked conv weight
    counts the round(density x numel) entries its mask keeps (every mask keeps that many); an
    untied net's blocks all count, as every step of the forward pass uses a different one."""
    total = sum(p.numel() for p in model.parameters())
    active = total
    if model.masked:
        for block in model.blocks:
            for conv, masks in ((block.conv1, model.masks1), (block.conv2, model.masks2)):
                active -= conv.weight.numel() - int(masks[0].sum())
    return {"total": total, "active": active}


# ---------------------------------------------------------------- builders


def build_model(variant: str, *, depth: int, width: int, in_channels: int, classes: int, dims: int = 2,
                density: float = 1.0, mask_seed: int = 0, groups: int | None = None,
                weight_norm: bool = False) -> ImplicitNet:
    """The ``variant`` net (see VARIANTS) at the given depth and width. Weights take PyTorch's
    default initialization, so the caller seeds torch first; masks come from ``mask_seed``."""
    get_variant(variant)
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    if width < MIN_CHANNELS_PER_GROUP:
        raise ValueError(f"width must be at least {MIN_CHANNELS_PER_GROUP}, got {width}")
    if not 0 < density <= 1:
        raise ValueError(f"density must be in (0, 1], got {density}")
    if density < 1 and get_variant(variant).masks == "none":
        raise ValueError(f"density {density} needs a masked variant; {variant!r} has no masks")
    if dims not in (1, 2):
        raise ValueError(f"dims must be 1 (sequences) or 2 (images), got {dims}")
    groups = groups or group_count(width, most=8)
    if width % groups:
        raise ValueError(f"groups ({groups}) must divide width ({width})")
    if width < MIN_CHANNELS_PER_GROUP * groups:
        raise ValueError(f"width ({width}) must be at least {MIN_CHANNELS_PER_GROUP} x groups ({groups})")
    return ImplicitNet(variant, depth, width, in_channels, classes, dims, density, groups, mask_seed, weight_norm)


def build(spec: dict) -> ImplicitNet:
    """The model of a training job: weights seeded by the job, masks by their own seed."""
    torch.manual_seed(derive_seed(spec["paper"], spec["task"], "init", spec["seed"]))
    m = dict(spec["model"])
    mask_seed = derive_seed(spec["paper"], spec["task"], "masks", spec["seed"])
    return build_model(m.pop("variant"), mask_seed=mask_seed, **m)
