"""toy2024 — the example paper of the tests (not a real paper, not shipped in the config): one
prefix-sum task, two runs, one table and one claim. It uses no intervention, DEQ gradient or
divergence threshold, so its training spec holds none. tests/test_contract.py copies this folder into
a copy of the project, adds its config section and facts, and runs it through the generic rules."""
