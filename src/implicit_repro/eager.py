"""torch without its 1.2 CPU-second import of torch._dynamo, where nothing is compiled.

torch wraps optimizer methods (``add_param_group``, ``state_dict``, ``load_state_dict``, ...) and a
dispatch mode's ``__torch_dispatch__`` (``measure.LiveBytes``) in ``torch._disable_dynamo``, which
imports ``torch._dynamo`` on the first call to turn compilation off for that method, and an
optimizer's ``step`` in a wrapper that imports it to insert a graph break: 1.2 CPU-seconds in every
training job (torch 2.13, one thread), as much again as importing torch itself. At `small`
that is 353 jobs × 1.2 s, about 7% of the whole run's CPU time, spent making sure that code which is
never compiled is not compiled.

``no_dynamo_import`` marks a class's disabled methods as disabled already, with themselves (torch's
wrapper then calls them directly, which is what the disabled version does outside compilation).
``Adam`` is torch.optim.Adam with its methods so marked, and
``step`` runs torch's own update under ``no_grad``, which is what the wrapper does for a
non-differentiable optimizer (the graph break does nothing outside compilation). The arithmetic is
torch's (tests/test_eager.py trains with both and compares the weights bit for bit). Where
torch's wrappers are not the ones this expects (another torch version), the methods are left as
they are and the import happens as before.
"""

from __future__ import annotations

import inspect

import torch

# The marker torch._compile._disable_dynamo's wrapper looks for on the function it wraps.
_MARKER = "__dynamo_disable"


def _wrapper_code():
    return torch._disable_dynamo(lambda: None).__code__


def no_dynamo_import(*classes: type) -> int:
    """Mark the dynamo-disabled methods of ``classes`` (and their bases) as plain; how many were."""
    probe, marked = _wrapper_code(), 0
    for cls in classes:
        for klass in cls.__mro__:
            for attr in vars(klass).values():
                wrapped = getattr(attr, "__wrapped__", None)
                if getattr(attr, "__code__", None) is probe and wrapped is not None:
                    if getattr(wrapped, _MARKER, None) is None:
                        setattr(wrapped, _MARKER, wrapped)
                        marked += 1
    return marked


_TORCH_STEP = inspect.unwrap(torch.optim.Adam.step)  # torch's update, without its dynamo wrapper
no_dynamo_import(torch.optim.Adam)  # once, for every instance


class Adam(torch.optim.Adam):
    """torch.optim.Adam, without importing torch._dynamo (see the module's docstring)."""

    def __init__(self, params, **settings):
        super().__init__(params, **settings)
        if self.defaults["differentiable"]:
            raise ValueError("a differentiable Adam needs torch's own step: use torch.optim.Adam")

    @torch.no_grad()
    def step(self, closure=None):
        return _TORCH_STEP(self, closure)
