"""What the wizard remembers between sessions: the theme and the recent plan files.

One small JSON file in the user's config directory
(``platformdirs.user_config_dir("regwizard")``, e.g. ``~/.config/regwizard/settings.json``;
``XDG_CONFIG_HOME`` moves it). It holds no secrets: a theme name and plan file paths.

Remembering is a convenience, never a reason to fail: a missing, unreadable or corrupt
file reads as the defaults, and a file that cannot be written is left as it was. Every
write is a temp file and a rename, so a reader never sees half a file.

Plain: no textual, no rich (the CLI records the plan it opens, the UI the rest).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

FILE_NAME = "settings.json"
MAX_RECENT = 10


@dataclass
class Settings:
    theme: str = ""  # "" = Textual's default theme
    recent_plans: list[str] = field(default_factory=list)  # absolute paths, most recent first


def settings_path() -> Path:
    """Where the settings live (the directory need not exist yet)."""
    return Path(platformdirs.user_config_dir("regwizard")) / FILE_NAME


def _parse(data: object) -> Settings:
    """The settings in ``data`` (a decoded JSON value); anything malformed is left out."""
    if not isinstance(data, dict):
        return Settings()
    theme = data.get("theme")
    recent = data.get("recent_plans")
    paths: list[str] = []
    if isinstance(recent, list):
        for p in recent:
            if isinstance(p, str) and p and os.path.isabs(p) and "\0" not in p and p not in paths:
                paths.append(p)
    return Settings(theme=theme if isinstance(theme, str) else "", recent_plans=paths[:MAX_RECENT])


def load(path: Path | None = None) -> Settings:
    """The stored settings; the defaults when there are none or they cannot be read."""
    path = path or settings_path()
    try:
        text = path.read_text(encoding="utf-8")
        return _parse(json.loads(text))
    except (OSError, ValueError):  # missing, unreadable, not UTF-8, not JSON
        return Settings()


def save(settings: Settings, path: Path | None = None) -> bool:
    """Write ``settings`` atomically (dir 0700, file 0600). False when it could not be."""
    path = path or settings_path()
    data = {"theme": settings.theme, "recent_plans": settings.recent_plans[:MAX_RECENT]}
    tmp = ""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".settings-", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: mode 0600
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
        return True
    except OSError:
        if tmp:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False


def remember_theme(theme: str, path: Path | None = None) -> Settings:
    """Store ``theme`` (read afresh first: another window may have added a plan)."""
    settings = load(path)
    if settings.theme != theme:
        settings.theme = theme
        save(settings, path)
    return settings


def remember_plan(plan_path: str | os.PathLike[str], path: Path | None = None) -> Settings:
    """Put ``plan_path`` (made absolute) first in the recent plans, once, keeping ten."""
    absolute = os.path.abspath(os.path.expanduser(os.fspath(plan_path)))
    settings = load(path)
    recent = [absolute] + [p for p in settings.recent_plans if p != absolute]
    if recent != settings.recent_plans:
        settings.recent_plans = recent[:MAX_RECENT]
        save(settings, path)
    return settings


def recent_plans(settings: Settings | None = None) -> list[str]:
    """The recent plan files that still exist, most recent first."""
    settings = settings if settings is not None else load()
    found = []
    for p in settings.recent_plans:
        try:
            if os.path.isfile(p):
                found.append(p)
        except (OSError, ValueError):
            continue
    return found
