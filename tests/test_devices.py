"""Devices: precision for the hardware, and data-parallel training across them."""

import json
from types import SimpleNamespace

import keras
import numpy as np
import pytest

import deeplabv3_plus as dl
from conftest import ROOT, run_args, run_python, run_tutorial
from deeplab_support import UserError, devices

# (device kind, compute capability, the CPU's bfloat16 flag) -> --precision auto
CASES = [
    ("cpu", None, None, "float32"),  # emulated bfloat16 is slower
    ("cpu", None, "avx512_bf16", "mixed_bfloat16"),  # Zen 4, Sapphire Rapids
    ("gpu", (7, 5), None, "mixed_float16"),  # T4, the free Colab GPU
    ("gpu", (7, 0), None, "mixed_float16"),  # V100
    ("gpu", (8, 0), None, "mixed_bfloat16"),  # A100
    ("gpu", (9, 0), None, "mixed_bfloat16"),  # H100, H200
]


# Each fake makes its backend report one device of this kind and capability.
def fake_jax(monkeypatch, kind, capability):
    import jax

    device = SimpleNamespace(platform=kind)
    if capability:
        device.compute_capability = f"{capability[0]}.{capability[1]}"
    monkeypatch.setattr(jax, "devices", lambda *a: [device])


def fake_torch(monkeypatch, kind, capability):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: kind == "gpu")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)


def fake_tensorflow(monkeypatch, kind, capability):
    from tensorflow import config as tf_config

    found = {"GPU": ["gpu:0"] if kind == "gpu" else []}
    monkeypatch.setattr(tf_config, "list_physical_devices", lambda t: found.get(t, []))
    details = {"compute_capability": capability}
    monkeypatch.setattr(tf_config.experimental, "get_device_details", lambda d: details)


@pytest.mark.parametrize("fake", [fake_jax, fake_torch, fake_tensorflow])
@pytest.mark.parametrize("kind, capability, cpu_flag, expected", CASES)
def test_auto_precision_follows_the_device(
    monkeypatch, fake, kind, capability, cpu_flag, expected
):
    backend = fake.__name__.removeprefix("fake_")
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    fake(monkeypatch, kind, capability)
    monkeypatch.setattr(devices, "cpu_bfloat16", lambda: cpu_flag)
    policy, reason = devices.choose_precision("auto")
    assert policy == expected
    assert cpu_flag is None or cpu_flag in reason


