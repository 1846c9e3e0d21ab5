"""The model catalog: committed specs (model_specs/), the architecture registry and the config importer.

No web imports: the GPU measurement harness loads the catalog too (app.web.deps holds the dependency).
"""

from app.catalog.loader import SPECS_DIR, Catalog, CatalogError, GpuCatalog, load_catalog

__all__ = ["SPECS_DIR", "Catalog", "CatalogError", "GpuCatalog", "load_catalog"]
