"""What a model call cost, in USD, from its usage fields: the gateway's dollar meter.

The gateway sees every call a session makes (the CLI's turns, its sub-agents, anything
the agent sends itself), so its figure is the one the dollar budget holds to.  Prices
are per million tokens, by model family (the longest matching prefix of the model
name wins); cache writes cost 1.25 × input and cache reads 0.1 × input, as Anthropic
bills them.  The defaults are the prices the bundled claude CLI (2.1.332) charges for
these families, measured against the scripted model: opus $4 / $20, sonnet $3 / $15,
haiku $1 / $5.  A model no price matches is charged as the most expensive family, so a
budget errs on the safe side; ``AgClusterApp.model_prices`` adds or overrides prices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_PRICES", "ModelPrice", "Pricing"]


@dataclass(frozen=True)
class ModelPrice:
    """USD per million tokens."""

    input: float
    output: float

    @property
    def cache_write(self) -> float:
        return self.input * 1.25

    @property
    def cache_read(self) -> float:
        return self.input * 0.1


DEFAULT_PRICES: dict[str, ModelPrice] = {
    "claude-opus": ModelPrice(4.0, 20.0),
    "claude-sonnet": ModelPrice(3.0, 15.0),
    "claude-haiku": ModelPrice(1.0, 5.0),
}


class Pricing:
    def __init__(self, prices: Mapping[str, ModelPrice] | None = None) -> None:
        self.prices = {**DEFAULT_PRICES, **(prices or {})}
        self.fallback = max(self.prices.values(), key=lambda p: (p.output, p.input))

    def price(self, model: str) -> ModelPrice:
        matches = [prefix for prefix in self.prices if model.startswith(prefix)]
        return self.prices[max(matches, key=len)] if matches else self.fallback

    def cost(
        self,
        model: str,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_creation_input_tokens: int = 0,
        cache_read_input_tokens: int = 0,
    ) -> float:
        p = self.price(model)
        return (
            input_tokens * p.input
            + output_tokens * p.output
            + cache_creation_input_tokens * p.cache_write
            + cache_read_input_tokens * p.cache_read
        ) / 1_000_000
