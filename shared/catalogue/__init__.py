"""Observers' source catalogues: reading and cleaning SExtractor-style uploads."""
from shared.catalogue.model import CatalogueError, StarTable
from shared.catalogue.reader import read_catalogue

__all__ = ["CatalogueError", "StarTable", "read_catalogue"]
