"""``regwizard adopt HOST``: the plan on stdout (or -o FILE), the notes on stderr."""

from __future__ import annotations

import json
import sys

from regwizard.cli.common import output_path, read_connection_secrets
from regwizard.errors import RegwizardError


def adopt_cli(args) -> int:  # noqa: ANN001
    from regwizard.adopt import adopt, parse_target
    from regwizard.plan import Connection, Plan, Secrets, dump_plan, save_plan

    user, address, port = parse_target(args.target, args.port)
    conn = Connection(
        address=address,
        port=port,
        user=user,
        auth=args.auth,
        key_file=args.key_file,
        sudo=args.sudo,
    )
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    # SSH / sudo passwords as for apply: REGWIZARD_SSH_PASSWORD / _SUDO_PASSWORD, or a prompt
    read_connection_secrets(Plan(host=conn, clients=[]), secrets)
    out = None
    if args.output is not None:
        try:
            out = output_path(args.output, overwrite=args.force)
        except RegwizardError as e:
            if "already exists" in e.cause:
                e.fix = "choose another -o path, or pass --force"
            raise
    adoption = adopt(conn, secrets, args.container)
    if args.json:
        print(json.dumps(adoption_json(adoption), indent=2))
    else:
        for n in adoption.notes:
            print(f"- {n}", file=sys.stderr)
    if adoption.refused:
        print(
            "adopt: regwizard cannot take this registry over as it is: "
            + "; ".join(adoption.refused)
            + ". apply will refuse to replace its container.",
            file=sys.stderr,
        )
    if out is not None:
        save_plan(adoption.plan, out)
        print(f"wrote {out}", file=sys.stderr)
        print(f"next: regwizard doctor {out}   then   regwizard apply {out}", file=sys.stderr)
    elif not args.json:
        sys.stdout.write(dump_plan(adoption.plan))
    return 0


def adoption_json(adoption) -> dict:  # noqa: ANN001 - adopt.Adoption
    """What adopt found, for scripts: the plan (as data and as TOML), notes, refusals.
    Nothing secret: the plan holds bcrypt hashes, never passwords."""
    from dataclasses import asdict

    from regwizard.plan import dump_plan, plan_to_dict

    return {
        "plan": plan_to_dict(adoption.plan),
        "plan_toml": dump_plan(adoption.plan),
        "notes": list(adoption.notes),
        "refused": list(adoption.refused),
        "ignored_users": [{"name": n, "kind": k} for n, k in adoption.ignored_users],
        "plain_http": adoption.plain_http,
        "certificate": asdict(adoption.certificate) if adoption.certificate else None,
        "unpersisted_data": asdict(adoption.unpersisted_data)
        if adoption.unpersisted_data
        else None,
    }
