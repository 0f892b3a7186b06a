"""The population: the SQLite archive, islands with MAP-Elites grids, parent sampling."""

from evolve.population.database import Database, DatabaseError
from evolve.population.island import Grid, Island, Member

__all__ = ["Database", "DatabaseError", "Grid", "Island", "Member"]
