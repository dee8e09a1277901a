from collections import deque

import pytest
import torch

from implicit_repro.data import mazes
from implicit_repro.data.store import load_dataset, save_dataset
from implicit_repro.models import build_model
from implicit_repro.seeding import generator
from implicit_repro.tasks import get_task, two_class_argmax

WHITE, GREEN, RED = (1, 1, 1), (0, 1, 0), (1, 0, 0)


def raster(image_mask: torch.Tensor) -> torch.Tensor:
    """Undo the blow-up: one pixel per 2x2 block, border dropped -> (..., 2c+1, 2c+1)."""
    return image_mask[..., 1:-1:2, 1:-1:2]


def blow_up(r: torch.Tensor, border) -> torch.Tensor:
    big = r.repeat_interleave(2, -2).repeat_interleave(2, -1)
    return torch.nn.functional.pad(big, (1, 1, 1, 1), value=border)


def colour_cells(inputs: torch.Tensor, colour) -> list[tuple[int, int]]:
    """Raster cells of one example whose 2x2 block has the given colour."""
    hit = torch.stack([inputs[ch] == v for ch, v in enumerate(colour)]).all(0)
    return [tuple(p) for p in torch.nonzero(raster(hit)).tolist()]


def bfs_path(open_: torch.Tensor, start, goal) -> set:
    """Shortest path start -> goal over the open raster pixels, by breadth-first search."""
    prev, todo = {start: None}, deque([start])
    while todo:
        p = todo.popleft()
        for q in ((p[0] - 1, p[1]), (p[0] + 1, p[1]), (p[0], p[1] - 1), (p[0], p[1] + 1)):
            if q not in prev and open_[q]:
                prev[q] = p
                todo.append(q)
    assert goal in prev, "goal not reachable from start"
    path, p = set(), goal
    while p is not None:
        path.add(p)
        p = prev[p]
    return path, set(prev)


@pytest.fixture(scope="module")
def small():
    return mazes.generate(9, 300, generator("mazes-test", 9))


@pytest.mark.parametrize("size", [3, 9, 13, 21, 59])
def test_image_side_is_2s_plus_6(size):
    data = mazes.generate(size, 3, generator(size))
    side = 2 * size + 6
    assert data["inputs"].shape == (3, 3, side, side) and data["inputs"].dtype == torch.uint8
    assert data["targets"].shape == (3, side, side) and data["targets"].dtype == torch.uint8
    assert mazes.image_side(9) == 24 and mazes.image_side(13) == 32 and mazes.image_side(59) == 124


@pytest.mark.parametrize("size", [0, 1, 8, 10])
def test_size_must_be_odd_with_two_cells(size):
    with pytest.raises(ValueError, match="odd"):
        mazes.generate(size, 1, generator(0))


def test_walls_are_exactly_where_the_raster_says(small):
    open_img = mazes.non_wall_mask(small["inputs"])
    r = raster(open_img)
    assert torch.equal(blow_up(r, False), open_img)  # 2x2 blocks inside a 1-pixel wall border
    assert not r[:, 0].any() and not r[:, -1].any() and not r[:, :, 0].any() and not r[:, :, -1].any()
    assert r[:, 1::2, 1::2].all()  # every cell centre is corridor
    assert not r[:, ::2, ::2].any()  # lattice corners between cells are always wall


def test_maze_is_a_spanning_tree_of_the_cells(small):
    r = raster(mazes.non_wall_mask(small["inputs"]))
    c = (9 + 1) // 2
    passages = r[:, 1::2, 2:-1:2].flatten(1).sum(1) + r[:, 2:-1:2, 1::2].flatten(1).sum(1)
    assert (passages == c * c - 1).all()  # a connected graph with n-1 edges is a tree
    for e in range(20):
        start = colour_cells(small["inputs"][e], GREEN)[0]
        _, reached = bfs_path(r[e], start, start)
        assert sum(p[0] % 2 == 1 and p[1] % 2 == 1 for p in reached) == c * c  # connected


def test_target_is_the_bfs_path_from_start_to_goal(small):
    for e in range(60):
        x, t = small["inputs"][e], small["targets"][e]
        (start,), (goal,) = colour_cells(x, GREEN), colour_cells(x, RED)
        assert start != goal
        path, _ = bfs_path(raster(mazes.non_wall_mask(x[None]))[0], start, goal)
        expected = torch.zeros(raster(t).shape, dtype=torch.uint8)
        for p in path:
            expected[p] = 1
        wall = ~mazes.non_wall_mask(x[None])[0]
        assert torch.equal(torch.where(wall, mazes.WALL, blow_up(expected, 0)), t.long())
        assert mazes.path_mask(t)[wall].sum() == 0


def test_start_goal_and_corridor_colours(small):
    x, t = small["inputs"], small["targets"]
    assert set(x.unique().tolist()) == {0, 1}
    for e in range(50):
        green, red = colour_cells(x[e], GREEN), colour_cells(x[e], RED)
        assert len(green) == 1 and len(red) == 1
        assert green[0][0] % 2 == 1 and green[0][1] % 2 == 1  # on a cell, not a passage
        for (i, j) in green + red:
            assert (t[e, 2 * i + 1 : 2 * i + 3, 2 * j + 1 : 2 * j + 3] == 1).all()
    n_green = torch.stack([x[:, ch] == v for ch, v in enumerate(GREEN)]).all(0).flatten(1).sum(1)
    n_red = torch.stack([x[:, ch] == v for ch, v in enumerate(RED)]).all(0).flatten(1).sum(1)
    n_white = torch.stack([x[:, ch] == v for ch, v in enumerate(WHITE)]).all(0).flatten(1).sum(1)
    assert (n_green == 4).all() and (n_red == 4).all()  # exactly one 2x2 block each
    assert torch.equal(n_white + 8, mazes.non_wall_mask(x).flatten(1).sum(1))  # all else white


