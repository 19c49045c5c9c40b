"""The setup steps, one file each, in the order a run takes them.

To add a step: write ``regwizard/steps/NAME.py`` with a ``Step`` subclass (its ``check``
returns ``Unchanged`` or its own ``Change`` subclass; ``script`` gives the shell
equivalent), then list it in ``STEPS`` below. The engine needs nothing else.
"""

from __future__ import annotations

from regwizard.steps.base import Change, Ctx, HostEntry, Step, StepError, Unchanged
from regwizard.steps.certificate import Certificate
from regwizard.steps.config import Config
from regwizard.steps.container import Container
from regwizard.steps.containerd_config import ContainerdConfig
from regwizard.steps.health import Health
from regwizard.steps.hosts_file import HostsFile
from regwizard.steps.htpasswd import Htpasswd
from regwizard.steps.image import Image
from regwizard.steps.preflight import Preflight
from regwizard.steps.storage import Storage
from regwizard.steps.trust import Trust
from regwizard.steps.trust_containerd import TrustContainerd
from regwizard.steps.trust_podman import TrustPodman
from regwizard.steps.upstream_ca import UpstreamCA
from regwizard.steps.verify import Verify

STEPS: list[Step] = [
    Preflight(),
    HostsFile(),
    Certificate(),
    Trust(),
    ContainerdConfig(),
    TrustContainerd(),
    TrustPodman(),
    Htpasswd(),
    Storage(),
    Config(),
    UpstreamCA(),
    Image(),
    Container(),
    Health(),
    Verify(),
]


def named(*names: str) -> list[Step]:
    """The steps called ``names``, in run order (a run of a subset, e.g. users only)."""
    unknown = set(names) - {s.name for s in STEPS}
    if unknown:
        raise ValueError(f"no step named {', '.join(sorted(unknown))}")
    return [s for s in STEPS if s.name in names]


__all__ = [
    "STEPS",
    "Certificate",
    "Change",
    "Config",
    "Container",
    "ContainerdConfig",
    "Ctx",
    "Health",
    "HostEntry",
    "HostsFile",
    "Htpasswd",
    "Image",
    "Preflight",
    "Step",
    "StepError",
    "Storage",
    "Trust",
    "TrustContainerd",
    "TrustPodman",
    "Unchanged",
    "UpstreamCA",
    "Verify",
    "named",
]
