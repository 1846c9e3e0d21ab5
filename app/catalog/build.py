"""`python -m app.catalog.build`: regenerate model_specs/models/<slug>.json from the committed configs.

Each model_specs/configs/<slug>/ holds the released `config.json` as published and `source.json` naming
where that copy was read (public URL, commit) plus the facts a config does not carry (name, family,
vendor, release date, license). Hand-written specs (a published card with its disagreements) have no
configs/ folder and are left alone. `--check` exits 1 when a committed spec differs from a fresh import.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from app.catalog.cards import card_for
from app.catalog.importer import spec_from_config
from app.catalog.loader import SPECS_DIR
from app.estimator.spec import ModelSpec


class ConfigSource(BaseModel):
    """model_specs/configs/<slug>/source.json."""

    model_config = ConfigDict(extra="forbid")

    repo: str = Field(description="Hugging Face repo id of the model.")
    url: str = Field(description="Public URL the committed config.json was copied from.")
    revision: str = Field(description="Commit of that URL's repository the copy was taken at.")
    copy_of: str = Field(description="The Hugging Face file the copy reproduces.")
    name: str
    family: str
    vendor: str
    released: str = ""
    license: str = ""
    note: str = ""


def spec_for(folder: Path) -> ModelSpec:
    """The spec the importer makes of one configs/<slug>/ folder, with its source.json facts."""
    meta = ConfigSource.model_validate_json((folder / "source.json").read_bytes())
    config = json.loads((folder / "config.json").read_text())
    spec = spec_from_config(config, repo=meta.repo, revision=meta.revision, source_url=meta.url)
    lm = spec.language_model.model_copy(update={"source": f"{meta.copy_of} (copy read at {meta.url})"})
    spec = spec.model_copy(update={"slug": folder.name, "name": meta.name, "family": meta.family,
                                   "vendor": meta.vendor, "released": meta.released, "license": meta.license,
                                   "language_model": lm})
    if spec.vision is not None:
        vision = spec.vision.model_copy(update={"source": lm.source})
        spec = spec.model_copy(update={"vision": vision})
    spec = ModelSpec.model_validate(spec.model_dump())  # re-validate the edited copy
    return spec.model_copy(update={"card": card_for(spec)})


def build(root: Path = SPECS_DIR, check: bool = False) -> list[str]:
    """Write (or, with check, compare) every generated spec; returns the slugs that changed."""
    changed = []
    for folder in sorted((root / "configs").iterdir()):
        if not (folder / "config.json").is_file():
            continue
        text = spec_for(folder).model_dump_json(indent=2) + "\n"
        path = root / "models" / f"{folder.name}.json"
        if not path.is_file() or path.read_text() != text:
            changed.append(folder.name)
            if not check:
                path.write_text(text)
    return changed


def main(argv: list[str]) -> int:
    check = "--check" in argv
    changed = build(check=check)
    verb = "differ from a fresh import" if check else "written"
    print(f"{len(changed)} spec(s) {verb}: {', '.join(changed) or '-'}")
    return 1 if check and changed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
