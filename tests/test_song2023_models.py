"""song2023's shared block and its variants: masks, tying, the DEQ gradients, parameter counts."""

import pytest
import torch
import torch.nn.functional as F

from implicit_repro.deq import deq_fixed_point, jacobian_penalty
from implicit_repro.papers.song2023.models import VARIANTS, build_model, count_parameters, get_variant

DEQ_VARIANTS = [name for name, v in VARIANTS.items() if v.gradient != "unrolled"]




def net(variant="wt", depth=3, width=4, in_channels=3, classes=5, dims=2, density=1.0, mask_seed=0, seed=0):
    torch.manual_seed(seed)
    return build_model(variant, depth=depth, width=width, in_channels=in_channels, classes=classes, dims=dims,
                       density=density, mask_seed=mask_seed)


def images(b=2, c=3, side=5, seed=1):
    return torch.randn(b, c, side, side, generator=torch.Generator().manual_seed(seed))


def block_by_hand(block, z, u, w1, w2):
    """The documented block, written out: GN3(ReLU(z + GN2(conv2(ReLU(GN1(conv1(z))))) + u))."""
    gn = lambda h, norm: F.group_norm(h, norm.num_groups, norm.weight, norm.bias, norm.eps)  # noqa: E731
    h = F.relu(gn(F.conv2d(z, w1, padding=1), block.norm1))
    h = gn(F.conv2d(h, w2, padding=1), block.norm2)
    return gn(F.relu(z + h + u), block.norm3)


# ---------------------------------------------------------------- masks

@pytest.mark.parametrize("density", [0.1, 0.5, 1 / 3])
def test_every_mask_keeps_exactly_round_density_numel(density):
    model = net("wt_masked_distinct", depth=4, width=6, density=density)
    for masks, weight in ((model.masks1, model.blocks[0].conv1.weight), (model.masks2, model.blocks[0].conv2.weight)):
        assert masks.shape == (4, *weight.shape)
        for m in masks:
            assert int(m.sum()) == round(density * weight.numel())


def test_distinct_masks_differ_between_steps_and_shared_is_one_mask():
    distinct = net("wt_masked_distinct", depth=3, density=0.5)
    for i in range(3):
        for j in range(i + 1, 3):
            assert not torch.equal(distinct.masks1[i], distinct.masks1[j])
            assert not torch.equal(distinct.masks2[i], distinct.masks2[j])
    shared = net("wt_masked_shared", depth=3, density=0.5)
    assert shared.masks1.shape[0] == shared.masks2.shape[0] == 1
    x = images()
    u, z = shared.inject(x), torch.randn(shared.state_shape(x))
    assert torch.equal(shared.step_injected(z, u, 0), shared.step_injected(z, u, 2))
    assert not torch.equal(distinct.step_injected(z, distinct.inject(x), 0),
                           distinct.step_injected(z, distinct.inject(x), 2))


def test_density_one_means_no_masks():
    model = net("wt_masked_distinct", density=1.0)
    assert not model.masked
    assert not any("mask" in k for k in model.state_dict())


