from __future__ import annotations

import pytest

from controller.pd.formats import (
    format_duration,
    format_rfc3339,
    format_size,
    parse_duration,
    parse_rfc3339,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("311.7GiB", int(311.7 * (1 << 30))),
        ("1KiB", 1024),
        ("0B", 0),
        ("512B", 512),
        ("1.5TiB", int(1.5 * (1 << 40))),
        ("10MB", 10_000_000),
    ],
)
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


def test_size_round_trip() -> None:
    assert format_size(int(311.7 * (1 << 30))) == "311.7GiB"
    assert format_size(1 << 30) == "1GiB"
    assert format_size(100) == "100B"
    with pytest.raises(ValueError, match="not a PD size"):
        parse_size("lots")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("36m20.48s", 2180.48),
        ("30m0s", 1800.0),
        ("1h0m0s", 3600.0),
        ("1h", 3600.0),
        ("250ms", 0.25),
        ("1.5s", 1.5),
        ("0s", 0.0),
        ("2h45m", 9900.0),
        ("1µs", 1e-6),
    ],
)
def test_parse_go_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_format_go_duration_matches_go() -> None:
    assert format_duration(1800) == "30m0s"
    assert format_duration(3600) == "1h0m0s"
    assert format_duration(2180.48) == "36m20.48s"
    assert format_duration(0.25) == "250ms"
    for bad in ("", "5", "1x", "m5"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_rfc3339_nanoseconds() -> None:
    assert parse_rfc3339("2024-03-01T10:00:00.123456789Z") == pytest.approx(1709287200.123456789)
    assert parse_rfc3339("2024-03-01T18:00:00+08:00") == pytest.approx(1709287200.0)
    ts = 1709287200.5
    assert parse_rfc3339(format_rfc3339(ts)) == pytest.approx(ts)
    with pytest.raises(ValueError):
        parse_rfc3339("yesterday")
