"""``regwizard [COMMAND]``: dispatch to each command's front end; one clear message and
exit 2 for bad input, never a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

from regwizard.cli.parser import parser
from regwizard.errors import RegwizardError


def _err(msg: str) -> None:
    print(f"regwizard: {msg}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # A file name that is not UTF-8 reaches Python as lone surrogates (surrogateescape).
    # stdout writes them back as the original bytes, as `ls` would, instead of raising
    # UnicodeEncodeError where a path is printed (stderr already uses backslashreplace).
    stdout = sys.stdout
    errors = getattr(stdout, "errors", None)
    if errors == "strict" and hasattr(stdout, "reconfigure"):
        stdout.reconfigure(errors="surrogateescape")
    try:
        return _main(argv)
    finally:
        if errors == "strict" and hasattr(stdout, "reconfigure"):
            stdout.reconfigure(errors="strict")


def _main(argv: list[str]) -> int:
    try:
        if not argv or (argv[0].endswith(".toml") and len(argv) == 1):
            from regwizard.cli.wizard import wizard

            return wizard(Path(argv[0]) if argv else None)
        if argv[:2] == ["images", "rm"]:
            from regwizard.cli.images import images_rm_cli
            from regwizard.cli.parser import images_rm_parser

            rm_args = images_rm_parser().parse_args(argv[2:])
            from regwizard.cli.common import set_verbosity

            set_verbosity(rm_args)
            return images_rm_cli(rm_args)
        args = parser(argv).parse_args(argv)  # exits here for --help and --version
        from regwizard.cli.common import set_verbosity

        set_verbosity(args)
        if args.cmd == "apply":
            from regwizard.cli.apply import apply_cli

            return apply_cli(args)
        if args.cmd == "adopt":
            from regwizard.cli.adopt import adopt_cli

            return adopt_cli(args)
        if args.cmd == "doctor":
            from regwizard.cli.doctor import doctor_cli

            return doctor_cli(args)
        if args.cmd == "gc":
            from regwizard.cli.gc import gc_cli

            return gc_cli(args)
        if args.cmd == "images":
            from regwizard.cli.images import images_cli

            return images_cli(args)
        if args.cmd == "completion":
            from regwizard.cli.completion import completion_cli

            return completion_cli(args)
        if args.cmd == "plan" and args.plan_cmd == "check":
            from regwizard.cli.plans import plan_check

            return plan_check(args)
        if args.cmd == "plan" and args.plan_cmd == "new":
            from regwizard.cli.plans import plan_new

            return plan_new(args)
        if args.cmd == "user" and args.user_cmd == "hash":
            from regwizard.cli.plans import user_hash

            return user_hash(args)
        if args.cmd == "user":
            from regwizard.cli.users import user_cli

            return user_cli(args)
        if args.cmd == "lab":
            from regwizard.cli.lab import lab_cli

            return lab_cli(args)
        if args.cmd == "serve":
            from regwizard.cli.serve import serve_cli

            return serve_cli(args)
        if args.cmd == "demo":
            from regwizard.cli.lab import demo

            return demo()
        parser().print_help(sys.stderr)
        return 2
    except RegwizardError as e:
        _err(str(e))
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
