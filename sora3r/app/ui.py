"""The page of `sora3r app` (Gradio Blocks): a video in, the reconstruction's depth video, camera path, confidence
map, 3D scene and every export out.

`App` owns the page, the loaded pipeline's jobs and a private `Workspace`; `serve` is what the command runs.
Reconstructions run one at a time (the pipeline is not shared between threads), with progress per stage and per
window; errors the user can act on (an unreadable or too short upload) appear on the page in one sentence.
"""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from sora3r.app.job import JobOptions, run_job, user_message
from sora3r.app.sample import write_sample_clip
from sora3r.app.workspace import Workspace
from sora3r.geometry.stitch import default_overlap

INTRO = """# sora3r: 4D geometry from a monocular video
Upload a video (any format FFmpeg reads) or use the sample clip, then **Reconstruct**: a video diffusion model
generates one pointmap per frame, and the cameras, intrinsics and depth are recovered from them. The sample is a
held-out synthetic test scene rendered by `sora3r.data.synthetic` (no third-party footage ships with sora3r)."""
NO_CONFIDENCE = ("*No confidence map: this reconstruction drew one sample per window. Confidence comes from the "
                 "spread of several samples: set Samples above 1.*")
DELETE_CACHE = (600, 3600)  # every 10 minutes, delete uploads and served copies older than an hour


def _controls(pipeline, start: JobOptions) -> list[gr.components.Component]:
    """The sliders and the seed box, in the order `JobOptions` takes them, set to ``start``."""
    window = pipeline.clip_shape[0]
    steps = start.steps or int(pipeline.config["sampler_steps"])
    max_frames = start.max_frames or 4 * (window - 1) + 1
    overlap = default_overlap(window) if start.overlap is None else min(start.overlap, window - 1)
    return [
        gr.Slider(1, max(50, steps), value=steps, step=1, label="Sampling steps",
                  info="per window; more is slower, rarely better", elem_id="steps"),
        gr.Slider(1, max(8, start.samples), value=start.samples, step=1, label="Samples", elem_id="samples",
                  info="per window; above 1 their mean, and their spread gives the confidence map"),
        gr.Slider(1, 8, value=start.stride, step=1, label="Stride", info="use every n-th frame", elem_id="stride"),
        gr.Slider(window, max(16 * (window - 1) + 1, max_frames), value=max_frames, step=1, label="Max frames",
                  info=f"after the stride; windows of {window} frames", elem_id="max-frames"),
        gr.Number(start.seed, precision=0, minimum=0, maximum=2**32 - 1, label="Seed", elem_id="seed"),
        gr.Slider(1, window - 1, value=overlap, step=1, label="Overlap", elem_id="overlap",
                  info="frames consecutive windows share"),
        gr.Slider(0.0, 0.95, value=start.min_confidence, step=0.05, label="Min confidence", elem_id="min-confidence",
                  info="drop less confident points from the 3D view and the ply / glb / COLMAP files (Samples > 1)"),
    ]


def _results() -> dict[str, gr.components.Component]:
    """The output components, laid out in two rows and a download list."""
    with gr.Row(equal_height=False):
        depth = gr.Video(label="Input | depth (near bright, far dark)", interactive=False, loop=True, autoplay=True,
                         elem_id="depth-video")
        trajectory = gr.Image(label="Camera path", type="filepath", interactive=False, elem_id="trajectory")
    with gr.Row(equal_height=False):
        scene = gr.Model3D(label="3D scene (points and cameras; drag to turn)", height=420,
                           clear_color=(0.1, 0.1, 0.12, 1.0), elem_id="scene")
        with gr.Column():
            confidence = gr.Image(label="Confidence", type="filepath", interactive=False, elem_id="confidence")
            no_confidence = gr.Markdown(NO_CONFIDENCE, visible=False, elem_id="confidence-note")
    downloads = gr.File(label="Downloads: reconstruction.npz, points.ply, scene.glb, trajectory_tum.txt, colmap.zip",
                        file_count="multiple", interactive=False, elem_id="downloads")
    return {"depth": depth, "trajectory": trajectory, "confidence": confidence, "no_confidence": no_confidence,
            "scene": scene, "downloads": downloads}


