"""What a web worker process holds once it has started (center/asgi.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from center_kit import SECRET, export_dir  # noqa: F401  (fixture)

PROBE = """
import gc, json
import consentry.center.asgi
frozen = gc.get_freeze_count()
gc.collect()
print(json.dumps({"frozen": frozen, "tracked": len(gc.get_objects())}))
"""


def test_a_worker_freezes_what_start_up_built(tmp_path: Path, export_dir: Path) -> None:  # noqa: F811
    """Start-up's objects are out of the collector's sight: a full collection
    under load walked all of them (about 90 ms a pass on this machine, every
    few seconds: the objection intake's p99). What is left to walk is a small
    part of what was frozen."""
    env = {
        **os.environ,
        "CONSENTRY_HOME": str(tmp_path),
        "CONSENTRY_SECRET_KEY": SECRET,
        "CONSENTRY_CENTER_SETTINGS": json.dumps(
            {"data": str(export_dir), "ledger_url": f"sqlite:///{tmp_path / 'l.db'}", "mail_dir": str(tmp_path / "mail")}
        ),
    }
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["frozen"] > 50_000, found
    assert found["tracked"] < found["frozen"] / 10, found
