"""The docker provider against the real engine: a real Jupyter server (auth on), real
runner containers from the agent image, the real claude CLI in them, the scripted model
behind the gateway."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ..support import TEST_KEY
from .docker_support import (
    IMAGE,
    chat_sse,
    containers_of,
    dumps,
    expect_error,
    inspect,
)

pytestmark = [pytest.mark.docker, pytest.mark.cli]


@pytest.fixture
def agcluster_config(docker_config: dict[str, Any]) -> dict[str, Any]:
    return docker_config


async def test_core_flow_in_a_container(
    api: Any, launched: Any, require_docker: Any, agent_dirs: dict[str, Path]
) -> None:
    health = await api("health")
    assert health["provider"] == "docker" and health["provider_ok"] is True, health
    assert health["isolated"] is True and "warning" not in health

    session = await launched("code-assistant")
    sid = session["session_id"]
    assert session["status"] == "ready" and session["isolated"] is True
    (container,) = containers_of(require_docker, sid)
    assert container.status == "running"
    assert container.id == session["agent_id"]

    events = await chat_sse(api, sid, "Please analyse some data")
    assert events[-1]["type"] == "done"
    tools = [e["name"] for e in events if e["type"] == "tool_use"]
    assert {"Write", "Bash", "Edit"} <= set(tools), tools
    results = {e["tool_use_id"]: e for e in events if e["type"] == "tool_result"}
    bash = [e["tool_use_id"] for e in events if e["type"] == "tool_use" and e["name"] == "Bash"]
    assert "mean: 21.5 C" in results[bash[0]]["output"]
    assert "median" in results[bash[-1]]["output"]
    writes = [e for e in events if e["type"] == "tool_use" and e["name"] == "Write"]
    # the agent sees its workspace at /workspace
    assert writes[0]["input"]["file_path"] == "/workspace/analysis.py"

    # the files are on the host, in the session's workspace, owned by the container's uid
    workspace = Path(session["workspace"])
    script = workspace / "analysis.py"
    assert "statistics.median" in script.read_text()
    # the runner is root in its container; the CLI and its tools are the Jupyter user
    config = inspect(require_docker, container.id)["Config"]
    assert config["User"] == "0:0"
    agent = config["Cmd"][config["Cmd"].index("--agent-user") + 1]
    uid, gid = (int(x) for x in agent.split(":"))
    expected = (os.geteuid(), os.getegid()) if os.geteuid() else (65534, 65534)
    assert (uid, gid) == expected
    assert (script.stat().st_uid, script.stat().st_gid) == (uid, gid)
    tree = await api(f"files/{sid}")
    assert tree["root"] == "/workspace"
    assert "analysis.py" in [n["name"] for n in tree["tree"]]

    details = await api(f"agents/sessions/{sid}")
    assert details["state"] == "idle" and details["provider"] == "docker"
    resources = details["resources"]
    assert resources["memory_bytes"] > 10 * 1024**2, resources
    assert resources["memory_limit_bytes"] == 4 * 1024**3  # code-assistant: 4g
    assert resources["pids"] >= 2 and "cpu_percent" in resources

    await api(f"agents/sessions/{sid}", method="DELETE")
    assert containers_of(require_docker, sid) == []
    assert script.is_file(), "the workspace outlives its container"


def bash_scenario(match: str, *commands: str) -> dict[str, Any]:
    """A scripted turn: one Bash call per step, then a short final text."""
    return {
        "match": match,
        "steps": [[{"tool_use": {"name": "Bash", "input": {"command": c}}}] for c in commands],
        "final": f"done: {match}",
    }


def bash_outputs(events: list[dict[str, Any]]) -> list[str]:
    ids = [e["tool_use_id"] for e in events if e["type"] == "tool_use" and e["name"] == "Bash"]
    results = {e["tool_use_id"]: e for e in events if e["type"] == "tool_result"}
    return [str(results[i]["output"]) for i in ids if i in results]


async def test_the_key_stays_out_of_the_container(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios(
        [
            bash_scenario(
                "show the environment",
                "env; echo ---; cat /proc/1/environ | tr '\\0' '\\n'; echo ---; "
                "cat /proc/[0-9]*/environ 2>/dev/null | tr '\\0' '\\n' | sort -u",
            )
        ]
    )
    session = await launched("code-assistant")
    sid = session["session_id"]
    (container,) = containers_of(require_docker, sid)
    attrs = inspect(require_docker, container.id)
    assert TEST_KEY not in dumps(attrs)
    env = dict(item.split("=", 1) for item in attrs["Config"]["Env"])
    assert not [k for k in env if "ANTHROPIC" in k or "KEY" in k], sorted(env)

    events = await chat_sse(api, sid, "show the environment please")
    (output,) = bash_outputs(events)
    assert "HOME=" in output and "---" in output, output  # the commands did run
    assert TEST_KEY not in output
    # the CLI holds only the session token (worthless outside the gateway socket)
    assert "ANTHROPIC_API_KEY=" in output
    assert TEST_KEY not in json.dumps(events)


async def test_no_host_files_no_network_no_other_sessions(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any, agent_dirs: dict[str, Path]
) -> None:
    secret = agent_dirs["base"] / "host-secret.txt"
    secret.write_text("HOST-SECRET-0d9f")
    secret.chmod(0o644)  # readable by anyone who can see it
    other, me = await launched("code-assistant"), await launched("code-assistant")
    other_ws = Path(other["workspace"])
    (other_ws / "other-marker.txt").write_text("OTHER-SESSION-77aa")
    other_ws.joinpath("other-marker.txt").chmod(0o644)
    # a listener on every host address: reachable from the host, not from the container
    listener = socket.create_server(("0.0.0.0", 0))
    port = listener.getsockname()[1]
    subnet = require_docker.networks.get("bridge").attrs["IPAM"]["Config"][0]["Subnet"]
    bridge = str(next(ipaddress.ip_network(subnet).hosts()))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing address
        host_ip = udp.getsockname()[0]
    socket.create_connection((host_ip, port), timeout=3).close()
    targets = [("1.1.1.1", 53), (bridge, port), (host_ip, port)]
    probe = (
        "import socket\n"
        f"for host, port in {targets!r}:\n"
        "    try:\n"
        "        socket.create_connection((host, port), timeout=3).close()\n"
        "        print('CONNECTED', host, port)\n"
        "    except OSError as exc:\n"
        "        print('NO-NETWORK', host, port, exc)\n"
        "print('interfaces:', sorted(n for _, n in socket.if_nameindex()))\n"
    )
    scripted_model.add_scenarios(
        [
            bash_scenario(
                "probe the sandbox",
                f"cat {secret}; echo rc=$?; ls {other_ws}; echo rc=$?; "
                f"ls {agent_dirs['state']}; echo rc=$?",
                # every writable or mounted place; the image's own folders hold no sessions
                # (the pattern is not its own match: the transcript holds this command)
                "grep -rls 'OTHER-SESSION-77a[a]' /workspace /run /var /tmp /home /mnt /srv "
                "/opt | head -3; echo searched; awk '{print \"MOUNT\", $2, $3}' /proc/self/mounts",
                f'python3 -c "{probe}"',
            )
        ]
    )
    try:
        events = await chat_sse(api, me["session_id"], "probe the sandbox now")
    finally:
        listener.close()
    files, search, network = bash_outputs(events)
    assert "HOST-SECRET" not in files and files.count("rc=") == 3, files
    assert "rc=0" not in files, files  # none of the host paths exists in the container
    assert "other-marker" not in search and "searched" in search, search
    # of the host's file systems: the workspace, the socket and state folders, and the
    # engine's own resolv.conf, hostname, hosts and init binary; nothing else
    virtual = {"overlay", "proc", "tmpfs", "devpts", "sysfs", "cgroup", "cgroup2", "mqueue"}
    mounts = [line.split()[1:] for line in search.splitlines() if line.startswith("MOUNT ")]
    host_mounts = {target for target, fstype in mounts if fstype not in virtual}
    assert host_mounts <= {
        "/workspace",
        "/run/agcluster",
        "/var/lib/agcluster/state",
        "/etc/resolv.conf",
        "/etc/hostname",
        "/etc/hosts",
        "/usr/sbin/docker-init",
    }, mounts
    assert {"/workspace", "/run/agcluster", "/var/lib/agcluster/state"} <= host_mounts
    assert network.count("NO-NETWORK") == 3 and "CONNECTED" not in network, network
    assert "interfaces: ['lo']" in network, network


SMALL = {
    "id": "small",
    "allowed_tools": ["Bash", "Read", "Write"],
    "permission_mode": "acceptEdits",
    "system_prompt": "Run what you are asked to run.",
}


async def test_a_process_over_the_memory_limit_is_killed_and_reported(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios(
        [
            bash_scenario(
                "allocate too much",
                "python3 -c \"b = bytearray(600 * 1024 * 1024); print('allocated', len(b))\"",
            )
        ]
    )
    config = {**SMALL, "resource_limits": {"cpu": 1, "memory": "256m", "storage": "1g"}}
    session = await launched(config=config)
    sid = session["session_id"]
    (container,) = containers_of(require_docker, sid)
    host = inspect(require_docker, container.id)["HostConfig"]
    assert host["Memory"] == host["MemorySwap"] == 256 * 1024**2

    events = await chat_sse(api, sid, "allocate too much memory")
    assert events[-1]["type"] == "done"
    (output,) = bash_outputs(events)
    # the kernel killed the allocating tool (exit 137), not the claude CLI
    assert "Killed" in output and "allocated 629145600" not in output, output
    assert not [e for e in events if e["type"] == "error" and e["code"] == "cli_exited"]
    errors = [e for e in events if e["type"] == "error"]
    assert any(e["code"] == "out_of_memory" for e in errors), errors
    assert "256m" in next(e["message"] for e in errors if e["code"] == "out_of_memory")
    # the kernel killed the allocation, not the agent: the session goes on
    events = await chat_sse(api, sid, "hello after the kill")
    assert events[-1]["type"] == "done"
    errors = [e for e in events if e["type"] == "error"]
    assert not errors, json.dumps(errors)


async def test_the_pids_limit_holds(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any
) -> None:
    # The fork storm runs detached, after its turn has ended: while it holds the pid
    # cgroup, the CLI of a running turn could not start a thread either, and whether it
    # tries is timing; what is asserted is the engine's limit and that the session lives on.
    fork = (
        "import os, time\n"
        "time.sleep(1)\n"
        "kids, error = [], None\n"
        "for _ in range(2000):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as exc:\n"
        "        error = exc\n"
        "        break\n"
        "    if pid == 0:\n"
        "        time.sleep(60)\n"
        "        os._exit(0)\n"
        "    kids.append(pid)\n"
        "for pid in kids:\n"
        "    os.kill(pid, 9)\n"
        "for pid in kids:\n"
        "    os.waitpid(pid, 0)\n"
        "print('forked', len(kids), 'then', error, flush=True)\n"
    )
    script = f'setsid python3 -c "{fork}" > fork.txt 2>&1 < /dev/null & echo detached'
    scripted_model.add_scenarios([bash_scenario("fork a lot", script)])
    session = await launched(config=SMALL)
    sid = session["session_id"]
    (container,) = containers_of(require_docker, sid)
    assert inspect(require_docker, container.id)["HostConfig"]["PidsLimit"] == 512
    events = await chat_sse(api, sid, "fork a lot of processes")
    assert bash_outputs(events) == ["detached"], events
    report = Path(session["workspace"]) / "fork.txt"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while "forked" not in (report.read_text() if report.exists() else ""):
        assert loop.time() < deadline, "the fork storm never reported"
        await asyncio.sleep(0.2)
    output = report.read_text()
    forked = int(output.split("forked", 1)[1].split()[0])
    assert 100 < forked < 512, output
    assert "Resource temporarily unavailable" in output, output
    events = await chat_sse(api, sid, "hello after the forks")
    assert events[-1]["type"] == "done"
    assert not [e for e in events if e["type"] == "error"], events


async def test_the_storage_limit_stops_the_turn_and_refuses_uploads(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios(
        [bash_scenario("fill the disk", "head -c 100M /dev/zero > big.bin; sleep 60; echo slept")]
    )
    config = {**SMALL, "resource_limits": {"cpu": 1, "memory": "1g", "storage": "64m"}}
    session = await launched(config=config)
    sid = session["session_id"]
    started = asyncio.get_running_loop().time()
    events = await chat_sse(api, sid, "fill the disk please")
    assert asyncio.get_running_loop().time() - started < 30, "the turn was not stopped"
    assert events[-1]["type"] == "done"
    errors = [e for e in events if e["type"] == "error"]
    assert [e["code"] for e in errors].count("storage_limit") == 1, errors
    assert "64m" in next(e["message"] for e in errors if e["code"] == "storage_limit")
    assert not any("slept" in o for o in bash_outputs(events))

    body = (
        b"--xx\r\nContent-Disposition: form-data; name=files; filename=a.txt\r\n\r\n"
        b"hi\r\n--xx--\r\n"
    )
    reply = await expect_error(
        api(
            f"files/{sid}/upload",
            method="POST",
            body=body,
            headers={"Content-Type": "multipart/form-data; boundary=xx"},
        ),
        413,
    )
    assert "storage limit" in reply["message"]
    reply = await expect_error(
        api(f"agents/{sid}/chat", method="POST", body={"message": "hello"}), 413
    )
    assert "64m" in reply["message"]
    # room again: the session takes messages again
    (Path(session["workspace"]) / "big.bin").unlink()
    events = await chat_sse(api, sid, "hello again")
    assert events[-1]["type"] == "done"


async def test_a_container_dying_mid_turn_fails_the_session_and_the_next_chat_relaunches(
    api: Any, launched: Any, require_docker: Any, scripted_model: Any
) -> None:
    scripted_model.add_scenarios(
        [
            bash_scenario("work slowly", "echo kept > kept.txt; sleep 60"),
            bash_scenario("what do you remember", "ls"),
        ]
    )
    session = await launched(config=SMALL)
    sid = session["session_id"]
    (container,) = containers_of(require_docker, sid)
    # a whole first turn: the conversation (its SDK session id) is on record
    assert (await chat_sse(api, sid, "hello, remember the word PELICAN"))[-1]["type"] == "done"
    turn = asyncio.ensure_future(chat_sse(api, sid, "work slowly please"))
    workspace = Path(session["workspace"])
    for _ in range(300):
        if (workspace / "kept.txt").exists():
            break
        await asyncio.sleep(0.05)
    container.kill()
    events = await asyncio.wait_for(turn, 30)
    assert events[-1]["type"] == "done"
    (error,) = [e for e in events if e["type"] == "error"]
    assert error["code"] == "runner_lost"
    assert "SIGKILL" in error["message"] and "workspace is intact" in error["message"]
    details = await api(f"agents/sessions/{sid}")
    assert details["state"] == "failed"
    for _ in range(100):  # removed right after the failure is logged
        if not containers_of(require_docker, sid):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the dead container was not removed")
    assert (workspace / "kept.txt").read_text() == "kept\n"

    # the next message starts a new container that resumes the conversation
    scripted_model.reset()
    events = await chat_sse(api, sid, "what do you remember?")
    assert events[-1]["type"] == "done"
    assert any(e["type"] == "status" and e["state"] == "ready" for e in events)
    (fresh,) = containers_of(require_docker, sid)
    assert fresh.id != container.id
    request = next(r for r in scripted_model.message_requests if "remember?" in r.prompt)
    assert "PELICAN" in json.dumps(request.body["messages"]), "the conversation was lost"


@pytest.mark.parametrize(
    "agcluster_config", [{"provider": "docker", "agent_image": "agcluster-agent:no-such-version"}]
)
async def test_a_missing_image_is_a_503_with_the_build_command(
    api: Any, require_docker: Any
) -> None:
    health = await api("health")
    assert health["provider_ok"] is False
    assert "jupyter agcluster build-image" in health["provider_detail"]
    reply = await expect_error(
        api("agents/launch", method="POST", body={"config_id": "code-assistant"}), 503
    )
    assert "jupyter agcluster build-image" in reply["message"]
    assert "agcluster-agent:no-such-version" in reply["message"]


@pytest.mark.parametrize("agcluster_config", [{"provider": "docker"}])
async def test_docker_unreachable_is_a_503_naming_the_socket(
    api: Any, monkeypatch: pytest.MonkeyPatch, agent_dirs: dict[str, Path]
) -> None:
    socket_path = agent_dirs["base"] / "no-docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{socket_path}")
    health = await api("health")
    assert health["provider_ok"] is False and health["status"] == "degraded"
    assert str(socket_path) in health["provider_detail"]
    reply = await expect_error(
        api("agents/launch", method="POST", body={"config_id": "code-assistant"}), 503
    )
    assert str(socket_path) in reply["message"]
    assert "start dockerd or set DOCKER_HOST" in reply["message"]
    listing = await api("agents/sessions")
    assert [s["state"] for s in listing["sessions"]] == ["failed"]


@pytest.mark.parametrize("agcluster_config", [{"provider": "auto"}])
async def test_auto_is_docker_when_the_engine_answers(api: Any, require_docker: Any) -> None:
    health = await api("health")
    assert health["provider"] == "docker" and health["isolated"] is True


@pytest.fixture
def no_docker(monkeypatch: pytest.MonkeyPatch, agent_dirs: dict[str, Path]) -> str:
    host = f"unix://{agent_dirs['base'] / 'no-docker.sock'}"
    monkeypatch.setenv("DOCKER_HOST", host)
    return host


@pytest.mark.parametrize("agcluster_config", [{"provider": "auto"}])
async def test_auto_without_an_engine_is_local_and_says_so(no_docker: str, api: Any) -> None:
    health = await api("health")
    assert health["provider"] == "local" and health["isolated"] is False
    assert "no isolation" in health["warning"]


async def test_only_configs_that_need_the_web_get_a_network(
    launched: Any, require_docker: Any
) -> None:
    research, coder = await launched("research-agent"), await launched("code-assistant")
    modes = {
        s["config_id"]: inspect(require_docker, s["agent_id"])["HostConfig"]["NetworkMode"]
        for s in (research, coder)
    }
    assert modes == {"research-agent": "bridge", "code-assistant": "none"}


BROKEN_IMAGE = "agcluster-agent-test:broken"


@pytest.fixture
def broken_image(require_docker: Any) -> Iterator[str]:
    """The agent image (same version label) whose runner dies at once."""
    dockerfile = (
        f"FROM {IMAGE}\n"
        'ENTRYPOINT ["/bin/sh", "-c", "echo the runner broke on purpose >&2; exit 3", "--"]\n'
    )
    require_docker.images.build(
        fileobj=io.BytesIO(dockerfile.encode()), tag=BROKEN_IMAGE, rm=True, network_mode="none"
    )
    yield BROKEN_IMAGE
    require_docker.images.remove(BROKEN_IMAGE, force=True)


@pytest.mark.parametrize("agcluster_config", [{"provider": "docker", "agent_image": BROKEN_IMAGE}])
async def test_a_runner_that_dies_at_start_is_reported_with_its_exit_code_and_output(
    broken_image: str, api: Any, require_docker: Any
) -> None:
    reply = await expect_error(
        api("agents/launch", method="POST", body={"config_id": "code-assistant"}), 503
    )
    assert "exited with code 3" in reply["message"], reply
    assert "the runner broke on purpose" in reply["message"]
    (session,) = (await api("agents/sessions"))["sessions"]
    assert session["state"] == "failed"
    assert containers_of(require_docker, session["session_id"]) == []
