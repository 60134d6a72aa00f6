"""The same session flow on ``provider=kubernetes`` and ``provider=fly``: launch, a turn
whose tool runs in the remote runner, files through the runner (tree, preview, raw,
ZIP, upload, the path rules), stop (volume kept), resume on a new pod or machine, purge.
"""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx
import pytest

from ..support import TEST_KEY, bash_scenario, chat_sse, expect_error
from .conftest import Remote

pytestmark = pytest.mark.cli


def _multipart(name: str, data: bytes) -> tuple[bytes, str]:
    boundary = "remote-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


async def _upload(api: Any, sid: str, name: str, data: bytes, **params: str) -> Any:
    body, ctype = _multipart(name, data)
    return await api(
        f"files/{sid}/upload",
        method="POST",
        body=body,
        headers={"Content-Type": ctype},
        params=params,
    )


async def test_the_session_flow_runs_on_the_remote_provider(
    api: Any, launched: Any, scripted_model: Any, remote: Remote
) -> None:
    health = await api("health")
    assert health["provider"] == remote.name and health["provider_ok"], health
    assert health["isolated"] is True

    scripted_model.add_scenarios(
        [
            bash_scenario(
                "write the remote note",
                "mkdir -p out && echo 'hello from the runner' > out/note.txt "
                "&& ln -s /etc/passwd out/leak && id -un && pwd",
            )
        ]
    )
    reply = await launched("code-assistant")
    sid = reply["session_id"]
    assert reply["status"] == "ready"
    assert remote.runners() == [reply["agent_id"]]
    assert len(remote.volumes()) == 1

    events = await chat_sse(api, sid, "please write the remote note")
    assert events[-1]["type"] == "done"
    (result,) = [e for e in events if e["type"] == "tool_result"]
    assert not result["is_error"], result
    # the tool ran in the runner, as the agent user, in the volume's workspace
    lines = result["output"].strip().splitlines()
    assert lines[0] == remote.node.agent_user.pw_name
    assert lines[1].endswith("workspace"), lines  # the volume's workspace folder

    details = await api(f"agents/sessions/{sid}")
    assert details["provider"] == remote.name
    # where the agent sees its workspace in the pod or machine; not in the Jupyter tree
    mount = {"kubernetes": "/workspace", "fly": "/data/workspace"}[remote.name]
    assert details["workspace"] == mount and details["contents_path"] is None
    assert details["turns"] == 1 and details["usage"]["input_tokens"] > 0  # via the gateway
    if remote.name == "kubernetes":
        # from the cluster's metrics API (the fake measures the pod's processes)
        resources = details["resources"]
        assert resources["memory_bytes"] > 20 * 1024**2, resources  # runner + claude CLI
        assert resources["memory_limit_bytes"] == 4 * 1024**3  # code-assistant's limit
        assert resources["cpu_percent"] >= 0
    else:
        assert details["resources"] == {}  # the Machines API reports no usage

    # files, through the runner
    tree = await api(f"files/{sid}")
    names = {node["name"] for node in tree["tree"]}
    assert "out" in names, tree
    assert not any(name.startswith(".agcluster") for name in names), tree  # no CLI state
    out = next(node for node in tree["tree"] if node["name"] == "out")
    assert {c["name"] for c in out["children"]} >= {"note.txt", "leak"}
    preview = await api(f"files/{sid}/out/note.txt")
    assert preview["content"] == "hello from the runner\n" and preview["size_bytes"] == 22
    raw = await api(f"files/{sid}/out/note.txt", params={"raw": "1"}, raw=True)
    assert raw.body == b"hello from the runner\n"
    assert raw.headers["Content-Type"].startswith("text/plain")
    assert 'filename="note.txt"' in raw.headers["Content-Disposition"] or raw.headers.get(
        "Content-Disposition", ""
    ).startswith("inline")
    zipped = await api(f"files/{sid}/download", raw=True)
    with zipfile.ZipFile(io.BytesIO(zipped.body)) as archive:
        assert archive.read("out/note.txt") == b"hello from the runner\n"
        assert "out/leak" not in archive.namelist()  # a link out of the workspace: skipped

    # the same path rules as a local workspace
    await expect_error(api(f"files/{sid}/out/leak"), 400)
    await expect_error(api(f"files/{sid}/out/missing.txt"), 404)
    await expect_error(api(f"files/{sid}/out/note.txt/x"), 404)
    bad = await expect_error(_upload(api, sid, "x.txt", b"x", target_path="../up"), 400)
    assert bad.get("field") == "target_path"

    uploaded = await _upload(api, sid, "data.csv", b"a,b\n1,2\n", target_path="in")
    assert uploaded["uploaded"] == [{"filename": "data.csv", "path": "in/data.csv"}]
    conflict = await expect_error(_upload(api, sid, "data.csv", b"new", target_path="in"), 409)
    assert "already exists" in conflict["message"]
    await _upload(api, sid, "data.csv", b"a,b\n3,4\n", target_path="in", overwrite="true")
    assert (await api(f"files/{sid}/in/data.csv"))["content"] == "a,b\n3,4\n"

    # stop: the pod or machine goes, the volume stays, the files wait for a restart
    await api(f"agents/sessions/{sid}", method="DELETE")
    assert (await api(f"agents/sessions/{sid}"))["state"] == "stopped"
    assert remote.runners() == [] and remote.running_processes() == []
    assert len(remote.volumes()) == 1
    stopped = await expect_error(api(f"files/{sid}"), 409)
    assert "send the session a message" in stopped["message"]

    # a message starts a new runner on the same volume, and the conversation resumes
    scripted_model.reset()
    again = await chat_sse(api, sid, "hello again")
    assert again[-1]["type"] == "done"
    assert "write the remote note" in json.dumps(scripted_model.message_requests[-1].body)
    new_runner = (await api(f"agents/sessions/{sid}"))["agent_id"]
    assert remote.runners() == [new_runner]
    assert (await api(f"files/{sid}/out/note.txt"))["content"] == "hello from the runner\n"

    # purge: runner, volume and records gone
    await api(f"agents/sessions/{sid}", method="DELETE", params={"purge": "true"})
    await expect_error(api(f"agents/sessions/{sid}"), 404)
    assert remote.runners() == [] and remote.volumes() == []


