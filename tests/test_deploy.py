"""deploy/ of every answer combination that shapes it, rendered and checked the way a cluster would.

For each case: the generated `gitops set-image` puts a digest into every overlay, Kustomize
renders each overlay and deploy/argocd, built-in kinds pass kubernetes-validate in strict
mode for the oldest and newest supported Kubernetes, Argo CD and Prometheus Operator
resources pass their real CRD schemas with unknown fields rejected, and the rendered
objects say what they must: the digest that was set, namespaces and replicas per
environment, probes on real server endpoints, selectors that match the pods, the
NetworkPolicy port that the container listens on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import re
import runpy
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from k8s import kustomize, validate

from modelyard.probe import (
    fp32_tensor,
    free_port,
    infer_json,
    output_named,
    status_of,
    wait_until_ready,
)
from modelyard.questions import load_questions

from ci_tools import tool, tool_env
from conftest import render
from matrix import NON_DEFAULT_TEXT, choice_values

# The questions whose answers change deploy/ or the gitops settings: every valid
# combination of their choices is rendered.
DEPLOY_QUESTIONS = ("environments", "gitops_mode")
# Free-text answers that reach deploy/: every other environment set takes these, so that no
# assertion can pass by reading a default.
NON_DEFAULT_DEPLOY_TEXT: dict[str, Any] = {
    name: NON_DEFAULT_TEXT[name]
    for name in (
        "project_name",
        "repo_slug",
        "package_name",
        "image_repository",
        "namespace_prefix",
        "gitops_repo_url",
        "argocd_namespace",
    )
}
PROMOTION_ORDER = ("dev", "staging", "prod")
EXPECTED_REPLICAS = {"dev": 1, "staging": 2, "prod": 3}
EXPECTED_HPA_BOUNDS = {"dev": (1, 2), "staging": (2, 4), "prod": (3, 10)}
HEALTH_LIVE, HEALTH_READY = "/v2/health/live", "/v2/health/ready"
ARGOCD_KINDS = {"AppProject", "Application"}
MONITORING_KINDS = {"ServiceMonitor", "PrometheusRule"}


# --- the cases, from copier.yml -------------------------------------------------------


def deploy_cases() -> list[dict[str, Any]]:
    questions = {question.name: question for question in load_questions()}
    assert set(DEPLOY_QUESTIONS) <= set(questions), "a deploy question left copier.yml"
    answer_lists = [choice_values(questions[name]) for name in DEPLOY_QUESTIONS]
    cases = []
    for combination in itertools.product(*answer_lists):
        case = dict(zip(DEPLOY_QUESTIONS, combination, strict=True))
        # Alternate the free-text answers by the first question's answer: cases that differ
        # only in the others render identical overlays, which the build cache then reuses.
        if answer_lists[0].index(combination[0]) % 2 == 1:
            case.update(NON_DEFAULT_DEPLOY_TEXT)
        cases.append(case)
    return cases


CASES = deploy_cases()


def case_id(case: dict[str, Any]) -> str:
    parts = []
    for name in DEPLOY_QUESTIONS:
        value = case[name]
        parts.append("+".join(value) if isinstance(value, list) else str(value))
    return "-".join(parts)


def test_cases_cover_every_choice_of_every_deploy_question():
    for question in load_questions():
        if question.name not in DEPLOY_QUESTIONS:
            continue
        seen = set()
        for case in CASES:
            value = case[question.name]
            seen.update(value if isinstance(value, list) else [value])
        assert seen == set(question.choice_values), question.name
    assert any(case.get("repo_slug") for case in CASES), "no case with non-default names"


def test_the_environment_validator_is_what_filters_the_cases():
    environments = next(q for q in load_questions() if q.name == "environments")
    assert environments.validation_error(["staging", "prod"]) != ""
    assert all("dev" in case["environments"] for case in CASES)
    assert len({tuple(case["environments"]) for case in CASES}) == 4


# --- rendering and validating ---------------------------------------------------------


@dataclasses.dataclass
class Rendered:
    answers: dict[str, Any]
    repo: Path
    digests: dict[str, str]
    overlays: dict[str, list[dict[str, Any]]]
    argocd: list[dict[str, Any]]

    @property
    def environments(self) -> list[str]:
        return self.answers["environments"]

    def answer(self, name: str) -> Any:
        if name in self.answers:
            return self.answers[name]
        return yaml.safe_load((self.repo / ".copier-answers.yml").read_text("utf-8"))[name]

    def namespace(self, environment: str) -> str:
        return f"{self.answer('namespace_prefix')}-{environment}"


def set_images(repo: Path, package: str, images: dict[str, str]) -> None:
    """`gitops set-image` of the rendered repository for each environment, in one process
    (the CLI's own `main`, as `python -m` runs it) to spare an interpreter start per call."""
    calls = [
        [
            "gitops", "set-image", "--env", environment, "--image", image,
            "--model-version", f"1.0.0+g{environment}", "--metrics-digest", "sha256:" + "5" * 64,
        ]
        for environment, image in images.items()
    ]  # fmt: skip
    script = (
        "import json, sys\n"
        f"from {package}.cli import main\n"
        "sys.exit(max(main(argv) for argv in json.loads(sys.argv[1])))\n"
    )
    environment = {**tool_env(), "PYTHONPATH": str(repo / "src")}
    environment.pop("GITOPS_REPO_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(calls)],
        cwd=repo,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(" now runs ") == len(images), result.stdout


def digest_for(environment: str) -> str:
    return "sha256:" + hashlib.sha256(environment.encode()).hexdigest()


@pytest.fixture(scope="module", params=CASES, ids=case_id)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    answers = request.param
    repo = render(tmp_path_factory.mktemp("deploy") / "repo", answers)
    recorded = yaml.safe_load((repo / ".copier-answers.yml").read_text("utf-8"))
    digests = {environment: digest_for(environment) for environment in answers["environments"]}
    set_images(
        repo,
        recorded["package_name"],
        {env: f"{recorded['image_repository']}@{digest}" for env, digest in digests.items()},
    )
    deploy_dir = repo / "deploy"
    overlays = {
        environment: kustomize(deploy_dir / "overlays" / environment, deploy_dir)
        for environment in answers["environments"]
    }
    return Rendered(
        answers=answers,
        repo=repo,
        digests=digests,
        overlays=overlays,
        argocd=kustomize(deploy_dir / "argocd", deploy_dir),
    )


def by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = by_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def server_container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def config_of(docs: list[dict[str, Any]]) -> dict[str, str]:
    container = server_container(docs)
    (source,) = container["envFrom"]
    names = {doc["metadata"]["name"]: doc for doc in by_kind(docs, "ConfigMap")}
    assert source["configMapRef"]["name"] in names, "envFrom names no rendered ConfigMap"
    return names[source["configMapRef"]["name"]]["data"]


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


# --- what every case must show --------------------------------------------------------


def test_exactly_the_chosen_environments_have_an_overlay(rendered):
    overlays = rendered.repo / "deploy" / "overlays"
    assert sorted(path.name for path in overlays.iterdir()) == sorted(rendered.environments)
    applications = by_kind(rendered.argocd, "Application")
    assert sorted(app["metadata"]["labels"]["environment"] for app in applications) == sorted(
        rendered.environments
    )


def test_every_resource_validates_strictly(rendered, crd_validators):
    for docs in [*rendered.overlays.values(), rendered.argocd]:
        for doc in docs:
            validate(doc, crd_validators)


def test_the_image_is_the_digest_that_was_set(rendered):
    repository = rendered.answer("image_repository")
    for environment, docs in rendered.overlays.items():
        deployment = one(docs, "Deployment")
        expected = f"{repository}@{rendered.digests[environment]}"
        assert server_container(docs)["image"] == expected
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["modelyard.io/model-version"] == f"1.0.0+g{environment}"


def test_namespace_replicas_and_bounds_per_environment(rendered):
    for environment, docs in rendered.overlays.items():
        assert {doc["metadata"]["namespace"] for doc in docs} == {rendered.namespace(environment)}
        replicas = one(docs, "Deployment")["spec"]["replicas"]
        hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
        assert replicas == EXPECTED_REPLICAS[environment]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == EXPECTED_HPA_BOUNDS[environment]
        assert hpa["minReplicas"] <= replicas <= hpa["maxReplicas"]


def test_selectors_and_references_match_the_pods(rendered):
    slug = rendered.answer("repo_slug")
    for docs in rendered.overlays.values():
        deployment = one(docs, "Deployment")
        pod = deployment["spec"]["template"]
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == slug
        selectors = [
            deployment["spec"]["selector"]["matchLabels"],
            one(docs, "Service")["spec"]["selector"],
            one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
            one(docs, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
            *(c["labelSelector"]["matchLabels"] for c in pod["spec"]["topologySpreadConstraints"]),
        ]
        for selector in selectors:
            # Naming the model: two models in one namespace never select each other's pods.
            assert matches(selector, labels) and selector["app.kubernetes.io/name"] == slug
        target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
        account = one(docs, "ServiceAccount")
        assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
        config_of(docs)

        service = one(docs, "Service")
        container_ports = {
            port["name"]: port["containerPort"] for port in server_container(docs)["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in container_ports
        monitor = one(docs, "ServiceMonitor")
        assert matches(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
        service_ports = {port["name"] for port in service["spec"]["ports"]}
        assert {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]} <= service_ports
        assert [endpoint["path"] for endpoint in monitor["spec"]["endpoints"]] == ["/metrics"]


def test_the_network_policy_admits_only_the_container_port(rendered):
    for docs in rendered.overlays.values():
        (container_port,) = server_container(docs)["ports"]
        policy = one(docs, "NetworkPolicy")["spec"]
        assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
        assert policy["egress"] == []
        (rule,) = policy["ingress"]
        assert rule["ports"] == [{"protocol": "TCP", "port": container_port["containerPort"]}]
        assert "from" not in rule  # clients and the Prometheus scrape come from anywhere
        assert int(config_of(docs)["SERVER_PORT"]) == container_port["containerPort"]


def test_probes_point_at_health_endpoints_and_drain_fits_the_grace_period(rendered):
    for docs in rendered.overlays.values():
        container = server_container(docs)
        port_names = {port["name"] for port in container["ports"]}
        probes = {
            name: container[name]["httpGet"]
            for name in ("startupProbe", "readinessProbe", "livenessProbe")
        }
        assert probes["readinessProbe"]["path"] == HEALTH_READY
        assert probes["livenessProbe"]["path"] == HEALTH_LIVE
        # Startup gates liveness on the model having loaded, which only readiness tells.
        assert probes["startupProbe"]["path"] == HEALTH_READY
        assert all(probe["port"] in port_names for probe in probes.values())
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        pause = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        drain = float(config_of(docs)["SERVER_DRAIN_SECONDS"])
        assert pod["terminationGracePeriodSeconds"] > pause + drain


def test_pods_run_locked_down_as_the_image_user(rendered):
    dockerfile = (rendered.repo / "Dockerfile").read_text(encoding="utf-8")
    uid, gid = re.search(r"^USER (\d+):(\d+)$", dockerfile, re.MULTILINE).groups()
    for docs in rendered.overlays.values():
        pod = one(docs, "Deployment")["spec"]["template"]["spec"]
        container = server_container(docs)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert (pod["securityContext"]["runAsUser"], pod["securityContext"]["runAsGroup"]) == (
            int(uid),
            int(gid),
        )
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        (mount,) = container["volumeMounts"]
        (volume,) = pod["volumes"]
        assert mount["mountPath"] == "/tmp" and "emptyDir" in volume
        assert pod["automountServiceAccountToken"] is False
        assert one(docs, "ServiceAccount")["automountServiceAccountToken"] is False
        assert set(container["resources"]) == {"requests", "limits"}


def test_argocd_reads_the_overlays_from_the_configured_repository(rendered):
    url = rendered.answer("gitops_repo_url")
    project = one(rendered.argocd, "AppProject")
    assert {doc["kind"] for doc in rendered.argocd} == ARGOCD_KINDS
    assert {doc["metadata"]["namespace"] for doc in rendered.argocd} == {
        rendered.answer("argocd_namespace")
    }
    assert project["spec"]["sourceRepos"] == [url]
    assert sorted(d["namespace"] for d in project["spec"]["destinations"]) == sorted(
        rendered.namespace(env) for env in rendered.environments
    )
    allowed = {entry["kind"] for entry in project["spec"]["namespaceResourceWhitelist"]}
    for environment, docs in rendered.overlays.items():
        assert {doc["kind"] for doc in docs} <= allowed, "the project would refuse a kind"
        (app,) = [
            a
            for a in by_kind(rendered.argocd, "Application")
            if a["metadata"]["labels"]["environment"] == environment
        ]
        spec = app["spec"]
        assert spec["project"] == project["metadata"]["name"]
        assert (spec["source"]["repoURL"], spec["source"]["path"]) == (
            url,
            f"deploy/overlays/{environment}",
        )
        assert spec["destination"]["namespace"] == rendered.namespace(environment)
        automated = spec["syncPolicy"].get("automated")
        if environment == "prod":
            assert automated is None, "prod must be synced by hand"
        else:
            assert automated == {"prune": True, "selfHeal": True}


def test_the_gitops_stage_targets_what_argocd_reads(rendered):
    package = rendered.answer("package_name")
    settings = runpy.run_path(str(rendered.repo / "src" / package / "gitops" / "settings.py"))
    applications = by_kind(rendered.argocd, "Application")
    assert settings["GITOPS_MODE"] == rendered.answers["gitops_mode"]
    assert settings["ENVIRONMENTS"] == rendered.environments
    assert {app["spec"]["source"]["repoURL"] for app in applications} == {
        settings["GITOPS_REPO_URL"]
    }
    assert {app["spec"]["source"]["targetRevision"] for app in applications} == {
        settings["GITOPS_BRANCH"]
    }


def test_alerts_cover_errors_latency_and_restarts_of_this_model(rendered):
    slug = rendered.answer("repo_slug")
    for environment, docs in rendered.overlays.items():
        groups = one(docs, "PrometheusRule")["spec"]["groups"]
        rules = {
            rule.get("alert") or rule["record"]: rule["expr"]
            for group in groups
            for rule in group["rules"]
        }
        assert {
            "ModelServerHighErrorRate",
            "ModelServerHighLatencyP99",
            "ModelServerRestarting",
        } <= set(rules)
        assert "histogram_quantile(0.99" in rules["ModelServerHighLatencyP99"]
        assert "kube_pod_container_status_restarts_total" in rules["ModelServerRestarting"]
        assert {"ModelPredictionDrift", "ModelInputDrift"} <= set(rules)
        for name, expr in rules.items():
            assert f'job="{slug}"' in expr or "namespace=~" in expr, name
        pattern = re.search(r'namespace=~"([^"]+)"', rules["ModelServerRestarting"]).group(1)
        assert re.fullmatch(pattern, rendered.namespace(environment))
        dashboard = one(
            [d for d in docs if "grafana_dashboard" in d["metadata"]["labels"]], "ConfigMap"
        )
        (text,) = dashboard["data"].values()
        assert json.loads(text)["title"].endswith("model server")


def test_yamllint_is_clean(rendered):
    config = rendered.repo / ".yamllint.yaml"
    arguments = ["-c", str(config)] if config.is_file() else []
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "-f", "parsable", *arguments, "deploy"],
        cwd=rendered.repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- once -----------------------------------------------------------------------------


def test_an_overlay_without_the_monitoring_component_still_renders(
    default_repo, tmp_path, crd_validators
):
    deploy_dir = tmp_path / "deploy"
    shutil.copytree(default_repo / "deploy", deploy_dir)
    path = deploy_dir / "overlays" / "dev" / "kustomization.yaml"
    kustomization = yaml.safe_load(path.read_text(encoding="utf-8"))
    del kustomization["components"]
    path.write_text(yaml.safe_dump(kustomization), encoding="utf-8")

    docs = kustomize(deploy_dir / "overlays" / "dev", deploy_dir)

    assert not {doc["kind"] for doc in docs} & MONITORING_KINDS
    assert not [doc for doc in docs if "grafana_dashboard" in doc["metadata"].get("labels", {})]
    for doc in docs:
        validate(doc, crd_validators)


def test_the_validators_reject_a_misspelt_field(default_repo, crd_validators):
    deploy_dir = default_repo / "deploy"
    application = by_kind(kustomize(deploy_dir / "argocd", deploy_dir), "Application")[0]
    application["spec"]["syncPolicy"]["automatd"] = {"prune": True}
    with pytest.raises(AssertionError, match="automatd"):
        validate(application, crd_validators)
    docs = kustomize(deploy_dir / "overlays" / "dev", deploy_dir)
    monitor = one(docs, "ServiceMonitor")
    monitor["spec"]["endpoints"][0]["pth"] = "/metrics"
    with pytest.raises(AssertionError, match="pth"):
        validate(monitor, crd_validators)
    deployment = one(docs, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment, crd_validators)


def _tiny_onnx_model(
    path: Path, channels: int, height: int, width: int, classes: int, drift_module: Path
) -> None:
    """A MatMul classifier with the drift reference that the export stage records (built
    by the generated repo's own drift.py), so that every drift metric is exported."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    drift = runpy.run_path(str(drift_module))
    samples = np.random.default_rng(0).random((500, channels, height, width), np.float32)
    logits = samples.reshape(500, -1) @ np.full((channels * height * width, classes), 0.01)
    summary = drift["InputSummary"]("axis-mean", axis=1)
    reference = drift["build_reference"](samples, logits, "input", summary)

    features = channels * height * width
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["input", "shape"], ["flat"]),
            helper.make_node("MatMul", ["flat", "weights"], ["logits"]),
        ],
        "tiny",
        [
            helper.make_tensor_value_info(
                "input", TensorProto.FLOAT, ["batch", channels, height, width]
            )
        ],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", classes])],
        [
            numpy_helper.from_array(np.full((features, classes), 0.01, np.float32), "weights"),
            numpy_helper.from_array(np.array([-1, features], np.int64), "shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    helper.set_model_props(model, {drift["METADATA_KEY"]: reference.to_json()})
    onnx.save(model, path)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_server_answers_the_probes_and_exports_what_the_alerts_query(default_repo, tmp_path):
    """The real server, configured only by the rendered ConfigMap as a pod would be."""
    deploy_dir = default_repo / "deploy"
    docs = kustomize(deploy_dir / "overlays" / "dev", deploy_dir)
    container = server_container(docs)
    answers = yaml.safe_load((default_repo / ".copier-answers.yml").read_text("utf-8"))
    channels, height, width = map(int, answers["input_shape"].split("x"))
    model = tmp_path / "model.onnx"
    drift_module = default_repo / "src" / answers["package_name"] / "drift.py"
    _tiny_onnx_model(model, channels, height, width, answers["num_classes"], drift_module)
    port = free_port()
    environment = {
        **tool_env(),
        **config_of(docs),
        # What the image sets (Dockerfile) and what only a test may change.
        "SERVER_MODEL_PATH": str(model),
        "SERVER_PORT": str(port),
        "SERVER_HOST": "127.0.0.1",
        "PYTHONPATH": str(default_repo / "src"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", answers["package_name"], "serve"],
        cwd=tmp_path,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_ready(base, lambda: server.poll() is None)
        for name in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert status_of(base + container[name]["httpGet"]["path"]) == 200, name
        shape = [1, channels, height, width]
        tensor = fp32_tensor(shape, [0.5] * math.prod(shape))
        answer = infer_json(base, answers["repo_slug"], tensor)
        assert output_named(answer)["shape"] == [1, answers["num_classes"]]
        status, exposition = _get(base + "/metrics")
        assert status == 200
    finally:
        server.terminate()
        server.communicate(timeout=60)

    queried = set()
    for doc in docs:
        if doc["kind"] == "PrometheusRule":
            queried |= {rule["expr"] for group in doc["spec"]["groups"] for rule in group["rules"]}
        if "grafana_dashboard" in doc["metadata"].get("labels", {}):
            (text,) = doc["data"].values()
            queried |= {t["expr"] for p in json.loads(text)["panels"] for t in p["targets"]}
    names = set(re.findall(r"\bmodelserver_[a-z_]+", " ".join(queried)))
    assert names, "no alert or panel queries the server's metrics"
    exported = set(re.findall(r"^(modelserver_[a-z_]+)", exposition, re.MULTILINE))
    assert names <= exported, f"queried but not exported: {sorted(names - exported)}"
    assert re.search(r'^modelserver_requests_total\{.*endpoint="infer"', exposition, re.MULTILINE)


# One hour of traffic at one sample a minute, as Prometheus would have scraped it.
_MINUTES = 120


def _series(name: str, labels: dict[str, str], per_minute: float) -> dict[str, str]:
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}}}", "values": f"0+{per_minute:g}x{_MINUTES}"}


def _drift_traffic(
    base: dict[str, str], predicted: list[float], input_bins: list[float]
) -> list[dict[str, str]]:
    """Counters of one server pod: predictions per class and inputs per bin per minute,
    and the reference the server exports (ten classes, three features, ten bins)."""
    series = []
    for index, rate in enumerate(predicted):
        labels = {**base, "class": f"class_{index}"}
        series.append(_series("modelserver_predictions_total", labels, rate))
        series.append(
            {
                "series": _series("modelserver_reference_prediction_share", labels, 0)["series"],
                "values": f"0.1x{_MINUTES}",
            }
        )
    for feature in range(3):
        for b, rate in enumerate(input_bins):
            labels = {**base, "feature": str(feature), "bin": str(b)}
            series.append(_series("modelserver_input_feature_bin_total", labels, rate))
            series.append(
                {
                    "series": _series("modelserver_reference_input_bin_share", labels, 0)["series"],
                    "values": f"0.1x{_MINUTES}",
                }
            )
    return series


def test_drift_alerts_fire_on_shifted_traffic_and_stay_quiet_on_steady_traffic(rendered, tmp_path):
    """The PrometheusRule's drift rules, evaluated by Prometheus' own rule engine
    (promtool test rules) on the series the server exports."""
    environment = rendered.answers["environments"][0]
    rule = one(rendered.overlays[environment], "PrometheusRule")
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}), "utf-8")
    check = subprocess.run(
        [tool("promtool"), "check", "rules", str(rules_file)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr

    annotations = {
        entry["alert"]: entry["annotations"]
        for group in rule["spec"]["groups"]
        for entry in group["rules"]
        if "alert" in entry
    }
    base = {
        "job": rendered.answer("repo_slug"),
        "namespace": rendered.namespace(environment),
        "pod": "server-0",
    }
    steady = _drift_traffic(base, [10.0] * 10, [3.0] * 10)
    # One class takes over the predictions; inputs pile into the top decile.
    shifted = _drift_traffic(base, [80.0] + [2.0] * 9, [0.0] * 9 + [30.0])
    # The same shift at 2 predictions a minute: too few (120 in the hour) to alert on.
    quiet = _drift_traffic(base, [2.0] + [0.0] * 9, [0.0] * 9 + [2.0])

    def expected(alertname: str, fires: bool) -> dict[str, Any]:
        alerts = []
        if fires:
            labels = {"alertname": alertname, "severity": "warning"}
            labels |= {"namespace": base["namespace"], "job": base["job"]}
            alerts = [{"exp_labels": labels, "exp_annotations": annotations[alertname]}]
        return {"eval_time": "100m", "alertname": alertname, "exp_alerts": alerts}

    tests = []
    for series, fires in ((steady, False), (shifted, True), (quiet, False)):
        tests.append(
            {
                "interval": "1m",
                "input_series": series,
                "alert_rule_test": [
                    expected("ModelPredictionDrift", fires),
                    expected("ModelInputDrift", fires),
                ],
            }
        )
    # The recorded PSI itself: steady traffic matches the reference exactly.
    tests[0]["promql_expr_test"] = [
        {
            "expr": "modelserver:prediction_psi:1h",
            "eval_time": "100m",
            "exp_samples": [
                {
                    "labels": f'modelserver:prediction_psi:1h{{job="{base["job"]}",'
                    f'namespace="{base["namespace"]}"}}',
                    "value": 0,
                }
            ],
        }
    ]
    test_file = tmp_path / "drift_test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [rules_file.name], "tests": tests}), "utf-8")
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(test_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
