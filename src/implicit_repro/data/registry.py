"""Every task's dataset splits: their names, generator parameters and generator call.

The Snakefile imports this module to name the data files (and the raw files a split is built
from), so it imports no torch at module level; the generators are imported only when a split is
generated.
"""

from __future__ import annotations

from typing import Callable

from implicit_repro.errors import DatasetError

# The raw MNIST files (the "blurry MNIST" digits at paper scale): where the pipeline downloads them,
# and which two files each part is read from.
MNIST_RAW_DIR = "data/raw/mnist"
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
MNIST_FILE_NAMES = tuple(name for files in MNIST_FILES.values() for name in files)
DIGITS_SOURCES = ("sklearn", "mnist")


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
    named = [(f"blur{_fmt(low)}-{_fmt(high)}", {"part": "train", "sigma": [low, high]})]
    named += [(f"blur{_fmt(s)}", {"part": "test", "sigma": s}) for s in d["harder_sigmas"]]
    source = d.get("source", "sklearn")
    if source == "sklearn":
        # No `source` key: the parameters (and so the split files) stay those of before MNIST.
        return named
    if source != "mnist":
        raise ValueError(f"unknown digits source {source!r}; known: {', '.join(DIGITS_SOURCES)}")
    # The raw folder and the digests of the two files read are part of the parameters: a split
    # built from MNIST differs in its parameters (and its file) from the sklearn one, and names the
    # exact verified files it was built from.
    checksums = d["mnist"]["checksums"]
    return [
        (name, {**params, "source": "mnist", "raw": MNIST_RAW_DIR,
                "sha256": {f: checksums[f] for f in MNIST_FILES[params["part"]]}})
        for name, params in named
    ]


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


def raw_inputs(task: str, params: dict) -> list[str]:
    """The downloaded files a split (``params`` as returned by ``splits``) is generated from."""
    if task == "digits" and params.get("source") == "mnist":
        return [f"{params['raw']}/{name}" for name in params["sha256"]]
    return []


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

        source = params.get("source", "sklearn")
        if source == "mnist":  # each file is verified against its SHA-256 before it is opened
            images, labels = digits.load_mnist(params["raw"], params["part"], params["sha256"])
        elif source == "sklearn":
            images, labels = digits.load_sklearn_digits(params["part"])
        else:
            raise DatasetError(f"unknown digits source {source!r}; known: {', '.join(DIGITS_SOURCES)}. "
                               "Set anil2022.digits.data.source in config/config.yaml.")
        sigma = tuple(params["sigma"]) if isinstance(params["sigma"], list) else params["sigma"]
        return digits.generate(images, labels, sigma, count, g)
    raise DatasetError(f"no generator for task {task!r}; known tasks: {', '.join(SPLITS)}.")
