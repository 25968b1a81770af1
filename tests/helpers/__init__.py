"""Test helpers, imported as a package by the tests, their fixtures (conftest.py) and the benchmarks: the paths of
the checkout (paths), parameters (params), scratch projects (project), processes (processes) and local servers
(servers)."""
