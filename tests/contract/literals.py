"""
Literal bodies of the wire contract, as bytes, exactly as they are sent.

F1-F19 are the conformance fixtures, verbatim from their sources (``…`` is a
value the source left out; docs/wire.md, "Sample answers"). The W bodies are
answers of the forms the wire facts W1-W18 describe (docs/wire.md, "Wire forms
the SDK reads"): the facts give the shape and the keys, the values here are
ours. Nothing in this module is computed: a test compares what a side makes of
a literal with values written out in the test.
"""

from __future__ import annotations

# --- F1-F19 -----------------------------------------------------------------

F1_SUBMIT_STARTING = (
    b'{"code": 200, "data": {"id": "prediction_abc123", "status": "starting"}}'
)
F2_SUBMIT_PROCESSING = (
    b'{"code": 200, "message": "", "data": {"id": "8ba2926c6bd642049f4d17dd68ea6785",'
    b' "model": "kwaivgi/kling-v3.0-pro/image-to-video", "outputs": null, "urls":'
    b' {"get": "https://api.atlascloud.ai/api/v1/model/prediction/'
    b'8ba2926c6bd642049f4d17dd68ea6785"}, "status": "processing"}}'
)
F3_SUBMIT_CREATED = (
    b'{"code": 200, "data": {"id": "prediction-id", "status": "created", "outputs":'
    b' null, "urls": {"get": "https://api.atlascloud.ai/api/v1/model/prediction/{id}"}}}'
)
F4_SUBMIT_ID_ONLY = b'{"code": 200, "data": {"id": "prediction_id"}}'
F5_PROCESSING = (
    b'{"data": {"id": "pred-1", "status": "processing", "outputs": null,'
    b' "error": null}}'
)
F6_BARE_PROCESSING = (
    b'{"id": "pred_abc123", "status": "processing", "model": "model-name",'
    b' "created_at": "2025-01-01T00:00:00Z"}'
)
F7_COMPLETED = (
    b'{"code": 200, "data": {"id": "prediction_abc123", "status": "completed",'
    b' "outputs": ["https://cdn.atlascloud.ai/generated/xxx.png"]}}'
)
F8_COMPLETED_METRICS = (
    b'{"data": {"id": "pred_abc123", "status": "completed", "outputs":'
    b' ["https://storage.atlascloud.ai/outputs/result.mp4"], "metrics":'
    b' {"predict_time": 45.2}, "created_at": "2025-01-01T00:00:00Z"}}'
)
F9_COMPLETED_NO_ID = (
    b'{"code": 200, "data": {"status": "completed", "outputs":'
    b' ["https://dashscope-result-sgp...image-url.png"], "has_nsfw_contents": null,'
    b' "error": ""}}'
)
F10_SCHEMA = (
    b'{"created_at": "2019-08-24T14:15:22Z", "has_nsfw_contents": [true], "id":'
    b' "string", "model": "string", "outputs": ["string"], "status": "string",'
    b' "urls": {}}'
)
F11_FAILED = (
    '{"code": 200, "data": {"id": "…", "status": "failed", "error": "…",'
    ' "error_code": 1039}}'
).encode()
F12_UNAUTHORIZED = (
    '{"code": 401, "msg": "unauthorized", "request_id": "…", "data": null}'
).encode()
F13_UNAUTHORIZED_LIVE = b'{"code": 401, "msg": "unauthorized"}'
F14_NOT_FOUND_LIVE = b'{"code": 404, "msg": "not found"}'
F15_NO_BALANCE = b'{"code": 402, "msg": "insufficient balance", "data": null}'
F16_BILLING_ERROR = (
    '{"error": {"type": "invalid_request_error", "code": "invalid_date_range",'
    ' "message": "end_date must be after start_date", "param": "end_date"},'
    ' "request_id": "req_…"}'
).encode()
F17_UPLOAD = (
    b'{"code": 200, "data": {"download_url":'
    b' "https://atlas-img.oss-accelerate-overseas.aliyuncs.com/media/xxx.jpg",'
    b' "filename": "photo.jpg", "size": 123456}}'
)
F18_WEBHOOK = (
    b'{"session_id": "session-123", "event_type": "image.task.terminal", "status":'
    b' "OK", "created_at": 1700000000000, "payload": {"model":'
    b' "google/nano-banana-2/text-to-image", "status": "completed", "outputs":'
    b' ["https://cdn.atlascloud.test/a.png"]}}'
)
F19_REPLICATE_STYLE = (
    b'{"id": "7hm7nbwarxrm80cnq1yvmxz4m4", "logs": "...", "urls": {"cancel":'
    b' "http://example.com", "result": "http://example.com"}, "model":'
    b' "black-forest-labs/flux-dev", "output": ["https://replicate.delivery/..."],'
    b' "status": "processing", "created_at": "2025-03-21T11:36:30.151Z",'
    b' "has_nsfw_contents": [false]}'
)

