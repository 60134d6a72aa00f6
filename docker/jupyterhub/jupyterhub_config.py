# JupyterHub with DockerSpawner: each user's single-user server is a container from
# Dockerfile.singleuser with agcluster inside, and each of their agent sessions a sibling
# container, started by their server through the host's Docker engine.
# tests/hub/test_dockerspawner.py runs this file as it is (plus test ports, a dummy model).
#
#   pip install jupyterhub dockerspawner && npm install -g configurable-http-proxy
#   docker network create jupyterhub
#   docker/jupyterhub/build-singleuser.sh              # the users' image
#   jupyter agcluster build-image                      # the agents' image
#   ANTHROPIC_API_KEY=... jupyterhub -f docker/jupyterhub/jupyterhub_config.py
#
# The hub runs on the host as root (or in a container with the Docker socket and
# AGCLUSTER_USERS_ROOT mounted at the same paths): it creates each user's folder there.
# Environment: AGCLUSTER_SINGLEUSER_IMAGE, AGCLUSTER_HUB_NETWORK, AGCLUSTER_USERS_ROOT,
# HUB_CONNECT_IP (how the users' containers reach the hub; default: the network's gateway,
# i.e. this host), ANTHROPIC_API_KEY.
#
# Whoever holds the Docker socket controls the host: only do this where users do not get a
# shell in their server (no terminals, no kernels they control), or use the Kubernetes
# provider (z2jh-values.yaml) instead.
import os
from pathlib import Path

import docker

c = get_config()  # noqa: F821

IMAGE = os.environ.get("AGCLUSTER_SINGLEUSER_IMAGE", "agcluster-singleuser:latest")
NETWORK = os.environ.get("AGCLUSTER_HUB_NETWORK", "jupyterhub")
#: one folder per user on the host: sessions' workspaces, CLI state, sockets and records
USERS_ROOT = Path(os.environ.get("AGCLUSTER_USERS_ROOT", "/srv/agcluster"))
DOCKER_SOCKET = "/var/run/docker.sock"
#: the server's user in Dockerfile.singleuser (Docker Stacks' jovyan); agents run as it too
SERVER_UID, SERVER_GID = 1000, 100
HOME = "/home/jovyan"


def network_gateway(name):
    """The host's address on the Docker network ``name``."""
    client = docker.from_env()
    try:
        return client.networks.get(name).attrs["IPAM"]["Config"][0]["Gateway"]
    finally:
        client.close()


c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = IMAGE
# the image's own CMD differs by base (start-notebook.py on Docker Stacks)
c.DockerSpawner.cmd = ["jupyterhub-singleuser"]
c.DockerSpawner.network_name = NETWORK
c.DockerSpawner.remove = True
c.DockerSpawner.notebook_dir = f"{HOME}/work"
# the users' containers reach the hub on this host's address on their network
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = os.environ.get("HUB_CONNECT_IP") or network_gateway(NETWORK)

# replace with a real authenticator (OAuthenticator, LDAP, ...)
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {"alice", "bob"}

c.DockerSpawner.volumes = {
    DOCKER_SOCKET: DOCKER_SOCKET,
    "jupyterhub-user-{username}": f"{HOME}/work",
}
c.DockerSpawner.extra_host_config = {
    # the socket is root:docker 0660 on the host: the server's user needs its group (by
    # number: the image has no such group)
    "group_add": [str(os.stat(DOCKER_SOCKET).st_gid)],
}
c.DockerSpawner.extra_create_kwargs = {
    # `docker stop` waits this long for the server to stop its agents' containers before
    # it kills it (the engine's default is 10 s)
    "stop_timeout": 30,
}


def agcluster_folders(spawner):
    """The user's folder, created on the host for the server's user, mounted at the same
    path: the host's engine bind-mounts the sessions' folders into the agents' containers
    by the paths the server gives it."""
    root = USERS_ROOT / spawner.escaped_name
    folders = {
        "workspace_root": root / "workspaces",
        "agent_state_root": root / "agent-state",
        "state_root": root / "state",
        # the sessions' unix sockets (runner, gateway): short paths, at most 108 bytes
        "socket_root": root / "s",
    }
    for path in [root, *folders.values()]:
        path.mkdir(parents=True, exist_ok=True)
        os.chown(path, SERVER_UID, SERVER_GID)
    spawner.volumes = {**spawner.volumes, str(root): str(root)}
    # Spawner.args are not formatted with {username}: set them per user here
    spawner.args = [
        "--AgClusterApp.provider=docker",
        *(f"--AgClusterApp.{trait}={path}" for trait, path in folders.items()),
        # the agent is the server's activity: the idle culler spares a busy agent
        "--AgClusterApp.activity_interval=30",
    ]


c.DockerSpawner.pre_spawn_hook = agcluster_folders
c.DockerSpawner.environment = {
    # the key stays in the single-user server (the gateway adds it upstream);
    # agent containers never see it
    "ANTHROPIC_API_KEY": os.environ.get("ANTHROPIC_API_KEY", ""),
    # how often the server reports its last activity to the hub (seconds)
    "JUPYTERHUB_ACTIVITY_INTERVAL": "60",
}

# cull idle servers (pip install jupyterhub-idle-culler); a server whose agent is working
# is not idle
c.JupyterHub.services = [
    {
        "name": "idle-culler",
        "command": ["python3", "-m", "jupyterhub_idle_culler", "--timeout=3600"],
    }
]
c.JupyterHub.load_roles = [
    {
        "name": "idle-culler",
        "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
        "services": ["idle-culler"],
    }
]
