"""Precision for the hardware: bfloat16 where it is native, float16 on older GPUs."""

from types import SimpleNamespace

import keras
import pytest

from deeplab_support import devices

# (device kind, compute capability) -> what --precision auto picks
CASES = [
    ("cpu", None, "float32"),
    ("gpu", (7, 5), "mixed_float16"),  # T4, the free Colab GPU
    ("gpu", (7, 0), "mixed_float16"),  # V100
    ("gpu", (8, 0), "mixed_bfloat16"),  # A100
    ("gpu", (9, 0), "mixed_bfloat16"),  # H100, H200
]


def fake_jax(monkeypatch, kind, capability):
    """Make JAX report one device of this kind."""
    import jax

    device = SimpleNamespace(platform=kind)
    if capability:
        device.compute_capability = f"{capability[0]}.{capability[1]}"
    monkeypatch.setattr(jax, "devices", lambda *a: [device])


def fake_torch(monkeypatch, kind, capability):
    """Make PyTorch report a CUDA device of this capability, or none."""
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: kind == "gpu")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)


def fake_tensorflow(monkeypatch, kind, capability):
    """Make TensorFlow list one GPU of this capability, or none."""
    from tensorflow import config as tf_config

    found = {"GPU": ["gpu:0"] if kind == "gpu" else []}
    monkeypatch.setattr(tf_config, "list_physical_devices", lambda t: found.get(t, []))
    details = {"compute_capability": capability}
    monkeypatch.setattr(tf_config.experimental, "get_device_details", lambda d: details)


@pytest.mark.parametrize(
    "backend, fake",
    [("jax", fake_jax), ("torch", fake_torch), ("tensorflow", fake_tensorflow)],
)
@pytest.mark.parametrize("kind, capability, expected", CASES)
def test_auto_precision_follows_the_device(
    monkeypatch, backend, fake, kind, capability, expected
):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    fake(monkeypatch, kind, capability)
    assert devices.choose_precision("auto") == expected


def test_a_tpu_computes_in_bfloat16(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    fake_jax(monkeypatch, "tpu", None)
    assert devices.choose_precision("auto") == "mixed_bfloat16"


def test_an_explicit_precision_is_kept(monkeypatch):
    monkeypatch.setattr(devices, "accelerator", lambda: ("gpu", (9, 0)))
    assert devices.choose_precision("float32") == "float32"


def test_float16_training_scales_the_loss():
    import deeplabv3_plus as dl

    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = keras.Sequential([keras.Input((4, 4, 3)), keras.layers.Conv2D(3, 1)])
        dl.compile_model(model, keras.optimizers.Adam(), 3)
    finally:
        keras.config.set_dtype_policy(policy)
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
