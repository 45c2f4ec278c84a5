"""Penguin's faces for other ecosystems: OpenAI-compatible chat, A2A agents and an MCP server.

Each face translates its protocol into calls of the same ``PenguinCore`` methods every other
surface uses (``chat``, ``stream_chat``, ``list_agents``, ``send_message``, ``run_task``,
``get_task``), so a turn through a face is recorded exactly like a REST chat.
"""
