from __future__ import annotations

import pytest

from cyme.broker import url as broker_url
from cyme.config import BranchConfig, HttpSettings, parse_listen
from cyme.errors import ConfigError, InvalidRequest


@pytest.mark.parametrize(
    ("value", "expected"),
    [(":8001", ("127.0.0.1", 8001)), ("8002", ("127.0.0.1", 8002)), ("0.0.0.0:80", ("0.0.0.0", 80))],
)
def test_listen_addresses_parse(value: str, expected: tuple[str, int]) -> None:
    assert parse_listen(value) == expected


@pytest.mark.parametrize("value", [":http", "x:70000", ":0"])
def test_bad_listen_addresses_are_config_errors(value: str) -> None:
    with pytest.raises(ConfigError):
        parse_listen(value)


def test_config_refuses_admin_port_equal_to_http_port() -> None:
    with pytest.raises(ConfigError):
        BranchConfig(branch_id="b", http_port=9000, admin_port=9000).validate()


def test_http_settings_come_from_the_environment() -> None:
    settings = HttpSettings.from_env({"CYME_ADMIN_PORT": "19001", "CYME_MAX_BODY": "10"})
    assert (settings.admin_port, settings.max_body) == (19001, 10)
    with pytest.raises(ConfigError):
        HttpSettings.from_env({"CYME_ADMIN_PORT": "many"})


def test_broker_from_parameters_escapes_and_masks() -> None:
    url = broker_url.from_params("rabbit", 5672, "guest", "p@ss/word", "/")
    assert url == "amqp://guest:p%40ss%2Fword@rabbit:5672/%2F"
    described = broker_url.describe(url)
    assert described["password"] == broker_url.MASK
    assert "p@ss" not in str(described) and "p%40ss" not in str(described)
    assert (described["hostname"], described["port"], described["virtual_host"]) == ("rabbit", 5672, "/")


@pytest.mark.parametrize("url", ["ftp://x", "nonsense", "http://host/"])
def test_unsupported_broker_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        broker_url.check(url)
