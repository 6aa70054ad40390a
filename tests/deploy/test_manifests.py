"""The deployment files agree with the code: commands, settings, routes and metrics they name
exist, and the security properties the docs promise hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY, generate_latest

# Imported for their side effect: registering the metrics the dashboards query.
import shopkeeper.core.observability
import shopkeeper.crawl.metrics  # noqa: F401
from shopkeeper.app import create_app
from shopkeeper.cli import app as cli_app
from shopkeeper.core.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
# Read by compose/Kubernetes themselves (to fill `serve --workers`), not by Settings.
DEPLOYMENT_ONLY_VARIABLES = {"SHOPKEEPER_WEB_WORKERS"}


def cli_commands() -> set[str]:
    return {command.name or command.callback.__name__ for command in cli_app.registered_commands}


def cli_groups() -> set[str]:
    return {group.name for group in cli_app.registered_groups if group.name}


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def k8s_documents() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc)
    return documents


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    specs = []
    for doc in k8s_documents():
        if doc["kind"] in {"Deployment", "Job"}:
            specs.append((doc["metadata"]["name"], doc["spec"]["template"]["spec"]))
    return specs


def test_every_shopkeeper_command_the_topology_runs_exists() -> None:
    services = compose()["services"]
    used = {
        " ".join(services[name]["command"][:2]).removesuffix(" --metrics-host")
        for name in services
        if services[name].get("image", "").startswith("${SHOPKEEPER_IMAGE")
    }
    for _, spec in pod_specs():
        for container in spec["containers"]:
            used.add(" ".join(container["args"][:2]).removesuffix(" --metrics-host"))
    commands = {command.split()[0] for command in used}
    assert commands == {"migrate", "serve", "worker", "scheduler", "crawl"}
    assert commands <= cli_commands() | cli_groups()
    assert "crawl worker" in used


def test_every_shopkeeper_variable_names_a_real_setting() -> None:
    fields = {f"SHOPKEEPER_{name.upper()}" for name in Settings.model_fields}
    named: set[str] = set()
    named.update(compose()["x-shopkeeper"]["environment"])
    named.update(compose()["services"]["api"]["environment"])
    for doc in k8s_documents():
        if doc["kind"] == "ConfigMap":
            named.update(doc["data"])
    named.update(yaml.safe_load((K8S / "secret.example.yaml").read_text())["stringData"])
    named.discard("<<")
    unknown = {name for name in named if name not in fields} - DEPLOYMENT_ONLY_VARIABLES
    assert not unknown, f"not settings (typos are silently ignored at run time): {unknown}"


def test_only_nginx_publishes_a_port_and_metrics_stay_inside() -> None:
    services = compose()["services"]
    assert "ports" not in services["api"]
    assert services["nginx"]["ports"]
    for internal in ("prometheus", "grafana"):
        assert all(port.startswith("127.0.0.1:") for port in services[internal]["ports"])
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert re.search(r"location /metrics \{\s*return 404;", nginx)
    ingress = next(doc for doc in k8s_documents() if doc["kind"] == "Ingress")
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert not any(path in ("/", "/metrics") for path in paths)


def test_containers_run_as_non_root_with_read_only_root() -> None:
    for name, spec in pod_specs():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] != 0, name
        for container in spec["containers"]:
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM .+ AS \w+", dockerfile, re.MULTILINE)) == 2
    assert re.search(r"^USER 10001", dockerfile, re.MULTILINE)
    assert "--constraint requirements.lock" in dockerfile


def test_api_probes_point_at_the_health_routes(tmp_path: Path) -> None:
    routes = set(create_app(Settings(var_dir=tmp_path)).openapi()["paths"])
    api = next(spec for name, spec in pod_specs() if name == "shopkeeper-api")
    container = api["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert {"/health/ready", "/health/live", "/metrics"} <= routes


def test_the_secret_template_holds_no_secret_and_is_not_applied() -> None:
    template = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert all(value == "" for value in template["stringData"].values())
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert "secret.example.yaml" not in kustomization["resources"]
    assert all((K8S / resource).exists() for resource in kustomization["resources"])


def exposed_metric_names() -> set[str]:
    families = re.findall(r"^# TYPE (\S+) (\S+)", generate_latest(REGISTRY).decode(), re.MULTILINE)
    names = set()
    for family, kind in families:
        names.add(family)
        if kind == "counter":
            names.add(family + "_total")
        if kind == "histogram":
            names.update(family + suffix for suffix in ("_bucket", "_sum", "_count"))
    return names


@pytest.mark.parametrize(
    "metric",
    sorted(
        set(
            re.findall(
                r"shopkeeper_[a-z_]+",
                " ".join(
                    target["expr"]
                    for dashboard in sorted((DEPLOY / "grafana/dashboards").glob("*.json"))
                    for panel in json.loads(dashboard.read_text())["panels"]
                    for target in panel["targets"]
                ),
            )
        )
    ),
)
def test_the_dashboard_only_queries_metrics_the_app_exports(metric: str) -> None:
    assert metric in exposed_metric_names()


def test_the_dashboard_covers_the_business_counters() -> None:
    dashboard = (DEPLOY / "grafana/dashboards/shopkeeper.json").read_text()
    for metric in (
        "shopkeeper_http_requests_total",
        "shopkeeper_http_request_duration_seconds_bucket",
        "shopkeeper_orders_created_total",
        "shopkeeper_payments_succeeded_total",
        "shopkeeper_callbacks_rejected_total",
    ):
        assert metric in dashboard


def _option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_prometheus_scrapes_the_port_worker_and_scheduler_serve_metrics_on() -> None:
    import typer.core
    import typer.main

    group = typer.main.get_command(cli_app)
    assert isinstance(group, typer.core.TyperGroup)
    commands = group.commands
    services = compose()["services"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in prometheus["scrape_configs"]}
    pods = {doc["metadata"]["name"]: doc for doc in k8s_documents() if doc["kind"] == "Deployment"}
    for name in ("worker", "scheduler"):
        options = {param.opts[0] for param in commands[name].params}
        assert {"--metrics-port", "--metrics-host"} <= options

        command = services[name]["command"]
        port = int(_option(command, "--metrics-port"))
        assert _option(command, "--metrics-host") == "0.0.0.0"  # default 127.0.0.1: unreachable
        assert str(port) in services[name]["expose"]
        assert "ports" not in services[name]
        [discovery] = jobs[f"shopkeeper-{name}"]["dns_sd_configs"]
        assert (discovery["names"], discovery["port"]) == ([name], port)

        template = pods[f"shopkeeper-{name}"]["spec"]["template"]
        [container] = template["spec"]["containers"]
        port = int(_option(container["args"], "--metrics-port"))
        assert _option(container["args"], "--metrics-host") == "0.0.0.0"
        assert [p["containerPort"] for p in container["ports"]] == [port]
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
