"""Counts in messages read as English."""

from sora3r.text import plural


def test_plural():
    assert [plural(n, "frame") for n in (0, 1, 2)] == ["0 frames", "1 frame", "2 frames"]
    assert plural(1, "sequence") == "1 sequence" and plural(3, "index", "indices") == "3 indices"
