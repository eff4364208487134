"""sbts's built-in plugins: readers, corrections and exporters, each written as a third party would.

:data:`BUILTIN` is how the plugin host finds them: by module path, in code, so that a source
checkout works without re-installing and no installed package can shadow a built-in plugin
(third-party plugins come from the ``sbts.plugins`` entry points and load after these).  Each
module imports only :mod:`sbts.core.api` and the private ``_*.py`` helpers of its own folder.
A new built-in plugin is one new module and one line here; nothing in ``sbts.core`` names it.
"""

#: plugin name → module path, in loading order (a name earlier in the list wins a clash)
BUILTIN: dict[str, str] = {
    "reader-mintpy": "sbts.plugins.readers.mintpy_h5",
    "reader-gamma": "sbts.plugins.readers.gamma",
    "reader-roipac": "sbts.plugins.readers.roipac",
    "reader-geotiff": "sbts.plugins.readers.geotiff",
    "reader-isce": "sbts.plugins.readers.isce",
    "reader-aria": "sbts.plugins.readers.aria",
    "reader-snap": "sbts.plugins.readers.snap",
    "reader-hyp3": "sbts.plugins.readers.hyp3",
    "correction-deramp": "sbts.plugins.corrections.deramp",
    "correction-lod": "sbts.plugins.corrections.lod",
    "correction-solid-earth-tides": "sbts.plugins.corrections.solid_earth_tides",
    "correction-ionosphere-split-spectrum": "sbts.plugins.corrections.ionosphere_split_spectrum",
    "correction-ionosphere-tec": "sbts.plugins.corrections.ionosphere_tec",
    "correction-dem-error": "sbts.plugins.corrections.dem_error",
    "correction-troposphere": "sbts.plugins.corrections.troposphere",
    "correction-unwrap-error": "sbts.plugins.corrections.unwrap_error",
    "exporter-geotiff": "sbts.plugins.exporters.geotiff",
    "exporter-hdf5": "sbts.plugins.exporters.hdf5",
    "exporter-kmz": "sbts.plugins.exporters.kmz",
    "exporter-gmt": "sbts.plugins.exporters.gmt",
    "exporter-gbis": "sbts.plugins.exporters.gbis",
    "exporter-hdfeos5": "sbts.plugins.exporters.hdfeos5",
    "exporter-roipac": "sbts.plugins.exporters.roipac",
    "exporter-qgis": "sbts.plugins.exporters.qgis",
    "exporter-kite": "sbts.plugins.exporters.kite",
}
