"""The privacy center: where people see what happens with their data and say no (or yes)."""

from .app import create_app
from .metrics import prepare_multiprocess_dir
from .settings import CenterSettings

__all__ = ["CenterSettings", "create_app", "prepare_multiprocess_dir"]
