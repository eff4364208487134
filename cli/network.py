"""``sbts network``."""

from __future__ import annotations

from pathlib import Path

import click

from sbts.cli import options as o


@click.command()
@o.template_arg
@click.option("-i", "--stack", "stack_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Interferogram stack (default: WORK_DIR/inputs/ifgramStack.h5).")
@click.option("--ref-yx", default=None, help="Reference pixel y,x (mintpy.reference.yx).")
@click.option("--ref-lalo", default=None, help="Reference pixel lat,lon (mintpy.reference.lalo).")
@o.work_dir_opt
@o.max_memory_opt
def network(template, stack_file, ref_yx, ref_lalo, work_dir, max_memory) -> None:
    """Modify the network, average coherence and pick the reference point.

    Applies the mintpy.network.* rules by setting dropIfgram (no data is deleted), writes
    coherenceSpatialAvg.txt, avgSpatialCoh.h5, maskConnComp.h5 and avgPhaseVelocity.h5 (the
    stacking velocity), then sets REF_Y/REF_X from mintpy.reference.* (or the most coherent valid
    pixel) on the stack.
    """
    from sbts.core.steps.prepare import prepare_network

    t = o.load_template(template, {"mintpy.reference.yx": ref_yx, "mintpy.reference.lalo": ref_lalo})
    wd = o.resolve_work_dir(work_dir, template)
    report = prepare_network(stack_file or wd / "inputs" / "ifgramStack.h5", t, wd, o.resolve_memory(max_memory, t))
    click.echo(report)
