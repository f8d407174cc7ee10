"""Where presets come from: the ones shipped with scaletui, and the user's own directory.

Lookup order for a name: an existing file path, then the user presets directory
(``$SCALETUI_PRESETS_DIR``, else ``~/.config/scaletui/presets``), then the shipped presets.
"""

from __future__ import annotations

import dataclasses
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from scaletui.config import Config, ConfigError, config_to_toml, parse_toml
from scaletui.store import atomic_write_bytes


def shipped_presets_dir() -> Path:
    """Inside an installed wheel the presets sit in the package; in a source checkout, at the repo root."""
    packaged = Path(__file__).parent / "presets"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parent.parent / "presets"


def user_presets_dir() -> Path:
    configured = os.environ.get("SCALETUI_PRESETS_DIR")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "scaletui" / "presets"


@dataclass(frozen=True)
class PresetInfo:
    name: str
    path: Path
    description: str
    origin: str  # "shipped" or "user"


def _describe(path: Path) -> str:
    """A preset's description for listings, as plain printable text whatever the file holds."""
    try:
        data = parse_toml(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return f"(unreadable: {exc.__class__.__name__})"
    except ConfigError as exc:
        return f"(unreadable: {exc.problem})"
    description = data.get("description", "")
    return shown_escaped(description) if isinstance(description, str) else ""


def shown_escaped(text: str) -> str:
    """Control characters written as escapes (``\\x1b``), so text from a file cannot drive the terminal."""
    return "".join(c.encode("unicode_escape").decode() if unicodedata.category(c) == "Cc" else c for c in text)


def list_presets() -> list[PresetInfo]:
    """User presets shadow shipped ones of the same name."""
    found: dict[str, PresetInfo] = {}
    for origin, folder in (("shipped", shipped_presets_dir()), ("user", user_presets_dir())):
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found[path.stem] = PresetInfo(path.stem, path, _describe(path), origin)
    return sorted(found.values(), key=lambda p: p.name)


def resolve_preset(ref: str) -> Path:
    """A preset file from a path or a preset name."""
    path = Path(ref)
    if path.is_file():
        return path
    if path.exists():
        raise ConfigError("preset", f"{ref} is not a file")
    if len(path.parts) > 1 and path.parent.name != "presets":
        raise ConfigError("preset", f"{ref}: no such file")
    # "presets/smoke.toml" names the shipped preset from any working directory.
    name = path.stem if path.suffix == ".toml" else ref
    for preset in list_presets():
        if preset.name == name:
            return preset.path
    known = ", ".join(p.name for p in list_presets()) or "none"
    raise ConfigError("preset", f"no file or preset named {ref!r} (presets: {known})")


def preset_slug(name: str) -> str:
    """The file name a preset is saved under: letters, digits, '-' and '_', other runs of characters as '-'."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")


def save_user_preset(cfg: Config, name: str) -> Path:
    """Save a config as the user preset ``name`` (its slug), atomically; returns the file written.

    Raises ValueError when the name has no letter or digit, OSError when the folder cannot be written.
    The preset's ``name`` field is the slug, so it loads back under the name it is listed by.
    """
    slug = preset_slug(name)
    if not slug:
        raise ValueError("a preset name needs letters or digits")
    folder = user_presets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{slug}.toml"
    atomic_write_bytes(path, config_to_toml(dataclasses.replace(cfg, name=slug)).encode())
    return path
