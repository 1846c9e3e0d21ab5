"""Where the data folders are: model_specs/, templates/ and static/.

They sit at the top of the source checkout; the wheel ships them inside the package as app/model_specs,
app/templates and app/static (setup.py maps them at build time), beside this module. So the app runs the same
from a checkout, an editable install, or a wheel installed anywhere. (What importlib.resources.files("app") answers
for a package on disk is this folder; reading it directly spares the `vram` command importing importlib.resources
and, through it, zipfile and tempfile.)
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent  # app/, wherever it is installed
_CHECKOUT = _PACKAGE.parent  # the repository root, when running from the source


def data_dir(name: str) -> Path:
    """The directory of data folder `name` ("model_specs", "templates", "static").

    Raises:
        FileNotFoundError: neither the installed package nor the checkout holds it.
    """
    packaged = _PACKAGE / name
    if packaged.is_dir():  # installed from a wheel
        return packaged
    if (_CHECKOUT / name).is_dir():  # source checkout or editable install
        return _CHECKOUT / name
    raise FileNotFoundError(f"data folder {name!r} is neither in the package ({packaged}) nor in {_CHECKOUT}")
