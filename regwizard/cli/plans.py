"""``regwizard plan new`` and ``regwizard user hash``."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from regwizard.errors import RegwizardError


def plan_new(args) -> int:
    from regwizard.plan import EXAMPLE_PLAN

    if args.output:
        path = Path(args.output)
        if path.exists():
            raise RegwizardError(f"{path} already exists", "choose another -o path or remove it")
        path.write_text(EXAMPLE_PLAN)
        os.chmod(path, 0o600)
        print(f"wrote {path}", file=sys.stderr)
    else:
        sys.stdout.write(EXAMPLE_PLAN)
    return 0


def user_hash(args) -> int:
    from regwizard import htpasswd
    from regwizard.plan import check_username

    msg = check_username(args.name)
    if msg:
        raise RegwizardError(f"user name {args.name!r}: {msg}")
    if sys.stdin.isatty():
        pw = getpass.getpass(f"password for {args.name}: ")
        if pw != getpass.getpass("again: "):
            raise RegwizardError("the passwords differ", "type the same password twice")
    else:
        pw = sys.stdin.readline().rstrip("\n")
    if not pw:
        raise RegwizardError("empty password", "choose a password of at least 8 characters")
    print("[[users]]")
    print(f'name = "{args.name}"')
    print(f'bcrypt = "{htpasswd.hash_password(pw, args.cost)}"')
    return 0
