"""``regwizard doctor PLAN``: read-only checks; each problem, its evidence and the fix."""

from __future__ import annotations

import json
import os
import sys

from regwizard.cli.common import read_connection_secrets, read_s3_secret, read_verify_password


def doctor_cli(args) -> int:  # noqa: ANN001
    from regwizard.doctor import Finding, diagnose, format_finding
    from regwizard.plan import Secrets, load_plan

    plan = load_plan(args.plan)  # validated first, as apply does: a bad plan is exit 2
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    read_connection_secrets(plan, secrets)  # SSH / sudo passwords, as for apply
    read_s3_secret(plan, secrets, args.s3_secret_file, ask=False)  # else the stored one
    if args.password_file:
        secrets.verify_password = read_verify_password(args.password_file, plan.verify_user)
    elif os.environ.get("REGWIZARD_PASSWORD"):
        secrets.verify_password = os.environ["REGWIZARD_PASSWORD"]

    def emit(f: Finding) -> None:
        if not args.json:
            print("\n".join(format_finding(f)), flush=True)

    report = diagnose(plan, secrets, emit=emit)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    fails = sum(f.severity == "fail" for f in report.findings)
    warns = sum(f.severity == "warn" for f in report.findings)
    if report.exit_code == 0:
        summary = f"healthy: {len(report.findings)} checks ok in {report.seconds:.1f}s"
    elif report.exit_code == 1:
        summary = (
            f"{fails} failure(s), {warns} warning(s) in {report.seconds:.1f}s; "
            f"fix: regwizard apply {args.plan}"
        )
    else:
        summary = "could not check everything: " + "; ".join(report.incomplete[:3])
    print(f"doctor: {summary}", file=sys.stderr)
    return report.exit_code
