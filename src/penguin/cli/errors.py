"""How every ``penguin`` command reports an error: one ``error: ...`` line on stderr, then exit 2
for a user error (the fix is in the caller's hands) or 1 for a failure of Penguin or a dependency.

Errors come from the core (``PenguinError``) or from a server the command talked to
(``PenguinAPIError``); both are translated here, once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from penguin.errors import PenguinError

#: stderr, never wrapped: an error is one line however long.
err_console = Console(stderr=True, soft_wrap=True)


def fail(detail: str, *, user_error: bool = True) -> NoReturn:
    """Print one error line and exit: 2 for a user error, 1 for a failure."""
    err_console.print(f"[bold red]error:[/] {escape(detail)}", highlight=False)
    raise typer.Exit(2 if user_error else 1)


@contextmanager
def reported() -> Iterator[None]:
    """Translate Penguin's errors, local or from the API, into one line and an exit status."""
    from penguin.api.client_base import APIConnectionError, PenguinAPIError

    try:
        yield
    except PenguinError as exc:
        fail(exc.detail, user_error=exc.status < 500)
    except APIConnectionError as exc:
        fail(f"the server did not answer: {exc.detail}", user_error=False)
    except PenguinAPIError as exc:
        fail(exc.detail, user_error=exc.status is not None and exc.status < 500)


__all__ = ["err_console", "fail", "reported"]
