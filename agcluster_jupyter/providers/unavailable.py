"""A stand-in for a provider that cannot be built as configured (a missing package, token
or setting): health says why, and every launch is a 503 with the same message."""

from __future__ import annotations

from .base import (
    Provider,
    ProviderHealth,
    ProviderUnavailable,
    RunnerHandle,
    RunnerSpec,
    RunnerStatus,
)

__all__ = ["UnavailableProvider"]


class UnavailableProvider(Provider):
    isolated = True

    def __init__(self, name: str, detail: str) -> None:
        self.name = name
        self.detail = detail

    async def health(self) -> ProviderHealth:
        return ProviderHealth(ok=False, isolated=True, detail=self.detail)

    async def create(self, spec: RunnerSpec) -> RunnerHandle:
        raise ProviderUnavailable(self.detail)

    async def stop(self, handle: RunnerHandle) -> None:
        return None

    async def status(self, handle: RunnerHandle) -> RunnerStatus:
        return RunnerStatus.MISSING

    async def list_runners(self, labels: dict[str, str]) -> list[RunnerHandle]:
        return []
