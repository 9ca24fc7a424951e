"""Which URLs a URL task may request."""

from __future__ import annotations

import pytest

from cyme.errors import Forbidden, InvalidRequest
from cyme.urls import UrlPolicy


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/",
    ],
)
def test_metadata_and_link_local_targets_are_denied_by_default(url: str) -> None:
    with pytest.raises(Forbidden):
        UrlPolicy().check_url(url)


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/path", "http:///nohost", "http://h:99999/"]
)
def test_malformed_or_non_http_urls_are_invalid(url: str) -> None:
    with pytest.raises(InvalidRequest):
        UrlPolicy().check_url(url)


def test_an_allow_list_admits_only_its_hosts_networks_and_subdomains() -> None:
    policy = UrlPolicy.from_strings("api.example.com,.internal.example,10.0.0.0/8", None)
    for ok in ("https://api.example.com/x", "http://svc.internal.example/", "http://10.1.2.3:8080/"):
        assert policy.check_url(ok) == ok
    for refused in ("https://example.com/", "http://11.0.0.1/", "http://evil.com/?api.example.com"):
        with pytest.raises(Forbidden):
            policy.check_url(refused)


def test_resolved_addresses_are_checked_against_the_deny_list() -> None:
    policy = UrlPolicy.from_strings(None, "127.0.0.0/8")
    with pytest.raises(Forbidden):
        policy.check_resolved("localhost", 80)
    UrlPolicy.from_strings(None, "").check_resolved("localhost", 80)  # an empty deny list denies nothing
