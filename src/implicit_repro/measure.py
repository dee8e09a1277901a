"""Training memory, measured the same way for every model and variant.

- On CUDA: the device's peak allocation over the measured training steps
  (``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``).
- On the CPU, where no allocator reports a peak: the same quantity counted op by op. A step runs under
  ``LiveBytes``, a dispatch mode that sees every tensor an op returns and adds its storage's bytes when
  the storage is new and takes them off when the storage is freed; its peak is what an allocator
  without a cache would have held at most during the step. So the forward solver's state (Anderson's
  history of past iterates and images, its mixing systems), the activations autograd saves, the
  backward pass (implicit differentiation's adjoint solve, the gradients) and transient buffers all
  count, as they do on the GPU. To that peak come what the device holds across steps: the
  parameters, the optimizer's state and the batch.

The CPU count is deterministic: it does not depend on the allocator, the machine or its load. It sees
only what ops allocate (a kernel's internal scratch space, say a convolution's workspace, is not a
tensor and is not counted), and it costs about 40% more time on the steps it meters, so the
training loop meters one step per epoch.

Use it in the training loop as

    meter = MemoryMeter(device)
    for each step:
        optimizer.zero_grad(set_to_none=True)    # before the step: the step allocates the gradients
        with meter.step(held=(x, y)):            # forward, loss and backward inside
            loss = ...forward...; loss.backward()
        optimizer.step()
    record.update(meter.finish(model, optimizer))   # {"memory_bytes": ..., "memory_measure": ...}
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Iterable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from implicit_repro.eager import no_dynamo_import

CPU_MEASURE = "cpu_peak_live_bytes"
CUDA_MEASURE = "cuda_peak_allocated"


class LiveBytes(TorchDispatchMode):
    """Within the block, the bytes of the storages that ops allocate and that are still alive
    (``live``) and the most that ever were (``peak``). A storage is counted once however many
    tensors view it; storages that existed before the block (parameters, say) are not counted, and
    neither is freeing them."""

    def __init__(self):
        super().__init__()
        self.live = 0
        self.peak = 0
        self._storages: dict[int, weakref.ref] = {}

    def _track(self, tensor: torch.Tensor) -> None:
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._storages:
            return
        size = storage.nbytes()

        def freed(_ref, key=key, size=size):
            if self._storages.pop(key, None) is not None:
                self.live -= size

        # A weak reference: counting must not keep a storage alive, and its callback is the free.
        self._storages[key] = weakref.ref(storage, freed)
        self.live += size
        self.peak = max(self.peak, self.live)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for value in tree_flatten(out)[0]:
            if isinstance(value, torch.Tensor):
                self._track(value)
        return out


no_dynamo_import(LiveBytes)  # its first dispatch would import torch._dynamo (eager.py)


def storage_bytes(tensors: Iterable[torch.Tensor]) -> int:
    """Bytes of the distinct storages of ``tensors`` (a storage viewed twice counts once)."""
    storages = {t.untyped_storage()._cdata: t.untyped_storage() for t in tensors if t is not None}
    return sum(storage.nbytes() for storage in storages.values())


def resident_bytes(model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> int:
    """What training holds between steps: the parameters and the optimizer's tensors (Adam's
    moments). Gradients are not among them: a step that starts from ``zero_grad(set_to_none=True)``
    allocates them, and ``LiveBytes`` counts them there."""
    tensors = list(model.parameters())
    if optimizer is not None:
        tensors += [v for state in optimizer.state.values() for v in state.values() if torch.is_tensor(v)]
    return storage_bytes(tensors)


class MemoryMeter:
    """Peak training memory over the steps measured with ``with meter.step(held=batch): ...``:
    ``finish`` returns {"memory_bytes", "memory_measure"}, the measure being "cuda_peak_allocated"
    on CUDA and "cpu_peak_live_bytes" elsewhere (the largest step's peak of live bytes + the batch
    + ``resident_bytes``)."""

    def __init__(self, device: str | torch.device):
        self.device = torch.device(device)
        self.cuda = self.device.type == "cuda"
        self.peak = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats(self.device)

    @contextmanager
    def step(self, held: Iterable[torch.Tensor] = ()) -> Iterator[None]:
        if self.cuda:
            yield
            return
        held_bytes = storage_bytes(held)
        with LiveBytes() as live:
            yield
        self.peak = max(self.peak, held_bytes + live.peak)

    def finish(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None) -> dict:
        if self.cuda:
            return {"memory_bytes": int(torch.cuda.max_memory_allocated(self.device)), "memory_measure": CUDA_MEASURE}
        return {"memory_bytes": self.peak + resident_bytes(model, optimizer), "memory_measure": CPU_MEASURE}
