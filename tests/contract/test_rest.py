"""REST API contract: status, metadata, predict and TF Serving's error answers."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest
import requests

from tests.contract import savedmodels
from tests.contract.container import ServingContainer

pytestmark = pytest.mark.docker

MODEL = savedmodels.CLASSIFIER
TIMEOUT = 30


def _images(count: int) -> np.ndarray:
    return (np.arange(count * 64, dtype=np.float32).reshape(count, 8, 8) % 17) / 16


def _post(server: ServingContainer, path: str, body: str | bytes) -> requests.Response:
    return requests.post(f"{server.rest_url}{path}", data=body, timeout=TIMEOUT)


def _error(response: requests.Response) -> str:
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    assert list(document) == ["error"]
    return str(document["error"])


def test_status_lists_the_served_version(classifier_server: ServingContainer) -> None:
    response = requests.get(f"{classifier_server.rest_url}/v1/models/{MODEL}", timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    one = requests.get(f"{classifier_server.rest_url}/v1/models/{MODEL}/versions/1", timeout=TIMEOUT)
    assert one.json() == response.json()


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/v1/models/nope", 404, "Could not find any versions of model nope"),
        (f"/v1/models/{MODEL}/versions/7", 404, f"Could not find version 7 of model {MODEL}"),
        ("/v1/models", 400, "Missing model name in request."),
        (f"/v1/models/{MODEL}:predict", 400, f"Malformed request: GET /v1/models/{MODEL}:predict"),
        (f"/v1/models/{MODEL}/labels/none/metadata", 400, "Unrecognized servable version label: none"),
        ("/v1/models/nope/metadata", 404, "Servable not found for request: Latest(nope)"),
        (
            f"/v1/models/{MODEL}/versions/9/metadata",
            404,
            f"Servable not found for request: Specific({MODEL}, 9)",
        ),
    ],
)
def test_get_errors(classifier_server: ServingContainer, path: str, status: int, message: str) -> None:
    response = requests.get(f"{classifier_server.rest_url}{path}", timeout=TIMEOUT)
    assert response.status_code == status
    assert _error(response) == message


def test_metadata_describes_the_signature(classifier_server: ServingContainer) -> None:
    response = requests.get(f"{classifier_server.rest_url}/v1/models/{MODEL}/metadata", timeout=TIMEOUT)
    assert response.status_code == 200
    document = response.json()
    assert document["model_spec"] == {"name": MODEL, "signature_name": "", "version": "1"}
    signature = document["metadata"]["signature_def"]["signature_def"]["serving_default"]
    image = signature["inputs"]["image"]
    assert image["dtype"] == "DT_FLOAT"
    assert [dim["size"] for dim in image["tensor_shape"]["dim"]] == ["-1", "8", "8"]
    assert signature["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"
    assert signature["method_name"] == "tensorflow/serving/predict"


def test_row_predict_answers_predictions(classifier_server: ServingContainer) -> None:
    images = _images(3)
    response = _post(
        classifier_server, f"/v1/models/{MODEL}:predict", json.dumps({"instances": images.tolist()})
    )
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    predictions = np.array(response.json()["predictions"])
    np.testing.assert_allclose(predictions, savedmodels.classifier_probabilities(images), rtol=1e-5)


def test_columnar_predict_answers_outputs(classifier_server: ServingContainer) -> None:
    images = _images(2)
    body = json.dumps({"signature_name": "serving_default", "inputs": images.tolist()})
    response = _post(classifier_server, f"/v1/models/{MODEL}/versions/1:predict", body)
    assert response.status_code == 200, response.text
    outputs = np.array(response.json()["outputs"])
    np.testing.assert_allclose(outputs, savedmodels.classifier_probabilities(images), rtol=1e-5)


def _reference_float_text(value: np.float32) -> str:
    """TF Serving's rule: "%g" when it reads back as the same float32, else "%.9g"; whole numbers get ".0"."""
    text = f"{float(value):g}"
    if np.float32(text) != value:
        text = f"{float(value):.9g}"
    return text if "." in text or "e" in text else text + ".0"


def test_floats_are_printed_as_tf_serving_prints_them(classifier_server: ServingContainer) -> None:
    response = _post(
        classifier_server, f"/v1/models/{MODEL}:predict", json.dumps({"instances": _images(4).tolist()})
    )
    tokens = re.findall(r"-?[0-9][0-9.e+-]*", response.text)
    assert len(tokens) == 40
    assert tokens == [_reference_float_text(np.float32(token)) for token in tokens]


def _image_rows(rows: int, width: int = 8) -> list[list[float]]:
    return [[0.5] * width for _ in range(rows)]


PREDICT = f"/v1/models/{MODEL}:predict"


