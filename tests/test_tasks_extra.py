"""Matrix inversion, edge copy and blurry digits: generators, IDX/MNIST input, models and tasks."""

import hashlib

import pytest
import torch

from conftest import ROOT
from implicit_repro import config
from implicit_repro.data import digits, edge_copy, idx, matrix_inversion
from implicit_repro.data.download import download, verify_sha256
from implicit_repro.errors import DatasetError
from implicit_repro.interventions import get_intervention, initial_state
from implicit_repro.models import build_model
from implicit_repro.seeding import generator
from implicit_repro.tasks import get_task, masked_edge_mse, per_example_edge_mse

SK_IMAGES, SK_LABELS = digits.load_sklearn_digits("train")

GENERATORS = {
    "matrix_inversion": lambda g: matrix_inversion.generate(4, 0.5, 20, g),
    "edge_copy": lambda g: edge_copy.generate(2, 10, 20, g),
    "digits": lambda g: digits.generate(SK_IMAGES, SK_LABELS, (0.5, 1.0), 20, g),
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- generators


@pytest.mark.parametrize("task", GENERATORS)
def test_generators_are_deterministic_per_seed_and_differ_across_seeds(task):
    a, b, c = (GENERATORS[task](generator(task, s)) for s in (1, 1, 2))
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["inputs"], c["inputs"])


def test_matrix_targets_are_inverses_of_symmetric_inputs():
    data = matrix_inversion.generate(6, 0.5, 200, generator("inv"))
    a, inv = data["inputs"].double(), data["targets"].double()
    assert data["inputs"].shape == data["targets"].shape == (200, 6, 6)
    assert data["inputs"].dtype == data["targets"].dtype == torch.float32
    assert torch.equal(data["inputs"], data["inputs"].mT)
    eye = torch.eye(6, dtype=torch.float64).expand(200, 6, 6)
    assert torch.allclose(a @ inv, eye, atol=1e-4)
    assert torch.allclose(inv @ a, eye, atol=1e-4)
    # A = 2 R R^T + c I: positive definite with every eigenvalue at least c
    assert torch.linalg.eigvalsh(a).min() > 0.5 - 1e-4


def test_harder_matrices_are_worse_conditioned():
    easy = matrix_inversion.generate(8, matrix_inversion.TRAIN_C, 300, generator("cond", 0))
    hard = matrix_inversion.generate(8, matrix_inversion.HARDER_C, 300, generator("cond", 1))
    cond_easy = torch.linalg.cond(easy["inputs"].double()).mean()
    cond_hard = torch.linalg.cond(hard["inputs"].double()).mean()
    assert cond_hard > 2 * cond_easy
    hard_inv = hard["targets"].double()
    assert torch.allclose(hard["inputs"].double() @ hard_inv, torch.eye(8, dtype=torch.float64), atol=1e-3)


def test_edge_copy_graphs_are_complete_digraphs_without_self_loops_padded_and_masked():
    data = edge_copy.generate(2, 10, 500, generator("edges"))
    graphs, n_nodes = data["inputs"], data["n_nodes"]
    assert graphs.shape == (500, 2, 10, 10) and graphs.dtype == torch.float32
    assert torch.equal(data["targets"], graphs)
    assert n_nodes.min() == 2 and n_nodes.max() == 10
    assert set(n_nodes.tolist()) == set(range(2, 11))
    values, mask = graphs[:, edge_copy.VALUE], graphs[:, edge_copy.MASK]
    assert torch.all(mask.diagonal(dim1=1, dim2=2) == 0)
    assert torch.all(values.diagonal(dim1=1, dim2=2) == 0)
    for graph, n in zip(graphs, n_nodes.tolist()):
        v, m = graph
        assert torch.all(m[:n, :n] + torch.eye(n) == 1)  # every ordered pair i != j is an edge
        assert torch.all(m[n:] == 0) and torch.all(m[:, n:] == 0)  # padding masked
        assert torch.all(v[n:] == 0) and torch.all(v[:, n:] == 0)
        real = v[m.bool()]
        assert len(real) == n * (n - 1) and torch.all(real.abs() < 1) and torch.all(real != 0)
    assert torch.equal(edge_copy.node_mask(graphs).sum(1).long(), n_nodes)
    assert abs(values[mask.bool()].mean().item()) < 0.05  # U(-1, 1)


