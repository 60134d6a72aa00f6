"""docker/jupyterhub/ for real: a JupyterHub running jupyterhub_config.py as it is
(DockerSpawner) plus the test hub's ports, proxy and admin token, with the single-user image
built by build-singleuser.sh from Dockerfile.singleuser, on the host's Docker engine.

Alice logs in through the proxy (dummy authenticator) and spawns her server, a container
from that image; her JupyterLab carries the labextension; with her browser cookies she
launches a docker-provider session (the agent is a sibling container, started by her server
through the mounted Docker socket), runs a turn with a tool, and reads the file it wrote
through the files API; stopping her server from the hub removes her agent's container and
keeps her workspace.

Here the image is built FROM agcluster-base:bookworm (no registry; scripts/
build-base-image.sh) with the build's network on the host; Docker's layer cache keeps the
dependencies between runs, so a warm build only rebuilds the wheel's layer.  The scripted
model listens on this host's address on the hub's Docker network, where the single-user
containers reach it.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from agcluster_jupyter.testing.pytest_plugin import SCRIPTED_MODEL_KEY
from agcluster_jupyter.testing.server import ScriptedModelServer

from ..e2e.docker_support import (
    STATE_ROOTS,
    containers_of,
    docker_unusable,
    dumps,
    inspect,
    parse_sse,
    session_containers,
)
from ..support import TEST_KEY, bash_scenario
from .hub_support import REPO, Hub

pytestmark = [pytest.mark.docker, pytest.mark.cli]

EXAMPLES = REPO / "docker" / "jupyterhub"
BASE_IMAGE = "agcluster-base:bookworm"
SINGLEUSER_IMAGE = "agcluster-singleuser:test"
DOCKER_SOCKET = "/var/run/docker.sock"

SPAWNER_CONFIG = """\
# after docker/jupyterhub/jupyterhub_config.py: tests/hub/test_dockerspawner.py
c.JupyterHub.hub_ip = {gateway!r}
c.DockerSpawner.prefix = {prefix!r}
# a loaded 2-core machine may take a minute to start a server
c.DockerSpawner.http_timeout = 120
# the users' home volumes, named for this run (removed after it)
volumes = dict(c.DockerSpawner.volumes)
volumes[{prefix!r} + "-home-{{username}}"] = volumes.pop("jupyterhub-user-{{username}}")
c.DockerSpawner.volumes = volumes
example_pre_spawn = c.DockerSpawner.pre_spawn_hook


def pre_spawn(spawner):
    example_pre_spawn(spawner)
    spawner.args = [
        *spawner.args,
        "--AgClusterApp.anthropic_base_url={model_url}",
        "--AgClusterApp.runner_start_timeout=90",
    ]


c.DockerSpawner.pre_spawn_hook = pre_spawn
"""


@pytest.fixture(scope="session")
def singleuser_image(docker_client: Any) -> str:
    """The single-user image, built by build-singleuser.sh (cached layers: seconds)."""
    try:
        docker_client.images.get(BASE_IMAGE)
    except Exception:  # noqa: BLE001 - missing or unreadable: either way unusable
        docker_unusable(f"the base image {BASE_IMAGE} is missing; scripts/build-base-image.sh")
    log = Path(tempfile.gettempdir()) / "agcluster-singleuser-build.log"
    with log.open("wb") as out:
        built = subprocess.run(
            [
                str(EXAMPLES / "build-singleuser.sh"),
                *("--python", sys.executable, "--base-image", BASE_IMAGE),
                *("--network", "host", "--tag", SINGLEUSER_IMAGE),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
        )
    if built.returncode:
        pytest.fail(f"build-singleuser.sh failed ({log}):\n{log.read_text()[-3000:]}")
    return SINGLEUSER_IMAGE


@pytest.fixture
def hub_network(docker_client: Any) -> Iterator[tuple[str, str]]:
    """A Docker network of the hub's containers, and this host's address on it."""
    network = docker_client.networks.create(f"agc-hub-{secrets.token_hex(4)}", driver="bridge")
    try:
        network.reload()
        yield network.name, network.attrs["IPAM"]["Config"][0]["Gateway"]
    finally:
        network.remove()


@pytest.fixture
def model(hub_network: tuple[str, str]) -> Iterator[ScriptedModelServer]:
    """The scripted model on the host's address on the hub's network: reachable from the
    users' containers, not from elsewhere."""
    with ScriptedModelServer(api_key=SCRIPTED_MODEL_KEY, host=hub_network[1]) as server:
        yield server


@pytest.fixture
def docker_hub(
    chp: Path,
    docker_client: Any,
    singleuser_image: str,
    hub_network: tuple[str, str],
    model: ScriptedModelServer,
) -> Iterator[Hub]:
    if importlib.util.find_spec("dockerspawner") is None:
        pytest.fail("the hub needs dockerspawner: pip install -e '.[test]'")
    base = Path(tempfile.mkdtemp(prefix="agc-dh-", dir="/tmp"))  # short: socket paths
    base.chmod(0o755)
    STATE_ROOTS.add(str(base))
    network, gateway = hub_network
    prefix = f"agc-test-{secrets.token_hex(3)}"
    hub = Hub(
        base,
        chp,
        SPAWNER_CONFIG.format(gateway=gateway, prefix=prefix, model_url=model.url),
        head=f"load_subconfig({str(EXAMPLES / 'jupyterhub_config.py')!r})\n",
        env={
            "AGCLUSTER_SINGLEUSER_IMAGE": singleuser_image,
            "AGCLUSTER_HUB_NETWORK": network,
            "AGCLUSTER_USERS_ROOT": str(base / "users"),
            "ANTHROPIC_API_KEY": TEST_KEY,
        },
    )
    try:
        hub.wait_up()
        yield hub
    finally:
        hub.stop()  # cleanup_servers: the hub stops the users' servers
        leaked = [
            *docker_client.containers.list(all=True, filters={"network": network}),
            *session_containers(docker_client, base),
        ]
        for container in leaked:
            container.remove(force=True)
        for volume in docker_client.volumes.list(filters={"name": prefix}):
            volume.remove(force=True)
        log = hub.tail()
        shutil.rmtree(base, ignore_errors=True)
        assert not leaked, f"containers outlived the hub: {[c.name for c in leaked]}\n{log}"


