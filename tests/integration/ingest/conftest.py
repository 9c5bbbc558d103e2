"""A real S3 store for s3:// sources: the emulator `make run` keeps the
durable broker's data in (tools/s3emulator.py, localbucket), on a free
port, with two empty buckets, `docs` and `private`."""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.config import Config

from builders import S3Store
from devstack import free_port, port_open, stop_process, wait_for

EMULATOR = Path(__file__).parents[3] / "tools" / "s3emulator.py"


@pytest.fixture
def s3_store(tmp_path: Path, aws_credentials: None) -> Iterator[S3Store]:
    port = free_port()
    args = [sys.executable, str(EMULATOR), str(tmp_path / "s3"), "--host", "127.0.0.1", "--port", str(port)]
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open("127.0.0.1", port), 20, "the S3 emulator")
        endpoint = f"http://127.0.0.1:{port}"
        # localbucket serves path-style requests only.
        config = Config(s3={"addressing_style": "path"})
        client = boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
        for bucket in ("docs", "private"):
            client.create_bucket(Bucket=bucket)
        yield S3Store(endpoint, client, process)
        client.close()
    finally:  # also when start-up timed out: no process outlives the tests
        stop_process(process)
