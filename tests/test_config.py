"""`resolve_config`: keys, base URLs, the http safety rule, timeouts and limits."""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest

from atlas_async._core.config import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUTS,
    ClientConfig,
    Origin,
    Timeouts,
    is_loopback_host,
    origin_of,
    resolve_config,
)
from atlas_async._core.errors import ConfigurationError

KEY = "sk-test-key-0123"


class TestApiKey:
    def test_argument_wins_over_environment(self) -> None:
        """An explicit api_key is used even when ATLASCLOUD_API_KEY is set."""
        config = resolve_config("sk-arg", env={"ATLASCLOUD_API_KEY": "sk-env"})
        assert config.api_key == "sk-arg"

    def test_key_comes_from_environment(self) -> None:
        """Without an argument the key comes from ATLASCLOUD_API_KEY."""
        config = resolve_config(env={"ATLASCLOUD_API_KEY": "sk-env"})
        assert config.api_key == "sk-env"

    @pytest.mark.parametrize(
        "env",
        [
            pytest.param({}, id="unset"),
            pytest.param({"ATLASCLOUD_API_KEY": " "}, id="blank"),
        ],
    )
    def test_missing_key_is_allowed_at_construction(self, env: dict[str, str]) -> None:
        """No key is not an error yet: list_models works without one."""
        assert resolve_config(env=env).api_key is None

    def test_surrounding_whitespace_is_stripped(self) -> None:
        """A key pasted with a trailing newline still works."""
        assert resolve_config(f" {KEY}\n", env={}).api_key == KEY

    def test_empty_argument_is_refused(self) -> None:
        """An explicitly empty api_key is a mistake, reported at once."""
        with pytest.raises(ConfigurationError, match="api_key is empty"):
            resolve_config("", env={})

    def test_non_string_key_is_refused(self) -> None:
        """A key of the wrong type is refused with its type name."""
        with pytest.raises(ConfigurationError, match="must be a str"):
            resolve_config(123, env={})  # type: ignore[arg-type]

    @pytest.mark.parametrize("bad", ["sk-abc def", "sk-abc\x00", "sk-ключ"])
    def test_malformed_key_is_refused_without_echoing_it(self, bad: str) -> None:
        """Keys that would make an invalid header are refused, and not quoted."""
        with pytest.raises(ConfigurationError) as info:
            resolve_config(bad, env={})
        assert bad.strip() not in str(info.value)

    def test_key_never_appears_in_repr(self) -> None:
        """The config's repr leaves the key out."""
        config = resolve_config(KEY, env={})
        assert KEY not in repr(config)


class TestBaseUrl:
    def test_default_base_url(self) -> None:
        """Without argument or environment, the documented media base is used."""
        config = resolve_config(KEY, env={})
        assert config.base_url == DEFAULT_BASE_URL
        assert config.origin == Origin("https", "api.atlascloud.ai", 443)

    def test_environment_base_url(self) -> None:
        """ATLASCLOUD_BASE_URL replaces the default."""
        env = {"ATLASCLOUD_BASE_URL": "https://eu.example.com/api/v1/"}
        assert resolve_config(KEY, env=env).base_url == "https://eu.example.com/api/v1"

    def test_argument_wins_over_environment(self) -> None:
        """An explicit base_url beats ATLASCLOUD_BASE_URL."""
        env = {"ATLASCLOUD_BASE_URL": "https://env.example.com"}
        config = resolve_config(KEY, "https://arg.example.com", env=env)
        assert config.base_url == "https://arg.example.com"

    def test_host_and_scheme_are_normalised(self) -> None:
        """Upper-case scheme and host, and a trailing slash, are normalised."""
        config = resolve_config(KEY, "HTTPS://API.Example.COM:8443/v1/", env={})
        assert config.base_url == "https://api.example.com:8443/v1"
        assert config.origin == Origin("https", "api.example.com", 8443)

    @pytest.mark.parametrize(
        ("url", "message"),
        [
            pytest.param(
                "api.atlascloud.ai/api/v1", "must start with https", id="no-scheme"
            ),
            pytest.param("ftp://api.atlascloud.ai", "must start with https", id="ftp"),
            pytest.param("https://", "has no host", id="no-host"),
            pytest.param("https://host:99999/", "not a valid URL", id="bad-port"),
            pytest.param("https://host/v1?x=1", "query string", id="query"),
            pytest.param("https://host/v1#frag", "fragment", id="fragment"),
        ],
    )
    def test_malformed_base_url_is_refused(self, url: str, message: str) -> None:
        """A base URL that is not an absolute http(s) URL is a ConfigurationError."""
        with pytest.raises(ConfigurationError, match=message):
            resolve_config(KEY, url, env={})

    def test_credentials_in_base_url_are_refused_without_echo(self) -> None:
        """userinfo in the URL is refused and the password is not repeated."""
        with pytest.raises(ConfigurationError) as info:
            resolve_config(KEY, "https://user:hunter2@api.example.com", env={})
        assert "hunter2" not in str(info.value)

    def test_non_string_base_url_is_refused(self) -> None:
        """A base_url of the wrong type is refused."""
        with pytest.raises(ConfigurationError, match="must be a str"):
            resolve_config(KEY, b"https://x", env={})  # type: ignore[arg-type]


