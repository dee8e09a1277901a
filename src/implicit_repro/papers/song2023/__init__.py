"""song2023 — Song, Majumder & Lin, 2023, "Revisiting Implicit Models: Sparsity Trade-offs Capability
in Weight-tied Model for Vision Tasks": everything about it lives here — its grid of studies, its
datasets, the shared block and its variants, its evaluation, items, claims and documented choices.
Only the abstract of the paper is known; every design value is this project's choice."""
