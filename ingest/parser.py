"""The API's JSON parser: the standard one, minus the NaN/Infinity extension.

Python's json accepts NaN and Infinity, which are not JSON, cannot be stored in a
PostgreSQL jsonb column and mean nothing as a duration; they are refused as malformed.

Nesting: json's decoder recurses and shares the interpreter's recursion limit with
whoever called it, so whether a body nested 900 deep parses would depend on how deep the
request's stack happens to be. A body the first attempt cannot parse for depth is parsed
again with room for exactly ``MAX_BODY_NESTING`` levels above the current stack: up to that
depth every body parses the same way (and validation then refuses the nested value with
its field path, so a batch refuses only that item); deeper bodies are a 400.
"""

import json
import sys
import threading
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser

MAX_BODY_NESTING = 1000
_STACK_MARGIN = 50  # frames of the parser itself and the json module's Python wrappers
_limit_lock = threading.Lock()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _stack_depth() -> int:
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    return depth


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse_constant)
    except RecursionError:
        pass
    # Raising the limit is process-wide but only ever upwards while the lock is held, so a
    # thread running meanwhile can only gain room; the old limit comes back afterwards.
    with _limit_lock:
        previous = sys.getrecursionlimit()
        sys.setrecursionlimit(max(previous, _stack_depth() + MAX_BODY_NESTING + _STACK_MARGIN))
        try:
            return json.loads(body, parse_constant=_refuse_constant)
        except RecursionError:
            raise ValueError(f"nested deeper than {MAX_BODY_NESTING} levels") from None
        finally:
            sys.setrecursionlimit(previous)


class StrictJsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        # Any exception raised here (too deep, not UTF-8, not JSON) becomes ninja's 400
        # "Cannot parse request body".
        return parse_json(request.body)
