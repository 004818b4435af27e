"""When a new model's serving signature still works for the clients of the one before it: the one policy that
the gate (on model cards) and the deploy's analysis (on TF Serving's metadata API) both apply.

A client keeps working when every input it sends is still accepted (same dtype, a shape at least as general),
no new input is required, and every output it reads is still there with the same dtype. Anything else is a
breaking change, allowed only with a higher major version. Free of TensorFlow, like `ml.contract`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TensorSpec:
    dtype: str  # as the source names it: DT_FLOAT from TF Serving, float32 in a model card
    shape: tuple[int, ...] | None  # None: unknown rank; -1: unknown size

    def accepts(self, other: TensorSpec) -> bool:
        """Same dtype, and a shape that every tensor valid for `other` also satisfies."""
        if self.dtype != other.dtype:
            return False
        if self.shape is None or other.shape is None:
            return self.shape is None
        return len(self.shape) == len(other.shape) and all(
            mine in (-1, theirs) for mine, theirs in zip(self.shape, other.shape, strict=True)
        )

    def __str__(self) -> str:
        shape = "?" if self.shape is None else "[" + ",".join(map(str, self.shape)) + "]"
        return f"{self.dtype}{shape}"


@dataclass(frozen=True)
class Signature:
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Signature:
        """The `signature` a model card records (`ml.export.describe_signature`); empty if it has none.
        Raises ValueError, naming the field, for one that is not as the export writes it."""
        described = card.get("signature")
        if described is None:
            return cls({}, {})
        if not isinstance(described, dict):
            raise ValueError("signature is not an object")
        return cls(_card_specs(described, "inputs"), _card_specs(described, "outputs"))


def _card_specs(described: dict[str, Any], kind: str) -> dict[str, TensorSpec]:
    section = described.get(kind, {})
    if not isinstance(section, dict):
        raise ValueError(f"signature.{kind} is not an object")
    specs = {}
    for name, raw in section.items():
        dtype = raw.get("dtype") if isinstance(raw, dict) else None
        shape = raw.get("shape") if isinstance(raw, dict) else None
        if (
            not isinstance(dtype, str)
            or not isinstance(shape, list)
            or not all(type(d) is int for d in shape)
        ):
            raise ValueError(f"signature.{kind}.{name} needs a dtype name and a list of integer dims")
        specs[name] = TensorSpec(dtype, tuple(shape))
    return specs


def breaking_changes(candidate: Signature, baseline: Signature) -> list[str]:
    """Each way the candidate breaks a client of the baseline, named; empty when it breaks none."""
    changes = [
        f"new required input {name!r}" for name in sorted(set(candidate.inputs) - set(baseline.inputs))
    ]
    for name, spec in sorted(baseline.inputs.items()):
        if name not in candidate.inputs:
            changes.append(f"input {name!r} removed")
        elif not candidate.inputs[name].accepts(spec):
            changes.append(f"input {name!r}: {candidate.inputs[name]} does not accept {spec}")
    for name, spec in sorted(baseline.outputs.items()):
        if name not in candidate.outputs:
            changes.append(f"output {name!r} removed")
        elif candidate.outputs[name].dtype != spec.dtype:
            changes.append(f"output {name!r}: dtype {candidate.outputs[name].dtype} != {spec.dtype}")
    return changes


def judge(
    candidate: Signature, baseline: Signature, candidate_major: int, baseline_major: int, baseline_name: str
) -> tuple[bool, str]:
    """Whether the candidate may replace the baseline (`baseline_name` in the answer), and why."""
    changes = breaking_changes(candidate, baseline)
    if not changes:
        return True, f"compatible with {baseline_name}"
    if candidate_major > baseline_major:
        return (
            True,
            f"breaking change allowed by major {baseline_major} -> {candidate_major}: {'; '.join(changes)}",
        )
    return False, f"breaking change without a major version bump: {'; '.join(changes)}"
