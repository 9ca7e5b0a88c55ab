"""Progress: counts while the synthetic set is written and while evaluating."""

from data import make_toy_people
from deeplab_support import ProgressCount, progress_bar


def test_a_log_gets_a_plain_count_at_most_every_interval_and_at_the_end(capsys):
    assert isinstance(progress_bar(3, "image"), ProgressCount)  # not a terminal
    count = ProgressCount(100, "image", every=3600)
    for _ in range(99):
        count.add(1)
    assert capsys.readouterr().out == ""
    count.add(1)
    assert capsys.readouterr().out == "  100/100 images\n"


def test_the_generator_reports_every_image_it_writes(tmp_path):
    written = []
    make_toy_people.generate(
        tmp_path / "toy",
        2,
        min_size=16,
        max_size=32,
        num_val_images=1,
        progress=lambda: written.append(1),
    )
    assert len(written) == 3
