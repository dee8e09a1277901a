"""Harder is harder: at the committed scale, every training instance of prefix
sums and mazes lies within the training budget's reach and the typical instance of every harder
split beyond it (papers/anil2022/difficulty.py). A config that evaluates on "harder" instances the
training budget already covers fails here."""

import numpy as np
import pytest
import torch

from conftest import ROOT
from implicit_repro import config
from implicit_repro.data import registry
from implicit_repro.papers.anil2022.difficulty import harder_is_harder, needed_reach, reach_by_arm, training_reach
from implicit_repro.papers.song2023.grid import sequence_reach
from implicit_repro.papers.song2023.models import build_model

SAMPLE = 300  # instances drawn per split: the maze path lengths' median and max settle well before


def load_scale(scale: str) -> dict:
    return config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": scale})


def task_config(scale: str, task: str) -> dict:
    return load_scale(scale)["anil2022"][task]


def sample_splits(task: str, t: dict) -> list[tuple[str, dict]]:
    return [(name, registry.generate(task, {**params, "count": SAMPLE}, torch.Generator().manual_seed(0)))
            for name, params in registry.splits(task, t["data"])]


def arms(scale: str, task: str):
    """Each arm the task trains: a harder split must lie beyond the reach of every arm's deepest budget."""
    for arm in task_config(scale, task)["interventions"]:
        yield pytest.param(scale, task, arm, id=f"{scale}-{task}-{arm}")


# small only: the paper preset keeps the paper's sizes, some of them within its reach (Choices says which)
@pytest.mark.parametrize("scale, task, arm", [p for task in ("prefix_sums", "mazes") for p in arms("small", task)])
def test_every_harder_split_needs_more_than_the_training_budget_reaches(scale, task, arm):
    t = task_config(scale, task)
    (_, train), *harder = sample_splits(task, t)
    check = harder_is_harder(task, t, train, dict(harder), arm)
    assert check["train_max"] <= check["reach"], f"{task} at {scale}: a training instance is out of reach: {check}"
    assert all(m > check["reach"] for m in check["harder_median"].values()), \
        f"{task} at {scale}, {arm}: a harder split is within the training budget's reach: {check}"
    assert check["ok"]


def test_the_reach_counts_every_convolution_of_the_budget():
    """8 iterations of a 2-block cell (5 convolutions each) then the 3-convolution head: 43 pixels."""
    assert training_reach({"train": {"iters": 8}, "model": {"blocks": 2}}) == 43
    assert training_reach({"train": {"iters": 8}, "model": {"blocks": 1}}) == 27


def test_an_arm_with_a_randomized_budget_reaches_as_far_as_its_deepest_batches():
    t = {"train": {"iters": 8}, "model": {"blocks": 1}, "intervention_params": {"budget_min": 4, "budget_max": 12},
         "interventions": ["baseline", "mixed_init", "random_budget", "mixed_init_random_budget", "anti_alignment"]}
    assert reach_by_arm(t) == {"baseline": 27, "mixed_init": 27, "random_budget": 39, "mixed_init_random_budget": 39,
                               "anti_alignment": 27}
    bits40 = {"inputs": np.zeros((4, 40))}
    bits12 = {"inputs": np.zeros((4, 12))}
    assert harder_is_harder("prefix_sums", t, bits12, {"bits40": bits40}, "baseline")["ok"]
    assert not harder_is_harder("prefix_sums", t, bits12, {"bits40": bits40}, "random_budget")["ok"]


def test_the_needed_reach_is_read_off_the_instances():
    """A 12-bit string needs 11 positions; a maze path covering 2 x 2 blocks of 5 raster pixels
    (20 pixels) is 10 long."""
    bits = {"inputs": torch.zeros(4, 12), "targets": torch.zeros(4, 12)}
    assert (needed_reach("prefix_sums", bits) == 11).all()
    targets = torch.zeros(1, 16, 16, dtype=torch.uint8)
    targets[0, 2:4, 2:12] = 1  # 20 path pixels
    assert needed_reach("mazes", {"inputs": None, "targets": targets}).tolist() == [10.0]
    a_harder_split_within_reach = {"inputs": torch.zeros(4, 20), "targets": torch.zeros(4, 20)}
    t = {"train": {"iters": 8}, "model": {"blocks": 1}}
    assert not harder_is_harder("prefix_sums", t, bits, {"bits20": a_harder_split_within_reach})["ok"]
    assert harder_is_harder("prefix_sums", t, bits, {"bits32": {"inputs": np.zeros((4, 32))}})["ok"]


@pytest.mark.parametrize("scale", ["small", "paper"])
def test_song2023_harder_lengths_lie_beyond_the_training_depth_s_reach(scale):
    """Claim 5's upward generalization: a harder length whose last parity the training depth already
    reaches is solved without one extra iteration (16 and 24 bits at depth 16 were: every variant at 1.000)."""
    study = load_scale(scale)["song2023"]["studies"]["other_paradigm"]
    reach = sequence_reach(study["depth"])
    assert study["data"]["train_bits"] - 1 <= reach, f"{scale}: a training string is out of reach"
    assert all(n - 1 > reach for n in study["data"]["harder_bits"]), \
        f"{scale}: a harder length {study['data']['harder_bits']} is within reach ({reach} positions)"


@pytest.mark.parametrize("depth", [1, 3])
def test_song2023_sequence_reach_is_what_the_convolutions_propagate(depth):
    """Flip the first bit and find the farthest position whose logits move: that is the reach. The
    GroupNorms are taken out: their statistics pool every position, but only as per-group means and
    variances, which are blind to order and so cannot carry a prefix's parity to a position; the
    ordered information travels through the convolutions alone."""
    torch.manual_seed(0)
    model = build_model("wt", depth=depth, width=8, in_channels=1, classes=2, dims=1, density=1.0, groups=2,
                        mask_seed=0).double().eval()
    for name, module in list(model.named_modules()):
        if isinstance(module, torch.nn.GroupNorm):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent), attr, torch.nn.Identity())
    x = torch.rand(1, 1, 40, dtype=torch.double) - 0.5
    flipped = x.clone()
    flipped[0, 0, 0] += 1.0
    with torch.no_grad():
        moved = (model(x, depth) - model(flipped, depth)).abs().amax(1)[0] > 1e-12
    assert int(moved.nonzero().max()) == sequence_reach(depth)
