"""The tables the command line prints: `srkit info`, `srkit models list` / `info` and the `srkit eval` scores."""

from __future__ import annotations

from collections.abc import Sequence


def print_report(rows: Sequence[tuple[str, str]]) -> None:
    """(label, value) rows, the labels padded to the longest (`srkit info`)."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")


def print_model_list(rows: Sequence[dict], user_folder: object) -> None:
    """One line per model (`srkit models list`), then where user models go."""
    width = max(len(row["name"]) for row in rows)
    print(f"{'name':<{width}} {'scale':>5} {'arch':<14} {'size':>9}  {'from':<34} available")
    for row in rows:
        size = f"{row['size_mb']:.1f} MB" if row["size_mb"] is not None else "-"
        print(
            f"{row['name']:<{width}} {row['scale'] or '-':>5} {row['arch'] or '-':<14} {size:>9}  "
            f"{row['source']:<34} {row['available']}"
        )
    print(f"user models: {user_folder}")


def print_model_rows(rows: Sequence[tuple[str, object]]) -> None:
    """(label, value) rows describing one model (`srkit models info`)."""
    for label, value in rows:
        print(f"{label:<17} {value}")


class ScoreTable:
    """`srkit eval`'s table: the header once the first photo is scored (so an early error stays one line), one
    row per photo, then the mean."""

    def __init__(self) -> None:
        self.rows = 0

    def add(self, score) -> None:
        """Print one photo's scores (an evaluate.ImageScore)."""
        if not self.rows:
            print(f"{'photo':<40} {'size':>11} {'PSNR':>8} {'SSIM':>7} {'bicubic':>8} {'SSIM':>7} {'gain':>7}")
        self.rows += 1
        print(
            f"{score.file:<40} {score.width:>5}x{score.height:<5} {score.psnr:8.3f} {score.ssim:7.4f} "
            f"{score.bicubic_psnr:8.3f} {score.bicubic_ssim:7.4f} {score.psnr - score.bicubic_psnr:+7.3f}"
        )

    @staticmethod
    def mean(report: dict) -> None:
        """Print the mean row of an evaluate() report."""
        mean = report["mean"]
        print(
            f"{'mean of ' + str(len(report['images'])):<52} {mean['psnr']:8.3f} {mean['ssim']:7.4f} "
            f"{mean['bicubic_psnr']:8.3f} {mean['bicubic_ssim']:7.4f} {mean['psnr_gain']:+7.3f}"
        )
