"""The flat-metadata shortcuts: the size bound (ingest.bounds.flat_json_size_bound) never
under-counts and declines whatever the full walk must judge; the writer
(ingest.bulk.metadata_json) writes what json.dumps writes."""

import json
import random
import sys

import pytest

from ingest.bounds import flat_json_size_bound
from ingest.bulk import metadata_json

WORST_CHARS = ["\x01", "\x1f", '"', "\\", "\n", "é", "€", "\U0001f600", "a"]
SCALARS = [0, -1, 2**53, -(2**200), 10**300, sys.float_info.max, -sys.float_info.min,
           -2.2250738585072014e-308, 0.1, True, False, None, ""]


def test_the_bound_is_never_below_the_serialised_size():
    rng = random.Random(17)
    for _ in range(2000):
        mapping = {}
        for _ in range(rng.randint(0, 12)):
            key = "".join(rng.choices(WORST_CHARS, k=rng.randint(0, 20)))
            value = rng.choice([
                rng.choice(SCALARS),
                "".join(rng.choices(WORST_CHARS, k=rng.randint(0, 50))),
                rng.randint(-(2**400), 2**400),
                rng.uniform(-1e308, 1e308),
            ])
            mapping[key] = value
        assert metadata_json(mapping) == json.dumps(mapping)
        bound = flat_json_size_bound(mapping)
        assert bound is not None
        assert bound >= len(json.dumps(mapping, ensure_ascii=False).encode())


@pytest.mark.parametrize("mapping", [
    {"a": {"nested": 1}}, {"a": [1]}, {"a": "nul\x00"}, {"nul\x00": 1}, {"a": "\ud800"},
])
def test_nested_or_unstorable_values_go_to_the_full_walk(mapping):
    assert flat_json_size_bound(mapping) is None


@pytest.mark.parametrize("mapping", [
    {}, {"a": {"nested": [1, {"b": None}]}}, {"a": float("nan")}, {"a": float("-inf")},
    {1: "int key"}, {"x": 1.5, "y": True, "z": None, "é": "\u2028"},
])
def test_metadata_is_written_as_json_dumps_writes_it(mapping):
    assert metadata_json(mapping) == json.dumps(mapping)


@pytest.mark.parametrize("limits", [{"max_length": 64, "min_length": 1}, {"max_length": 3}])
def test_bounded_text_checks_and_documents_what_the_constraints_spelled_out_do(limits):
    from typing import Annotated

    from pydantic import StringConstraints, TypeAdapter, ValidationError

    from ingest.schemas import Text, bounded_text

    fast = TypeAdapter(bounded_text(**limits))
    spelled_out = TypeAdapter(Annotated[Text, StringConstraints(**limits)])
    assert fast.json_schema() == spelled_out.json_schema()
    for value in ["", "ok", "x" * 65, "\x00", "\x00" * 65, "\ud800", 5, None, "é" * 4]:
        outcomes = []
        for adapter in (fast, spelled_out):
            try:
                outcomes.append(adapter.validate_python(value))
            except ValidationError as exc:
                outcomes.append(exc.errors(include_url=False))
        assert _comparable(outcomes[0]) == _comparable(outcomes[1]), value


def _comparable(outcome):
    """Errors with their context's exception (equal only to itself) as its text."""
    if not isinstance(outcome, list):
        return outcome
    return [
        {**error, "ctx": {k: str(v) for k, v in error["ctx"].items()}} if "ctx" in error
        else error
        for error in outcome
    ]