def test_edge_copy_harder_split_has_fifteen_nodes():
    data = edge_copy.generate(*edge_copy.HARDER_NODES, 10, generator("hard"))
    assert data["inputs"].shape == (10, 2, 15, 15)
    assert torch.all(data["n_nodes"] == 15)
    assert torch.all(data["inputs"][:, edge_copy.MASK].sum((1, 2)) == 15 * 14)
    with pytest.raises(ValueError):
        edge_copy.generate(1, 10, 5, generator("bad"))


# ---------------------------------------------------------------- blur and digits


def high_frequency_energy(images: torch.Tensor) -> float:
    """Energy of the finite differences: what a blur removes first."""
    dx = images[..., :, 1:] - images[..., :, :-1]
    dy = images[..., 1:, :] - images[..., :-1, :]
    return (dx.pow(2).sum() + dy.pow(2).sum()).item()


def test_blur_is_a_normalized_separable_gaussian():
    delta = torch.zeros(1, 1, 15, 15)
    delta[0, 0, 7, 7] = 1
    out = digits.blur(delta, 1.3)[0, 0]
    r = torch.arange(15.0) - 7
    expected = torch.exp(-(r.view(-1, 1) ** 2 + r.view(1, -1) ** 2) / (2 * 1.3**2))
    expected[(r.abs() > 4).view(-1, 1) | (r.abs() > 4).view(1, -1)] = 0  # cut at ceil(3 sigma)
    assert torch.allclose(out, expected / expected.sum(), atol=1e-6)
    assert torch.equal(digits.blur(delta, 0.0), delta)


def test_stronger_blur_lowers_high_frequency_energy():
    images = SK_IMAGES[:100].unsqueeze(1)
    energies = [high_frequency_energy(digits.blur(images, s)) for s in (0.0, 0.5, 1.0, 1.5, 2.0)]
    assert all(a > b for a, b in zip(energies, energies[1:])), energies


def test_per_image_sigmas_blur_each_image_with_its_own_sigma():
    images = SK_IMAGES[:3].unsqueeze(1)
    sigmas = torch.tensor([0.3, 1.0, 2.0])
    together = digits.blur(images, sigmas)
    for i in range(3):
        assert torch.allclose(together[i], digits.blur(images[i : i + 1], sigmas[i].item())[0], atol=1e-6)


def test_digits_keep_their_labels_and_sigma_range():
    data = digits.generate(SK_IMAGES, SK_LABELS, (0.5, 1.0), 300, generator("digits"))
    index = data["source_index"]
    assert data["inputs"].shape == (300, 1, 8, 8) and data["targets"].dtype == torch.int64
    assert len(set(index.tolist())) == 300
    assert torch.equal(data["targets"], SK_LABELS[index])
    assert torch.all((data["sigma"] >= 0.5) & (data["sigma"] <= 1.0))
    assert torch.allclose(data["inputs"], digits.blur(SK_IMAGES[index].unsqueeze(1), data["sigma"]), atol=1e-6)
    sharp = digits.generate(SK_IMAGES, SK_LABELS, 0.0, 50, generator("sharp"))
    assert torch.equal(sharp["inputs"][:, 0], SK_IMAGES[sharp["source_index"]])


def test_sklearn_digits_split_into_disjoint_train_and_test_parts():
    test_images, test_labels = digits.load_sklearn_digits("test")
    assert len(SK_LABELS) + len(test_labels) == 1797
    assert SK_IMAGES.shape[1:] == (8, 8) and 0 <= SK_IMAGES.min() and SK_IMAGES.max() <= 1
    train_rows = {tuple(r) for r in SK_IMAGES.flatten(1).tolist()}
    overlap = sum(tuple(r) in train_rows for r in test_images.flatten(1).tolist())
    assert overlap <= 2  # the bundled set has a rare duplicate image, never a shared index


# ---------------------------------------------------------------- IDX files and checksums


