"""``HttpSession``: the keep-alive aiohttp session of one client, per event loop.

Used by the model wire clients (``models/_http.py``) and by ``PenguinClient``. aiohttp rather
than httpx on these hot paths: per request it costs about a third of httpx's CPU one at a time
and a tenth with 50 requests in flight, where httpcore's pool does work in proportion to the
requests waiting in it (encode/httpx#3215); see ``docs/benchmarks.md``.

* A session belongs to the loop it was created on, so one is created lazily on first use and
  again if the client is later used from another loop (``PenguinAgent`` runs its own loop).
* ``timeout`` bounds each phase (pool wait + connect, every read), like httpx's timeout, not the
  whole answer: a long turn or stream that keeps sending is never cut off.
* The proxy named by ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` is read once: aiohttp's
  ``trust_env`` would look it (and ``~/.netrc``) up in a worker thread on every request.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Mapping
from urllib.parse import urlsplit

import aiohttp
import yarl

#: Connections one session keeps to its server; aiohttp queues requests beyond them.
MAX_CONNECTIONS = 256
_URL_CACHE = 1024


def env_proxy(base_url: str) -> str | None:
    """The proxy that ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` name for ``base_url``, if any."""
    try:
        parts = urlsplit(base_url)
    except ValueError:
        return None
    if not parts.hostname or urllib.request.proxy_bypass(parts.hostname):
        return None
    return urllib.request.getproxies().get(parts.scheme)


class HttpSession:
    """Base URL, default headers and timeout, and the loop's ``aiohttp.ClientSession``."""

    def __init__(self, *, base_url: str, headers: Mapping[str, str], timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.proxy = env_proxy(self.base_url)
        self._headers = dict(headers)
        self._timeout = aiohttp.ClientTimeout(total=None, connect=timeout, sock_connect=timeout, sock_read=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Absolute URL by path (a path may name an agent or a task, so the cache is bounded).
        self._urls: dict[str, yarl.URL] = {}

    def session(self) -> aiohttp.ClientSession:
        """The running loop's session, created on first use."""
        loop = asyncio.get_running_loop()
        session = self._session
        if session is None or session.closed or self._loop is not loop:
            session = aiohttp.ClientSession(
                headers=self._headers,
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
            )
            self._session, self._loop = session, loop
        return session

    def url(self, path: str) -> yarl.URL:
        """``path`` (already percent-encoded) under the base URL.

        Raises:
            ValueError: the base URL and path do not make a URL.
        """
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= _URL_CACHE:
                self._urls.clear()
            url = self._urls[path] = yarl.URL(self.base_url + "/" + path.lstrip("/"))
        return url

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None and not session.closed and self._loop is asyncio.get_running_loop():
            await session.close()


__all__ = ["MAX_CONNECTIONS", "HttpSession", "env_proxy"]
