# EXAMPLE, not tested as is: JupyterHub with DockerSpawner, each user's single-user server
# a container from Dockerfile.singleuser, agcluster inside it.
#
# The tested setup is tests/hub/test_jupyterhub.py (SimpleLocalProcessSpawner, provider
# local); this file shows the same settings for a Docker deployment.  Adapt the
# authenticator, the image name, the network and the paths.
#
#   docker network create jupyterhub
#   docker build -f docker/jupyterhub/Dockerfile.singleuser -t agcluster-singleuser .
#   jupyter agcluster build-image            # the agent image (agcluster-agent:<version>)
#   ANTHROPIC_API_KEY=... jupyterhub -f docker/jupyterhub/jupyterhub_config.py
#
# Agents run with provider=docker: one hardened container per session, started by the
# user's server through the host's Docker engine (its socket mounted in).  Whoever holds
# that socket controls the host: only do this where users do not get a shell in their
# server, or use the Kubernetes provider (z2jh-values.yaml) instead.
import os

c = get_config()  # noqa: F821

c.JupyterHub.spawner_class = "dockerspawner.DockerSpawner"
c.DockerSpawner.image = "agcluster-singleuser:latest"
c.DockerSpawner.network_name = "jupyterhub"
c.DockerSpawner.remove = True
# the hub must be reachable from the users' containers
c.JupyterHub.hub_ip = "0.0.0.0"
c.JupyterHub.hub_connect_ip = os.environ.get("HUB_CONNECT_IP", "jupyterhub")

# replace with a real authenticator (OAuthenticator, LDAP, ...)
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = {"alice", "bob"}

# Session workspaces are bind-mounted into the agent containers by the HOST's engine, so
# they must live at the same path inside the user's container and on the host.
AGENTS = "/srv/agcluster/{username}"
c.DockerSpawner.volumes = {
    "/var/run/docker.sock": "/var/run/docker.sock",
    AGENTS: AGENTS,
    "jupyterhub-user-{username}": "/home/jovyan/work",
}


def agcluster_args(spawner):
    # Spawner.args are not formatted with {username}: set them per user here
    root = AGENTS.format(username=spawner.user.name)
    spawner.args = [
        "--AgClusterApp.provider=docker",
        f"--AgClusterApp.workspace_root={root}/workspaces",
        f"--AgClusterApp.agent_state_root={root}/agent-state",
        f"--AgClusterApp.state_root={root}/state",
        # the agent is the server's activity: the idle culler spares a busy agent
        "--AgClusterApp.activity_interval=30",
    ]


c.DockerSpawner.pre_spawn_hook = agcluster_args
c.DockerSpawner.environment = {
    # the key stays in the single-user server (the gateway adds it upstream);
    # agent containers never see it
    "ANTHROPIC_API_KEY": os.environ.get("ANTHROPIC_API_KEY", ""),
    # how often the server reports its last activity to the hub (seconds)
    "JUPYTERHUB_ACTIVITY_INTERVAL": "60",
}

# cull idle servers; a server whose agent is working is not idle
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
