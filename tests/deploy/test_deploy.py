"""Blue/green deploys against real containers: the stand-in TF Serving, real HAProxy, steady load on the
proxy. A good release swaps with zero failed requests; every bad one leaves the previous release
serving and the host as it was.
"""

from __future__ import annotations

import dataclasses
import posixpath
import threading

import docker.errors
import pytest

from serving import history
from serving import labels as deploy_labels
from serving.archive import first_file, single_file_tar
from serving.client import RestClient
from serving.colours import colour_container_name
from serving.deadline import after, poll
from serving.deploy import TOTAL_STEPS, Step
from serving.errors import AnalysisFailed, DeployError, InfrastructureError, ModelNotReady, Reverted
from serving.haproxy_config import LIVE_CONF, LOADED_CONF, Split, render
from serving.haproxy_runtime import ColourTraffic
from serving.history_store import HistoryStore
from serving.proxy import RESTART_POLICY
from tests.deploy.harness import PROXY_IMAGE, Host, Releases

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def _history(host: Host) -> list[history.Entry]:
    return HistoryStore(host.proxy).read()


def test_good_release_swaps_with_zero_failed_requests(host: Host, releases: Releases) -> None:
    first = host.deploy(releases["v1"])
    assert first.changed
    host.assert_serving("v1")
    with host.load() as load:
        host.deploy(releases["v2"])
        report = load.stop()
    assert report.failed == 0, report.summary()
    assert report.ok > 50
    host.assert_serving("v2")
    assert [(e.version, e.result) for e in _history(host)] == [("1.0.0", "deployed"), ("1.1.0", "deployed")]
    steps = host.outputs[-1]
    for number in Step:
        assert f"[{number}/{TOTAL_STEPS}]" in steps
    assert "ok   parity-grpc" in steps
    assert "ok   signature: compatible" in steps


