"""MNIST for the digits task at paper scale: verified download, the split parameters, generation
from the raw IDX files through the CLI, and the download job in the Snakemake DAG.

Every MNIST file here is a small fake the test writes and serves through a file:// URL: nothing is
downloaded from the network.
"""

import hashlib
import json
import re

import pytest
import torch
import yaml

from conftest import ROOT, copy_project, run, tool
from implicit_repro import config
from implicit_repro.cli import main
from implicit_repro.data import digits, idx, registry
from implicit_repro.data.store import load_dataset
from implicit_repro.models import build_model

CONFIG = ROOT / "config/config.yaml"
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"
SIDE = 28
SIZES = {"train": 40, "test": 20}


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def fake_mnist(tmp_path):
    """A folder of four small IDX files laid out like MNIST, and their SHA-256 digests."""
    remote = tmp_path / "remote"
    g = torch.Generator().manual_seed(0)
    for part, (image_file, label_file) in registry.MNIST_FILES.items():
        n = SIZES[part]
        idx.write_idx(remote / image_file, torch.randint(0, 256, (n, SIDE, SIDE), generator=g, dtype=torch.uint8))
        idx.write_idx(remote / label_file, torch.randint(0, 10, (n,), generator=g, dtype=torch.uint8))
    return remote, {name: sha256(remote / name) for name in registry.MNIST_FILE_NAMES}


def download_cli(remote, checksums, out_dir):
    main(["download-mnist", "--base-url", remote.as_uri() + "/", "--checksums", json.dumps(checksums),
          "--out-dir", str(out_dir)])


def load(overrides=None, **top):
    return config.load(CONFIG, SCHEMA, {**top, "overrides": overrides or {}})


# ---------------------------------------------------------------- download


def test_download_cli_fetches_every_file_verified(fake_mnist, tmp_path):
    remote, checksums = fake_mnist
    out = tmp_path / "raw"
    download_cli(remote, checksums, out)
    assert sorted(p.name for p in out.iterdir()) == sorted(registry.MNIST_FILE_NAMES)
    for name in registry.MNIST_FILE_NAMES:
        assert (out / name).read_bytes() == (remote / name).read_bytes()
    download_cli(remote, checksums, out)  # already there and verified: nothing to do


def test_download_cli_refuses_a_wrong_digest_and_keeps_nothing_of_it(fake_mnist, tmp_path, capsys):
    remote, checksums = fake_mnist
    wrong = "t10k-images-idx3-ubyte.gz"
    checksums = {**checksums, wrong: "0" * 64}
    out = tmp_path / "raw"
    with pytest.raises(SystemExit) as exc:
        download_cli(remote, checksums, out)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert wrong in err and "discarded" in err and "checksum in the config" in err
    assert not (out / wrong).exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_download_needs_every_checksum_before_fetching_any_file(fake_mnist, tmp_path, capsys):
    remote, checksums = fake_mnist
    del checksums["t10k-labels-idx1-ubyte.gz"]
    out = tmp_path / "raw"
    with pytest.raises(SystemExit):
        download_cli(remote, checksums, out)
    assert "t10k-labels-idx1-ubyte.gz" in capsys.readouterr().err
    assert not out.exists() or not list(out.iterdir())


def test_download_names_the_url_it_cannot_fetch(tmp_path, capsys):
    checksums = dict.fromkeys(registry.MNIST_FILE_NAMES, "a" * 64)
    with pytest.raises(SystemExit):
        download_cli(tmp_path / "nowhere", checksums, tmp_path / "raw")
    assert "cannot be fetched" in capsys.readouterr().err


# ---------------------------------------------------------------- split parameters


DATA = {"train_sigma": [0.5, 1.0], "harder_sigmas": [2.0], "count": 30, "harder_count": 20}


def test_sklearn_split_parameters_are_unchanged_by_the_mnist_settings():
    """The sklearn parameters (and so the committed small-scale split files) are those of before MNIST."""
    small = load(scale="small")["anil2022"]["digits"]["data"]
    assert small["source"] == "sklearn"
    assert registry.splits("digits", small) == [
        ("blur0.5-1", {"part": "train", "sigma": [0.5, 1.0], "count": 1347}),
        ("blur1.5", {"part": "test", "sigma": 1.5, "count": 450}),
        ("blur2", {"part": "test", "sigma": 2.0, "count": 450}),
    ]
    assert all(registry.raw_inputs("digits", p) == [] for _, p in registry.splits("digits", small))


def test_mnist_split_parameters_carry_the_source_folder_and_digests():
    checksums = {name: f"{i}" * 64 for i, name in enumerate(registry.MNIST_FILE_NAMES)}
    sk = dict(registry.splits("digits", {**DATA, "source": "sklearn"}))
    mn = dict(registry.splits("digits", {**DATA, "source": "mnist", "mnist": {"base_url": "x/", "checksums": checksums}}))
    assert list(mn) == list(sk)  # the same split names; the parameters tell them apart
    train, test = mn["blur0.5-1"], mn["blur2"]
    assert train != sk["blur0.5-1"] and test != sk["blur2"]
    assert train["source"] == "mnist" and train["raw"] == registry.MNIST_RAW_DIR
    assert train["sha256"] == {f: checksums[f] for f in registry.MNIST_FILES["train"]}
    assert test["sha256"] == {f: checksums[f] for f in registry.MNIST_FILES["test"]}
    assert registry.raw_inputs("digits", test) == [f"{registry.MNIST_RAW_DIR}/{f}" for f in registry.MNIST_FILES["test"]]
    with pytest.raises(ValueError, match="unknown digits source"):
        registry.splits("digits", {**DATA, "source": "emnist"})


