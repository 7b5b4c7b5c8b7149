"""What a worker does before it polls."""

import importlib.util
import sys
from pathlib import Path

import pytest

import workflows.deployment
from worker import compile_workflows


def test_the_workflows_bytecode_is_cached_even_where_python_writes_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The sandbox imports a workflow's module for each workflow it runs: with the bytecode
    cached, none of those imports compiles the source, whatever PYTHONDONTWRITEBYTECODE says."""
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    source = Path(workflows.deployment.__file__)
    cached = Path(importlib.util.cache_from_source(str(source)))
    cached.unlink(missing_ok=True)
    assert compile_workflows()
    assert cached.is_file() and cached.stat().st_mtime_ns >= source.stat().st_mtime_ns