def test_same_release_again_changes_nothing(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    before = host.state().serving
    outcome = host.deploy(releases["v1"])
    assert not outcome.changed
    assert "already active" in outcome.message
    assert host.state().serving == before


def test_helper_containers_a_killed_deploy_left_are_removed_by_the_next(
    host: Host, releases: Releases
) -> None:
    """A deploy SIGKILLed while it reads the smoke set out of an image leaves that created container behind."""
    helper = {deploy_labels.APP: host.model_name, deploy_labels.HELPER: "read-file"}
    left = host.client.containers.create(releases["v1"], command=["true"], labels=helper)
    host.deploy(releases["v1"])
    assert "removed 1 stale helper container(s)" in host.outputs[-1]
    with pytest.raises(docker.errors.NotFound):
        host.client.containers.get(left.id or "")
    assert host.client.containers.list(all=True, filters={"label": deploy_labels.HELPER}) == []


def _config_files() -> list[bytes]:
    """A proxy's config files as `Proxy` writes them when it creates one: nothing routed."""
    text = render("unused", Split.all_to(None))
    return [single_file_tar(posixpath.basename(path), text) for path in (LIVE_CONF, LOADED_CONF)]


def test_a_crash_looping_proxy_fails_the_deploy_with_its_own_log_lines(
    host: Host, releases: Releases
) -> None:
    proxy = host.client.containers.create(
        PROXY_IMAGE,
        ["sh", "-c", "echo '[ALERT] broken on purpose' >&2; exit 1"],
        name=host.settings.proxy.container_name,
        labels={deploy_labels.APP: host.model_name},
        restart_policy=RESTART_POLICY,
    )
    for archive in _config_files():
        proxy.put_archive(posixpath.dirname(LIVE_CONF), archive)
    proxy.start()
    error = host.deploy_expecting(releases["v1"], InfrastructureError)
    assert "restarted" in str(error), error
    assert "broken on purpose" in str(error), error
    assert [
        c.id
        for c in host.client.containers.list(
            all=True, filters={"label": deploy_labels.APP + "=" + host.model_name}
        )
    ] == [proxy.id]


def test_a_proxy_whose_creation_was_interrupted_is_created_again(host: Host, releases: Releases) -> None:
    """A deploy killed between creating the proxy container and writing its config left it without one."""
    left = host.client.containers.create(
        PROXY_IMAGE, name=host.settings.proxy.container_name, labels={deploy_labels.APP: host.model_name}
    )
    host.deploy(releases["v1"])
    with pytest.raises(docker.errors.NotFound):
        host.client.containers.get(left.id or "")
    host.assert_serving("v1")


@pytest.mark.parametrize("gone", ["exited", "removed"])
def test_a_proxy_restarted_while_its_colour_is_gone_starts_and_the_next_deploy_converges(
    host: Host, releases: Releases, gone: str
) -> None:
    """What a host reboot can leave: the proxy comes back, its colour does not. The proxy finds colours by
    name at run time, so it starts anyway, and the next deploy takes over."""
    host.deploy(releases["v1"])
    colour = host.state().active_colour
    container = host.client.containers.get(colour_container_name(host.model_name, colour or ""))
    container.kill()
    if gone == "removed":
        container.remove()
    proxy = host.client.containers.get(host.settings.proxy.container_name)
    proxy.restart(timeout=0)
    proxy.reload()
    assert proxy.status == "running"
    host.deploy(releases["v2"])
    assert f"active colour {colour} was not running: proxy answers 503" in host.outputs[-1], host.outputs[-1]
    host.assert_serving("v2")
    assert _history(host)[-1].result == "deployed"


def test_a_live_config_that_names_no_colour_stops_the_deploy_before_anything_changes(
    host: Host, releases: Releases
) -> None:
    """A config read that lost its content (or a hand-edited file) must not pass for "nothing is active": that
    would remove the release that serves."""
    host.deploy(releases["v1"])
    serving = host.state().serving
    assert serving is not None
    proxy = host.client.containers.get(host.settings.proxy.container_name)
    stream, _ = proxy.get_archive(LIVE_CONF)
    live = (first_file(stream) or b"").decode()
    unmarked = "\n".join(line for line in live.splitlines() if "# split:" not in line)
    proxy.put_archive(posixpath.dirname(LIVE_CONF), single_file_tar(posixpath.basename(LIVE_CONF), unmarked))
    with host.load() as load:
        error = host.deploy_expecting(releases["v2"], InfrastructureError)
        report = load.stop()
    assert "no split line" in str(error), error
    assert report.failed == 0, report.summary()
    containers = host.client.containers.list(
        all=True, filters={"label": deploy_labels.APP + "=" + host.model_name}
    )
    assert sorted((c.name, c.status) for c in containers) == [
        (colour_container_name(host.model_name, serving.colour), "running"),
        (host.settings.proxy.container_name, "running"),
    ]


def test_a_finished_release_that_crashes_is_restarted_and_serves_again(
    host: Host, releases: Releases
) -> None:
    host.deploy(releases["v1"])
    serving = host.state().serving
    assert serving is not None
    model_version = serving.release.model_version
    colour = host.client.containers.get(colour_container_name(host.model_name, serving.colour))
    # The server exits by itself: Docker restarts only a container that nobody stopped through its API.
    exited = colour.exec_run(["sh", "-c", "kill -TERM 1"])
    assert exited.exit_code == 0, exited.output
    rest = RestClient(host.settings.proxy_rest_url, host.model_name)
    deadline = after(90)
    try:
        poll(
            lambda: (
                any(s.version == model_version and s.state == "AVAILABLE" for s in rest.status(deadline))
                or None
            ),
            deadline,
            "waiting for the crashed release to serve through the proxy again",
        )
    finally:
        rest.close()
    colour.reload()
    assert colour.attrs["RestartCount"] >= 1
    host.assert_serving("v1")


@pytest.mark.parametrize(
    ("variant", "error", "evidence"),
    [
        ("unloadable", ModelNotReady, "----- begin"),
        ("mispredicts", AnalysisFailed, "FAIL parity-rest"),
        ("incompatible", AnalysisFailed, "FAIL signature: breaking change without a major version bump"),
    ],
)
def test_bad_release_is_refused_and_the_previous_keeps_serving(
    host: Host, releases: Releases, variant: str, error: type[DeployError], evidence: str
) -> None:
    host.deploy(releases["v1"])
    before = host.state()
    with host.load() as load:
        refused = host.deploy_expecting(releases[variant], error)
        report = load.stop()
    assert report.failed == 0, report.summary()
    assert evidence in host.outputs[-1], host.outputs[-1]
    after = host.state()
    assert after == before, f"host changed: {after} != {before}"
    assert _history(host)[-1].result == "refused"
    assert str(refused) in _history(host)[-1].reason
    if variant == "mispredicts":
        assert "FAIL parity-grpc" in host.outputs[-1]


def test_too_slow_release_is_refused(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    host.settings = dataclasses.replace(
        host.settings, thresholds=dataclasses.replace(host.settings.thresholds, latency_budget_ms_p95=40)
    )
    host.deploy_expecting(releases["slow"], AnalysisFailed)
    assert "FAIL latency: p95" in host.outputs[-1]
    host.assert_serving("v1")


def test_breaking_signature_is_allowed_with_a_major_bump(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    host.deploy(releases["major"])
    assert "ok   signature: breaking change allowed by major 1 -> 2" in host.outputs[-1]
    host.assert_serving("major")


def test_killing_the_new_colour_during_bake_reverts_automatically(host: Host, releases: Releases) -> None:
    host.deploy(releases["v1"])
    new_colour = host.state().preview_colour()
    host.settings = dataclasses.replace(host.settings, bake_seconds=20)
    with host.load() as load:
        deployer, output, failure = host.deploy_killing_new_colour_in_bake(releases["v2"])
        report = load.stop()
    assert isinstance(failure, Reverted), failure
    assert "bake failed" in str(failure), failure  # the bake window saw it, not a step before
    assert deployer.restore_seconds is not None
    assert deployer.restore_seconds < 2.0
    state = host.state()
    assert state.serving is not None
    assert state.serving.release.version == "1.0.0"
    assert state.colours[new_colour].status != "running"
    assert "----- begin" in output
    assert _history(host)[-1].result == "reverted"
    # Requests in flight to the killed container, and those sent before the proxy switched back, fail;
    # the benchmark reports how many. Traffic must flow again afterwards.
    print(f"failed during auto-revert: {report.summary()}; restored in {deployer.restore_seconds:.2f} s")
    assert report.ok > 0


def test_a_host_failure_after_a_first_release_took_traffic_leaves_it_serving(
    host: Host, releases: Releases
) -> None:
    """With no other release running (a first release, or a revert whose judged colour died), a failure of the
    host rather than a verdict on the release must not take away the only release that serves. The host's
    failure is injected where Docker once lost an exec's output under load (the proxy's counters): Docker
    cannot be made to lose it on demand."""

    def counters_lost() -> dict[str, ColourTraffic]:
        raise InfrastructureError("Docker lost the proxy's answer to show stat 3 times in a row")

    def lose_the_counters_at_bake(step: int) -> None:
        if step == Step.BAKE:
            deployer.traffic.stats = counters_lost  # type: ignore[method-assign]

    deployer, out = host.deployer(on_step=lose_the_counters_at_bake)
    with pytest.raises(InfrastructureError, match="keeps serving: no previous release is running") as caught:
        deployer.run(releases["v1"])
    host.outputs.append(out.getvalue())
    assert "Docker lost the proxy's answer" in str(caught.value)
    host.assert_serving("v1")
    kept = host.client.containers.get(
        colour_container_name(host.model_name, host.state().active_colour or "")
    )
    assert kept.attrs["HostConfig"]["RestartPolicy"]["Name"] == RESTART_POLICY["Name"]
    with host.load() as load:
        poll(lambda: load.report.total >= 50 or None, after(30), "waiting for 50 answers through the proxy")
        report = load.stop()
    assert report.failed == 0, report.summary()
    assert _history(host)[-1].result == history.RESULT_FAILED
    host.deploy(releases["v2"])  # the next deploy takes over from it
    host.assert_serving("v2")


def test_concurrent_deploys_take_turns(host: Host, releases: Releases) -> None:
    host.settings = dataclasses.replace(host.settings, lock_timeout=120)
    host.deploy(releases["v1"])
    results: list[object] = []

    def deploy() -> None:
        deployer, _ = host.deployer()
        try:
            results.append(deployer.run(releases["v2"]))
        except BaseException as exc:
            results.append(exc)

    with host.load() as load:
        threads = [threading.Thread(target=deploy) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=300)
        report = load.stop()
    assert report.failed == 0, report.summary()
    changed = sorted(getattr(result, "changed", None) is True for result in results)
    assert changed == [False, True], results
    host.assert_serving("v2")
