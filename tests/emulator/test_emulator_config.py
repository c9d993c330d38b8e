"""EmulatorConfig, Faults, option parsing and the catalog."""

from __future__ import annotations

import pytest

from atlas_async import Kind
from atlas_async.emulator import (
    DEFAULT_CATALOG,
    DEFAULT_LATENCY,
    EmulatorConfig,
    Faults,
    FaultTarget,
    InputRule,
    LatencyClass,
    MediaKind,
    config_from_options,
    model_spec,
)
from atlas_async.emulator._faults import RateLimiter
from atlas_async.emulator._stats import canonical_body


class TestFaults:
    def test_everything_is_off_by_default(self) -> None:
        """A default Faults injects nothing and limits nothing."""
        faults = Faults()
        assert faults.rps is None
        assert faults.max_in_flight is None
        assert faults.error_rate == faults.drop_rate == faults.server_error_rate == 0.0
        assert faults.targets == {
            FaultTarget.SUBMIT,
            FaultTarget.POLL,
            FaultTarget.UPLOAD,
        }

    def test_from_options_parses_each_type(self) -> None:
        """Floats, ints, lists and none parse from NAME=VALUE strings."""
        faults = Faults.from_options(
            [
                "error_rate=0.1",
                "rps=50",
                "max-in-flight=3",
                "server_error_codes=502,503",
                "targets=poll,files",
                "retry_after=none",
            ]
        )
        assert faults.error_rate == 0.1
        assert faults.rps == 50.0
        assert faults.max_in_flight == 3
        assert faults.server_error_codes == (502, 503)
        assert faults.targets == {FaultTarget.POLL, FaultTarget.FILES}
        assert faults.retry_after is None

    @pytest.mark.parametrize(
        ("option", "message"),
        [
            pytest.param("bogus=1", "unknown fault", id="unknown-name"),
            pytest.param("error_rate", "unknown fault", id="no-value"),
            pytest.param("error_rate=lots", "bad value", id="not-a-number"),
            pytest.param("error_rate=1.5", "within", id="out-of-range"),
            pytest.param("server_error_codes=404", "5xx", id="not-5xx"),
            pytest.param("targets=everything", "bad value", id="bad-target"),
            pytest.param("rps=-1", "positive", id="negative-rps"),
            pytest.param("slow_seconds=-1", "negative", id="negative-delay"),
        ],
    )
    def test_from_options_rejects_bad_options(self, option: str, message: str) -> None:
        """A bad option raises ValueError with a one-line message naming it."""
        with pytest.raises(ValueError, match=message) as caught:
            Faults.from_options([option])
        assert "\n" not in str(caught.value)

    def test_names_lists_every_field(self) -> None:
        """Faults.names() lists the names --fault accepts."""
        assert {"rps", "error_rate", "drop_rate", "warmup_404_seconds"} <= set(
            Faults.names()
        )


class TestConfig:
    def test_latency_rows_merge_with_defaults(self) -> None:
        """Giving one row keeps the others' defaults."""
        config = EmulatorConfig(latency={"image": (1, 2)})
        assert config.latency[LatencyClass.IMAGE] == (1.0, 2.0)
        assert config.latency[LatencyClass.VIDEO] == DEFAULT_LATENCY[LatencyClass.VIDEO]
        assert EmulatorConfig(latency={LatencyClass.AUDIO: (0, 0)}).latency[
            LatencyClass.AUDIO
        ] == (0.0, 0.0)

    @pytest.mark.parametrize(
        "kwargs",
        [
            pytest.param({"latency": {"image": (3, 1)}}, id="min-over-max"),
            pytest.param({"model_latency": {"m": (-1, 1)}}, id="negative"),
            pytest.param({"time_scale": 0}, id="zero-scale"),
            pytest.param({"latency": {"pictures": (1, 2)}}, id="unknown-row"),
        ],
    )
    def test_bad_config_is_refused(self, kwargs: dict[str, object]) -> None:
        """Impossible latencies or scales raise ValueError at construction."""
        with pytest.raises(ValueError):  # noqa: PT011  (messages are covered above)
            EmulatorConfig(**kwargs)  # type: ignore[arg-type]

    def test_keys_accept_a_string_or_many(self) -> None:
        """api_keys and no_balance_keys take one string or an iterable."""
        config = EmulatorConfig(api_keys=["a", "b"], no_balance_keys="c")
        assert config.api_keys == frozenset({"a", "b"})
        assert config.no_balance_keys == {"c"}
        assert EmulatorConfig().api_keys is None

    def test_config_from_options_builds_everything(self) -> None:
        """The CLI's options map onto the config, latencies by class or model."""
        config = config_from_options(
            seed=3,
            time_scale=50,
            api_keys=["k"],
            no_balance_keys=["broke"],
            faults=["drop_rate=0.05"],
            latency=["image=1,2", "acme/model=3,4"],
        )
        assert (config.seed, config.time_scale) == (3, 50)
        assert config.api_keys == frozenset({"k"})
        assert config.faults.drop_rate == 0.05
        assert config.latency[LatencyClass.IMAGE] == (1.0, 2.0)
        assert config.model_latency == {"acme/model": (3.0, 4.0)}
        assert config_from_options().api_keys is None

    @pytest.mark.parametrize(
        "latency",
        [
            pytest.param("image=1", id="one-number"),
            pytest.param("=1,2", id="no-name"),
            pytest.param("image", id="no-equals"),
            pytest.param("image=2,1", id="inverted"),
        ],
    )
    def test_config_from_options_rejects_bad_latency(self, latency: str) -> None:
        """A latency that does not parse or validate is a ValueError."""
        with pytest.raises(ValueError, match=r"latency|min"):
            config_from_options(latency=[latency])


