"""The Kubernetes manifests, run as the kubelet would run them, without a cluster.

The `dev` overlay is rendered with `kubectl kustomize`; every SupportDesk
Deployment's container is started as a local process with exactly the
command and environment its manifest gives it (its ConfigMap, Secret and env
entries resolved as Kubernetes resolves them). Only addresses are mapped:

- the in-cluster Kafka and Redis Services point at a local broker and Redis;
- container ports are mapped to free local ports through the `*_PORT`
  variable that sets them (a container port no variable sets is an error:
  the process would listen somewhere the probes do not look);
- every probe is sent to 127.0.0.2, standing in for the pod's own IP: a
  process that binds only 127.0.0.1 is unreachable there, as on a real pod;
- there is no Qdrant server on this machine, so each agent or ingest process
  gets a local-mode folder of its own instead of QDRANT_URL (the agent then
  knows nothing and says so: still a full chat turn).

Then the probes are polled as the kubelet does (start-up, then readiness and
liveness, within each probe's own period × failure threshold), a chat turn
runs through the gateway, and every Deployment is rolled (a new pod started
and ready, then the old one sent SIGTERM) while users chat: every message is
answered exactly once, nothing is replayed, the draining pod reports 503 and
exits 0.
"""

import asyncio
import contextlib
import itertools
import json
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from devstack import free_port, minimal_env, start_tansu, stop_process
from manifests import container_env, render

pytestmark = pytest.mark.e2e

OVERLAY = "deploy/k8s/overlays/dev"
POD_IP = "127.0.0.2"
IN_CLUSTER = re.compile(r"(?<![\w.-])(kafka|redis|qdrant)((?:\.[\w-]+)*):(\d+)")
Manifest = dict[str, Any]


def probe_url(probe: Manifest, ports: dict[str | int, int]) -> str:
    get = probe["httpGet"]
    return f"http://{POD_IP}:{ports[get['port']]}{get['path']}"


@dataclass
class Pod:
    """One container of a Deployment, running as a local process."""

    deployment: str
    name: str
    popen: subprocess.Popen[bytes]
    ports: dict[str | int, int]
    container: Manifest
    log: Path

    def probe(self, kind: str) -> Manifest:
        probe: Manifest = self.container[f"{kind}Probe"]
        return probe

    def url(self, kind: str) -> str:
        return probe_url(self.probe(kind), self.ports)

    def base_url(self, port: str) -> str:
        return f"http://{POD_IP}:{self.ports[port]}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Cluster:
    """The rendered overlay, and the pods started from it."""

    objects: list[Manifest]
    addresses: dict[str, str]  # in-cluster Service name -> local host:port
    data: Path
    pods: dict[str, list[Pod]] = field(default_factory=dict)
    names: Iterator[int] = field(default_factory=itertools.count)

    def of_kind(self, kind: str) -> dict[str, Manifest]:
        return {o["metadata"]["name"]: o for o in self.objects if o["kind"] == kind}

    def deployments(self) -> dict[str, Manifest]:
        """SupportDesk's own Deployments, by service (the module they run)."""
        found = {}
        for deployment in self.of_kind("Deployment").values():
            command = " ".join(deployment["spec"]["template"]["spec"]["containers"][0].get("command", []))
            match = re.search(r"-m supportdesk_(\w+)", command)
            if match:
                found[match.group(1)] = deployment
        return found

    def missing_secrets(self, deployment: Manifest) -> list[str]:
        """Required secretKeyRefs the rendered Secrets do not provide: the pod
        would not start (CreateContainerConfigError)."""
        secrets = {(o["metadata"]["name"], k) for o in self.of_kind("Secret").values() for k in o.get("data", {})}
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        refs = [
            v["valueFrom"]["secretKeyRef"] for v in container.get("env", []) if "secretKeyRef" in v.get("valueFrom", {})
        ]
        return [
            f"{r['name']}/{r['key']}" for r in refs if not r.get("optional") and (r["name"], r["key"]) not in secrets
        ]

    def local_environment(self, service: str, deployment: Manifest, ports: dict[str | int, int]) -> dict[str, str]:
        assert not self.missing_secrets(deployment), f"{service}: missing secrets {self.missing_secrets(deployment)}"
        env = container_env(self.objects, deployment)
        for number, local in ports.items():
            if isinstance(number, int):
                port_vars = [k for k, v in env.items() if k.endswith("_PORT") and v == str(number)]
                assert port_vars, f"{service}: no *_PORT variable sets container port {number}"
                env.update(dict.fromkeys(port_vars, str(local)))
        for name, value in env.items():
            env[name] = IN_CLUSTER.sub(lambda m: self.addresses.get(m.group(1), m.group(0)), value)
        if "QDRANT_URL" in env:
            del env["QDRANT_URL"]
            env["QDRANT_PATH"] = str(self.data / f"qdrant-{next(self.names)}")
        if service == "agent":
            # Its Qdrant folder here is its own (local mode), so its index is
            # empty: it would hand every question to a human and then, rightly,
            # stay silent while the chatters wait for the bot.
            env["ESCALATION_ON_NO_ANSWER"] = "false"
        return env

    def start(self, service: str) -> Pod:
        deployment = self.deployments()[service]
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        ports: dict[str | int, int] = {}
        for port in container.get("ports", []):
            local = free_port()
            ports[port["containerPort"]] = local
            if "name" in port:
                ports[port["name"]] = local
        env = minimal_env() | self.local_environment(service, deployment, ports)
        command = [sys.executable if part == "python" else part for part in container["command"]]
        name = f"{service}-{next(self.names)}"
        log = self.data / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(command + container.get("args", []), env=env, stdout=out, stderr=subprocess.STDOUT)
        pod = Pod(service, name, popen, ports, container, log)
        self.pods.setdefault(service, []).append(pod)
        return pod

    def stop_all(self) -> None:
        for pod in itertools.chain.from_iterable(self.pods.values()):
            stop_process(pod.popen, timeout=10)


