"""Shared pieces of the wizard screens: step bar, button bar, form fields, validation."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, ClassVar, cast

from rich.segment import Segment
from rich.style import Style as RichStyle
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.markup import escape
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Button, Input, Label, ProgressBar, Static

from regwizard.screens.table import Flow, flow_of, flow_steps

if TYPE_CHECKING:
    from regwizard.app import RegwizardApp, WizardState
    from regwizard.events import StepProgress

Check = Callable[[str], "str | None"]

_CONTROL = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]|[\x00-\x08\x0b-\x1f\x7f]")


def plain(text: str) -> str:
    """Remote text made safe to show: ANSI escapes and control characters removed."""
    return _CONTROL.sub("", text.replace("\r\n", "\n").replace("\t", "    "))


class StepsBar(Widget):
    """One line at the top: ``regwizard  Hosts › Certificate › ...`` with the current step lit.

    One widget drawing its line, not a Label per word: a dozen Labels were a sixth of the
    work between composing the Welcome screen and its first paint (issue 15). The looks are
    the ``steps-bar--*`` component classes in regwizard.tcss; the gaps carry the bar's
    background only, as the gaps between Labels did, so every cell looks as it did.
    """

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "steps-bar--app-name",
        "steps-bar--step",
        "steps-bar--done",
        "steps-bar--current",
    }

    def __init__(self, current: str, mode: Flow = "new", *, ascii_sep: bool = False) -> None:
        super().__init__(id="steps-bar")
        self.current = current
        self.ascii_sep = ascii_sep
        steps = flow_steps(flow_of(current, mode))
        names = [step.name for step in steps]
        at = names.index(current) if current in names else -1
        #: (label, "current" / "done" / "") of each step, in order
        self.steps: list[tuple[str, str]] = [
            (step.label, "current" if i == at else "done" if i < at else "")
            for i, step in enumerate(steps)
        ]

    def render_line(self, y: int) -> Strip:
        if y:
            return Strip([])
        style = self.get_component_rich_style
        gap = RichStyle(bgcolor=self.rich_style.bgcolor)
        muted = style("steps-bar--step")
        sep = ">" if self.ascii_sep else "›"
        segments = [Segment("regwizard", style("steps-bar--app-name")), Segment("  ", gap)]
        for i, (label, state) in enumerate(self.steps):
            if i:
                segments += [Segment(" ", gap), Segment(sep, muted), Segment(" ", gap)]
            segments.append(Segment(label, style(f"steps-bar--{state}") if state else muted))
        return Strip(segments)


class WorkProgress(Vertical):
    """One step's long work (``events.StepProgress``): its words and a ProgressBar.

    Hidden (by its style) until ``show(ev)``; ``hide()`` when the step finishes. ``live`` is the
    (step, host) shown, so a screen hides it only for the step it belongs to."""

    def __init__(self, id: str) -> None:  # noqa: A002
        super().__init__(id=id, classes="work-progress")
        self.live: tuple[str, str] | None = None

    def compose(self) -> ComposeResult:
        yield Label("", classes="work-progress-what", markup=False)
        yield ProgressBar(total=100, show_eta=False, classes="work-progress-bar")

    def show(self, ev: StepProgress) -> None:
        from regwizard.progress import text as progress_text  # events load with the first run

        self.live = (ev.step, ev.host)
        self.query_one(".work-progress-what", Label).update(
            f"{ev.host}: {plain(progress_text(ev))}"
        )
        bar = self.query_one(".work-progress-bar", ProgressBar)
        if ev.total is None:
            bar.update(total=None)  # unknown: the bar pulses
        else:
            bar.update(total=max(ev.total, 1), progress=ev.done)
        self.display = True

    def hide(self) -> None:
        self.live = None
        self.display = False

    def ends_with(self, step: str, host: str) -> None:
        """The step (step, host) finished or failed: hide if it is the one shown."""
        if self.live == (step, host):
            self.hide()


def form_field(label: str, widget: Widget, *, hint: str = "", classes: str = "") -> Horizontal:
    """A labelled field: label on the left, the widget with its error line on the right.

    The error Label has id ``<widget id>-error`` and is hidden while empty.
    """
    assert widget.id, "form fields need an id"
    if hasattr(widget, "compact"):
        widget.compact = True  # one line per field: the whole form fits 80x24
    parts: list[Widget] = [
        widget,
        Label("", id=f"{widget.id}-error", classes="field-error", markup=False),
    ]
    if hint:
        parts.append(Label(hint, classes="field-hint", markup=False))
    column = Vertical(*parts, classes="field-input")
    return Horizontal(
        Label(label, classes="field-label", markup=False),
        column,
        classes=f"field {classes}".strip(),
        id=f"{widget.id}-field",
    )


def show_field_error(root: Widget | Screen, field_id: str, message: str | None) -> None:
    """Show (or clear) the error line under field ``field_id``; no relayout when unchanged."""
    label = root.query_one(f"#{field_id}-error", Label)
    text = message or ""
    if getattr(label, "_error_text", "") != text:
        label._error_text = text  # type: ignore[attr-defined]
        label.update(text)
        label.set_class(bool(text), "-shown")
    field = root.query_one(f"#{field_id}")
    field.set_class(bool(text), "-invalid")


def cell(text: str) -> str:
    """A DataTable cell: DataTable parses markup in str cells, so escape anything remote."""
    return escape(text)


def parse_int(value: str) -> int | None:
    value = value.strip()
    if not re.fullmatch(r"[0-9]+", value):
        return None
    return int(value)


class WizardScreen(Screen[None]):
    """A wizard step: step bar on top, a body, a button bar and the Footer."""

    STEP = ""

    @property
    def wizard(self) -> RegwizardApp:
        return cast("RegwizardApp", self.app)

    @property
    def state(self) -> WizardState:
        return self.wizard.state

    def compose_steps(self) -> ComposeResult:
        state = getattr(self.app, "state", None)
        mode: Flow = getattr(state, "mode", "new")
        yield StepsBar(self.STEP, mode, ascii_sep=getattr(self.app, "ascii_borders", False))

    def on_mount(self) -> None:
        freeze = getattr(self.app, "freeze_widgets", None)
        if freeze is not None:
            freeze(self)

    def freeze(self, root: Widget) -> None:
        """Call after mounting widgets dynamically."""
        freeze = getattr(self.app, "freeze_widgets", None)
        if freeze is not None:
            freeze(root)

    @on(Button.Pressed, "#quit")
    async def quit_pressed(self) -> None:
        await self.wizard.action_quit()


class FormScreen(WizardScreen):
    """A form step with Back / Next / Quit, Esc = Back, inline validation.

    Subclasses fill ``checks`` (input id -> check on the raw text) and ``labels``
    (input id -> human name), and implement ``save()`` / ``previous`` / ``following``.
    """

    BINDINGS = [
        Binding("escape", "back", "Back", tooltip="Previous step (keeps what you typed)"),
        Binding("ctrl+n", "next", "Next", tooltip="Next step (after checking every field)"),
    ]
    AUTO_FOCUS = "Input, Select, Checkbox"
    previous = "welcome"
    following = ""

    def __init__(self) -> None:
        super().__init__()
        self.checks: dict[str, Check] = {}
        self.labels: dict[str, str] = {}

    def compose_nav(self, next_label: str = "Next", extra: tuple[Button, ...] = ()) -> Horizontal:
        return Horizontal(
            Button("Quit", id="quit", variant="error"),
            Static(classes="spacer"),
            *extra,
            Button("Back", id="back"),
            Button(next_label, id="next", variant="primary"),
            id="nav",
        )

    # -- validation ------------------------------------------------------------------

    def field_value(self, input_id: str) -> str:
        return self.query_one(f"#{input_id}", Input).value

    def field_visible(self, input_id: str) -> bool:
        """False when the field is switched off (e.g. the key file when logging in by password).

        A field inside a collapsed section still counts: it is still in the plan.
        """
        for field in self.query(f"#{input_id}-field"):
            return bool(field.display)
        return True

    def show_error(self, input_id: str, message: str | None) -> None:
        show_field_error(self, input_id, message)

    def check_field(self, input_id: str) -> str | None:
        check = self.checks.get(input_id)
        if check is None or not self.field_visible(input_id):
            message = None
        else:
            message = check(self.field_value(input_id))
        self.show_error(input_id, message)
        return message

    def extra_problems(self) -> list[str]:
        """Problems beyond single fields (e.g. "no users"); names for the notification."""
        return []

    def validate_all(self) -> list[str]:
        """Re-run every check (``Input.is_valid`` is True before any ran); names of bad fields."""
        bad = [self.labels.get(i, i) for i in self.checks if self.check_field(i)]
        return bad + self.extra_problems()

    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        if event.input.id in self.checks:
            self.check_field(event.input.id)
        self.fields_changed()

    @on(Input.Submitted)
    def _input_submitted(self, event: Input.Submitted) -> None:
        self.focus_next()

    def fields_changed(self) -> None:
        """Hook: something was typed (update previews)."""

    # -- navigation --------------------------------------------------------------------

    def save(self) -> None:
        """Copy the widgets into the plan / secrets (only values that parse)."""

    def can_leave(self) -> bool:
        """Hook: last chance to stay (e.g. work still running)."""
        return True

    # The buttons run the same actions as Esc / Ctrl+N, so a screen may make them async
    # (e.g. to await a check running in a thread before it leaves).

    @on(Button.Pressed, "#back")
    async def back_pressed(self) -> None:
        await self.run_action("back")

    @on(Button.Pressed, "#next")
    async def next_pressed(self) -> None:
        await self.run_action("next")

    def action_back(self) -> None:
        self.save()
        self.wizard.goto(self.previous)

    def action_next(self) -> None:
        bad = self.validate_all()
        if bad:
            self.notify(
                "Please fix: " + ", ".join(bad),
                title="Cannot continue yet",
                severity="error",
            )
            return
        if not self.can_leave():
            return
        self.save()
        self.wizard.goto(self.following)
