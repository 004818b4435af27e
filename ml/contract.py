"""What training, the images and the deploy agree on, defined once and free of TensorFlow so that every part
(the deploy host's CLI included) can import it: the export's layout and file names, its signature, the image
labels the deploy reads, the stand-in base images `make bases` builds, and the exit codes of every command.

TF Serving's own names (the signature key `serving_default`, `assets.extra/`, the warmup file) are its
public contract; the rest is this project's.
"""

from __future__ import annotations

from enum import IntEnum, unique
from pathlib import PurePosixPath

# The export: <root>/<model name>/<model version>/ holding the SavedModel and these.
SIGNATURE = "serving_default"  # TF Serving's default signature key
INPUT = "image"  # the signature's one input tensor
EXTRA_DIR = "assets.extra"  # TF Serving reads warmup requests from here; it serves nothing else in it
WARMUP_FILE = "tf_serving_warmup_requests"
SMOKE_FILE = "smoke_set.json"  # golden inputs and outputs the deploy's parity check replays
CARD_FILE = "model_card.json"
SMOKE_SET_PATH = PurePosixPath(EXTRA_DIR, SMOKE_FILE)  # relative to a version directory
CARD_PATH = PurePosixPath(EXTRA_DIR, CARD_FILE)

# Beside the export, in the artifacts directory: the card again, and what training measured.
TRAINING_HISTORY_FILE = "history.json"  # per-epoch loss and accuracy, plotted in the gate report
MEASUREMENTS_FILE = "measurements.json"  # latency of the exported model, merged into the card

# Labels of the serving image that the deploy and the registry commands read.
MODEL_VERSION_LABEL = "ml.model.version"  # the integer TF Serving version inside
SEMVER_LABEL = "ml.model.semver"
CARD_LABEL = "ml.model.card"  # the whole model card, JSON
REVISION_LABEL = "org.opencontainers.image.revision"  # the commit an image was built from

# Stand-ins `make bases` builds where the official images cannot be pulled.
SERVING_STANDIN = "local/tensorflow-serving:standin"
TRAINING_STANDIN = "local/python:3.11"
PROXY_STANDIN = "local/haproxy:standin"
MONITORING_STANDIN = "local/prometheus:standin"


# unique: two names for one value would silently become aliases of one member.
@unique
class ExitCode(IntEnum):
    """The exit codes of every command (`python -m ml`, `serving`, `scripts.*`, and the shell scripts through
    scripts/contract.sh): one number, one meaning."""

    OK = 0  # done, or nothing to do (already active, already pushed)
    BAD_INPUT = 2  # malformed VERSION, config, arguments, dataset, card or tag; a missing model artifact
    REFUSED = 3  # the model was judged unfit and nothing changed: the gate failed, or a deploy refused it
    REVERTED = 4  # a deploy promoted it, it failed the bake window, and the previous release serves again
    INFRASTRUCTURE = 5  # Docker, the proxy, the deploy lock or the platform failed: the model was not judged
    REGISTRY_UNREACHABLE = 6  # still down after the bounded retries
    NOT_FOUND = 7  # the repository or tag is not in the registry
    TAG_CONFLICT = 8  # a release tag already holds another image
    BUILD_FAILED = 9
    REGISTRY_ERROR = 10  # the registry answered, but not as the distribution API says
    NOT_REPRODUCED = 11  # the registry's release is not what this checkout builds
    ACCESS_DENIED = 12  # the registry refused these credentials (or none): HTTP 401/403
    JOB_FAILED = 13  # a workflow job failed under act, or act could not run it
    DOWNLOAD_FAILED = 14  # packages, wheels or an official base image could not be downloaded
    DEGRADED = 15  # `serving monitor`: the live release answers, but a check or an alert rule failed
    DOWN = 16  # `serving monitor`: the live release does not serve (stopped, model not AVAILABLE, or none)
    INVALID_MANIFESTS = 17  # rendered Kubernetes objects fail their schemas or name what is not there