def http_status(url: str, timeout: float) -> int | None:
    try:
        return httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        return None


def wait_probe(pod: Pod, kind: str) -> None:
    """Polls a probe as the kubelet does: success is 200-399; failure after
    initialDelay + period × failureThreshold."""
    probe = pod.probe(kind)
    budget = probe.get("initialDelaySeconds", 0) + probe.get("periodSeconds", 10) * probe.get("failureThreshold", 3)
    deadline = time.monotonic() + budget
    url = pod.url(kind)
    while time.monotonic() < deadline:
        assert pod.popen.poll() is None, f"{pod.name} exited ({pod.popen.returncode}):\n{pod.tail()}"
        status = http_status(url, probe.get("timeoutSeconds", 1))
        if status is not None and 200 <= status < 400:
            return
        time.sleep(min(1.0, probe.get("periodSeconds", 10)))
    raise AssertionError(f"{pod.name}: {kind} probe {url} not passing after {budget} s:\n{pod.tail()}")


def wait_started(pod: Pod) -> None:
    wait_probe(pod, "startup")
    wait_probe(pod, "readiness")
    wait_probe(pod, "liveness")


@pytest.fixture(scope="module")
def cluster(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    objects = render(OVERLAY)
    data = tmp_path_factory.mktemp("k8s-dev")
    kafka = f"127.0.0.1:{free_port()}"
    broker = start_tansu(kafka)  # its own: the overlay's topic prefix and groups are the real ones
    redis = redis_url.removeprefix("redis://").split("/")[0]
    cluster = Cluster(objects, {"kafka": kafka, "redis": redis}, data)
    try:
        yield cluster
    finally:
        cluster.stop_all()
        stop_process(broker)


def test_every_deployment_starts_and_turns_ready_as_its_probes_see_it(cluster: Cluster) -> None:
    deployments = cluster.deployments()
    assert set(deployments) == {"gateway", "session", "agent", "ingest"}
    for service, deployment in deployments.items():
        for _ in range(max(1, min(2, deployment["spec"].get("replicas", 1)))):
            cluster.start(service)
    if len(cluster.pods["gateway"]) < 2:  # two gateways, so users have somewhere to go during a roll
        cluster.start("gateway")
    for pod in itertools.chain.from_iterable(cluster.pods.values()):
        wait_started(pod)


def ws_url(pod: Pod, session: dict[str, Any]) -> str:
    return pod.base_url("http").replace("http://", "ws://") + (
        f"/ws?session_id={session['session_id']}&token={session['token']}"
    )


async def new_session(pod: Pod) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=pod.base_url("http")) as client:
        response = await client.post("/api/v1/sessions", json={})
        assert response.status_code == 201, response.text
        session: dict[str, Any] = response.json()
        return session


async def test_a_chat_turn_runs_through_the_deployed_gateway(cluster: Cluster) -> None:
    gateway = cluster.pods["gateway"][0]
    session = await new_session(gateway)
    async with websockets.connect(ws_url(gateway, session)) as ws:
        await ws.send(json.dumps({"type": "message", "content": "How long does shipping take?", "message_id": "k1"}))
        async with asyncio.timeout(60):
            while (frame := json.loads(await ws.recv()))["type"] != "reply":
                pass
    assert frame["reply_to"] == "k1"
    assert frame["content"]
    async with httpx.AsyncClient(base_url=gateway.base_url("http")) as public:
        # The public port serves no internals; the ops port (not routed by the Ingress) does.
        assert (await public.get("/metrics")).status_code == 404
    async with httpx.AsyncClient(base_url=gateway.base_url("ops")) as ops:
        assert (await ops.get("/metrics")).status_code == 200


