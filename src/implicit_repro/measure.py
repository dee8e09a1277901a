"""Training memory, measured the same way for every model and variant.

- On CUDA: the device's peak allocation over the measured training steps
  (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``).
- On the CPU, where no allocator reports a peak: a deterministic count of what training holds at
  its peak — the bytes of the distinct storages autograd saves for backward during a step's forward
  pass (``torch.autograd.graph.saved_tensors_hooks``), plus parameters, their gradients and the
  optimizer's state. Transient buffers are not counted, nor the adjoint solve of implicit
  differentiation's backward pass (nor anything else the backward pass allocates); what is counted
  is exactly what differs between backprop through L unrolled steps (it saves every step's
  activations) and implicit differentiation (it saves one application of f at the fixed point).
  Parameters that autograd saves (a convolution saves its weight) are counted once, by
  ``state_bytes``, not again as saved tensors.

Use it in the training loop as

    meter = MemoryMeter(device)
    for each measured step:
        with meter.step():
            loss = ...forward...      # only the forward pass (and the loss) inside
        loss.backward(); optimizer.step()
    record.update(meter.finish(model, optimizer))   # {"memory_bytes": ..., "memory_measure": ...}
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch

CPU_MEASURE = "cpu_saved_tensors_plus_state"
CUDA_MEASURE = "cuda_peak_allocated"


class SavedBytes:
    """Counts the distinct storages that the pack hook sees (each counted once), leaving out leaf
    tensors that require grad and views of them (parameters and, say, the transposed weight a
    linear layer saves: ``state_bytes`` counts them)."""

    def __init__(self):
        self.bytes = 0
        self._held: dict[int, torch.Tensor] = {}

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        base = tensor if tensor._base is None else tensor._base
        if base.is_leaf and base.requires_grad:
            return tensor
        storage = tensor.untyped_storage()
        ptr = storage.data_ptr()
        if ptr not in self._held:
            # Holding the tensor keeps its address from being reused while it is counted.
            self._held[ptr] = tensor
            self.bytes += storage.nbytes()
        return tensor

    def release(self) -> None:
        self._held.clear()


@contextmanager
def saved_tensor_bytes() -> Iterator[SavedBytes]:
    """Within the block, count the bytes of the storages autograd saves for backward."""
    counter = SavedBytes()
    try:
        with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
            yield counter
    finally:
        counter.release()


def state_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """Parameters, their gradients (one per trainable parameter) and the optimizer's tensors."""
    params = [p for p in model.parameters()]
    total = sum(p.numel() * p.element_size() for p in params)
    total += sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    if optimizer is not None:
        for state in optimizer.state.values():
            total += sum(v.numel() * v.element_size() for v in state.values() if torch.is_tensor(v))
    return total


class MemoryMeter:
    """Peak training memory over the steps measured with ``with meter.step(): forward...``:
    ``finish`` returns {"memory_bytes", "memory_measure"}, the measure being "cuda_peak_allocated"
    on CUDA and "cpu_saved_tensors_plus_state" (the largest step's saved bytes + state_bytes)
    elsewhere."""

    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.peak_saved = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    @contextmanager
    def step(self) -> Iterator[None]:
        if self.cuda:
            yield
            return
        with saved_tensor_bytes() as counter:
            yield
            self.peak_saved = max(self.peak_saved, counter.bytes)

    def finish(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
        if self.cuda:
            return {"memory_bytes": int(torch.cuda.max_memory_allocated(self.device)), "memory_measure": CUDA_MEASURE}
        return {"memory_bytes": self.peak_saved + state_bytes(model, optimizer), "memory_measure": CPU_MEASURE}
