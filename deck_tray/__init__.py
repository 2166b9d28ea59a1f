"""deck-tray: a desktop tray for people who run several AI coding agents at once."""

__version__ = "0.1.0"
APP_ID = "io.github.decktray.DeckTray"