# ---------------------------------------------------------------- generation through the CLI


def mnist_params(raw, checksums):
    data = {**DATA, "source": "mnist", "mnist": {"base_url": "unused/", "checksums": checksums}}
    return {name: {**params, "raw": str(raw)} for name, params in registry.splits("digits", data)}


def generate_cli(split, params, out):
    main(["generate", "--paper", "anil2022", "--task", "digits", "--split", split,
          "--params", json.dumps(params, sort_keys=True), "--out", str(out)])


def test_digits_splits_are_generated_from_the_downloaded_mnist_files(fake_mnist, tmp_path):
    remote, checksums = fake_mnist
    raw = tmp_path / "raw"
    download_cli(remote, checksums, raw)
    for split, params in mnist_params(raw, checksums).items():
        generate_cli(split, params, tmp_path / f"{split}.pt")
        data = load_dataset(tmp_path / f"{split}.pt")
        images, labels = digits.load_mnist(raw, params["part"], checksums)
        n = params["count"]
        assert data["inputs"].shape == (n, 1, SIDE, SIDE) and data["targets"].shape == (n,)
        assert torch.equal(data["targets"], labels[data["source_index"]])
        sharp = images[data["source_index"]].unsqueeze(1)
        assert torch.allclose(data["inputs"], digits.blur(sharp, data["sigma"]), atol=1e-6)
        assert data["meta"]["params"]["source"] == "mnist"
    # The 28x28 inputs go through the digits model as they are.
    model = build_model("digits", width=4, blocks=1)
    assert model(data["inputs"][:3], iters=2).shape == (3, 10)


def test_generation_refuses_a_raw_file_changed_after_download(fake_mnist, tmp_path, capsys):
    remote, checksums = fake_mnist
    raw = tmp_path / "raw"
    download_cli(remote, checksums, raw)
    tampered = raw / "t10k-labels-idx1-ubyte.gz"
    idx.write_idx(tampered, torch.zeros(SIZES["test"], dtype=torch.uint8))  # a valid IDX file, other labels
    with pytest.raises(SystemExit):
        generate_cli("blur2", mnist_params(raw, checksums)["blur2"], tmp_path / "blur2.pt")
    err = capsys.readouterr().err
    assert "t10k-labels-idx1-ubyte.gz" in err and "does not match" in err
    assert not (tmp_path / "blur2.pt").exists()


# ---------------------------------------------------------------- config


def test_paper_scale_reads_mnist_and_the_smaller_scales_sklearn():
    paper = load(scale="paper")["anil2022"]["digits"]
    assert paper["data"]["source"] == "mnist"
    assert (paper["data"]["count"], paper["data"]["harder_count"]) == (60000, 10000)
    assert set(paper["data"]["mnist"]["checksums"]) == set(registry.MNIST_FILE_NAMES)
    assert paper["data"]["mnist"]["base_url"].endswith("/")
    for scale in ("smoke", "small"):
        assert load(scale=scale)["anil2022"]["digits"]["data"]["source"] == "sklearn"


def test_schema_lists_exactly_the_mnist_files_of_the_registry():
    schema = yaml.safe_load((ROOT / "src/implicit_repro/papers/anil2022/schema.yaml").read_text())
    assert set(schema["$defs"]["mnist"]["properties"]["checksums"]["properties"]) == set(registry.MNIST_FILE_NAMES)


CHECKSUMS_KEY = "anil2022.digits.data.mnist.checksums"


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"source": "emnist"}, "key `anil2022.digits.data.source`"),
        ({"mnist": {"base_url": "https://example.org/mnist"}}, "key `anil2022.digits.data.mnist.base_url`"),
        ({"mnist": {"checksums": {"t10k-images-idx3-ubyte.gz": "abc"}}},
         f"key `{CHECKSUMS_KEY}.t10k-images-idx3-ubyte.gz`"),
        ({"mnist": {"checksums": {"t10k-images-idx3-ubyte.gz": "A" * 64}}},
         f"key `{CHECKSUMS_KEY}.t10k-images-idx3-ubyte.gz`"),
        ({"mnist": {"checksums": {"t10k-images.gz": "a" * 64}}}, f"unknown key `{CHECKSUMS_KEY}.t10k-images.gz`"),
    ],
)
def test_broken_mnist_settings_name_the_key(overrides, fragment):
    with pytest.raises(config.ConfigError) as err:
        load({"anil2022": {"digits": {"data": overrides}}}, scale="paper")
    assert fragment in str(err.value)


