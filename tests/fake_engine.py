"""A stand-in for the Pulumi engine, enough to drive the real plugin process over gRPC.

It serves the two services a component provider calls back during Construct: the resource
monitor (registrations and invokes, answered by the same mocks as the in-process tests) and
the engine (logs). Nothing is deployed; what the plugin registered is kept for assertions.
"""

from __future__ import annotations

import subprocess
import sys
from concurrent import futures
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2
from pulumi.runtime.proto import (
    engine_pb2,
    engine_pb2_grpc,
    provider_pb2_grpc,
    resource_pb2,
    resource_pb2_grpc,
)

from natctl.offline import AwsMocks, RecordingMonitor

ROOT = Path(__file__).resolve().parent.parent


class FakeMonitor(resource_pb2_grpc.ResourceMonitorServicer):  # type: ignore[misc]
    def __init__(self, recording: RecordingMonitor) -> None:
        self.recording = recording

    def GetDeploymentInfo(self, request: Any, context: Any) -> Any:  # noqa: N802
        # what a current engine offers a component provider, output values included
        return resource_pb2.DeploymentInfo(supportedFeatures=[
            resource_pb2.RESOURCE_MONITOR_FEATURE_SECRETS,
            resource_pb2.RESOURCE_MONITOR_FEATURE_RESOURCE_REFERENCES,
            resource_pb2.RESOURCE_MONITOR_FEATURE_OUTPUT_VALUES,
            resource_pb2.RESOURCE_MONITOR_FEATURE_ALIAS_SPECS,
            resource_pb2.RESOURCE_MONITOR_FEATURE_DELETED_WITH,
        ])

    def SupportsFeature(self, request: Any, context: Any) -> Any:  # noqa: N802
        return resource_pb2.SupportsFeatureResponse(hasSupport=request.id in (
            "secrets", "resourceReferences", "outputValues", "aliasSpecs", "deletedWith"))

    def RegisterResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self.recording.RegisterResource(request)

    def RegisterResourceOutputs(self, request: Any, context: Any) -> Any:  # noqa: N802
        return empty_pb2.Empty()

    def Invoke(self, request: Any, context: Any) -> Any:  # noqa: N802
        return self.recording.Invoke(request)  # type: ignore[no-untyped-call]

    def RegisterPackage(self, request: Any, context: Any) -> Any:  # noqa: N802
        return resource_pb2.RegisterPackageResponse(ref="fake-package")


class FakeEngine(engine_pb2_grpc.EngineServicer):  # type: ignore[misc]
    def __init__(self) -> None:
        self.logs: list[str] = []

    def Log(self, request: Any, context: Any) -> Any:  # noqa: N802
        self.logs.append(request.message)
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.GetRootResourceResponse(urn="")

    def SetRootResource(self, request: Any, context: Any) -> Any:  # noqa: N802
        return engine_pb2.SetRootResourceResponse()


class EngineHarness:
    """The fake engine and monitor listening on loopback, and the plugin started as the
    Python language host starts it: `python <plugin directory> <engine address>`."""

    def __init__(self, project: str = "pkgtest", stack: str = "dev") -> None:
        self.mocks = AwsMocks("us-east-1")
        self.recording = RecordingMonitor(self.mocks, project, stack)
        self.engine = FakeEngine()
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        resource_pb2_grpc.add_ResourceMonitorServicer_to_server(FakeMonitor(self.recording),
                                                               self.server)
        engine_pb2_grpc.add_EngineServicer_to_server(self.engine, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.address = f"127.0.0.1:{port}"
        self.server.start()
        self.plugin = subprocess.Popen([sys.executable, str(ROOT / "provider"), self.address],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)
        assert self.plugin.stdout is not None
        line = self.plugin.stdout.readline().strip()
        if not line.isdigit():
            self.close()
            raise RuntimeError(f"the plugin did not print its port: {line!r} "
                               f"{self.plugin.stderr.read() if self.plugin.stderr else ''}")
        self.channel = grpc.insecure_channel(f"127.0.0.1:{line}")
        self.provider = provider_pb2_grpc.ResourceProviderStub(self.channel)
        self.project, self.stack = project, stack

    def close(self) -> None:
        if self.plugin.poll() is None:
            self.plugin.terminate()
            self.plugin.wait(timeout=10)
        self.server.stop(grace=None)

    def __enter__(self) -> EngineHarness:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
