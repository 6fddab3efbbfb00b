"""A session of tens of thousands of operations: its CSV and summary.txt stream."""

import pytest

from tests.ingest.test_session_paging import CALLS, OPERATIONS, huge  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.mark.usefixtures("huge")
def test_the_operations_csv_and_the_summary_stream(viewer):
    csv = viewer.get("/sessions/huge/?export=csv")
    assert csv.streaming
    lines = b"".join(csv.streaming_content).decode().splitlines()
    assert len(lines) == 1 + OPERATIONS and lines[0].startswith('"id","parent_id","name"')

    summary = viewer.get("/sessions/huge/summary.txt")
    assert summary.streaming
    text = b"".join(summary.streaming_content).decode()
    assert "Performance Summary (Session: huge)" in text
    assert f"Operations: {OPERATIONS:,}" in text
    # 2,500 calls x 183 millionths of a dollar (gpt-4o-mini: 700 x $0.15 + 130 x $0.60 / M)
    assert f"Calls: {CALLS:,} (Errors: 0)" in text and "Est. Cost: $0.4575" in text
