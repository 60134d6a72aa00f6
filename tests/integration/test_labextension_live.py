"""The labextension's TypeScript client (labextension/src/api.ts, sse.ts, reducer.ts)
against a real Jupyter server with agcluster and the scripted model: launch, a streamed
turn through ``POST chat``, the event log followed from seq 1, stop; and the files flows
(tree, preview, upload with the 409 → overwrite path, downloads).

The vitest cases live in labextension/test/live.test.ts and live-files.test.ts; the server
runs on this test's event loop, so npm runs as an asyncio subprocess.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_labextension_unit import LABEXT, ensure_node_modules, npm, npm_env

pytestmark = pytest.mark.cli


async def test_typescript_client_against_a_real_server(
    jp_serverapp: Any,
    agcluster_app: Any,
    http_server_client: Any,  # the server listens only once this is set up
    jp_http_port: int,
    jp_base_url: str,
    tmp_path: Path,
) -> None:
    await asyncio.to_thread(ensure_node_modules)
    report = tmp_path / "vitest.json"
    env = npm_env(
        {
            "AGC_LIVE_URL": f"http://127.0.0.1:{jp_http_port}{jp_base_url}",
            "AGC_LIVE_TOKEN": jp_serverapp.identity_provider.token,
        }
    )
    proc = await asyncio.create_subprocess_exec(
        *npm(
            "test",
            "--",
            "test/live.test.ts",
            "test/live-files.test.ts",
            "--reporter=default",
            "--reporter=json",
            f"--outputFile.json={report}",
        ),  # fmt: skip
        cwd=LABEXT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=240)
    output = out.decode(errors="replace")
    assert proc.returncode == 0, output
    results = json.loads(report.read_text())
    by_file = {
        Path(f["name"]).name: [t["status"] for t in f["assertionResults"]]
        for f in results["testResults"]
    }
    assert set(by_file) == {"live.test.ts", "live-files.test.ts"}, output
    assert all(by_file.values()), output  # each file ran cases; none skipped
    assert {s for statuses in by_file.values() for s in statuses} == {"passed"}, output
    assert agcluster_app.manager.sessions, "the vitest case launched no session here"
    assert all(s.state in {"stopped", "stopping"} for s in agcluster_app.manager.sessions.values())
