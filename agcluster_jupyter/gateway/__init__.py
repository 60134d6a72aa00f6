"""The Anthropic API gateway: lends the key to the CLI's model calls only, meters tokens
and dollars, enforces budgets."""

from __future__ import annotations

from .metering import StreamMeter, Usage
from .proxy import Gateway, GatewayPolicy, GatewaySession, hash_token

__all__ = ["Gateway", "GatewayPolicy", "GatewaySession", "StreamMeter", "Usage", "hash_token"]
