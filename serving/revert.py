"""Which release a revert puts back, and whether its image still exists."""

from __future__ import annotations

import docker

from serving import history
from serving.errors import BadInput, ImageUnavailable
from serving.runner import resolve_image


def revert_target(entries: list[history.Entry], version: str | None) -> history.Entry:
    """The named version's newest successful entry, or the release that was serving before the last deploy.

    "Before the last deploy" is measured from the newest successful *deploy* (reverts do not count), so a
    second revert picks the same target as the first, finds it active, and changes nothing.
    """
    if version is not None:
        entry = history.last_deployed(entries, version=version)
        if entry is None:
            known = sorted({e.version for e in entries if e.result == history.RESULT_DEPLOYED})
            choices = f"releases that can be put back: {', '.join(known)}" if known else "none was"
            raise BadInput(f"version {version} was never deployed successfully on this host; {choices}")
        return entry
    deploys = [e for e in entries if e.result == history.RESULT_DEPLOYED and e.action == "deploy"]
    if not deploys:
        raise BadInput("the deploy history has no successful deploy to revert")
    latest = deploys[-1]
    earlier = entries[: entries.index(latest)]
    entry = history.last_deployed(earlier, other_than=latest.image_id)
    if entry is None:
        raise BadInput(f"no successful release before {latest.version} in the deploy history")
    return entry


def image_reference(client: docker.DockerClient, entry: history.Entry) -> str:
    """A reference Docker can start: the tag it was deployed as while that tag still names the same image
    (status then shows a readable name), else the image id while it is on this host, else its registry digest."""
    for reference in (entry.image, entry.image_id, entry.repo_digest):
        if not reference:
            continue
        try:
            release = resolve_image(client, reference)
        except ImageUnavailable:
            continue
        if release.image_id == entry.image_id or reference == entry.repo_digest:
            return reference
    raise ImageUnavailable(
        f"the image of {entry.version} ({entry.image}) is gone from this host and its registry; nothing changed"
    )
