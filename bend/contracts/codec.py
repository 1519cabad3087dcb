"""Events and commands <-> bytes, in the process's wire format: `encode`, `decode`, `codec_for`.

By default Avro single-object encoding (bend.contracts.wire: 0xC3 0x01, the writer schema's
CRC-64-AVRO fingerprint, then the schemaless Avro body). Decoding finds the writer schema by
fingerprint among the current and every recorded schema (schemas/avro/history/) and resolves it
to the current one, so data written by an older Bend stays readable. With a schema registry
configured (`BEND_KAFKA__SCHEMA_REGISTRY_URL`), the process writes the Confluent wire format
instead and reads both (bend.contracts.registry): `encode` and `decode` follow the process's
settings.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import structlog

from bend.contracts.errors import ContractError
from bend.contracts.wire import MAGIC, RECORD_TYPES, Codec, ReadPlan, read_body
from bend.core.commands import Command
from bend.core.events import Event

if TYPE_CHECKING:
    from bend.contracts.registry import RegistryCodec
    from bend.settings import Settings

__all__ = [
    "MAGIC", "RECORD_TYPES", "Codec", "ReadPlan", "codec_for", "configure", "decode", "encode",
    "prime", "prime_blocking", "process_codec", "read_body",
]

log = structlog.get_logger(__name__)

_default: Codec | None = None
_process: Codec | RegistryCodec | None = None  # what encode/decode use; see `configure`
_registries: dict[str, RegistryCodec] = {}


def _codec() -> Codec:
    global _default
    if _default is None:
        _default = Codec()
    return _default


def configure(settings: Settings | None) -> None:
    """Make `settings`' codec the process's: what `encode` and `decode` use from now on.

    Without a call, the first `encode` or `decode` takes it from `get_settings()` (the
    environment every Bend process reads), so no entry point can forget it; a process handed
    other settings (a worker, a test) calls this with them. `None` forgets the choice.
    """
    global _process
    _process = None if settings is None else codec_for(settings)


def process_codec() -> Codec | RegistryCodec:
    """The process's codec: the registry's wire format when a registry URL is configured."""
    global _process
    if _process is None:
        from bend.settings import get_settings

        _process = codec_for(get_settings())
    return _process


def encode(record: Event | Command) -> bytes:
    """`record` in the process's wire format: single-object Avro, or the registry's framing."""
    return (_process or process_codec()).encode(record)


def decode(data: bytes) -> Event | Command:
    """The event or command in `data`; with a registry configured, either framing is read.

    The hot path: one global read, then the codec (a registry codec passes single-object data
    straight to the plain one after a two-byte comparison).
    """
    return (_process or process_codec()).decode(data)


def codec_for(settings: Settings) -> Codec | RegistryCodec:
    """The codec the settings ask for: the registry's wire format when a URL is configured.

    One registry codec per URL per process, so every writer and reader shares its id cache.
    """
    url = settings.kafka.schema_registry_url
    if not url:
        return _codec()
    codec = _registries.get(url)
    if codec is None:
        from bend.contracts.registry import RegistryCodec

        codec = _registries[url] = RegistryCodec(url, _codec())
    return codec


def prime_blocking(settings: Settings) -> None:
    """With a schema registry configured, register every current schema now (blocking HTTP
    calls), so no encode waits on the registry later. A registry that does not answer now is
    only logged: the first use tries again."""
    codec = codec_for(settings)
    if isinstance(codec, Codec):
        return
    try:
        count = codec.prime()
    except ContractError as err:
        log.warning("schema_registry_not_primed", url=codec.url, error=str(err))
        return
    log.info("schema_registry_primed", url=codec.url, types=count)


async def prime(settings: Settings) -> None:
    """`prime_blocking` in a thread, before a process on an event loop starts its work."""
    if settings.kafka.schema_registry_url:
        await asyncio.to_thread(prime_blocking, settings)
