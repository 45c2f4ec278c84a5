"""The web console served by ``penguin serve`` at ``/console`` (see ``penguin.dashboard.app``)."""

from penguin.dashboard.app import CONSOLE_PATH, mount_console

__all__ = ["CONSOLE_PATH", "mount_console"]
