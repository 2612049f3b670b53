"""Register reads through BMv2's Thrift runtime API, where P4Runtime cannot read them.

BMv2's P4Runtime server (PI, in ``simple_switch_grpc``) answers register reads with
``UNIMPLEMENTED``; the same switch serves its Thrift runtime API (``--thrift-port``,
default 9090), which reads them. mosaico drives it through ``simple_switch_CLI``, BMv2's own
client (it runs on the system's Python with Debian's ``python3-thrift``, so the runtime
needs no Thrift library of its own), and parses its output.

Before trusting a Thrift port, the reader checks that it is the same switch: the device
id the CLI reports and the BMv2 JSON it runs must equal the P4Runtime device id and the
device config P4Runtime holds. A Thrift port of another switch (9090 is everybody's
default) is refused, not read.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ThriftSource", "ThriftError", "CLI"]

CLI = "simple_switch_CLI"
_INFO = re.compile(r"\bdevice_id\s*:\s*(\d+)")
_ERROR = re.compile(r"Error: (.*)$", re.M)


class ThriftError(Exception):
    """The Thrift port could not be read, or is not the switch's."""


@dataclass(frozen=True, slots=True)
class ThriftSource:
    """A BMv2 switch's Thrift runtime API at ``address`` (``HOST:PORT``)."""

    address: str

    def __str__(self) -> str:
        return f"thrift {self.address}"

    async def read_registers(self, names: Sequence[str], device_id: int,
                             device_config: bytes, timeout: float
                             ) -> Mapping[str, tuple[int, ...]]:
        """Every cell of each named register, after checking this is the switch whose
        P4Runtime device id and BMv2 JSON are given."""
        cli = shutil.which(CLI)
        if cli is None:
            raise ThriftError(f"{CLI} is not on PATH (BMv2's runtime CLI reads registers)")
        host, _, port = self.address.rpartition(":")
        with tempfile.TemporaryDirectory(prefix="mosaico-thrift-") as tmp:
            dumped = Path(tmp) / "config.json"
            script = "switch_info\n" + f"write_config_to_file {dumped}\n" + "".join(
                f"register_read {n}\n" for n in names)
            try:
                proc = await asyncio.create_subprocess_exec(
                    cli, "--thrift-ip", host, "--thrift-port", port,
                    stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT)
            except OSError as e:
                raise ThriftError(f"cannot run {CLI}: {e}") from None
            try:
                async with asyncio.timeout(timeout):
                    out, _ = await proc.communicate(script.encode())
            except TimeoutError:
                proc.kill()
                await proc.wait()
                raise ThriftError(f"no answer from {self.address} within {timeout:g}s") \
                    from None
            text = out.decode(errors="replace")
            info = _INFO.search(text)
            if info is None:
                raise ThriftError(f"cannot reach BMv2's Thrift API at {self.address}: "
                                  + _last_line(text))
            if int(info.group(1)) != device_id:
                raise ThriftError(f"{self.address} is another switch (device id "
                                  f"{info.group(1)}, not {device_id})")
            try:
                running = dumped.read_bytes()
            except OSError:
                raise ThriftError(f"{self.address} did not give its BMv2 JSON") from None
        if hashlib.sha256(running).digest() != hashlib.sha256(device_config).digest():
            raise ThriftError(f"{self.address} runs another program than the one P4Runtime "
                              "reports")
        out_values: dict[str, tuple[int, ...]] = {}
        for n in names:
            # `register_read NAME` prints "NAME= v0, v1, ..." (after the CLI's prompt)
            m = re.search(rf"(?:^|\s){re.escape(n)}=\s*(-?\d+(?:\s*,\s*-?\d+)*)", text)
            if m is None:
                err = _ERROR.search(text)
                raise ThriftError(f"cannot read register {n} through {self.address}"
                                  + (f": {err.group(1)}" if err else ""))
            out_values[n] = tuple(int(v) for v in m.group(1).split(","))
        return out_values


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return lines[-1] if lines else "no output"
