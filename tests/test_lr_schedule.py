"""--lr-schedule: DeepLab's poly decay, and warm-up then cosine decay."""

import pytest

import deeplabv3_plus as dl
from conftest import schedule_of


def test_poly_schedule_decays_to_zero_with_power_0_9():
    optimizer = dl.make_optimizer(0.01, "poly", total_steps=100)
    schedule = schedule_of(optimizer)
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9)
    assert float(schedule(100)) == pytest.approx(0.0)


def test_cosine_schedule_warms_up_over_a_tenth_then_decays_to_zero():
    schedule = schedule_of(dl.make_optimizer(0.01, "cosine", total_steps=100))
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.005)  # halfway up the warm-up
    assert float(schedule(10)) == pytest.approx(0.01)
    assert float(schedule(55)) == pytest.approx(0.005)  # halfway down the cosine
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
