"""Penguin's schema revisions, ``NNNN_words.py``, one line of history (see ``docs/storage.md``)."""
