"""The wizard's screens, in one table: how each is made, kept, named and ordered.

:mod:`regwizard.app` reads it to make and install screens (``goto``) and to forget
the forms when the plan is replaced; :class:`~regwizard.screens.base.StepsBar`
reads it for the order and labels of each flow's step bar.

Plain data: this module imports nothing (no textual), and names each screen's
module as a string, so the app imports a screen's module only when it is first
shown (the first paint waits for the Welcome screen only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Flow = Literal["new", "repair"]

NEW: tuple[Flow, ...] = ("new",)
REPAIR: tuple[Flow, ...] = ("repair",)
BOTH: tuple[Flow, ...] = ("new", "repair")


@dataclass(frozen=True)
class ScreenSpec:
    """One wizard screen."""

    name: str  # goto(name), the installed screen's name, the screen class's STEP
    module: str  # its module under regwizard.screens, imported when first shown
    cls: str  # the Screen class in that module
    title: str  # what the step is, in words
    label: str  # its name in the step bar ("" = not in a step bar)
    flows: tuple[Flow, ...] = ()  # the flows whose step bar lists it (in table order)
    kept: bool = True  # installed once and kept (Back keeps what was typed); else made fresh
    form: bool = False  # built from the plan: forgotten (and rebuilt) when the plan is replaced


#: Every screen, in step-bar order: each flow's bar lists the screens of that flow
#: in the order they appear here.
# fmt: off
SCREENS: tuple[ScreenSpec, ...] = (
    #          name           module         cls                    title                   label          flows
    ScreenSpec("welcome",     "welcome",     "WelcomeScreen",       "Welcome",              ""),
    ScreenSpec("hosts",       "hosts",       "HostsScreen",         "Hosts",                "Hosts",       NEW,    form=True),
    ScreenSpec("certificate", "certificate", "CertificateScreen",   "Certificate",          "Certificate", NEW,    form=True),
    ScreenSpec("storage",     "storage",     "StorageScreen",       "Storage & users",      "Storage",     NEW,    form=True),
    ScreenSpec("repair",      "repair",      "RepairConnectScreen", "Repair: connect",      "Connect",     REPAIR, form=True),
    ScreenSpec("discovered",  "repair",      "DiscoveredScreen",    "Repair: findings",     "Findings",    REPAIR, kept=False),
    ScreenSpec("fixes",       "repair",      "FixesScreen",         "Repair: choose fixes", "Fixes",       REPAIR, kept=False),
    ScreenSpec("review",      "review",      "ReviewScreen",        "Review",               "Review",      BOTH,   form=True),
    ScreenSpec("run",         "run",         "RunScreen",           "Run",                  "Run",         BOTH,   kept=False),
    ScreenSpec("results",     "results",     "ResultsScreen",       "Results",              "Results",     BOTH,   kept=False),
    ScreenSpec("gc",          "gc",          "GcScreen",            "Reclaim disk",         "",                    kept=False),
)
# fmt: on

BY_NAME: dict[str, ScreenSpec] = {spec.name: spec for spec in SCREENS}


def spec(name: str) -> ScreenSpec:
    """The screen called ``name`` (KeyError for a name the wizard does not have)."""
    return BY_NAME[name]


def flow_steps(flow: Flow) -> tuple[ScreenSpec, ...]:
    """The screens of ``flow``'s step bar, in order."""
    return tuple(s for s in SCREENS if flow in s.flows)


def flow_of(name: str, mode: Flow) -> Flow:
    """The flow whose step bar a screen shows: its own when it belongs to one flow only,
    else (a screen both flows share, or none) the flow the wizard is in."""
    known = BY_NAME.get(name)
    flows = known.flows if known is not None else ()
    return flows[0] if len(flows) == 1 else mode


def forms(flow: Flow | None = None) -> tuple[str, ...]:
    """Names of the form screens (of ``flow`` only, when given)."""
    return tuple(s.name for s in SCREENS if s.form and (flow is None or flow in s.flows))