class Browser:
    """Alice's browser: cookies from logging in to the hub, then from her server's OAuth."""

    def __init__(self, hub: Hub, name: str) -> None:
        self.name = name
        self.client = httpx.Client(base_url=hub.url, timeout=120)
        self.prefix = f"/user/{name}/"

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def xsrf(self, path: str) -> str:
        value = self.client.cookies.get("_xsrf", path=path)
        assert value, (path, self.client.cookies)
        return value

    def log_in(self) -> None:
        assert self.client.get("/hub/login").status_code == 200
        reply = self.client.post(
            "/hub/login",
            data={"username": self.name, "password": "any", "_xsrf": self.xsrf("/hub/")},
        )
        assert reply.status_code == 302, (reply.status_code, reply.text[:500])

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"X-XSRFToken": self.xsrf(self.prefix), **kw.pop("headers", {})}
        return self.client.request(
            method, f"{self.prefix}api/agcluster/{path}", headers=headers, **kw
        )


# a cold build of the single-user image (no cached layers) takes 3 to 5 minutes here
@pytest.mark.timeout(900)
def test_alice_on_a_dockerspawner_hub(
    docker_hub: Hub,
    model: ScriptedModelServer,
    docker_client: Any,
    singleuser_image: str,
    hub_network: tuple[str, str],
) -> None:
    hub = docker_hub
    model.add_scenarios(
        [bash_scenario("alice's job", "echo hello from alice > alice.txt; id -u; id -g")]
    )
    with Browser(hub, "alice") as alice:
        alice.log_in()
        # the hub's spawn page starts her server (DockerSpawner: a container)
        spawn = alice.client.get("/hub/spawn")
        assert spawn.status_code == 302, (spawn.status_code, spawn.text[:500])
        hub.wait_server("alice", ready=True, timeout=150)
        (server,) = docker_client.containers.list(filters={"network": hub_network[0]})
        attrs = inspect(docker_client, server.id)
        assert attrs["Config"]["Image"] == singleuser_image
        assert attrs["HostConfig"]["GroupAdd"] == [str(os.stat(DOCKER_SOCKET).st_gid)]

        # JupyterLab, after the OAuth dance with her server, carries the panel's labextension
        lab = alice.client.get("/user/alice/lab", follow_redirects=True)
        assert lab.status_code == 200 and lab.url.path == "/user/alice/lab", lab.url
        assert '"agcluster-jupyter"' in lab.text
        # her notebooks: the home volume, writable by her server's user
        saved = alice.client.put(
            "/user/alice/api/contents/notes.txt",
            json={"type": "file", "format": "text", "content": "alice's notes"},
            headers={"X-XSRFToken": alice.xsrf(alice.prefix)},
        )
        assert saved.status_code == 201, saved.text

        health = alice.api("GET", "health")
        assert health.status_code == 200, health.text
        assert health.json()["provider"] == "docker" and health.json()["provider_ok"], health.json()

        launched = alice.api("POST", "agents/launch", json={"config_id": "code-assistant"})
        assert launched.status_code == 201, launched.text
        session = launched.json()
        sid = session["session_id"]
        (agent,) = containers_of(docker_client, sid)
        agent_attrs = inspect(docker_client, agent.id)
        assert agent.status == "running" and agent.id == session["agent_id"]
        assert TEST_KEY not in dumps(agent_attrs)

        chat = alice.api(
            "POST",
            f"agents/{sid}/chat",
            json={"message": "alice's job"},
            headers={"Accept": "text/event-stream"},
        )
        assert chat.status_code == 200, chat.text
        events = parse_sse(chat.text)
        assert events[-1]["type"] == "done", events[-3:]
        (result,) = [e for e in events if e["type"] == "tool_result"]
        assert not result["is_error"] and result["output"].split() == ["1000", "100"], result
        assert model.message_requests, "the model was never called"

        # the workspace: the same path in her server and on the host (bind-mounted by path)
        details = alice.api("GET", f"agents/sessions/{sid}").json()
        workspace = Path(details["workspace"])
        assert workspace.is_relative_to(hub.base / "users" / "alice"), workspace
        mounts = {m["Destination"]: m["Source"] for m in agent_attrs["Mounts"]}
        assert mounts["/workspace"] == str(workspace)
        written = workspace / "alice.txt"
        assert written.read_text() == "hello from alice\n"
        assert (written.stat().st_uid, written.stat().st_gid) == (1000, 100)
        tree = alice.api("GET", f"files/{sid}")
        assert tree.status_code == 200, tree.text
        assert "alice.txt" in {node["name"] for node in tree.json()["tree"]}
        preview = alice.api("GET", f"files/{sid}/alice.txt")
        assert preview.status_code == 200, preview.text
        assert preview.json()["content"] == "hello from alice\n"

        # stopping her server from the hub stops her agents; the workspace stays
        stopped = hub.api("DELETE", "users/alice/server")
        assert stopped.status_code in (202, 204), stopped.text
        hub.wait_server("alice", ready=False, timeout=60)
        assert containers_of(docker_client, sid) == []
        assert docker_client.containers.list(all=True, filters={"id": server.id}) == []
        assert written.read_text() == "hello from alice\n"
