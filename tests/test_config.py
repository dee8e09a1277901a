import pytest
import yaml

from conftest import ROOT, run, tool
from implicit_repro import config
from implicit_repro.errors import ConfigError

CONFIG = ROOT / "config/config.yaml"
SCHEMA = ROOT / "workflow/schemas/config.schema.yaml"


def load(overrides=None, **top):
    return config.load(CONFIG, SCHEMA, {**top, "overrides": overrides or {}})


@pytest.mark.parametrize("scale", config.SCALES)
def test_every_scale_resolves(scale):
    cfg = load(scale=scale)
    assert cfg["scale"] == scale
    assert cfg["anil2022"]["prefix_sums"]["seeds"]


def test_presets_change_only_what_they_name():
    small, smoke = load(scale="small"), load(scale="smoke")
    assert smoke["anil2022"]["prefix_sums"]["data"]["train_bits"] == 8
    assert smoke["anil2022"]["prefix_sums"]["train"]["batch_size"] == small["anil2022"]["prefix_sums"]["train"]["batch_size"]


def test_command_line_strings_get_their_types_back():
    cfg = load({"anil2022": {"prefix_sums": {"train": {"epochs": "3", "lr": "1e-3", "lr_milestones": ["2"]},
                                      "seeds": ["4", "5"]}}})
    t = cfg["anil2022"]["prefix_sums"]
    assert t["train"]["epochs"] == 3 and t["train"]["lr"] == 0.001 and t["seeds"] == [4, 5]


@pytest.mark.parametrize(
    "overrides, top, fragment",
    [
        ({"anil2022": {"prefix_sums": {"train": {"epochs": "many"}}}}, {}, "anil2022.prefix_sums.train.epochs"),
        ({"anil2022": {"prefix_sums": {"train": {"epochs": 0}}}}, {}, "anil2022.prefix_sums.train.epochs"),
        ({"anil2022": {"prefix_sums": {"train": {"epoch": 3}}}}, {}, "unknown key `anil2022.prefix_sums.train.epoch`"),
        ({"anil2022": {"prefix_sums": {"interventions": ["baseline", "telepathy"]}}}, {},
         "anil2022.prefix_sums.interventions.1"),
        ({"anil2022": {"prefix_sums": {"data": {"train_fraction": 1.5}}}}, {}, "anil2022.prefix_sums.data.train_fraction"),
        ({"anil2022": {"prefix_sums": {"eval": {"max_iters": 2}}}}, {}, "anil2022.prefix_sums.eval.max_iters"),
        ({"anil2022": {"prefix_sums": {"eval": {"aa_iters": 1000}}}}, {}, "anil2022.prefix_sums.eval.aa_iters"),
        ({"anil2022": {"prefix_sums": {"seeds": [1, 1]}}}, {}, "anil2022.prefix_sums.seeds"),
        ({}, {"scale": "huge"}, "key `scale`"),
        ({}, {"sclae": "small"}, "unknown key `sclae`"),
    ],
)
def test_broken_config_names_the_key(overrides, top, fragment):
    with pytest.raises(ConfigError) as err:
        load(overrides, **top)
    assert fragment in str(err.value)


def test_snakemake_refuses_a_broken_config_before_any_job(tmp_path):
    proc = run([tool("snakemake"), "-n", "--cores", "1", "--config",
                "overrides={anil2022: {prefix_sums: {train: {lr: -1}}}}"], cwd=ROOT, check=False)
    assert proc.returncode != 0
    assert "anil2022.prefix_sums.train.lr" in proc.stdout + proc.stderr
    assert "Job stats" not in proc.stdout + proc.stderr


def test_config_file_comments_claim_defaults_are_the_small_scale():
    raw = yaml.safe_load(CONFIG.read_text())
    assert raw["scale"] == "small" and not raw["presets"]["small"]


