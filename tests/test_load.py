"""Two thousand images stream through the pipeline with bounded, flat memory."""

import json

import pytest

from conftest import ROOT, run_python, split
from data import make_toy_people
from deeplab_support import files
from deeplab_support.classes import CIHP

pytestmark = pytest.mark.slow

NUM_IMAGES, IMAGE_SIZE = 2000, 64
CACHE_BYTES = NUM_IMAGES * IMAGE_SIZE * IMAGE_SIZE * 4  # uint8 RGB + uint8 mask


@pytest.fixture(scope="module")
def big_set(tmp_path_factory):
    """2,000 small synthetic images, paired and validated like a real run."""
    root = tmp_path_factory.mktemp("load") / "cihp"
    make_toy_people.generate(root, num_images=NUM_IMAGES, min_size=64, max_size=96)
    train, _ = split(root, NUM_IMAGES, 0)
    return files.check_pairs(train, CIHP)


@pytest.mark.parametrize("cache", [True, False])
def test_memory_stays_flat_across_epochs(big_set, cache, tmp_path):
    # A fresh process, so the memory of the tests before it cannot move the readings.
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([[str(i), str(m)] for i, m in big_set]))
    script = ROOT / "tests" / "scripts" / "pipeline_memory.py"
    flag = "cache" if cache else "no-cache"
    done = run_python(script, pairs, IMAGE_SIZE, flag)
    start, first, second, third, fourth = json.loads(done.stdout.splitlines()[-1])
    # Epoch one fills the cache (bounded by its size plus runtime overhead) ...
    assert first - start < (CACHE_BYTES if cache else 0) + 200 * 2**20
    # ... and later epochs add nothing beyond noise.
    assert max(second, third, fourth) - min(second, third, fourth) < 32 * 2**20
