"""docker-compose.yml and the Dockerfile agree with the code (Docker itself does not run here).

Every variable the API and worker services set is one the code reads, their commands point at
things that exist, they agree on cluster, namespace and task queue, and the one-shot setup
creates exactly the search attributes of campaign_engine/search_attributes.py. The engine's
store is a database of its own on the compose PostgreSQL, created by a one-shot and migrated
by `campaign-engine migrate` before the API and the workers start.
"""

from __future__ import annotations

import importlib
import inspect
import re
import shlex
from pathlib import Path

import pytest
import yaml
from pydantic import AliasChoices
from pydantic_settings import BaseSettings

from campaign_engine import search_attributes as sa

ROOT = Path(__file__).resolve().parents[1]
ENGINE_SERVICES = ("api", "worker")
_VAR = re.compile(r"\$\{(\w+)(?::?([-?])([^}]*))?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def env_of(service: dict) -> dict[str, str | None]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # ["NAME=value", "NAME"] form
        env = dict(item.split("=", 1) if "=" in item else (item, None) for item in env)
    return dict(env)


def resolved(value: str | None, required: str = "required-value") -> str | None:
    """A compose value with ${VAR:-default} replaced by its default (what a bare `up` uses);
    a required ${VAR:?message} by `required`."""
    if value is None:
        return None
    return _VAR.sub(lambda m: required if m.group(2) == "?" else (m.group(3) or ""), str(value))


def command_of(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return shlex.split(cmd) if isinstance(cmd, str) else [str(c) for c in cmd]


def script_of(service: dict) -> str:
    """The shell script a one-shot service runs (`entrypoint: sh -c`, `command: [script]`)."""
    cmd = service.get("command") or ""
    return cmd if isinstance(cmd, str) else "\n".join(str(c) for c in cmd)


def settings_classes() -> list[type[BaseSettings]]:
    """Settings and every provider (and other activity) settings class the code has."""
    modules = ["campaign_engine.settings"] + sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "activities").rglob("*_settings.py")
    )
    classes: list[type[BaseSettings]] = []
    for name in modules:
        module = importlib.import_module(name)
        classes += [obj for _, obj in inspect.getmembers(module, inspect.isclass)
                    if issubclass(obj, BaseSettings) and obj is not BaseSettings and obj.__module__ == name]
    return classes


def env_names_read_by_code() -> set[str]:
    names: set[str] = set()
    for cls in settings_classes():
        for field in cls.model_fields.values():
            alias = field.validation_alias
            if isinstance(alias, str):
                names.add(alias)
            elif isinstance(alias, AliasChoices):
                names.update(c for c in alias.choices if isinstance(c, str))
    return names


def test_compose_file_parses_and_has_the_production_shape(services):
    for name in ("postgresql", "temporal", "temporal-ui", *ENGINE_SERVICES):
        assert name in services, f"service {name} missing"
    assert services["temporal"]["image"].startswith("temporalio/")
    assert services["temporal-ui"]["image"].startswith("temporalio/ui")
    assert "postgres" in services["postgresql"]["image"]
    assert resolved(env_of(services["temporal"])["DB"]).startswith("postgres")


def test_provider_settings_are_found():
    classes = {cls.__name__ for cls in settings_classes()}
    assert {"Settings", "TwilioSettings", "HttpAgentSettings"} <= classes
    assert "TEMPORAL_ADDRESS" in env_names_read_by_code()


@pytest.mark.parametrize("name", ENGINE_SERVICES)
def test_every_variable_an_engine_service_sets_is_read_by_the_code(services, name):
    known = env_names_read_by_code()
    unknown = sorted(set(env_of(services[name])) - known)
    assert not unknown, f"{name} sets variables no settings class reads: {unknown}"


@pytest.mark.parametrize("name", ENGINE_SERVICES)
def test_engine_services_reach_the_compose_temporal(services, name):
    env = env_of(services[name])
    host, _, port = resolved(env["TEMPORAL_ADDRESS"]).partition(":")
    assert host in services and port == "7233", env["TEMPORAL_ADDRESS"]
    # The variables the API and the workers must agree on.
    other = env_of(services["worker" if name == "api" else "api"])
    for var in ("TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE", "TEMPORAL_TASK_QUEUE", "TELEPHONY_PROVIDER"):
        assert resolved(env.get(var)) == resolved(other.get(var)), var


