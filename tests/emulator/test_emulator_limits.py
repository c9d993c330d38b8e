"""
Atlas's two limits, as the emulator answers them: each key's request rate and
each model's unfinished predictions per key. Both are 429 with the error
envelope and no Retry-After; both refuse a submit before anything is created.
"""

from __future__ import annotations

import httpx
import pytest

import atlas_async.emulator
import atlas_async.emulator.__main__ as emulator_main
from atlas_async import cli
from atlas_async.emulator import EmulatorConfig, Faults, config_from_options

from .conftest import Wire, WireFactory

IMAGE = "google/nano-banana-2/text-to-image"
OTHER_IMAGE = "z-image/turbo"
VIDEO = "bytedance/seedance-2.0/text-to-video"
VIDEO_PATH = "/model/generateVideo"
IMAGE_PATH = "/model/generateImage"

# Atlas seconds, and time_scale stays 1: a video ends 10 s after its submit.
LATENCIES = {IMAGE: (4.0, 4.0), OTHER_IMAGE: (4.0, 4.0), VIDEO: (10.0, 10.0)}

MODEL_BUSY = "too many concurrent tasks for this model"
RATE_LIMITED = "rate limit exceeded"


def _config(**faults: object) -> EmulatorConfig:
    return EmulatorConfig(
        seed=5,
        model_latency=LATENCIES,
        faults=Faults(**faults),  # type: ignore[arg-type]
    )


async def _video(wire: Wire, prompt: str = "a wave", **extra: object) -> httpx.Response:
    return await wire.http.post(
        VIDEO_PATH, json={"model": VIDEO, "prompt": prompt, **extra}
    )


async def _image(wire: Wire, model: str = IMAGE, prompt: str = "a fox") -> int:
    response = await wire.http.post(IMAGE_PATH, json={"model": model, "prompt": prompt})
    return response.status_code


def _error_body(response: httpx.Response, message: str) -> dict[str, object]:
    return {
        "code": 429,
        "msg": message,
        "request_id": response.headers["x-request-id"],
        "data": None,
    }


