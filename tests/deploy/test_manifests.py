"""The deployment files agree with the code: commands, settings, routes and metrics they name
exist, and the security properties the docs promise hold."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from prometheus_client import REGISTRY, generate_latest

# Imported for their side effect: registering the metrics the dashboards query.
import shopkeeper.core.observability
import shopkeeper.crawl.metrics
import shopkeeper.logs.alerts.evaluator
import shopkeeper.logs.alerts.handlers
import shopkeeper.logs.metrics
import shopkeeper.logs.retention  # noqa: F401
from shopkeeper.app import create_app
from shopkeeper.cli import app as cli_app
from shopkeeper.core.settings import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
K8S = DEPLOY / "k8s"
# Read by compose/Kubernetes themselves (to fill `serve --workers`, ClickHouse's own user), not
# by Settings.
DEPLOYMENT_ONLY_VARIABLES = {"SHOPKEEPER_WEB_WORKERS", "CLICKHOUSE_PASSWORD"}


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
    argvs = [
        service["command"]
        for service in services.values()
        if service.get("image", "").startswith("${SHOPKEEPER_IMAGE")
    ]
    argvs += [container["args"] for _, spec in pod_specs() for container in spec["containers"]]
    root = typer.main.get_command(cli_app)
    used = set()
    for argv in argvs:
        # Walk the command groups as the CLI would: every word up to the first option.
        command, path = root, []
        for word in argv:
            subcommands = getattr(command, "commands", None)
            if word.startswith("-") or subcommands is None:
                break
            found = subcommands.get(word)
            assert found is not None, f"`shopkeeper {' '.join([*path, word])}` does not exist"
            command, path = found, [*path, word]
        used.add(" ".join(path))
    assert used == {
        "migrate",
        "serve",
        "worker",
        "scheduler",
        "crawl worker",
        "logs writer",
        "logs syslog",
    }


def test_every_shopkeeper_variable_names_a_real_setting() -> None:
    fields = {f"SHOPKEEPER_{name.upper()}" for name in Settings.model_fields}
    named: set[str] = set()
    named.update(compose()["x-shopkeeper"]["environment"])
    named.update(compose()["services"]["api"]["environment"])
    for doc in k8s_documents():
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "shopkeeper":
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


def test_the_cluster_schema_file_is_the_one_the_code_writes() -> None:
    from shopkeeper.logs.store.schema import cluster_ddl

    sql = (DEPLOY / "clickhouse" / "schema.sql").read_text()
    statements = "\n".join(line for line in sql.splitlines() if not line.startswith("--"))
    assert statements.strip() == cluster_ddl("shopkeeper").strip()
    services = compose()["services"]
    # Every process that reads or writes logs uses the cluster, through a node of it.
    url = services["api"]["environment"]["SHOPKEEPER_LOGS_CLICKHOUSE_URL"]
    assert "@clickhouse-1:8123" in url
    assert services["logs-writer"]["command"][:2] == ["logs", "writer"]
