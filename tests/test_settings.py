import pytest

from bot.core.settings import SettingsError, load_settings


def env(tmp_path, **values):
    return {"COMPTOIR_VAR_DIR": str(tmp_path), **values}


def test_defaults_bind_everything_to_loopback_and_keep_data_under_var(tmp_path):
    settings = load_settings(env(tmp_path))
    assert settings.gateway_url == "http://127.0.0.1:8080"
    assert settings.rasa_host == settings.action_host == "127.0.0.1"
    assert settings.database_url == f"sqlite:///{tmp_path / 'shop.db'}"
    assert settings.tracker_store_url == f"sqlite:///{tmp_path / 'trackers.db'}"
    assert settings.lock_store_url is None


def test_rasa_token_is_generated_once_and_kept_private(tmp_path):
    first = load_settings(env(tmp_path)).rasa_token
    assert len(first) >= 32
    assert load_settings(env(tmp_path)).rasa_token == first
    assert (tmp_path / "rasa_token").stat().st_mode & 0o077 == 0


@pytest.mark.parametrize("name, value", [
    ("GATEWAY_PORT", "huit mille"),
    ("GATEWAY_PORT", "70000"),
    ("RASA_PORT", "-1"),
    ("GATEWAY_HOST", "not a host"),
    ("DATABASE_URL", "mysql://root@localhost/shop"),
    ("TRACKER_STORE_URL", "mongodb://x"),
    ("LOCK_STORE_URL", "memcached://x"),
    ("REDIS_URL", "memcached://x"),
    ("GATEWAY_REPLICAS", "9"),
    ("LOG_LEVEL", "LOUD"),
    ("SHOP_TIMEZONE", "Europe/Atlantis"),
    ("RASA_TOKEN", "short"),
    ("DEMO_SEED", "abc"),
])
def test_a_bad_value_stops_start_up_naming_the_variable(tmp_path, name, value):
    with pytest.raises(SettingsError) as error:
        load_settings(env(tmp_path, **{name: value}))
    assert name in str(error.value)


def test_exposing_the_gateway_beyond_loopback_requires_a_rest_token(tmp_path):
    with pytest.raises(SettingsError, match="GATEWAY_REST_TOKEN"):
        load_settings(env(tmp_path, GATEWAY_HOST="0.0.0.0"))
    settings = load_settings(env(tmp_path, GATEWAY_HOST="0.0.0.0", PUBLIC_URL="https://shop.example",
                                 GATEWAY_REST_TOKEN="a-long-enough-secret-token"))
    assert not settings.gateway_is_loopback


def test_postgresql_urls_switch_shop_and_tracker_databases(tmp_path):
    settings = load_settings(env(tmp_path, DATABASE_URL="postgresql://u:p@db:5432/shop",
                                 TRACKER_STORE_URL="postgresql://u:p@db:5432/trackers",
                                 LOCK_STORE_URL="redis://127.0.0.1:6379/1"))
    assert settings.database_url.endswith("/shop")
    assert settings.tracker_store_url.endswith("/trackers")


def test_cli_reports_a_configuration_error_and_exits_2(monkeypatch, capsys):
    from bot.ops.cli import main

    monkeypatch.setenv("GATEWAY_PORT", "abc")
    assert main(["check"]) == 2
    assert "GATEWAY_PORT" in capsys.readouterr().err


def test_dotenv_file_fills_in_but_never_overrides(tmp_path, monkeypatch):
    from bot.core.settings import load_dotenv_file

    dotenv = tmp_path / ".env"
    dotenv.write_text("COMPTOIR_TEST_FROM_DOTENV=file\nCOMPTOIR_TEST_ALREADY_SET=file\n")
    monkeypatch.setenv("COMPTOIR_TEST_ALREADY_SET", "environment")
    monkeypatch.delenv("COMPTOIR_TEST_FROM_DOTENV", raising=False)
    load_dotenv_file(dotenv)
    import os

    assert os.environ["COMPTOIR_TEST_FROM_DOTENV"] == "file"
    assert os.environ["COMPTOIR_TEST_ALREADY_SET"] == "environment"
    monkeypatch.delenv("COMPTOIR_TEST_FROM_DOTENV")


