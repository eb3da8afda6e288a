"""The signals that ask a training run to stop with a checkpoint, and what it raises and exits with then.

SIGTERM or SIGUSR1 (what SLURM sends before preempting, or with ``--signal``) only sets a flag; the loop checks it
after each batch, writes its resume checkpoint (eebench.training.checkpoints) and raises ``Preempted``, which the
CLI turns into exit status ``EXIT_PREEMPTED``. No eebench import: the data-parallel launcher
(eebench.training.distributed) maps a worker's status with these as well.
"""
from __future__ import annotations

import contextlib
import signal
from dataclasses import dataclass
from typing import Any, Iterator

EXIT_PREEMPTED = 75  # EX_TEMPFAIL, sysexits' "temporary failure; retry": a failure to Snakemake and SLURM
PREEMPTION_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(Exception):
    """Training stopped on SIGTERM/SIGUSR1 after writing its resume checkpoint."""


@dataclass
class PreemptionFlag:
    requested: bool = False


@contextlib.contextmanager
def preemption_signals(enabled: bool = True) -> Iterator[PreemptionFlag]:
    """While active, SIGTERM and SIGUSR1 set the yielded flag instead of ending the process: the loop then
    stops at the next batch boundary with a checkpoint. Disabled, the flag simply stays down."""
    flag = PreemptionFlag()
    if not enabled:
        yield flag
        return

    def request(signum: int, frame: Any) -> None:
        flag.requested = True

    previous = {sig: signal.signal(sig, request) for sig in PREEMPTION_SIGNALS}
    try:
        yield flag
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
