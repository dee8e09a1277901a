"""The documented choices this project made where the papers are silent, with the values in force.
Our values come from the config; what is known of the paper's setup comes from the paper's `setup`
entry of config/papers.yaml, quoted with its provenance."""

from __future__ import annotations

from implicit_repro.papers.anil2022.claims import (AA_MOVED, COLLAPSE_DROP, CONVERGED_RESIDUAL, LEARNED_ACCURACY,
                                                  MIN_PER_CLASS, ROOM)
from implicit_repro.papers.anil2022.difficulty import (HEAD_CONVS, convs_per_iteration, reach_by_arm, training_iters,
                                                      training_reach)
from implicit_repro.results.scorecard import MIN_FOR_CORRELATION, MIN_PER_GROUP
from implicit_repro.results.stats import MIN_DEFINED, RESAMPLES


def known(setup: dict, task: str, key: str) -> str:
    """'32 (second-hand: DT-net's default ...)': a fact of the paper's setup, with its provenance."""
    fact = setup[task][key]
    return f"{fact['value']} ({fact['provenance']}: {fact['source']})"


TASK_CHOICES = {
    "prefix_sums": lambda d, m, k: [
        f"Training length {d['train_bits']} bits, harder lengths {d['harder_bits']} (paper: training "
        f"{k('prefix_sums', 'train_bits')}, harder {k('prefix_sums', 'harder_bits')}). {d['count']} strings of the "
        f"training length, {d.get('harder_count', d['count'])} per harder length (distinct below 24 bits, so at most "
        "2^n).",
        f"Cell: Conv1d(w+1→w) on concat[z, x], then {m['blocks']} residual block(s), width {m['width']}, no "
        f"normalization; head Conv1d w→{'→'.join(map(str, m.get('head_channels', ['w', 'w/2'])))}→2 (DT-net's "
        f"1-D head is w→w→w/2→2; width: {k('prefix_sums', 'width')}).",
    ],
    "mazes": lambda d, m, k: [
        f"Maze size {d['train_size']} for training (image side {2 * d['train_size'] + 6}), harder sizes "
        f"{d['harder_sizes']} (paper: training {k('mazes', 'train_size')}, harder {k('mazes', 'harder_sizes')}); "
        f"{d['count']} training mazes, {d.get('harder_count', d['count'])} per harder size.",
        f"Cell of the authors' released model, width {m['width']} and {m['blocks']} block(s) (paper's width, "
        f"blocks: {k('mazes', 'width_blocks')}); the projection conv is left out because z0 comes from the "
        "initialization scheme. Loss and metric ignore wall pixels.",
    ],
    "matrix_inversion": lambda d, m, k: [
        f"{d['n']}×{d['n']} matrices A = RRᵀ + (RRᵀ)ᵀ + cI, c = {d['train_c']} for training and {d['harder_c']} "
        f"harder; an MLP cell of width {m['width']} on the flattened matrix (architecture unknown in the paper).",
    ],
    "edge_copy": lambda d, m, k: [
        f"Complete digraphs with {d['train_nodes'][0]}–{d['train_nodes'][1]} nodes for training, "
        f"{d['harder_nodes']} harder; a dense GINE-style cell of width {m['width']} with {m['aggregation']} "
        "aggregation that refines edge features each step (torch_geometric is not used)."
        + (" Mean rather than sum: with sum aggregation the state grows with the node degree, and half of the "
           "small-scale calibration runs diverged." if m["aggregation"] == "mean" else ""),
    ],
    "digits": lambda d, m, k: [
        "Blurry MNIST is not defined in anything we know of: our task classifies Gaussian-blurred digits, with "
        f"training blur σ ~ U{tuple(d['train_sigma'])} per image and harder splits σ ∈ {d['harder_sigmas']} on "
        f"held-out images; conv cell of width {m['width']}.",
        _digits_source(d),
    ],
}

def _deeper_arms(t: dict) -> dict[str, int]:
    """The arms that train deeper than the fixed budget (a randomized budget), with their reach."""
    return {arm: reach for arm, reach in reach_by_arm(t).items() if reach > training_reach(t)}


