"""The reference catalogue: survey stars by sky position, filled from files and online archives.

Modules by responsibility (each uses only the public names of the others):

* storage: :mod:`.blocks` (block documents: packing columns per HEALPix pixel), :mod:`.records`
  (survey records, pure), :mod:`.store` (:class:`~shared.refcat.store.RefcatStore`: collections,
  indexes, read/write primitives, and the entry point for queries and imports);
* query: :mod:`.query` (cone and box searches, epoch propagation, coverage verdicts);
* import: :mod:`.importer` (reading files), :mod:`.import_session` (buffered, journaled, resumable
  imports), :mod:`.dedupe` (stars already stored, pure);
* online fill: :mod:`.archives` (astroquery code paths, settings), :mod:`.providers`
  (:class:`~shared.refcat.providers.ReferenceSource`, caching archive tiles in the store);
* pure science and tables: :mod:`.presets`, :mod:`.surveys`, :mod:`.model`, :mod:`.coverage`,
  :mod:`.healpix`, :mod:`.astrometry`, :mod:`.derived`; the command line is :mod:`.cli`.
"""
