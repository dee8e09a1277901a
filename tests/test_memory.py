"""Training memory on the CPU, counted as a device allocator would: every storage an op allocates
while it is alive, forward, solver state and backward alike, checked against cases computed by hand."""

import pytest
import torch
from torch import nn

from implicit_repro.deq import deq_fixed_point
from implicit_repro.deq.solvers import solve
from implicit_repro.measure import CPU_MEASURE, LiveBytes, MemoryMeter, resident_bytes, storage_bytes

F32 = 4


class Toy(nn.Module):
    """f(z; x) = tanh(W z + U x), a contraction for small W."""

    def __init__(self, width=16, inputs=8):
        super().__init__()
        torch.manual_seed(0)
        self.w = nn.Linear(width, width, bias=False)
        self.u = nn.Linear(inputs, width)
        self.head = nn.Linear(width, 2)
        with torch.no_grad():
            self.w.weight.mul_(0.3)

    def step(self, z, x):
        return torch.tanh(self.w(z) + self.u(x))


def data(batch=4, inputs=8):
    return torch.randn(batch, inputs, generator=torch.Generator().manual_seed(1))


def unrolled_loss(model, x, depth):
    z = x.new_zeros(len(x), 16)
    for _ in range(depth):
        z = model.step(z, x)
    return model.head(z).sum()


def ift_loss(model, x, depth):
    z, _ = deq_fixed_point(lambda z: model.step(z, x), x.new_zeros(len(x), 16), solver="fixed_point", grad="ift",
                           max_iter=depth, tol=0.0)
    return model.head(z).sum()


def step_peak(loss_fn, depth):
    """Peak live bytes of one training step (forward and backward) from no gradients."""
    model, x = Toy(), data()
    with LiveBytes() as live:
        loss_fn(model, x, depth).backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    return live.peak


def test_allocations_and_frees_are_counted_as_an_allocator_counts_them():
    with LiveBytes() as live:
        a = torch.empty(1000)            # 4,000 bytes live
        b = torch.empty(2000)            # 12,000: the peak
        del a                            # 8,000
        c = torch.empty(500)             # 10,000
        v = b.view(20, 100)              # a view allocates nothing
    assert (live.peak, live.live) == (12_000, 10_000)
    del b, c, v


def test_the_backward_pass_is_counted_by_hand():
    x = torch.randn(1000, requires_grad=True)  # a leaf from before: not counted
    with LiveBytes() as live:
        h = x.exp()                      # 4,000 (saved for backward)
        loss = h.sum()                   # + 4 (a scalar)
        loss.backward()                  # + 4 (d loss = 1) + 4,000 (d x = d h * h, kept as x.grad)
    assert live.peak == 4000 + 4 + 4 + 4000
    assert live.live == 4000 + 4 + 4000  # the seed gradient is freed; h, loss and x.grad remain


def test_unrolled_memory_grows_by_one_saved_state_per_step_and_is_deterministic():
    """Backprop through L steps keeps each step's tanh output (batch x width floats) for backward;
    below a few steps the parameter gradients set the peak, so the growth is read from L = 4 on."""
    b = {L: step_peak(unrolled_loss, L) for L in (4, 8, 16)}
    per_step = 4 * 16 * F32  # batch 4 x width 16
    assert b[8] - b[4] == 4 * per_step and b[16] - b[8] == 8 * per_step
    assert step_peak(unrolled_loss, 16) == b[16]


def test_implicit_differentiation_memory_grows_only_by_the_solvers_bookkeeping():
    """IFT saves one application of f at the fixed point whatever the iterations; what grows is the
    solver's residual trace, a few floats per example per evaluation."""
    b = {L: step_peak(ift_loss, L) for L in (4, 8, 16)}
    per_iteration = (b[16] - b[8]) / 8
    assert b[8] - b[4] == 4 * per_iteration and 0 < per_iteration <= 4 * 4 * F32
    assert per_iteration < 4 * 16 * F32 and b[16] < step_peak(unrolled_loss, 16)


def test_the_solver_state_counts_anderson_history_included():
    """Anderson keeps its last m iterates and their images, (batch, m, d) each: a longer history
    holds at least 2 x (batch x d) floats more per extra slot, though no autograd graph exists."""
    batch, d = 8, 500
    x = torch.randn(batch, d, generator=torch.Generator().manual_seed(0))
    f = lambda z: 0.5 * z + x  # noqa: E731  (a contraction; its fixed point is 2x)
    peaks = {}
    for m in (2, 5):
        with LiveBytes() as live:
            solve(f, torch.zeros(batch, d), solver="anderson", max_iter=12, tol=0.0, m=m)
        peaks[m] = live.peak
    assert peaks[5] - peaks[2] >= 2 * (5 - 2) * batch * d * F32
    with LiveBytes() as live:
        solve(f, torch.zeros(batch, d), solver="fixed_point", max_iter=12, tol=0.0)
    assert live.peak < peaks[2]


def test_resident_bytes_counts_parameters_and_adam_moments_not_gradients():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)  # 6 + 2 = 8 float32 parameters = 32 bytes
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    assert resident_bytes(model, opt) == 32
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    # + exp_avg and exp_avg_sq (32 bytes each) + one float32 step counter per parameter tensor
    assert resident_bytes(model, opt) == 32 + 2 * 32 + 2 * 4
    t = torch.zeros(10)
    assert storage_bytes([t, t.view(2, 5), None]) == 40  # a storage viewed twice counts once


def test_meter_reports_the_largest_step_plus_batch_and_resident_state_on_the_cpu():
    model, x = Toy(), data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    meter = MemoryMeter("cpu")
    for depth in (4, 2):
        opt.zero_grad(set_to_none=True)
        with meter.step(held=(x,)):
            unrolled_loss(model, x, depth).backward()
        opt.step()
    expected = step_peak(unrolled_loss, 4) + x.numel() * F32 + resident_bytes(model, opt)
    assert meter.finish(model, opt) == {"memory_bytes": expected, "memory_measure": CPU_MEASURE}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_meter_reports_the_peak_allocation_on_cuda():
    model, x = Toy().cuda(), data().cuda()
    meter = MemoryMeter("cuda")
    with meter.step():
        unrolled_loss(model, x, 8).backward()
    out = meter.finish(model)
    assert out["memory_measure"] == "cuda_peak_allocated" and out["memory_bytes"] > 0
