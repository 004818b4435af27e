"""The golden smoke set an exported model carries: inputs and the outputs the model itself produced."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.contract import SIGNATURE, SMOKE_SET_PATH
from serving.errors import BadInput


@dataclass(frozen=True)
class SmokeSet:
    model_name: str
    model_version: int
    signature_name: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]

    @classmethod
    def parse(cls, raw: dict[str, Any], where: str) -> SmokeSet:
        try:
            return cls(
                model_name=str(raw["model_name"]),
                model_version=int(raw["model_version"]),
                signature_name=str(raw.get("signature_name", SIGNATURE)),
                # float32 is what the signature takes; JSON has no dtype of its own.
                inputs={k: np.asarray(v, dtype=np.float32) for k, v in raw["inputs"].items()},
                outputs={k: np.asarray(v) for k, v in raw["outputs"].items()},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BadInput(f"{where} is not a smoke set: {type(exc).__name__}: {exc}") from exc

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> SmokeSet:
        path = model_dir / SMOKE_SET_PATH
        try:
            return cls.parse(json.loads(path.read_text(encoding="utf-8")), str(path))
        except OSError as exc:
            raise BadInput(f"cannot read smoke set {path}: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise BadInput(f"{path} is not JSON: {exc}") from exc

    @classmethod
    def from_model_base(cls, base: Path) -> SmokeSet:
        """The smoke set of the one version under a model's base directory (TF Serving's `<base>/<version>/`)."""
        try:
            versions = [path for path in base.iterdir() if path.is_dir() and path.name.isdigit()]
        except OSError as exc:
            raise BadInput(f"cannot read model base {base}: {exc.strerror}") from exc
        if len(versions) != 1:
            found = ", ".join(sorted(path.name for path in versions)) or "none"
            raise BadInput(f"{base} must hold exactly one version directory, found {found}")
        return cls.from_model_dir(versions[0])

    @property
    def size(self) -> int:
        return len(next(iter(self.inputs.values())))

    def example(self, index: int) -> dict[str, np.ndarray]:
        return {name: values[index : index + 1] for name, values in self.inputs.items()}
