"""A Jupyter server extension for benchmarks: the server's own event-loop lag.

Enabled next to agcluster (``--ServerApp.jpserver_extensions=lagprobe=True`` with this
folder on ``PYTHONPATH``), it adds ``GET /lagprobe``.  The first call starts a task on the
server's loop that sleeps ``INTERVAL`` again and again and records by how much each sleep
overshot: the time a callback waited for the loop, i.e. the lag every request and event
saw.  ``?reset=1`` clears the samples; the answer is the raw samples (see
``LagProbe.samples``), so the caller computes its own percentiles.

Diagnosis, from the server's environment: ``LAGPROBE_DEBUG=<seconds>`` turns on asyncio's
debug mode, which logs each callback that held the loop longer than that;
``LAGPROBE_PROFILE=<file>`` profiles the loop's thread (cProfile) from the first call to
the first call without ``reset``.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import os
import time
from typing import Any

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web

INTERVAL = 0.01


class LagProbe:
    def __init__(self) -> None:
        #: (loop time at the end of the sleep, overshoot, CPU time of the loop's thread
        #: during the sleep): overshoot with little CPU is the loop waiting for a core (or
        #: the GIL), overshoot with as much CPU is the loop busy with its own callbacks
        self.samples: list[tuple[float, float, float]] = []
        self.task: asyncio.Task[None] | None = None
        self.profile: cProfile.Profile | None = None

    def ensure_running(self) -> None:
        if self.task is None or self.task.done():
            loop = asyncio.get_running_loop()
            if os.environ.get("LAGPROBE_DEBUG"):
                # asyncio's debug mode logs every callback that held the loop longer than
                # this, with what it was: where the lag comes from
                loop.slow_callback_duration = float(os.environ["LAGPROBE_DEBUG"])
                loop.set_debug(True)
            if os.environ.get("LAGPROBE_PROFILE") and self.profile is None:
                # cProfile sees the thread it is enabled on: the loop's
                self.profile = cProfile.Profile()
                self.profile.enable()
            self.task = loop.create_task(self._run(), name="lagprobe")

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(INTERVAL)
            end = loop.time()
            lag = max(0.0, end - start - INTERVAL)
            self.samples.append((end, lag, time.thread_time() - cpu))

    def dump_profile(self) -> None:
        if self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(os.environ["LAGPROBE_PROFILE"])
            self.profile = None


class LagProbeHandler(JupyterHandler):
    probe: LagProbe

    def initialize(self, probe: LagProbe) -> None:
        self.probe = probe

    @web.authenticated
    def get(self) -> None:
        self.probe.ensure_running()
        samples = list(self.probe.samples)
        if self.get_query_argument("reset", "0") == "1":
            self.probe.samples.clear()
        else:
            self.probe.dump_profile()
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"interval_s": INTERVAL, "samples": samples}))


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "lagprobe"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    route = url_path_join(serverapp.web_app.settings["base_url"], "lagprobe")
    serverapp.web_app.add_handlers(".*$", [(route, LagProbeHandler, {"probe": LagProbe()})])