@pytest.mark.parametrize(
    ("path", "body", "status", "expected"),
    [
        (PREDICT, "", 400, "JSON Parse error: The document is empty"),
        (PREDICT, "instances = [1, 2]", 400, "JSON Parse error: Invalid value"),
        (PREDICT, '{"instances": ["x"]}', 400, "is not of expected type: float"),
        (PREDICT, '{"signature_name": 100}', 400, "'signature_name' key must be a string value."),
        (PREDICT, "{}", 400, "Missing 'inputs' or 'instances' key"),
        (
            PREDICT,
            '{"instances": [1], "inputs": [1]}',
            400,
            "expecting only one of 'inputs' or 'instances' keys",
        ),
        (PREDICT, '{"instances": []}', 400, "No values in 'instances' array"),
        (PREDICT, '{"instances": {"image": 1}}', 400, "Expecting 'instances' to be an list/array"),
        (
            PREDICT,
            json.dumps({"instances": [_image_rows(8), _image_rows(7)]}),
            400,
            "Expecting tensor size: 64 but got: 56",
        ),
        (
            PREDICT,
            json.dumps({"instances": [[*_image_rows(7), [0.5] * 7]]}),
            400,
            "Encountered list at unexpected size: 7 at level: 1 expected size: 8",
        ),
        (
            PREDICT,
            json.dumps({"instances": [{"pixels": _image_rows(8)}]}),
            400,
            "does not have named input: pixels",
        ),
        (
            PREDICT,
            json.dumps({"signature_name": "nope", "instances": [_image_rows(8)]}),
            400,
            'Serving signature name: "nope" not found in signature def',
        ),
        (
            "/v1/models/nope:predict",
            '{"instances": [1]}',
            404,
            "Servable not found for request: Latest(nope)",
        ),
        (
            f"/v1/models/{MODEL}/versions/9:predict",
            '{"instances": [1]}',
            404,
            f"Servable not found for request: Specific({MODEL}, 9)",
        ),
        (
            f"/v1/models/{MODEL}/labels/nope:predict",
            '{"instances": [1]}',
            400,
            "Unrecognized servable version label",
        ),
        (f"/v1/models/{MODEL}/metadata", "{}", 400, f"Malformed request: POST /v1/models/{MODEL}/metadata"),
        (f"/v1/models/{MODEL}/versions/x:predict", "{}", 400, "Malformed request"),
        ("/v1/models", "{}", 400, "Malformed request: POST /v1/models"),
    ],
)
def test_predict_errors(
    classifier_server: ServingContainer, path: str, body: str, status: int, expected: str
) -> None:
    response = _post(classifier_server, path, body)
    assert response.status_code == status
    assert expected in _error(response)


def test_other_methods_are_malformed_requests(classifier_server: ServingContainer) -> None:
    response = requests.put(f"{classifier_server.rest_url}/v1/models/{MODEL}", data="{}", timeout=TIMEOUT)
    assert response.status_code == 400
    assert _error(response) == f"Malformed request: PUT /v1/models/{MODEL}"


def test_paths_outside_the_api_are_not_found(classifier_server: ServingContainer) -> None:
    response = requests.get(f"{classifier_server.rest_url}/healthz", timeout=TIMEOUT)
    assert response.status_code == 404
    assert "application/json" not in response.headers.get("Content-Type", "")


# ------------------------------------------------------------------------------------ several inputs/outputs

MULTI_PREDICT = f"/v1/models/{savedmodels.MULTI}:predict"


def test_row_format_with_several_outputs_answers_objects(multi_server: ServingContainer) -> None:
    instances = [
        {"pair": [1.5, 2.0], "count": 3, "text": "ab"},
        {"pair": [0.25, 0.25], "count": -4, "text": {"b64": base64.b64encode(b"cd").decode()}},
    ]
    response = _post(multi_server, MULTI_PREDICT, json.dumps({"instances": instances}))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "predictions": [
            {"total": 3.5, "doubled": 6, "echo_bytes": {"b64": "YWI="}, "upper": "AB"},
            {"total": 0.5, "doubled": -8, "echo_bytes": {"b64": "Y2Q="}, "upper": "CD"},
        ]
    }


def test_columnar_format_with_several_outputs_answers_an_object(multi_server: ServingContainer) -> None:
    inputs = {"pair": [[1.0, 2.0], [3.0, 4.5]], "count": [1, 2], "text": ["x", "yz"]}
    response = _post(multi_server, MULTI_PREDICT, json.dumps({"inputs": inputs}))
    assert response.status_code == 200, response.text
    assert response.json() == {
        "outputs": {
            "total": [3.0, 7.5],
            "doubled": [2, 4],
            "echo_bytes": [{"b64": "eA=="}, {"b64": "eXo="}],
            "upper": ["X", "YZ"],
        }
    }


def test_a_single_output_is_rendered_without_its_name(multi_server: ServingContainer) -> None:
    rows = _post(
        multi_server, MULTI_PREDICT, json.dumps({"signature_name": "square", "instances": [2.0, 3.0]})
    )
    assert rows.json() == {"predictions": [4.0, 9.0]}
    columns = _post(multi_server, MULTI_PREDICT, json.dumps({"signature_name": "square", "inputs": [1.5]}))
    assert columns.json() == {"outputs": [2.25]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"instances": [[1.0, 2.0]]},
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map",
        ),
        ({"inputs": {"pair": [[1.0, 2.0]], "count": [1]}}, "Missing named input: text in 'inputs' object."),
        ({"instances": [{"pair": [1.0, 2.0], "count": 1.5, "text": "a"}]}, "is not of expected type: int64"),
        ({"instances": [{"pair": [1.0, 2.0], "count": 1}]}, "keys must be equal to: count,pair,text"),
        (
            {"inputs": [1.0]},
            "inputs is a plain value/list, but expecting an object as multiple input tensors",
        ),
    ],
)
def test_several_inputs_errors(
    multi_server: ServingContainer, body: dict[str, object], expected: str
) -> None:
    response = _post(multi_server, MULTI_PREDICT, json.dumps(body))
    assert response.status_code == 400
    assert expected in _error(response)
