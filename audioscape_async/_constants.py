"""Every fixed fact of the AudioScape API, in one place.

The client, the validation, the emulator and the command line import these;
none of them spells a URL, a header name or a limit of its own.
"""

from __future__ import annotations

from typing import Final

#: The path every base URL of the API ends in (the real one's, and the emulator's).
API_PATH: Final = "/developer/v1"
#: Where the real API lives.
DEFAULT_BASE_URL: Final = "https://api.audioscape.ai" + API_PATH
#: The one endpoint, relative to the base URL.
SEARCH_PATH: Final = "/search"

#: Environment variables the clients read when an argument is not given.
API_KEY_ENV: Final = "AUDIOSCAPE_API_KEY"
BASE_URL_ENV: Final = "AUDIOSCAPE_BASE_URL"

#: Request headers.
API_KEY_HEADER: Final = "x-api-key"
#: Response headers that may carry a request id, most specific first.
REQUEST_ID_HEADERS: Final = ("x-request-id", "request-id", "x-amzn-requestid", "cf-ray")

#: Paging limits, as documented.
DEFAULT_LIMIT: Final = 20
MAX_LIMIT: Final = 100
DEFAULT_OFFSET: Final = 0

#: The values `meta.search_method` takes.
SEARCH_METHODS: Final = ("semantic", "text")

#: The default timeout, in seconds, for the whole of one HTTP attempt.
DEFAULT_TIMEOUT: Final = 30.0
#: The default number of retries after the first attempt.
DEFAULT_MAX_RETRIES: Final = 3

#: Response header that says when to retry: whole seconds or an HTTP-date.
RETRY_AFTER_HEADER: Final = "retry-after"
#: The media type of request bodies and of the API's answers.
JSON_CONTENT_TYPE: Final = "application/json"

#: The most pages one walk may fetch at once.
MAX_CONCURRENCY: Final = 64

#: The largest integer the client sends (offsets, counts, durations): the top of
#: the range every JSON parser reads exactly (RFC 8259, section 6).
MAX_JSON_INT: Final = 2**53 - 1

#: Response header that says when to retry, in milliseconds (some gateways send it).
RETRY_AFTER_MS_HEADER: Final = "retry-after-ms"

#: The largest answer body the client reads, decompressed, by default: a
#: 100-track page is about 30 KB, so this is far above any real page.
DEFAULT_MAX_RESPONSE_BYTES: Final = 8 * 1024 * 1024
#: Past this many decompressed bytes, a body that grew more than
#: `MAX_DECOMPRESSION_RATIO` times in decompression is refused as a bomb (JSON
#: pages compress about 5 to 10 times).
DECOMPRESSION_CHECK_BYTES: Final = 1024 * 1024
MAX_DECOMPRESSION_RATIO: Final = 100

#: Environment variable that turns on the SDK's own log handler: debug or info.
LOG_ENV: Final = "AUDIOSCAPE_LOG"

#: Environment variables of the OpenTelemetry switches (`Telemetry`): whether the
#: query's text goes on spans (off by default), and whether the trace context is
#: sent to the server in a ``traceparent`` header (on by default).
OTEL_CAPTURE_QUERY_ENV: Final = "AUDIOSCAPE_OTEL_CAPTURE_QUERY"
OTEL_PROPAGATE_ENV: Final = "AUDIOSCAPE_OTEL_PROPAGATE"