def test_settings_accept_the_values_compose_gives_them(services):
    for name in ENGINE_SERVICES:
        env = {k: resolved(v) for k, v in env_of(services[name]).items() if v is not None}
        for cls in settings_classes():
            cls(**env)  # raises on a value the code cannot parse


def test_api_command_serves_the_app_that_exists(services):
    cmd = command_of(services["api"])
    assert cmd[0] == "uvicorn"
    target = next(arg for arg in cmd[1:] if ":" in arg and not arg.startswith("-"))
    module_name, _, attr = target.partition(":")
    assert (module_name, attr) == ("api.main", "app")
    module = importlib.import_module(module_name)
    assert hasattr(module, attr)


def test_worker_command_runs_worker_py_and_can_scale(services):
    worker = services["worker"]
    cmd = command_of(worker)
    assert cmd[:2] == ["python", "worker.py"]
    assert (ROOT / "worker.py").is_file()
    # `docker compose up --scale worker=N` needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker


def test_both_engine_services_are_built_from_the_dockerfile(services):
    for name in ENGINE_SERVICES:
        build = services[name]["build"]
        context = build if isinstance(build, str) else build.get("context", ".")
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (ROOT / context / dockerfile).is_file()


def test_dockerfile_installs_the_package_with_everything_it_needs():
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", text, re.M)
    assert re.search(r"pip install \.", text)
    copied = set()
    for line in re.findall(r"^COPY (.+)$", text, re.M):
        copied.update(part.rstrip("/") for part in line.split()[:-1])
    pyproject = (ROOT / "pyproject.toml").read_text()
    packages = set(re.findall(r'"(\w+)\*"', pyproject.split("[tool.setuptools.packages.find]")[1]))
    modules = {f"{m}.py" for m in re.findall(r'"(\w+)"', re.search(r"^py-modules = \[(.*)\]", pyproject, re.M)[1])}
    assert {"worker.py", "cli.py"} <= modules  # the worker, and `campaign-engine` (compose's migrate)
    needed = {"pyproject.toml", "README.md"} | modules | packages
    assert needed <= copied | {"."}, f"not copied into the image: {sorted(needed - copied)}"
    for path in needed:
        assert (ROOT / path).exists(), path


def test_search_attributes_created_match_the_code(services):
    created: dict[str, str] = {}
    namespaces = set()
    for name, service in services.items():
        for line in script_of(service).splitlines():
            if "search-attribute create" not in line:
                continue
            names = re.findall(r"--name[ =](\w+)", line)
            kind = re.search(r"--type[ =](\w+)", line)
            assert names and kind, line
            assert len(names) == 1, "the CLI creates only the first of several --name flags"
            created.update({n: kind.group(1) for n in names})
            namespaces.add(name)
    expected = {key.name: "Keyword" for key in sa.ALL}
    assert created == expected
    # They are created in the namespace the engine uses.
    setup_env = env_of(services[namespaces.pop()])
    engine_ns = resolved(env_of(services["worker"])["TEMPORAL_NAMESPACE"])
    assert resolved(setup_env.get("TEMPORAL_NAMESPACE")) == engine_ns


def test_search_attribute_keys_are_keywords():
    from temporalio.common import SearchAttributeIndexedValueType

    assert all(k.indexed_value_type == SearchAttributeIndexedValueType.KEYWORD for k in sa.ALL)


def test_engine_waits_for_the_setup_and_the_ui_reaches_the_server(services):
    for name in ENGINE_SERVICES:
        depends = services[name].get("depends_on") or {}
        assert any("search-attribute create" in script_of(services[d]) for d in depends), (
            f"{name} should start after the search attributes exist")
    ui_address = resolved(env_of(services["temporal-ui"])["TEMPORAL_ADDRESS"])
    assert ui_address.split(":")[0] in services


