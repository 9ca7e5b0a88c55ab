"""The requirement files: a CPU install, a GPU install, and one without TensorFlow."""

import re

from conftest import ROOT


def requirements(name):
    """The requirement lines of a file, with those of the files it includes."""
    lines = []
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r "):
            lines += requirements(line[3:].strip())
        elif line:
            lines.append(line)
    return lines


def tensorflow_builds(name):
    """The TensorFlow distributions a file asks for on Linux, extras kept."""
    linux = [x for x in requirements(name) if 'sys_platform == "darwin"' not in x]
    found = [re.split("[=;]", line)[0] for line in linux]
    return sorted(n for n in found if n.startswith("tensorflow") and n != "tensorboard")


def test_the_gpu_install_asks_for_tensorflow_with_cuda_and_never_the_cpu_build():
    assert tensorflow_builds("requirements-gpu.txt") == ["tensorflow[and-cuda]"]


def test_the_cpu_install_asks_for_the_cpu_build_only():
    assert tensorflow_builds("requirements.txt") == ["tensorflow-cpu"]


def test_the_demo_and_the_colab_install_leave_tensorflow_as_it_is():
    for name in ["requirements-base.txt", "requirements-demo.txt"]:
        assert tensorflow_builds(name) == [], name


def test_every_install_pins_every_version_and_holds_the_base():
    base = set(requirements("requirements-base.txt"))
    for name in ["requirements.txt", "requirements-gpu.txt", "requirements-dev.txt"]:
        lines = set(requirements(name))
        assert base <= lines, name
        assert all("==" in line for line in lines), name
