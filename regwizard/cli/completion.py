"""``regwizard completion bash|zsh|fish``: a completion script generated from the parser.

bash and zsh come from shtab; fish (which shtab does not write) is built here from the
same parser, so every shell completes the same subcommands, flags and plan files."""

from __future__ import annotations

import argparse
import sys

SHELLS = ("bash", "zsh", "fish")


def _subparsers(p: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in p._actions:  # argparse keeps subcommands only here
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _helps(p: argparse.ArgumentParser) -> dict[str, str]:
    for action in p._actions:
        if isinstance(action, argparse._SubParsersAction):
            return {a.dest: a.help or "" for a in action._choices_actions}
    return {}


def _mark_plan_files(p: argparse.ArgumentParser) -> None:
    """Plan arguments complete as files in every shell."""
    import shtab

    for action in p._actions:
        if action.dest == "plan" and not action.option_strings:
            action.complete = shtab.FILE  # type: ignore[attr-defined]
    for sub in _subparsers(p).values():
        _mark_plan_files(sub)


def _fish_quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def fish_script(p: argparse.ArgumentParser) -> str:
    out = ["# regwizard completion for fish: regwizard completion fish | source", ""]
    subs, helps = _subparsers(p), _helps(p)
    names = " ".join(subs)
    out.append("complete -c regwizard -f")
    for name in subs:
        out.append(
            f"complete -c regwizard -n 'not __fish_seen_subcommand_from {names}' "
            f"-a {name} -d {_fish_quote(helps.get(name, ''))}"
        )
    for name, sub in subs.items():
        cond = f"'__fish_seen_subcommand_from {name}'"
        for action in sub._actions:
            for opt in action.option_strings:
                if opt.startswith("--"):
                    out.append(
                        f"complete -c regwizard -n {cond} -l {opt[2:]} "
                        f"-d {_fish_quote(action.help or '')}"
                    )
            if action.dest == "plan" and not action.option_strings:
                out.append(f"complete -c regwizard -n {cond} -F")
        inner, inner_helps = _subparsers(sub), _helps(sub)
        for action_name in inner:
            out.append(
                f"complete -c regwizard -n {cond} -a {action_name} "
                f"-d {_fish_quote(inner_helps.get(action_name, ''))}"
            )
    return "\n".join(out) + "\n"


def completion_cli(args) -> int:  # noqa: ANN001
    from regwizard.cli.parser import parser

    p = parser()
    if args.shell == "fish":
        sys.stdout.write(fish_script(p))
        return 0
    import shtab

    _mark_plan_files(p)
    sys.stdout.write(shtab.complete(p, shell=args.shell))
    return 0
