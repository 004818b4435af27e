"""A JSON writer that lays out text exactly as TF Serving's (rapidjson PrettyWriter) does.

Clients parse the JSON, but people diff and grep it: keeping the official layout (4-space indent, arrays
of scalars on one line inside each prediction) makes the two servers' answers byte-comparable.
"""

from __future__ import annotations

import json
import math
from typing import Any

_INDENT = "    "


class PrettyWriter:
    """Event-driven writer: start/end object and array, key, and already-rendered scalar values."""

    def __init__(self, max_chars: int | None = None) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._max_chars = max_chars
        self._levels: list[list[int]] = []  # [in_array (0/1), value_count]
        self.single_line_arrays = False
        self.truncated = False

    def text(self) -> str:
        return "".join(self._parts)

    def _put(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)

    def _room(self) -> bool:
        if self._max_chars is not None and self._size >= self._max_chars:
            self.truncated = True
        return not self.truncated

    def _prefix(self) -> None:
        if not self._levels:
            return
        level = self._levels[-1]
        in_array, count = level
        if in_array:
            if count > 0:
                self._put(", " if self.single_line_arrays else ",")
            if not self.single_line_arrays:
                self._put("\n" + _INDENT * len(self._levels))
        else:
            if count > 0:
                self._put(",\n" if count % 2 == 0 else ": ")
            else:
                self._put("\n")
            if count % 2 == 0:
                self._put(_INDENT * len(self._levels))
        level[1] += 1

    def value(self, rendered: str) -> None:
        if self._room():
            self._prefix()
            self._put(rendered)

    def string(self, text: str) -> None:
        self.value(json.dumps(text, ensure_ascii=False))

    key = string

    def start_object(self) -> None:
        if self._room():
            self._prefix()
            self._levels.append([0, 0])
            self._put("{")

    def end_object(self) -> None:
        if self._room():
            _, count = self._levels.pop()
            if count:
                self._put("\n" + _INDENT * len(self._levels))
            self._put("}")

    def start_array(self) -> None:
        if self._room():
            self._prefix()
            self._levels.append([1, 0])
            self._put("[")

    def end_array(self) -> None:
        if self._room():
            _, count = self._levels.pop()
            if count and not self.single_line_arrays:
                self._put("\n" + _INDENT * len(self._levels))
            self._put("]")


def render_number(value: int | float) -> str:
    """A parsed JSON number as rapidjson writes it back (used only in error messages)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = repr(value)
    if "e" in text:
        mantissa, exponent = text.split("e")
        return f"{mantissa}e{int(exponent)}"
    return text


def write_value(writer: PrettyWriter, value: Any) -> None:
    if isinstance(value, dict):
        writer.start_object()
        for name, item in value.items():
            writer.key(name)
            write_value(writer, item)
        writer.end_object()
    elif isinstance(value, list):
        writer.start_array()
        for item in value:
            write_value(writer, item)
        writer.end_array()
    elif isinstance(value, str):
        writer.string(value)
    elif value is None:
        writer.value("null")
    elif isinstance(value, bool):
        writer.value("true" if value else "false")
    else:
        writer.value(render_number(value))


_DEBUG_STRING_CHARS = 256


def debug_string(value: Any) -> str:
    """TF Serving's JsonValueToDebugString: single-line arrays, cut off after about 256 characters."""
    writer = PrettyWriter(max_chars=_DEBUG_STRING_CHARS)
    writer.single_line_arrays = True
    write_value(writer, value)
    return writer.text()


def error_body(message: str) -> str:
    writer = PrettyWriter()
    writer.start_object()
    writer.key("error")
    writer.string(message)
    writer.end_object()
    return writer.text()
