"""``regwizard plan new`` and ``regwizard user hash``."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from regwizard.cli.common import ask_password, output_path, read_stdin_line, stdin_is_tty
from regwizard.errors import RegwizardError


def plan_new(args) -> int:  # noqa: ANN001
    from regwizard.plan import EXAMPLE_PLAN, write_private_text

    if args.output is not None:
        path = output_path(args.output)
        write_private_text(path, EXAMPLE_PLAN)  # mode 0600, atomic
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(EXAMPLE_PLAN)
    return 0


def field_line(text: str, field: str) -> int | None:
    """The 1-based line where ``field`` ("registry.port", "clients[1].address") is set in
    the TOML ``text``: the key's line, else its table's header, else None."""
    m = re.fullmatch(r"([a-z_]+)(?:\[(\d+)\])?(?:\.([a-z_]+))?", field)
    if not m:
        return None
    table, index, key = m.group(1), int(m.group(2) or 0), m.group(3)
    header = None
    seen = -1
    current = ""
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        h = re.fullmatch(r"\[\[?\s*([a-z_]+)\s*\]\]?\s*(#.*)?", line)
        if h:
            current = h.group(1)
            if current == table:
                seen += 1
                if seen == index:
                    header = no
            continue
        if current == table and seen == index and key and re.match(rf"{key}\s*=", line):
            return no
    return header


def plan_check(args) -> int:  # noqa: ANN001
    """Validate offline: parse and check every field; nothing is contacted."""
    from regwizard.errors import PlanError
    from regwizard.plan import PlanErrors, load_plan

    try:
        plan = load_plan(args.plan)
    except PlanError as e:
        errors = e.errors if isinstance(e, PlanErrors) else [e]
        try:
            text = Path(args.plan).expanduser().read_text(errors="replace")
        except OSError:
            text = ""
        for err in errors:
            line = field_line(text, err.field) if err.field and text else None
            where = f"{args.plan}:{line}" if line else str(args.plan)
            print(f"regwizard: {where}: {err.cause}", file=sys.stderr)
            if err.fix:
                print(f"  fix: {err.fix}", file=sys.stderr)
        return 2
    reg = plan.registry
    replicas = f"{len(plan.replicas)} replica(s), " if plan.replicas else ""
    print(
        f"{args.plan}: valid: {reg.address} on {plan.host.label or plan.host.address}, "
        f"{replicas}{len(plan.clients)} client(s), {len(plan.users)} user(s)"
    )
    from regwizard.cli.common import ha_lines, ssh_routes

    for line in ha_lines(plan):
        print(f"  {line}")
    try:
        for route in ssh_routes(plan):
            print(f"  ssh: {route}")
    except RegwizardError as e:  # the plan is valid; connecting would fail
        print(f"regwizard: warning: {e.cause}\n  fix: {e.fix}", file=sys.stderr)
    return 0


def user_hash(args) -> int:  # noqa: ANN001
    from regwizard import htpasswd
    from regwizard.plan import check_username

    msg = check_username(args.name)
    if msg:
        raise RegwizardError(
            f"user name {args.name!r}: {msg}", "use a short lowercase name such as testuser"
        )
    if stdin_is_tty():
        pw = ask_password(f"password for {args.name}: ")
        if pw != ask_password("again: "):
            raise RegwizardError("the passwords differ", "type the same password twice")
    else:
        pw = read_stdin_line("password")
    problem = htpasswd.check_new_password(pw)
    if problem:
        raise RegwizardError(
            f"password for {args.name}: {problem[0].lower()}{problem[1:]}",
            f"choose another password (at least {htpasswd.MIN_PASSWORD_LENGTH} characters)",
        )
    print("[[users]]")
    print(f'name = "{args.name}"')
    print(f'bcrypt = "{htpasswd.hash_password(pw, args.cost)}"')
    return 0
