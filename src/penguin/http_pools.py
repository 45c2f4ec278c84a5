"""``ClientPools``: concurrent HTTP requests spread over a few httpx clients.

Used by ``PenguinClient``, which stays on httpx so that callers can hand it any httpx transport
(``httpx.ASGITransport`` to call an app in-process). The model wire clients use aiohttp
(``models/_http.py``).

httpcore's connection pool does work in proportion to the requests waiting in it for every
request it serves (encode/httpx#3215), so 50 requests in flight through one ``httpx.AsyncClient``
cost the client about twice the CPU of the same requests spread over pools of a few each
(benchmark W3 over REST). Each pool also keeps all its connections alive (httpx keeps only 20 by
default, so a 21st concurrent request would open, and then close, a fresh connection every time).
Sequential requests always use the first pool, so a lone caller keeps one warm connection.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping

import httpx

#: Most pools one client spreads concurrent requests over.
POOL_SHARDS = 16
#: Connections each pool may open and keep alive (httpx's default total limit).
POOL_CONNECTIONS = 100
_URL_CACHE = 1024


class ClientPools:
    """Lazily created ``httpx.AsyncClient`` pools sharing base URL, headers, timeout and transport.

    ``acquire`` hands out the first idle pool, else creates one (up to ``POOL_SHARDS``; only one
    when a custom ``transport`` is given, since a transport is one object), else the least busy.
    Nothing here awaits, so two requests never race for a slot.
    """

    def __init__(
        self,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: float,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._base_url = base_url
        self._headers = dict(headers)
        self._timeout = timeout
        self._transport = transport
        self._shards = 1 if transport is not None else POOL_SHARDS
        self._clients: list[httpx.AsyncClient] = []
        #: Requests in flight per pool (a new list per generation: ``aclose`` starts a new one, so
        #: a request finishing after it never miscounts a new pool).
        self._busy: list[int] = []
        #: Absolute URL by path (a path names an agent or task, so the cache is bounded).
        self._urls: dict[str, httpx.URL] = {}
        #: Loading the CA bundle costs ~20 ms and each httpx client would load its own.
        self._ssl: ssl.SSLContext | None = None

    def url(self, path: str) -> httpx.URL:
        """``path`` joined to the base URL, remembered: httpx would parse both on every request."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            url = self._urls[path] = self.first.build_request("GET", path).url
        return url

    @property
    def first(self) -> httpx.AsyncClient:
        """The first pool (created if needed): for streams and one-off requests."""
        if not self._clients:
            self._add()
        return self._clients[0]

    def _add(self) -> None:
        if self._ssl is None and self._transport is None:
            self._ssl = httpx.create_ssl_context()
        self._clients.append(
            httpx.AsyncClient(
                base_url=self._base_url,
                headers=self._headers,
                timeout=self._timeout,
                transport=self._transport,
                verify=self._ssl if self._ssl is not None else True,
                limits=httpx.Limits(max_connections=POOL_CONNECTIONS, max_keepalive_connections=POOL_CONNECTIONS),
            )
        )
        self._busy.append(0)

    def acquire(self) -> tuple[list[int], int]:
        """Pick a pool for one request and count it busy; pass the slot to ``release``."""
        busy = self._busy
        index = next((i for i, n in enumerate(busy) if n == 0), len(busy))
        if index == len(busy):
            if index < self._shards:
                self._add()
            else:
                index = min(range(len(busy)), key=busy.__getitem__)
        busy[index] += 1
        return busy, index

    @staticmethod
    def release(slot: tuple[list[int], int]) -> None:
        busy, index = slot
        busy[index] -= 1

    def client(self, slot: tuple[list[int], int]) -> httpx.AsyncClient:
        return self._clients[slot[1]]

    async def aclose(self) -> None:
        clients, self._clients, self._busy = self._clients, [], []
        for client in clients:
            await client.aclose()


__all__ = ["POOL_CONNECTIONS", "POOL_SHARDS", "ClientPools"]
