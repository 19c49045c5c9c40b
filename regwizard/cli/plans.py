"""``regwizard plan new`` and ``regwizard user hash``."""

from __future__ import annotations

import sys

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
