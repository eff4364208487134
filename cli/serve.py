"""``sbts serve``: the products of a work directory in the browser."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("work_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=".")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (127.0.0.1: this machine only).")
@click.option("-p", "--port", type=click.IntRange(0, 65535), default=8765, show_default=True,
              help="Port (0 picks a free one).")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@click.option("--basemap", default=None, metavar="URL",
              help="XYZ tile URL of a basemap under geocoded maps, e.g. https://server/{z}/{x}/{y}.png "
                   "(none by default: the viewer works offline).")
@click.option("--basemap-attribution", default=None, help="Attribution text the basemap's terms require.")
@click.option("--gnss", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Folder of UNR .tenv3 files: stations and their LOS velocities on the velocity map.")
@click.option("--ref-gnss", default=None, metavar="SITE", help="Reference GNSS station (needs --gnss).")
@click.option("--gnss-site-list", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="SITE LAT LON list for .tenv3 files without coordinates.")
def serve(work_dir, host, port, open_browser, basemap, basemap_attribution, gnss, ref_gnss, gnss_site_list) -> None:
    """Browse WORK_DIR's products: maps, a date slider, pixel histories with the fitted model.

    Click a pixel for its history (with velocity.h5's model and uncertainty); shift-click a second
    pixel B for the difference A − B (the map is re-referenced to B).  Masks, the reference point
    and, with --gnss, GNSS stations are shown; the history downloads as CSV or PNG.  Stop with Ctrl-C.
    """
    import logging

    from sbts.core.serve.app import make_server
    from sbts.core.serve.state import ViewerState

    state = ViewerState(work_dir, basemap=basemap, basemap_attribution=basemap_attribution, gnss_dir=gnss,
                        ref_gnss=ref_gnss, gnss_site_list=gnss_site_list)
    server = make_server(state, host, port)
    if host not in ("127.0.0.1", "localhost", "::1"):
        logging.getLogger("sbts").warning("listening on %s: anyone who can reach this address can read the "
                                          "products of %s", host, state.catalog.root)
    click.echo(f"sbts serve: {state.catalog.root} at {server.url}  (Ctrl-C stops)", err=False)
    if open_browser:
        import webbrowser

        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        state.close()
