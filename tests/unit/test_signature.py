"""The one signature-compatibility policy, as the gate (model cards) and the deploy (TF Serving) apply it."""

from __future__ import annotations

import re

import pytest

from ml.signature import Signature, TensorSpec, breaking_changes, judge

SIGNATURE = Signature(
    inputs={"image": TensorSpec("DT_FLOAT", (-1, 8, 8))},
    outputs={"probabilities": TensorSpec("DT_FLOAT", (-1, 10)), "class": TensorSpec("DT_INT64", (-1,))},
)


@pytest.mark.parametrize(
    ("candidate", "baseline", "compatible"),
    [
        (TensorSpec("DT_FLOAT", (-1, 8, 8)), TensorSpec("DT_FLOAT", (-1, 8, 8)), True),
        (TensorSpec("DT_FLOAT", (-1, -1, 8)), TensorSpec("DT_FLOAT", (-1, 8, 8)), True),
        (TensorSpec("DT_FLOAT", None), TensorSpec("DT_FLOAT", (-1, 8, 8)), True),
        (TensorSpec("DT_FLOAT", (-1, 8, 8)), TensorSpec("DT_FLOAT", (-1, -1, 8)), False),
        (TensorSpec("DT_FLOAT", (-1, 64)), TensorSpec("DT_FLOAT", (-1, 8, 8)), False),
        (TensorSpec("DT_DOUBLE", (-1, 8, 8)), TensorSpec("DT_FLOAT", (-1, 8, 8)), False),
        (TensorSpec("DT_FLOAT", (-1, 8, 8)), TensorSpec("DT_FLOAT", None), False),
    ],
)
def test_candidate_accepts_everything_the_baseline_accepted(
    candidate: TensorSpec, baseline: TensorSpec, compatible: bool
) -> None:
    assert candidate.accepts(baseline) is compatible


def test_same_signature_has_no_changes() -> None:
    assert breaking_changes(SIGNATURE, SIGNATURE) == []


def test_breaking_signature_changes_are_each_named() -> None:
    candidate = Signature(
        inputs={"image": TensorSpec("DT_FLOAT", (-1, 64)), "mask": TensorSpec("DT_FLOAT", (-1,))},
        outputs={"probabilities": TensorSpec("DT_DOUBLE", (-1, 10))},
    )
    assert breaking_changes(candidate, SIGNATURE) == [
        "new required input 'mask'",
        "input 'image': DT_FLOAT[-1,64] does not accept DT_FLOAT[-1,8,8]",
        "output 'class' removed",
        "output 'probabilities': dtype DT_DOUBLE != DT_FLOAT",
    ]


def test_an_added_output_is_not_breaking() -> None:
    candidate = Signature(SIGNATURE.inputs, {**SIGNATURE.outputs, "logits": TensorSpec("DT_FLOAT", (-1, 10))})
    assert breaking_changes(candidate, SIGNATURE) == []


def test_a_breaking_change_passes_only_with_a_higher_major() -> None:
    candidate = Signature(SIGNATURE.inputs, {"class": SIGNATURE.outputs["class"]})
    assert judge(candidate, SIGNATURE, 1, 1, "the baseline") == (
        False,
        "breaking change without a major version bump: output 'probabilities' removed",
    )
    assert judge(candidate, SIGNATURE, 2, 1, "the baseline") == (
        True,
        "breaking change allowed by major 1 -> 2: output 'probabilities' removed",
    )
    assert judge(SIGNATURE, SIGNATURE, 1, 1, "the active release") == (
        True,
        "compatible with the active release",
    )


def test_a_card_signature_reads_as_the_server_reports_it() -> None:
    card = {
        "signature": {
            "inputs": {"image": {"dtype": "float32", "shape": [-1, 8, 8]}},
            "outputs": {"class": {"dtype": "int64", "shape": [-1]}},
        }
    }
    assert Signature.from_card(card) == Signature(
        {"image": TensorSpec("float32", (-1, 8, 8))}, {"class": TensorSpec("int64", (-1,))}
    )
    assert Signature.from_card({}) == Signature({}, {})


@pytest.mark.parametrize(
    ("signature", "field"),
    [
        ([], "signature"),
        ({"inputs": []}, "signature.inputs"),
        ({"inputs": {"image": {"dtype": "float32"}}}, "signature.inputs.image"),
        ({"outputs": {"class": {"dtype": 1, "shape": [-1]}}}, "signature.outputs.class"),
        ({"inputs": {"image": {"dtype": "float32", "shape": [-1, "8"]}}}, "signature.inputs.image"),
    ],
)
def test_a_malformed_card_signature_names_its_field(signature: object, field: str) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(field) + " "):
        Signature.from_card({"signature": signature})
