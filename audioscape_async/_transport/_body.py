"""Bodies: a request's, sent as one chunk; an answer's, read within the size limit and decoded.

`BodyReader` counts and decodes an answer's body chunk by chunk, on every
wire alike: past `max_response_bytes` (decompressed) or past a bomb's ratio
it says so at once, so the wire stops reading. The SDK decodes gzip and
deflate itself, with a cap on each step (a bomb cannot burst); it asks for
nothing else and refuses anything else.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator

import httpx

from audioscape_async._constants import DECOMPRESSION_CHECK_BYTES, MAX_DECOMPRESSION_RATIO
from audioscape_async._exceptions import APIResponseValidationError

__all__ = ["Body", "BodyReader", "too_large"]


def too_large(limit: int, detail: str) -> APIResponseValidationError:
    """The error of an answer over the size limit."""
    return APIResponseValidationError(
        f"the answer is larger than max_response_bytes ({limit:,} bytes; {detail}); "
        "a search page is far smaller: is base_url the AudioScape API?"
    )


class _Decoder:
    """gzip or deflate, decompressed at most `room` bytes at a time (a bomb cannot burst)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        wbits = zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        self._first = True

    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        try:
            out = self._zlib.decompress(data, room)
        except zlib.error:
            if not (self._first and self._encoding == "deflate"):
                raise
            # Some servers send raw deflate, without the zlib header.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, room)
        self._first = False
        yield out
        while self._zlib.unconsumed_tail:
            yield self._zlib.decompress(self._zlib.unconsumed_tail, room)

    def flush(self) -> bytes:
        return self._zlib.flush()


class BodyReader:
    """Counts and decodes a body chunk by chunk; says what is wrong as soon as it is."""

    __slots__ = ("_chunks", "_decoder", "_encoding", "_max", "_raw", "_size")

    def __init__(self, encoding: str, max_bytes: int, *, length: str | None = None) -> None:
        """Refuses at once a body whose Content-Length says it is too large."""
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise too_large(max_bytes, f"it says it is {int(length):,} bytes")
        encoding = encoding.strip().lower()
        self._encoding = encoding
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._size = self._raw = 0
        self._decoder: _Decoder | None = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder(encoding)
        elif encoding not in ("identity", ""):
            raise APIResponseValidationError(
                f"the answer is encoded as {encoding[:40]!r}, which was not asked for "
                "(the client accepts gzip and deflate)"
            )

    @classmethod
    def for_headers(cls, headers: httpx.Headers, max_bytes: int) -> BodyReader:
        """The reader of a body with these headers; refuses at once one too large."""
        return cls(
            headers.get("content-encoding", "identity"), max_bytes,
            length=headers.get("content-length"),
        )  # fmt: skip

    def feed(self, data: bytes) -> APIResponseValidationError | None:
        """Take one chunk; the error that ends the reading, if this chunk makes one."""
        self._raw += len(data)
        if self._decoder is None:
            return self._take(data)
        try:
            for out in self._decoder.decode(data, self._max - self._size + 1):
                problem = self._take(out)
                if problem is not None:
                    return problem
        except zlib.error as error:
            return self._invalid(error)
        return None

    def _take(self, out: bytes) -> APIResponseValidationError | None:
        self._size += len(out)
        if self._size > self._max:
            detail = "it kept coming" if self._decoder is None else "once decompressed"
            return too_large(self._max, detail)
        if (
            self._decoder is not None
            and self._size > DECOMPRESSION_CHECK_BYTES
            and self._size > MAX_DECOMPRESSION_RATIO * self._raw
        ):
            return APIResponseValidationError(
                f"the answer grew more than {MAX_DECOMPRESSION_RATIO}x in decompression "
                f"({self._raw:,} bytes to over {self._size:,}): refused as a decompression bomb"
            )
        self._chunks.append(out)
        return None

    def _invalid(self, error: zlib.error) -> APIResponseValidationError:
        return APIResponseValidationError(
            f"the answer's body is not valid {self._encoding} ({error})"
        )

    def finish(self) -> bytes:
        """The whole decoded body."""
        if self._decoder is not None:
            try:
                self._chunks.append(self._decoder.flush())
            except zlib.error as error:
                raise self._invalid(error) from None
        return b"".join(self._chunks)


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body sent as one chunk, iterated by a plain object.

    httpx's and httpcore's own body streams iterate with an async generator;
    a request cancelled while it is sent leaves that generator unfinished,
    and trio warns (ResourceWarning) when it is collected (encode/httpx#3686).
    """

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._body,))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _OneChunk(self._body)


class _OneChunk:
    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        body, self._body = self._body, None
        if body is None:
            raise StopAsyncIteration
        return body
