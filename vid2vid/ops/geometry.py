"""Output geometry of the correlation, shared by every backend and the fake kernels."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CorrelationGeometry:
    """Sizes of one correlation (see :func:`vid2vid.ops.correlation`).

    Output pixel ``(oy, ox)`` has its window centred at padded position
    ``(border + oy * stride1, border + ox * stride1)``.
    """

    pad_size: int
    kernel_size: int
    max_displacement: int
    stride1: int
    stride2: int
    padded_height: int
    padded_width: int

    @property
    def kernel_radius(self) -> int:
        return (self.kernel_size - 1) // 2

    @property
    def border(self) -> int:
        return self.max_displacement + self.kernel_radius

    @property
    def displacement_radius(self) -> int:
        return self.max_displacement // self.stride2

    @property
    def displacements(self) -> int:
        return (2 * self.displacement_radius + 1) ** 2

    @property
    def out_height(self) -> int:
        return -(-(self.padded_height - 2 * self.border) // self.stride1)

    @property
    def out_width(self) -> int:
        return -(-(self.padded_width - 2 * self.border) // self.stride1)


def correlation_geometry(
    height: int, width: int, pad_size: int, kernel_size: int, max_displacement: int, stride1: int, stride2: int
) -> CorrelationGeometry:
    return CorrelationGeometry(
        pad_size, kernel_size, max_displacement, stride1, stride2, height + 2 * pad_size, width + 2 * pad_size
    )