def raw_config():
    return yaml.safe_load(CONFIG.read_text())


def test_mnist_source_needs_every_checksum():
    raw = raw_config()
    del raw["defaults"]["anil2022"]["digits"]["data"]["mnist"]["checksums"]["train-labels-idx1-ubyte.gz"]
    config.resolve({**raw, "scale": "small"}, config.load_schema(SCHEMA))  # sklearn: not read, not needed
    with pytest.raises(config.ConfigError) as err:
        config.resolve({**raw, "scale": "paper"}, config.load_schema(SCHEMA))
    assert f"`{CHECKSUMS_KEY}.train-labels-idx1-ubyte.gz` is required" in str(err.value)


def test_mnist_source_needs_the_mnist_settings():
    raw = raw_config()
    del raw["defaults"]["anil2022"]["digits"]["data"]["mnist"]
    config.resolve({**raw, "scale": "small"}, config.load_schema(SCHEMA))
    with pytest.raises(config.ConfigError) as err:
        config.resolve({**raw, "scale": "paper"}, config.load_schema(SCHEMA))
    assert "`anil2022.digits.data.mnist` is required" in str(err.value)


# ---------------------------------------------------------------- workflow


def dry_run_jobs(project, scale):
    """The dry run's jobs for the `data` target: (rule, inputs, outputs) of each."""
    proc = run([tool("snakemake"), "data", "-n", "--cores", "1", "--config", f"scale={scale}"], cwd=project)
    jobs = []
    for block in re.split(r"^\[.*\]\n", proc.stdout, flags=re.M)[1:]:
        rule = re.search(r"^(?:local)?rule (\w+):", block, re.M).group(1)
        files = {key: re.search(rf"^\s+{key}: (.*)$", block, re.M) for key in ("input", "output")}
        jobs.append((rule, *(m.group(1).split(", ") if m else [] for m in files.values())))
    return jobs


def test_paper_dag_downloads_each_mnist_file_once_and_builds_the_digits_splits_from_them(project):
    raw = [f"{registry.MNIST_RAW_DIR}/{name}" for name in registry.MNIST_FILE_NAMES]
    jobs = dry_run_jobs(project, "paper")
    downloads = [job for job in jobs if job[0] == "download" and job[2][0].startswith(registry.MNIST_RAW_DIR)]
    assert sorted(out for job in downloads for out in job[2]) == sorted(raw)
    digits_jobs = [job for job in jobs if job[0] == "generate" and job[2][0].startswith("data/anil2022/digits/")]
    assert len(digits_jobs) == 3
    for _, inputs, (output,) in digits_jobs:
        split = output.rsplit("/", 1)[1].rsplit("-", 1)[0]  # blur<sigma or range>-<id>.pt
        part = "train" if "-" in split else "test"  # the training split names a sigma range
        assert inputs == [f"{registry.MNIST_RAW_DIR}/{f}" for f in registry.MNIST_FILES[part]], output
    others = [job for job in jobs if job[0] == "generate" and job not in digits_jobs
              and job[2][0].startswith("data/anil2022/")]
    assert others and all(inputs == [] for _, inputs, _ in others)

    small = dry_run_jobs(project, "small")
    assert not [job for job in small if job[0] == "download"]
    assert all(inputs == [] for rule, inputs, _ in small if rule == "generate")


@pytest.mark.slow
def test_snakemake_downloads_verified_mnist_and_generates_a_digits_split(fake_mnist, tmp_path):
    remote, checksums = fake_mnist
    project = copy_project(tmp_path / "project")
    cfg = raw_config()
    cfg["scale"] = "paper"
    data = cfg["presets"]["paper"]["anil2022"]["digits"]["data"]
    data.update(count=30, harder_count=20, mnist={"base_url": remote.as_uri() + "/", "checksums": checksums})
    # Evaluate no more examples than the tiny splits hold (a larger count is a config error).
    cfg["presets"]["paper"]["anil2022"]["digits"].setdefault("eval", {}).update(n_examples=20, n_in_distribution=5)
    (project / "config/config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    from implicit_repro.papers.anil2022 import grid

    section = config.resolve(cfg, config.load_schema(ROOT / "workflow/schemas/config.schema.yaml"))["anil2022"]
    target = grid.dataset(section, "digits", f"blur{data['harder_sigmas'][-1]:g}").path  # the blurriest split
    run([tool("snakemake"), "--cores", "1", target], cwd=project)
    # The harder split is built from the test part: its two files are fetched, and only they.
    for name in registry.MNIST_FILES["test"]:
        assert (project / registry.MNIST_RAW_DIR / name).read_bytes() == (remote / name).read_bytes()
    assert not any((project / registry.MNIST_RAW_DIR / name).exists() for name in registry.MNIST_FILES["train"])
    data = load_dataset(project / target)
    assert data["inputs"].shape == (20, 1, SIDE, SIDE) and data["meta"]["params"]["source"] == "mnist"
    for name in registry.MNIST_FILES["test"]:
        assert "verified" in (project / f"logs/data/raw/mnist/{name}.log").read_text()
