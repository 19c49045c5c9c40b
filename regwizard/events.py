"""Events the engine emits through ``emit(event)``. Plain dataclasses, no UI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["running", "changed", "unchanged", "failed", "skipped", "would-change"]


@dataclass(frozen=True)
class Event:
    pass


@dataclass(frozen=True)
class StepStarted(Event):
    step: str  # machine name, e.g. "certificate"
    host: str  # host label, e.g. "node1" / "10.0.0.2" / "local"
    title: str  # human title, e.g. "TLS certificate"


@dataclass(frozen=True)
class LogLine(Event):
    step: str
    host: str
    text: str  # remote output: plain text, never markup


@dataclass(frozen=True)
class Notice(LogLine):
    """A log line every front end shows, even a terse one (e.g. waiting for a lock)."""


@dataclass(frozen=True)
class FileDiff:
    """One file a change would write, as a reviewer may see it (``apply --dry-run --diff``).

    ``before``/``after`` are display texts, already cleaned by the step that made them:
    secret values redacted, htpasswd reduced to user names, certificates summarised
    (never a key). None: the file does not exist (before) or goes away (after); both None:
    ``note`` says in words what happens (a directory made, data copied, a file moved)."""

    host: str  # host label
    path: str  # the file on that host, or a name such as "container registry"
    before: str | None
    after: str | None
    note: str = ""  # one line, shown above the diff


@dataclass(frozen=True)
class StepFinished(Event):
    step: str
    host: str
    status: Status
    seconds: float
    detail: str = ""  # one line: what changed / why unchanged
    commands: tuple[str, ...] = ()  # equivalent shell commands (for --dry-run and review)
    diffs: tuple[FileDiff, ...] = ()  # "would-change": the files the change would write


@dataclass(frozen=True)
class StepFailed(Event):
    step: str
    host: str
    cause: str
    fix: str
    evidence: str = ""
    seconds: float = 0.0


@dataclass(frozen=True)
class Progress(Event):
    """The whole run's progress: steps done of steps planned (the run screen's top bar)."""

    done: int
    total: int


@dataclass(frozen=True)
class StepProgress(Event):
    """How far one long piece of work inside a step has got: an image archive sent, images
    copied by a migration, a gc's phases. Live until its step finishes (StepFinished or
    StepFailed for the same step and host) or the run ends; ``regwizard.progress.Reporter``
    emits it, throttled, with ``done`` never going back."""

    step: str
    host: str
    what: str  # in words: "loading registry image", "copying images"
    done: int
    total: int | None  # None: unknown
    unit: str = "B"  # "B": bytes; else a noun counted ("phases", "blobs")


@dataclass(frozen=True)
class Proof:
    """What one runtime on one client proved with its own client tool."""

    client: str  # the host label
    runtime: str  # containerd | podman
    ok: bool
    how: str  # in words: "pulled sha256:… (podman)", "anonymous pull refused with 401 …"
    pulled: bool = False  # True: a credentialed pull with the pushed digest


@dataclass
class Verification:
    user: str = ""
    login_ok: bool = False
    anonymous_refused: bool = False
    push_digest: str = ""
    pull_digest: str = ""
    catalog: list[str] = field(default_factory=list)
    trust: dict[str, bool] = field(default_factory=dict)  # client label -> Docker pull worked
    image_ref: str = ""
    proofs: list[Proof] = field(default_factory=list)  # other runtimes, a client each
    # with [[replicas]]: one Proof per registry host (runtime "registry", client = its
    # label): an upload started there finished on the next, the same manifest digest and
    # catalog through every one of them
    replicas: list[Proof] = field(default_factory=list)
    # a mirror (pull-through cache) of this upstream: it refuses pushes by design, so the
    # proof is a pull through it (image_ref, pull_digest) and the anonymous pull refused
    mirror_of: str = ""
    cert_expires: str = ""  # the served certificate's notAfter, "YYYY-MM-DD" ("" unknown)
    cert_days_left: int = 0

    @property
    def ok(self) -> bool:
        if self.mirror_of:
            return (
                self.login_ok
                and self.anonymous_refused
                and bool(self.pull_digest)
                and all(self.trust.values())
                and all(p.ok for p in self.proofs)
            )
        return (
            self.login_ok
            and self.anonymous_refused
            and bool(self.push_digest)
            and self.push_digest == self.pull_digest
            and all(self.trust.values())
            and all(p.ok for p in self.proofs)
            and all(p.ok for p in self.replicas)
        )


@dataclass
class StepRecord:
    step: str
    host: str
    title: str
    status: Status
    seconds: float
    detail: str = ""


@dataclass
class RunResult:
    ok: bool
    steps: list[StepRecord] = field(default_factory=list)
    verification: Verification | None = None
    seconds: float = 0.0
    failure: StepFailed | None = None
    dry_run: bool = False

    @property
    def changed(self) -> list[StepRecord]:
        return [s for s in self.steps if s.status == "changed"]


@dataclass(frozen=True)
class RunFinished(Event):
    result: RunResult


@dataclass
class HostFacts:
    """What "Test connection" / preflight learns about a host (no secrets)."""

    label: str
    address: str
    fingerprint: str = ""  # "SHA256:..." ("" for local)
    key_type: str = ""
    os: str = ""
    arch: str = ""
    docker_version: str = ""  # "" when the engine is unreachable
    docker_error: str = ""
    free_bytes: int | None = None  # at the storage path (or its nearest existing parent)
    is_root: bool = False
    sudo_ok: bool = False
    # runtimes found besides Docker: "containerd" (a standalone one, CRI not disabled),
    # "podman"; "docker" is in it when the engine answered
    runtimes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class GcOutput(LogLine):
    """One line of ``registry garbage-collect``, with the counts so far."""

    blobs: int = 0  # blobs eligible for deletion (deleted, unless a dry run)
    manifests: int = 0  # untagged manifests eligible for deletion (--delete-untagged)


@dataclass
class GcResult:
    """What `regwizard gc` did: bytes measured on the storage, what the collector deleted."""

    ok: bool = False
    dry_run: bool = False
    delete_untagged: bool = False
    bytes_before: int | None = None  # du -sb of the storage, before
    bytes_after: int | None = None  # and after (None: not measured, e.g. a dry run)
    blobs: int = 0
    manifests: int = 0
    marked: int = 0  # blobs the collector keeps
    eligible_bytes: int | None = None  # a dry run: the size of the blobs it would delete
    read_only_seconds: float = 0.0  # how long pushes were refused
    restored: bool = True  # read-write (again); False: apply must restore it
    seconds: float = 0.0
    failure: StepFailed | None = None
    output: list[str] = field(default_factory=list)  # the collector's last lines

    @property
    def freed(self) -> int | None:
        if self.bytes_before is None or self.bytes_after is None:
            return None
        return self.bytes_before - self.bytes_after


@dataclass(frozen=True)
class GcFinished(Event):
    result: GcResult
