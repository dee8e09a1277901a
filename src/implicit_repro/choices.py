"""The documented choices this project made where the papers are silent, with the values in force."""

from __future__ import annotations


def choices_markdown(cfg: dict) -> str:
    lines = []
    ps = cfg.get("anil2022", {}).get("prefix_sums")
    if ps:
        d, m, t, e, ip = ps["data"], ps["model"], ps["train"], ps["eval"], ps["intervention_params"]
        lines += [
            "### anil2022, prefix sums",
            f"- Training length {d['train_bits']} bits, harder lengths {d['harder_bits']} (paper: 32 → 48–512; "
            f"the paper's own training length is unknown). Up to {d['count']} strings per length "
            f"(distinct below 24 bits, so at most 2^n), the first {d['train_fraction']:.0%} of the training "
            "length are trained on, the rest is the in-distribution test split.",
            f"- Cell: Conv1d(w+1→w) on concat[z, x] then {m['blocks']} residual block(s), width {m['width']}, no "
            "normalization; head Conv1d w→w/2→8→2 (width unknown in the paper; DT-net used 400).",
            f"- Training: Adam lr {t['lr']}, {t['epochs']} epochs, batch {t['batch_size']}, warm-up "
            f"{t['warmup_epochs']} epoch(s), milestones {t['lr_milestones']} ×{t['lr_gamma']}, grad-clip "
            f"{t['grad_clip']}, {t['iters']} forward iterations, gradient by backprop through the unrolled "
            "iterations (the paper's hyper-parameters are unknown; these follow DT-net, scaled down).",
            f"- Mixed initialization: per example, z0 = 0 or N(0, {ip['init_std']}² I) with probability "
            f"{ip['mixed_init_prob']}. Randomized budget: uniform in [{ip['budget_min']}, {ip['budget_max']}] "
            "iterations per training step.",
            f"- Evaluation: accuracy after every test-time iteration 1..{e['max_iters']} on the first "
            f"{e['n_examples']} examples of each split (exact match of all bits). AA iteration budget: "
            f"{e['aa_iters']} iterations (the paper's is unknown), over {e['aa_examples']} examples; the "
            f"all-pairs variant over a batch of {e['aa_pairs_batch']}.",
            "- A run is *diverged* when a batch loss is not finite or an epoch's mean loss exceeds "
            f"{t['blowup_loss']}; it is counted, not evaluated.",
            "- Scorecard statistics use the hardest evaluated split; claim 4 pools examples of models whose "
            "in-distribution accuracy is at least 0.9 and gives a verdict only with at least 10 correct "
            "and 10 wrong examples. A bootstrap CI is reported only when the statistic is defined on at "
            "least 95% of 2,000 resamples.",
        ]
    return "\n".join(lines) if lines else "_No experiment configured._"
