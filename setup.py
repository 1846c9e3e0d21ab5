"""Build-time layout only (everything else is in pyproject.toml).

model_specs/, templates/ and static/ stay at the top of the checkout; the wheel ships them inside the
package as app/model_specs, app/templates and app/static, where app.resources finds them. Every file
under them ships, so data folders added later (traces, configs, ...) are included without editing this;
so does every file beside the code in app/ (scripts, JSON the harness reads).
"""

from setuptools import find_packages, setup

DATA = {"app.model_specs": "model_specs", "app.templates": "templates", "app.static": "static"}

setup(
    packages=[*find_packages(include=["app", "app.*"]), *DATA],
    package_dir=DATA,
    # every file: the data folders whole, and non-Python files beside the code (app/measure's scripts)
    package_data={"": ["*"], **{name: ["**/*"] for name in DATA}},
    include_package_data=False,  # exactly the files above; no guessing from the source tree
)
