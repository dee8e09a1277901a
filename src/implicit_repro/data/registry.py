"""Every task's dataset splits: their names, generator parameters and generator call.

The Snakefile imports this module to name the data files, so it imports no torch at module level;
the generators are imported only when a split is generated.
"""

from __future__ import annotations

from typing import Callable


def _fmt(value: float) -> str:
    return f"{value:g}"


def _prefix_sums(d: dict) -> list[tuple[str, dict]]:
    return [(f"bits{b}", {"n_bits": b}) for b in (d["train_bits"], *d["harder_bits"])]


def _mazes(d: dict) -> list[tuple[str, dict]]:
    return [(f"size{s}", {"size": s}) for s in (d["train_size"], *d["harder_sizes"])]


def _matrix_inversion(d: dict) -> list[tuple[str, dict]]:
    return [(f"n{d['n']}_c{_fmt(c)}", {"n": d["n"], "c": c}) for c in (d["train_c"], *d["harder_c"])]


def _edge_copy(d: dict) -> list[tuple[str, dict]]:
    low, high = d["train_nodes"]
    train = (f"nodes{low}-{high}", {"min_nodes": low, "max_nodes": high})
    return [train, *((f"nodes{n}", {"min_nodes": n, "max_nodes": n}) for n in d["harder_nodes"])]


def _digits(d: dict) -> list[tuple[str, dict]]:
    low, high = d["train_sigma"]
    train = (f"blur{_fmt(low)}-{_fmt(high)}", {"part": "train", "sigma": [low, high]})
    return [train, *((f"blur{_fmt(s)}", {"part": "test", "sigma": s}) for s in d["harder_sigmas"])]


SPLITS: dict[str, Callable[[dict], list[tuple[str, dict]]]] = {
    "prefix_sums": _prefix_sums,
    "mazes": _mazes,
    "matrix_inversion": _matrix_inversion,
    "edge_copy": _edge_copy,
    "digits": _digits,
}


def splits(task: str, data: dict) -> list[tuple[str, dict]]:
    """(name, generator parameters) of every split: the training split first, then the harder
    ones in the config's order. Each split's ``count`` is the config's ``count`` for training and
    ``harder_count`` (default ``count``) for the others."""
    named = SPLITS[task](data)
    counts = [data["count"]] + [data.get("harder_count", data["count"])] * (len(named) - 1)
    return [(name, {**params, "count": n}) for (name, params), n in zip(named, counts)]


def generate(task: str, params: dict, g) -> dict:
    """The tensors of one split (``params`` as returned by ``splits``)."""
    params = dict(params)
    count = params.pop("count")
    if task == "prefix_sums":
        from implicit_repro.data import prefix_sums

        return prefix_sums.generate(params["n_bits"], count, g)
    if task == "mazes":
        from implicit_repro.data import mazes

        return mazes.generate(params["size"], count, g)
    if task == "matrix_inversion":
        from implicit_repro.data import matrix_inversion

        return matrix_inversion.generate(params["n"], params["c"], count, g)
    if task == "edge_copy":
        from implicit_repro.data import edge_copy

        return edge_copy.generate(params["min_nodes"], params["max_nodes"], count, g)
    if task == "digits":
        from implicit_repro.data import digits

        images, labels = digits.load_sklearn_digits(params["part"])
        sigma = tuple(params["sigma"]) if isinstance(params["sigma"], list) else params["sigma"]
        return digits.generate(images, labels, sigma, count, g)
    raise ValueError(f"no generator for task {task!r}; known: {', '.join(SPLITS)}")