def test_start_and_goal_cover_every_cell(small):
    starts = {colour_cells(x, GREEN)[0] for x in small["inputs"]}
    goals = {colour_cells(x, RED)[0] for x in small["inputs"]}
    assert len(starts) == len(goals) == 25


def test_layouts_are_random_not_one_per_root(small):
    # A backtracker that always took the first free neighbour would give one layout per root cell.
    layouts = {bytes(m.flatten().tolist()) for m in mazes.non_wall_mask(small["inputs"]).to(torch.uint8)}
    assert len(layouts) > 290


def test_carved_by_depth_first_search_not_another_spanning_tree():
    # The recursive backtracker makes long corridors: ~12% of cells are dead ends here
    # (measured), against ~29% for randomized Prim (measured) and ~30% for Kruskal or Wilson.
    r = raster(mazes.non_wall_mask(mazes.generate(21, 100, generator("dfs"))["inputs"])).int()
    padded = torch.nn.functional.pad(r, (1, 1, 1, 1))
    degree = sum(padded[:, 1 + di : padded.shape[1] - 1 + di, 1 + dj : padded.shape[2] - 1 + dj]
                 for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)))[:, 1::2, 1::2]
    assert (degree == 1).float().mean() < 0.16


def test_same_seed_gives_same_bytes_and_other_seeds_differ(tmp_path):
    for name in ("a", "b"):
        save_dataset(tmp_path / f"{name}.pt", mazes.generate(13, 50, generator("m", 13)), {"size": 13})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    other = mazes.generate(13, 50, generator("m", 14))
    assert not torch.equal(other["inputs"], load_dataset(tmp_path / "a.pt")["inputs"])


def test_model_input_and_non_wall_mask():
    data = mazes.generate(9, 4, generator(1))
    x = mazes.model_input(data["inputs"])
    assert x.dtype == torch.float32 and torch.equal(x, data["inputs"].float())
    assert torch.equal(mazes.non_wall_mask(x), mazes.non_wall_mask(data["inputs"]))
    assert torch.equal(mazes.non_wall_mask(data["inputs"]), data["targets"] != mazes.WALL)


@pytest.mark.parametrize("size", [9, 13])
def test_model_maps_images_to_two_logits_per_pixel(size):
    model = build_model("mazes", width=8, blocks=2)
    side = mazes.image_side(size)
    x = torch.rand(2, 3, side, side)
    assert model(x, iters=3).shape == (2, 2, side, side)
    assert model.state_shape(x) == (2, 8, side, side)


def test_parameter_count_matches_the_released_model():
    n = sum(p.numel() for p in build_model("mazes", width=128, blocks=2).parameters())
    # inject 131*128*9 + 4 block convs 128*128*9 + head (128*32 + 32*8 + 8*2)*9, no biases
    assert n == 780_048
    assert abs(n - 0.78e6) / 0.78e6 < 0.01


@pytest.mark.parametrize("shape", [(64, 2, 5, 5), (64, 2, 12)])  # maze pixels, prefix-sum positions
def test_two_class_argmax_is_argmax_nan_and_ties_included(shape):
    g = torch.Generator().manual_seed(0)
    logits = torch.randint(-2, 3, shape, generator=g).float()  # many ties
    nan = torch.rand(logits.shape, generator=g) < 0.2
    logits[nan] = float("nan")  # NaN in either class, or both
    assert torch.equal(two_class_argmax(logits), logits.argmax(1))


def test_loss_and_metric_ignore_walls():
    task = get_task("mazes")
    data = mazes.generate(9, 8, generator(2))
    y = task.target(data["targets"])
    wall = y == mazes.WALL
    perfect = torch.stack([(y == 0).float(), (y == 1).float()], 1) * 4.0  # wall pixels: logits 0
    assert task.correct(perfect, y).all()

    noisy = perfect + torch.randn(perfect.shape, generator=torch.Generator().manual_seed(0)) * 0.1
    scrambled = noisy.clone()
    scrambled[:, 0][wall], scrambled[:, 1][wall] = 100.0, -100.0
    assert torch.equal(task.loss(noisy, y), task.loss(scrambled, y))
    assert torch.equal(task.correct(noisy, y), task.correct(scrambled, y))

    # the loss is the mean over non-wall pixels only
    per_pixel = torch.nn.functional.cross_entropy(noisy, y.clamp(max=1), reduction="none")
    assert torch.allclose(task.loss(noisy, y), per_pixel[~wall].mean())

    # one wrong non-wall pixel makes that example wrong, and only that one
    wrong = perfect.clone()
    i, j = torch.nonzero(~wall[3])[0].tolist()
    wrong[3, :, i, j] = wrong[3, :, i, j].flip(0)
    assert task.correct(wrong, y).tolist() == [k != 3 for k in range(8)]
    assert task.loss(wrong, y) > task.loss(perfect, y)
