"""The export flow both screens share: choose a table and a file, confirm a replace, write off the UI thread.

The runs screen exports with the default fit options (what `scaletui export` writes); the explorer with the
options its fit controls chose, so that a CSV holds the numbers on the screen it came from.
"""

from __future__ import annotations

from pathlib import Path

from textual.screen import Screen

from scaletui.analysis import FitOptions
from scaletui.export import FORMATS, export_to_file
from scaletui.store import Run
from scaletui.tui.dialogs import ChoiceDialog, ConfirmDialog


def ask_and_export(screen: Screen, run_dirs: list[Path], label: str, stem: str, options: FitOptions) -> None:
    """Ask for the table and the file, then export ``run_dirs`` (``label`` names them in the heading)."""
    app = screen.app
    folder = run_dirs[0].parent.parent

    def suggest(what: str) -> str:
        return str(folder / f"{stem}-{what}.csv")

    def write(what: str, path: Path, force: bool) -> None:
        def work() -> None:  # a fit or per-width export bootstraps and reads every model's outputs
            count = export_to_file([Run(d) for d in run_dirs], what, path, options, force=force)
            app.call_from_thread(screen.notify, f"wrote {count} rows to {path}", markup=False)

        screen.run_worker(work, thread=True, group="export", exit_on_error=False)

    def chosen(answer: tuple[str, str] | None) -> None:
        if answer is None:
            return
        what, text = answer
        if not text.strip():
            screen.notify("give a file to export to", severity="error")
            return
        path = Path(text.strip()).expanduser()
        if path.is_dir():
            screen.notify(f"{path} is a directory; give a file name", severity="error", markup=False)
        elif path.exists():
            app.push_screen(
                ConfirmDialog(f"{path} exists. Replace it?", "Replace"),
                lambda ok: write(what, path, True) if ok else None,
            )
        else:
            write(what, path, False)

    heading = f"Export {label} as CSV: choose the table, then the file."
    app.push_screen(ChoiceDialog(heading, FORMATS, "per-width", suggest, "Export"), chosen)