# --- W1-W18 -----------------------------------------------------------------

W_ID = "6f1d2c3b4a5e6f708192a3b4c5d6e7f8"

# W1: a failed prediction answered as HTTP 5xx, the verdict in the body.
W1_FAILED_AS_500 = (
    b'{"code": 500, "message": "Generation failed: the model timed out",'
    b' "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status": "failed",'
    b' "error": "the model could not process this input"}}'
)
# W2: the same with an empty data.error: the outer message is the reason.
W2_OUTER_MESSAGE = (
    b'{"code": 500, "message": "Input image is too small (min 256x256)",'
    b' "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status": "failed",'
    b' "error": ""}}'
)


def w3_terminal_as_5xx(status: str) -> bytes:
    """W3: a 5xx whose body reports the terminal task status ``status``."""
    return (
        b'{"code": 500, "message": "task ended", "data": {"id":'
        b' "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status": "'
        + status.encode()
        + b'", "error": "task ended"}}'
    )


# W4: `error` as an object, its reason under one of five keys, or none of them.
def w4_error_object(error_json: str) -> bytes:
    """W4: a failed poll whose ``data.error`` is the JSON ``error_json``."""
    return (
        b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8",'
        b' "status": "failed", "error": ' + error_json.encode() + b"}}"
    )


# W5: plain-text outputs, a transcript and lyrics (with a real URL and a data
# URI beside them, which are files).
W5_TRANSCRIPT_OUTPUT = (
    b'{"code": 200, "message": "", "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8",'
    b' "model": "example/speech-to-text", "status": "completed", "outputs":'
    b' ["Hello, and welcome to the show."]}}'
)
W5_LYRICS_OUTPUTS = (
    b'{"code": 200, "message": "", "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8",'
    b' "model": "example/lyrics", "status": "completed", "outputs":'
    b' ["[Verse]\\nCity lights are calling", "[Chorus]\\nWe run, we run"]}}'
)
W5_FILES_ONLY = (
    b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status":'
    b' "completed", "outputs": ["https://cdn.atlascloud.ai/a.mp3",'
    b' "HTTPS://cdn.atlascloud.ai/b.mp3", "//cdn.atlascloud.ai/c.mp3",'
    b' "data:audio/mpeg;base64,SUQzBAAAAAAAI1RTU0UAAAAPAAADTGF2ZjU4Ljc2LjEwMAAAAAAA"]}}'
)

