"""Security by default: loopback unless an API key is set; with a key, every route but health needs it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest
from penguin_server import InProcessServer, penguin_executable
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from penguin import PenguinCore, Settings
from penguin.api.errors import STATUS_BY_ERROR, status_for
from penguin.cli.serve import InsecureBind, build_server, check_bind, is_loopback
from penguin.errors import __all__ as error_names

API = "/api/v1"


def test_loopback_detection() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("::") and not is_loopback("192.168.1.10")
    assert not is_loopback("no-such-host.invalid")


def test_non_loopback_bind_needs_an_api_key(tmp_path: Path) -> None:
    open_settings = Settings(data_dir=tmp_path)
    with pytest.raises(InsecureBind) as refused:
        check_bind("0.0.0.0", open_settings)
    assert "PENGUIN_API_KEY" in refused.value.detail and refused.value.field == "host"
    with pytest.raises(InsecureBind):
        build_server("0.0.0.0", 8000, settings=open_settings)
    check_bind("127.0.0.1", open_settings)
    check_bind("0.0.0.0", Settings(data_dir=tmp_path, api_key="k"))
    server = build_server(settings=Settings(data_dir=tmp_path, api_key="k", max_body_bytes=4096))
    assert (server.config.host, server.config.port, server.config.ws_max_size) == ("127.0.0.1", 8000, 4096)


def test_penguin_serve_refuses_a_public_host_without_a_key(tmp_path: Path) -> None:
    result = subprocess.run(
        [*penguin_executable(), "serve", "--host", "0.0.0.0", "--port", "1"],
        env={"PATH": "/usr/bin:/bin", "PENGUIN_DATA_DIR": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "PENGUIN_API_KEY" in result.stderr.replace("\n", " ")


def test_every_penguin_error_has_a_status_in_the_table() -> None:
    import penguin.errors as errors

    classes = [getattr(errors, name) for name in error_names]
    for cls in classes:
        assert status_for(cls("x") if cls is not errors.ModelError else cls("x", provider="p")) == cls.status, cls
    assert set(classes) <= set(STATUS_BY_ERROR)


def test_errors_derived_elsewhere_keep_their_declared_status() -> None:
    from penguin.bus.errors import BusClosed, RoomNotFound, SubscriberDisconnected
    from penguin.memory.records import MemoryNotFound

    assert status_for(SubscriberDisconnected("x", resume_seq=3)) == 409
    assert status_for(BusClosed("x")) == 503
    assert status_for(RoomNotFound("x")) == 404 and status_for(MemoryNotFound("x")) == 404


async def test_api_key_guards_every_route_but_health(tmp_path: Path) -> None:
    async with PenguinCore(data_dir=tmp_path, model="scripted:echo", api_key="s3cret") as core, \
            InProcessServer(core) as srv, httpx.AsyncClient(base_url=srv.url) as http:
        assert (await http.get(f"{API}/health")).status_code == 200
        for method, path in [("GET", f"{API}/agents"), ("POST", f"{API}/chat"), ("GET", "/openapi.json"),
                             ("GET", f"{API}/version"), ("GET", f"{API}/nope")]:
            denied = await http.request(method, path)
            assert denied.status_code == 401, path
            assert denied.headers["www-authenticate"] == "Bearer"
            assert denied.json()["type"].endswith("/unauthorized")
        wrong = await http.get(f"{API}/agents", headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        ok = await http.post(f"{API}/chat", json={"text": "hi"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200 and ok.json()["response"] == "hi"
        spec = (await http.get("/openapi.json", headers={"Authorization": "Bearer s3cret"})).json()
        assert spec["security"] == [{"bearer": []}]

        ws_url = srv.url.replace("http://", "ws://") + f"{API}/chat/stream"
        with pytest.raises(InvalidStatus) as refused:
            async with connect(ws_url):
                pass
        assert refused.value.response.status_code == 403
        async with connect(ws_url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            await ws.send('{"type": "chat", "request_id": "a", "text": "over ws"}')
            assert '"accepted"' in str(await ws.recv())
        async with connect(ws_url + "?token=s3cret") as ws:  # browsers cannot set headers
            await ws.send('{"type": "cancel", "request_id": "none"}')
            assert '"error"' in str(await ws.recv())


def test_the_access_log_is_off_unless_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert build_server(settings=Settings(data_dir=tmp_path)).config.access_log is False
    assert build_server(settings=Settings(data_dir=tmp_path, access_log=True)).config.access_log is True
    monkeypatch.setenv("PENGUIN_ACCESS_LOG", "true")
    assert build_server(settings=Settings(data_dir=tmp_path)).config.access_log is True
