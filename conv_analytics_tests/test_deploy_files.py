"""deploy/ without Docker or Kubernetes: every command, module, variable and file the Dockerfile,
docker-compose.yaml, values.yaml and example.env name must exist in the project (Docker cannot be
installed here, so `docker compose config` is not run); dagster.yaml must pass Dagster's own schema."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster._core.instance.config import dagster_instance_config

from conv_analytics.cli import main
from conv_analytics.config import Config
from conv_analytics.executors import celery_config, executor_for

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
SETTINGS = {setting.env for setting in Config.settings()}
# Dagster's storage settings (deploy/dagster.yaml) and the usual AWS credentials boto3 reads
OTHER_VARIABLES = {
    "DAGSTER_PG_HOST",
    "DAGSTER_PG_PORT",
    "DAGSTER_PG_USERNAME",
    "DAGSTER_PG_PASSWORD",
    "DAGSTER_PG_DB",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
}
OUR_COMMANDS = {"dagster", "dagster-webserver", "dagster-daemon", "conv-analytics"}


def _compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yaml").read_text(encoding="utf-8"))


def _example_env() -> dict[str, str]:
    """NAME -> value of every variable in example.env, set or left commented with its default."""
    found = {}
    for line in (DEPLOY / "example.env").read_text(encoding="utf-8").splitlines():
        match = re.fullmatch(r"#? ?([A-Z][A-Z0-9_]*)=(.*)", line.strip())
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _check_command(command: list[str]) -> None:
    """The program is ours or Dagster's, a `-m` module imports, a conv-analytics subcommand exists."""
    assert command[0] in OUR_COMMANDS, command
    if "-m" in command:
        module = command[command.index("-m") + 1]
        assert importlib.util.find_spec(module) is not None, f"{module} of {command} is not a module"
    if command[0] == "conv-analytics":
        assert command[1] in main.commands, f"conv-analytics has no command {command[1]!r}"


def test_example_env_lists_every_setting_and_nothing_else() -> None:
    names = set(_example_env())
    assert SETTINGS - names == set(), f"add to deploy/example.env: {sorted(SETTINGS - names)}"
    assert names - SETTINGS - OTHER_VARIABLES == set(), f"not settings: {sorted(names - SETTINGS - OTHER_VARIABLES)}"
    # the values it sets are valid
    config = Config({name: value for name, value in _example_env().items() if name in SETTINGS and value})
    assert config.problems() == {}


