"""The seam between the UI and the engine.

The Textual app only talks to a ``Backend``. ``EngineBackend`` is the real one;
tests pass a fake with the same methods. Methods block: the UI calls them
from thread workers and receives events through ``emit``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # adopt and the doctor are imported only when a repair starts
    from pathlib import Path

    from regwizard.adopt import Adoption
    from regwizard.doctor import DoctorReport
    from regwizard.events import Event, GcResult, HostFacts, RunResult
    from regwizard.plan import Connection, Plan, Secrets
    from regwizard.registry_api import Page, TagInfo
    from regwizard.users import UserEdit, UsersOutcome

Emit = Callable[["Event"], None]


class Browser(Protocol):
    """One registry's contents as its verify user (registry_api.RegistryApi). Blocking."""

    def repositories(self, last: str = "", n: int = 100) -> Page: ...

    def tags(self, repo: str, last: str = "", n: int = 100) -> Page: ...

    def tag_info(self, repo: str, tag: str) -> TagInfo:
        """Digest and size; a failure is in ``TagInfo.error``, not raised."""
        ...

    def delete(self, repo: str, digest: str) -> None: ...


class Backend(Protocol):
    def probe(
        self, conn: Connection, secrets: Secrets, storage: str, cancel: threading.Event
    ) -> HostFacts:
        """Connect and read facts. Raises HostKeyUnknown / HostKeyChanged / RegwizardError."""
        ...

    def run(
        self,
        plan: Plan,
        secrets: Secrets,
        *,
        emit: Emit,
        cancel: threading.Event,
        dry_run: bool = False,
    ) -> RunResult:
        """Execute (or dry-run) the plan, emitting events; returns the result."""
        ...

    def shell_commands(self, plan: Plan) -> list[str]:
        """The equivalent shell commands, for the review screen (no secrets)."""
        ...

    def adopt(
        self,
        conn: Connection,
        secrets: Secrets,
        container: str | None,
        cancel: threading.Event,
    ) -> Adoption:
        """Read an existing registry (read-only): the plan of the intended setup, notes, facts.

        Raises HostKeyUnknown / HostKeyChanged / RegwizardError / Cancelled.
        """
        ...

    def diagnose(self, plan: Plan, secrets: Secrets, cancel: threading.Event) -> DoctorReport:
        """Check the setup the plan describes, read-only; never raises for what it finds."""
        ...

    def gc(
        self,
        plan: Plan,
        secrets: Secrets,
        *,
        dry_run: bool,
        delete_untagged: bool,
        emit: Emit,
        cancel: threading.Event,
    ) -> GcResult:
        """Garbage-collect the registry (read-only meanwhile); never raises for a failure."""

    def browse(self, plan: Plan, secrets: Secrets, cancel: threading.Event) -> Browser:
        """The plan's registry, logged in as the verify user (trust anchor read first).

        Raises RegwizardError (HostKeyUnknown / HostKeyChanged among them) / Cancelled."""
        ...

    def delete_tag(self, browser: Browser, repo: str, digest: str) -> None:
        """Delete the manifest ``digest`` of ``repo``. Raises RegwizardError: for a
        registry with delete off, problems.DELETE_DISABLED's message and fix."""

    def users(
        self,
        plan: Plan,
        edits: list[UserEdit],
        secrets: Secrets,
        *,
        path: Path | None,
        emit: Emit,
        cancel: threading.Event,
    ) -> UsersOutcome:
        """Add / re-password / remove users: htpasswd only (no restart), the logins proved,
        then the plan file at ``path`` saved in place. Raises RegwizardError for an edit
        the plan refuses; every other failure is in the outcome's result."""
        ...


class EngineBackend:
    """The real backend: the engine, adopt and the doctor, on real hosts."""

    def probe(self, conn, secrets, storage, cancel):  # noqa: ANN001, ANN201
        from regwizard.engine import probe

        return probe(conn, secrets, storage, cancel)

    def run(self, plan, secrets, *, emit, cancel, dry_run=False):  # noqa: ANN001, ANN201
        from regwizard.engine import run

        return run(plan, secrets, emit=emit, cancel=cancel, dry_run=dry_run)

    def shell_commands(self, plan):  # noqa: ANN001, ANN201
        from regwizard.engine import shell_commands

        return shell_commands(plan)

    def adopt(self, conn, secrets, container, cancel):  # noqa: ANN001, ANN201
        from regwizard.adopt import adopt

        return adopt(conn, secrets, container, cancel=cancel)

    def diagnose(self, plan, secrets, cancel):  # noqa: ANN001, ANN201
        from regwizard.doctor import diagnose

        return diagnose(plan, secrets, cancel=cancel)

    def gc(self, plan, secrets, *, dry_run, delete_untagged, emit, cancel):  # noqa: ANN001, ANN201
        from regwizard.gc import collect

        return collect(
            plan,
            secrets,
            dry_run=dry_run,
            delete_untagged=delete_untagged,
            emit=emit,
            cancel=cancel,
        )

    def browse(self, plan, secrets, cancel):  # noqa: ANN001, ANN201
        from regwizard.registry_api import open_api

        return open_api(plan, secrets, cancel)

    def delete_tag(self, browser, repo, digest):  # noqa: ANN001, ANN201
        return browser.delete(repo, digest)

    def users(self, plan, edits, secrets, *, path, emit, cancel):  # noqa: ANN001, ANN201
        from regwizard.users import run

        return run(plan, edits, secrets, path=path, emit=emit, cancel=cancel)
