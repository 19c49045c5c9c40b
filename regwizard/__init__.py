"""regwizard: set up a private Docker registry over SSH, and prove it works.

The engine (everything in this package except ``regwizard.app`` and
``regwizard.screens``) never imports textual or rich.
"""

__version__ = "0.1.0"
