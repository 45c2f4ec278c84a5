"""``penguin serve`` plus one Python tool: the REST server for W4.

``penguin serve`` cannot load a Python function as a tool, so this builds the same API app
(``penguin.api.app.create_app``) on the same uvicorn settings as ``penguin.cli.serve``, after
registering the trivial ``lookup`` tool on its core. Settings come from the environment, as for
``penguin serve``.

    python -m benchmarks.tool_server --port 8000
"""

from __future__ import annotations

import argparse
import asyncio

import uvicorn

from benchmarks.plan import lookup
from penguin.api.app import create_app
from penguin.cli.serve import freeze_startup_heap
from penguin.config import Settings
from penguin.core import PenguinCore
from penguin.tools.base import tool_from_function


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = Settings()
    core = PenguinCore(settings)
    core.tools.register(tool_from_function(lookup, blocking=False))
    # A core passed in is started by the app's lifespan but stopped by its owner: here.
    app = create_app(core)
    config = uvicorn.Config(app, host="127.0.0.1", port=args.port, lifespan="on", log_level="info", server_header=False)
    server = uvicorn.Server(config)
    freeze_startup_heap()  # as ``penguin serve`` does

    async def run() -> None:
        try:
            await server.serve()
        finally:
            await core.stop()

    asyncio.run(run())


if __name__ == "__main__":
    main()
