"""regwizard.settings: the theme and recent plans, remembered; never a reason to fail."""

from __future__ import annotations

import json
import os

from regwizard import settings
from regwizard.settings import MAX_RECENT, Settings


def test_defaults_when_there_is_no_file(isolated_config):
    assert settings.settings_path() == isolated_config / "settings.json"
    assert settings.load() == Settings()
    assert settings.recent_plans() == []


def test_corrupt_or_odd_files_read_as_defaults(isolated_config):
    isolated_config.mkdir(parents=True)
    path = isolated_config / "settings.json"
    for data in (b"{not json", b"\xff\xfe\x00", b"[1, 2]", b"null", b'"x"'):
        path.write_bytes(data)
        assert settings.load() == Settings()
    path.write_text(json.dumps({"theme": 3, "recent_plans": ["rel.toml", 5, "/a.toml", "/a.toml"]}))
    assert settings.load() == Settings(theme="", recent_plans=["/a.toml"])
    path.unlink()
    path.mkdir()  # a directory where the file should be
    assert settings.load() == Settings()
    assert settings.save(Settings(theme="nord")) is False  # cannot replace it: left as it was


def test_recent_plans_most_recent_first_absolute_unique_ten(tmp_path, isolated_config, monkeypatch):
    monkeypatch.chdir(tmp_path)
    files = []
    for i in range(12):
        (tmp_path / f"p{i}.toml").write_text("")
        files.append(str(tmp_path / f"p{i}.toml"))
        settings.remember_plan(f"p{i}.toml")  # relative: stored absolute
    settings.remember_plan(files[5])  # again: moves to the front, once
    stored = settings.load().recent_plans
    assert stored[0] == files[5]
    assert len(stored) == MAX_RECENT and len(set(stored)) == MAX_RECENT
    assert stored[1:] == [files[i] for i in (11, 10, 9, 8, 7, 6, 4, 3, 2)]
    os.unlink(files[11])
    assert files[11] not in settings.recent_plans()
    assert files[11] in settings.load().recent_plans  # dropped when listed, not forgotten


def test_writes_are_atomic_and_private(isolated_config):
    settings.remember_theme("nord")
    settings.remember_plan("/x/plan.toml")
    assert settings.load() == Settings(theme="nord", recent_plans=["/x/plan.toml"])
    assert oct(isolated_config.stat().st_mode & 0o777) == "0o700"
    assert oct((isolated_config / "settings.json").stat().st_mode & 0o777) == "0o600"
    assert os.listdir(isolated_config) == ["settings.json"]  # no temp file left behind


def test_an_unwritable_directory_is_not_an_error(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(blocker))  # a file: no directory can be made
    assert settings.remember_theme("nord").theme == "nord"
    assert settings.remember_plan("/x.toml").recent_plans == ["/x.toml"]
    assert settings.load() == Settings()
