"""The Anthropic API gateway: injects the key, meters tokens, enforces budgets."""

from __future__ import annotations

from .metering import StreamMeter, Usage
from .proxy import Gateway, GatewaySession, hash_token

__all__ = ["Gateway", "GatewaySession", "StreamMeter", "Usage", "hash_token"]
