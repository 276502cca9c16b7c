"""hoprag's web UI (Streamlit), packaged so an installed wheel has it: ``hoprag ui`` runs it.

The UI is the script :data:`SCRIPT` (``__main__.py``): Streamlit runs it again on every
interaction, so it is not imported as a module. In a checkout, ``app.py`` at the top runs
the same script (``make run``, ``streamlit run app.py``).
"""

from __future__ import annotations

from pathlib import Path

SCRIPT = Path(__file__).resolve().with_name("__main__.py")
