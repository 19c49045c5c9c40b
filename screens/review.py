"""Step 4: the whole plan on one page, the equivalent shell commands, Save plan, Run."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Button, Footer, Label, Static, TextArea

from regwizard.errors import RegwizardError
from regwizard.plan import Connection, Plan, plan_warnings, validate_plan
from regwizard.report import plan_summary
from regwizard.screens.base import FormScreen
from regwizard.screens.dialogs import (
    ErrorDialog,
    PasswordDialog,
    save_plan,
)
from regwizard.screens.storage import password_matches


def needed_passwords(plan: Plan, secrets) -> list[tuple[str, str, str]]:
    """Passwords the run needs that are not known yet: (kind, key, prompt)."""
    out: list[tuple[str, str, str]] = []
    conns: list[tuple[str, Connection]] = [("registry host", plan.host)]
    conns += [(f"replica {c.name}", c) for c in plan.replicas]
    conns += [(f"client {c.name}", c) for c in plan.clients]
    seen: set[tuple[str, str]] = set()
    for what, conn in conns:
        if conn.is_local:
            continue
        who = f"{conn.user}@{conn.address}"
        if conn.auth == "password" and not secrets.ssh_passwords.get(conn.address):
            if ("ssh", conn.address) not in seen:
                out.append(("ssh", conn.address, f"SSH password for {who} ({what})"))
                seen.add(("ssh", conn.address))
        if conn.sudo and conn.user != "root" and not secrets.sudo_passwords.get(conn.address):
            if ("sudo", conn.address) not in seen:
                out.append(("sudo", conn.address, f"sudo password for {who} ({what})"))
                seen.add(("sudo", conn.address))
    user = plan.verify_user
    if user and not secrets.verify_password:
        out.append(("verify", user, f"Password of registry user {user} (to prove login)"))
    st = plan.storage
    if st.is_s3 and not secrets.s3_secret_key:
        out.append(("s3", st.access_key, f"S3 secret key of access key {st.access_key}"))
    return out


def summary_table(plan: Plan) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    for key, value in plan_summary(plan):
        table.add_row(key, Text(value))
    return table


class ReviewScreen(FormScreen):
    STEP = "review"
    AUTO_FOCUS = "#next"
    following = "run"

    @property
    def previous(self) -> str:  # type: ignore[override]
        """Back goes to the step before Review in the current flow."""
        return "fixes" if self.state.mode == "repair" else "storage"

    def compose(self) -> ComposeResult:
        yield from self.compose_steps()
        with VerticalScroll(id="body"):
            with Vertical(classes="page"):
                yield Label("Review", classes="page-title")
                yield Static(
                    "Nothing has been changed on any machine yet. Check the plan, save it "
                    "if you like, then Run.",
                    classes="page-intro",
                )
                yield Static(id="summary")
                yield Static("", id="needs", classes="field-note", markup=False)
                yield Static("", id="problems", classes="problems", markup=False)
                yield Static("", id="warnings", classes="warnings", markup=False)
                yield Label("Equivalent shell commands", classes="section-title")
                yield TextArea(
                    "",
                    read_only=True,
                    soft_wrap=False,
                    show_line_numbers=False,
                    id="commands",
                )
        yield self.compose_nav(
            next_label="Run",
            extra=(Button("Save plan", id="save-plan"),),
        )
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_review()

    def on_screen_resume(self) -> None:
        self.refresh_review()

    def refresh_review(self) -> None:
        plan = self.state.plan
        self.query_one("#summary", Static).update(summary_table(plan))
        needs = needed_passwords(plan, self.state.secrets)
        needs_box = self.query_one("#needs", Static)
        if needs:
            needs_box.update(
                "Before the run you will be asked for: " + "; ".join(p for _, _, p in needs)
            )
        needs_box.display = bool(needs)
        problems = validate_plan(plan)
        box = self.query_one("#problems", Static)
        if problems:
            lines = ["The plan has problems (go Back to fix them):"]
            for e in problems:
                lines.append(f"  • {e.cause}" + (f" (fix: {e.fix})" if e.fix else ""))
            box.update("\n".join(lines))
        box.display = bool(problems)
        warnings = plan_warnings(plan)
        warn_box = self.query_one("#warnings", Static)
        warn_box.update("\n".join(f"Note: {w}" for w in warnings))
        warn_box.display = bool(warnings)
        try:
            commands = "\n".join(self.wizard.backend.shell_commands(plan))
        except RegwizardError as e:
            commands = f"# cannot show the commands: {e.cause}"
        except Exception as e:  # a half-filled plan must not crash the review
            commands = f"# cannot show the commands yet: {type(e).__name__}: {e}"
        self.query_one("#commands", TextArea).load_text(commands)

    # -- actions -------------------------------------------------------------------------

    @on(Button.Pressed, "#save-plan")
    def save_plan_pressed(self) -> None:
        save_plan(self, self.state)

    def action_next(self) -> None:
        problems = validate_plan(self.state.plan)
        if problems:
            self.app.push_screen(
                ErrorDialog(
                    "The plan is not ready",
                    "\n".join(f"• {e.cause}" for e in problems),
                    "go Back to the step that holds each field and fix it",
                )
            )
            return
        self.collect_passwords_then_run()

    @work(exclusive=True, group="ask", exit_on_error=False)
    async def collect_passwords_then_run(self) -> None:
        """Ask for every missing password (one dialog each), then start the run."""
        plan = self.state.plan
        secrets = self.state.secrets
        for kind, key, prompt in needed_passwords(plan, secrets):
            check = None
            if kind == "verify":
                user = plan.user(key)
                if user is not None and user.bcrypt:
                    # a bcrypt check: the dialog runs it in a thread worker, never on the UI's

                    def check(pw: str, _hash: str = user.bcrypt, _name: str = key) -> str | None:
                        if password_matches(pw, _hash):
                            return None
                        return f"This is not {_name}'s password (it does not match the plan's hash)"

            if kind == "s3":  # Enter keeps the key the registry hosts' config.yml holds
                answer = await self.app.push_screen_wait(
                    PasswordDialog(
                        prompt,
                        "Empty keeps the key the registry hosts already have (a first run "
                        "needs it). Kept in memory only.",
                        allow_empty=True,
                    )
                )
                if answer is None:
                    self.notify("Run not started.", severity="warning")
                    self.refresh_review()
                    return
                secrets.s3_secret_key = answer
                continue
            answer = await self.app.push_screen_wait(
                PasswordDialog(prompt, "Needed for the run; kept in memory only.", check=check)
            )
            if not answer:
                self.notify("Run not started: a password is needed.", severity="warning")
                self.refresh_review()
                return
            if kind == "ssh":
                secrets.ssh_passwords[key] = answer
            elif kind == "sudo":
                secrets.sudo_passwords[key] = answer
            else:
                secrets.verify_password = answer
        self.wizard.goto("run")