def build_blocks(pipeline, workspace: Workspace, sample: Path, start: JobOptions = JobOptions()) -> gr.Blocks:
    """The page for ``pipeline`` (a loaded `Sora3RPipeline`); runs write into ``workspace``; ``sample`` is the
    sample clip's mp4 (inside the workspace); ``start`` sets the controls when the page opens."""

    def reconstruct(video, steps, samples, stride, max_frames, seed, overlap, min_confidence,
                    progress=gr.Progress(track_tqdm=True)):
        if not video:
            raise gr.Error("Upload a video or press “Use the sample clip” first.", print_exception=False)
        options = JobOptions(steps=int(steps), samples=int(samples), stride=int(stride), max_frames=int(max_frames),
                             seed=int(seed or 0), overlap=int(overlap),  # an emptied seed box gives None
                             min_confidence=float(min_confidence))
        try:
            result = run_job(pipeline, video, options, workspace.new_run(),
                             report=lambda fraction, text: progress(fraction, desc=text))
        except (ValueError, OSError) as err:
            raise gr.Error(html.escape(user_message(err, video)), title="Cannot reconstruct this video",
                           duration=None, print_exception=False) from None
        confidence = None if result.confidence_figure is None else str(result.confidence_figure)
        return (str(result.depth_video), str(result.trajectory_plot),
                gr.update(value=confidence, visible=confidence is not None), gr.update(visible=confidence is None),
                str(result.scene), [str(path) for path in result.downloads], result.summary)

    with gr.Blocks(title="sora3r", analytics_enabled=False, delete_cache=DELETE_CACHE) as blocks:
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=1, min_width=320):
                video = gr.Video(label="Video", sources=["upload"], elem_id="input-video")
                use_sample = gr.Button("Use the sample clip", elem_id="sample-button")
                controls = _controls(pipeline, start)
                run = gr.Button("Reconstruct", variant="primary", elem_id="run-button")
                summary = gr.Markdown(elem_id="summary")
            with gr.Column(scale=3, elem_id="results"):
                shown = _results()
        use_sample.click(lambda: str(sample), outputs=video)
        run.click(reconstruct, inputs=[video, *controls],
                  outputs=[shown["depth"], shown["trajectory"], shown["confidence"], shown["no_confidence"],
                           shown["scene"], shown["downloads"], summary])
    return blocks


class App:
    """The page with its workspace (the sample clip is rendered into it now); a context manager that closes both.

    Args:
        pipeline: a loaded `Sora3RPipeline` (`Sora3RPipeline.from_pretrained`).
        start: the controls' values when the page opens.
    """

    def __init__(self, pipeline, start: JobOptions = JobOptions()):
        self.workspace = Workspace()
        try:
            self.blocks = build_blocks(pipeline, self.workspace, write_sample_clip(self.workspace.root), start)
        except BaseException:
            self.workspace.close()
            raise

    def launch(self, host: str = "127.0.0.1", port: int = 7860, share: bool = False, block: bool = True) -> str:
        """Serve the page on ``host:port`` (``share``: also through a public Gradio link) and return its local URL.
        ``block``: wait until Ctrl+C; otherwise serve from a background thread and return at once.

        Raises:
            OSError: ``host:port`` cannot be served (the port is taken, the address is not this machine's).
        """
        self.blocks.queue(default_concurrency_limit=1)
        try:
            # quiet: Gradio's own lines tell a Python user to "set `share=True` in `launch()`"; the line below
            # names the command's option instead (a public link, when asked for, is printed by Gradio either way).
            _, url, _ = self.blocks.launch(server_name=host, server_port=port, share=share, quiet=True,
                                           allowed_paths=[str(self.workspace.root)], prevent_thread_lock=True)
        except OSError as err:
            if "Cannot find empty port" not in str(err):
                raise
            raise OSError(f"cannot serve on {host}:{port}: the port is in use or the address is not one of this "
                          f"machine's (choose another --port or --host)") from None
        if block:
            public = "" if share else "; --share adds a temporary public link"
            print(f"sora3r app on {url} (Ctrl+C stops it{public})", flush=True)
            self.blocks.block_thread()
        return url

    def close(self) -> None:
        """Stop the server (if running) and remove the workspace."""
        self.blocks.close()
        self.workspace.close()

    def __enter__(self) -> "App":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve(pipeline, host: str = "127.0.0.1", port: int = 7860, share: bool = False,
          start: JobOptions = JobOptions()) -> None:
    """Serve the app for ``pipeline`` (a loaded `Sora3RPipeline`) until Ctrl+C or SIGTERM, its controls set to
    ``start`` when a page opens; the workspace is removed then."""
    with App(pipeline, start) as app:
        app.launch(host, port, share=share, block=True)
