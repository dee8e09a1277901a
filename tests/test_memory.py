"""Training memory: saved-tensor bytes grow with unrolled depth and stay flat under implicit
differentiation; parameter, gradient and optimizer state are counted exactly."""

import pytest
import torch
from torch import nn

from implicit_repro.deq import deq_fixed_point
from implicit_repro.measure import CPU_MEASURE, MemoryMeter, saved_tensor_bytes, state_bytes

DEPTHS = (1, 2, 4, 8)




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


def saved(loss_fn, depth):
    model, x = Toy(), data()
    with saved_tensor_bytes() as counter:
        loss = loss_fn(model, x, depth)
    loss.backward()  # the graph is usable after counting
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    return counter.bytes


def test_unrolled_memory_grows_linearly_with_depth_and_is_deterministic():
    b = {L: saved(unrolled_loss, L) for L in DEPTHS}
    per_step = b[2] - b[1]
    assert per_step > 0
    assert all(b[L] == b[1] + (L - 1) * per_step for L in DEPTHS)
    assert saved(unrolled_loss, 4) == b[4]


def test_implicit_differentiation_memory_does_not_grow_with_the_solver():
    b = {L: saved(ift_loss, L) for L in DEPTHS}
    assert len(set(b.values())) == 1 and b[1] > 0
    assert b[8] < saved(unrolled_loss, 8)
    assert saved(ift_loss, 8) == b[8]


def test_each_storage_counts_once_and_parameters_are_left_to_state_bytes():
    a = torch.randn(1000, requires_grad=True)
    with saved_tensor_bytes() as counter:
        h = a.exp()  # saves its result h (4000 bytes); does not save the leaf a
        (h * h).sum()  # saves h twice: still the same storage
    assert counter.bytes == 4000
    with saved_tensor_bytes() as counter:
        a.sin().sum()  # saves only the leaf (a parameter, counted by state_bytes)
    assert counter.bytes == 0
    weight = torch.randn(3, 1000, requires_grad=True)
    with saved_tensor_bytes() as counter:
        h = a.exp()
        (h.view(1, 1000) @ weight.t()).sum()  # saves a view of h and weight.t(), a view of a parameter
    assert counter.bytes == 4000


def test_state_bytes_counts_parameters_gradients_and_adam_moments():
    torch.manual_seed(0)
    model = nn.Linear(3, 2)  # 6 + 2 = 8 float32 parameters = 32 bytes
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    assert state_bytes(model, opt) == 32 + 32  # parameters + gradients, no optimizer state yet
    model(torch.randn(4, 3)).sum().backward()
    opt.step()
    # + exp_avg and exp_avg_sq (32 bytes each) + one float32 step counter per parameter tensor
    assert state_bytes(model, opt) == 32 + 32 + 2 * 32 + 2 * 4
    model.bias.requires_grad_(False)
    assert state_bytes(model) == 32 + 24  # a frozen parameter has no gradient


def test_meter_reports_the_largest_step_plus_state_on_the_cpu():
    model, x = Toy(), data()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    meter = MemoryMeter("cpu")
    for depth in (4, 2):
        with meter.step():
            loss = unrolled_loss(model, x, depth)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert meter.finish(model, opt) == {"memory_bytes": saved(unrolled_loss, 4) + state_bytes(model, opt),
                                        "memory_measure": CPU_MEASURE}


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_meter_reports_the_peak_allocation_on_cuda():
    model, x = Toy().cuda(), data().cuda()
    meter = MemoryMeter("cuda")
    with meter.step():
        loss = unrolled_loss(model, x, 8)
    loss.backward()
    out = meter.finish(model)
    assert out["memory_measure"] == "cuda_peak_allocated" and out["memory_bytes"] > 0
