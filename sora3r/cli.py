"""The `sora3r` command: demo, reconstruct, view, eval, train, synth.

Every sub-command maps its arguments onto one library call; failures the user can fix (bad video, wrong checkpoint,
unknown dataset) end with one line on stderr and exit status 2, never with a traceback or a half-written output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# OSError covers missing files, an output folder in the way (FileExistsError) and unwritable places; each names its path.
USER_ERRORS = (ValueError, OSError, KeyError, RuntimeError)


def _add_model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder (default: the bundled model shipped with the package)")
    parser.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampling noise (default: 0)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: cpu)")


def _add_output_options(parser: argparse.ArgumentParser, what: str, default: Path | None = None) -> None:
    parser.add_argument("-o", "--output", type=Path, required=default is None, default=default,
                        help=f"folder for {what}" + (f" (default: {default})" if default else ""))
    parser.add_argument("--overwrite", action="store_true",
                        help="replace the output folder if it exists and is not empty (default: refuse)")


def _add_export_options(parser: argparse.ArgumentParser) -> None:
    _add_output_options(parser, "the exported reconstruction")
    parser.add_argument("--formats", nargs="+", default=["npz", "ply", "glb", "tum", "colmap"],
                        choices=["npz", "ply", "glb", "tum", "colmap"],
                        help="what to write: reconstruction.npz (everything, for `sora3r view`), points.ply, "
                             "scene.glb (points + camera frustums), trajectory_tum.txt, colmap/ (text model + "
                             "images) (default: all)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sora3r", description=__doc__.splitlines()[0],
                                     epilog="`sora3r COMMAND --help` lists the options of a command.")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="reconstruct a held-out synthetic clip with the bundled model and score it")
    _add_output_options(demo, "the reconstruction, ground truth, input video, plot and metrics.json",
                        default=Path("sora3r_demo"))
    demo.add_argument("--clip", type=int, default=0, help="index of the held-out synthetic test clip (default: 0)")
    _add_model_options(demo)

    rec = sub.add_parser("reconstruct", help="video (file or folder of frames) -> pointmaps, cameras, depth")
    rec.add_argument("video", type=Path, help="video file (mp4, ...) or folder of images")
    _add_export_options(rec)
    rec.add_argument("--stride", type=int, default=1, help="use every n-th frame of the video (default: 1)")
    rec.add_argument("--max-frames", type=int, default=None, help="use at most this many frames (after --stride)")
    rec.add_argument("--intrinsics", type=float, nargs=4, metavar=("FX", "FY", "CX", "CY"), default=None,
                     help="known intrinsics in pixels of the input video (default: estimated)")
    _add_model_options(rec)

    view = sub.add_parser("view", help="open a reconstruction (.npz) in the viser 4D viewer")
    view.add_argument("reconstruction", type=Path, help="reconstruction.npz written by reconstruct/demo")
    view.add_argument("--port", type=int, default=8080, help="port of the viewer's web page (default: 8080)")
    view.add_argument("--host", default="127.0.0.1",
                      help="address to serve on (default: 127.0.0.1, this machine only; 0.0.0.0 for all)")
    view.add_argument("--stride", type=int, default=2, help="show every n-th pixel of each row and column (default: 2)")

    ev = sub.add_parser("eval", help="run a method over a dataset under the MonST3R protocol")
    ev.add_argument("--method", required=True,
                    help="sora3r (the model) | oracle (ground-truth points through the same camera recovery) | "
                         "static (identity poses, constant depth)")
    ev.add_argument("--dataset", required=True,
                    help="tum | bonn | sintel | scannet | kitti | icl-micro | synthetic | pointodyssey | tartanair | "
                         "dynamic_replica (see docs/datasets.md)")
    ev.add_argument("--root", type=Path, default=None, help="dataset folder (not needed for synthetic)")
    _add_output_options(ev, "summary.json, per_sequence.json, results.md and plots/")
    ev.add_argument("--max-sequences", type=int, default=None, help="stop after this many sequences (default: all)")
    ev.add_argument("--depth-align", default=None, choices=["scale", "scale&shift", "none"],
                    help="per-sequence depth alignment of the prediction to ground truth (default: scale&shift, "
                         "the protocol's choice for relative depth)")
    ev.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                    help="dataset option, e.g. num=8 or sequences=all (repeatable)")
    _add_model_options(ev)

    train = sub.add_parser("train", help="train a stage: video-vae | pointmap-vae | dit (see docs/training.md)",
                           add_help=False)
    train.add_argument("train_args", nargs=argparse.REMAINDER)

    synth = sub.add_parser("synth", help="render synthetic 4D clips with ground truth (mp4 + npz)")
    _add_output_options(synth, "the clips: <name>/rgb.mp4 and <name>/ground_truth.npz")
    synth.add_argument("--split", default="test", choices=["train", "val", "test"],
                       help="which disjoint seed range to draw scenes from (default: test)")
    synth.add_argument("--num", type=int, default=4, help="number of clips (default: 4)")
    synth.add_argument("--frames", type=int, default=17, help="frames per clip (default: 17)")
    synth.add_argument("--height", type=int, default=128, help="frame height in pixels (default: 128)")
    synth.add_argument("--width", type=int, default=128, help="frame width in pixels (default: 128)")
    return parser


def _parse_options(pairs: list[str]) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--option {pair!r}: expected KEY=VALUE")
        try:
            options[key] = int(value)
        except ValueError:
            options[key] = value
    return options


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        # `sora3r train` has its own parser; argparse's REMAINDER would not hand it a leading --help.
        args = argparse.Namespace(command="train", train_args=argv[1:])
    else:
        args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except USER_ERRORS as err:
        print(f"sora3r {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sora3r {args.command}: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    # Imports live here so that `sora3r --help` stays fast and each command loads only what it uses.
    if args.command == "train":
        from sora3r.train import main as train_main

        return train_main(args.train_args)
    if args.command == "view":
        from sora3r.export import read_npz
        from sora3r.viz.viewer import serve

        serve(read_npz(args.reconstruction), port=args.port, host=args.host, stride=args.stride)
        return 0
    if args.command == "synth":
        from sora3r.commands import synth

        synth(args.output, split=args.split, num=args.num, num_frames=args.frames, height=args.height,
              width=args.width, overwrite=args.overwrite)
        return 0
    if args.command == "eval":
        from sora3r.eval.runner import run_eval

        method_options = {"model": args.model, "num_steps": args.steps, "seed": args.seed, "device": args.device}
        summary = run_eval(args.method, args.dataset, args.root, args.output, max_sequences=args.max_sequences,
                           method_options=method_options, dataset_options=_parse_options(args.option),
                           depth_align=args.depth_align, overwrite=args.overwrite)
        print(f"wrote {args.output}/results.md ({summary['num_sequences']} sequences, "
              f"{summary['num_failed']} failed)")
        return 0 if summary["num_failed"] == 0 else 1
    if args.command == "reconstruct":
        from sora3r.commands import reconstruct

        reconstruct(args.video, args.output, formats=args.formats, stride=args.stride, max_frames=args.max_frames,
                    intrinsics=args.intrinsics, model=args.model, num_steps=args.steps, seed=args.seed,
                    device=args.device, overwrite=args.overwrite)
        return 0
    if args.command == "demo":
        from sora3r.commands import demo

        demo(args.output, clip=args.clip, model=args.model, num_steps=args.steps, seed=args.seed, device=args.device,
             overwrite=args.overwrite)
        return 0
    raise AssertionError(f"unhandled command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
