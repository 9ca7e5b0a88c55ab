"""The DeepLabV3+ model: size, parameters, and two exact rewrites of keras-io's; its
compiling, and the --lr-schedule of its optimizer."""

import keras
import numpy as np
import pytest

import deeplabv3_plus as dl
from benchmarks import keras_io_original


def test_model_has_the_tutorials_parameter_count_at_512():
    model = dl.DeeplabV3Plus(512, 20)
    assert model.count_params() == 11_857_236
    assert model.output_shape == (None, 512, 512, 20)


def test_batchnorm_trained_from_scratch_follows_the_weights_at_momentum_0_9(tiny_run):
    model = keras.saving.load_model(tiny_run / "model.keras")  # --weights none
    norm = keras.layers.BatchNormalization
    momenta = [layer.momentum for layer in model.layers if isinstance(layer, norm)]
    assert momenta and set(momenta) == {0.9}  # the backbone's and the head's


def test_keras_io_weights_load_and_both_rewrites_give_the_same_logits(tmp_path):
    keras.utils.set_random_seed(0)
    original = keras_io_original.DeeplabV3Plus(64, 20, backbone_weights=None)
    original.save_weights(tmp_path / "keras_io.weights.h5")
    tutorial = dl.DeeplabV3Plus(64, 20)
    tutorial.load_weights(tmp_path / "keras_io.weights.h5")
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = np.asarray(original.predict_on_batch(images))
    found = np.asarray(tutorial.predict_on_batch(images))
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(found, expected, atol=1e-4)


def test_logits_stay_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = dl.DeeplabV3Plus(64, 20)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.layers[-1].compute_dtype == "float32"
    assert str(model.output.dtype).endswith("float32")
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)


def block_convolution(input_shape, rate):
    """The Conv2D layer that convolution_block builds for this input and rate."""
    inputs = keras.Input(input_shape)
    outputs = dl.convolution_block(inputs, num_filters=5, dilation_rate=rate)
    model = keras.Model(inputs, outputs)
    (conv,) = [lay for lay in model.layers if isinstance(lay, keras.layers.Conv2D)]
    return conv


@pytest.mark.parametrize(
    "rate, clamped", [(2, (2, 2)), (5, (4, 5)), (6, (4, 6)), (12, (4, 6))]
)
def test_dilation_is_clamped_to_a_small_feature_map_without_changing_the_output(
    rate, clamped
):
    inputs = np.random.default_rng(1).normal(size=(2, 4, 6, 8)).astype("float32")
    conv = block_convolution(inputs.shape[1:], rate)
    assert conv.dilation_rate == clamped  # on each axis
    plain = keras.layers.Conv2D(
        5, 3, dilation_rate=rate, padding="same", use_bias=False
    )
    plain.build(inputs.shape)
    kernel = np.random.default_rng(rate).normal(size=(3, 3, 8, 5))
    conv.set_weights([kernel]), plain.set_weights([kernel])
    np.testing.assert_allclose(conv(inputs), plain(inputs), rtol=1e-5, atol=1e-5)


def test_compile_model_builds_adam_so_the_training_step_is_traced_once():
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    dl.compile_model(model, keras.optimizers.Adam(), 3)
    traced, train_step = [], model.train_step
    model.train_step = lambda data: traced.append(data) or train_step(data)
    model.fit(np.ones((4, 4), "float32"), np.zeros(4, "int32"), epochs=1, verbose=0)
    assert len(traced) == 1  # tf.function traces it again if it creates variables


@pytest.mark.parametrize(
    "kind, rates",  # the learning rate at these of 100 steps from 0.01
    [
        ("poly", {0: 0.01, 50: 0.01 * 0.5**0.9, 100: 0.0}),  # power 0.9
        # Warm-up over a tenth (5: halfway up), then a cosine (55: halfway down).
        ("cosine", {0: 0.0, 5: 0.005, 10: 0.01, 55: 0.005, 100: 0.0}),
    ],
)
def test_each_lr_schedule_follows_its_curve_down_to_zero(kind, rates):
    config = dl.make_optimizer(0.01, kind, total_steps=100).get_config()
    schedule = keras.optimizers.schedules.deserialize(config["learning_rate"])
    for step, rate in rates.items():
        assert float(schedule(step)) == pytest.approx(rate, abs=1e-9), (kind, step)
