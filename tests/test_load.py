"""Two thousand images stream through the pipeline with bounded, flat memory."""

import gc

import pytest

import deeplabv3_plus as dl
from data import make_toy_people
from conftest import split
from deeplab_support import files
from deeplab_support.datasets import CIHP

pytestmark = pytest.mark.slow

NUM_IMAGES, IMAGE_SIZE = 2000, 64
CACHE_BYTES = NUM_IMAGES * IMAGE_SIZE * IMAGE_SIZE * 4  # uint8 RGB + uint8 mask


def resident_bytes():
    """This process's resident memory, read from /proc."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def epoch_memory(dataset, epochs):
    """Resident memory after each full pass over the dataset."""
    readings = []
    for _ in range(epochs):
        for _ in dataset:
            pass
        gc.collect()
        readings.append(resident_bytes())
    return readings


@pytest.fixture(scope="module")
def big_set(tmp_path_factory):
    """2,000 small synthetic images, paired and validated like a real run."""
    root = tmp_path_factory.mktemp("load") / "cihp"
    make_toy_people.generate(root, num_images=NUM_IMAGES, min_size=64, max_size=96)
    train, _ = split(root, NUM_IMAGES, 0)
    return files.check_pairs(train, CIHP)


@pytest.mark.parametrize("cache", [True, False])
def test_memory_stays_flat_across_epochs(big_set, cache):
    dataset = dl.data_generator(
        big_set, IMAGE_SIZE, 50, CIHP, training=True, augmented=True, cache=cache
    )
    start = resident_bytes()
    first, second, third, fourth = epoch_memory(dataset, 4)
    # Epoch one fills the cache (bounded by its size plus runtime overhead) ...
    assert first - start < (CACHE_BYTES if cache else 0) + 200 * 2**20
    # ... and later epochs add nothing beyond noise.
    assert max(second, third, fourth) - min(second, third, fourth) < 32 * 2**20
