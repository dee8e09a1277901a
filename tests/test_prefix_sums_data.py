import pytest
import torch

from implicit_repro.cli import main
from implicit_repro.data import prefix_sums
from implicit_repro.data.store import load_dataset, save_dataset
from implicit_repro.seeding import derive_seed, generator


def test_targets_are_prefix_parity_per_position():
    data = prefix_sums.generate(30, 200, generator(1))
    bits, targets = data["inputs"].tolist(), data["targets"].tolist()
    for row_bits, row_targets in zip(bits, targets):
        parity = 0
        for b, t in zip(row_bits, row_targets):
            parity ^= b
            assert t == parity


def test_short_strings_are_distinct_and_capped_at_two_to_the_n():
    data = prefix_sums.generate(10, 5000, generator(2))
    assert len(data["inputs"]) == 2**10
    assert len({tuple(r) for r in data["inputs"].tolist()}) == 2**10
    data = prefix_sums.generate(16, 3000, generator(3))
    assert len({tuple(r) for r in data["inputs"].tolist()}) == 3000


def test_short_strings_are_written_lsb_first():
    data = prefix_sums.generate(4, 16, generator(4))
    values = {sum(b << i for i, b in enumerate(row)) for row in data["inputs"].tolist()}
    assert values == set(range(16))


def test_long_strings_are_iid_bits():
    data = prefix_sums.generate(64, 2000, generator(5))
    assert abs(data["inputs"].float().mean().item() - 0.5) < 0.02


def test_same_seed_gives_same_bytes(tmp_path):
    for name in ("a", "b"):
        save_dataset(tmp_path / f"{name}.pt", prefix_sums.generate(20, 500, generator("x", 20)), {"bits": 20})
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "b.pt").read_bytes()
    other = prefix_sums.generate(20, 500, generator("y", 20))
    assert not torch.equal(other["inputs"], load_dataset(tmp_path / "a.pt")["inputs"])


def test_derived_seeds_depend_on_every_part():
    assert derive_seed("anil2022", "prefix_sums", 1) == derive_seed("anil2022", "prefix_sums", 1)
    assert derive_seed("anil2022", "prefix_sums", 1) != derive_seed("anil2022", "prefix_sums", 2)


def test_model_input_is_centered_with_a_channel_axis():
    x = prefix_sums.model_input(torch.tensor([[0, 1, 1]], dtype=torch.uint8))
    assert x.shape == (1, 1, 3)
    assert x.tolist() == [[[-0.5, 0.5, 0.5]]]


def test_generate_cli_names_an_unknown_task_without_a_traceback(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--paper", "anil2022", "--task", "sudoku", "--split", "x",
              "--params", '{"count": 4}', "--out", str(tmp_path / "x.pt")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "sudoku" in err and "prefix_sums" in err and "Traceback" not in err
    assert not (tmp_path / "x.pt").exists()