async def test_the_runner_gets_a_session_token_never_the_key(
    api: Any, launched: Any, agcluster_app: Any, remote: Remote
) -> None:
    """The runner's environment holds a per-session token, never the API key, and the
    gateway's TCP listener refuses a request without a live session's token."""
    sid = (await launched("code-assistant"))["session_id"]
    (workload,) = remote.node.workloads.values()
    with open(f"/proc/{workload.process.pid}/environ", "rb") as fh:
        environ = fh.read()
    assert TEST_KEY.encode() not in environ
    assert b"AGCLUSTER_SESSION_TOKEN=" in environ
    # the control token's digest only: the token itself stays with the server
    assert b"AGCLUSTER_RUNNER_TOKEN_SHA256=" in environ
    token = agcluster_app.manager.sessions[sid].control_token
    assert token and token.encode() not in environ
    port = agcluster_app.gateway.tcp_port
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        refused = await client.post(
            "/v1/messages", headers={"x-api-key": "not-a-session-token"}, json={}
        )
    assert refused.status_code == 401, refused.text
    assert TEST_KEY not in refused.text
    # the runner's own API (turns, files) answers only the session's bearer token
    port = 8765
    async with httpx.AsyncClient(base_url=f"http://{workload.address}:{port}") as client:
        for headers in ({}, {"Authorization": "Bearer not-the-token"}):
            for path in ("/files/tree", "/files/raw?path=x", "/health"):
                answer = await client.get(path, headers=headers)
                assert answer.status_code == 401, (path, answer.text)
        refused_turn = await client.post("/turns", json={"message": "hi"})
        assert refused_turn.status_code == 401
    # and the session itself works through it
    events = await chat_sse(api, sid, "hello")
    assert events[-1]["type"] == "done"
    assert not [e for e in events if e["type"] == "error"], events


async def test_a_folder_workspace_is_a_400_saying_the_workspace_is_a_volume(
    api: Any, remote: Remote, jp_root_dir: Any
) -> None:
    (jp_root_dir / "project").mkdir()
    body = {"config_id": "code-assistant", "workspace": "project"}
    reply = await expect_error(api("agents/launch", method="POST", body=body), 400)
    assert reply["field"] == "workspace" and "volume" in reply["message"], reply
    assert remote.runners() == []  # nothing was started
