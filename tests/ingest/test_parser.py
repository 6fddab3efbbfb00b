"""How deep a body may nest does not depend on how deep the request's stack is."""

import pytest

from ingest.parser import MAX_BODY_NESTING, parse_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def parse_from_a_stack_of(frames: int, body: bytes):
    if frames == 0:
        return parse_json(body)
    return parse_from_a_stack_of(frames - 1, body)


@pytest.mark.parametrize("frames", [0, 400, 800])
def test_a_body_nested_to_the_limit_parses_however_deep_the_caller_is(frames):
    value = parse_from_a_stack_of(frames, nested(MAX_BODY_NESTING))

    depth = 0
    while value:
        value, depth = value[0], depth + 1
    assert depth == MAX_BODY_NESTING - 1  # the innermost list is empty


def test_a_body_nested_past_the_limit_is_refused_and_the_limit_restored():
    import sys
    before = sys.getrecursionlimit()

    with pytest.raises(ValueError, match=f"nested deeper than {MAX_BODY_NESTING} levels"):
        parse_json(nested(MAX_BODY_NESTING + 100))
    assert sys.getrecursionlimit() == before


def test_nan_is_not_json():
    with pytest.raises(ValueError, match="NaN is not valid JSON"):
        parse_json(b'{"latency_s": NaN}')
