"""``regwizard gc PLAN``: reclaim disk (exit 0 = collected and read-write again)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from regwizard.cli.common import read_connection_secrets, read_s3_secret, stderr_printer
from regwizard.events import Event, GcOutput, GcResult


def gc_json(result: GcResult) -> dict:
    return {
        "ok": result.ok,
        "dry_run": result.dry_run,
        "delete_untagged": result.delete_untagged,
        "bytes_before": result.bytes_before,
        "bytes_after": result.bytes_after,
        "bytes_freed": result.freed,
        "eligible_bytes": result.eligible_bytes,
        "blobs": result.blobs,
        "manifests": result.manifests,
        "marked": result.marked,
        "read_only_seconds": round(result.read_only_seconds, 3),
        "restored": result.restored,
        "seconds": round(result.seconds, 3),
        "output": result.output,
        "failure": asdict(result.failure) if result.failure else None,
    }


def gc_cli(args) -> int:  # noqa: ANN001
    from regwizard import gc
    from regwizard.gc import report_lines
    from regwizard.plan import Secrets, load_plan

    plan = load_plan(args.plan)
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    read_connection_secrets(plan, secrets)
    read_s3_secret(plan, secrets, args.s3_secret_file, ask=False)  # else the stored one
    steps = stderr_printer()

    def emit(ev: Event) -> None:
        if isinstance(ev, GcOutput):
            if " marking " not in ev.text:  # thousands of them on a large registry
                steps.line(f"  {ev.text}")  # above the progress line, on a terminal
            return
        steps(ev)

    if args.dry_run:
        print("dry run: nothing is deleted; the registry stays read-write", file=sys.stderr)
    result = gc.collect(
        plan,
        secrets,
        dry_run=args.dry_run,
        delete_untagged=args.delete_untagged,
        emit=emit,
        lock_wait=args.lock_wait,
    )
    if args.json:
        print(json.dumps(gc_json(result), indent=2))
    if result.ok or result.bytes_before is not None:
        for line in report_lines(result):
            print(line, file=sys.stderr)
    return 0 if result.ok else 1
