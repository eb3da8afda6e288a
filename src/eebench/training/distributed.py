"""Data-parallel training with torch.distributed, one node, one process per GPU (or CPU processes with gloo).

``launch`` starts the workers (torchrun's own launcher, in-process); each worker joins the process group with
``process_world`` and trains with a ``World`` describing its place. The global batch of the training config
is split across ranks so that a data-parallel run computes the same updates as a single process, up to
floating-point reduction order: batch-norm statistics are synchronised over the global batch, and each rank's
loss is weighted by its share of the batch before DDP averages the gradients.
"""
from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn

# What torchrun's agent forwards to its workers; SIGUSR1 is added to its defaults because SLURM sends it
# (``--signal``) before a time limit or preemption.
FORWARDED_SIGNALS = "SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1"


@dataclass(frozen=True)
class World:
    """This process's place among the data-parallel ranks; the default is a single process."""

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    def wrap(self, model: nn.Module, find_unused_parameters: bool) -> nn.Module:
        """The module to call in training: ``model`` itself, or a DDP wrapper that averages gradients."""
        if self.size == 1:
            return model
        return nn.parallel.DistributedDataParallel(
            model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
            find_unused_parameters=find_unused_parameters,
        )

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (a single process gets ``values`` back untouched)."""
        if self.size == 1:
            return values
        tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return tensor.tolist()

    def broadcast(self, array: np.ndarray) -> np.ndarray:
        """Rank 0's ``array`` on every rank, so that decisions taken from it are the same everywhere."""
        if self.size == 1:
            return array
        tensor = torch.as_tensor(np.asarray(array, dtype=np.float64), device=self.device).contiguous()
        dist.broadcast(tensor, src=0)
        return tensor.cpu().numpy()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, indexed by rank."""
        if self.size == 1:
            return [obj]
        gathered: list[Any] = [None] * self.size
        dist.all_gather_object(gathered, obj)
        return gathered

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()


@contextlib.contextmanager
def process_world() -> Iterator[World]:
    """This process's world. Inside a torchrun worker with WORLD_SIZE > 1 it joins the process group (nccl
    on cuda:LOCAL_RANK when CUDA is available, gloo on the CPU otherwise) and leaves it on exit; otherwise a
    single process on the default device."""
    size = int(os.environ.get("WORLD_SIZE", "1"))
    if size == 1:
        yield World(device=torch.device("cuda" if torch.cuda.is_available() else "cpu"))
        return
    _terminate_with_launcher()
    if torch.cuda.is_available():
        local_rank = int(os.environ["LOCAL_RANK"])
        if local_rank >= torch.cuda.device_count():
            raise ValueError(f"worker {local_rank}: only {torch.cuda.device_count()} GPUs visible; lower --nproc")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        device, backend = torch.device("cpu"), "gloo"
    # Generous timeout: every rank validates on the full validation split, which may take a while.
    dist.init_process_group(backend, timeout=timedelta(hours=1))
    try:
        yield World(dist.get_rank(), size, device)
    finally:
        dist.destroy_process_group()


def _terminate_with_launcher() -> None:
    """Linux: ask for SIGTERM when the launcher dies, even by SIGKILL, so that a worker checkpoints and stops
    rather than training on orphaned beside the job's rerun. (Before this call a worker cannot outlive it
    either: joining the process group needs the rendezvous store, which lives in the launcher.)"""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``python -m eebench.cli *argv`` in ``nproc`` workers on this node (torchrun --standalone, so
    concurrent jobs never share a port) and wait. Returns this command's exit status: ``EXIT_PREEMPTED`` if the
    job was signalled (the agent forwards the signal; the workers checkpoint and stop) or a worker was
    preempted, otherwise the status of the worker that failed first."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    from eebench.training.preemption import EXIT_PREEMPTED, PREEMPTION_SIGNALS

    args = parse_args(["--standalone", f"--nproc-per-node={nproc}", f"--signals-to-handle={FORWARDED_SIGNALS}",
                       "--module", "eebench.cli"])
    # Set after parsing: torchrun's parser would take e.g. our --nproc for an abbreviation of its own options.
    args.training_script_args = list(argv)
    try:
        run(args)
    except SignalException as error:
        return EXIT_PREEMPTED if error.sigval in PREEMPTION_SIGNALS else 128 + int(error.sigval)
    except ChildFailedError as error:
        if any(failure.exitcode == EXIT_PREEMPTED for failure in error.failures.values()):
            return EXIT_PREEMPTED
        code = error.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code  # a worker killed by signal s: 128 + s, as a shell reports it
    return 0


class _AllReduceSum(torch.autograd.Function):
    """Sum over ranks, differentiably: every rank's output feeds every rank's loss, so the gradient is the
    sum of the ranks' gradients."""

    @staticmethod
    def forward(ctx: Any, tensor: Tensor) -> Tensor:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        return tensor

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class CpuSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """Synchronised batch norm for CPU tensors, which ``nn.SyncBatchNorm`` (and DDP with it) refuses: in
    training, the mean and then the variance about it are summed over ranks with differentiable all-reduces,
    so statistics and gradients are those of the global batch; in eval mode it is plain batch norm."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: Tensor) -> Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]
        shape = [1, -1] + [1] * (input.dim() - 2)
        count = torch.tensor([input.numel() // input.size(1)], dtype=input.dtype, device=input.device)
        totals = _AllReduceSum.apply(torch.cat([input.sum(dims), count]))
        n = totals[-1]
        mean = totals[:-1] / n
        centred = input - mean.view(shape)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.lerp_(mean.detach(), momentum)
                self.running_var.lerp_(var.detach() * n / (n - 1), momentum)  # unbiased, as nn.BatchNorm
        return out


def sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Make every BatchNorm of ``model`` synchronised, in place: ``nn.SyncBatchNorm`` on GPUs, and on the
    CPU the same layers re-classed as ``CpuSyncBatchNorm``. Parameters and buffers stay, so does the state dict."""
    if device.type != "cpu":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)):
            module.__class__ = CpuSyncBatchNorm  # same attributes; only forward differs
    return model
