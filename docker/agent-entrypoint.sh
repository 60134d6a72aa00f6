#!/bin/sh
# Entry point of the agcluster agent image.
# No arguments, or options first: run the agent runner with them.  Anything else is a
# command to run as it is (`docker run IMAGE python -c ...`, `docker run IMAGE bash`).
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
    exec python -m agcluster_jupyter.runner "$@"
fi
exec "$@"