class TestInsecureHttp:
    @pytest.mark.parametrize(
        "url",
        [
            "http://api.atlascloud.ai/api/v1",
            "http://10.0.0.5:8787",
            "http://example.localhost.com",
        ],
    )
    def test_plain_http_to_remote_host_is_refused(self, url: str) -> None:
        """A key over clear text to a non-loopback host is refused by default."""
        with pytest.raises(ConfigurationError, match="plain http"):
            resolve_config(KEY, url, env={})

    @pytest.mark.parametrize(
        "url",
        [
            "http://127.0.0.1:8787/api/v1",
            "http://127.1.2.3",
            "http://localhost:8787",
            "http://[::1]:8787/api/v1",
        ],
    )
    def test_plain_http_to_loopback_is_allowed(self, url: str) -> None:
        """The local emulator is reachable over plain http."""
        assert resolve_config(KEY, url, env={}).base_url.startswith("http://")

    def test_opt_in_allows_plain_http(self) -> None:
        """allow_insecure_http=True lets the caller accept the risk."""
        config = resolve_config(
            KEY, "http://10.0.0.5", env={}, allow_insecure_http=True
        )
        assert config.origin == Origin("http", "10.0.0.5", 80)

    def test_ipv6_loopback_keeps_brackets(self) -> None:
        """An IPv6 host is written back with brackets so the URL stays valid."""
        config = resolve_config(KEY, "http://[::1]:8787/api/v1", env={})
        assert config.base_url == "http://[::1]:8787/api/v1"
        assert config.origin == Origin("http", "::1", 8787)

    @pytest.mark.parametrize(
        ("host", "loopback"),
        [
            ("localhost", True),
            ("localhost.", True),
            ("127.0.0.1", True),
            ("127.255.0.9", True),
            ("::1", True),
            ("10.0.0.1", False),
            ("localhost.example.com", False),
            ("api.atlascloud.ai", False),
        ],
    )
    def test_loopback_detection(self, host: str, loopback: bool) -> None:
        """Only localhost, 127.0.0.0/8 and ::1 count as loopback."""
        assert is_loopback_host(host) is loopback


class TestOrigin:
    @pytest.mark.parametrize(
        ("url", "origin"),
        [
            ("https://a.example/x", Origin("https", "a.example", 443)),
            ("HTTP://A.Example:8080", Origin("http", "a.example", 8080)),
            ("https://a.example:443/y?q", Origin("https", "a.example", 443)),
        ],
    )
    def test_origin_of_fills_default_ports(self, url: str, origin: Origin) -> None:
        """Origins compare equal whatever the case or an explicit default port."""
        assert origin_of(url) == origin

    @pytest.mark.parametrize("url", ["/relative", "ftp://x", "https://h:bad/"])
    def test_origin_of_non_http_url_is_none(self, url: str) -> None:
        """Relative, non-http and unparsable URLs have no origin."""
        assert origin_of(url) is None

    def test_config_built_by_hand_with_bad_url_has_no_origin(self) -> None:
        """A ClientConfig that skipped resolve_config fails loudly on origin."""
        with pytest.raises(AssertionError):
            _ = ClientConfig(base_url="not a url").origin


