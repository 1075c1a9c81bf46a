"""Google's Pub/Sub emulator (`gcloud beta emulators pubsub start`) on a free
port, for the Nexxio tests and the benchmark: started, stopped, restarted on
the same port. `unavailable()` says why it cannot run here (no gcloud, no
emulator component, no Java), so that the tests skip with that reason.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from google.api_core import exceptions as google_errors
from google.cloud import pubsub_v1

START_TIMEOUT = 90.0
SKIP_PREFIX = "Pub/Sub emulator not run"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unavailable() -> str:
    """Why the emulator cannot run here, or ""."""
    if shutil.which("gcloud") is None:
        return f"{SKIP_PREFIX}: gcloud is not installed"
    if shutil.which("java") is None:
        return f"{SKIP_PREFIX}: Java (needed by the emulator) is not installed"
    return ""


class Emulator:
    def __init__(self) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="pubsub-emulator-"))
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "emulator.log"

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own copy
            self.process = self._spawn(log)
        self._wait_started()

    def _spawn(self, log: Any) -> subprocess.Popen:
        return subprocess.Popen(
            [
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={self.host}",
                f"--data-dir={self.data_dir}",
                "--quiet",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the Java child goes with it
        )

    def _wait_started(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the emulator stopped at start: {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    if "Server started" in self.log_path.read_text(errors="replace"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"the emulator did not start in {START_TIMEOUT:.0f} s: {self.log_tail()}")

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-1500:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=15)
        self.process = None
        # The Java server may outlive the gcloud wrapper for a moment: wait for the port.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    time.sleep(0.2)
            except OSError:
                return

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # --- Admin of the emulated bus (what the manager's team sets up) ---

    def clients(self) -> tuple[pubsub_v1.PublisherClient, pubsub_v1.SubscriberClient]:
        import grpc
        from google.pubsub_v1.services.publisher.transports import PublisherGrpcTransport
        from google.pubsub_v1.services.subscriber.transports import SubscriberGrpcTransport

        publisher = pubsub_v1.PublisherClient(
            publisher_options=pubsub_v1.types.PublisherOptions(enable_message_ordering=True),
            transport=PublisherGrpcTransport(channel=grpc.insecure_channel(self.host)),
        )
        subscriber = pubsub_v1.SubscriberClient(
            transport=SubscriberGrpcTransport(channel=grpc.insecure_channel(self.host))
        )
        return publisher, subscriber

    def create(self, project: str, topic: str, subscription: str, *, ack_deadline: int = 10) -> None:
        """The topic and an ordered subscription to it (both kept if they exist)."""
        publisher, subscriber = self.clients()
        topic_path = f"projects/{project}/topics/{topic}"
        with contextlib.suppress(google_errors.AlreadyExists):
            publisher.create_topic(name=topic_path)
        with contextlib.suppress(google_errors.AlreadyExists):
            subscriber.create_subscription(
                request={
                    "name": f"projects/{project}/subscriptions/{subscription}",
                    "topic": topic_path,
                    "enable_message_ordering": True,
                    "ack_deadline_seconds": ack_deadline,
                }
            )
