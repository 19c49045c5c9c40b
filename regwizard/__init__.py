"""regwizard: set up a private Docker registry over SSH, and prove it works.

The engine (everything in this package except ``regwizard.app`` and
``regwizard.screens``) never imports textual or rich.
"""

import sys as _sys

__version__ = "0.1.0"

# paramiko imports invoke (about 70 ms, a third of paramiko's import) only to run
# ssh_config's `Match exec`, which regwizard never runs (sshconfig ignores Match). A None
# entry makes that optional import fail at once; paramiko handles the ImportError.
_sys.modules.setdefault("invoke", None)  # type: ignore[arg-type]
