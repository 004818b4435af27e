"""Labels the deploy puts on the containers it creates, by which it finds them again (`serving.state` reads a
colour's release back from them). A leaf module: the proxy, the runner and the state all import it.
"""

from __future__ import annotations

APP = "ml.deploy.app"  # the model name: every container of one deploy target carries it
ROLE = "ml.deploy.role"
COLOUR = "ml.deploy.colour"
VERSION = "ml.deploy.version"
MODEL_VERSION = "ml.deploy.model-version"
IMAGE = "ml.deploy.image"
IMAGE_ID = "ml.deploy.image-id"
REPO_DIGEST = "ml.deploy.repo-digest"
DEPLOYED_AT = "ml.deploy.deployed-at"
# On containers that are neither a colour nor the proxy: those a deploy creates only to read a file out of an
# image (never started, removed at once) and the releases `serving compare` runs for a while. Any left by a
# killed command are removed by the next deploy or compare under the lock.
HELPER = "ml.deploy.helper"
