"""The engine never imports textual or rich (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

ENGINE_MODULES = [
    "regwizard",
    "regwizard.cli",
    "regwizard.errors",
    "regwizard.events",
    "regwizard.plan",
    "regwizard.backend",
    "regwizard.lab",
    "regwizard.adopt",
    "regwizard.doctor",
]


def test_engine_modules_do_not_import_textual_or_rich():
    code = (
        "import importlib, json, sys\n"
        f"for m in {ENGINE_MODULES!r}:\n"
        "    importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in ('textual','rich'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
