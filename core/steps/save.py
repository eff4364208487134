"""The save steps of ``sbts run`` (MintPy's google_earth and hdfeos5): switches and settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from sbts.core.config.template import HDFEOS5_KEYS, Template

KMZ_KEY = "mintpy.save.kmz"
HDFEOS5_KEY = "mintpy.save.hdfEos5"


@dataclass(frozen=True)
class KmzOptions:
    """``mintpy.save.kmz``: write a KMZ of the velocity for Google Earth."""

    enabled: bool = True

    @classmethod
    def from_template(cls, template: Template) -> KmzOptions:
        return cls(template.get_bool(KMZ_KEY))


@dataclass(frozen=True)
class HdfEos5Options:
    """``mintpy.save.hdfEos5*`` and the UNAVCO metadata keys the HDF-EOS5 file takes from the template."""

    enabled: bool = False
    settings: dict = field(default_factory=dict)
    template: Template = field(default_factory=Template, compare=False, repr=False, metadata={"digest": False})

    @classmethod
    def from_template(cls, template: Template) -> HdfEos5Options:
        enabled = template.get_bool(HDFEOS5_KEY)
        settings = template.section(HDFEOS5_KEY)
        lower = {k.lower(): k for k in template.values}
        for name in HDFEOS5_KEYS:  # given bare or with a prefix (unavco.relative_orbit ...)
            for key, original in lower.items():
                if key == name or key.endswith("." + name):
                    settings[original] = template.values[original]
        return cls(enabled, settings, template)


__all__ = ["KmzOptions", "HdfEos5Options"]
