"""Numbered deploy steps printed as they start and end, with elapsed time and a verdict."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO


@dataclass(frozen=True)
class StepRecord:
    number: int
    name: str
    verdict: str  # "ok" or "FAILED"
    seconds: float
    detail: str


class Steps:
    def __init__(self, out: TextIO, total: int, on_start: Callable[[int], None] | None = None) -> None:
        self.out = out
        self.total = total
        self.on_start = on_start  # called with a step's number as it starts: where tests inject faults
        self.started = time.monotonic()
        self.durations: dict[str, float] = {}
        self.records: list[StepRecord] = []  # every finished step, for reports beyond the console
        self._number = 0
        self._detail = ""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def detail(self, text: str) -> None:
        """The verdict line's explanation, set by the step's body."""
        self._detail = text

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        self._number += 1
        self._detail = ""
        prefix = f"[{self._number}/{self.total}] {name}"
        self.say(f"{prefix} ...")
        if self.on_start is not None:
            self.on_start(self._number)
        began = time.monotonic()
        verdict = "FAILED"
        try:
            yield
            verdict = "ok"
        finally:
            took = time.monotonic() - began
            self.durations[name] = round(took, 3)
            elapsed = time.monotonic() - self.started
            detail = f": {self._detail}" if self._detail else ""
            self.records.append(StepRecord(self._number, name, verdict, took, self._detail))
            self.say(
                f"[{self._number}/{self.total}] {name}: {verdict} in {took:.2f} s (t+{elapsed:.1f} s){detail}"
            )

    def block(self, title: str, text: str) -> None:
        """Multi-line output (container logs) between markers that cannot be mistaken for it."""
        self.say(f"----- begin {title} -----")
        self.say(text.rstrip())
        self.say(f"----- end {title} -----")
