"""``sbts serve``: a local browser viewer for the products of a work directory.

The server (:mod:`.app`, Python's own ``http.server``: one local user, no extra dependency) hands out
a catalogue of the maps and time series it found (:mod:`.catalog`), 256-pixel PNG tiles coloured with
matplotlib colour maps (:mod:`.tiles`, read through decimated overviews and windowed h5py reads by
:mod:`.rasters`, never the whole cube), pixel histories with the fitted time-function model and its
uncertainty (:mod:`.history`), and the GNSS overlay (:mod:`sbts.core.viz.gnss_overlay`).  The page
(``static/``) draws the tiles with Leaflet (vendored, BSD-2-Clause) and the history chart as SVG.
Nothing is fetched from the network when the viewer runs.
"""
