"""The exception tree: shape, attributes and messages."""

from __future__ import annotations

import pickle

import pytest

import atlas_async as atlas
from atlas_async import PredictionStatus


class TestHierarchy:
    @pytest.mark.parametrize(
        ("error", "bases"),
        [
            pytest.param(atlas.InvalidRequestError, (atlas.APIError,), id="400"),
            pytest.param(atlas.AuthenticationError, (atlas.APIError,), id="401"),
            pytest.param(atlas.InsufficientBalanceError, (atlas.APIError,), id="402"),
            pytest.param(atlas.PermissionDeniedError, (atlas.APIError,), id="403"),
            pytest.param(atlas.NotFoundError, (atlas.APIError,), id="404"),
            pytest.param(atlas.RateLimitError, (atlas.APIError,), id="429"),
            pytest.param(atlas.ServerError, (atlas.APIError,), id="5xx"),
            pytest.param(
                atlas.SubmissionUnknownError, (atlas.TransportError,), id="unknown"
            ),
            pytest.param(
                atlas.PredictionTimeoutError,
                (atlas.PredictionError, TimeoutError),
                id="timeout",
            ),
            pytest.param(
                atlas.ClientClosedError,
                (atlas.ClientStateError, RuntimeError),
                id="closed",
            ),
            pytest.param(atlas.ConfigurationError, (ValueError,), id="config"),
        ],
    )
    def test_error_has_its_documented_bases(
        self, error: type[Exception], bases: tuple[type[BaseException], ...]
    ) -> None:
        """Each error subclasses its parent and the builtin with the same meaning."""
        assert issubclass(error, atlas.AtlasError)
        for base in bases:
            assert issubclass(error, base)


class TestMessages:
    def test_api_error_str_names_status_request_and_retry(self) -> None:
        """str() of an API error is one line with everything needed to recover."""
        error = atlas.RateLimitError(
            "rate limit exceeded",
            status_code=429,
            request_id="req-1",
            retry_after=2.5,
            prediction_id="p-9",
        )
        assert str(error) == (
            "429: rate limit exceeded (prediction p-9, request id req-1, "
            "retry after 2.5s)"
        )

    def test_api_error_without_extras_is_just_the_status_and_message(self) -> None:
        """No empty parentheses when there is nothing more to say."""
        assert str(atlas.ServerError("boom", status_code=500)) == "500: boom"

    def test_prediction_error_mentions_the_id_once(self) -> None:
        """The prediction id appears in the message, but not twice."""
        error = atlas.PredictionFailedError(
            "prediction abc failed: content policy",
            prediction_id="abc",
            error="content policy",
            error_code=1039,
            status=PredictionStatus.FAILED,
        )
        assert str(error).count("abc") == 1
        assert error.error_code == 1039
        other = atlas.PredictionCancelledError("cancelled", prediction_id="xyz")
        assert str(other) == "cancelled (prediction xyz)"

    def test_errors_survive_pickling_with_their_attributes(self) -> None:
        """Errors cross process boundaries (worker pools) intact."""
        error = atlas.PredictionTimeoutError(
            "deadline passed",
            prediction_id="p1",
            last_status=PredictionStatus.PROCESSING,
            timeout=30.0,
        )
        clone = pickle.loads(pickle.dumps(error))
        assert type(clone) is atlas.PredictionTimeoutError
        assert clone.prediction_id == "p1"
        assert clone.last_status is PredictionStatus.PROCESSING
        assert str(clone) == str(error)


class TestKind:
    def test_kind_accepts_enum_and_string(self) -> None:
        """Kind.coerce takes the enum or its (case-insensitive) value."""
        assert atlas.Kind.coerce("Video") is atlas.Kind.VIDEO
        assert atlas.Kind.coerce(atlas.Kind.AUDIO) is atlas.Kind.AUDIO

    def test_unknown_kind_is_a_configuration_error_naming_the_choices(self) -> None:
        """A typo in the kind gets a readable, typed error."""
        with pytest.raises(atlas.ConfigurationError, match="'image', 'video', 'audio'"):
            atlas.Kind.coerce("picture")


class TestStatus:
    @pytest.mark.parametrize(
        ("status", "terminal", "success"),
        [
            (PredictionStatus.PROCESSING, False, False),
            (PredictionStatus.UNKNOWN, False, False),
            (PredictionStatus.COMPLETED, True, True),
            (PredictionStatus.FAILED, True, False),
            (PredictionStatus.TIMEOUT, True, False),
            (PredictionStatus.CANCELED, True, False),
        ],
    )
    def test_terminal_and_success_flags(
        self, status: PredictionStatus, terminal: bool, success: bool
    ) -> None:
        """Only the four end states are terminal, and only COMPLETED is success."""
        assert status.is_terminal is terminal
        assert status.is_success is success

    def test_model_info_kind_maps_catalog_type(self) -> None:
        """A catalog type maps to the endpoint kind; text models have none."""
        assert atlas.ModelInfo(model="m", type="Video").kind is atlas.Kind.VIDEO
        assert atlas.ModelInfo(model="m", type="Text").kind is None