@pytest.mark.parametrize("name", ["values.idx", "values.idx.gz"])
@pytest.mark.parametrize(
    "values",
    [
        torch.randint(0, 256, (5, 4, 3), generator=torch.Generator().manual_seed(0), dtype=torch.uint8),
        torch.tensor([3, -7, 70000], dtype=torch.int32),
        torch.tensor([[0.5, -1.25]], dtype=torch.float32),
    ],
)
def test_idx_round_trip(tmp_path, name, values):
    path = tmp_path / name
    idx.write_idx(path, values)
    back = idx.read_idx(path, sha256(path.read_bytes()))
    assert back.dtype == values.dtype and torch.equal(back, values)


def test_idx_header_is_big_endian_as_in_mnist(tmp_path):
    raw = idx.encode_idx(torch.zeros(2, 28, 28, dtype=torch.uint8))
    assert raw[:4] == bytes([0, 0, 0x08, 3])  # the magic number 2051 of the MNIST image files
    assert raw[4:16] == bytes([0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])


def test_wrong_checksum_is_refused_before_the_file_is_opened(tmp_path, monkeypatch):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    idx.write_idx(path, torch.zeros(2, 3, 3, dtype=torch.uint8))
    good = sha256(path.read_bytes())

    def must_not_open(*args, **kwargs):
        raise AssertionError("a file with a wrong checksum was opened for parsing")

    monkeypatch.setattr(idx.gzip, "open", must_not_open)
    monkeypatch.setattr(idx, "parse_idx", must_not_open)
    with pytest.raises(DatasetError, match="does not match"):
        idx.read_idx(path, "0" * 64)
    with pytest.raises(DatasetError, match="SHA-256"):
        idx.read_idx(path, "not-a-digest")
    monkeypatch.undo()
    assert idx.read_idx(path, good).shape == (2, 3, 3)


def test_truncated_idx_names_the_file(tmp_path):
    path = tmp_path / "labels.idx"
    path.write_bytes(idx.encode_idx(torch.arange(10, dtype=torch.uint8))[:-3])
    with pytest.raises(DatasetError, match="labels.idx.*truncated"):
        idx.read_idx(path, sha256(path.read_bytes()))
    path.write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DatasetError, match="not an IDX file"):
        idx.read_idx(path, sha256(path.read_bytes()))


def test_download_keeps_only_verified_bytes(tmp_path):
    source = tmp_path / "remote.bin"
    source.write_bytes(b"public dataset bytes")
    url = source.as_uri()  # file:// - the test never touches the network
    digest = sha256(source.read_bytes())
    dest = tmp_path / "data" / "local.bin"
    with pytest.raises(DatasetError, match="discarded"):
        download(url, dest, "f" * 64)
    assert not dest.exists() and list(dest.parent.iterdir()) == []
    assert download(url, dest, digest).read_bytes() == b"public dataset bytes"
    dest.write_bytes(b"tampered")
    with pytest.raises(DatasetError, match="refusing"):
        download(url, dest, digest)
    with pytest.raises(DatasetError, match="refusing"):
        verify_sha256(dest, digest)


def test_mnist_loads_from_verified_idx_files(tmp_path):
    images = torch.tensor([[[0, 255], [51, 102]], [[255, 255], [0, 0]], [[1, 2], [3, 4]]], dtype=torch.uint8)
    labels = torch.tensor([7, 0, 3], dtype=torch.uint8)
    remote = tmp_path / "remote"
    remote.mkdir()
    checksums = {}
    for part in digits.PARTS:
        image_file, label_file = digits.MNIST_FILES[part]
        idx.write_idx(remote / image_file, images)
        idx.write_idx(remote / label_file, labels)
        checksums |= {f: sha256((remote / f).read_bytes()) for f in (image_file, label_file)}
    folder = digits.download_mnist(tmp_path / "mnist", checksums, base_url=remote.as_uri() + "/")
    x, y = digits.load_mnist(folder, "test", checksums)
    assert x.dtype == torch.float32 and torch.allclose(x, images.float() / 255)
    assert y.dtype == torch.int64 and y.tolist() == [7, 0, 3]
    del checksums["t10k-labels-idx1-ubyte.gz"]
    with pytest.raises(DatasetError, match="t10k-labels"):
        digits.load_mnist(folder, "test", checksums)


# ---------------------------------------------------------------- models

