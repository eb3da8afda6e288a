"""torch's Adam, AdamW and FLOP counter without their torch.compile guards, which cost a short job over a second.

torch's optimizers wrap ``step`` (``_use_grad_for_differentiable``) and ``add_param_group``, ``zero_grad``,
``state_dict``, ``load_state_dict`` (``torch._disable_dynamo``) in guards for torch.compile, and so does its
FLOP-counting dispatch mode (``TorchDispatchMode.__init_subclass__``); each imports ``torch._dynamo`` on first
call: 1.1-1.6 s of CPU measured with torch 2.14 on this project's 2-core machine, a third of a miniature
training job (issue 22). eebench compiles neither, so the guards do nothing here but that import. These are
torch's own classes with the guarded methods replaced by the functions the guards wrap (``inspect.unwrap``):
the same arithmetic, optimizer state and state-dict format (a checkpoint of one loads into the other), the same
counts. ``step`` keeps what its guard does besides the graph break: gradients off during the update unless the
optimizer is ``differentiable``.
"""
from __future__ import annotations

import inspect

import torch
from torch.utils.flop_counter import FlopCounterMode, _FlopCounterMode

_GUARDED_OPTIMIZER_METHODS = ("add_param_group", "zero_grad", "state_dict", "load_state_dict")


def _unguarded_optimizer(optimizer_class: type[torch.optim.Optimizer]) -> type[torch.optim.Optimizer]:
    raw_step = inspect.unwrap(optimizer_class.step)

    def step(self, closure=None):
        with torch.set_grad_enabled(self.defaults["differentiable"]):
            return raw_step(self, closure)

    methods = {name: inspect.unwrap(getattr(torch.optim.Optimizer, name)) for name in _GUARDED_OPTIMIZER_METHODS}
    step.__doc__ = optimizer_class.step.__doc__
    return type(optimizer_class.__name__, (optimizer_class,), {
        **methods, "step": step, "__module__": __name__,
        "__doc__": f"torch.optim.{optimizer_class.__name__} without its torch.compile guards (module docstring)."})


AdamW = _unguarded_optimizer(torch.optim.AdamW)
Adam = _unguarded_optimizer(torch.optim.Adam)


class _UnguardedDispatch(_FlopCounterMode):
    __torch_dispatch__ = inspect.unwrap(_FlopCounterMode.__torch_dispatch__)

    @classmethod
    def _should_skip_dynamo(cls) -> bool:  # read when a subclass is made: keeps the guard off this class
        return False


class FlopCounter(FlopCounterMode):
    """torch.utils.flop_counter.FlopCounterMode, counting through the unguarded dispatch mode."""

    def __enter__(self):  # FlopCounterMode.__enter__ (torch 2.14), with the mode class swapped
        self.flop_counts.clear()
        self.mod_tracker.__enter__()
        self.mode = _UnguardedDispatch(self)
        self.mode.__enter__()
        return self
