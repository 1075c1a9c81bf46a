"""Google's Pub/Sub emulator (`gcloud beta emulators pubsub start`) on a free
port, for the Nexxio tests and the benchmark: started, stopped, restarted on
the same port. `unavailable()` says why it cannot run here (no gcloud, no
emulator component, no Java), so that the tests skip with that reason.

Permissions: the emulator answers every call unless its IAM integration is
on (`--enable_iam_integration`, `--iam_host`, `--iam_port`, flags of the
emulator's own launcher that gcloud does not pass), in which case it asks an
IAM service, over gRPC (`IamInternal.TestPermissions`: the caller's token,
the resource's policy name, the permissions the call needs), which of those
permissions the caller holds, and refuses the call itself with
PERMISSION_DENIED when one is missing. Google does not ship that IAM service;
`Policy` stands in for it here (it grants everything but what a test
withholds), and `Emulator(policy=...)` starts the emulator with its IAM
integration pointed at it. The refusal, its status and its message are the
emulator's, through the official client.
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
import uuid
from pathlib import Path
from typing import Any

import grpc
from google.api_core import exceptions as google_errors
from google.cloud import pubsub_v1
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

START_TIMEOUT = 90.0
SKIP_PREFIX = "Pub/Sub emulator not run"
PROJECT = "portail-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def unavailable(*, with_iam: bool = False) -> str:
    """Why the emulator (with its IAM integration, its own launcher's) cannot run here, or ""."""
    if shutil.which("gcloud") is None:
        return f"{SKIP_PREFIX}: gcloud is not installed"
    if shutil.which("java") is None:
        return f"{SKIP_PREFIX}: Java (needed by the emulator) is not installed"
    if with_iam and launcher() is None:
        return f"{SKIP_PREFIX}: gcloud's pubsub-emulator component is not installed"
    return ""


def launcher() -> Path | None:
    """The emulator's own launcher, which `gcloud beta emulators pubsub start`
    runs with --host and --port only."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        return None
    roots = [Path(gcloud).resolve().parent.parent]
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        found = subprocess.run(
            ["gcloud", "info", "--format=value(installation.sdk_root)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        if found.stdout.strip():
            roots.append(Path(found.stdout.strip()))
    for root in roots:
        path = root / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
        if path.is_file():
            return path
    return None


class Policy:
    """A stand-in for Google's IAM as the emulator's IAM integration asks it
    (`IamInternal.TestPermissions`, a gRPC service on a free port): every
    permission is granted but those a test withholds on a resource. `asked`
    keeps the questions (policy name, permissions), for a test to check."""

    SERVICE = "com.google.cloud.iam.testing.v1.shared.internalapi.IamInternal"

    def __init__(self) -> None:
        self.withheld: set[tuple[str, str]] = set()
        self.asked: list[tuple[str, tuple[str, ...]]] = []
        self.server: grpc.Server | None = None
        self.port = 0
        request, response = self._messages()
        self._response = response
        handler = grpc.method_handlers_generic_handler(
            self.SERVICE,
            {
                "TestPermissions": grpc.unary_unary_rpc_method_handler(
                    self._test_permissions,
                    request_deserializer=request.FromString,
                    response_serializer=response.SerializeToString,
                )
            },
        )
        self._handler = handler

    @classmethod
    def _messages(cls) -> tuple[Any, Any]:
        """The request and response messages (the emulator's IamInternal protocol)."""
        package = cls.SERVICE.rsplit(".", 1)[0]
        proto = descriptor_pb2.FileDescriptorProto(name="iam_internal_stand_in.proto", package=package, syntax="proto3")
        string, message, optional, repeated = (
            descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
            descriptor_pb2.FieldDescriptorProto.TYPE_MESSAGE,
            descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL,
            descriptor_pb2.FieldDescriptorProto.LABEL_REPEATED,
        )
        credentials = proto.message_type.add(name="IamCredentials")
        credentials.field.add(name="token", number=1, type=string, label=optional)
        request = proto.message_type.add(name="TestPermissionsRequest")
        request.field.add(
            name="credentials", number=1, type=message, label=optional, type_name=f".{package}.IamCredentials"
        )
        request.field.add(name="policy_name", number=2, type=string, label=optional)
        request.field.add(name="permissions", number=3, type=string, label=repeated)
        response = proto.message_type.add(name="TestPermissionsResponse")
        response.field.add(name="permissions", number=1, type=string, label=repeated)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        return (
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.TestPermissionsRequest")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{package}.TestPermissionsResponse")),
        )

    def _test_permissions(self, request: Any, context: Any) -> Any:
        # The emulator names a topic's policy "pubsub/projects/p/topics/t".
        resource = request.policy_name.split("/", 1)[-1]
        self.asked.append((request.policy_name, tuple(request.permissions)))
        granted = [name for name in request.permissions if (resource, name) not in self.withheld]
        return self._response(permissions=granted)

    def withhold(self, resource: str, permission: str) -> None:
        self.withheld.add((resource, permission))

    def grant(self, resource: str, permission: str) -> None:
        self.withheld.discard((resource, permission))

    def start(self) -> None:
        from concurrent import futures

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((self._handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(grace=None)
            self.server = None


class Emulator:
    def __init__(self, *, policy: Policy | None = None) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.data_dir = Path(tempfile.mkdtemp(prefix="pubsub-emulator-"))
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir / "emulator.log"
        self.policy = policy

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own copy
            self.process = self._spawn(log)
        self._wait_started()

    def _spawn(self, log: Any) -> subprocess.Popen:
        if self.policy is None:
            command = [
                "gcloud",
                "beta",
                "emulators",
                "pubsub",
                "start",
                f"--host-port={self.host}",
                f"--data-dir={self.data_dir}",
                "--quiet",
            ]
        else:
            # What gcloud runs, with the IAM integration on (gcloud has no flag for it).
            if self.policy.server is None:
                self.policy.start()
            path = launcher()
            if path is None:
                raise RuntimeError("gcloud's pubsub-emulator component is not installed")
            command = [
                str(path),
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--enable_iam_integration=true",
                "--iam_host=127.0.0.1",
                f"--iam_port={self.policy.port}",
            ]
        return subprocess.Popen(
            command,
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
        if self.policy is not None:
            self.policy.stop()
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


def start_or_skip(*, policy: Policy | None = None) -> Emulator:
    """An emulator started (with its IAM integration asking `policy`, if
    given), or the test skipped with the reason it cannot run here."""
    import pytest

    reason = unavailable(with_iam=policy is not None)
    if reason:
        pytest.skip(reason)
    bus = Emulator(policy=policy)
    try:
        bus.start()
    except RuntimeError as error:
        bus.close()
        pytest.skip(f"{SKIP_PREFIX}: {error}")
    return bus


class Bus:
    """The names of one test's topics and subscriptions, and the manager's side."""

    def __init__(self, emulator: Emulator) -> None:
        tag = uuid.uuid4().hex[:8]
        self.emulator = emulator
        self.out_topic, self.manager_subscription = f"portail-sortant-{tag}", f"gestionnaire-{tag}"
        self.in_topic, self.portal_subscription = f"portail-entrant-{tag}", f"portail-{tag}"
        self.publisher, self.subscriber = emulator.clients()

    def create(self) -> None:
        self.emulator.create(PROJECT, self.out_topic, self.manager_subscription)
        self.emulator.create(PROJECT, self.in_topic, self.portal_subscription)

    def read(self, *, quiet_for: float = 1.0) -> list[Any]:
        """Everything on the manager's subscription, acknowledged, in the order received."""
        received: list[Any] = []
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < quiet_for:
            some = self.read_some()
            if some:
                received += some
                quiet_since = time.monotonic()
        return received

    def read_some(self) -> list[Any]:
        """What one pull of the manager's subscription gets (acknowledged), in the order received."""
        path = f"projects/{PROJECT}/subscriptions/{self.manager_subscription}"
        response = self.subscriber.pull(subscription=path, max_messages=100, timeout=5)
        if response.received_messages:
            self.subscriber.acknowledge(subscription=path, ack_ids=[item.ack_id for item in response.received_messages])
        return [item.message for item in response.received_messages]

    def publish_in(self, data: bytes, **attributes: str) -> str:
        """Publish as the manager, to the portal's subscription."""
        topic = f"projects/{PROJECT}/topics/{self.in_topic}"
        key = attributes.get("reference", "")
        return self.publisher.publish(topic, data, ordering_key=key, **attributes).result(timeout=10)
