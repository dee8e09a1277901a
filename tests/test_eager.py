"""eager.py: torch.optim.Adam's arithmetic, bit for bit, without importing torch._dynamo."""

import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from implicit_repro.eager import Adam, no_dynamo_import

SRC = Path(__file__).resolve().parent.parent / "src"


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv1d(3, 8, 3), torch.nn.ReLU(), torch.nn.Conv1d(8, 2, 3))


def _train(optimizer_class, resume_at: int | None = None) -> list[torch.Tensor]:
    """30 steps of a small conv net with weight decay and a changing learning rate; with
    ``resume_at``, the optimizer is rebuilt from its state dict there, as a resumed job's is."""
    net = _net()
    opt = optimizer_class(net.parameters(), lr=1e-2, weight_decay=0.01)
    g = torch.Generator().manual_seed(1)
    for i in range(30):
        if i == resume_at:
            state = opt.state_dict()
            opt = optimizer_class(net.parameters(), lr=1e-2, weight_decay=0.01)
            opt.load_state_dict(state)
        for group in opt.param_groups:
            group["lr"] = 1e-2 / (1 + i)
        opt.zero_grad(set_to_none=True)
        net(torch.randn(4, 3, 10, generator=g)).pow(2).mean().backward()
        opt.step()
    return [p.detach().clone() for p in net.parameters()]


def test_adam_updates_the_weights_as_torch_does_bit_for_bit():
    ours, torchs = _train(Adam), _train(torch.optim.Adam)
    assert all(torch.equal(a, b) for a, b in zip(ours, torchs))
    assert not any(torch.equal(a, b) for a, b in zip(ours, _net().parameters()))  # the weights did move
    resumed = _train(Adam, resume_at=12)
    assert all(torch.equal(a, b) for a, b in zip(resumed, torchs))


def test_a_training_step_and_a_metered_step_do_not_import_dynamo():
    # A fresh interpreter: this test process may have imported torch._dynamo already.
    script = textwrap.dedent("""
        import sys
        import torch
        from implicit_repro.eager import Adam
        from implicit_repro.measure import LiveBytes
        net = torch.nn.Linear(4, 2)
        opt = Adam(net.parameters(), lr=1e-3)
        with LiveBytes():
            net(torch.ones(3, 4)).sum().backward()
        opt.step()
        opt.load_state_dict(opt.state_dict())
        print("torch._dynamo" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "False"


def test_marking_leaves_methods_without_torchs_wrapper_alone():
    class Plain:
        def method(self):
            return 1

    assert no_dynamo_import(Plain) == 0
    assert not hasattr(Plain.method, "__dynamo_disable")
