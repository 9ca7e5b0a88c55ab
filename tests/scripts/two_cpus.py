"""Run deeplabv3_plus.py with these flags on TensorFlow, its CPU split in two.

Two logical CPU devices stand in for two GPUs, so `--distribute` has two
replicas to mirror the model on, as on a machine with two GPUs.
"""

import runpy
import sys
from pathlib import Path

from tensorflow import config as tf_config

cpu = tf_config.list_physical_devices("CPU")[0]
tf_config.set_logical_device_configuration(
    cpu, [tf_config.LogicalDeviceConfiguration()] * 2
)
tutorial = Path(__file__).resolve().parents[2] / "deeplabv3_plus.py"
sys.argv = [str(tutorial), *sys.argv[1:]]
runpy.run_path(str(tutorial), run_name="__main__")
