"""A runner whose Ray workers fail on cue: the fault hook tests/test_ray.py injects (production code holds none).

``python -m tests.ray_faults RUN_DIR FAULTS_DIR`` runs scaletui's runner with the Ray executor's ``on_event``
set to :class:`Fault`. Run as ``-m``, this module is ``__main__``, so Ray's cloudpickle sends the hook to
the workers by value: they need not import the tests. In the worker training a shard, a file
``w<width>-s<first seed>.once`` in FAULTS_DIR makes it kill itself halfway through (and is used up),
``.always`` on every attempt; ``.raise`` makes the training raise an error there instead.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from scaletui import ray_executor, runner
from scaletui.engine import Event
from scaletui.store import Run

RAISED = "a fault injected by tests/ray_faults.py"


@dataclass(frozen=True)
class Fault:
    """Kill this worker outright, as a crash or a lost node would, or raise; from halfway through the shard."""

    folder: Path
    steps: int

    def __call__(self, event: Event) -> None:
        if getattr(event, "step", 0) < self.steps // 2:
            return
        base = self.folder / f"w{event.shard.width}-s{event.shard.seeds[0]}"
        with contextlib.suppress(FileNotFoundError):
            base.with_suffix(".once").unlink()
            os.kill(os.getpid(), signal.SIGKILL)
        if base.with_suffix(".always").exists():
            os.kill(os.getpid(), signal.SIGKILL)
        if base.with_suffix(".raise").exists():
            raise RuntimeError(RAISED)


def main() -> int:
    run_dir, faults = Path(sys.argv[1]), Path(sys.argv[2])
    fault = Fault(faults, Run(run_dir).config.training.steps)
    runner.run_on_ray = functools.partial(ray_executor.run_on_ray, on_event=fault)
    return runner.main([str(run_dir)])


if __name__ == "__main__":
    sys.exit(main())
