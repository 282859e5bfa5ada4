"""The privacy center: where people see what happens with their data and say no (or yes)."""

from .app import create_app
from .settings import CenterSettings

__all__ = ["CenterSettings", "create_app"]
