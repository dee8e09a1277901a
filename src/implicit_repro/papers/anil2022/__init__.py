"""anil2022 — Anil et al., NeurIPS 2022, "Path Independent Equilibrium Models Can Better Exploit
Test-Time Computation": its grid, evaluation (AA, adversarial initial states, limit cycles), items,
claims and documented choices. Its five tasks (data generators, cells) live in the shared
``implicit_repro.data`` and ``implicit_repro.models``, which song2023 reuses for prefix sums."""
