"""The scaletui app: the runs screen first, the explorer for one run or a new experiment.

Screens live in their own modules; the app only routes between them and asks, on quit, what to do
with runs it started that are still going (they run in their own sessions and can be left running).
"""

from __future__ import annotations

import gc
from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Button, Static

from scaletui.present import count
from scaletui.store import Run, StoreError
from scaletui.tui.dialogs import box_css
from scaletui.tui.explorer import ExplorerScreen, RunLaunched
from scaletui.tui.runs import RunsScreen


class QuitDialog(ModalScreen[str]):
    """Runs started here are still going: stop them, leave them running, or stay."""

    BINDINGS = [Binding("escape", "dismiss('cancel')", "Cancel")]
    DEFAULT_CSS = (
        box_css("QuitDialog", 64, border="thick $warning")
        + """
    QuitDialog Horizontal { height: auto; margin-top: 1; }
    QuitDialog Button { margin-right: 1; }
    """
    )

    def __init__(self, live: list[str]) -> None:
        super().__init__()
        self.live = live

    def compose(self) -> ComposeResult:
        with Vertical(id="box"):
            one = len(self.live) == 1
            still, them = ("is", "it") if one else ("are", "them")
            yield Static(
                f"{count(len(self.live), 'run')} started here {still} still running:\n  "
                + "\n  ".join(self.live)
                + f"\n\nLeave {them} running and {'it goes' if one else 'they go'} on after you quit; "
                "`scaletui` finds " + ("it" if one else "them") + " again."
            )
            with Horizontal():
                yield Button("Leave running (l)", id="leave", variant="primary")
                yield Button(f"Stop {them} (s)", id="stop", variant="error")
                yield Button("Cancel (esc)", id="cancel")

    def on_key(self, event) -> None:
        if event.key in ("l", "s"):
            self.dismiss({"l": "leave", "s": "stop"}[event.key])

    @on(Button.Pressed)
    def chosen(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id or "cancel")


def run_label(run_dir: Path) -> str:
    """A run as the user knows it, its name with its id (as the runs screen's dialogs name it)."""
    try:
        name = Run(run_dir).config.name
    except StoreError:
        return run_dir.name
    return f"{name} ({run_dir.name})" if name else run_dir.name


class ScaletuiApp(App[None]):
    """Browse, launch, watch and compare scaling-law sweeps."""

    TITLE = "scaletui"
    CSS_PATH = "scaletui.tcss"
    # `?` reaches the app from every screen: the form's editor leaves it alone (see FieldEditor); only a
    # dialog's text field, where a name or a path is typed, takes it as a character.
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("question_mark", "help", "Help"),
        Binding("f12", "screenshot", "Save SVG", show=False),
    ]

    def __init__(self, runs_dir: Path, open_run: Path | None = None) -> None:
        super().__init__()
        self.runs_dir = runs_dir
        self.open_at_start = open_run
        self.launched: dict[Path, None] = {}  # in launch order; a run resumed here is one run, not two

    def on_mount(self) -> None:
        # The objects built at start-up live as long as the app: keeping them out of the cyclic garbage
        # collector's full passes removes pauses of a few hundred milliseconds between key presses.
        self.call_after_refresh(gc.freeze)
        self.push_screen(RunsScreen(self.runs_dir))
        if self.open_at_start is not None:
            self.push_screen(ExplorerScreen(self.runs_dir, run_dir=self.open_at_start))

    @on(RunsScreen.RunChosen)
    def open_chosen(self, message: RunsScreen.RunChosen) -> None:
        self.push_screen(ExplorerScreen(self.runs_dir, run_dir=message.run_dir))

    @on(RunsScreen.NewExperimentRequested)
    def new_experiment(self) -> None:
        self.push_screen(ExplorerScreen(self.runs_dir))

    @on(RunLaunched)
    def remember_launch(self, message: RunLaunched) -> None:
        self.launched[message.run_dir] = None

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands, then one for every key of the screen the palette was opened on."""
        yield from super().get_system_commands(screen)
        from scaletui.tui.dialogs import screen_keys

        for key, description, namespace, action in screen_keys(screen):

            def run(namespace: object = namespace, action: str = action) -> None:
                self.call_later(self.run_action, action, namespace)

            yield SystemCommand(description, f"key: {key}", run)

    def action_help(self) -> None:
        from scaletui.tui.dialogs import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_screenshot(self) -> None:
        """The screen as it is, as an SVG picture in the working directory (Textual draws it)."""
        import time

        name = time.strftime("scaletui-%Y%m%d-%H%M%S.svg")
        try:
            path = self.save_screenshot(filename=name, path=str(Path.cwd()))
        except OSError as exc:
            self.notify(f"cannot save the picture: {exc}", severity="error", markup=False)
            return
        self.notify(f"saved {path}", markup=False)

    def live_launched(self) -> list[Path]:
        live = []
        for run_dir in self.launched:
            try:
                if Run(run_dir).status().is_live:
                    live.append(run_dir)
            except StoreError:
                continue
        return live

    async def action_quit(self) -> None:
        live = self.live_launched()
        if not live:
            self.exit()
            return

        def decide(choice: str | None) -> None:
            if choice == "stop":
                from scaletui.runner import request_stop

                for run_dir in live:
                    try:
                        request_stop(Run(run_dir))
                    except StoreError:
                        continue
            if choice in ("stop", "leave"):
                # After the dialog is gone from the screen: exiting at once leaves its last frame painted in
                # the shell the app returns to.
                self.call_after_refresh(self.exit)

        self.push_screen(QuitDialog([run_label(p) for p in live]), decide)
