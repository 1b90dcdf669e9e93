"""A minimal HTTP/1.1 client with keep-alive pooling, for plain-http webhooks only."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit


class RawHTTP:
    """Minimal HTTP/1.1 client with keep-alive pooling, for plain-http webhooks only.

    Handles Content-Length, chunked and read-until-close bodies; a pooled connection that
    the peer closed while idle is retried once on a fresh connection.
    """

    USER_AGENT = "smsportal-fake-provider/1.0"

    def __init__(self, max_idle_per_host: int = 256):
        self._idle: dict[tuple[str, int], list[tuple[asyncio.StreamReader, Any]]] = {}
        self._max_idle = max_idle_per_host

    @staticmethod
    def target(url: str) -> tuple[str, int, str, str] | None:
        """(host, port, Host header, request target) or None when not eligible."""
        try:
            parts = urlsplit(url)
            port = parts.port or 80
        except ValueError:
            return None
        if parts.scheme != "http" or not parts.hostname or "@" in parts.netloc:
            return None
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        if not path.isascii() or any(ch in path for ch in " \t\r\n"):
            return None
        return parts.hostname, port, parts.netloc, path

    def close(self) -> None:
        for conns in self._idle.values():
            for _, writer in conns:
                writer.close()
        self._idle.clear()

    async def request(
        self,
        method: str,
        target: tuple[str, int, str, str],
        headers: dict[str, str],
        body: bytes,
        timeout: float,
    ) -> tuple[int, bytes]:
        host, port, netloc, path = target
        lines = [
            f"{method} {path} HTTP/1.1",
            f"Host: {netloc}",
            f"User-Agent: {self.USER_AGENT}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{k}: {v}" for k, v in headers.items())
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
        key = (host, port)
        async with asyncio.timeout(timeout):
            while True:
                reader, writer = self._pooled(key)
                reused = reader is not None
                if not reused:
                    reader, writer = await asyncio.open_connection(host, port)
                try:
                    writer.write(data)
                    status, keep, payload = await self._read_response(reader, method)
                except (ConnectionError, asyncio.IncompleteReadError) as e:
                    writer.close()
                    stale = isinstance(e, ConnectionError) or not e.partial
                    if reused and stale:
                        continue  # the peer closed the idle connection: try another
                    raise
                except BaseException:
                    writer.close()
                    raise
                if keep:
                    conns = self._idle.setdefault(key, [])
                    if len(conns) < self._max_idle:
                        conns.append((reader, writer))
                    else:
                        writer.close()
                else:
                    writer.close()
                return status, payload

    def _pooled(self, key: tuple[str, int]):
        idle = self._idle.get(key)
        while idle:
            reader, writer = idle.pop()
            if reader.at_eof() or writer.is_closing():
                writer.close()
                continue
            return reader, writer
        return None, None

    @staticmethod
    async def _read_response(reader: asyncio.StreamReader, method: str):
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head[:-4].decode("latin-1").split("\r\n")
            version, _, rest = lines[0].partition(" ")
            status = int(rest[:3])
            if not 100 <= status < 200 or status == 101:
                break
        hdrs: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            hdrs[name.strip().lower()] = value.strip()
        conn = hdrs.get("connection", "").lower()
        keep = conn != "close" if version == "HTTP/1.1" else conn == "keep-alive"
        if method == "HEAD" or status in (204, 304):
            return status, keep, b""
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int((await reader.readline()).split(b";")[0].strip(), 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append((await reader.readexactly(size + 2))[:-2])
            return status, keep, b"".join(chunks)
        if "content-length" in hdrs:
            return status, keep, await reader.readexactly(int(hdrs["content-length"]))
        return status, False, await reader.read()
