"""A plugin that cannot be imported (a missing dependency, typically)."""

raise ImportError("sbts_broken needs the package 'not_installed_dependency'")