# W6: the live fields of a completed speech-to-text prediction.
W6_LIVE_FIELDS = (
    b'{"code": 200, "message": "", "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8",'
    b' "model": "example/speech-to-text", "status": "completed",'
    b' "outputs": ["Hello world"], "urls": {"get":'
    b' "https://api.atlascloud.ai/api/v1/model/prediction/'
    b'6f1d2c3b4a5e6f708192a3b4c5d6e7f8"}, "has_nsfw_contents": [false],'
    b' "created_at": "2026-03-01T12:00:00.000Z", "completed_at":'
    b' "2026-03-01T12:00:04.250Z", "error": "", "price": "0.0125",'
    b' "latency_ms": 4250, "executionTime": 3900, "timings": {"inference": 3800},'
    b' "duration": 2.5, "stt_result": {"text": "Hello world", "language":'
    b' "English", "language_code": "en", "duration": 2.5, "words": [{"text":'
    b' "Hello", "start": 0.1, "end": 0.6}, {"text": "world", "start": 0.7,'
    b' "end": 1.2}], "channels": []}}}'
)
# W6: a lyrics model's result, the price a number, the time in executionTime.
W6_LYRICS_RESULT = (
    b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "model":'
    b' "example/lyrics", "status": "completed", "outputs":'
    b' ["[Verse]\\nCity lights are calling"], "price": 0.002, "executionTime": 1500,'
    b' "lyrics_result": {"song_title": "City Lights", "style_tags":'
    b' "synth-pop, upbeat", "lyrics": "[Verse]\\nCity lights are calling"}}}'
)
# W6: Suno-style extras the SDK keeps in `raw` only.
W6_EXTRAS = (
    b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status":'
    b' "completed", "outputs": ["https://cdn.atlascloud.ai/song.mp3"], "thumbnail":'
    b' "https://cdn.atlascloud.ai/cover.jpg", "files": [{"url":'
    b' "https://cdn.atlascloud.ai/stem.wav"}], "layers": [], "duration": 95.5}}'
)
# W6, garbage: every live field in a shape that makes no sense.
W6_GARBAGE = (
    b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status":'
    b' "completed", "outputs": ["https://cdn.atlascloud.ai/a.png"], "price":'
    b' {"amount": 1}, "latency_ms": "soon", "executionTime": -5, "timings": [1],'
    b' "completed_at": "tomorrow", "stt_result": [1, 2], "lyrics_result": 42}}'
)


def w8_status(status: str) -> bytes:
    """W8: a poll answer with one status of the server's vocabulary."""
    outputs = (
        b'["https://cdn.atlascloud.ai/a.png"]' if status == "completed" else b"null"
    )
    return (
        b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status": "'
        + status.encode()
        + b'", "outputs": '
        + outputs
        + b"}}"
    )


# W12: a catalog entry with the fields beyond the documented ones.
W12_CATALOG_ENTRY = (
    b'{"uuid": "0c7e4f0a-1111-4222-8333-944455556666", "model":'
    b' "example/speech-to-text", "type": "Audio", "displayName": "Speech to text",'
    b' "categories": null, "tags": null, "price": {"discount": 1, "actual":'
    b' {"base_price": "0.0025", "unit": "minute"}, "origin": {"base_price":'
    b' "0.003"}}, "cache_creation_price": null, "supported_protocols": ["http"],'
    b' "input_modalities": ["audio"], "output_modalities": ["text"],'
    b' "supported_sampling_parameters": [], "minDuration": 1, "priority": 10,'
    b' "avgLatency": "12", "display_console": true}'
)
W12_CATALOG = b'{"code": "200", "data": [' + W12_CATALOG_ENTRY + b"]}"
# W12 / section 13: the `price` of an entry priced per image, and of one priced
# per second of video. The keys are the vendor type's (`input_price`,
# `output_price`, `base_price`, `cache_price`, `output_image_price`,
# `request_price`) plus W12's `cache_creation_price` and `unit`; the values are
# ours. A price that does not apply is "0".
W12_PRICE_PER_IMAGE = (
    b'{"discount": "1", "actual": {"input_price": "0", "output_price": "0",'
    b' "base_price": "0.03", "cache_price": "0", "cache_creation_price": "0",'
    b' "output_image_price": "0.03", "request_price": "0", "unit": "image"},'
    b' "origin": {"input_price": "0", "output_price": "0", "base_price": "0.03",'
    b' "cache_price": "0", "cache_creation_price": "0", "output_image_price":'
    b' "0.03", "request_price": "0", "unit": "image"}}'
)
W12_PRICE_PER_SECOND = (
    b'{"discount": "1", "actual": {"input_price": "0", "output_price": "0",'
    b' "base_price": "0.06", "cache_price": "0", "cache_creation_price": "0",'
    b' "output_image_price": "0", "request_price": "0", "unit": "second"},'
    b' "origin": {"input_price": "0", "output_price": "0", "base_price": "0.06",'
    b' "cache_price": "0", "cache_creation_price": "0", "output_image_price": "0",'
    b' "request_price": "0", "unit": "second"}}'
)

# W16: the answer of GET /model/result/{id}: the poll envelope.
W16_RESULT_PATH = (
    b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status":'
    b' "completed", "outputs": ["https://cdn.atlascloud.ai/a.png"]}}'
)

