"""The API's JSON parser: the standard one, minus the NaN/Infinity extension.

Python's json accepts NaN and Infinity, which are not JSON, cannot be stored in a
PostgreSQL jsonb column and mean nothing as a duration; they are refused as malformed.
"""

import json
from typing import Any

from django.http import HttpRequest
from ninja.parser import Parser


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


class StrictJsonParser(Parser):
    def parse_body(self, request: HttpRequest) -> Any:
        # RecursionError (absurdly deep nesting) and UnicodeDecodeError end up as a 400
        # too: ninja turns any exception raised here into "Cannot parse request body".
        return json.loads(request.body, parse_constant=_refuse_constant)
