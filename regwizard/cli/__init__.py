"""Command line: the wizard, the headless engine, and the lab.

    regwizard                      open the wizard (Welcome)
    regwizard PLAN.toml            open the wizard on Review, pre-filled
    regwizard apply PLAN.toml      run the plan headless and verify it
    regwizard adopt USER@HOST      read an existing registry, write the plan of its repair
    regwizard doctor PLAN.toml     check a setup read-only; name each problem and its fix
    regwizard gc PLAN.toml         reclaim disk: garbage-collect (read-only meanwhile)
    regwizard plan new [-o FILE]   write a commented example plan
    regwizard user hash NAME       print a bcrypt line for the plan
    regwizard lab up|down|status   the sandbox lab on this machine (Linux, root)
    regwizard lab clients N        N extra client nodes, built on demand (fan-out)
    regwizard demo                 lab up, then the wizard pre-filled for the lab

Textual is imported only when a screen is opened: the engine never needs it. Each
command's front end is a module of this package; no engine module imports the CLI.
"""

from __future__ import annotations

from regwizard.cli.main import main

__all__ = ["main"]