def _reach(t: dict) -> str:
    deeper = _deeper_arms(t)
    text = (f"the training budget reaches {training_reach(t)} positions ({t['train']['iters']} iterations × "
            f"{convs_per_iteration(t['model']['blocks'])} convolutions, then the {HEAD_CONVS} of the head)")
    if deeper:
        text += "; " + ", ".join(f"the {arm} arm trains some batches at up to {training_iters(t, arm)} iterations "
                                 f"and reaches {reach}" for arm, reach in deeper.items())
    return text


def _prefix_harder(t: dict) -> str:
    reach, bits = training_reach(t), t["data"]["harder_bits"]
    within = [b for b in bits if b - 1 <= reach]
    verdict = (f"every harder length ({bits}) is beyond it: more iterations are needed, by the same algorithm"
               if not within else f"the harder lengths {within} are NOT beyond it: the training budget already "
                                  "covers them, so a gain there is not upward generalization")
    arms = [f"{[b for b in bits if b - 1 <= r]} lie within the {arm} arm's reach ({r}), so a gain of that arm there "
            "is not upward generalization" for arm, r in _deeper_arms(t).items() if any(b - 1 <= r for b in bits)]
    return (f"Harder is harder when it outruns the reach: {_reach(t)}; the last bit of an n-bit string depends on "
            f"the first, n − 1 positions away. Every training string ({t['data']['train_bits']} bits) is "
            f"{'within reach' if t['data']['train_bits'] - 1 <= reach else 'BEYOND reach'}, and {verdict}"
            + "".join(f"; but the lengths {a}" for a in arms) + ".")


def _mazes_harder(t: dict) -> str:
    deeper = ", ".join(_deeper_arms(t))
    return (f"Harder is harder where paths outrun the reach: {_reach(t)}; a maze needs about its path's length in "
            "pixels (information travels along the corridor). At `small`, tests/test_difficulty.py draws mazes and "
            f"checks that every training path (size {t['data']['train_size']}) is within reach and that the median "
            "path of each harder size is beyond the reach of every arm"
            + (f", the {deeper} arm's deeper one included" if deeper else "")
            + " (sizes 7 and 9, used before, were within every arm's reach, and 13 within the randomized budget's)"
            ".")


# Where no receptive field bounds a task, the iterations a split needs are read off the trained models
# (claims.computation_needed; tests/test_anil2022_design.py).
AT_REST = ("This README's training-outcome table measures it on the trained models: its *at rest* column gives "
           "the budget at which the converged models' in-distribution examples come to rest and the budget on "
           "the hardest split; a split that comes to rest no later asks for no more iterations.")

# Why each harder split is harder (papers/anil2022/difficulty.py; tests/test_difficulty.py checks it at small).
HARDER_IS_HARDER = {
    "prefix_sums": _prefix_harder,
    "mazes": _mazes_harder,
    "matrix_inversion": lambda t: (
        "Harder is not shown to be harder in computation: a smaller c makes A worse conditioned (the paper's "
        "split), but no receptive field bounds what the training budget can do, and a learned cell need not "
        "converge more slowly on it. Where every model of an arm is already at its fixed point on the harder "
        "split at the training budget and gains nothing there, claim 1's row cannot be scored and says so (its "
        "0 would be fixed by the design, not measured), as claim 2's where AA is the same for every model; "
        "claims 3 and 4 read the split as a harder input distribution (still open: a split that needs more "
        "iterations). " + AT_REST),
    "edge_copy": lambda t: (
        "Harder is not harder with mean aggregation: at small, every model scored 1.0 on the larger graphs at the "
        "training budget." if t["model"].get("aggregation") == "mean" else
        "Harder in the dataset paper's sense (larger graphs): with sum aggregation each node's messages grow with "
        f"its in-degree ({t['data']['train_nodes'][1] - 1} at most in training, "
        f"{max(t['data']['harder_nodes']) - 1} on the harder graphs), so the state leaves the range training saw; "
        "copying an edge needs no information from far away, so no receptive field makes it need more iterations. "
        "Graphs of 15 nodes were too far out: at small, the trained models scored at most 0.11 on them at the "
        "training budget and 0.006 at 40 iterations, a floor no intervention can move; on 12 nodes they score "
        "between 0 and 1 and some gain with more iterations. " + AT_REST),
    "digits": lambda t: (
        "Harder by no receptive field: a few iterations of 3×3 convolutions already see the whole image "
        "(8×8 at small: three), and stronger blur makes the images harder to read, not the information "
        "further away. Whether the models need more iterations on it is measured instead. " + AT_REST + " Where the "
        "hardest split does not come to rest within the sweep, that is either more computation or no fixed "
        "point the iteration reaches; the table cannot tell the two apart."),
}