def test_compose_services_run_our_commands_with_existing_settings() -> None:
    compose = _compose()
    ours = {name: s for name, s in compose["services"].items() if s.get("image", "").startswith("conv-analytics")}
    assert set(ours) == {"code-server", "webserver", "daemon", "worker"}
    text = (DEPLOY / "docker-compose.yaml").read_text(encoding="utf-8")
    interpolated = set(re.findall(r"(?<!\$)\$\{([A-Z_]+)\}", text))  # $${X} is left to the container's shell
    assert interpolated <= set(_example_env()), interpolated - set(_example_env())
    workspace = yaml.safe_load((DEPLOY / "workspace.yaml").read_text(encoding="utf-8"))["load_from"][0]["grpc_server"]
    code_server = ours["code-server"]["command"]
    assert workspace["host"] in compose["services"]
    assert str(workspace["port"]) == code_server[code_server.index("-p") + 1]
    for name, service in ours.items():
        _check_command(service["command"])
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert service["env_file"] == ".env"  # the secrets: never committed
        unknown = set(service.get("environment", {})) - SETTINGS - OTHER_VARIABLES
        assert not unknown, f"{name} sets variables that are no setting: {unknown}"
        assert not Config(service["environment"]).problems()
        for volume in service["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).is_file(), f"{name} mounts the missing {source}"
    # the env file is ignored by git, so secrets cannot be committed by accident
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/.env"], cwd=REPO)
    assert ignored.returncode == 0, "deploy/.env is not in .gitignore"
    assert {"postgres", "redis"} <= set(compose["services"])
    optional = {name for name, s in compose["services"].items() if "servers" in s.get("profiles", [])}
    assert optional == {"nocodb", "mongodb", "s3"}


def test_dockerfile_is_slim_non_root_without_dev_extras_and_checks_its_health() -> None:
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    instructions = [line.split()[0] for line in text.splitlines() if line and not line[0].isspace() and line[0] != "#"]
    assert re.search(r"^FROM python:3\.\d+-slim", text, flags=re.M)
    assert re.search(r"^USER (?!root)\w+", text, flags=re.M)
    assert "HEALTHCHECK" in instructions
    assert 'pip install --no-cache-dir ".[deploy]"' in text and "[dev]" not in text
    command = re.search(r"^CMD (\[.*?\])$", text, flags=re.M | re.S)
    assert command is not None
    _check_command(yaml.safe_load(command.group(1).replace("\\\n", " ")))


def test_helm_values_use_our_image_settings_and_the_k8s_run_launcher() -> None:
    values = yaml.safe_load((DEPLOY / "values.yaml").read_text(encoding="utf-8"))
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["image"]["repository"] and deployment["image"]["tag"] != "latest"
    _check_command(["dagster", "code-server", "start", *deployment["codeServerArgs"]])
    env = {item["name"]: item["value"] for item in deployment["env"]}
    assert set(env) <= SETTINGS and not Config(env).problems()
    assert Config(env).executor == "k8s"
    secrets = {s["name"] for s in deployment["envSecrets"]}
    launcher = values["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    assert {s["name"] for s in launcher["config"]["k8sRunLauncher"]["envSecrets"]} == secrets
    assert {s["name"] for s in values["dagsterDaemon"]["envSecrets"]} == secrets
    for resources in (
        deployment["resources"],
        launcher["config"]["k8sRunLauncher"]["runK8sConfig"]["containerConfig"]["resources"],
    ):
        assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    # the daemon's queue has the limits of deploy/dagster.yaml
    queue = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    runs = yaml.safe_load((DEPLOY / "dagster.yaml").read_text(encoding="utf-8"))["concurrency"]["runs"]
    assert queue["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queue["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]


def test_production_dagster_yaml_passes_dagsters_schema() -> None:
    config, _ = dagster_instance_config(str(DEPLOY))
    assert config["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert config["storage"]["postgres"]["postgres_db"]["username"] == {"env": "DAGSTER_PG_USERNAME"}
    assert config["run_retries"]["enabled"] and config["run_monitoring"]["enabled"]
    assert config["auto_materialize"]["enabled"]
    assert {limit["key"] for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]} == {
        "conv_analytics/source",
        "dagster/backfill",
    }


@pytest.mark.parametrize(
    ("kind", "executor"), [("multiprocess", None), ("in_process", "in_process"), ("celery", "celery"), ("k8s", "k8s")]
)
def test_the_executor_setting_picks_dagsters_executor(kind: str, executor: str | None) -> None:
    chosen = executor_for(Config({Config.executor.env: kind}))
    assert (chosen.name if chosen else None) == executor
    if chosen is not None:
        assert isinstance(chosen, dg.ExecutorDefinition)


def test_celery_config_names_a_secret_broker_and_acknowledges_steps_late() -> None:
    url = "redis://:secret@redis:6379/0"
    from_env = celery_config(Config({Config.celery_broker_url.env: url}))
    assert from_env["broker"] == {"env": Config.celery_broker_url.env}  # the UI shows the name, not the password
    assert from_env["backend"] == {"env": Config.celery_broker_url.env}
    assert celery_config(Config())["broker"] == Config.celery_broker_url.default
    source = from_env["config_source"]
    assert source["task_acks_late"] and source["task_reject_on_worker_lost"]
    assert source["broker_transport_options"]["visibility_timeout"] == 3600