class TestTimeouts:
    def test_default_leaves_timeouts_to_the_http_client(self) -> None:
        """No timeout argument keeps None (defaults apply to a client we build)."""
        assert resolve_config(KEY, env={}).timeout is None
        assert Timeouts(connect=10, read=60, write=60, pool=None) == DEFAULT_TIMEOUTS

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(30, id="int"),
            pytest.param(30.0, id="float"),
            pytest.param(timedelta(seconds=30), id="timedelta"),
        ],
    )
    def test_one_number_bounds_every_phase_but_the_pool(
        self, value: float | timedelta
    ) -> None:
        """A single duration applies to connect, read and write; pool stays None."""
        timeout = resolve_config(KEY, env={}, timeout=value).timeout
        assert timeout == Timeouts(connect=30, read=30, write=30, pool=None)

    def test_httpx_timeout_is_accepted(self) -> None:
        """An httpx.Timeout is copied phase by phase."""
        timeout = resolve_config(KEY, env={}, timeout=httpx.Timeout(5, read=90)).timeout
        assert timeout == Timeouts(connect=5, read=90, write=5, pool=5)

    def test_timeouts_instance_is_kept(self) -> None:
        """A Timeouts value is used as given."""
        value = Timeouts(read=300)
        assert resolve_config(KEY, env={}, timeout=value).timeout is value

    @pytest.mark.parametrize(
        "value",
        [
            pytest.param(0, id="zero"),
            pytest.param(-1.0, id="negative"),
            pytest.param(float("nan"), id="nan"),
        ],
    )
    def test_non_positive_timeout_is_refused(self, value: float) -> None:
        """Zero, negative and NaN timeouts are refused."""
        with pytest.raises(ConfigurationError, match="positive"):
            resolve_config(KEY, env={}, timeout=value)

    @pytest.mark.parametrize("value", [True, "30", [30]])
    def test_wrong_timeout_type_is_refused(self, value: object) -> None:
        """Booleans, strings and other objects are not timeouts."""
        with pytest.raises(ConfigurationError, match="timeout must be"):
            resolve_config(KEY, env={}, timeout=value)  # type: ignore[arg-type]


class TestLimits:
    def test_scheduler_option_defaults(self) -> None:
        """By default no cap on predictions in flight, 16 requests, no rate cap."""
        config = resolve_config(KEY, env={})
        assert (config.max_in_flight, config.max_concurrent_requests) == (None, 16)
        assert config.requests_per_second is None
        assert config.poll is None

    def test_scheduler_options_are_stored(self) -> None:
        """Options for the scheduler are validated and kept as given."""
        policy = object()
        config = resolve_config(
            KEY,
            env={},
            max_in_flight=100,
            max_concurrent_requests=8,
            requests_per_second=2,
            poll=policy,
        )
        assert (config.max_in_flight, config.max_concurrent_requests) == (100, 8)
        assert config.requests_per_second == 2.0
        assert config.poll is policy

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"max_in_flight": 0}, id="in-flight-zero"),
            pytest.param({"max_in_flight": 1.5}, id="in-flight-float"),
            pytest.param({"max_concurrent_requests": 0}, id="concurrency-zero"),
            pytest.param({"max_concurrent_requests": True}, id="concurrency-bool"),
            pytest.param({"requests_per_second": 0}, id="rps-zero"),
            pytest.param({"requests_per_second": "fast"}, id="rps-str"),
            pytest.param({"max_retries": -1}, id="retries-negative"),
        ],
    )
    def test_out_of_range_options_are_refused(self, kwargs: dict[str, object]) -> None:
        """Limits outside their range are ConfigurationErrors."""
        with pytest.raises(ConfigurationError):
            resolve_config(KEY, env={}, **kwargs)  # type: ignore[arg-type]
