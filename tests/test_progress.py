"""The progress contract's pure parts: percentages and the time-remaining estimate."""

import pytest

from expense_sync.progress import build_state, percentage, time_remaining


@pytest.mark.parametrize("processed, total, status, expected", [
    (0, 0, "running", 0), (0, 0, "completed", 100), (450, 1000, "running", 45),
    (999, 1000, "running", 99), (1000, 1000, "running", 100), (1200, 1000, "running", 100),
])
def test_percentage_never_passes_100(processed, total, status, expected):
    assert percentage(processed, total, status) == expected


def test_time_remaining_weights_recent_rate_over_overall():
    now = 10_000.0
    started = now - 600  # 600 emails in 10 min overall: 1 email/s
    # In the last five minutes 1,500 emails: 5 emails/s recently.
    samples = [f"1:{now - 300 + i * 30}:150" for i in range(10)]
    remaining = time_remaining(600, 600 + 3_800, started, samples, now=now)
    rate = 0.7 * (1500 / 300) + 0.3 * (600 / 600)
    assert remaining == round(3_800 / rate)


def test_time_remaining_unknown_before_progress_and_zero_at_the_end():
    assert time_remaining(0, 100, 1.0, [], now=50.0) is None
    assert time_remaining(100, 100, 1.0, [], now=50.0) == 0
    assert time_remaining(50, 100, 0.0, [], now=50.0) is None


def test_state_adds_accounts_and_estimates_only_while_running():
    accounts = [
        {"processed_emails": 150, "total_emails": 150, "detected_expenses": 120,
         "error_count": 1},
        {"processed_emails": 300, "total_emails": 650, "detected_expenses": 250,
         "error_count": 0},
        {"processed_emails": 0, "total_emails": 200, "detected_expenses": 0, "error_count": 0},
    ]
    state = build_state("running", accounts, started_at_ms=1_000, now=61.0)
    assert (state["processed_emails"], state["total_emails"], state["progress_percentage"]) == (
        450, 1000, 45)
    assert (state["detected_expenses"], state["error_count"]) == (370, 1)
    assert state["time_remaining_seconds"] == round(550 / (450 / 60))
    assert build_state("paused", accounts, started_at_ms=1_000)["time_remaining_seconds"] is None
