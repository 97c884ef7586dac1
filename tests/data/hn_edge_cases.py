"""Edge-case rows loaded into the test PostgreSQL next to the shipped sample (see conftest.py)."""

from datetime import datetime

EDGE_BASE = 900_000_000
T0 = datetime(2016, 10, 1, 12, 0, 0)  # after every dated sample story

# (id offset, row, kept by `upvote data pull`?)
EDGE_ROWS = [
    (1, {"type": "story", "title": None, "by": "a", "time": T0, "score": 5}, False),
    (2, {"type": "story", "title": "", "by": "a", "time": T0, "score": 5}, False),
    (3, {"type": "story", "title": "   ", "by": "a", "time": T0, "score": 5}, False),
    (4, {"type": "story", "title": "Minus one", "by": "b", "time": T0, "score": -1}, False),
    (5, {"type": "story", "title": "Dead story", "by": "b", "time": T0, "dead": True}, False),
    (6, {"type": "story", "title": "Live, dead=false", "by": "c", "time": T0, "dead": False}, True),
    (7, {"type": "story", "title": "Live, dead NULL", "by": "c", "time": T0, "score": 3}, True),
    (8, {"type": "comment", "title": "A comment", "by": "d", "time": T0, "text": "hi"}, False),
    (9, {"type": "story", "title": "Ask HN: Q&amp;A on &lt;code&gt;", "by": "e", "time": T0}, True),
    (10, {"type": "story", "title": "No time at all", "by": "e", "time": None, "score": 7}, True),
    (11, {"type": "story", "title": "Same title twice", "by": "f", "time": T0, "score": 1}, True),
    (12, {"type": "story", "title": "Same title twice", "by": "f", "time": T0, "score": 1}, True),
]
