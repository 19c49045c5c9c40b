"""Reclaim disk: `registry garbage-collect` while the registry refuses pushes.

``collect(plan, secrets, *, dry_run, delete_untagged, emit, cancel) -> GcResult``:

1. connect to the registry host and take the run lock apply takes (no apply meanwhile);
2. measure the storage (``du -sb``);
3. write the marker ``CONFIG_DIR/maintenance`` (who, when), then config.yml with
   ``storage.maintenance.readonly`` on, and restart the container (the registry reads its
   configuration only at start): pushes now fail with 405, pulls go on;
4. ``docker exec CONTAINER /bin/registry garbage-collect [--dry-run] [--delete-untagged]
   /etc/distribution/config.yml``, its lines streamed as ``GcOutput`` events;
5. in ``finally``: config.yml read-write again, restart, remove the marker; measure again.

A run cut where ``finally`` cannot run (SIGKILL, a lost connection) leaves the marker:
the next ``apply`` writes config.yml back and restarts the registry (steps config and
container), and ``doctor`` reports ``registry-read-only``.

A dry run only reads (garbage-collect --dry-run deletes nothing), so it leaves the
registry read-write and is not restarted; a push meanwhile can only make its count stale.
"""

from __future__ import annotations

import contextlib
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from regwizard.diagnose import clean
from regwizard.errors import Cancelled, RegwizardError
from regwizard.events import (
    Event,
    GcFinished,
    GcOutput,
    GcResult,
    Notice,
    StepFailed,
    StepFinished,
    StepStarted,
)
from regwizard.plan import Plan, Secrets
from regwizard.progress import Reporter

if TYPE_CHECKING:
    from regwizard.steps.base import Ctx, HostEntry

REGISTRY_BINARY = "/bin/registry"  # in registry:2, registry:3 and the lab's FROM-scratch image
GC_TIMEOUT = 1800  # seconds the Docker API may stay silent while the collector walks storage
DU_TIMEOUT = 600
RESTART_TIMEOUT = 30  # docker restart: seconds before SIGKILL
WAIT_SECONDS = 30  # for the registry to answer after a restart
KEEP_LINES = 40  # the collector's last lines kept in the result
PHASE_WORDS = {
    "connect": "connecting",
    "check": "checking the registry",
    "measure": "measuring the storage",
    "read-only": "switching to read-only",
    "collect": "collecting",
    "read-write": "restoring read-write",
}
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


# --------------------------------------------------------------------------- pure parts


def gc_argv(binary: str, config: str, *, dry_run: bool, delete_untagged: bool) -> list[str]:
    """The argv ``docker exec`` runs in the container (no shell: the image has none)."""
    if not binary.startswith("/") or not config.startswith("/"):
        raise ValueError("the registry binary and its configuration need absolute paths")
    argv = [binary, "garbage-collect"]
    if dry_run:
        argv.append("--dry-run")
    if delete_untagged:
        argv.append("--delete-untagged")
    return [*argv, config]


def registry_binary(attrs: dict) -> str:
    """The registry binary of a container: its entrypoint when that is the binary itself
    (the lab's image), else /bin/registry (the official images start /entrypoint.sh)."""
    cfg = attrs.get("Config") if isinstance(attrs.get("Config"), dict) else {}
    ep = cfg.get("Entrypoint")
    first = ep[0] if isinstance(ep, list) and ep and isinstance(ep[0], str) else ""
    if first.startswith("/") and first.rsplit("/", 1)[-1] == "registry":
        return first
    return REGISTRY_BINARY


# distribution 2.7: "N blobs marked, M blobs parsed : K blobs eligible for deletion"
# 2.8 and 3.x:      "N blobs marked, K blobs and J manifests eligible for deletion"
_SUMMARY_27 = re.compile(r"^(\d+) blobs marked, \d+ blobs parsed : (\d+) blobs eligible")
_SUMMARY = re.compile(r"^(\d+) blobs marked, (\d+) blobs and (\d+) manifests eligible")


