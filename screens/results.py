"""Step 6: the proof (login, anonymous refused, push/pull digests, trust) and next steps."""

from __future__ import annotations

from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Button, Footer, Label, Static, TextArea

from regwizard.errors import RegwizardError
from regwizard.plan import write_private_text
from regwizard.report import format_seconds, markdown_report, next_steps, verification_lines
from regwizard.screens.base import WizardScreen
from regwizard.screens.dialogs import ErrorDialog, PathDialog

DEFAULT_REPORT_PATH = "./regwizard-report.md"


class ResultsScreen(WizardScreen):
    STEP = "results"
    AUTO_FOCUS = "#finish"
    BINDINGS = [Binding("ctrl+s", "save_report", "Save report")]

    def compose(self) -> ComposeResult:
        result = self.state.result
        plan = self.state.plan
        verified = self.state.verified
        yield from self.compose_steps()
        with VerticalScroll(id="body"):
            with Vertical(classes="page"):
                if verified:
                    title = f"✓ Your registry {plan.registry.address} works"
                elif result is None:
                    title = "Nothing has run yet"
                else:
                    title = f"✗ {plan.registry.address} is not proven to work"
                yield Label(
                    title,
                    id="verdict",
                    classes="page-title " + ("-ok" if verified else "-bad"),
                    markup=False,
                )
                verification = result.verification if result else None
                with Vertical(id="proof"):
                    for ok, text in verification_lines(verification, short=True):
                        yield Horizontal(
                            Label("✓" if ok else "✗", classes="mark " + ("-ok" if ok else "-bad")),
                            Label(text, classes="proof-text", markup=False),
                            classes="proof-row",
                        )
                    if result is not None:
                        yield Horizontal(
                            Label("·", classes="mark"),
                            Label(
                                f"{len(result.steps)} steps ({len(result.changed)} changed), "
                                f"total time {format_seconds(result.seconds)}",
                                classes="proof-text",
                                markup=False,
                            ),
                            classes="proof-row",
                        )
                yield Label("Next steps: use it from any client", classes="section-title")
                yield TextArea(
                    "\n".join(next_steps(plan)),
                    read_only=True,
                    soft_wrap=False,
                    show_line_numbers=False,
                    id="next-steps",
                )
                yield Static(
                    "Select text with the mouse or Shift+arrows, then Ctrl+C to copy.",
                    classes="field-note",
                )
        with Horizontal(id="nav"):
            yield Static(classes="spacer")
            yield Button("Save report", id="save-report")
            yield Button("Finish", id="finish", variant="primary" if verified else "error")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#finish", Button).focus()

    def action_save_report(self) -> None:
        def chosen(path: str | None) -> None:
            if not path:
                return
            text = markdown_report(self.state.plan, self.state.result)
            for secret in self.state.secrets.all_values():
                if len(secret) >= 6:  # belt and braces: the report is built without secrets
                    text = text.replace(secret, "********")
            try:
                write_private_text(Path(path), text)
            except RegwizardError as e:
                self.app.push_screen(ErrorDialog("Could not save the report", e.cause, e.fix))
                return
            self.notify(f"Report saved to {path}", title="Saved", markup=False)

        self.app.push_screen(
            PathDialog("Save report (Markdown, no secrets)", DEFAULT_REPORT_PATH, ok_label="Save"),
            chosen,
        )

    @on(Button.Pressed, "#save-report")
    def save_report_pressed(self) -> None:
        self.action_save_report()

    @on(Button.Pressed, "#finish")
    def finish(self) -> None:
        self.wizard.finish()