PACE_SECONDS = 2.5


class Throttled(Exception):
    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after} s")
        self.retry_after = retry_after


@dataclass
class Chatter:
    """A user chatting back to back, moving to another gateway (and resuming)
    whenever its socket is closed under it."""

    name: str
    session: dict[str, Any]
    replies: Counter[str] = field(default_factory=Counter)
    seen: set[int] = field(default_factory=set)
    replayed: list[dict[str, Any]] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    reconnects: int = 0
    throttled: int = 0

    def take(self, frame: dict[str, Any]) -> None:
        seq = frame.get("seq")
        if isinstance(seq, int) and not frame.get("duplicate"):
            if seq in self.seen:
                self.replayed.append(frame)
            self.seen.add(seq)
        if frame["type"] == "reply":
            self.replies[frame["reply_to"]] += 1

    async def run(self, gateways: list[Pod], stop: asyncio.Event) -> None:
        pending: str | None = None
        while True:
            try:
                async with websockets.connect(ws_url(random.choice(gateways), self.session)) as ws:
                    await ws.send(json.dumps({"type": "resume", "after_seq": max(self.seen, default=0)}))
                    while True:
                        if pending is None:
                            if stop.is_set():
                                return
                            pending = f"{self.name}-{len(self.sent)}"
                            self.sent.append(pending)
                        # After a reconnect the same id again: answered once, whatever got through.
                        await ws.send(
                            json.dumps({"type": "message", "content": "Do you ship abroad?", "message_id": pending})
                        )
                        async with asyncio.timeout(60):
                            while not self.replies[pending]:
                                frame = json.loads(await ws.recv())
                                if frame["type"] == "error" and frame.get("code") == "rate_limited":
                                    raise Throttled(frame["retry_after"])
                                self.take(frame)
                        pending = None
                        # A person's pace, under the ConfigMap's per-session message limit.
                        await asyncio.sleep(PACE_SECONDS)
            except Throttled as throttled:
                self.throttled += 1
                await asyncio.sleep(throttled.retry_after)
            except (websockets.ConnectionClosed, OSError):
                self.reconnects += 1
                await asyncio.sleep(0.2)


async def observe_drain(pod: Pod) -> tuple[list[int], int]:
    """SIGTERMs the pod while polling its readiness probe; returns what the
    probe said after the signal, and the exit code."""
    statuses: list[int] = []
    signalled = asyncio.Event()

    async def poll() -> None:
        async with httpx.AsyncClient(timeout=1) as client:  # one kept-alive connection: a poll per ms or two
            while pod.popen.poll() is None:
                with contextlib.suppress(httpx.TransportError):
                    status = (await client.get(pod.url("readiness"))).status_code
                    if signalled.is_set():
                        statuses.append(status)
                await asyncio.sleep(0.002)

    polling = asyncio.create_task(poll())
    await asyncio.sleep(0.1)
    pod.popen.send_signal(signal.SIGTERM)
    signalled.set()
    code = await asyncio.to_thread(pod.popen.wait, 60)
    await polling
    return statuses, code


async def test_a_rolling_restart_of_every_deployment_loses_and_doubles_nothing(cluster: Cluster) -> None:
    gateways = list(cluster.pods["gateway"])
    chatters = [Chatter(f"u{i}", await new_session(gateways[i % len(gateways)])) for i in range(6)]
    stop = asyncio.Event()
    chatting = [asyncio.create_task(c.run(gateways, stop)) for c in chatters]
    try:
        for service in ("session", "agent", "ingest", "gateway"):
            for old in list(cluster.pods[service]):
                new = cluster.start(service)
                await asyncio.to_thread(wait_started, new)
                if service == "gateway":  # the endpoint leaves the Service before SIGTERM (preStop)
                    gateways.remove(old)
                    gateways.append(new)
                answered = sum(sum(c.replies.values()) for c in chatters)
                statuses, code = await observe_drain(old)
                cluster.pods[service].remove(old)
                assert code == 0, f"{old.name} exited {code}:\n{old.tail()}"
                assert 503 in statuses, f"{old.name}: readiness while draining was {statuses}"
                # Users are answered by the new pod before the next one rolls.
                async with asyncio.timeout(60):
                    while sum(sum(c.replies.values()) for c in chatters) < answered + len(chatters):
                        await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*chatting), 90)
    for chatter in chatters:
        assert chatter.sent, chatter.name
        assert {m: chatter.replies[m] for m in chatter.sent} == dict.fromkeys(chatter.sent, 1), chatter.name
        assert not chatter.replayed, f"{chatter.name}: frames sent again after a resume: {chatter.replayed[:3]}"
    assert sum(c.reconnects for c in chatters) >= 1, "the gateway roll must have moved some users"