@pytest.mark.asyncio
class TestModelInFlightLimit:
    async def test_the_sixth_submit_is_refused_until_one_finishes(
        self, in_process: WireFactory
    ) -> None:
        """With a limit of 5, the 6th unfinished video is 429; at the 1st's end, 200."""
        async with in_process(_config(max_in_flight_per_model={VIDEO: 5})) as wire:
            first = await wire.submit(VIDEO_PATH, model=VIDEO, prompt="p0")
            wire.clock.advance(1.0)  # the others end later than the first
            for n in range(1, 5):
                await wire.submit(VIDEO_PATH, model=VIDEO, prompt=f"p{n}")
            assert (await _video(wire, "p5")).status_code == 429
            wire.clock.advance(8.999)  # t = 9.999: the first is still processing
            assert (await wire.poll(first))["status"] == "processing"
            assert (await _video(wire, "p5")).status_code == 429
            wire.clock.advance(0.001)  # t = 10: the first has completed
            assert (await wire.poll(first))["status"] == "completed"
            assert (await _video(wire, "p5")).status_code == 200
            assert (await _video(wire, "p6")).status_code == 429
            assert wire.emulator.stats.snapshot().predictions_created == 6

    async def test_a_refused_submit_creates_and_bills_nothing(
        self, in_process: WireFactory
    ) -> None:
        """No prediction, no body counted, no webhook: the 429 left no trace."""
        async with in_process(_config(max_in_flight_per_model={VIDEO: 1})) as wire:
            await wire.submit(VIDEO_PATH, model=VIDEO, prompt="kept")
            hook = {"webhook_url": "http://127.0.0.1:9/hook"}
            refused = await _video(wire, "refused", **hook)
            assert refused.status_code == 429
            stats = wire.emulator.stats.snapshot()
            assert stats.predictions_created == 1
            assert (stats.unique_bodies, stats.duplicate_submissions) == (1, 0)
            assert stats.webhooks_scheduled == 0
            assert wire.emulator.pending_webhooks == 0
            assert stats.responses_by_status == {200: 1, 429: 1}

    async def test_other_models_and_other_keys_are_not_limited(
        self, in_process: WireFactory
    ) -> None:
        """A full model leaves other models, and the same model for other keys, free."""
        async with in_process(_config(max_in_flight_per_model={VIDEO: 1})) as wire:
            assert (await _video(wire, "a")).status_code == 200
            assert (await _video(wire, "b")).status_code == 429
            assert [await _image(wire, prompt=f"i{n}") for n in range(4)] == [200] * 4
            assert await _image(wire, OTHER_IMAGE) == 200
            other_key = {"Authorization": "Bearer other-key"}
            response = await wire.http.post(
                VIDEO_PATH, json={"model": VIDEO, "prompt": "c"}, headers=other_key
            )
            assert response.status_code == 200

    async def test_the_default_limits_each_model_on_its_own(
        self, in_process: WireFactory
    ) -> None:
        """max_in_flight_model_default caps every model separately; None exempts one."""
        config = _config(
            max_in_flight_model_default=2,
            max_in_flight_per_model={OTHER_IMAGE: None, VIDEO: 3},
        )
        async with in_process(config) as wire:
            images = [await _image(wire, prompt=f"a{n}") for n in range(3)]
            assert images == [200, 200, 429]
            exempt = [await _image(wire, OTHER_IMAGE, f"b{n}") for n in range(5)]
            assert exempt == [200] * 5
            codes = [(await _video(wire, f"c{n}")).status_code for n in range(4)]
            assert codes == [200, 200, 200, 429]
            wire.clock.advance(4.0)  # the images end; the videos run on
            assert await _image(wire, prompt="a3") == 200
            assert (await _video(wire, "c4")).status_code == 429

    async def test_the_key_limit_still_applies_first(
        self, in_process: WireFactory
    ) -> None:
        """max_in_flight counts all models; its 429 is the rate-limit one."""
        config = _config(max_in_flight=2, max_in_flight_per_model={VIDEO: 5})
        async with in_process(config) as wire:
            assert (await _video(wire, "a")).status_code == 200
            assert await _image(wire) == 200
            refused = await _video(wire, "b")
            assert refused.status_code == 429
            assert refused.json() == _error_body(refused, RATE_LIMITED)
            stats = wire.emulator.stats.snapshot()
            assert stats.refusals == {"rate": 0, "in_flight": 1, "model_in_flight": 0}

    async def test_the_model_429_is_the_concurrency_envelope_without_retry_after(
        self, wire_factory: WireFactory
    ) -> None:
        """Over a model's limit: Atlas's error body and X-Request-ID, no Retry-After."""
        async with wire_factory(_config(max_in_flight_per_model={VIDEO: 1})) as wire:
            await wire.submit(VIDEO_PATH, model=VIDEO, prompt="a")
            response = await _video(wire, "b")
            assert response.status_code == 429
            assert response.json() == _error_body(response, MODEL_BUSY)
            assert response.headers["content-type"] == "application/json"
            assert response.headers["x-request-id"].startswith("req_")
            assert "retry-after" not in response.headers
            assert not any(name.startswith("x-ratelimit") for name in response.headers)

    async def test_retry_after_option_also_marks_the_model_429(
        self, in_process: WireFactory
    ) -> None:
        """With retry_after set, the model-concurrency 429 carries it too."""
        config = _config(max_in_flight_per_model={VIDEO: 1}, retry_after=7)
        async with in_process(config) as wire:
            await wire.submit(VIDEO_PATH, model=VIDEO, prompt="a")
            response = await _video(wire, "b")
            assert response.status_code == 429
            assert response.headers["retry-after"] == "7"
            assert response.json()["msg"] == MODEL_BUSY


