"""The garbage collector's settings for a web process, applied once the app is loaded.

An ingest request allocates tens of thousands of objects that all survive until it ends
(the parsed body, its validated models, the rows). With CPython's default thresholds they
set off collection after collection, each older generation's walking every object the
process holds, Django's and the app's included: a few milliseconds of each request (see
docs/scaling.md, "Where ingest time goes"). So, after loading:

- ``gc.freeze()`` moves everything loaded so far (modules, settings, URL patterns, the
  app's schemas) to the permanent generation, which no collection walks again;
- the youngest generation collects every ``GEN0_THRESHOLD`` net allocations instead of
  every 700, so one request's body costs a few collections, not hundreds.

Objects still die by reference counting as before; only cycles wait a little longer.
"""

import gc

GEN0_THRESHOLD = 50_000
OLDER_THRESHOLDS = (20, 10)


def tune_for_serving() -> None:
    gc.collect()  # what is garbage now is not frozen with the rest
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, *OLDER_THRESHOLDS)
