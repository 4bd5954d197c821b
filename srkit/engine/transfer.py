"""Getting finished output pixels into the output image: packing, and copies back from the windows' device.

Blending runs on the windows' device in their dtype; a finished piece of the output (a core's own pixels, or a seam
once all its neighbours have added to it) is clamped, packed to the output's dtype (uint8/uint16 HWC through the
kernels' epilogue) and written straight into the output image. The only float state is the seams not yet finished:
with cores taken in raster order, the strip below the current row of cores (in wrap mode also the first row's top
seam). An output resize (-s, engine/resize.py) turns each window's result into the resized image's pixels before
blending. Where the windows run on CUDA and the output is on the host, pieces are written into full-width bands on
the device, one per row of cores (the rows that row finishes); a finished band goes back to the (pinned) host image
in one copy on a side stream while the next tiles run (`Transfer`), and the host waits only before returning.
"""

from __future__ import annotations

import bisect
from collections import deque
from typing import Any, Protocol

import torch

from .. import kernels as K
from .geometry import Axis, Core, wrapped
from .resize import Resize

INTEGER_OUT = (torch.uint8, torch.uint16)
SPARE_BANDS = 2  # finished bands whose copies may still run before a buffer is reused with a GPU-side wait


class Transfer(Protocol):
    """How packed output rows made on a device reach the host image: copies that may finish later."""

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> object:
        """Start copying `src` into `dst` after the work queued so far (which writes `src`); returns a token."""
        ...

    def done(self, token: object) -> bool:
        """Whether that copy has finished (the host does not wait)."""
        ...

    def reuse(self, token: object) -> None:
        """Make the work queued from now on (writes into that copy's source) wait until the copy finished."""
        ...

    def finish(self) -> None:
        """Wait until every copy has finished: the only place the host waits."""
        ...


class CudaTransfer:
    """Copies on a side stream of a CUDA device, each after the compute stream's work so far (GPU-side waits:
    events, no host synchronisation), into pinned host memory so that they run while the next tiles compute."""

    def __init__(self, device: torch.device) -> None:
        self.compute = torch.cuda.current_stream(device)
        self.side = torch.cuda.Stream(device)

    def copy(self, dst: torch.Tensor, src: torch.Tensor) -> torch.cuda.Event:
        self.side.wait_stream(self.compute)
        with torch.cuda.stream(self.side):
            # Asynchronous only into pinned memory and one contiguous block (else torch stages it synchronously).
            dst.copy_(src, non_blocking=dst.is_pinned() and dst.is_contiguous())
        finished = torch.cuda.Event()
        finished.record(self.side)
        return finished

    def done(self, token: Any) -> bool:  # the event `copy` returned
        return token.query()

    def reuse(self, token: Any) -> None:
        self.compute.wait_event(token)

    def finish(self) -> None:
        self.side.synchronize()


