"""Attribute names the receiver reads, in order of preference, per convention.

Sources: the OpenTelemetry GenAI semantic conventions (current names and the older ones
they replaced), OpenLLMetry (Traceloop's instrumentations: ``gen_ai.usage.prompt_tokens``,
``llm.usage.*``) and OpenInference (Arize: ``llm.token_count.*``, ``llm.model_name``).
"""

SESSION_ID = ("perfmon.session.id", "session.id", "gen_ai.conversation.id")
EPISODE = ("perfmon.episode",)
WORKFLOW = ("perfmon.workflow", "service.name")
RELEASE = ("service.version",)
ENVIRONMENT = ("deployment.environment.name", "deployment.environment")
HOST = ("host.name",)
SESSION_FIELDS = {*SESSION_ID, *EPISODE, *WORKFLOW, *RELEASE, *ENVIRONMENT, *HOST}

PROVIDER = ("gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system")
MODEL = (
    "gen_ai.response.model", "gen_ai.request.model",
    "llm.response.model_name", "llm.model_name", "llm.request.model_name",
    "embedding.model_name",
)
INPUT_TOKENS = (
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.usage.prompt_tokens",
    "llm.token_count.prompt",
)
OUTPUT_TOKENS = (
    "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens",
    "llm.usage.completion_tokens", "llm.token_count.completion",
)
TOTAL_TOKENS = ("gen_ai.usage.total_tokens", "llm.usage.total_tokens", "llm.token_count.total")
CACHE_READ_TOKENS = (
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "llm.usage.cache_read_input_tokens", "llm.token_count.prompt_details.cache_read",
    "llm.token_count.prompt_details.cache_input",
)
CACHE_WRITE_TOKENS = (
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "gen_ai.usage.cache_write_input_tokens", "llm.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
)
CACHE_WRITE_1H_TOKENS = ("perfmon.usage.cache_write_1h_tokens",)
REASONING_TOKENS = (
    "gen_ai.usage.reasoning.output_tokens", "gen_ai.usage.reasoning_tokens",
    "llm.usage.reasoning_tokens", "llm.token_count.completion_details.reasoning",
)
COST_USD = ("perfmon.cost_usd", "gen_ai.usage.cost", "llm.cost.total")
STREAMED = ("gen_ai.is_streaming", "llm.is_streaming")
TOKEN_GROUPS = (
    INPUT_TOKENS, OUTPUT_TOKENS, TOTAL_TOKENS, CACHE_READ_TOKENS, CACHE_WRITE_TOKENS,
    CACHE_WRITE_1H_TOKENS, REASONING_TOKENS,
)
# Any of these makes a span a model call (unless its kind or its children say otherwise).
GENAI_MARKERS = frozenset(
    {*PROVIDER, *MODEL, *COST_USD}.union(*TOKEN_GROUPS)
)

# Span kinds that group work instead of calling a model: operations, never calls.
NOT_A_CALL = {
    "gen_ai.operation.name": {"invoke_agent", "create_agent", "execute_tool", "invoke_workflow"},
    "traceloop.span.kind": {"workflow", "task", "agent", "tool"},
    "openinference.span.kind": {
        "CHAIN", "AGENT", "TOOL", "RETRIEVER", "RERANKER", "GUARDRAIL", "EVALUATOR",
    },
}

# Prompt and completion content: never stored (perfmon keeps a prompt's digest at most),
# reported as ignored.
CONTENT_PREFIXES = (
    "gen_ai.prompt", "gen_ai.completion", "gen_ai.input.messages", "gen_ai.output.messages",
    "gen_ai.system_instructions", "gen_ai.tool.definitions", "gen_ai.tool.call.arguments",
    "gen_ai.tool.call.result", "llm.input_messages", "llm.output_messages", "llm.prompts",
    "llm.choices", "llm.tools", "llm.prompt_template", "llm.request.functions",
    "input.value", "output.value", "traceloop.entity.input", "traceloop.entity.output",
    "embedding.embeddings", "retrieval.documents",
)

CONSUMED = frozenset(SESSION_FIELDS | GENAI_MARKERS | set(STREAMED) | set(NOT_A_CALL))