@dataclass
class Tally:
    """What the collector said so far."""

    blobs: int = 0  # "blob eligible for deletion: sha256:..."
    manifests: int = 0  # "manifest eligible for deletion: {repo sha256:... [tags]}"
    marked: int = 0  # from the summary line
    marks: int = 0  # "REPO: marking manifest|blob ..." lines
    digests: tuple[str, ...] = ()  # the blobs eligible (to size them in a dry run)

    def feed(self, line: str) -> str:
        """Count one line; its kind: blob, manifest, summary, mark, error or other."""
        text = line.strip()
        if text.startswith("blob eligible for deletion:"):
            self.blobs += 1
            m = DIGEST.search(text)
            if m:
                self.digests = (*self.digests, m.group(0))
            return "blob"
        if text.startswith("manifest eligible for deletion:"):
            self.manifests += 1
            return "manifest"
        m = _SUMMARY.match(text)
        if m:
            self.marked = int(m.group(1))
            return "summary"
        m = _SUMMARY_27.match(text)
        if m:
            self.marked = int(m.group(1))
            return "summary"
        if ": marking manifest " in text or ": marking blob " in text:
            self.marks += 1
            return "mark"
        if text.startswith("failed to ") or "configuration error" in text:
            return "error"
        return "other"


def parse_output(text: str) -> Tally:
    t = Tally()
    for line in text.splitlines():
        t.feed(line)
    return t


# --------------------------------------------------------------------------- the run


class _Run:
    def __init__(self, ctx: Ctx, cancel: threading.Event, result: GcResult) -> None:
        self.ctx = ctx
        self.cancel = cancel
        self.result = result
        self.phase = ("connect", ctx.registry.label)
        self.failed_at: tuple[str, str] | None = None  # the phase that raised first
        self.tally = Tally()
        self.restore_failure: StepFailed | None = None
        # the phases as one progress (step "gc", live until GcFinished): connect, check,
        # measure, collect, and for a real run read-only, read-write and measure again
        self.progress = Reporter(
            ctx.emit, "gc", ctx.registry.label, "gc", 4 if result.dry_run else 7, "phases"
        )
        self.phases_done = 0

    @contextlib.contextmanager
    def step(self, name: str, title: str) -> Iterator[list[str]]:
        """StepStarted, then StepFinished with the detail the block appends."""
        host = self.ctx.registry.label
        self.phase = (name, host)
        self.ctx.emit(StepStarted(name, host, title))
        self.progress.update(self.phases_done, f"gc: {PHASE_WORDS.get(name, name)}", force=True)
        t0 = time.monotonic()
        detail: list[str] = []
        try:
            yield detail
        except BaseException:
            self.failed_at = self.failed_at or (name, host)
            raise
        secs = time.monotonic() - t0
        self.ctx.emit(StepFinished(name, host, "changed", secs, "; ".join(detail)))
        self.phases_done += 1
        self.progress.update(self.phases_done, force=True)  # a few phases: each one said

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()


def collect(
    plan: Plan,
    secrets: Secrets,
    *,
    dry_run: bool = False,
    delete_untagged: bool = False,
    emit: Callable[[Event], None] = lambda e: None,
    cancel: threading.Event | None = None,
    lock_wait: float | None = None,
    connect=None,  # noqa: ANN001 - hosts.connect; offline tests pass fakes
    net=None,  # noqa: ANN001 - steps.base.Network
) -> GcResult:
    """Garbage-collect the plan's registry; never raises (the failure is in the result)."""
    from regwizard.engine import LOCK_WAIT, _failure, _run_lock
    from regwizard.steps.base import Ctx, close_all, connect_each, host_entries

    cancel = cancel or threading.Event()
    lock = threading.Lock()

    def safe_emit(ev: Event) -> None:
        with lock:
            emit(ev)

    # the host gets its own cancel event: the restore must run even after a cancel
    host_cancel = threading.Event()
    # the primary only; a plan with replicas is refused below (shared storage)
    entries = [e for e in host_entries(plan) if e.is_registry and not e.is_replica]
    ctx = Ctx(plan, secrets, safe_emit, host_cancel, hosts=entries)
    if net is not None:
        ctx.net = net
    result = GcResult(dry_run=dry_run, delete_untagged=delete_untagged)
    run = _Run(ctx, cancel, result)
    t0 = time.monotonic()
    try:
        plan.validate()
        if plan.replicas:
            # garbage-collect deletes what no manifest names when it looks; a replica that
            # takes a push meanwhile (it shares the storage) would lose that push's blobs
            raise RegwizardError(
                "regwizard gc does not run on a plan with replicas yet: they share the "
                "storage, and only the primary would be held read-only while it collects",
                "stop the registry container on every replica (docker stop), run gc, then "
                "`regwizard apply PLAN` to start them again",
            )
        run.check_cancel()
        with run.step("connect", "Connect to the registry host") as detail:
            for _e, err in connect_each(entries, secrets, host_cancel, connect):
                if err is not None:
                    raise err
            lock_ctx = Ctx(plan, secrets, safe_emit, cancel, hosts=entries)
            held = _run_lock(lock_ctx, LOCK_WAIT if lock_wait is None else lock_wait)
            detail.append("connected; holding the run lock")
        with held:
            _collect(run)
    except Exception as ex:  # noqa: BLE001 - every failure becomes one clear message
        result.failure = _failure(run.failed_at or run.phase, ex)
        ctx.emit(result.failure)
    finally:
        close_all(entries)
    result.failure = result.failure or run.restore_failure
    result.ok = result.failure is None
    result.seconds = time.monotonic() - t0
    ctx.emit(GcFinished(result))
    return result


