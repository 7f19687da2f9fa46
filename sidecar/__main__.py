"""``python -m sidecar``: the command line."""

import signal
import sys

from sidecar.cli import main

# Behave like other command-line tools when piped into `head`: stop quietly.
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
sys.exit(main())
