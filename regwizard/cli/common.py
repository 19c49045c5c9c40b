"""What every command's front end shares: reading secrets, printing events."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from regwizard.errors import RegwizardError
from regwizard.events import Event, Notice, StepFailed, StepFinished


def read_connection_secrets(plan, secrets) -> None:
    """SSH and sudo passwords for headless runs: environment, else a prompt on a TTY.

    REGWIZARD_SSH_PASSWORD and REGWIZARD_SUDO_PASSWORD serve every host that needs
    one; a sudo password defaults to the same user's SSH password.
    """
    conns = [plan.host, *plan.clients]
    for c in conns:
        if c.is_local:
            continue
        who = f"{c.user}@{c.address}"
        if c.auth == "password" and c.address not in secrets.ssh_passwords:
            pw = os.environ.get("REGWIZARD_SSH_PASSWORD") or _ask(
                f"SSH password for {who}: ", "REGWIZARD_SSH_PASSWORD", who
            )
            secrets.ssh_passwords[c.address] = pw
        if c.sudo and c.user != "root" and c.address not in secrets.sudo_passwords:
            pw = (
                os.environ.get("REGWIZARD_SUDO_PASSWORD")
                or secrets.ssh_passwords.get(c.address)
                or _ask(f"sudo password for {who}: ", "REGWIZARD_SUDO_PASSWORD", who)
            )
            secrets.sudo_passwords[c.address] = pw


def _ask(prompt: str, env: str, who: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    raise RegwizardError(
        f"no password for {who}",
        f"set {env}, or run on a terminal to be asked",
    )


def read_verify_password(password_file: str | None, user: str) -> str:
    if password_file:
        try:
            return Path(password_file).read_text().splitlines()[0]
        except (OSError, IndexError) as e:
            raise RegwizardError(
                f"cannot read the password file {password_file}: {e}",
                "give a readable file whose first line is the password",
            ) from e
    env = os.environ.get("REGWIZARD_PASSWORD")
    if env:
        return env
    if sys.stdin.isatty():
        return getpass.getpass(f"password of registry user {user} (for verification): ")
    raise RegwizardError(
        f"no password for the verify user {user}",
        "pass --password-file FILE, set REGWIZARD_PASSWORD, or run on a terminal",
    )


def stderr_printer():  # noqa: ANN201
    """emit(event) for headless runs: one line per finished step, the failure in full."""

    def emit(ev: Event) -> None:
        if isinstance(ev, StepFinished):
            mark = {"changed": "~", "unchanged": "=", "would-change": "?", "skipped": "-"}.get(
                ev.status, "*"
            )
            print(
                f"{mark} {ev.step:<12} {ev.host:<16} {ev.status:<12} {ev.seconds:5.1f}s  {ev.detail}",
                file=sys.stderr,
                flush=True,
            )
        elif isinstance(ev, Notice):
            print(f"! {ev.step:<12} {ev.host:<16} {ev.text}", file=sys.stderr, flush=True)
        elif isinstance(ev, StepFailed):
            print(f"x {ev.step:<12} {ev.host:<16} failed", file=sys.stderr)
            print(f"  cause: {ev.cause}", file=sys.stderr)
            if ev.fix:
                print(f"  fix:   {ev.fix}", file=sys.stderr)
            if ev.evidence and ev.evidence != ev.cause:
                print(f"  evidence: {ev.evidence.splitlines()[-1][:300]}", file=sys.stderr)

    return emit
