"""The wizard takes the S3 secret key from REGWIZARD_S3_SECRET_KEY, as `apply` does, so
Review does not ask for it; without the variable it asks (screens/review)."""

from __future__ import annotations

import pytest

import regwizard.app
from regwizard.cli import wizard as wizard_cli


class FakeApp:
    made: list[dict] = []

    def __init__(self, **kw) -> None:  # noqa: ANN003
        FakeApp.made.append(kw)
        self.return_code = 0

    def run(self) -> int:
        return 0


@pytest.mark.parametrize(("env", "want"), [("s3-key-from-env\n", "s3-key-from-env"), (None, "")])
def test_the_s3_secret_key_comes_from_the_environment(monkeypatch, env, want) -> None:
    monkeypatch.setattr(regwizard.app, "RegwizardApp", FakeApp)
    if env is None:
        monkeypatch.delenv("REGWIZARD_S3_SECRET_KEY", raising=False)
    else:
        monkeypatch.setenv("REGWIZARD_S3_SECRET_KEY", env)
    FakeApp.made.clear()
    assert wizard_cli.wizard(None) == 0
    assert FakeApp.made[0]["secrets"].s3_secret_key == want
