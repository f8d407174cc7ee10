"""The core has no face: training, storage and analysis load neither Textual nor Typer."""

from __future__ import annotations

import subprocess
import sys

CORE = ["config", "targets", "engine", "store", "runner", "presets"]


def test_core_modules_import_without_ui_libraries():
    code = (
        "import sys\n"
        + "".join(f"import scaletui.{m}\n" for m in CORE)
        + "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('textual', 'typer', 'rich', 'plotext')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
