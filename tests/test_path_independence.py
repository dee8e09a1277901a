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


def half_memory(z, x):
    return 0.5 * z + x  # one step from z0 keeps half of z0 and adds the input


def scaled_basis(scales):
    """Input i = scales[i] * e_i: orthogonal inputs of different lengths."""
    return torch.diag(torch.tensor(scales))


def test_all_pairs_matrix_indexes_input_then_start():
    """Row i, column j: input i restarted from the converged state of input j. With one step of
    half_memory from zeros z'_i = x_i = a_i e_i, and input i from z'_j reaches a_i e_i + a_j e_j / 2:
    entry (i, j) = a_i / sqrt(a_i^2 + a_j^2 / 4) off the diagonal, 1 on it. The matrix is not
    symmetric, and swapping the roles of input and start gives (a_i / 2) / sqrt(a_i^2 / 4 + a_j^2)."""
    a = torch.tensor([1.0, 2.0, 4.0])
    pairs = all_pairs_alignment(half_memory, scaled_basis(a.tolist()), torch.zeros(3, 3), 1)
    expected = a.view(3, 1) / torch.sqrt(a.view(3, 1) ** 2 + a.view(1, 3) ** 2 / 4)
    expected.fill_diagonal_(1.0)
    assert torch.allclose(pairs, expected, atol=1e-6)
    assert not torch.allclose(expected, expected.T, atol=0.1)  # the orientation is pinned


def test_aa_restarts_each_input_from_another_examples_state():
    """Algorithm 1 with the same one-step map: z''_i = a e_i + a e_pi(i) / 2 whatever the derangement
    pi, so every example has cos 2 / sqrt(5). From its own state it would be 1; from zeros, 1; from
    noise, anything."""
    x = scaled_basis([3.0] * 6)
    aa = asymptotic_alignment(half_memory, x, torch.zeros(6, 6), 1, generator(0))
    assert torch.allclose(aa, torch.full((6,), 2 / 5 ** 0.5), atol=1e-6)
