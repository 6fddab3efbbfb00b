"""CSV downloads that a spreadsheet opens as text, streamed so no table sits in memory.

The one CSV writer of the dashboard and the admin. Cells carry names, tags and notes that
come from generators and people, so two guards keep a spreadsheet from running them as
formulas: a text cell that starts like a formula gets a leading apostrophe, and every cell
is quoted, so a locale that splits on ``;`` cannot cut ``x;=1+1`` into a formula cell.
"""

import csv
from collections.abc import Iterable, Iterator, Sequence

from django.http import StreamingHttpResponse

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def safe_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow([safe_cell(name) for name in header])
    for row in rows:
        yield writer.writerow([safe_cell(value) for value in row])


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence]):
    response = StreamingHttpResponse(
        csv_lines(header, rows), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
