"""Evaluation runs images channels-last (implicit_repro/layout.py): the same numbers up to rounding,
and the layout holds through a trajectory (else the speed is lost to copies)."""

import torch

from implicit_repro.data import mazes
from implicit_repro.layout import channels_last, channels_last_model
from implicit_repro.models import build_model
from implicit_repro.seeding import generator
from implicit_repro.sweep import batched_sweep
from implicit_repro.tasks import get_task


def _maze_model_and_data():
    torch.manual_seed(0)
    model = build_model("mazes", width=8, blocks=2).eval()
    data = mazes.generate(5, 24, generator(3))
    task = get_task("mazes")
    return model, task, task.model_input(data["inputs"]), task.target(data["targets"])


def test_channels_last_changes_a_maze_sweep_at_rounding_level_only():
    model, task, x, y = _maze_model_and_data()
    plain = batched_sweep(model, task, x, y, 12, batch_size=10)
    fast_model = channels_last_model(build_model("mazes", width=8, blocks=2))
    fast_model.load_state_dict(model.state_dict())
    fast = batched_sweep(fast_model.eval(), task, channels_last(x), y, 12, batch_size=10)
    assert torch.equal(fast.correct, plain.correct)
    torch.testing.assert_close(fast.residual, plain.residual, rtol=1e-5, atol=1e-7)
    # A "layout" that permuted the values instead of their order in memory would move every residual.


def test_the_state_stays_channels_last_through_steps():
    model, _, x, _ = _maze_model_and_data()
    model, x = channels_last_model(model), channels_last(x)
    assert model.cell.inject.weight.is_contiguous(memory_format=torch.channels_last)
    z = model.initial_state(x)  # zeros in the default layout: the first convolution's output follows x
    for _ in range(3):
        z = model.step(z, x)
        assert z.is_contiguous(memory_format=torch.channels_last)
    assert channels_last(x).data_ptr() == x.data_ptr()  # already channels-last: no copy


def test_tensors_that_are_not_images_keep_their_layout():
    sequence = torch.arange(24.0).view(2, 3, 4)
    assert channels_last(sequence) is sequence
    model = channels_last_model(build_model("prefix_sums", width=8, blocks=1))
    assert all(p.is_contiguous() for p in model.parameters())  # 1-D convolutions: nothing to change
