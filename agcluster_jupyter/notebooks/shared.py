"""Notebooks open in a real-time collaboration room (the ``[collaboration]`` extra).

With jupyter-collaboration installed, a notebook open in JupyterLab lives in a room of
``jupyter_server_ydoc``: a shared Y document that every page holding it syncs, and that
the room saves to the file.  A tool that wrote the file instead would reach the page only
through the room's poll for out-of-band changes, which overwrites the room with the file:
the user's typing of the last second would be lost, and the page would flicker.  So a
notebook that has a room is read from the room's document, and an agent's edit goes into
it cell by cell, in one transaction: every page merges it with its user's typing, as it
merges a collaborator's.  The room is then asked to save at once, so the checkpoint at the
end of the turn holds the edit.  While it edits, the session is present in the room's
awareness under its name: the page shows it among the collaborators.

A notebook without a room (closed, or collaboration not installed or disabled with
``--YDocExtension.disable_rtc=True``) is read and written through the ContentsManager,
as before (``tools.py``).  Nothing here creates a room.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .cells import plain

__all__ = ["PRESENCE_SECONDS", "SharedNotebook", "SharedNotebooks"]

#: how long a session stays among a room's collaborators after its last edit
PRESENCE_SECONDS = 60.0
#: clients drop an awareness state not renewed within 30 s (y-protocols' outdated timeout)
_RENEW_SECONDS = 10.0
#: the room of JupyterLab's global awareness (who is online, on which document)
GLOBAL_AWARENESS_ROOM = "JupyterLab:globalAwareness"
#: the transaction origin of an agent's edit (a page's undo manager tracks only its own)
EDIT_ORIGIN = "agcluster-agent"


def _color(session_id: str) -> str:
    """A stable colour per session, for its name among the collaborators."""
    digest = hashlib.sha256(session_id.encode()).digest()
    return "#" + "".join(f"{64 + b % 128:02x}" for b in digest[:3])


class SharedNotebook:
    """One room's notebook: its content now, an edit applied into it, its save."""

    def __init__(self, api_path: str, room: Any, document: Any) -> None:
        self.api_path = api_path
        self.room = room
        self.document = document

    def content(self) -> dict[str, Any]:
        """The notebook as the room holds it now (the pages' state, typing included)."""
        return plain(self.document.get())

    def apply(self, notebook: Mapping[str, Any]) -> None:
        """Bring the room to ``notebook`` (an edit of what :meth:`content` gave, with no
        await in between) in one transaction.  jupyter_ydoc matches cells by id: a cell
        the edit left alone is not touched, a replaced one changes in place."""
        with self.document.ydoc.transaction(origin=EDIT_ORIGIN):
            self.document.set(dict(notebook))

    async def save(self) -> None:
        """The room's own save, now rather than after its debounce delay."""
        save_now: Callable[[], Any] | None = getattr(self.room, "_save_to_disc", None)
        task = save_now() if save_now is not None else None
        if task is not None:
            await task


@dataclass
class _Presence:
    room: Any
    awareness: Any
    #: when the session last edited there (monotonic)
    seen: float = field(default_factory=time.monotonic)


class SharedNotebooks:
    """The rooms of ``jupyter_server_ydoc``, when it is loaded, and the sessions' presence
    in them.  ``settings`` is the server's web application settings, read at each call:
    the collaboration extension may load after this one."""

    def __init__(self, settings: Mapping[str, Any]) -> None:
        self._settings = settings
        self._present: dict[tuple[str, str], _Presence] = {}
        self._renewer: asyncio.Task[None] | None = None

    @property
    def enabled(self) -> bool:
        extension = self._settings.get("jupyter_server_ydoc")
        return extension is not None and not getattr(extension, "disable_rtc", False)

    async def get(self, api_path: str) -> SharedNotebook | None:
        """The room of that notebook, if a page has it open with collaboration."""
        if not self.enabled:
            return None
        extension = self._settings["jupyter_server_ydoc"]
        file_ids = self._settings.get("file_id_manager")
        file_id = file_ids.get_id(api_path) if file_ids is not None else None
        if file_id is None:
            return None  # never opened collaboratively: no room
        from jupyter_server_ydoc.utils import encode_file_path, room_id_from_encoded_path

        room_id = room_id_from_encoded_path(encode_file_path("json", "notebook", file_id))
        rooms = getattr(extension.ywebsocket_server, "rooms", {})
        room = rooms.get(room_id)
        if room is None or not getattr(room, "ready", False):
            return None
        document = await extension.get_document(room_id=room_id, copy=False)
        if document is None or not hasattr(document, "ycells"):
            return None
        return SharedNotebook(api_path, room, document)

    # -- presence: the session among the room's collaborators -----------------------------

    def present(self, shared: SharedNotebook, session_id: str, name: str) -> None:
        """Show the session in the room's awareness (the pages mark its edits with its
        name) and in JupyterLab's global awareness (its "Online Collaborators" list, on
        that notebook); renewed, then dropped :data:`PRESENCE_SECONDS` after its last
        edit."""
        user = {
            "username": f"agent-{session_id[:8]}",
            "name": name,
            "display_name": name,
            "initials": "AI",
            "color": _color(session_id),
            "avatar_url": None,
        }
        marker = {"session_id": session_id}
        self._show(
            (session_id, shared.room.room_id), shared.room, {"user": user, "agcluster": marker}
        )
        rooms = getattr(self._settings["jupyter_server_ydoc"].ywebsocket_server, "rooms", {})
        lobby = rooms.get(GLOBAL_AWARENESS_ROOM)
        if lobby is not None:
            state = {
                "user": user,
                # as a page names its current widget (the layout restorer's key)
                "current": f"notebook:{shared.api_path}",
                "documents": [shared.api_path],
                "agcluster": marker,
            }
            self._show((session_id, GLOBAL_AWARENESS_ROOM), lobby, state)
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.create_task(self._renew())

    def _show(self, key: tuple[str, str], room: Any, state: dict[str, Any]) -> None:
        from pycrdt import Awareness, Doc

        presence = self._present.get(key)
        if presence is None or presence.room is not room:
            presence = _Presence(room=room, awareness=Awareness(Doc()))
            self._present[key] = presence
        presence.awareness.set_local_state(state)
        presence.seen = time.monotonic()
        self._broadcast(presence)

    def leave(self, session_id: str) -> None:
        """The session leaves every room it was present in (it stopped)."""
        for key in [k for k in self._present if k[0] == session_id]:
            self._drop(key)

    def _broadcast(self, presence: _Presence, renew: bool = False) -> None:
        awareness = presence.awareness
        if renew:  # the state again, with a newer clock: clients keep it
            awareness.set_local_state(awareness.get_local_state())
        update = awareness.encode_awareness_update([awareness.client_id])
        # "local": the room broadcasts it to its clients as its own
        with contextlib.suppress(Exception):  # a room stopping under us
            presence.room.awareness.apply_awareness_update(update, "local")

    def _drop(self, key: tuple[str, str]) -> None:
        presence = self._present.pop(key)
        presence.awareness.set_local_state(None)
        update = presence.awareness.encode_awareness_update([presence.awareness.client_id])
        with contextlib.suppress(Exception):
            presence.room.awareness.apply_awareness_update(update, "local")

    async def _renew(self) -> None:
        while self._present:
            await asyncio.sleep(_RENEW_SECONDS)
            now = time.monotonic()
            for key, presence in list(self._present.items()):
                if now - presence.seen > PRESENCE_SECONDS:
                    self._drop(key)
                else:
                    self._broadcast(presence, renew=True)
