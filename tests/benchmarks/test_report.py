"""benchmarks/report.py: the report in the repository holds no path of the machine it was measured on."""

from __future__ import annotations

import report


def test_portable_command_drops_machine_paths() -> None:
    command = ("python benchmarks/bench_memory.py --work /scratch/run-1/fancam-bench --fps 10 "
               "--source /mnt/box/shared/data/divyanshu_line_dance/dance.mp4")
    assert report.portable(command) == ("python benchmarks/bench_memory.py --work DIR --fps 10 "
                                        "--source ../shared/data/divyanshu_line_dance/dance.mp4")


def test_portable_command_keeps_relative_paths() -> None:
    command = "python benchmarks/bench_accuracy.py --json=/home/x/acc.json --source ../shared/bench/a.mp4"
    assert report.portable(command) == ("python benchmarks/bench_accuracy.py --json=DIR "
                                        "--source ../shared/bench/a.mp4")