def test_dial_task_queues_have_one_partition(compose, services):
    # The carrier cap is a rate limit per partition: every dial queue the code can use with
    # the compose task queue must be pinned to one, or the cap is four times too generous.
    from activities.providers.registry import PROVIDER_NAMES
    from campaign_engine.settings import Settings

    queue = resolved(env_of(services["worker"])["TEMPORAL_TASK_QUEUE"])
    settings = Settings(TEMPORAL_TASK_QUEUE=queue)
    dynamic = yaml.safe_load(compose["configs"]["temporal-dynamic-config"]["content"])
    for key in ("matching.numTaskqueueReadPartitions", "matching.numTaskqueueWritePartitions"):
        pinned = {e["constraints"]["taskQueueName"] for e in dynamic[key] if e["value"] == 1}
        assert pinned == {settings.dial_task_queue(p) for p in PROVIDER_NAMES}, key


# --- the engine's store ------------------------------------------------------------------------

STORE_SERVICES = ("api", "worker", "migrate")


def depends_on(service: dict) -> dict[str, str]:
    """Each service `service` waits for, with the condition it waits for."""
    deps = service.get("depends_on") or {}
    if isinstance(deps, list):
        return {name: "service_started" for name in deps}
    return {name: (spec or {}).get("condition", "service_started") for name, spec in deps.items()}


def test_engine_services_share_one_database_url_the_code_reads(services):
    from sqlalchemy.engine import make_url

    from campaign_engine.store.db import async_url

    assert "DATABASE_URL" in env_names_read_by_code()
    urls = {name: resolved(env_of(services[name]).get("DATABASE_URL")) for name in STORE_SERVICES}
    assert None not in urls.values(), f"DATABASE_URL missing: {urls}"
    assert len(set(urls.values())) == 1, urls
    url = make_url(async_url(urls["api"]))
    assert url.drivername == "postgresql+asyncpg"
    # The compose PostgreSQL, with the credentials that service is given...
    assert url.host in services and "postgres" in services[url.host]["image"] and url.port == 5432
    pg_env = env_of(services[url.host])
    assert url.username == resolved(pg_env["POSTGRES_USER"])
    assert url.password == resolved(pg_env["POSTGRES_PASSWORD"])
    # ...and a database of its own, not one of Temporal's.
    temporal_dbs = set(re.findall(r"for db in ([\w ]+);", script_of(services["temporal-schema"]))[0].split())
    assert temporal_dbs == {"temporal", "temporal_visibility"}
    assert url.database and url.database not in temporal_dbs | {"postgres"}


def test_the_engine_database_is_created_before_the_migration(services):
    url = resolved(env_of(services["migrate"])["DATABASE_URL"])
    database = url.rsplit("/", 1)[1]
    creators = [name for name in depends_on(services["migrate"])
                if "CREATE DATABASE" in script_of(services[name])]
    assert len(creators) == 1, "migrate should wait for the one-shot that creates its database"
    creator = services[creators[0]]
    assert depends_on(services["migrate"])[creators[0]] == "service_completed_successfully"
    env = {k: resolved(v) for k, v in env_of(creator).items()}
    assert env["ENGINE_DATABASE"] == database and "$${ENGINE_DATABASE}" in script_of(creator)
    # It reaches the same server as the one the URL names, as the same user.
    assert env["PGHOST"] == url.split("@", 1)[1].split(":")[0]
    assert env["PGUSER"] == resolved(env_of(services["postgresql"])["POSTGRES_USER"])
    assert depends_on(creator).get("postgresql") == "service_healthy"
    # Idempotent: a database that exists is left alone (a restart, an existing volume).
    assert "pg_database" in script_of(creator)


def test_migrate_is_a_one_shot_of_the_engine_image_that_api_and_workers_wait_for(services):
    import cli

    migrate = services["migrate"]
    cmd = command_of(migrate)
    assert cmd == ["campaign-engine", "migrate"]
    assert 'campaign-engine = "cli:entrypoint"' in (ROOT / "pyproject.toml").read_text()
    with pytest.raises(SystemExit) as help_exit:  # the CLI has the command
        cli.main(["migrate", "--help"])
    assert help_exit.value.code == 0
    assert migrate["image"] == services["api"]["image"] == services["worker"]["image"]
    assert not str(migrate.get("restart", "no")).startswith(("always", "unless-stopped"))
    assert "ports" not in migrate
    unknown = sorted(set(env_of(migrate)) - env_names_read_by_code())
    assert not unknown, f"migrate sets variables no settings class reads: {unknown}"
    for name in ENGINE_SERVICES:
        assert depends_on(services[name]).get("migrate") == "service_completed_successfully", name
