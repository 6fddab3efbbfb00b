"""perfmon: the performance monitor of the script generator.

Time operations with ``@monitor_performance`` / ``with monitor.operation(...)``, group them in
sessions with ``with monitor.session(...)``, record cache use, LLM calls and generation
counters, print ``metrics.get_summary()``, and (after ``configure()``) ship every session to
the perfmon server in the background. Standard library only; never imports Django.
"""

import sys
from typing import Any

from perfmon._config import (
    ENV_API_KEY,
    ENV_DISABLED,
    ENV_ENVIRONMENT,
    ENV_RELEASE,
    ENV_SPOOL_DIR,
    ENV_URL,
    configure,
    flush,
    shutdown,
    stats,
)
from perfmon._core import OperationMetrics, monitor_async_performance, monitor_performance
from perfmon._monitor import PerformanceMonitor, get_performance_monitor
from perfmon._pricing import ModelPrice, estimate_cost, register_model_price
from perfmon._session import ApiCall, PerformanceMetrics, summary_from_payload
from perfmon._version import __version__


def instrument_openai(client: Any = None) -> None:
    """Record the official ``openai`` client's calls (every client, or ``client`` only) as
    API calls of the current session. Imports ``openai`` only now; harmless to repeat."""
    from perfmon.integrations import openai

    openai.instrument(client)


def uninstrument_openai() -> None:
    """Undo ``instrument_openai()`` (nothing to do, and nothing imported, if it never ran)."""
    integration = sys.modules.get("perfmon.integrations.openai")
    if integration is not None:
        integration.uninstrument()


def instrument_anthropic(client: Any = None) -> None:
    """Record the official ``anthropic`` client's calls (every client, or ``client`` only)
    as API calls of the current session. Imports ``anthropic`` only now; harmless to repeat."""
    from perfmon.integrations import anthropic

    anthropic.instrument(client)


def uninstrument_anthropic() -> None:
    """Undo ``instrument_anthropic()`` (nothing to do, and nothing imported, if it never ran)."""
    integration = sys.modules.get("perfmon.integrations.anthropic")
    if integration is not None:
        integration.uninstrument()

__all__ = [
    "ENV_API_KEY",
    "ENV_DISABLED",
    "ENV_ENVIRONMENT",
    "ENV_RELEASE",
    "ENV_SPOOL_DIR",
    "ENV_URL",
    "__version__",
    "ApiCall",
    "ModelPrice",
    "OperationMetrics",
    "PerformanceMetrics",
    "PerformanceMonitor",
    "configure",
    "estimate_cost",
    "flush",
    "get_performance_monitor",
    "instrument_anthropic",
    "instrument_openai",
    "monitor_async_performance",
    "monitor_performance",
    "register_model_price",
    "shutdown",
    "stats",
    "summary_from_payload",
    "uninstrument_anthropic",
    "uninstrument_openai",
]