def _collect(run: _Run) -> None:
    from regwizard.facts.read import snapshot
    from regwizard.facts.registry import config_path, parse_config
    from regwizard.steps.config import render, wanted_s3_secret, wanted_upstream
    from regwizard.steps.container import registry_facts

    ctx, result = run.ctx, run.result
    e = ctx.registry
    lay, reg = ctx.layout, ctx.plan.registry
    with run.step("check", "Check the registry") as detail:
        facts, c = registry_facts(ctx, e)
        if facts is None:
            raise RegwizardError(
                f"there is no container named {reg.container} on {e.label}",
                "set the registry up first: regwizard apply PLAN",
            )
        if not facts.managed:
            raise RegwizardError(
                f"{reg.container} was not set up by regwizard: its configuration is not "
                f"{lay.config_path}",
                "run regwizard apply PLAN first (it takes the registry over, keeping its "
                "images), then gc",
            )
        if not facts.running:
            raise RegwizardError(
                f"{reg.container} is {facts.status or 'not running'}",
                "run regwizard apply PLAN: it starts it; then gc",
            )
        snap = snapshot(e.host, files=[lay.config_path, lay.maintenance_marker])
        have = snap.files.get(lay.config_path)
        marker = snap.files.get(lay.maintenance_marker)
        parsed, _err = parse_config(have)
        http = parsed.get("http") if isinstance(parsed.get("http"), dict) else {}
        secret = http.get("secret") if isinstance(http.get("secret"), str) else ""
        upstream = wanted_upstream(ctx, parsed)  # a mirror keeps its stored upstream login
        s3 = wanted_s3_secret(ctx, parsed)  # S3 storage keeps its stored secret key
        writable = render(ctx, secret, upstream, s3_secret=s3)
        read_only = render(ctx, secret, upstream, readonly=True, s3_secret=s3)
        text = (have or b"").decode(errors="replace")
        if not secret or text not in (writable, read_only):
            raise RegwizardError(
                f"{lay.config_path} is not what the plan writes",
                "run regwizard apply PLAN first (gc switches that file to read-only and back)",
            )
        if marker is not None or text == read_only:
            note = " ".join(marker.decode(errors="replace").split()) if marker else ""
            ctx.emit(
                Notice(
                    "check",
                    e.label,
                    "the registry was left read-only by a cut gc"
                    + (f" ({note})" if note else "")
                    + "; this run switches it back to read-write at its end",
                )
            )
        c_config = config_path(c.attrs)[0]
        binary = registry_binary(c.attrs)
        argv = gc_argv(
            binary, c_config, dry_run=result.dry_run, delete_untagged=result.delete_untagged
        )
        detail.append(f"{reg.container} running; will run {' '.join(argv)}")
    run.check_cancel()
    with run.step("measure", "Measure the storage") as detail:
        result.bytes_before = _du(e, reg.storage)
        detail.append(f"{reg.storage}: {_size(result.bytes_before)}")
    run.check_cancel()
    switched = False
    must_restore = marker is not None or text == read_only
    if must_restore and result.dry_run:  # a dry run restores what a cut gc left read-only
        run.progress.total = (run.progress.total or 0) + 1
    started_ro = 0.0
    try:
        if not result.dry_run:
            with run.step("read-only", "Switch the registry to read-only") as detail:
                must_restore = True
                from regwizard.hosts import run_holder

                e.host.write_file(
                    lay.maintenance_marker,
                    f"gc by {run_holder()}\n".encode(),
                    0o600,
                )
                e.host.write_file(lay.config_path, read_only.encode(), 0o600)
                switched = True
                started_ro = time.monotonic()
                _restart(ctx, e)
                _wait_answering(ctx, e)
                detail.append("pushes are refused (HTTP 405), pulls go on")
            run.check_cancel()
        with run.step("collect", "registry garbage-collect") as detail:
            _exec(run, e, reg.container, argv)
            detail.append(_counts(result))
        if result.dry_run and result.blobs:
            digests = list(run.tally.digests)
            result.eligible_bytes = _blob_bytes(e, reg.storage, digests)
    finally:
        if must_restore:
            _restore(run, e, writable, started_ro if switched else None)
    if not result.dry_run:
        with run.step("measure", "Measure the storage") as detail:
            result.bytes_after = _du(e, reg.storage)
            detail.append(f"{_size(result.bytes_after)}; freed {_size(result.freed or 0)}")


