"""Detectors for LLM-pipeline performance problems in one session's rows.

Each detector is a pure function over plain records and returns drafts with the evidence
a producer needs to act on them; analysis stores them as Finding rows.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from metrics.analysis.operation_stats import NameStat
from metrics.models import Finding

MAX_IDS_IN_EVIDENCE = 20


@dataclass(frozen=True, slots=True)
class CallRecord:
    id: str
    operation_id: str | None
    provider: str
    model: str
    at: datetime | None
    latency_s: float | None
    prompt_hash: str | None
    error: bool
    total_tokens: int
    cost_usd: Decimal | None
    cost_source: str


@dataclass(frozen=True)
class FindingDraft:
    kind: str
    subject: str
    summary: str
    evidence: dict = field(default_factory=dict)
    impact_s: float | None = None
    impact_usd: Decimal | None = None


def repeated_prompts(calls: Iterable[CallRecord], *, min_repeats: int) -> list[FindingDraft]:
    """The same prompt sent ``min_repeats`` times or more: a cache that should have hit."""
    by_hash: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        if call.prompt_hash and not call.error:
            by_hash[call.prompt_hash].append(call)
    drafts = []
    for prompt_hash, sent in sorted(by_hash.items()):
        if len(sent) < min_repeats:
            continue
        repeats = sent[1:]  # the first one had to be sent
        drafts.append(FindingDraft(
            kind=Finding.Kind.REPEATED_PROMPT,
            subject=prompt_hash,
            summary=f"The same prompt was sent {len(sent)} times",
            evidence={
                "prompt_hash": prompt_hash,
                "times_sent": len(sent),
                "models": sorted({c.model for c in sent}),
                "call_ids": [c.id for c in sent][:MAX_IDS_IN_EVIDENCE],
                "repeated_tokens": sum(c.total_tokens for c in repeats),
            },
            impact_s=sum(c.latency_s or 0.0 for c in repeats),
            impact_usd=_sum_cost(repeats),
        ))
    return drafts


def sequential_calls(
    calls: Iterable[CallRecord], operation_names: dict[str, str], *, min_calls: int
) -> list[FindingDraft]:
    """Operations that made ``min_calls`` or more model calls strictly one after another.

    Reported per operation name: how many operations did it, and the time that running
    each operation's calls side by side would have saved (all but the longest call).
    """
    by_operation: dict[str, list[CallRecord]] = defaultdict(list)
    for call in calls:
        if call.operation_id and call.at is not None and call.latency_s is not None:
            by_operation[call.operation_id].append(call)
    by_name: dict[str, dict] = {}
    for operation_id, made in by_operation.items():
        if len(made) < min_calls or not _one_after_another(made):
            continue
        name = operation_names.get(operation_id, operation_id)
        entry = by_name.setdefault(
            name, {"operations": 0, "calls": 0, "latency_s": 0.0, "saving_s": 0.0, "ids": []}
        )
        latencies = [c.latency_s for c in made]
        entry["operations"] += 1
        entry["calls"] += len(made)
        entry["latency_s"] += sum(latencies)
        entry["saving_s"] += sum(latencies) - max(latencies)
        entry["ids"].append(operation_id)
    return [
        FindingDraft(
            kind=Finding.Kind.SEQUENTIAL_CALLS,
            subject=name,
            summary=(
                f"{entry['operations']} × {name} made {entry['calls']} model calls one after "
                f"another; in parallel they could save {entry['saving_s']:.1f}s"
            ),
            evidence={
                "operations": entry["operations"],
                "calls": entry["calls"],
                "sequential_latency_s": round(entry["latency_s"], 3),
                "operation_ids": entry["ids"][:MAX_IDS_IN_EVIDENCE],
            },
            impact_s=entry["saving_s"],
        )
        for name, entry in sorted(by_name.items())
    ]


def _one_after_another(calls: Sequence[CallRecord]) -> bool:
    ordered = sorted(calls, key=lambda c: c.at)
    for previous, current in zip(ordered, ordered[1:], strict=False):
        previous_end = previous.at.timestamp() + previous.latency_s
        if current.at.timestamp() < previous_end - 1e-6:
            return False
    return True


def retry_bursts(
    calls: Iterable[CallRecord], *, min_failures: int, window_s: float
) -> list[FindingDraft]:
    """``min_failures`` or more failed calls to one model within ``window_s`` of the first
    of them, then a success: the generator retried through an outage or a rate limit.

    The burst is made of the failures alone. Calls made side by side that succeed in the
    middle of it (another scene's call got through) neither end nor split it, so the
    finding does not depend on how parallel calls happened to interleave."""
    by_model: dict[tuple[str, str], list[CallRecord]] = defaultdict(list)
    for call in calls:
        if call.at is not None:
            by_model[(call.provider, call.model)].append(call)
    drafts = []
    for (provider, model), made in sorted(by_model.items()):
        made.sort(key=lambda c: c.at)
        successes = [c for c in made if not c.error]
        for burst in _failure_windows([c for c in made if c.error], window_s):
            recovered_by = next((c for c in successes if c.at > burst[-1].at), None)
            if len(burst) >= min_failures and recovered_by is not None:
                drafts.append(_burst_draft(provider, model, burst, recovered_by=recovered_by))
    return drafts


def _failure_windows(failures: list[CallRecord], window_s: float) -> list[list[CallRecord]]:
    """Failures in time order, cut into groups that each span at most ``window_s``."""
    windows: list[list[CallRecord]] = []
    for failure in failures:
        if windows and (failure.at - windows[-1][0].at).total_seconds() <= window_s:
            windows[-1].append(failure)
        else:
            windows.append([failure])
    return windows


def _burst_draft(
    provider: str, model: str, burst: list[CallRecord], *, recovered_by: CallRecord
) -> FindingDraft:
    span = (recovered_by.at - burst[0].at).total_seconds()
    return FindingDraft(
        kind=Finding.Kind.RETRY_BURST,
        subject=f"{provider}/{model}".strip("/"),
        summary=(
            f"{len(burst)} failed calls to {model or 'a model'} in {span:.1f}s "
            "before one succeeded"
        ),
        evidence={
            "failures": len(burst),
            "first_failure_at": burst[0].at.isoformat(),
            "recovered_at": recovered_by.at.isoformat(),
            "failed_call_ids": [c.id for c in burst][:MAX_IDS_IN_EVIDENCE],
            "recovered_call_id": recovered_by.id,
        },
        impact_s=span,
        impact_usd=_sum_cost(burst),
    )


def low_cache_operations(
    stats: Iterable[NameStat], *, session_hit_rate: float | None, ratio: float, min_lookups: int
) -> list[FindingDraft]:
    """Operation names whose cache hit rate is below ``ratio`` × the session's."""
    if not session_hit_rate:
        return []
    drafts = []
    for stat in stats:
        lookups = stat.cache_hits + stat.cache_misses
        if lookups < min_lookups:
            continue
        rate = stat.cache_hits / lookups
        if rate < session_hit_rate * ratio:
            drafts.append(FindingDraft(
                kind=Finding.Kind.LOW_CACHE_OPERATION,
                subject=stat.name,
                summary=(f"{stat.name} hits the cache {rate:.0%} of the time, against "
                         f"{session_hit_rate:.0%} for the whole session"),
                evidence={"hits": stat.cache_hits, "misses": stat.cache_misses,
                          "hit_rate": round(rate, 4),
                          "session_hit_rate": round(session_hit_rate, 4)},
            ))
    return drafts


def unpriced_calls(calls: Iterable[CallRecord]) -> list[FindingDraft]:
    """Calls that could not be priced: their cost is unknown, not zero."""
    by_model: dict[str, int] = defaultdict(int)
    for call in calls:
        if call.cost_source == "unpriced":
            by_model[f"{call.provider}/{call.model}".strip("/") or "(no model)"] += 1
    if not by_model:
        return []
    total = sum(by_model.values())
    return [FindingDraft(
        kind=Finding.Kind.UNPRICED_CALLS,
        subject=", ".join(sorted(by_model)),
        summary=f"{total} calls have no price: add a model price to count their cost",
        evidence={"calls_by_model": dict(sorted(by_model.items()))},
    )]


def _sum_cost(calls: Iterable[CallRecord]) -> Decimal | None:
    costs = [c.cost_usd for c in calls if c.cost_usd is not None]
    return sum(costs, Decimal(0)) if costs else None