MODELS = {
    # task: (build options, example input, expected output shape)
    "matrix_inversion": (
        {"matrix_size": 4},
        matrix_inversion.model_input(matrix_inversion.generate(4, 0.5, 3, generator("m"))["inputs"]),
        (3, 4, 4),
    ),
    "edge_copy": ({}, edge_copy.generate(2, 6, 3, generator("e"))["inputs"], (3, 6, 6)),
    "digits": ({}, digits.generate(SK_IMAGES, SK_LABELS, 1.0, 3, generator("d"))["inputs"], (3, 10)),
    "prefix_sums": ({}, torch.rand(3, 1, 7) - 0.5, (3, 2, 7)),
}


def make(task):
    torch.manual_seed(0)
    options, x, shape = MODELS[task]
    return build_model(task, width=8, blocks=2, **options), x, shape


@pytest.mark.parametrize("task", MODELS)
def test_models_map_inputs_to_outputs_of_the_right_shape(task):
    model, x, shape = make(task)
    assert model(x, iters=3).shape == shape
    z = model.initial_state(x)
    assert z.shape == model.state_shape(x) and torch.all(z == 0)
    assert model.step(z, x).shape == z.shape


def perturb_content(task, x):
    """Change what the input says, not its layout: edge copy keeps its mask channel, so a cell
    that reads the mask but ignores the edge values is caught."""
    noise = 0.5 * torch.randn_like(x)
    if task == "edge_copy":
        noise[:, edge_copy.MASK] = 0
        noise[:, edge_copy.VALUE] *= x[:, edge_copy.MASK]
    return x + noise


@pytest.mark.parametrize("task", MODELS)
def test_cells_are_weight_tied_and_input_injected(task):
    model, x, _ = make(task)
    z = model.step(model.step(model.initial_state(x), x), x)
    assert not torch.allclose(model.step(z, x), model.step(z, perturb_content(task, x)))
    assert not torch.allclose(model.step(z, x), model.step(z + torch.rand_like(z), x))
    # forward is the same cell applied again and again, then the head
    assert torch.allclose(model(x, iters=2), model.readout(z))
    # every parameter of cell and head takes part (no dead branch)
    model(x, iters=3).pow(2).sum().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_states_of_every_model_take_the_mixed_initialization():
    for task in MODELS:
        model, x, _ = make(task)
        zeros = torch.zeros(model.state_shape(x))
        z0 = initial_state(get_intervention("mixed_init"), zeros, {"init_std": 1.0, "mixed_init_prob": 1.0},
                           generator(task))
        assert z0.shape == zeros.shape and model(x, 2, z0).shape == model(x, 2).shape


def test_matrix_state_is_a_flat_vector_and_prefix_state_a_feature_map():
    model, x, _ = make("matrix_inversion")
    assert model.state_shape(x) == (3, 8)
    model, x, _ = make("prefix_sums")
    assert model.state_shape(x) == (3, 8, 7)
    with pytest.raises(ValueError, match="matrix_size"):
        build_model("matrix_inversion", width=8, blocks=1)
    with pytest.raises(ValueError, match="aggregation"):
        build_model("edge_copy", width=8, blocks=1, aggregation="max")


def head_convolutions(model) -> list[tuple[int, int, int]]:
    return [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in model.head if isinstance(c, torch.nn.Conv1d)]


def test_the_prefix_sum_head_has_the_configured_hidden_channels():
    """DT-net's 1-D head (width, width / 2) unless the config names others; three 3-wide convolutions
    either way, the head's share of the receptive field that the harder splits are checked against."""
    from implicit_repro.papers import part
    from implicit_repro.papers.anil2022.difficulty import HEAD_CONVS
    from implicit_repro.train import make_model

    assert head_convolutions(build_model("prefix_sums", width=8, blocks=1)) == [(8, 8, 3), (8, 4, 3), (4, 2, 3)]
    first = build_model("prefix_sums", width=8, blocks=1, head_channels=[8, 8])
    assert head_convolutions(first) == [(8, 8, 3), (8, 8, 3), (8, 2, 3)]
    # the configured head reaches the trained model (spec -> model), at every scale
    for scale in ("smoke", "small", "paper"):
        cfg = config.load(ROOT / "config/config.yaml", ROOT / "workflow/schemas/config.schema.yaml", {"scale": scale})
        model_cfg = cfg["anil2022"]["prefix_sums"]["model"]
        [run, *_] = [r for r in part("anil2022", "grid").runs(cfg["anil2022"]) if r.task == "prefix_sums"]
        convs = head_convolutions(make_model(run.train_spec))
        assert len(convs) == HEAD_CONVS and {k for *_, k in convs} == {3}
        assert [out for _, out, _ in convs[:2]] == model_cfg["head_channels"], scale


