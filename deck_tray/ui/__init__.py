"""Widgets: the tray, the pinned window and its tabs, the dialogs."""
