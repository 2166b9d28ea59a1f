"""The app's resources (icons, the .desktop entry, the AppStream metainfo), kept once here.

pyproject.toml maps this folder to the package ``deck_tray.resources`` (wheel and editable
install), packaging/deck-tray.spec copies it there in the PyInstaller bundle, and the code
reads it with ``importlib.resources.files("deck_tray.resources")``. This file makes it a
regular package: setuptools' editable finder cannot import a mapped namespace package.
"""
