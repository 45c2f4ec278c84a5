"""``TelemetryStream``: the client half of ``/api/v1/ws/telemetry`` (periodic summary snapshots).

Use ``async with client.telemetry_stream(interval=1.0) as stream`` and ``async for snapshot in
stream``; each snapshot is a ``TelemetrySummaryInfo``. A refused query (bad interval or agent id,
unknown agent) raises the server's problem as the client's typed error on the first read.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any
from urllib.parse import urlencode

import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from penguin.api.client_base import APIConnectionError, error_for
from penguin.api.schemas_telemetry import TelemetrySummaryInfo


class TelemetryStream:
    """Summary snapshots pushed every ``interval`` seconds; ends when the server closes normally."""

    def __init__(self, url: str, *, headers: dict[str, str], open_timeout: float, params: dict[str, Any]) -> None:
        query = urlencode({k: v for k, v in params.items() if v is not None})
        self.url = f"{url}?{query}" if query else url
        self._headers = headers
        self._open_timeout = open_timeout
        self._conn: ClientConnection | None = None

    async def __aenter__(self) -> TelemetryStream:
        try:
            self._conn = await connect(self.url, additional_headers=self._headers, open_timeout=self._open_timeout,
                                       max_size=None)
        except (OSError, TimeoutError) as exc:
            raise APIConnectionError(f"cannot open {self.url}: {exc}") from exc
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._conn is not None:
            await self._conn.close()

    async def recv(self) -> TelemetrySummaryInfo:
        """The next snapshot. Raises the refused query's typed error, or ``APIConnectionError`` on close."""
        if self._conn is None:
            raise APIConnectionError("the stream is not open; use 'async with client.telemetry_stream()'")
        try:
            frame = orjson.loads(await self._conn.recv())
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else ""
            raise APIConnectionError(f"the telemetry stream closed: {reason or 'no reason given'}") from exc
        if frame.get("type") == "error":
            problem = frame.get("problem") or {}
            raise error_for(int(problem.get("status", 400)), problem)
        return TelemetrySummaryInfo.model_validate(frame)

    def __aiter__(self) -> AsyncIterator[TelemetrySummaryInfo]:
        return self._snapshots()

    async def _snapshots(self) -> AsyncIterator[TelemetrySummaryInfo]:
        while True:
            try:
                yield await self.recv()
            except APIConnectionError:
                if self._conn is not None and self._conn.close_code in (1000, 1001):
                    return
                raise
