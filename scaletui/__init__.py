"""scaletui: a terminal explorer for neural scaling-law experiments.

For notebooks: ``scaletui.open_run(ref, runs_dir=...)`` and ``scaletui.list_runs(runs_dir)`` (scaletui/api.py),
loaded on first use so that ``import scaletui`` stays cheap for the CLI and the runner.
"""

from typing import Any

__version__ = "0.1.0"
__all__ = ["list_runs", "open_run"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from scaletui import api  # lazy: numpy, scipy and the store are not needed to import the package

        return getattr(api, name)
    raise AttributeError(f"module 'scaletui' has no attribute {name!r}")
