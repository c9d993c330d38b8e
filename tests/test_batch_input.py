"""The batch's values and file loading: GenerationRequest, BatchResult, parsing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atlas_async._batch.input import load_requests, parse_requests
from atlas_async._batch.types import BatchResult, GenerationRequest
from atlas_async._core.errors import ConfigurationError
from atlas_async._core.models import Kind

IMAGE = "google/nano-banana-2/text-to-image"


class TestRequests:
    def test_a_request_coerces_its_kind_and_copies_its_params(self) -> None:
        """kind strings become Kind; params are a copy of the caller's mapping."""
        params = {"prompt": "a fox"}
        request = GenerationRequest("VIDEO", "m/x", params)
        params["prompt"] = "changed"
        assert request.kind is Kind.VIDEO
        assert request.params == {"prompt": "a fox"}
        assert hash(request) == hash(GenerationRequest("video", "m/x", {"prompt": "b"}))

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            pytest.param(("gif", "m", {}), "unknown kind", id="kind"),
            pytest.param(("image", " ", {}), "model must be", id="model"),
            pytest.param(("image", "m", ["x"]), "mapping", id="params-type"),
            pytest.param(("image", "m", {1: "x"}), "names must be strings", id="key"),
            pytest.param(("image", "m", {"model": "y"}), "'model' given", id="model2"),
            pytest.param(("image", "m", {"x": object()}), "JSON", id="not-json"),
        ],
    )
    def test_a_bad_request_is_refused_with_a_clear_message(
        self, args: tuple[Any, ...], message: str
    ) -> None:
        """Each invalid field raises ConfigurationError naming the problem."""
        with pytest.raises(ConfigurationError, match=message):
            GenerationRequest(*args)

    def test_from_mapping_needs_a_model_and_an_object(self) -> None:
        """A mapping without a model, or not a mapping, is refused."""
        with pytest.raises(ConfigurationError, match='no "model"'):
            GenerationRequest.from_mapping({"prompt": "x"})
        with pytest.raises(ConfigurationError, match="must be an object"):
            GenerationRequest.from_mapping(["x"])  # type: ignore[arg-type]

    def test_a_result_has_exactly_one_of_prediction_and_error(self) -> None:
        """BatchResult refuses both or neither."""
        request = GenerationRequest("image", IMAGE)
        with pytest.raises(ConfigurationError, match="exactly one"):
            BatchResult(0, request)


class TestInput:
    def test_prompts_skip_blank_lines_and_comments(self) -> None:
        """One prompt per line; blanks and # comments are skipped; lines are kept."""
        parsed = parse_requests("a fox\n\n# note\n  an owl  \n", suffix=".txt")
        assert [r.params for r in parsed.requests] == [
            {"prompt": "a fox"},
            {"prompt": "an owl"},
        ]
        assert parsed.lines == (1, 4)
        assert parsed.format == "prompts"
        assert {r.model for r in parsed.requests} == {IMAGE}

    def test_video_prompts_get_the_default_video_model(self) -> None:
        """--kind video without --model uses the default video model."""
        parsed = parse_requests("waves", kind="video")
        assert parsed.requests[0].model == "bytedance/seedance-2.0/text-to-video"

    def test_the_format_is_guessed_from_the_first_line(self) -> None:
        """Without a telling suffix, a leading { means JSON Lines."""
        assert parse_requests('{"prompt": "x"}').format == "jsonl"
        assert parse_requests("just words").format == "prompts"

    @pytest.mark.parametrize(
        "content",
        [pytest.param(b"", id="empty"), pytest.param(b"# only\n\n", id="comments")],
    )
    def test_a_file_without_requests_is_refused(
        self, tmp_path: Path, content: bytes
    ) -> None:
        """An empty (or comment-only) file is a ConfigurationError naming it."""
        file = tmp_path / "prompts.txt"
        file.write_bytes(content)
        with pytest.raises(ConfigurationError, match=r"prompts\.txt: no requests"):
            load_requests(file)

    def test_a_line_that_is_not_utf8_is_one_problem_and_the_others_run(
        self, tmp_path: Path
    ) -> None:
        """One Latin-1 line costs that line only, named with its byte."""
        file = tmp_path / "prompts.txt"
        file.write_bytes(b"a red fox\n" + b"caf\xe9 au lait\n" + b"an owl\n")
        parsed = load_requests(file)
        assert [r.params["prompt"] for r in parsed.requests] == ["a red fox", "an owl"]
        assert parsed.lines == (1, 3)
        [problem] = parsed.problems
        assert problem.line == 2
        assert "not UTF-8" in problem.message
        assert "0xe9" in problem.message

    def test_a_binary_file_and_bad_options_are_refused(self, tmp_path: Path) -> None:
        """A file with NUL bytes, an empty --model and an unknown --kind are
        refused."""
        file = tmp_path / "x.txt"
        file.write_bytes(b"\xff\xfe\x00bad")
        with pytest.raises(ConfigurationError, match="not text"):
            load_requests(file)
        with pytest.raises(ConfigurationError, match="must not be empty"):
            parse_requests("x", model=" ")
        with pytest.raises(ConfigurationError, match="unknown kind"):
            parse_requests("x", kind="gif")
