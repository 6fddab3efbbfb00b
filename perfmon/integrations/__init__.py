"""Auto-instrumentation of the official LLM clients.

``perfmon.instrument_openai()`` and ``perfmon.instrument_anthropic()`` import these modules
(and so the client packages) only when called; ``import perfmon`` never imports a client.
"""