@pytest.mark.parametrize(
    "overrides, fragment",
    [
        ({"anil2022": {"prefix_sums": {"data": {"harder_bits": [8]}}}}, "anil2022.prefix_sums.data.harder_bits"),
        ({"anil2022": {"prefix_sums": {"data": {"harder_bits": [12, 12]}}}}, "anil2022.prefix_sums.data.harder_bits"),
        ({"anil2022": {"mazes": {"data": {"harder_sizes": [3, 5]}}}}, "anil2022.mazes.data.harder_sizes"),
        ({"anil2022": {"matrix_inversion": {"data": {"harder_c": [0.5]}}}}, "anil2022.matrix_inversion.data.harder_c"),
        ({"anil2022": {"edge_copy": {"data": {"harder_nodes": [4]}}}}, "anil2022.edge_copy.data.harder_nodes"),
        ({"anil2022": {"digits": {"data": {"harder_sigmas": [1.0]}}}}, "anil2022.digits.data.harder_sigmas"),
    ],
)
def test_a_harder_split_that_is_not_harder_is_a_config_error(overrides, fragment):
    # At smoke scale: training on 8 bits, 3-mazes, c = 0.5, up to 4 nodes, sigma up to 1.0. Before this
    # check, harder_bits [8] regenerated the training file bits8.pt with the harder split's count.
    with pytest.raises(ConfigError) as err:
        load(overrides, scale="smoke")
    assert fragment in str(err.value) and "harder" in str(err.value)


@pytest.mark.parametrize(
    "scale, overrides, fragment",
    [
        # smoke's 256 prefix-sum strings leave 52 in-distribution examples, and its harder mazes are 32
        ("smoke", {"anil2022": {"prefix_sums": {"eval": {"n_in_distribution": 53}}}},
         "key `anil2022.prefix_sums.eval.n_in_distribution` (53) exceeds the 52 in-distribution examples"),
        ("smoke", {"anil2022": {"mazes": {"eval": {"n_examples": 33}}}},
         "key `anil2022.mazes.eval.n_examples` (33) exceeds the 32 examples of each harder split"),
        ("small", {"anil2022": {"mazes": {"eval": {"n_examples": 201}}}},  # 1,000 mazes: 200 held out
         "Set `anil2022.mazes.eval.n_in_distribution: 200`"),
        ("smoke", {"song2023": {"studies": {"other_paradigm": {"eval": {"n_in_distribution": 14}}}}},
         "key `song2023.studies.other_paradigm.eval.n_in_distribution` (14) exceeds the 13 in-distribution"),
        ("small", {"anil2022": {"prefix_sums": {"train": {"lr_milestones": [16, 40]}}}},
         "key `anil2022.prefix_sums.train.lr_milestones` has 40, not below `train.epochs` (40)"),
        ("small", {"song2023": {"studies": {"other_paradigm": {"train": {"epochs": 8}}}}},
         "key `song2023.studies.other_paradigm.train.lr_milestones` has 8, not below `train.epochs` (8)"),
        ("small", {"song2023": {"train": {"lr_milestones": [12]}}}, "key `song2023.train.lr_milestones` has 12"),
    ],
)
def test_a_setting_that_would_silently_do_nothing_is_a_config_error(scale, overrides, fragment):
    """An evaluation count larger than its split holds was cut to the split; a milestone at or past
    the last epoch never decayed the learning rate. Both now stop the run, naming the key."""
    with pytest.raises(ConfigError) as err:
        load(overrides, scale=scale)
    assert fragment in str(err.value)


def test_the_printed_fix_for_too_many_examples_works():
    with pytest.raises(ConfigError, match=r"Set `anil2022.mazes.eval.n_in_distribution: 200`"):
        load({"anil2022": {"mazes": {"eval": {"n_examples": 201}}}})
    load({"anil2022": {"mazes": {"eval": {"n_examples": 200, "n_in_distribution": 200}}}})


def test_snakemake_stops_on_a_milestone_past_the_last_epoch_with_exit_code_2():
    proc = run([tool("snakemake"), "-n", "--cores", "1", "--config",
                "overrides={anil2022: {mazes: {train: {lr_milestones: [12]}}}}"], cwd=ROOT, check=False)
    assert proc.returncode == 2
    assert "error: --config (over config/config.yaml) (scale 'small'): key `anil2022.mazes.train.lr_milestones` has 12" \
        in proc.stderr