# W18: a failure whose error text is a code-like word.
W18_DURATION_TOO_LONG = (
    b'{"code": 200, "data": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "status":'
    b' "failed", "error": "InvalidParameter.DurationTooLong"}}'
)


# --- W forms of endpoints the emulator answers beyond predictions -------------

# W7: GET /model/history?no=1&size=10: `code` the string "200" (as measured on
# the live service), `createdAt` unix seconds as text, `requestBody` the
# submit's JSON text, `result` (once ended) the poll answer's `data`.
W7_HISTORY = (
    b'{"code": "200", "message": "", "data": {"items": [{"ID":'
    b' "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "createdAt": "1700000000", "model":'
    b' "google/nano-banana-2/text-to-image", "requestBody": "{\\"model\\":'
    b' \\"google/nano-banana-2/text-to-image\\", \\"prompt\\": \\"a fox\\"}",'
    b' "status": "completed", "result": {"id": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8",'
    b' "status": "completed", "outputs": ["https://cdn.atlascloud.ai/a.png"]}}],'
    b' "pageNo": 1, "pageSize": 10, "total": 1}}'
)
# W7: an item still running has no `result`.
W7_HISTORY_RUNNING_ITEM = (
    b'{"ID": "6f1d2c3b4a5e6f708192a3b4c5d6e7f8", "createdAt": "1700000000",'
    b' "model": "google/nano-banana-2/text-to-image", "requestBody": "{}",'
    b' "status": "processing"}'
)

# W9: an upload of `voice.m4a` sent as application/octet-stream: the server
# types it by its name and keeps the name in the URL (F17's envelope, with the
# `type` the vendor's client reads).
W9_UPLOAD_TYPED_BY_NAME = (
    b'{"code": 200, "message": "", "data": {"type": "audio/mp4", "download_url":'
    b' "https://atlas-img.oss-accelerate-overseas.aliyuncs.com/media/voice.m4a",'
    b' "filename": "voice.m4a", "size": 4096}}'
)

# W11: GET /public/v1/balance. `credit_grant`'s members are not in the source
# (`credit_grant{...}`): its object is open.
W11_BALANCE = (
    b'{"object": "balance", "scope": "self", "account": {"id": "acct_1234",'
    b' "name": "Example", "type": "personal"}, "available": {"value": "9.970000",'
    b' "currency": "usd"}, "cash": {"value": "10.000000", "currency": "usd"},'
    b' "bonus": {"value": "0.000000", "currency": "usd"}, "subscription_bonus":'
    b' {"value": "0.000000", "currency": "usd"}, "frozen": {"value": "0.030000",'
    b' "currency": "usd"}, "credit_grant": {}, "request_id": "req_0001"}'
)
# W11: GET /public/v1/model-usage (and /model-costs): one bucket per day; the
# rows in `results` are not in the source either.
W11_USAGE_LIST = (
    b'{"object": "list", "scope": "self", "data": [{"object": "bucket", "date":'
    b' "2023-11-14", "start_at": "2023-11-14T00:00:00Z", "end_at":'
    b' "2023-11-15T00:00:00Z", "partial": false, "results": []}], "has_more":'
    b' false, "next_page": null, "request_id": "req_0002"}'
)

# W13: the headers of F18_WEBHOOK once the HMAC is retired: the Ed25519
# signature in the bare header. Signed with the RFC 8032 section 7.1 test-1
# key (kid: its RFC 7638 thumbprint, RFC 8037 appendix A.3) over
# b"1700000000." + F18_WEBHOOK.
W13_BARE_SIGNATURE_HEADERS = {
    "X-AtlasCloud-Webhook-Id": "session-123",
    "X-AtlasCloud-Webhook-Event": "image.task.terminal",
    "X-AtlasCloud-Webhook-Timestamp": "1700000000",
    "X-AtlasCloud-Webhook-Key-Id": "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k",
    "X-AtlasCloud-Webhook-Signature": (
        "wInkXqqMAJA74xLUNbPs48KS-W3qPcpGVYYbjij0Rbx7Y01V71M0H7TD48lu9ZbEJ7XNlI7q"
        "ZXPBJjpacZNZDg"
    ),
}
