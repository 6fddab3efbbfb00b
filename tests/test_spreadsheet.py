"""The one CSV writer of the dashboard and the admin: what a spreadsheet opens stays text."""

import csv
import io

import pytest

from metrics.spreadsheet import csv_response


def opened(response, delimiter: str = ",") -> list[list[str]]:
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body), delimiter=delimiter))


@pytest.mark.parametrize("text", ["=1+1", "+1", "-1+2", "@SUM(A1)", "\t=1", "\r=1", "\n=1"])
def test_a_cell_that_starts_like_a_formula_gets_an_apostrophe(text):
    rows = opened(csv_response("t.csv", ["name"], [[text]]))

    assert rows[1] == ["'" + text]


def test_numbers_stay_numbers_and_none_is_empty():
    rows = opened(csv_response("t.csv", ["a", "b", "c"], [[-1.5, 3, None]]))

    assert rows[1] == ["-1.5", "3", ""]


def test_a_semicolon_locale_cannot_split_a_cell_into_a_formula():
    response = csv_response("t.csv", ["name", "n"], [["x;=1+1", 2]])
    body = b"".join(response.streaming_content).decode()

    # Every cell is quoted, so a reader splitting on ";" keeps "x;=1+1" whole.
    assert body.splitlines()[1] == '"x;=1+1","2"'
    assert opened(csv_response("t.csv", ["name"], [["x;=1+1"]]), delimiter=";")[1] == [
        "x;=1+1"
    ]


def test_the_download_is_named_and_typed():
    response = csv_response("sessions.csv", ["a"], [])

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="sessions.csv"'
