"""A real S3 server for tests: moto's, in its own process on 127.0.0.1, a free port.

Why a real server rather than a patched client: what matters (listing keys
under a prefix, ranged reads of Parquet footers, a missing object) lives in
the protocol. No pytest here, so scripts can use it too:

    with S3TestServer() as s3:
        s3.upload(folder, "exports/e1")        # -> s3://consentry-test/exports/e1
        env = s3.env                           # AWS_* for a child process
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Self

from smtp_server import HOST, free_port

BUCKET = "consentry-test"


class S3TestServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://{HOST}:{self.port}"
        self._proc: subprocess.Popen | None = None

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to reach this server, as any AWS tool reads it."""
        return {"AWS_ACCESS_KEY_ID": "consentry-test", "AWS_SECRET_ACCESS_KEY": "consentry-test-secret",
                "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def __enter__(self) -> Self:
        server = Path(sys.executable).with_name("moto_server")
        self._proc = subprocess.Popen([str(server), "-H", HOST, "-p", str(self.port)],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/", timeout=1).close()
                break
            except OSError:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start on {self.endpoint}") from None
                time.sleep(0.1)
        self._fs(allow_bucket_creation=True).create_dir(BUCKET)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(10)

    def _fs(self, **kw):  # noqa: ANN202 - a pyarrow S3FileSystem
        import pyarrow.fs as pafs

        e = self.env
        return pafs.S3FileSystem(access_key=e["AWS_ACCESS_KEY_ID"], secret_key=e["AWS_SECRET_ACCESS_KEY"],
                                 region=e["AWS_REGION"], endpoint_override=self.endpoint, **kw)

    def upload(self, folder: Path, prefix: str) -> str:
        """Copy a local folder under `prefix` in the bucket; its s3:// URI."""
        import pyarrow.fs as pafs

        pafs.copy_files(str(folder), f"{BUCKET}/{prefix}", source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=self._fs())
        return f"s3://{BUCKET}/{prefix}"

    def put(self, key: str, data: bytes) -> None:
        with self._fs().open_output_stream(f"{BUCKET}/{key}") as fh:
            fh.write(data)

    def delete(self, key: str) -> None:
        self._fs().delete_file(f"{BUCKET}/{key}")

    def apply_env(self) -> dict[str, str | None]:
        """Set `env` in this process; returns what was there, for `restore_env`."""
        old = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        return old

    @staticmethod
    def restore_env(old: dict[str, str | None]) -> None:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
