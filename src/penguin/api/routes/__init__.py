"""The REST routes, one module per resource. Each route validates, calls one ``PenguinCore``
method and returns its ``to_dict()``; errors are translated by ``penguin.api.errors``."""
