"""hoprag's web UI in a checkout (``make run``, ``streamlit run app.py``).

The UI itself is packaged, so an installed wheel has it too (``hoprag ui``):
rag/webui/__main__.py. Streamlit runs this file on every interaction; each run
runs that script afresh.
"""

import runpy

runpy.run_module("rag.webui", run_name="__main__")
