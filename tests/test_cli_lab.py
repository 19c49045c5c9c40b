"""`regwizard lab` from the installed console script."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest


def regwizard(*args, timeout=300):
    exe = shutil.which("regwizard", path=os.path.dirname(sys.executable))
    assert exe, "the regwizard console script is installed with the package"
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout)


def test_lab_requires_root_says_so_clearly(monkeypatch):
    from regwizard import lab
    from regwizard.errors import RegwizardError

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(RegwizardError) as e:
        lab.require_linux_root()
    assert "root" in e.value.cause and "sudo" in e.value.fix


@pytest.mark.lab
def test_lab_up_status_down_twice(lab, tmp_path):
    """Runs after the session lab exists: it is replaced, cycled twice, then rebuilt."""
    for i in range(2):
        plan = tmp_path / f"lab{i}.toml"
        up = regwizard("lab", "up", "-o", str(plan))
        assert up.returncode == 0, up.stderr
        assert plan.exists() and oct(plan.stat().st_mode & 0o777) == "0o600"
        st = regwizard("lab", "status", "--json")
        assert st.returncode == 0, st.stderr
        assert json.loads(st.stdout)["up"] is True
        down = regwizard("lab", "down")
        assert down.returncode == 0, down.stderr
        st = regwizard("lab", "status")
        assert st.returncode == 1 and "down" in st.stdout
    # leave a fresh lab for the tests that follow
    from regwizard import lab as labmod

    new = labmod.up()
    lab.__dict__.update(new.__dict__)
