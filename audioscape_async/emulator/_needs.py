"""Imported first by the package: without the `emulator` extra, one line says what to install."""

from __future__ import annotations

from audioscape_async._extras import require

require("emulator", "audioscape_async.emulator")