@pytest.mark.parametrize("aggregation", ["sum", "mean"])
def test_edge_model_ignores_padding(aggregation):
    """The same graphs padded to 6 and to 15 nodes give the same outputs on their real edges,
    and the state stays zero on padded entries (even when started from noise there)."""
    _, small, _ = make("edge_copy")
    torch.manual_seed(0)
    model = build_model("edge_copy", width=8, blocks=2, aggregation=aggregation)
    big = torch.zeros(3, 2, 15, 15)
    big[:, :, :6, :6] = small
    z_big = model.initial_state(big) + torch.randn(model.state_shape(big))
    z_big[..., :6, :6] = 0
    with torch.no_grad():
        out_small, out_big = model(small, 4), model(big, 4, z_big)
        z = model.step(z_big, big)
    real = small[:, edge_copy.MASK].bool()
    assert torch.allclose(out_small[real], out_big[:, :6, :6][real], atol=1e-5)
    assert torch.all(z * (1 - big[:, edge_copy.MASK]).unsqueeze(1) == 0)


# ---------------------------------------------------------------- tasks


def test_edge_loss_and_correctness_ignore_padding():
    graphs = edge_copy.generate(2, 5, 8, generator("loss"))["targets"]
    mask = graphs[:, edge_copy.MASK]
    pred = graphs[:, edge_copy.VALUE] + 0.05 * mask  # error 0.05 on every real edge
    noisy_padding = pred + 100 * (1 - mask)
    task = get_task("edge_copy")
    assert torch.allclose(task.loss(pred, graphs), torch.tensor(0.0025))
    assert torch.allclose(task.loss(noisy_padding, graphs), torch.tensor(0.0025))
    garbage_targets = graphs.clone()
    garbage_targets[:, edge_copy.VALUE] += 50 * (1 - mask)
    assert torch.allclose(masked_edge_mse(pred, garbage_targets), torch.tensor(0.0025))
    assert torch.allclose(per_example_edge_mse(noisy_padding, graphs), torch.full((8,), 0.0025))
    assert task.correct(noisy_padding, graphs).all()
    assert not get_task("edge_copy", threshold=0.002).correct(noisy_padding, graphs).any()


def test_edge_loss_weighs_every_real_edge_once():
    graphs = edge_copy.generate(2, 10, 16, generator("weights"))["targets"]
    pred = torch.randn(16, 10, 10)
    mask = graphs[:, edge_copy.MASK].bool()
    expected = (pred[mask] - graphs[:, edge_copy.VALUE][mask]).pow(2).mean()
    assert torch.allclose(get_task("edge_copy").loss(pred, graphs), expected)


def test_matrix_correctness_is_per_example_mse_below_threshold():
    task = get_task("matrix_inversion", threshold=0.01)
    target = torch.zeros(3, 4, 4)
    pred = target.clone()
    pred[1] += 0.05  # MSE 0.0025: correct
    pred[2] += 0.2  # MSE 0.04: wrong
    assert task.correct(pred, target).tolist() == [True, True, False]
    assert torch.allclose(task.loss(pred, target), torch.tensor((0.0025 + 0.04) / 3))
    assert get_task("matrix_inversion").correct(pred, target).tolist() == [True, True, False]
    with pytest.raises(ValueError):
        get_task("digits", threshold=0.1)


def test_digits_task_is_cross_entropy_and_argmax_accuracy():
    task = get_task("digits")
    logits = torch.tensor([[0.0, 5.0, 0.0], [3.0, 0.0, 0.0]])
    labels = task.target(torch.tensor([1, 2]))
    assert task.correct(logits, labels).tolist() == [True, False]
    assert torch.allclose(task.loss(logits, labels), torch.nn.functional.cross_entropy(logits, labels))