class _Direct:
    """Pieces written straight into the output (it is on the windows' device, or they come back synchronously)."""

    def __init__(self, out: torch.Tensor) -> None:
        self.out = out

    def region(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        return self.out[r0:r1, c0:c1]

    def release(self, band: int) -> None:
        pass

    def close(self) -> None:
        pass


class _Bands:
    """Output rows staged on the windows' device, one full-width band per row of cores (rows of the host image are
    contiguous, so a band goes back in one copy); a finished band is copied into `out` by `transfer` while the
    next tiles run, and its buffer is written again only after that copy (at most SPARE_BANDS copies in flight)."""

    def __init__(self, out: torch.Tensor, starts: list[int], transfer: Transfer, device: torch.device) -> None:
        self.out, self.starts, self.transfer, self.device = out, starts, transfer, device
        rows = out.shape[0]
        self.ends = [min(end, rows) for end in starts[1:] + [rows]]
        self.height = max(end - start for start, end in zip(starts, self.ends))
        self.held: dict[int, torch.Tensor] = {}  # band -> its buffer, being written
        self.free: deque[tuple[torch.Tensor, object]] = deque()  # (buffer, token of the copy out of it), oldest first
        self.allocated = 0

    def region(self, r0: int, r1: int, c0: int, c1: int) -> torch.Tensor:
        band = bisect.bisect_right(self.starts, r0) - 1
        assert r1 <= self.ends[band], f"rows {r0}..{r1} cross band {band}'s end {self.ends[band]}"
        if band not in self.held:
            self.held[band] = self._take()
        top = self.starts[band]
        return self.held[band][r0 - top : r1 - top, c0:c1]

    def _take(self) -> torch.Tensor:
        """A buffer for a band: a free one whose copy is done (or, with SPARE_BANDS copies in flight, the oldest after
        its copy), else a new one."""
        if self.free and (len(self.free) >= SPARE_BANDS or self.transfer.done(self.free[0][1])):
            buffer, token = self.free.popleft()
            self.transfer.reuse(token)
            return buffer
        self.allocated += 1
        return torch.empty((self.height, *self.out.shape[1:]), dtype=self.out.dtype, device=self.device)

    def release(self, band: int) -> None:
        """Band `band` is final: copy it into the output."""
        buffer = self.held.pop(band, None)
        if buffer is not None:  # (a band wholly in the padding below the image is never written)
            top, end = self.starts[band], self.ends[band]
            self.free.append((buffer, self.transfer.copy(self.out[top:end], buffer[: end - top])))

    def close(self) -> None:
        self.transfer.finish()


class Output:
    """The output image and the seams still being blended; finished pieces are packed and written."""

    def __init__(
        self,
        out: torch.Tensor,
        rows: Axis,
        cols: Axis,
        clamp: tuple[float, float] | None,
        resize: Resize | None,
        scale: int,
        transfer: Transfer | None,
    ) -> None:
        self.out, self.rows, self.cols, self.clamp = out, rows, cols, clamp
        self.resize, self.scale, self.transfer = resize, scale, transfer
        self.pending: dict[tuple, list] = {}  # (row key, col key) -> [float sum, contributions so far]
        self.canvas: _Direct | _Bands | None = None

    def add_window(self, core: Core, result: torch.Tensor, window: tuple[int, int, int, int]) -> None:
        """Add the network's (C, h*s, w*s) result for a window (top, left, bottom, right; unwrapped input), resized
        to the output's geometry first when there is a resize."""
        top, left, bottom, right = window
        r0, c0 = self.rows.edge(top), self.cols.edge(left)
        if self.resize is not None:
            result = self.resize.window(
                result,
                (r0, self.rows.edge(bottom) - r0, top * self.scale),
                (c0, self.cols.edge(right) - c0, left * self.scale),
            )
        self.add(core, result, r0, c0)

    def add(self, core: Core, result: torch.Tensor, origin_row: int, origin_col: int) -> None:
        """Add a core's result in output geometry (C, rows, cols; its first pixel at unwrapped output position
        (origin_row, origin_col))."""
        canvas = self._canvas(result)
        for row_key, r0, r1 in self.rows.parts(core.row):
            wy = self.rows.weight(core.row, row_key, r0, r1, result)
            for col_key, c0, c1 in self.cols.parts(core.col):
                wx = self.cols.weight(core.col, col_key, c0, c1, result)
                piece = result[:, r0 - origin_row : r1 - origin_row, c0 - origin_col : c1 - origin_col]
                needed = self.rows.contributors(row_key) * self.cols.contributors(col_key)
                if needed == 1:
                    self._write(canvas, piece, r0, c0)
                    continue
                weighted = piece * (wy[:, None] if wy is not None else 1) * (wx[None, :] if wx is not None else 1)
                key = (row_key, col_key)
                if key not in self.pending:
                    self.pending[key] = [weighted, 1]
                    continue
                entry = self.pending[key]
                entry[0] += weighted
                entry[1] += 1
                if entry[1] == needed:
                    del self.pending[key]
                    self._write(canvas, entry[0], r0, c0)
        if core.col == len(self.cols.pieces) - 1:
            self._row_added(canvas, core.row)

    def _canvas(self, result: torch.Tensor) -> _Direct | _Bands:
        """Where pieces are written, chosen on the first result: bands staged on its device when it is a CUDA
        result for a host output (or a `transfer` is given), else the output itself."""
        if self.canvas is None:
            if self.transfer is not None or (result.is_cuda and not self.out.is_cuda):
                transfer = self.transfer or CudaTransfer(result.device)
                self.canvas = _Bands(self.out, self.rows.band_starts(), transfer, result.device)
            else:
                self.canvas = _Direct(self.out)
        return self.canvas

    def _row_added(self, canvas: _Direct | _Bands, row: int) -> None:
        """Every core of grid row `row` is added: its band is final (in wrap mode row 0's waits for the last row,
        which finishes row 0's top seam)."""
        last = len(self.rows.pieces) - 1
        if not (self.rows.wrap and row == 0 and last > 0):
            canvas.release(row)
        if self.rows.wrap and row == last and last > 0:
            canvas.release(0)

    def close(self) -> None:
        """Wait for the copies still running (also after an error: their bands are freed next)."""
        if self.canvas is not None:
            self.canvas.close()

    def _write(self, canvas: _Direct | _Bands, piece: torch.Tensor, top: int, left: int) -> None:
        """Pack a finished (C, h, w) piece and write it at unwrapped output (top, left): wrapped, cropped."""
        out_h, out_w = self.rows.edge(self.rows.size), self.cols.edge(self.cols.size)
        for r0, r1, pr in wrapped(top, piece.shape[1], out_h):
            if r0 >= self.out.shape[0]:
                continue
            r1 = min(r1, self.out.shape[0])
            for c0, c1, pc in wrapped(left, piece.shape[2], out_w):
                if c0 >= self.out.shape[1]:
                    continue
                c1 = min(c1, self.out.shape[1])
                block = piece[:, pr : pr + r1 - r0, pc : pc + c1 - c0]
                canvas.region(r0, r1, c0, c1).copy_(self._pack(block))

    def _pack(self, block: torch.Tensor) -> torch.Tensor:
        """(C, h, w) floats -> (h, w, C) in the output's dtype: the kernels' clamp / uint8-uint16 epilogue."""
        if self.out.dtype in INTEGER_OUT:
            return K.pixel_shuffle_add(block[None], 1, clamp=self.clamp, out_dtype=self.out.dtype)[0]
        if self.clamp is not None:
            block = block.clamp(*self.clamp)
        return block.permute(1, 2, 0)


def host_output(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """An uninitialised host image for the tiler to write, for windows run on `device`: in pinned memory on CUDA,
    so the bands' copies back are asynchronous (torch's pinned allocator keeps the block for the next image)."""
    return torch.empty(shape, dtype=dtype, pin_memory=device.type == "cuda")