def test_a_tpu_computes_in_bfloat16(monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    fake_jax(monkeypatch, "tpu", None)
    assert devices.choose_precision("auto")[0] == "mixed_bfloat16"


@pytest.mark.parametrize(
    "flags, found",
    [
        ("fpu avx2 avx512f avx512_bf16 avx512_vnni", "avx512_bf16"),  # Zen 4
        ("avx2 avx512f avx512_bf16 amx_bf16 amx_tile", "amx_bf16"),  # Sapphire Rapids
        ("fpu sse4_2 avx avx2 fma", None),
    ],
)
def test_the_cpu_s_native_bfloat16_is_read_from_its_flags(tmp_path, flags, found):
    (tmp_path / "cpuinfo").write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    assert devices.cpu_bfloat16(tmp_path / "cpuinfo") == found


def tiny_batch():
    """Two random 64 px images, their masks of 20 classes and their pixel weights."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (2, 64, 64, 3)).astype("uint8")
    masks = rng.integers(0, 20, (2, 64, 64, 1)).astype("uint8")
    return images, masks, np.ones((2, 64, 64), "uint8")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_an_xla_compiled_training_step_updates_the_weights(precision):
    # Keras compiles with XLA on a GPU only; here it is asked for on the CPU.
    policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(precision)
    try:
        model = dl.DeeplabV3Plus(64, 20)
        dl.compile_model(model, keras.optimizers.Adam(), 20)
    finally:
        keras.config.set_dtype_policy(policy)
    model.jit_compile = True
    before = [w.numpy().copy() for w in model.trainable_weights]
    for _ in range(3):  # float16 skips the first two: its loss scale overflows
        model.train_on_batch(*tiny_batch())
    after = [w.numpy() for w in model.trainable_weights]
    moved = [not np.array_equal(a, b) for a, b in zip(before, after)]
    assert np.mean(moved) > 0.9 and all(np.isfinite(w).all() for w in after)


STEPS = [("tensorflow", "cpu", 1), ("tensorflow", "gpu", 8), ("jax", "tpu", 8)]
STEPS += [("torch", "gpu", 1)]  # Keras runs one step per call on PyTorch


@pytest.mark.parametrize("backend, kind, expected", STEPS)
def test_steps_per_execution_is_one_on_a_cpu_or_pytorch_and_more_on_an_accelerator(
    monkeypatch, backend, kind, expected
):
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    monkeypatch.setattr(devices, "accelerator", lambda: (kind, (9, 0)))
    assert devices.steps_per_execution(None) == expected
    assert devices.steps_per_execution(3) == 3  # as the flag says


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_tensorflow_sees_no_gpu_when_another_backend_trains(monkeypatch, backend):
    import deeplab_support
    from tensorflow import config as tf_config

    hid = []
    monkeypatch.setattr(keras.backend, "backend", lambda: backend)
    monkeypatch.setattr(tf_config, "set_visible_devices", lambda d, t: hid.append(t))
    deeplab_support._leave_the_gpu_to_the_backend()
    monkeypatch.setattr(keras.backend, "backend", lambda: "tensorflow")
    deeplab_support._leave_the_gpu_to_the_backend()  # TensorFlow trains: keeps them
    assert hid == ["GPU"]


GPU_LINE = "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)\\n"


@pytest.mark.parametrize(
    "output, code, kind, warned",
    [
        (GPU_LINE, 0, "cpu", True),  # the backend misses the GPU
        (GPU_LINE, 0, "gpu", False),
        ("", 9, "cpu", False),  # NVIDIA-SMI has failed: no driver
        ("No devices were found\\n", 6, "cpu", False),
    ],
)
def test_only_a_gpu_the_backend_misses_gets_a_warning_line_naming_the_fix(
    monkeypatch, tmp_path, capsys, output, code, kind, warned
):
    script = tmp_path / "nvidia-smi"
    script.write_text(f"#!/bin/sh\nprintf '{output}'\nexit {code}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(devices, "accelerator", lambda: (kind, (9, 0)))
    devices.warn_if_gpu_unused()
    err = capsys.readouterr().err
    if warned:
        assert err.startswith("warning: nvidia-smi lists 1") and err.count("\n") == 1
        assert "requirements-gpu.txt" in err
    else:
        assert err == ""


def test_distribute_on_an_unsupported_backend_says_which_to_use(monkeypatch):
    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "torch")
    with pytest.raises(UserError, match="KERAS_BACKEND=jax"):
        devices.distribution_scope(True, 8)


def test_padding_copies_are_void_and_every_image_counts(monkeypatch):
    from tensorflow import data as tf_data

    monkeypatch.setattr(devices.keras.backend, "backend", lambda: "jax")
    monkeypatch.setattr(devices.keras.distribution, "list_devices", lambda: [0] * 4)
    images = np.arange(6, dtype="float32")[:, None, None, None] * np.ones((6, 2, 2, 3))
    weights = np.ones((6, 2, 2), "float32")
    weights[5, 0, 0] = 0  # a void pixel stays void
    masks = np.ones((6, 2, 2, 1), "int32")
    dataset = tf_data.Dataset.from_tensor_slices((images, masks, weights)).batch(4)
    batches = list(devices.pad_batches(dataset, True, void=255).as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [4, 4]
    images, masks, weights = (np.concatenate(part) for part in zip(*batches))
    assert (masks[:6] == 1).all() and (masks[6:] == 255).all()  # copies: void
    assert weights.shape == (8, 2, 2) and weights.sum() == 6 * 4 - 1  # 6 images
    assert images[weights[:, 1, 1] > 0, 0, 0, 0].tolist() == [0, 1, 2, 3, 4, 5]


@pytest.mark.slow
def test_distribute_splits_each_training_batch_over_the_devices(toy_root):
    script = ROOT / "tests" / "scripts" / "sharding_probe.py"
    flags = "--xla_force_host_platform_device_count=2"
    done = run_python(script, toy_root, KERAS_BACKEND="jax", XLA_FLAGS=flags)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["devices"] == 2 and np.isfinite(report["loss"])
    # Inside the training step each device holds half of the batch of 8.
    assert [[4, 64, 64, 3], 2] in report["shard_shapes"]
    assert all(devices == 2 for _, devices in report["shard_shapes"])


MIRRORED = "over 2 device(s) (MirroredStrategy)"


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend, script, validation, said",  # jax: batches of 4, then 2 over 4 devices
    [
        ("jax", "deeplabv3_plus.py", "6", "over 4 device(s)"),
        ("tensorflow", "tests/scripts/two_cpus.py", "4", MIRRORED),
    ],
)
def test_distributed_training_scores_every_validation_image_over_the_devices(
    toy_root, tmp_path, backend, script, validation, said
):
    argv = run_args(toy_root, tmp_path / "out", "--distribute")
    argv[argv.index("--num-val-images") + 1] = validation
    xla = "--xla_force_host_platform_device_count=4" if backend == "jax" else None
    result = run_python(ROOT / script, *argv, KERAS_BACKEND=backend, XLA_FLAGS=xla)
    assert said in result.stdout
    scores = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert np.isfinite(scores["val_loss"]), scores
    assert 0 <= scores["val_mean_iou"] <= 1 and 0 <= scores["val_accuracy"] <= 1


@pytest.mark.slow
def test_a_model_trained_in_bfloat16_is_saved_to_predict_in_float32(toy_root, tmp_path):
    argv = run_args(toy_root, tmp_path, "--precision", "mixed_bfloat16")
    trained = run_tutorial(*argv)["model"]  # the run's own model, in bfloat16
    assert trained.layers[-3].compute_dtype == "bfloat16"
    saved = keras.saving.load_model(tmp_path / "model.keras")
    assert {layer.dtype_policy.name for layer in saved.layers} == {"float32"}
    # So --predict, evaluation, exports and the demo, which load the file, give the
    # classes the run's model gives, on any CPU or backend.
    images = tiny_batch()[0].astype("float32")
    found = np.asarray(saved.predict_on_batch(images))
    expected = np.asarray(trained.predict_on_batch(images), "float32")
    assert found.dtype == np.float32
    assert np.mean(found.argmax(-1) == expected.argmax(-1)) > 0.95
