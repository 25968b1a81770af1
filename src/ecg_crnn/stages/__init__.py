"""The pipeline's stages, one module per dvc.yaml stage.

Each exposes `run(params, paths)` (the matrix stages also take the run's key): it reads the stage's inputs, calls
the library and writes its outputs atomically. The CLI, dvc.yaml (through the CLI), the Prefect flows and the tests
all call these; none re-implements a step. A stage module imports exactly the library modules its dvc.yaml entry
lists as dependencies (tests/test_stage_deps.py checks that from a real run), so that editing code a stage does not
run never re-runs it.
"""
