"""Penguin's Alembic environment: ``env.py``, the revision template and ``versions/``.

Nothing here is imported by Penguin; ``penguin.storage.migrate`` hands Alembic this folder and a
connection. How to add a revision: ``docs/storage.md``.
"""