@pytest.mark.parametrize("name", ["RASA_HOST", "ACTION_HOST"])
def test_rasa_and_the_action_server_stay_on_loopback_unless_confirmed(tmp_path, name):
    with pytest.raises(SettingsError, match=name):
        load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), name: "0.0.0.0"})
    settings = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), name: "10.0.0.5",
                              "ALLOW_REMOTE_INTERNALS": "1"})
    assert "10.0.0.5" in (settings.rasa_url if name == "RASA_HOST" else settings.action_server_url)


def test_links_use_the_public_address_never_an_unspecified_one(tmp_path):
    base = {"COMPTOIR_VAR_DIR": str(tmp_path), "GATEWAY_HOST": "0.0.0.0",
            "GATEWAY_REST_TOKEN": "a-rest-token-long-enough"}
    with pytest.raises(SettingsError, match="PUBLIC_URL"):
        load_settings(base)
    settings = load_settings({**base, "PUBLIC_URL": "https://boutique.example/"})
    assert (settings.public_url, settings.behind_tls) == ("https://boutique.example", True)
    local = load_settings({"COMPTOIR_VAR_DIR": str(tmp_path), "GATEWAY_PORT": "8123"})
    assert (local.public_url, local.behind_tls) == ("http://127.0.0.1:8123", False)


def test_bot_check_shows_no_secret(tmp_path, monkeypatch, capsys):
    from bot.ops.cli import main

    secrets_ = {"IDENTITY_SECRET": "identity-secret-value-0123456789",
                "CUSTOMER_TOKEN_SECRET": "customer-token-secret-0123456789",
                "RASA_TOKEN": "rasa-token-value-0123456789",
                "SMTP_URL": "smtp://shop:smtp-password-123@relay.example:587",
                "DATABASE_URL": "postgresql://shop:db-password-123@db.example/shop",
                "LOCK_STORE_URL": "redis://:lock-password-123@redis.example:6379/0",
                "REDIS_URL": "redis://:redis-password-123@redis.example:6379/1"}
    monkeypatch.setenv("COMPTOIR_VAR_DIR", str(tmp_path))
    for name, value in secrets_.items():
        monkeypatch.setenv(name, value)
    assert main(["check"]) == 0
    shown = capsys.readouterr().out
    assert "identity_secret = (set)" in shown
    for secret in ("identity-secret-value", "customer-token-secret", "rasa-token-value",
                   "smtp-password-123", "db-password-123", "lock-password-123", "redis-password-123"):
        assert secret not in shown, secret


@pytest.mark.parametrize("missing", ["REDIS_URL", "DATABASE_URL", "TRACKER_STORE_URL"])
def test_several_gateways_are_refused_without_redis_and_postgresql(tmp_path, missing):
    scale_out = {"REDIS_URL": "redis://127.0.0.1:6379/1", "DATABASE_URL": "postgresql://u:p@db/shop",
                 "TRACKER_STORE_URL": "postgresql://u:p@db/trackers", "GATEWAY_REPLICAS": "2"}
    settings = load_settings(env(tmp_path, **scale_out))
    assert settings.gateway_urls == ("http://127.0.0.1:8080", "http://127.0.0.1:8081")
    del scale_out[missing]
    with pytest.raises(SettingsError, match="GATEWAY_REPLICAS above 1 needs REDIS_URL"):
        load_settings(env(tmp_path, **scale_out))


def test_the_widget_may_connect_through_the_public_address(tmp_path):
    """Behind a load balancer the widget's page and socket are at PUBLIC_URL."""
    settings = load_settings(env(tmp_path, PUBLIC_URL="http://127.0.0.1:9000"))
    assert settings.webchat_origins == ("http://127.0.0.1:8080", "http://localhost:8080",
                                        "http://127.0.0.1:9000")