@pytest.mark.asyncio
class TestRateLimit:
    async def test_the_rate_429_is_the_rate_envelope_without_retry_after(
        self, wire_factory: WireFactory
    ) -> None:
        """Over rps: 'rate limit exceeded' in Atlas's error body, no Retry-After."""
        async with wire_factory(_config(rps=1)) as wire:
            assert (await wire.http.get("/model/prediction/x")).status_code == 404
            response = await wire.http.get("/model/prediction/x")
            assert response.status_code == 429
            assert response.json() == _error_body(response, RATE_LIMITED)
            assert "rate" in response.json()["msg"]
            assert response.headers["content-type"] == "application/json"
            assert "retry-after" not in response.headers
            assert not any(name.startswith("x-ratelimit") for name in response.headers)

    async def test_submits_polls_and_uploads_spend_one_budget(
        self, in_process: WireFactory
    ) -> None:
        """The key's bucket is shared: each kind of request spends it and is refused."""
        async with in_process(_config(rps=1, rps_burst=3)) as wire:
            prediction_id = await wire.submit(model=IMAGE, prompt="a")
            await wire.poll(prediction_id)
            files = {"file": ("a.png", b"\x89PNG", "image/png")}
            upload = await wire.http.post("/model/uploadMedia", files=files)
            assert upload.status_code == 200
            refused = [
                await wire.http.post(IMAGE_PATH, json={"model": IMAGE, "prompt": "b"}),
                await wire.http.get(f"/model/prediction/{prediction_id}"),
                await wire.http.post("/model/uploadMedia", files=files),
            ]
            assert [r.status_code for r in refused] == [429, 429, 429]
            assert {r.json()["msg"] for r in refused} == {RATE_LIMITED}
            assert (await wire.http.get("/models")).status_code == 200  # no key
            stats = wire.emulator.stats.snapshot()
            assert stats.refusals["rate"] == 3
            assert (stats.predictions_created, stats.uploads) == (1, 1)
            wire.clock.advance(1.0)  # one token back
            assert (
                await wire.http.get(f"/model/prediction/{prediction_id}")
            ).is_success

    async def test_retry_after_option_still_marks_the_rate_429(
        self, in_process: WireFactory
    ) -> None:
        """retry_after keeps adding Retry-After to the rate-limit 429."""
        async with in_process(_config(rps=1, retry_after=2.5)) as wire:
            await wire.http.get("/model/prediction/x")
            response = await wire.http.get("/model/prediction/x")
            assert response.status_code == 429
            assert response.headers["retry-after"] == "2.5"


@pytest.mark.asyncio
class TestLimitStats:
    async def test_refusals_are_counted_by_cause(self, in_process: WireFactory) -> None:
        """Rate, key in-flight and model in-flight 429s each count under their cause."""
        config = _config(
            rps=1, rps_burst=6, max_in_flight=3, max_in_flight_per_model={VIDEO: 1}
        )
        async with in_process(config) as wire:
            assert (await _video(wire, "a")).status_code == 200
            assert (await _video(wire, "b")).status_code == 429  # the model is full
            assert (await _video(wire, "c")).status_code == 429  # still full
            images = [await _image(wire, prompt=f"i{n}") for n in range(3)]
            assert images == [200, 200, 429]  # the 3rd: the key has 3 unfinished
            assert (await wire.http.get("/model/prediction/x")).status_code == 429
            stats = wire.emulator.stats.snapshot()
            assert stats.refusals == {"rate": 1, "in_flight": 1, "model_in_flight": 2}
            assert stats.refusals_by_model == {VIDEO: 2}
            assert stats.faults == {
                "rate_limit": 1,
                "in_flight_limit": 1,
                "model_in_flight_limit": 2,
            }
            assert stats.responses_by_status == {200: 3, 429: 4}
            assert stats.as_dict()["refusals"] == stats.refusals

    async def test_no_refusals_reads_as_zeros(self, wire: Wire) -> None:
        """Every cause is present even when nothing was refused."""
        await wire.submit(model=IMAGE, prompt="a")
        stats = wire.emulator.stats.snapshot()
        assert stats.refusals == {"rate": 0, "in_flight": 0, "model_in_flight": 0}
        assert stats.refusals_by_model == {}

    async def test_peak_in_flight_is_per_key_and_model_without_any_limit(
        self, in_process: WireFactory
    ) -> None:
        """Peaks are the most one key had unfinished; keys are not summed."""
        async with in_process(_config()) as wire:
            for n in range(3):
                await wire.submit(model=IMAGE, prompt=f"i{n}")
            for n in range(2):
                await wire.submit(VIDEO_PATH, model=VIDEO, prompt=f"v{n}")
            wire.clock.advance(4.0)  # the images end
            await wire.submit(model=IMAGE, prompt="late")
            other_key = {"Authorization": "Bearer other-key"}
            for n in range(4):
                response = await wire.http.post(
                    VIDEO_PATH,
                    json={"model": VIDEO, "prompt": f"o{n}"},
                    headers=other_key,
                )
                assert response.status_code == 200
            stats = wire.emulator.stats.snapshot()
            assert stats.peak_in_flight_by_model == {IMAGE: 3, VIDEO: 4}
            assert stats.peak_in_flight == 5
            assert stats.refusals_by_model == {}

    async def test_a_model_peak_never_passes_its_limit(
        self, in_process: WireFactory
    ) -> None:
        """Hammering a limited model: the peak is the limit, the rest are refusals."""
        async with in_process(_config(max_in_flight_per_model={VIDEO: 2})) as wire:
            codes = [(await _video(wire, f"v{n}")).status_code for n in range(10)]
            assert codes.count(200) == 2
            stats = wire.emulator.stats.snapshot()
            assert stats.peak_in_flight_by_model == {VIDEO: 2}
            assert stats.refusals["model_in_flight"] == 8

    async def test_reset_zeroes_refusals_and_peaks(
        self, in_process: WireFactory
    ) -> None:
        """Emulator.reset() starts the limit counters over."""
        async with in_process(_config(max_in_flight_per_model={VIDEO: 1})) as wire:
            await _video(wire, "a")
            await _video(wire, "b")
            wire.emulator.reset(state=True)
            stats = wire.emulator.stats.snapshot()
            assert stats.refusals == {"rate": 0, "in_flight": 0, "model_in_flight": 0}
            assert (stats.peak_in_flight, stats.peak_in_flight_by_model) == (0, {})
            # state=True forgot the running video: the model has room again.
            assert (await _video(wire, "c")).status_code == 200