def _restore(run: _Run, e: HostEntry, writable: str, since: float | None) -> None:
    """Read-write again, whatever happened: never checks cancel."""
    ctx, result = run.ctx, run.result
    lay = ctx.layout
    result.restored = False
    try:
        with run.step("read-write", "Switch the registry back to read-write") as detail:
            e.host.write_file(lay.config_path, writable.encode(), 0o600)
            _restart(ctx, e)
            # restarted with the read-write file: the marker's claim is no longer true
            e.host.run(["rm", "-f", "--", lay.maintenance_marker], timeout=30)
            result.restored = True
            if since is not None:
                result.read_only_seconds = time.monotonic() - since
            _wait_answering(ctx, e)
            detail.append("pushes work again")
    except Exception as ex:  # noqa: BLE001 - reported; the collection's own error stays first
        cause = ex.cause if isinstance(ex, RegwizardError) else f"{type(ex).__name__}: {ex}"
        failed = StepFailed(
            "read-write",
            e.label,
            (
                "the registry was switched back to read-write but "
                if result.restored
                else "could not switch the registry back to read-write: "
            )
            + clean(cause, 300),
            "see the registry's log (docker logs); regwizard doctor PLAN checks it"
            if result.restored
            else "run regwizard apply PLAN: it rewrites config.yml read-write and restarts "
            f"the registry (the marker {lay.maintenance_marker} tells it to)",
            getattr(ex, "evidence", "") or clean(str(ex), 500),
        )
        ctx.emit(failed)
        run.restore_failure = failed


def _restart(ctx: Ctx, e: HostEntry) -> None:
    """Restart the registry container; it must be running again."""
    from regwizard.steps.base import StepError

    name = ctx.plan.registry.container
    c = e.host.docker(120).containers.get(name)
    c.restart(timeout=RESTART_TIMEOUT)
    ctx.forget(e)
    c.reload()
    if c.status != "running":
        logs = c.logs(tail=20).decode(errors="replace")
        raise StepError(
            f"the registry container did not come back after a restart ({c.status})",
            "see its last log lines; regwizard apply PLAN recreates it",
            clean(logs),
        )


def _wait_answering(ctx: Ctx, e: HostEntry) -> None:
    """Until the registry answers over TLS as planned again (Health's check)."""
    from regwizard.steps.base import StepError, Unchanged
    from regwizard.steps.health import Health

    deadline = time.monotonic() + WAIT_SECONDS
    last = ""
    while True:
        outcome = Health().check(ctx, e)
        if isinstance(outcome, Unchanged):
            return
        last = outcome.detail
        if time.monotonic() > deadline:
            raise StepError(
                f"the registry does not answer after a restart: {last}",
                "see docker logs; regwizard apply PLAN checks it again",
            )
        time.sleep(0.3)


