"""CLI faults found by the hostile try (item 12.8): each a clear one-line message and the right exit code."""

import pytest
from test_cli import assert_clean_error, run


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_doctor_vram_that_is_not_a_finite_size_is_one_line_exit_2(value):
    p = run("doctor", "--preset", "smoke", f"--vram={value}")
    assert_clean_error(p, "--vram", "must be a positive card size in GiB", code=2)
    assert len(p.stderr.strip().splitlines()) <= 2