# Where the published MNIST digests come from (the config lists them with this reference).
MNIST_CHECKSUM_SOURCE = "tensorflow_datasets' `tensorflow_datasets/url_checksums/mnist.txt`"


def _digits_source(d: dict) -> str:
    count, harder = d["count"], d.get("harder_count", d["count"])
    if d.get("source", "sklearn") == "mnist":
        return (f"Images: the 28×28 MNIST (a training split of {count} images, {harder} test images per harder "
                f"split), downloaded from {d['mnist']['base_url']}; each of the four files is kept and read only if its "
                f"SHA-256 is the one {MNIST_CHECKSUM_SOURCE} publishes for it.")
    return (f"Images: scikit-learn's bundled 8×8 digits (a training split of {count} images, {harder} held-out "
            "images per harder split; offline). The paper preset uses the 28×28 MNIST instead (`data.source: mnist`), "
            "downloaded and checked against published SHA-256 digests.")


def choices_markdown(cfg: dict, facts: dict) -> str:
    """``facts``: the paper's entry of config/papers.yaml."""
    setup = facts.get("setup", {})
    k = lambda task, key: known(setup, task, key)  # noqa: E731
    lines = []
    for task, t in cfg.get("anil2022", {}).items():
        if not t["enabled"]:
            continue
        d, m, tr, e, ip = t["data"], t["model"], t["train"], t["eval"], t["intervention_params"]
        harder = HARDER_IS_HARDER[task](t)
        lines += [f"### anil2022, {task}", *(f"- {c}" for c in TASK_CHOICES[task](d, m, k)),
                  *([f"- {harder}"] if harder else [])]
        if "threshold" in t["task_params"]:
            lines.append(f"- An example counts as correct when its MSE is below {t['task_params']['threshold']} "
                         "(the dataset paper reports MSE only).")
        lines += [
            f"- Training: Adam lr {tr['lr']}, {tr['epochs']} epochs, batch {tr['batch_size']}, warm-up "
            f"{tr['warmup_epochs']} epoch(s), milestones {tr['lr_milestones']} ×{tr['lr_gamma']}, grad-clip "
            f"{tr['grad_clip']}, {tr['iters']} forward iterations, gradient `{tr['gradient']}` (the paper's "
            "hyper-parameters are unknown; these follow DT-net, scaled down). The first "
            f"{d['train_fraction']:.0%} of the training split is trained on, the rest is the in-distribution "
            "test split.",
            f"- Interventions {t['interventions']} × seeds {t['seeds']}. Mixed initialization: per example, "
            f"z0 = 0 or N(0, {ip['init_std']}² I) with probability {ip['mixed_init_prob']}. Randomized budget: "
            f"uniform in [{ip['budget_min']}, {ip['budget_max']}] iterations per step. Anti-alignment (second-hand, "
            f"our formulation): + {ip['anti_alignment_weight']} × cos(z_0, z_r), z_0 the state the task loss reads "
            f"(from the zero start) and z_r the state reached from an N(0, {ip['init_std']}² I) start, both "
            "within the training budget, gradient through both: AA's comparison, at one extra run per step.",
            f"- Evaluation: accuracy after every test-time iteration 1..{e['max_iters']} on the first "
            f"{e['n_examples']} examples of each split. AA budget {e['aa_iters']} iterations (unknown in the "
            f"paper) over {e['aa_examples']} examples; all-pairs variant over a batch of {e['aa_pairs_batch']}. "
            + _early_exit_text(e["early_exit_tol"]),
        ]
        if e["attack_examples"]:
            lines.append(
                f"- Adversarial initial states: {e['attack_steps']} Adam steps (lr {e['attack_lr']}) on z0 of "
                f"{e['attack_examples']} in-distribution examples, minimising alignment with the zero-init "
                "state, z0 kept within the norm of a typical N(0, I) draw.")
        study = t["gradient_study"]
        if study["gradients"]:
            lines.append(
                f"- Gradient study (table2): `{study['intervention']}` trained as a DEQ with "
                f"{', '.join(study['gradients'])} gradients, solver {tr['solver']} to relative residual {tr['tol']} "
                f"or {tr['iters']} evaluations; phantom: {tr['phantom_steps']} steps, damping {tr['phantom_damping']}.")
        lines.append(
            "- A run is *diverged* when a batch loss is not finite or an epoch's mean loss exceeds "
            f"{tr['blowup_loss']} after the {tr['warmup_epochs']} warm-up epoch(s) (whose mean includes the "
            "first steps from a random init, which can start far above it and recover); it is counted, not "
            "evaluated.")
        lines.append("")
    lines.append(
        "### Scorecard\n- Statistics use each task's hardest evaluated split and resample models. A model *learned* "
        f"its task when its in-distribution accuracy at the training budget is at least {LEARNED_ACCURACY}; it "
        "*converged* (the paper's equilibrium premise, measured) when the median relative residual of its "
        f"in-distribution examples at the largest test-time budget is at most {CONVERGED_RESIDUAL:g} (a state that "
        f"overflowed did not); it *collapsed* when its in-distribution accuracy there is {COLLAPSE_DROP:g} or more "
        "below the training budget's (more iterations undo what it learned: reported, not counted against upward "
        "generalization). Claims 1, 2 and 4 read the *eligible* models (learned, converged, not collapsed) and "
        "each row says how many of how many; the training-outcome table gives the counts per task. Claim 1 has "
        "a row for the interventions that promote path independence and one for the baseline; claim 2 correlates "
        "AA and accuracy within interventions (ranks centred on each intervention's mean, so arms that differ on "
        "both cannot make the correlation; the pooled ρ is shown beside it). Claim 3 compares all models of an "
        "arm with the baseline on the hardest split where the baseline leaves room for the effect (mean accuracy "
        f"at least {ROOM:g} for penalizing, at most {1 - ROOM:g} for promoting), and only where the arm moved what "
        f"it is named for: its mean AA on that split at least {AA_MOVED:g} above the baseline's for promoting, below "
        "for penalizing (else the row cannot be scored: the intervention was not a test of the claim). Claim 4 is "
        "tested within models: each "
        f"eligible model's correlation of per-example AA with correctness (with at least {MIN_PER_CLASS} correct "
        f"and {MIN_PER_CLASS} wrong examples), averaged over models. A verdict needs at least {MIN_PER_GROUP} "
        f"models in every group compared ({MIN_FOR_CORRELATION} for claim 2's correlation across models): below "
        "that the row says *too few models* when fewer were trained, and *cannot be scored* when enough were "
        "trained but too few are eligible. A bootstrap CI is reported only when the statistic is defined on at "
        f"least {MIN_DEFINED:.0%} of {RESAMPLES:,} resamples. Each verdict compares that CI with the claim's "
        "smallest effect of interest, pre-registered in config/papers.yaml (the Scorecard section lists them).")
    return "\n".join(lines)


def _early_exit_text(tol) -> str:
    if tol is None:
        return "Every example runs the whole budget of every solve (no early exit)."
    if tol == 0:
        return ("An example whose state repeats to the bit stops being iterated and keeps its final state "
                "(early exit; the metrics are then the full run's wherever the cell's arithmetic does not depend "
                "on the batch's size).")
    return (f"An example whose relative residual falls to {tol} stops being iterated and keeps its final state "
            "(early exit at a tolerance: later iterations read that state, and its residual stays at the last one "
            "measured, an upper bound of the full run's).")
