"""`srkit info` and `srkit models`: what this installation runs on, and listing, describing, importing and
exporting models."""

from __future__ import annotations

import argparse

from ..defaults import DEFAULT_ONNX_OPSET
from .tables import print_model_list, print_model_rows, print_report
from .values import positive_number


def _info(args: argparse.Namespace) -> int:
    from ..environment import report

    print_report(report())
    return 0


def _models_list(args: argparse.Namespace) -> int:
    from ..models.zoo import list_models, model_dir

    print_model_list(list_models(), model_dir())
    return 0


def _models_info(args: argparse.Namespace) -> int:
    from ..engine.runner import tile_overlap
    from ..models.zoo import load_model

    model = load_model(args.model)
    info = model.info
    print_model_rows(
        [
            ("model", model.name),
            ("source", model.source),
            ("architecture", info.arch),
            ("variant", info.variant or "-"),
            (
                "scale",
                f"x{model.out_scale}" + (f" (network x{info.net_scale}, then resized)" if model.output_resize else ""),
            ),
            ("channels", f"{info.in_channels} in, {info.out_channels} out"),
            ("features", info.features or "-"),
            ("blocks", info.blocks or "-"),
            ("parameters", f"{info.parameters:,}"),
            ("dtypes", ", ".join(info.dtypes)),
            ("size rules", info.size_rules.describe()),
            ("receptive radius", f"{info.receptive_radius} px"),
            ("tile overlap", f"{tile_overlap(model)} px"),
            ("fused", "yes" if info.fused else "no (runs eagerly)"),
        ]
    )
    return 0


def _models_export(args: argparse.Namespace) -> int:
    from ..models.export import export_onnx
    from ..models.zoo import load_model

    target = export_onnx(load_model(args.model), args.output, args.opset, args.overwrite)
    print(
        f"exported {args.model} to {target} (ONNX opset {args.opset}; input NCHW float32 RGB in [0, 1], "
        "batch, height and width dynamic)"
    )
    return 0


def _models_import(args: argparse.Namespace) -> int:
    from ..models.zoo import import_model

    print(f"imported {args.path} as {args.name}: {import_model(args.path, args.name, args.force)}")
    return 0


def add_info(commands) -> None:
    """`srkit info`: versions, devices and the active kernel backend."""
    info = commands.add_parser("info", help="print versions, devices and the active kernel backend")
    info.set_defaults(run=_info)


def add_models(commands) -> None:
    """`srkit models list | import | info | export`."""
    models = commands.add_parser("models", help="list, describe, import and export models")
    models_commands = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    models_commands.add_parser("list", help="models usable here").set_defaults(run=_models_list)
    importer = models_commands.add_parser("import", help="convert .pth/.safetensors/ncnn .param to srkit format")
    importer.add_argument("path", help="weights file (.pth, .pt, .safetensors, or ncnn .param beside its .bin)")
    importer.add_argument("--name", required=True, help="name to use with -m")
    importer.add_argument("--force", action="store_true", help="replace a user model of that name")
    importer.set_defaults(run=_models_import)
    describe = models_commands.add_parser("info", help="describe a model: architecture, scale, sizes, fused or not")
    describe.add_argument("model", metavar="NAME|FILE", help="model name or weights file")
    describe.set_defaults(run=_models_info)
    exporter = models_commands.add_parser("export", help="write a model as ONNX (dynamic batch, height, width)")
    exporter.add_argument("model", metavar="NAME|FILE", help="model name or weights file")
    exporter.add_argument("-o", "--output", required=True, help="the .onnx file to write")
    exporter.add_argument(
        "--opset",
        type=positive_number(int, "--opset", 13, 21),
        default=DEFAULT_ONNX_OPSET,
        help=f"ONNX opset ({DEFAULT_ONNX_OPSET})",
    )
    exporter.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    exporter.set_defaults(run=_models_export)