class TestOptions:
    def test_max_in_flight_model_options_add_up(self) -> None:
        """Each max_in_flight_model=MODEL:LIMIT adds one model; the last ':' splits."""
        faults = Faults.from_options(
            [
                f"max_in_flight_model={VIDEO}:5",
                f"max-in-flight-model = {IMAGE} : 2",
                f"max_in_flight_model={OTHER_IMAGE}:none",
                "max_in_flight_model_default=3",
            ]
        )
        assert faults.max_in_flight_per_model == {
            VIDEO: 5,
            IMAGE: 2,
            OTHER_IMAGE: None,
        }
        assert faults.max_in_flight_model_default == 3
        assert faults.model_limit(VIDEO) == 5
        assert faults.model_limit(OTHER_IMAGE) is None
        assert faults.model_limit("bytedance/seedream-v4") == 3

    def test_a_model_id_with_a_colon_splits_at_the_last_one(self) -> None:
        """'a:b:4' is model 'a:b' with limit 4."""
        faults = Faults.from_options(["max_in_flight_model=acme/x:tag:4"])
        assert faults.max_in_flight_per_model == {"acme/x:tag": 4}

    def test_options_add_to_the_base_and_a_later_one_wins(self) -> None:
        """Options extend base's limits; repeating a model replaces its limit."""
        base = Faults(max_in_flight_per_model={VIDEO: 5}, rps=10)
        faults = Faults.from_options(
            [f"max_in_flight_model={IMAGE}:1", f"max_in_flight_model={IMAGE}:4"],
            base=base,
        )
        assert faults.max_in_flight_per_model == {VIDEO: 5, IMAGE: 4}
        assert faults.rps == 10
        assert base.max_in_flight_per_model == {VIDEO: 5}

    def test_by_default_no_model_is_limited(self) -> None:
        """A default Faults limits no model."""
        faults = Faults()
        assert faults.max_in_flight_per_model == {}
        assert faults.max_in_flight_model_default is None
        assert faults.model_limit(VIDEO) is None

    def test_names_offer_the_cli_spelling(self) -> None:
        """names() lists max_in_flight_model (the option), not the field's name."""
        names = Faults.names()
        assert {"max_in_flight_model", "max_in_flight_model_default"} <= set(names)
        assert "max_in_flight_per_model" not in names

    @pytest.mark.parametrize(
        ("option", "message"),
        [
            pytest.param("max_in_flight_model=5", "MODEL:LIMIT", id="no-colon"),
            pytest.param("max_in_flight_model=:5", "MODEL:LIMIT", id="no-model"),
            pytest.param(f"max_in_flight_model={VIDEO}:", "MODEL:LIMIT", id="empty"),
            pytest.param(f"max_in_flight_model={VIDEO}:x", "MODEL:LIMIT", id="nan"),
            pytest.param(f"max_in_flight_model={VIDEO}:0", "positive", id="zero"),
            pytest.param(f"max_in_flight_model={VIDEO}:-2", "positive", id="negative"),
            pytest.param("max_in_flight_model_default=0", "positive", id="default-0"),
            pytest.param("max_in_flight_per_model=x:1", "unknown fault", id="field"),
        ],
    )
    def test_bad_model_limits_are_one_line_errors(
        self, option: str, message: str
    ) -> None:
        """A limit that does not parse or is not positive names the option."""
        with pytest.raises(ValueError, match=message) as caught:
            Faults.from_options([option])
        assert "\n" not in str(caught.value)

    @pytest.mark.parametrize(
        "limits",
        [
            pytest.param({VIDEO: 0}, id="zero"),
            pytest.param({VIDEO: True}, id="bool"),
            pytest.param({VIDEO: 2.5}, id="float"),
            pytest.param({"": 1}, id="empty-model"),
        ],
    )
    def test_faults_refuse_bad_model_limits(self, limits: dict[str, object]) -> None:
        """Faults(max_in_flight_per_model=...) takes positive ints or None only."""
        with pytest.raises(ValueError, match="max_in_flight_per_model"):
            Faults(max_in_flight_per_model=limits)  # type: ignore[arg-type]

    def test_a_limit_on_a_model_the_emulator_refuses_is_refused(self) -> None:
        """A limit on a model no submit can name would limit nothing, so the
        config refuses it; any plausible id outside the catalog is fine."""
        faults = Faults(max_in_flight_per_model={"kling v2.0": 5})
        with pytest.raises(ValueError, match=r"does not serve.*kling v2\.0"):
            EmulatorConfig(faults=faults)
        outside = Faults(max_in_flight_per_model={"kwaivgi/kling-v2.0": 5})
        assert (
            EmulatorConfig(faults=outside).faults.model_limit("kwaivgi/kling-v2.0") == 5
        )

    def test_config_from_options_reads_the_model_limits(self) -> None:
        """The CLIs' shared parser builds the per-model limits."""
        config = config_from_options(faults=[f"max_in_flight_model={VIDEO}:5"])
        assert config.faults.max_in_flight_per_model == {VIDEO: 5}
        with pytest.raises(ValueError, match="does not serve"):
            config_from_options(faults=["max_in_flight_model=acme/none:5"])


