"""Penguin's HTTP API: REST under ``/api/v1``, the multiplexed chat WebSocket, problem+json errors.

``create_app(core)`` builds the FastAPI app; ``penguin serve`` runs it with uvicorn. The request
and response models in ``penguin.api.schemas`` are shared with ``penguin.api_client``.
"""

from penguin.api.app import API_PREFIX, create_app

__all__ = ["API_PREFIX", "create_app"]
