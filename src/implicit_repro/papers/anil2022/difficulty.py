"""Is a harder split harder? For the tasks where it can be computed, how far information must travel
to solve an instance, against how far the training budget of iterations carries it.

Claim 1 says that more test-time iterations solve harder instances. That means something only if the
harder instances need more computation than training provided: an instance that the receptive field
of the training budget already covers can be solved without a single extra iteration, so a gain there
is not upward generalization. Every convolution of the tasks' cells has kernel 3 and moves
information one position (pixel) per layer.

- prefix sums: the parity at the last position of an n-bit string depends on the first bit, n - 1
  positions away;
- mazes: whether a corridor pixel lies on the path depends on both ends of the path; information
  travels along the corridor, so an instance needs about the path's length in pixels (each raster
  pixel of the maze is a 2x2 block, so a path covering p pixels is p / 2 long).

An arm trained with a randomized budget (random_budget) trains some batches at ``budget_max``
iterations, so its reach is that of ``budget_max``, farther than the fixed budget's.

tests/test_difficulty.py checks the committed scale (small) with these, arm by arm: every training
instance within the training reach, and the typical (median) instance of every harder split beyond it. The paper
preset keeps the paper's sizes, some of which its longer training budget already reaches; the
README's Choices say which.
"""

from __future__ import annotations

import numpy as np

from implicit_repro.interventions import get_intervention

HEAD_CONVS = 3  # the readout heads of both tasks: three 3-wide convolutions after the last iteration


def convs_per_iteration(blocks: int) -> int:
    """The injection convolution, then two per residual block."""
    return 1 + 2 * blocks


def training_iters(task_cfg: dict, intervention: str = "baseline") -> int:
    """The most iterations an arm trains with: the fixed budget, or for a randomized budget its
    ``budget_max`` (some batches of such an arm train that deep, so its models may have learned to
    carry information that far)."""
    if get_intervention(intervention).budget == "random":
        return max(task_cfg["train"]["iters"], task_cfg["intervention_params"]["budget_max"])
    return task_cfg["train"]["iters"]


def training_reach(task_cfg: dict, intervention: str = "baseline") -> int:
    """Positions (pixels) information travels through an arm's deepest training budget and the head."""
    return training_iters(task_cfg, intervention) * convs_per_iteration(task_cfg["model"]["blocks"]) + HEAD_CONVS


def reach_by_arm(task_cfg: dict) -> dict[str, int]:
    """The training reach of each intervention the task trains."""
    return {i: training_reach(task_cfg, i) for i in task_cfg["interventions"]}


def needed_reach(task: str, data: dict) -> np.ndarray:
    """Per instance of a stored dataset (``inputs``, ``targets``): how far information must travel."""
    if task == "prefix_sums":
        n_bits = data["inputs"].shape[-1]
        return np.full(len(data["inputs"]), n_bits - 1)
    if task == "mazes":
        from implicit_repro.data.mazes import path_mask
        return (path_mask(data["targets"]).flatten(1).sum(1) / 2).numpy()
    raise ValueError(f"no reach is defined for task {task!r} (prefix_sums and mazes have one)")


def harder_is_harder(task: str, task_cfg: dict, train: dict, harder: dict[str, dict],
                     intervention: str = "baseline") -> dict:
    """The check of the module docstring for one arm: ``{"reach", "train_max", "harder_median": {split:
    ...}, "ok"}``."""
    reach = training_reach(task_cfg, intervention)
    train_max = float(needed_reach(task, train).max())
    medians = {name: float(np.median(needed_reach(task, data))) for name, data in harder.items()}
    return {"reach": reach, "train_max": train_max, "harder_median": medians,
            "ok": train_max <= reach and all(m > reach for m in medians.values())}
