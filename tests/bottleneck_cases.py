"""The bottleneck rule as a table of cases, run against both the SDK and the server.

The rule (docs: DESIGN.md, "One bottleneck rule"): an operation name's *self time* is the union
of its operations' intervals minus the union of their children's intervals (parallel pieces
are unioned, so nothing is counted twice); its *share* is that self time divided by the
session's wall time, ``ended_at - started_at``, or for a running session from ``started_at``
to the end of its latest finished operation. A name whose share is above ``THRESHOLD`` is a
bottleneck. Running operations have no self time and are left out.

Plain data on purpose: no imports, so each side builds its own sessions from it.

Each case is a dict:

- ``id``: a name for the test report.
- ``session``: ``(start_s, end_s)``, offsets in seconds from an arbitrary instant;
  ``end_s`` is None for a running session.
- ``operations``: tuples ``(name, id, parent_id, start_s, end_s)``; ``parent_id`` is None for
  a top-level operation, ``end_s`` None for one still running. Offsets in seconds, on the same
  scale as ``session``. Listed in start order (parents before their children).
- ``shares``: ``{name: share}`` for every name with finished operations, share from 0 to 1.
  Compare with a tolerance of 1e-6.
- ``bottlenecks``: names whose share is above ``THRESHOLD``, sorted alphabetically.
"""

THRESHOLD = 0.20

CASES = [
    {
        "id": "ten_second_session_one_second_operation",
        "session": (0.0, 10.0),
        "operations": [
            ("render_scene", "o1", None, 2.0, 3.0),
        ],
        "shares": {"render_scene": 0.10},
        "bottlenecks": [],
    },
    {
        "id": "idle_gaps_between_root_operations",
        "session": (0.0, 10.0),
        "operations": [
            ("outline", "o1", None, 0.0, 1.0),
            ("scene_generation", "o2", None, 4.0, 7.0),
            ("polish", "o3", None, 9.0, 10.0),
        ],
        "shares": {"outline": 0.10, "scene_generation": 0.30, "polish": 0.10},
        "bottlenecks": ["scene_generation"],
    },
    {
        "id": "parallel_children_are_unioned",
        "session": (0.0, 10.0),
        "operations": [
            ("scene_generation", "o1", None, 0.0, 4.0),
            ("llm_call", "o2", "o1", 1.0, 3.0),
            ("llm_call", "o3", "o1", 2.0, 4.0),
        ],
        # llm_call covers 1..4 (3 s, not 4); the scene keeps 0..1 to itself.
        "shares": {"scene_generation": 0.10, "llm_call": 0.30},
        "bottlenecks": ["llm_call"],
    },
    {
        "id": "nested_self_time",
        "session": (0.0, 10.0),
        "operations": [
            ("episode", "o1", None, 0.0, 10.0),
            ("scene_generation", "o2", "o1", 1.0, 8.0),
            ("llm_call", "o3", "o2", 2.0, 3.5),
        ],
        # episode 10 - 7 = 3 s; scene 7 - 1.5 = 5.5 s; llm 1.5 s
        "shares": {"episode": 0.30, "scene_generation": 0.55, "llm_call": 0.15},
        "bottlenecks": ["episode", "scene_generation"],
    },
    {
        "id": "same_name_in_parallel_at_the_top",
        "session": (0.0, 10.0),
        "operations": [
            ("llm_call", "o1", None, 0.0, 2.0),
            ("llm_call", "o2", None, 1.0, 3.0),
        ],
        "shares": {"llm_call": 0.30},
        "bottlenecks": ["llm_call"],
    },
    {
        "id": "running_session_ends_at_its_latest_finished_operation",
        "session": (0.0, None),
        "operations": [
            ("outline", "o1", None, 0.0, 1.0),
            ("scene_generation", "o2", None, 1.0, 4.0),
            ("polish", "o3", None, 4.0, None),  # still running: no self time yet
        ],
        # wall time 0..4 s
        "shares": {"outline": 0.25, "scene_generation": 0.75},
        "bottlenecks": ["outline", "scene_generation"],
    },
    {
        "id": "running_session_with_a_running_parent",
        "session": (0.0, None),
        "operations": [
            ("episode", "o1", None, 0.0, None),
            ("scene_generation", "o2", "o1", 0.5, 2.5),
            ("scene_generation", "o3", "o1", 3.0, 4.0),
            ("joke_analysis", "o4", "o1", 6.0, 8.0),
        ],
        # wall time 0..8 s; the running episode is left out
        "shares": {"scene_generation": 0.375, "joke_analysis": 0.25},
        "bottlenecks": ["joke_analysis", "scene_generation"],
    },
]
