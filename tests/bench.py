"""`make bench`: every part's benchmark in one run, figures printed side by side."""

from __future__ import annotations

import importlib
import sys

PARTS = {
    "training": "tests.bench_train",
    "standin": "tests.bench_standin",
    "images": "tests.bench_images",
    "deploy": "tests.bench_deploy",
    "monitoring": "tests.bench_monitoring",
    "pipeline": "tests.bench_pipeline",
}


def main() -> int:
    selected = sys.argv[1:] or list(PARTS)
    for part in selected:
        rows = importlib.import_module(PARTS[part]).run()
        print(f"\n== {part}")
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"  {name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
