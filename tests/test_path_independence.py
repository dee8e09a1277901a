import pytest
import torch

from implicit_repro.path_independence import all_pairs_alignment, asymptotic_alignment, derangement
from implicit_repro.seeding import generator


def contraction(z, x):
    return 0.5 * z + x  # unique fixed point 2x, reached from anywhere


def two_attractors(z, x):
    # Each coordinate settles at about +1 or -1; the sign is set by where it starts, once |z| is
    # large, and by the weak input only from zero.
    return torch.tanh(3 * z + 0.1 * x)


@pytest.fixture
def inputs():
    return torch.randn(64, 4, 5, generator=generator("aa-inputs"))


def test_derangement_moves_every_index():
    for n in (2, 3, 10, 257):
        perm = derangement(n, generator(n))
        assert sorted(perm.tolist()) == list(range(n))
        assert (perm != torch.arange(n)).all()


def test_contraction_is_path_independent(inputs):
    aa = asymptotic_alignment(contraction, inputs, torch.zeros_like(inputs), 60, generator(0))
    assert aa.shape == (64,)
    assert torch.allclose(aa, torch.ones(64), atol=1e-5)
    pairs = all_pairs_alignment(contraction, inputs[:8], torch.zeros_like(inputs[:8]), 60)
    assert pairs.shape == (8, 8)
    assert torch.allclose(pairs, torch.ones(8, 8), atol=1e-5)


def test_two_attractors_are_path_dependent(inputs):
    aa = asymptotic_alignment(two_attractors, inputs, torch.zeros_like(inputs), 60, generator(0))
    assert aa.mean() < 0.3  # restarting from another example's state keeps that example's signs
    pairs = all_pairs_alignment(two_attractors, inputs[:8], torch.zeros_like(inputs[:8]), 60)
    # the diagonal restarts each input from its own state: aligned; off the diagonal: not
    assert torch.allclose(pairs.diagonal(), torch.ones(8), atol=1e-4)
    off = pairs[~torch.eye(8, dtype=torch.bool)]
    assert off.mean() < 0.3


def test_all_pairs_matrix_indexes_input_then_start(inputs):
    """Row i, column j: input i restarted from the converged state of input j."""
    def copy_start(z, x):
        return z + 0 * x  # remembers its start forever
    x = inputs[:3]
    z0 = torch.stack([torch.full_like(x[0], float(i + 1)) for i in range(3)])
    pairs = all_pairs_alignment(copy_start, x, z0, 5)
    assert torch.allclose(pairs, torch.ones(3, 3))  # constant states are all parallel
    signs = torch.tensor([1.0, -1.0, 1.0]).view(3, 1, 1) * torch.ones_like(x)
    pairs = all_pairs_alignment(copy_start, x, signs, 5)
    expected = torch.tensor([[1.0, -1, 1], [-1, 1, -1], [1, -1, 1]])
    assert torch.allclose(pairs, expected)
