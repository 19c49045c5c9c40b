"""``regwizard apply PLAN``: converge headless, then verify (exit 0 = verified)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from regwizard.cli.common import (
    ha_lines,
    read_connection_secrets,
    read_s3_secret,
    read_upstream_credentials,
    read_verify_password,
    ssh_routes,
    stderr_printer,
)
from regwizard.diffs import unified
from regwizard.errors import RegwizardError
from regwizard.events import Event, FileDiff, RunResult, StepFinished

DRY_RUN_PENDING = 3  # the exit code of a dry run that would change something


def result_json(result: RunResult) -> dict:
    v = result.verification
    return {
        "ok": result.ok,
        "dry_run": result.dry_run,
        "pending": [f"{s.step}@{s.host}" for s in result.steps if s.status == "would-change"],
        "seconds": round(result.seconds, 3),
        "changed": [f"{s.step}@{s.host}" for s in result.changed],
        "steps": [asdict(s) for s in result.steps],
        "login": bool(v and v.login_ok),
        "login_user": v.user if v else "",
        "anonymous_refused": bool(v and v.anonymous_refused),
        "mirror_of": v.mirror_of if v else "",
        "pushes": (
            f"mirror of {v.mirror_of}: pushes are refused by design"
            if v and v.mirror_of
            else "allowed"
        ),
        "pulled": v.image_ref if v and v.mirror_of else "",
        "push_digest": v.push_digest if v else "",
        "pull_digest": v.pull_digest if v else "",
        "catalog": v.catalog if v else [],
        "trust": v.trust if v else {},
        "runtimes": [
            {
                "client": c,
                "runtime": "docker",
                "ok": ok,
                "how": "pulled the mirrored digest"
                if v and v.mirror_of
                else "pulled the pushed digest",
            }
            for c, ok in (v.trust if v else {}).items()
        ]
        + [asdict(p) for p in (v.proofs if v else [])],
        "replicas": [asdict(p) for p in (v.replicas if v else [])],
        "certificate": {
            "expires": v.cert_expires if v else "",
            "days_left": v.cert_days_left if v else 0,
        },
        "failure": asdict(result.failure) if result.failure else None,
    }


def diffs_json(diffs: list[FileDiff]) -> list[dict]:
    """``--json --diff``: one entry per file that would change (its diff non-empty)."""
    out = []
    for d in diffs:
        text = unified(d)
        if text:
            out.append({"host": d.host, "path": d.path, "note": d.note, "diff": text})
    return out


def print_diffs(diffs: list[FileDiff], out=None) -> None:  # noqa: ANN001
    """The unified diff of each file, to stdout; + and - lines coloured on a terminal
    (unless NO_COLOR is set)."""
    out = out or sys.stdout
    colour = out.isatty() and not os.environ.get("NO_COLOR")
    texts = [t for t in (unified(d) for d in diffs) if t]
    if not texts:
        return
    print("\n# what would change, file by file (secrets redacted)", file=out)
    for text in texts:
        for line in text.splitlines():
            if colour and line.startswith(("+", "-")) and not line.startswith(("+++", "---")):
                line = f"\033[{32 if line[0] == '+' else 31}m{line}\033[0m"
            print(line, file=out)


def apply_cli(args) -> int:  # noqa: ANN001
    from regwizard import engine
    from regwizard.plan import Secrets, load_plan

    want_diff = bool(getattr(args, "diff", False))
    if want_diff and not args.dry_run:
        raise RegwizardError(
            "--diff needs --dry-run: it shows what a dry run would change",
            "run `regwizard apply PLAN --dry-run --diff`",
        )
    plan = load_plan(args.plan)
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    read_connection_secrets(plan, secrets)
    read_upstream_credentials(plan, secrets, args.upstream_credentials_file, ask=not args.dry_run)
    read_s3_secret(plan, secrets, args.s3_secret_file, ask=not args.dry_run)
    if not args.dry_run:
        secrets.verify_password = read_verify_password(args.password_file, plan.verify_user)
    if args.dry_run:
        print("dry run: nothing will be changed", file=sys.stderr)
        for line in ha_lines(plan):
            print(line, file=sys.stderr)
        for route in ssh_routes(plan):
            print(f"ssh: {route}", file=sys.stderr)
    printer = stderr_printer()
    diffs: list[FileDiff] = []

    def emit(ev: Event) -> None:
        if isinstance(ev, StepFinished) and ev.status == "would-change":
            diffs.extend(ev.diffs)
        printer(ev)

    result = engine.run(plan, secrets, emit=emit, dry_run=args.dry_run, lock_wait=args.lock_wait)
    v = result.verification
    if args.json:
        doc = result_json(result)
        if want_diff:
            doc["diffs"] = diffs_json(diffs)
        print(json.dumps(doc, indent=2))
    elif args.dry_run:
        print("\n# equivalent shell commands")
        for line in engine.shell_commands(plan):
            print(line)
        if want_diff:
            print_diffs(diffs)
    if result.ok and v and not args.dry_run:
        if v.mirror_of:
            proved = (
                f"mirror of {v.mirror_of} (pushes are refused by design); login as {v.user} ok, "
                f"anonymous pull refused, pulled {v.image_ref} {v.pull_digest} on "
                f"{', '.join(v.trust)}"
            )
        else:
            proved = (
                f"login as {v.user} ok, anonymous push refused, pushed {v.push_digest}, "
                f"pulled the same digest on {', '.join(v.trust)}"
            )
        print(
            f"verified in {result.seconds:.1f}s: {proved}"
            + "".join(f"; {p.runtime} on {p.client}: {p.how}" for p in v.proofs)
            + "".join(f"; registry host {p.client}: {p.how}" for p in v.replicas)
            + (f"; certificate valid until {v.cert_expires}" if v.cert_expires else "")
            + f"; {len(result.changed)} step(s) changed",
            file=sys.stderr,
        )
        print(f"next: docker login {plan.registry.address}", file=sys.stderr)
    if args.dry_run and result.ok:
        pending = [s for s in result.steps if s.status == "would-change"]
        print(
            f"dry run: {len(pending)} change(s) pending"
            if pending
            else "dry run: nothing to change",
            file=sys.stderr,
        )
        return DRY_RUN_PENDING if pending else 0
    return 0 if result.ok else 1
