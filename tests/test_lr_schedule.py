"""--lr-schedule: DeepLab's poly decay, and warm-up then cosine decay."""

import keras
import pytest

import deeplabv3_plus as dl


def schedule_of(kind):
    """The learning rate over 100 steps from 0.01, read from the optimizer's config."""
    config = dl.make_optimizer(0.01, kind, total_steps=100).get_config()
    return keras.optimizers.schedules.deserialize(config["learning_rate"])


def test_poly_schedule_decays_to_zero_with_power_0_9():
    schedule = schedule_of("poly")
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(50)) == pytest.approx(0.01 * 0.5**0.9)
    assert float(schedule(100)) == pytest.approx(0.0)


def test_cosine_schedule_warms_up_over_a_tenth_then_decays_to_zero():
    schedule = schedule_of("cosine")
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(5)) == pytest.approx(0.005)  # halfway up the warm-up
    assert float(schedule(10)) == pytest.approx(0.01)
    assert float(schedule(55)) == pytest.approx(0.005)  # halfway down the cosine
    assert float(schedule(100)) == pytest.approx(0.0, abs=1e-9)