def test_masks_are_buffers_restored_by_load_and_untouched_by_training():
    a = net("wt_masked_distinct", density=0.5, mask_seed=0)
    b = net("wt_masked_distinct", density=0.5, mask_seed=1)
    assert not torch.equal(a.masks1, b.masks1)
    assert "masks1" in a.state_dict() and "masks1" not in dict(a.named_parameters())
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.masks1, b.masks1) and torch.equal(a.masks2, b.masks2)
    x = images()
    assert torch.equal(a(x, 3), b(x, 3))

    masks = a.masks1.clone(), a.masks2.clone()
    w = a.blocks[0].conv1.weight.detach().clone()
    opt = torch.optim.Adam(a.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        a(x, 3).pow(2).sum().backward()
        opt.step()
    assert not torch.equal(w, a.blocks[0].conv1.weight)  # training did change the weights
    assert torch.equal(masks[0], a.masks1) and torch.equal(masks[1], a.masks2)


def test_shared_weight_gradient_is_sum_of_masked_per_step_gradients():
    """dL/dW = sum_i M_i ⊙ dL/d(W ⊙ M_i): autograd's gradient of the shared W against a forward
    written by hand with a separate leaf weight per step."""
    depth = 3
    model = net("wt_masked_distinct", depth=depth, density=0.4).double()
    x, r = images().double(), torch.randn(2, 5, dtype=torch.double)
    block = model.blocks[0]
    (model(x, depth) * r).sum().backward()

    leaves = [((block.conv1.weight * model.masks1[i]).detach().requires_grad_(),
               (block.conv2.weight * model.masks2[i]).detach().requires_grad_()) for i in range(depth)]
    u = model.inject(x).detach()
    z = model.initial_state(x)
    for w1, w2 in leaves:
        z = block_by_hand(block, z, u, w1, w2)
    by_hand = (model.readout(z) * r).sum()
    assert torch.allclose(by_hand, (model(x, depth) * r).sum())  # the same forward
    by_hand.backward()
    expected1 = sum(model.masks1[i] * leaves[i][0].grad for i in range(depth))
    expected2 = sum(model.masks2[i] * leaves[i][1].grad for i in range(depth))
    assert torch.allclose(block.conv1.weight.grad, expected1)
    assert torch.allclose(block.conv2.weight.grad, expected2)


def test_masked_step_i_uses_mask_i_and_cycles_past_depth():
    depth = 3
    model = net("wt_masked_distinct", depth=depth, density=0.5)
    block, x = model.blocks[0], images()
    u, z = model.inject(x), torch.randn(model.state_shape(x))
    with torch.no_grad():
        for i in range(2 * depth + 1):
            k = i % depth
            expected = block_by_hand(block, z, u, block.conv1.weight * model.masks1[k],
                                     block.conv2.weight * model.masks2[k])
            assert torch.allclose(model.step_injected(z, u, i), expected, atol=1e-6)
            assert torch.allclose(model.step(z, x, i), expected, atol=1e-6)


# ---------------------------------------------------------------- tying

def test_weight_tied_forward_is_repeated_steps():
    model, x = net("wt"), images()
    z = model.initial_state(x)
    for i in range(4):
        z = model.step(z, x, i)
    assert torch.allclose(model(x, 4), model.readout(z), atol=1e-6)
    assert len(model.blocks) == 1


def test_untied_uses_a_distinct_block_per_step():
    depth = 3
    untied, x = net("untied", depth=depth), images()
    assert len(untied.blocks) == depth
    per_block = len(list(untied.blocks[0].parameters()))
    assert len({id(p) for b in untied.blocks for p in b.parameters()}) == depth * per_block
    z = untied.initial_state(x)
    u = untied.inject(x)
    for i in range(depth):
        z = block_by_hand(untied.blocks[i], z, u, untied.blocks[i].conv1.weight, untied.blocks[i].conv2.weight)
    assert torch.allclose(untied(x, depth), untied.readout(z), atol=1e-6)

    tied = net("wt", depth=depth)
    tied.injection.load_state_dict(untied.injection.state_dict())
    tied.blocks[0].load_state_dict(untied.blocks[0].state_dict())
    tied.head.load_state_dict(untied.head.state_dict())
    assert torch.allclose(tied(x, 1), untied(x, 1))  # same first block
    assert not torch.allclose(tied(x, depth), untied(x, depth))


# ---------------------------------------------------------------- DEQ variants

def contractive(variant):
    """A double-precision net whose f is a strong contraction. Scaling the convolutions would not do
    it (each is followed by a GroupNorm, which undoes the scale), so the GroupNorms' scales are set
    instead: a small residual branch (GN2), a small output (GN3) next to a large injection (GN0)."""
    model = net(variant, width=4, in_channels=1, classes=3, dims=1).double()
    with torch.no_grad():
        model.injection[1].weight.fill_(3.0)
        for block in model.blocks:
            block.norm2.weight.fill_(0.05)
            block.norm3.weight.fill_(0.3)
    return model


def flat_grad(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def sequences():
    g = torch.Generator().manual_seed(3)
    return torch.randint(0, 2, (2, 1, 8), generator=g).double(), torch.randn(2, 3, 8, generator=g, dtype=torch.double)


def solve(model, x, grad, **kw):
    return deq_fixed_point(lambda z: model.step(z, x), model.initial_state(x), solver="anderson", grad=grad,
                           max_iter=60, tol=1e-10, **kw)


def deq_gradient(model, x, r, grad, **kw):
    model.zero_grad()
    z, stats = solve(model, x, grad, **kw)
    (model.readout(z) * r).sum().backward()
    return flat_grad(model), stats


def implicit_gradient_by_hand(model, x, r):
    """dL/dθ = w ∂f/∂θ at z*, with w (I - J) = dL/dz*: the Jacobian J formed in full on a tiny state."""
    with torch.no_grad():
        z, _ = solve(model, x, "ift")
    f = lambda z: model.step(z, x)  # noqa: E731
    J = torch.autograd.functional.jacobian(f, z).reshape(z.numel(), z.numel())
    assert torch.linalg.matrix_norm(J, 2) < 0.5  # a contraction at the fixed point
    zz = z.clone().requires_grad_()
    (v,) = torch.autograd.grad((model.readout(zz) * r).sum(), zz)
    w = torch.linalg.solve((torch.eye(z.numel(), dtype=z.dtype) - J).T, v.reshape(-1))
    model.zero_grad()
    f(z).backward(w.reshape(z.shape))
    model.readout(z).mul(r).sum().backward()  # the head's own gradient
    return flat_grad(model)


@pytest.mark.parametrize("variant", DEQ_VARIANTS)
def test_deq_variants_converge_and_their_gradient_matches_the_implicit_one(variant):
    x, r = sequences()
    model = contractive(variant)
    grad = get_variant(variant).gradient
    reference = implicit_gradient_by_hand(model, x, r)

    g_variant, stats = deq_gradient(model, x, r, grad, phantom_steps=5, phantom_damping=0.7)
    assert float(stats.residual.max()) < 1e-8
    assert torch.isfinite(g_variant).all()
    if grad == "ift":
        assert torch.allclose(g_variant, reference, rtol=1e-6, atol=1e-9)
    else:
        assert F.cosine_similarity(g_variant, reference, dim=0) > 0.5
        assert not torch.allclose(g_variant, reference, rtol=1e-6, atol=1e-9)  # an approximation
    if get_variant(variant).jacobian_reg:
        z, _ = solve(model, x, grad)
        penalty = jacobian_penalty(lambda z: model.step(z, x), z, generator=torch.Generator().manual_seed(0))
        model.zero_grad()
        penalty.backward()
        conv_grad = model.blocks[0].conv1.weight.grad  # the penalty shapes the block
        assert penalty > 0 and torch.isfinite(conv_grad).all() and conv_grad.abs().sum() > 0


def test_unrolling_a_contraction_tends_to_the_implicit_gradient():
    x, r = sequences()
    model = contractive("wt")
    reference = implicit_gradient_by_hand(model, x, r)
    model.zero_grad()
    (model(x, 40) * r).sum().backward()
    assert torch.allclose(flat_grad(model), reference, rtol=1e-6, atol=1e-9)


def test_ift_gradient_differs_from_a_wrong_reference():
    """The tolerance above is tight enough to tell IFT from a one-step (JFB) gradient."""
    x, r = sequences()
    model = contractive("deq_ift")
    ift, _ = deq_gradient(model, x, r, "ift")
    jfb, _ = deq_gradient(model, x, r, "jfb")
    assert not torch.allclose(ift, jfb, rtol=1e-5, atol=1e-8)


# ---------------------------------------------------------------- parameters, shapes, arguments

def test_parameter_counts_of_a_tiny_model():
    # width 4 (GroupNorm 2 groups: two channels each), 1 input channel, 3 classes, 3x3 kernels:
    inject = 9 * 1 * 4 + 4 + 2 * 4  # conv with bias, GroupNorm = 48
    conv = 9 * 4 * 4  # 144 per bias-free conv
    block = 2 * conv + 3 * 2 * 4  # two convs, three GroupNorms = 312
    head = (4 * 4 + 4) + (4 * 3 + 3)  # 1x1 conv with bias, then linear = 35
    dense = inject + block + head
    kw = dict(depth=3, width=4, in_channels=1, classes=3)
    assert count_parameters(net("wt", **kw)) == {"total": dense, "active": dense}
    assert count_parameters(net("deq_ift", **kw)) == {"total": dense, "active": dense}
    for variant in ("wt_masked_distinct", "wt_masked_shared"):
        # each mask keeps round(0.5 x 144) = 72 and round(144 / 3) = 48 entries of each conv
        assert count_parameters(net(variant, density=0.5, **kw)) == {"total": dense, "active": dense - 2 * (144 - 72)}
        assert count_parameters(net(variant, density=1 / 3, **kw)) == {"total": dense, "active": dense - 2 * (144 - 48)}
    untied = inject + 3 * block + head
    assert count_parameters(net("untied", **kw)) == {"total": untied, "active": untied}


def _normalized_states(width: int, groups: int, n: int = 64) -> torch.Tensor:
    """States as the block leaves them: GroupNorm'd (every state the head ever sees is GN3's output)."""
    torch.manual_seed(1)
    return F.group_norm(torch.randn(n, width, 8, 8), groups)


def _rank(features: torch.Tensor) -> int:
    return int(torch.linalg.matrix_rank(features.double(), rtol=1e-6))


@pytest.mark.parametrize("groups", [1, 2, 4, 8])
def test_the_readout_sees_every_channel_at_every_width_the_config_allows(groups):
    # A GroupNorm'd state pooled as is (or mapped linearly) has rank width - groups: at width =
    # groups every input gets the same logits. The head's 1x1 conv + ReLU before pooling restores it.
    for width in range(2 * groups, 2 * groups + 13, groups):
        torch.manual_seed(0)
        model = build_model("wt", depth=1, width=width, in_channels=1, classes=10, groups=groups)
        z = _normalized_states(width, groups)
        with torch.no_grad():
            assert _rank(model.pooled_features(z)) == width, (width, groups)
            assert _rank(z.mean(dim=(2, 3))) == width - groups  # what pooling the state itself would see


def test_widths_below_two_channels_per_group_are_refused():
    with pytest.raises(ValueError, match="at least 2 x groups"):
        build_model("wt", depth=1, width=4, in_channels=1, classes=10, groups=4)


def test_sequences_give_logits_per_position():
    x = torch.randint(0, 2, (2, 1, 11)).float()
    for variant in ("wt", "untied", "wt_masked_distinct", "deq_ift"):
        model = net(variant, width=4, in_channels=1, classes=2, dims=1, density=0.5 if "masked" in variant else 1.0)
        assert model.step(model.initial_state(x), x, 1).shape == (2, 4, 11)
        assert model(x, 3).shape == (2, 2, 11)


def test_default_groups_divide_the_width_and_keep_two_channels_each():
    assert net(width=12).blocks[0].norm1.num_groups == 6
    assert net(width=16).blocks[0].norm1.num_groups == 8
    assert net(width=3).blocks[0].norm1.num_groups == 1  # two channels per group at least


@pytest.mark.parametrize("kwargs, word", [
    (dict(density=0.0), "density"), (dict(density=1.5), "density"), (dict(depth=0), "depth"),
    (dict(width=0), "width"), (dict(variant="wt_sparse"), "variant"),
])
def test_build_model_rejects_bad_arguments(kwargs, word):
    args = dict(variant="wt_masked_distinct", depth=2, width=4, in_channels=1, classes=2) | kwargs
    with pytest.raises(ValueError, match=word):
        build_model(args.pop("variant"), **args)


def test_unknown_variant_names_the_known_ones():
    with pytest.raises(ValueError, match="deq_phantom"):
        get_variant("deq")


# ---------------------------------------------------------------- weight norm

def _weight_normed(variant, **kw):
    torch.manual_seed(0)
    return build_model(variant, depth=3, width=8, in_channels=3, classes=5, groups=4, weight_norm=True, **kw)


def test_weight_norm_starts_as_the_plain_block_and_learns_a_scale_per_output_channel():
    torch.manual_seed(0)
    plain = build_model("wt", depth=3, width=8, in_channels=3, classes=5, groups=4)
    normed = _weight_normed("wt")
    x = images()
    torch.testing.assert_close(normed(x, 3), plain(x, 3))  # g = ||v|| at init: the same function
    conv = normed.blocks[0].conv1
    g, v = conv.parametrizations.weight.original0, conv.parametrizations.weight.original1
    assert g.shape == (8, 1, 1, 1)
    with torch.no_grad():
        g[0] *= 2  # the first output channel's scale: its weights double, and only its
    expected = v / v.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * g
    torch.testing.assert_close(conv.weight, expected)
    torch.testing.assert_close(conv.weight[1:], plain.blocks[0].conv1.weight[1:])


def test_a_weight_normed_masked_step_masks_the_normalized_weight_and_trains_g_and_v():
    model = _weight_normed("wt_masked_distinct", density=0.5, mask_seed=3)
    block, x = model.blocks[0], images()
    u, z = model.inject(x), torch.randn(2, 8, 5, 5, generator=torch.Generator().manual_seed(2))
    expected = block_by_hand(block, z, u, block.conv1.weight * model.masks1[1], block.conv2.weight * model.masks2[1])
    torch.testing.assert_close(model.step_injected(z, u, 1), expected)
    model(x, 3).sum().backward()
    for p in block.conv1.parametrizations.weight.original0, block.conv1.parametrizations.weight.original1:
        assert p.grad is not None and p.grad.abs().sum() > 0
    counts = count_parameters(model)
    assert counts["total"] - counts["active"] == 2 * (8 * 8 * 9 - int(model.masks1[0].sum()))  # g is never masked
