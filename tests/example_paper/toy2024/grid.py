"""toy2024's jobs: the prefix-sum datasets and one run per seed. Imported by the Snakefile: no torch."""

from __future__ import annotations

from implicit_repro.data.registry import splits
from implicit_repro.errors import ConfigError
from implicit_repro.papers import Dataset, Run
from implicit_repro.specs import check_eval_counts, check_lr_milestones
from implicit_repro.work import batched_steps

PAPER, TASK = "toy2024", "prefix_sums"


def _datasets(section: dict) -> list[Dataset]:
    return [Dataset(PAPER, TASK, name, params) for name, params in splits(TASK, section["data"])]


def datasets(section: dict) -> dict[str, Dataset]:
    return {d.path: d for d in _datasets(section)}


def downloads(section: dict) -> list:
    return []


def runs(section: dict) -> list[Run]:
    train_file, harder = _datasets(section)
    out = []
    for seed in section["seeds"]:
        # Only what this paper uses: no intervention, gradient or divergence settings (specs.DEFAULTS).
        spec = {"paper": PAPER, "task": TASK, "seed": seed, "model": section["model"],
                "data": {"train_fraction": section["data"]["train_fraction"]}, "train": section["train"]}
        splits_ = [["in_distribution", train_file.path], [harder.split, harder.path]]
        out.append(Run(PAPER, TASK, "tied", seed, train_spec=spec,
                       eval_spec={**spec, "eval": section["eval"], "splits": splits_}, train_data=train_file.path,
                       eval_data=tuple(sorted({train_file.path, harder.path}))))
    return out


def item_runs(section: dict, item: str | None) -> list[Run]:
    return runs(section)


def check(section: dict, where: str) -> None:
    def fail(key: str, why: str) -> None:
        raise ConfigError(f"{where}: key `toy2024.{key}` {why}")

    check_lr_milestones(section["train"], fail)
    check_eval_counts(section["data"], section["eval"], fail, "toy2024")
    if section["data"]["harder_bits"][0] <= section["data"]["train_bits"]:
        fail("data.harder_bits", "must be longer than `data.train_bits`.")


def work(section: dict, run: Run) -> dict[str, float]:
    m, tr, ev = section["model"], section["train"], section["eval"]
    unit = m["width"] ** 2 * m["blocks"] * section["data"]["train_bits"]
    train = tr["epochs"] * batched_steps(section["data"]["count"], tr["batch_size"], 3 * tr["iters"], unit)
    evaluate = 2 * batched_steps(ev["n_examples"], ev["batch_size"], ev["max_iters"], unit)
    return {"train": train, "evaluate": evaluate, "activations": tr["batch_size"] * tr["iters"] * m["width"]}