def _exec(run: _Run, e: HostEntry, name: str, argv: list[str]) -> None:
    """Run the collector in the container; stream its lines; CommandFailed-like on rc != 0."""
    from regwizard.steps.base import StepError

    ctx, result = run.ctx, run.result
    api = e.host.docker(GC_TIMEOUT).api
    ex = api.exec_create(name, argv, stdout=True, stderr=True)
    exec_id = ex["Id"] if isinstance(ex, dict) else ex
    stream = api.exec_start(exec_id, stream=True, demux=True)
    lines: queue.Queue = queue.Queue()

    def pump() -> None:
        bufs = {"out": b"", "err": b""}
        try:
            for chunk in stream:
                out, err = chunk if isinstance(chunk, tuple) else (chunk, None)
                for key, data in (("out", out), ("err", err)):
                    if not data:
                        continue
                    bufs[key] += data
                    *done, bufs[key] = bufs[key].split(b"\n")
                    for ln in done:
                        lines.put((key, ln.decode(errors="replace")))
            for key, rest in bufs.items():
                if rest:
                    lines.put((key, rest.decode(errors="replace")))
            lines.put(None)
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            lines.put(err)

    threading.Thread(target=pump, name="regwizard-gc", daemon=True).start()
    tally = run.tally
    kept: list[str] = []
    errors: list[str] = []
    while True:
        run.check_cancel()  # the restore's restart stops the collector in the container
        try:
            item = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        if item is None:
            break
        if isinstance(item, BaseException):
            raise item
        key, line = item
        line = clean(line, 2000)
        if not line.strip():
            continue
        kind = tally.feed(line)
        if key == "err" or kind == "error":
            errors.append(line)
        result.blobs, result.manifests, result.marked = tally.blobs, tally.manifests, tally.marked
        if kind != "mark":
            kept = [*kept[-(KEEP_LINES - 1) :], line]
        ctx.emit(GcOutput("collect", e.label, line, tally.blobs, tally.manifests))
        if tally.blobs:
            verb = "eligible" if result.dry_run else "to delete"
            run.progress.update(run.phases_done, f"gc: collecting, {tally.blobs} blob(s) {verb}")
    result.output = kept
    rc = api.exec_inspect(exec_id).get("ExitCode")
    if rc != 0:
        last = next((x for x in reversed(errors) if "failed" in x or "error" in x), "")
        raise StepError(
            f"registry garbage-collect failed (exit code {rc})"
            + (f": {clean(last, 300)}" if last else ""),
            "read its output; the registry is switched back to read-write, nothing else "
            "changed. Run gc again once the cause is fixed",
            "\n".join(errors[-10:] or kept[-10:]),
        )


def _du(e: HostEntry, path: str) -> int:
    r = e.host.run(["du", "-sb", "--", path], check=False, timeout=DU_TIMEOUT)
    try:
        return int(r.stdout.split()[0])
    except (IndexError, ValueError):
        raise RegwizardError(
            f"cannot measure {path} on {e.label} (du -sb)",
            "check that the storage directory exists (regwizard doctor PLAN)",
            r.stderr.decode(errors="replace")[-300:],
        ) from None


_BLOB_SIZES = (
    'cd "$1/docker/registry/v2/blobs" 2>/dev/null || exit 0; shift\n'
    'for d; do h=${d#sha256:}; du -sb "sha256/${h%"${h#??}"}/$h" 2>/dev/null; done\n'
)


def _blob_bytes(e: HostEntry, storage: str, digests: list[str]) -> int:
    """Bytes of these blobs in the storage (what a real run would free, about)."""
    digests = [d for d in digests if DIGEST.fullmatch(d)]
    total = 0
    for i in range(0, len(digests), 200):
        r = e.host.run(
            ["sh", "-c", _BLOB_SIZES, "sh", storage, *digests[i : i + 200]],
            check=False,
            timeout=DU_TIMEOUT,
        )
        for ln in r.stdout.decode(errors="replace").splitlines():
            parts = ln.split()
            if parts and parts[0].isdigit():
                total += int(parts[0])
    return total


def _size(n: int) -> str:
    if abs(n) < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if abs(value) < 1024 or unit == "TiB":
            break
    return f"{value:.1f} {unit}"


def size_text(n: int | None) -> str:
    """Bytes in words: "12.3 MiB" ("unknown" for None)."""
    return "unknown" if n is None else _size(n)


def _counts(result: GcResult) -> str:
    verb = "eligible" if result.dry_run else "deleted"
    text = f"{result.blobs} blob(s) {verb}"
    if result.delete_untagged:
        text += f", {result.manifests} untagged manifest(s) {verb}"
    return text + f"; {result.marked} blob(s) kept"


def report_lines(result: GcResult) -> list[str]:
    """The report in words (the CLI and the wizard say the same)."""
    verb = "eligible for deletion" if result.dry_run else "deleted"
    lines = [f"blobs {verb}: {result.blobs}; blobs kept: {result.marked}"]
    if result.delete_untagged:
        lines.append(f"untagged manifests {verb}: {result.manifests}")
    lines.append(f"storage before: {size_text(result.bytes_before)}")
    if result.dry_run:
        lines.append(
            f"a real run would free about {size_text(result.eligible_bytes or 0)} "
            "(dry run: nothing deleted, the registry stayed read-write)"
        )
    else:
        lines.append(f"storage after:  {size_text(result.bytes_after)}")
        lines.append(f"freed:          {size_text(result.freed)}")
        lines.append(f"pushes were refused for {result.read_only_seconds:.1f}s")
    if not result.restored:
        lines.append("the registry is still READ-ONLY: run regwizard apply PLAN to restore it")
    return lines