class TestCatalog:
    def test_catalog_ids_are_unique(self) -> None:
        """No model id appears twice."""
        ids = [spec.model for spec in DEFAULT_CATALOG]
        assert len(ids) == len(set(ids))

    @pytest.mark.parametrize(
        ("model", "kind", "latency", "rule"),
        [
            pytest.param(
                "a/b/text-to-image",
                "image",
                LatencyClass.IMAGE,
                InputRule.PROMPT,
                id="t2i",
            ),
            pytest.param(
                "a/b/edit", "image", LatencyClass.IMAGE_TOOL, InputRule.IMAGE, id="edit"
            ),
            pytest.param(
                "a/upscale",
                Kind.IMAGE,
                LatencyClass.IMAGE_TOOL,
                InputRule.IMAGE,
                id="upscale",
            ),
            pytest.param(
                "a/b-i2v",
                "video",
                LatencyClass.IMAGE_TO_VIDEO,
                InputRule.IMAGE,
                id="i2v",
            ),
            pytest.param(
                "a/b/text-to-video",
                "video",
                LatencyClass.VIDEO,
                InputRule.PROMPT,
                id="t2v",
            ),
            pytest.param(
                "a/tts", "audio", LatencyClass.AUDIO, InputRule.TEXT, id="audio"
            ),
        ],
    )
    def test_model_spec_infers_from_the_id(
        self, model: str, kind: str, latency: LatencyClass, rule: InputRule
    ) -> None:
        """model_spec picks the latency row and input rule from the id."""
        spec = model_spec(model, kind)
        assert (spec.latency_class, spec.input_rule) == (latency, rule)

    def test_to_wire_has_the_catalog_fields(self) -> None:
        """A catalog entry has model, type, displayName, categories and a schema URL."""
        entry = model_spec("acme/pix", "image").to_wire()
        assert entry["type"] == "Image"
        assert entry["displayName"] == "Acme Pix"
        assert entry["organization"] == "acme"
        assert entry["schema"].endswith("/acme-pix.json")
        assert (
            model_spec("solo", "video", "Solo").to_wire()["organization"]
            == "atlascloud"
        )

    @pytest.mark.parametrize(
        "kind",
        [
            pytest.param(MediaKind.VIDEO, id="own-enum"),
            pytest.param("Video", id="any-case"),
            pytest.param(Kind.VIDEO, id="sdk-enum"),
        ],
    )
    def test_a_kind_is_read_from_any_of_its_spellings(self, kind: object) -> None:
        """The emulator's enum, its value in any case or another enum with that
        value all name the same kind."""
        assert MediaKind.coerce(kind) is MediaKind.VIDEO

    @pytest.mark.parametrize("kind", ["text", 3, None])
    def test_an_unknown_kind_is_refused(self, kind: object) -> None:
        """A kind that is not image, video or audio is a ValueError naming them."""
        with pytest.raises(ValueError, match="'image', 'video', 'audio'"):
            model_spec("a/b", kind)  # type: ignore[arg-type]

    def test_custom_models_can_be_added(self) -> None:
        """Extra specs join the catalog through EmulatorConfig.models."""
        config = EmulatorConfig(
            models=(*DEFAULT_CATALOG, model_spec("acme/pix", "image"))
        )
        assert config.models[-1].model == "acme/pix"


class TestRateLimiter:
    def test_bucket_refills_at_the_rate(self) -> None:
        """A token bucket refills rps tokens a second up to its burst."""
        limiter = RateLimiter(rps=2, burst=2)
        assert [limiter.allow("k", 0.0) for _ in range(3)] == [True, True, False]
        assert limiter.allow("k", 0.5)
        assert not limiter.allow("k", 0.5)
        assert RateLimiter(rps=0.5).burst == 1.0


def test_canonical_body_sorts_keys() -> None:
    """The canonical form of a body sorts keys and drops whitespace."""
    assert canonical_body({"b": 1, "a": [1, 2]}) == b'{"a":[1,2],"b":1}'
