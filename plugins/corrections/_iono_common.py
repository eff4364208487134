"""What the two ionosphere corrections share: the step's switch ``mintpy.ionosphericDelay.method``."""

from __future__ import annotations

from sbts.core.api import Template

P = "mintpy.ionosphericDelay"
METHOD_KEY = P + ".method"
EXCLUDE_DATE_KEY = P + ".excludeDate"
EXCLUDE_DATE12_KEY = P + ".excludeDate12"
METHODS = ("split_spectrum", "tec")


def ionosphere_method(template: Template) -> str:
    """``mintpy.ionosphericDelay.method`` checked: no | split_spectrum | tec."""
    return template.get_str(METHOD_KEY, ["no", *METHODS]) or "no"
