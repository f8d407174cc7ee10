"""The core has no face: training, storage and analysis load neither Textual nor Typer, and what
readers need (config, store, presets) does not even load torch, so listing runs stays fast."""

from __future__ import annotations

import ast
import subprocess
import sys

CORE = [
    "config",
    "expressions",
    "targets",
    "mlp",
    "levenberg",
    "engine",
    "fused",
    "environment",
    "store",
    "runner",
    "ray_executor",
    "local_executor",
    "presets",
    "analysis",
    "bootstrap",
    "intrinsic",
    "lottery",
    "export",
    "system",
    "figures",
    "grid",
    "joint",
    "api",
]
# system: never torch, so never CUDA in the UI process
READERS = [
    *("config", "expressions", "store", "presets", "analysis", "bootstrap", "intrinsic", "lottery", "seeds"),
    *("export", "system", "grid", "joint", "api"),
]


def loaded_packages(modules: list[str], packages: tuple[str, ...]) -> list[str]:
    code = (
        "import sys\n"
        + "".join(f"import scaletui.{m}\n" for m in modules)
        + f"print(sorted({{m.split('.')[0] for m in sys.modules}} & {set(packages)!r}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return ast.literal_eval(out.stdout)


def test_core_modules_import_without_ui_libraries():
    assert loaded_packages(CORE, ("textual", "typer", "rich", "plotext")) == []


def test_reading_runs_does_not_load_torch():
    assert loaded_packages(READERS, ("torch",)) == []
    # A notebook's `import scaletui` then `scaletui.open_run` stays a reader, pandas only when asked for.
    assert loaded_packages(["api"], ("torch", "pandas", "textual")) == []
    # The check itself can fail: the engine does load torch.
    assert loaded_packages(["engine"], ("torch",)) == ["torch"]
