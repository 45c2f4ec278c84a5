"""Penguin's benchmarks: orchestration overhead measured against the wire floor.

``python -m benchmarks.run`` runs every workload against a fake OpenAI-compatible server (its own
process) and writes ``docs/benchmarks.md``. Benchmarks never run in the test suite, except one
1/20-size smoke run that checks the harness still works.
"""
