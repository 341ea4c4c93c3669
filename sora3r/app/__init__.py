"""`sora3r app`: a web page (Gradio) to reconstruct an uploaded video or the sample clip and look at the results.

An optional extra: ``pip install 'sora3r[app]'``. Modules: `job` (one reconstruction and its files, no Gradio),
`figures` (depth video, confidence figure), `sample` (the sample clip), `workspace` (the app's temporary folder),
`ui` (the page, `App`, `serve`).
"""

from sora3r.app.job import JobOptions
from sora3r.app.ui import App, build_blocks, serve

__all__ = ["App", "JobOptions", "build_blocks", "serve"]
