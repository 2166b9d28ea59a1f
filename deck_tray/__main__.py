"""``python -m deck_tray`` runs the CLI (and the app without arguments)."""

import sys

from deck_tray.cli import main

sys.exit(main())
