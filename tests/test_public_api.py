"""The public namespace is curated: what `import consentry` offers is listed,
and each name is there."""

from __future__ import annotations

import subprocess
import sys

import pytest

import consentry
from consentry.errors import InputError


def test_the_public_names() -> None:
    assert consentry.__all__ == ["ENGINES", "Platform", "__version__"]
    for name in consentry.__all__:
        assert getattr(consentry, name) is not None
    assert consentry.ENGINES == ("duckdb", "spark")
    with pytest.raises(AttributeError):
        consentry.Nothing  # noqa: B018


def test_importing_consentry_stays_light() -> None:
    """The CLI imports `consentry` first: the front door loads on first use."""
    code = "import sys, consentry; print(sorted(m for m in ('duckdb', 'sqlalchemy', 'pyspark') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_platform_refuses_an_unknown_engine(tmp_path) -> None:
    from exportkit import base_content, base_users, write_export

    folder = write_export(tmp_path / "e", base_users(), base_content())
    with pytest.raises(InputError, match="unknown engine 'polars'"):
        consentry.Platform(folder, f"sqlite:///{tmp_path / 'l.db'}", engine="polars")  # type: ignore[arg-type]
