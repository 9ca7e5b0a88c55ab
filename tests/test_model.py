"""The DeepLabV3+ model: size, parameters and the exact classifier rewrite."""

import keras
import numpy as np

import deeplabv3_plus as dl


def test_model_has_the_tutorials_parameter_count_at_512():
    model = dl.DeeplabV3Plus(512, 20)
    assert model.count_params() == 11_857_236
    assert model.output_shape == (None, 512, 512, 20)


def test_classifying_before_upsampling_gives_the_same_logits():
    keras.utils.set_random_seed(0)
    original = dl.DeeplabV3Plus(64, 20, classify_then_upsample=False)
    rewritten = dl.DeeplabV3Plus(64, 20, classify_then_upsample=True)
    rewritten.set_weights(original.get_weights())
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    expected = np.asarray(original.predict_on_batch(images))
    found = np.asarray(rewritten.predict_on_batch(images))
    assert np.abs(expected).max() > 0.1  # the comparison is not between zeros
    np.testing.assert_allclose(found, expected, rtol=1e-4, atol=1e-4)


def test_logits_stay_float32_under_mixed_precision():
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = dl.DeeplabV3Plus(64, 20)
    finally:
        keras.config.set_dtype_policy("float32")
    assert model.layers[-1].compute_dtype == "float32"
    assert str(model.output.dtype).endswith("float32")
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)


def test_atrous_convolution_equals_keras_conv2d_when_dilation_exceeds_the_map():
    inputs = np.random.default_rng(1).normal(size=(2, 4, 4, 8)).astype("float32")
    for rate in [2, 4, 6]:  # smaller than, equal to and larger than the 4x4 map
        plain = keras.layers.Conv2D(5, 3, dilation_rate=rate, padding="same")
        atrous = dl.AtrousConv2D(5, 3, dilation_rate=rate, padding="same")
        plain.build(inputs.shape), atrous.build(inputs.shape)
        weights = [
            np.random.default_rng(rate).normal(size=w.shape)
            for w in plain.get_weights()
        ]
        plain.set_weights(weights), atrous.set_weights(weights)
        np.testing.assert_allclose(atrous(inputs), plain(inputs), rtol=1e-5, atol=1e-5)
