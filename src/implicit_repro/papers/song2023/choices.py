"""song2023: what this project chose where the paper (only its abstract is known) is silent, with the
values in force. Every number here is formatted from the config section, never typed."""

from __future__ import annotations

from implicit_repro.data.digits import SKLEARN_TEST_FRACTION
from implicit_repro.papers.song2023.grid import MATCH_TOLERANCE, SEQUENCE_TASK, sequence_reach, vision_task
from implicit_repro.results.scorecard import MIN_PER_GROUP
from implicit_repro.papers.song2023.claims import ROOM

DATASETS = {
    "digits": f"scikit-learn's bundled 8×8 digits (1,797 images; its fixed {1 - SKLEARN_TEST_FRACTION:.0%} / "
              f"{SKLEARN_TEST_FRACTION:.0%} train / test parts; offline, no blur)",
    "cifar10": "CIFAR-10 from the official binary archive (50,000 / 10,000 images), kept only if its SHA-256 "
               "is the one tensorflow_datasets publishes (`url_checksums/cifar10.txt`)",
    "cifar100": "CIFAR-100 (fine labels) from the official binary archive, kept only if its SHA-256 is the one "
                "tensorflow_datasets publishes (`url_checksums/cifar100.txt`)",
}


def choices_markdown(cfg: dict, facts: dict) -> str:
    """``facts``: the paper's entry of config/papers.yaml (nothing of its setup is known yet)."""
    s = cfg["song2023"]
    st, tr, deq = s["studies"], s["train"], s["deq"]
    aug = tr["augment"]
    op = st["other_paradigm"]
    lines = [
        "### song2023",
        "- Only the abstract of the paper is known: the variants, block, widths, depths, densities, solver limits, "
        "training recipe and the second paradigm are all this project's choices; no number of the paper is known, "
        "so every table's reported column is empty (provenance `unknown`).",
        f"- Data: {DATASETS[vision_task(s)]}"
        + (f"; training batches get a random crop (zero padding {aug['crop_pad']}) and a horizontal flip, seeded."
           if aug else "; no augmentation.") + " Pixels in [0, 1] (CIFAR: normalized per channel).",
        "- One block for every variant: f(z; x) = GN(ReLU(z + GN(conv₂(ReLU(GN(conv₁ z)))) + u(x))), 3×3 "
        f"bias-free convolutions of the state's width, GroupNorm with {s['model']['groups']} groups, the injection "
        "u(x) = GN(conv(x)) computed once per input; head: 1×1 conv + ReLU, global average pool, linear (as MDEQ's "
        "head: a GroupNorm leaves the pooled channel means of each group summing to zero, so pooling the state "
        "itself would see only width − groups features, none at width = groups); 1×1 conv per position on prefix "
        "sums."
        + (" Both convolutions of the block are weight-normalized (w = g ⊙ v / ‖v‖ per output channel, g learned: "
           "MDEQ's and torchdeq's stabilizer of the implicit layer), in every variant." if s["model"].get("weight_norm")
           else "")
        + " Variants differ only in depth, tying, solver, gradient and masks.",
        "- Variants: WT-L (one block, L steps, backprop through all); untied depth L (L blocks); DEQ-IFT, DEQ-JR "
        f"(+ {deq['jac_reg_weight']} × Hutchinson ‖J‖²_F / state size), DEQ-phantom ({deq['phantom_steps']} steps, "
        f"damping {deq['phantom_damping']}), DEQ-JFB, each solved by {deq['solver']} to relative residual "
        f"{deq['tol']} or {deq['max_iter']} evaluations (the IFT adjoint solve likewise; how often validation "
        "solves reach 0.001 and 0.01 is in `benchmarks/calibration/song2023.tsv`); WT with distinct static "
        "masks (mask i keeps round(d × n) entries of each conv weight, drawn once from a seeded generator, W ⊙ M_i "
        "at step i, cycling past L); WT with one shared mask.",
        f"- Validation: every image run trains on the training part without its last "
        f"{s['data']['validation_fraction']:.0%}, which is its validation split: the learning rate per variant "
        "(`benchmarks/calibrate_song2023.py`, table in `benchmarks/calibration/song2023.tsv`) and claim 2's DEQ "
        "(the variant of highest mean validation accuracy) are chosen on it, never on the test part.",
        f"- The DEQs, after MDEQ's recipe: the first {deq['pretrain_epochs']} epoch(s) train the block unrolled as "
        f"WT ({deq['pretrain_iters']} steps, no solver; their time and memory are not the DEQ's), then the solver "
        "and gradient take over; the fraction of test solves that reach the tolerance is reported. Claim 2 also "
        f"compares with WT at the DEQ's forward budget ({deq['max_iter']} steps), so that its accuracy difference is "
        "not one of block evaluations.",
        f"- Training: Adam lr {tr['lr']}"
        + (" (per variant: " + ", ".join(f"{v} {lr}" for v, lr in tr["lr_by_variant"].items()) + ")"
           if tr.get("lr_by_variant") else "")
        + f", {tr['epochs']} epochs, batch {tr['batch_size']}, warm-up "
        f"{tr['warmup_epochs']} epoch(s), milestones {tr['lr_milestones']} ×{tr['lr_gamma']}, grad-clip "
        f"{tr['grad_clip']}; seeds {s['seeds']} unless a study says otherwise. A run whose batch loss is not finite "
        f"or whose epoch loss exceeds {tr['blowup_loss']} after the warm-up is recorded as diverged.",
        "- Memory is measured the same way for every variant: on CUDA the peak allocation of the training steps; "
        "on the CPU the same peak counted op by op on the first step of each epoch (`measure.LiveBytes`: every "
        "storage an op allocates, from its allocation to its free, so the forward solver's state, the saved "
        "activations, the IFT adjoint solve, the gradients and transients all count), plus the batch, the "
        "parameters and the optimizer's state. Time per epoch and per step is wall-clock, read from the "
        "training logs (not deterministic); the metered step costs about 40% more than the others.",
        f"- Studies: WT vs DEQ at depth {st['wt_vs_deq']['depth']}, width {st['wt_vs_deq']['width']}; capacity over "
        f"depths {st['capacity']['depths']} × widths {st['capacity']['widths']}; sparse masks at densities "
        f"{st['sparse_masks']['densities']} (depth {st['sparse_masks']['depth']}, width {st['sparse_masks']['width']}),"
        f" against dense {' and '.join(st['sparse_masks']['matched'])} nets whose width makes their parameter count "
        f"closest to the masked nets' active parameters (any width with two channels per GroupNorm group, its "
        f"groups the largest divisor up to `model.groups`; a reference more than {MATCH_TOLERANCE:.0%} off its target "
        f"is reported as such) and against the dense wt of the same width (equal total parameters); design grid of depths "
        f"{st['design_guidelines']['depths']} × widths {st['design_guidelines']['widths']} × densities "
        f"{st['design_guidelines']['densities']}; memory and time per step over depths "
        f"{st['memory_vs_depth']['depths']} ({st['memory_vs_depth']['epochs']} epoch).",
        f"- Second paradigm (item 8): anil2022's {SEQUENCE_TASK.replace('_', ' ')} (same generator, this paper's own "
        f"seeded files), trained on {op['data']['train_bits']} bits at depth {op['depth']}, width {op['width']} "
        f"(masked: density {op['density']}), upward generalization to {op['data']['harder_bits']} bits with up to "
        f"{op['eval']['max_iters']} test-time iterations. Harder is harder: from the zero state, {op['depth']} steps "
        f"carry information {sequence_reach(op['depth'])} positions (the injection convolution, two convolutions per "
        "step after the first), and the last parity of an n-bit string depends on a bit n − 1 away; every harder "
        "length lies beyond that reach (tests/test_difficulty.py).",
        f"- Scorecard: claim 1 is a benchmark, not a hypothesis; claims 2, 3 and 5 compare groups of runs by "
        f"bootstrap over runs and give a verdict only with at least {MIN_PER_GROUP} runs in every group (else *too "
        f"few models*); claim 4 scores each factor's main effect (highest minus lowest level, over cells equal in the "
        f"other factors), seeds resampled within each cell, at least {MIN_PER_GROUP} per cell; claim 5 cannot be "
        f"scored where both groups sit within {ROOM} of accuracy 1 or 0 (no difference can show there).",
    ]
    return "\n".join(lines)