class TestCommandLines:
    def test_atlas_async_emulator_passes_repeated_model_limits(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`atlas-async emulator` takes one max_in_flight_model=M:N per --fault."""
        seen: list[EmulatorConfig] = []

        def run(
            host: str, port: int, config: EmulatorConfig, *, on_ready: object
        ) -> None:
            seen.append(config)

        monkeypatch.setattr(atlas_async.emulator, "run_emulator", run)
        argv = ["emulator", "--fault", f"max_in_flight_model={VIDEO}:5"]
        argv += ["--fault", f"max_in_flight_model={IMAGE}:2"]
        argv += ["--fault", "max_in_flight_model_default=8"]
        assert cli.main(argv) == 0
        (config,) = seen
        assert config.faults.max_in_flight_per_model == {VIDEO: 5, IMAGE: 2}
        assert config.faults.max_in_flight_model_default == 8

    def test_atlas_async_emulator_rejects_a_bad_model_limit(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A limit without MODEL: is one 'atlas-async: error:' line and exit 2."""
        assert cli.main(["emulator", "--fault", "max_in_flight_model=5"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("atlas-async: error:")
        assert "MODEL:LIMIT" in err
        assert err.count("\n") == 1

    def test_python_m_emulator_passes_model_limits(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """`python -m atlas_async.emulator` takes max_in_flight_model too."""
        seen: list[EmulatorConfig] = []

        def run(
            host: str,
            port: int,
            config: EmulatorConfig,
            *,
            on_ready: object,
        ) -> None:
            seen.append(config)

        monkeypatch.setattr(emulator_main, "run_emulator", run)
        argv = ["--fault", f"max_in_flight_model={VIDEO}:3"]
        assert emulator_main.main(argv) == 0
        assert seen[0].faults.max_in_flight_per_model == {VIDEO: 3}

    def test_python_m_emulator_rejects_an_unknown_model(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown model in a limit is a usage error (exit 2)."""
        with pytest.raises(SystemExit) as exited:
            emulator_main.main(["--fault", "max_in_flight_model=acme/none:3"])
        assert exited.value.code == 2
        assert "does not serve" in capsys.readouterr().err
