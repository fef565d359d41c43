"""The process supervisor behind `make run`: endpoints from settings, busy ports."""
import asyncio
import os
import socket

from bot.core.settings import load_settings
from bot.ops.supervisor import (ProcessSpec, busy_ports, lock_store_config, supervise,
                                tracker_store_config)
from tests.harness import free_port, free_ports


def test_tracker_and_lock_store_urls_become_rasa_endpoint_settings():
    assert tracker_store_config("sqlite:////srv/var/trackers.db") == {
        "type": "SQL", "dialect": "sqlite", "db": "/srv/var/trackers.db"}
    assert tracker_store_config("postgresql://rasa:p%40ss@db.internal:5433/trackers") == {
        "type": "SQL", "dialect": "postgresql", "url": "db.internal", "db": "trackers",
        "port": 5433, "username": "rasa", "password": "p@ss"}
    assert lock_store_config(None) == {"type": "in_memory"}
    assert lock_store_config("redis://:secret@127.0.0.1:6379/2") == {
        "type": "redis", "url": "127.0.0.1", "port": 6379, "db": 2, "key_prefix": "comptoir",
        "password": "secret"}


def test_a_port_in_use_stops_start_up_with_a_clear_message(tmp_path, capsys):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "GATEWAY_PORT": str(port),
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port())})
    try:
        assert busy_ports(settings) == [f"GATEWAY_PORT={port}"]
        spec = ProcessSpec("gateway", ["false"], {})
        assert asyncio.run(supervise(settings, [spec])) == 1
    finally:
        taken.close()
    assert "Is Comptoir already running?" in capsys.readouterr().out


def test_a_port_left_in_time_wait_by_the_last_run_is_not_busy(tmp_path):
    """Right after Ctrl-C, the connections the last run closed linger in TIME_WAIT for a
    minute; the servers bind anyway (SO_REUSEADDR), so `make run` must not refuse."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end of the port goes to TIME_WAIT
    client.close()
    server.close()
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "GATEWAY_PORT": str(port),
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port())})
    assert busy_ports(settings) == []


def test_a_rasa_token_beginning_with_a_dash_still_starts_rasa_and_is_not_in_its_command_line(tmp_path):
    """Generated tokens are URL-safe base64: one in 64 begins with "-", which Rasa's
    command line took for an option ("expected one argument") and `make run` stopped.
    The token goes through the environment: a command line is readable by anyone (`ps`)."""
    from rasa.__main__ import create_argument_parser

    from bot.ops.rasa_server import with_auth_token
    from bot.ops.supervisor import process_specs

    token = "-tIwteVB3k3XUd04tY60ZhHX2LawJNJtTmIgOPcnuBg"
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "RASA_TOKEN": token,
                              "RASA_REPLICAS": "1"})
    specs = {spec.name: spec for spec in process_specs(settings, tmp_path / "model.tar.gz", tmp_path / "e.yml")}
    for spec in specs.values():
        assert not any(token in argument or settings.action_token in argument for argument in spec.argv)
    assert "RASA_TOKEN" not in specs["actions"].env
    assert specs["actions"].env["ACTION_TOKEN"] == settings.action_token
    rasa = specs["rasa"]
    argv = with_auth_token(rasa.argv[2:], rasa.env["RASA_TOKEN"])  # as sys.argv in bot.ops.rasa_server
    arguments = create_argument_parser().parse_args(argv[1:])
    assert arguments.auth_token == token


def test_var_and_what_it_holds_are_private_to_the_user(tmp_path):
    import stat
    import subprocess
    import sys

    from bot.core.settings import PROJECT_ROOT

    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "TRACKER_STORE_URL")}
    env.update(COMPTOIR_VAR_DIR=str(var))
    subprocess.run([sys.executable, "-m", "bot", "migrate"], cwd=PROJECT_ROOT, env=env, check=True,
                   capture_output=True, timeout=120, preexec_fn=lambda: os.umask(0o022))
    assert stat.S_IMODE(var.stat().st_mode) == 0o700
    made = [path for path in var.rglob("*") if path.is_file()]
    assert any(path.name == "shop.db" for path in made)
    for path in made:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_several_gateways_start_on_consecutive_ports(tmp_path):
    from bot.ops.supervisor import process_specs

    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "GATEWAY_PORT": str(free_ports(2)),
                              "RASA_PORT": str(free_port()), "ACTION_PORT": str(free_port()),
                              "GATEWAY_REPLICAS": "2", "REDIS_URL": "redis://127.0.0.1:6379/1",
                              "DATABASE_URL": "postgresql://u:p@db/shop",
                              "TRACKER_STORE_URL": "postgresql://u:p@db/trackers"})
    specs = {spec.name: spec for spec in process_specs(settings, tmp_path / "model.tar.gz", tmp_path / "e.yml")}
    assert (specs["gateway"].env["GATEWAY_PORT"], specs["gateway-2"].env["GATEWAY_PORT"]) == (
        str(settings.gateway_port), str(settings.gateway_port + 1))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.gateway_port + 1))
        taken.listen()
        assert busy_ports(settings) == [f"GATEWAY_PORT+1={settings.gateway_port + 1}"]
