"""The Celery settings, the executor choice and the broker check (no broker needed)."""

from __future__ import annotations

import socket

import pytest

from phase1_platform.core.errors import UserError
from phase1_platform.defs.jobs import default_executor_choice, make_executor
from phase1_platform.distributed import (
    DEFAULT_BROKER,
    CelerySettings,
    check_broker,
    masked,
    worker_command,
)


def test_masked_hides_only_the_password():
    assert masked("pyamqp://guest:s3cret@127.0.0.1:5672//") == "pyamqp://guest:***@127.0.0.1:5672//"
    assert masked("redis://:s3cret@redis:6379/0") == "redis://:***@redis:6379/0"
    assert masked("pyamqp://guest@127.0.0.1:5672//") == "pyamqp://guest@127.0.0.1:5672//"
    assert masked("rpc://") == "rpc://"


def test_settings_from_env_defaults_and_overrides(monkeypatch):
    for var in ("PHASE1_CELERY_BROKER", "PHASE1_CELERY_BACKEND", "PHASE1_CELERY_QUEUE"):
        monkeypatch.delenv(var, raising=False)
    s = CelerySettings.from_env()
    assert (s.broker, s.backend, s.queue) == (DEFAULT_BROKER, "rpc://", "dagster")
    monkeypatch.setenv("PHASE1_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("PHASE1_CELERY_QUEUE", "q1")
    s = CelerySettings.from_env({"queue": "q2", "backend": None})
    assert (s.broker, s.backend, s.queue) == ("redis://127.0.0.1:6379/0", "rpc://", "q2")
    conf = s.config_source()
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"]
    assert conf["task_default_queue"] == "q2" and conf["worker_prefetch_multiplier"] == 1
    assert conf["broker_transport_options"]["visibility_timeout"] == 300
    amqp = CelerySettings.from_env({"broker": DEFAULT_BROKER}).config_source()
    assert "visibility_timeout" not in amqp["broker_transport_options"]


def test_executor_default_from_env(monkeypatch):
    monkeypatch.delenv("PHASE1_EXECUTOR", raising=False)
    assert default_executor_choice() == "in_process"
    assert make_executor().config_schema.default_value == {"in_process": {}}
    monkeypatch.setenv("PHASE1_EXECUTOR", "Celery")
    assert make_executor().config_schema.default_value == {"celery": {}}
    monkeypatch.setenv("PHASE1_EXECUTOR", "dask")
    with pytest.raises(UserError, match="PHASE1_EXECUTOR='dask' is not an executor"):
        default_executor_choice()


def test_unreachable_broker_is_one_line_without_the_password():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = CelerySettings.from_env({"broker": f"pyamqp://u:s3cret@127.0.0.1:{port}//"})
    with pytest.raises(UserError) as err:
        check_broker(settings, timeout_s=2)
    text = str(err.value)
    assert "s3cret" not in text and f"u:***@127.0.0.1:{port}" in text
    assert "PHASE1_CELERY_BROKER" in text and "\n" not in text


def test_worker_command_one_step_at_a_time_on_its_queue():
    cmd = worker_command("w-0", "q-test", includes=["m1", "m2"])
    assert cmd[1:4] == ["-A", "phase1_platform.celery_app", "worker"]
    assert cmd[cmd.index("-Q") + 1] == "q-test" and cmd[cmd.index("-c") + 1] == "1"
    assert "--prefetch-multiplier=1" in cmd and cmd[cmd.index("-I") + 1] == (
        "phase1_platform.definitions,m1,m2")


def test_steps_and_runs_never_share_a_queue(monkeypatch):
    from phase1_platform.distributed import joinable_celery_executor

    monkeypatch.setenv("PHASE1_CELERY_RUN_QUEUE", "same")
    with pytest.raises(UserError, match="different queues"):
        joinable_celery_executor(CelerySettings.from_env({"queue": "same"}))
    executor = joinable_celery_executor(CelerySettings.from_env({"queue": "steps"}))
    assert executor.config_source.task_acks_late is True
    assert executor.config_source.task_default_queue == "steps"
