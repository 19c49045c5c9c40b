"""``regwizard user add|passwd|remove PLAN NAME``: change the registry's users without a
restart, prove the logins, and save the plan in place (its comments stay)."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict

from regwizard.cli.common import (
    ask_password,
    read_connection_secrets,
    read_password_file,
    read_s3_secret,
    read_stdin_line,
    stderr_printer,
    stdin_is_tty,
)
from regwizard.errors import RegwizardError

PASSWORD_ENV = "REGWIZARD_USER_PASSWORD"


def new_password(name: str, password_file: str | None) -> str:
    """The user's new password: --password-file, else REGWIZARD_USER_PASSWORD, else
    typed twice on a terminal, else the first line of stdin (as `user hash`)."""
    if password_file:
        return read_password_file(password_file, f"{name}'s new", PASSWORD_ENV)
    env = os.environ.get(PASSWORD_ENV)
    if env:
        return env
    if stdin_is_tty():
        pw = ask_password(f"new password for {name}: ")
        if pw != ask_password("again: "):
            raise RegwizardError("the passwords differ", "type the same password twice")
        return pw
    return read_stdin_line("password")


def user_cli(args) -> int:  # noqa: ANN001
    from regwizard import users
    from regwizard.plan import Secrets, load_plan

    plan = load_plan(args.plan)
    why = users.refusal(plan, args.user_cmd, args.name)
    if why is not None:
        raise why
    password = ""
    if args.user_cmd in ("add", "passwd"):
        password = new_password(args.name, args.password_file)
        why = users.password_problem(args.name, password)
        if why is not None:
            raise why
    elif args.password_file:  # remove: the current password makes the proof stronger
        password = read_password_file(args.password_file, f"{args.name}'s current")
    edit = users.UserEdit(args.user_cmd, args.name, password)
    secrets = Secrets(accepted_host_keys=set(args.accept_host_key))
    read_connection_secrets(plan, secrets)
    read_s3_secret(plan, secrets, args.s3_secret_file, ask=False)
    out = users.run(
        plan,
        [edit],
        secrets,
        path=args.plan,
        emit=stderr_printer(),
        lock_wait=args.lock_wait,
        cost=args.cost,
    )
    result = out.result
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "action": args.user_cmd,
                    "user": args.name,
                    "proof": out.proof,
                    "plan_saved": out.saved,
                    "seconds": round(result.seconds, 3),
                    "steps": [asdict(s) for s in result.steps],
                    "failure": asdict(result.failure) if result.failure else None,
                },
                indent=2,
            )
        )
    if out.saved:
        print(f"saved {args.plan} (comments kept)", file=sys.stderr)
    else:
        print(f"{args.plan} is unchanged: htpasswd was not written", file=sys.stderr)
    if result.ok and out.proof:
        print(f"proved: {out.proof}; the registry container was not restarted", file=sys.stderr)
    return 0 if result.ok else 1
