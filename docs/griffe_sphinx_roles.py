"""Griffe extension of the API reference: Sphinx roles in the numpydoc docstrings become links or code.

``:func:`calibrate``` (and ``:class:``, ``:meth:``, ``:mod:``, ``:data:``, ``:attr:``, ``:exc:``, ``:obj:``) is
resolved in the scope of the documented object, as Sphinx does, and becomes an optional mkdocs-autorefs
cross-reference: a link where the target is documented in the site, plain code elsewhere (``xarray.Dataset``).
``:class:`~a.b.C``` shows ``C`` only. ``:math:`...``` stays as code (the site loads no MathJax from a CDN).
The docstrings themselves keep their Sphinx roles, which ``help()`` and IDEs show as they are.
"""

import re

import griffe

ROLE = re.compile(r":(?:py:)?(?P<role>func|class|meth|mod|data|attr|exc|obj|math):`(?P<tilde>~?)(?P<target>[^`]+)`")


def resolve(obj: griffe.Object, target: str) -> str:
    """Full path of ``target`` named in the docstring of ``obj``; ``target`` itself when it is not in scope."""
    head, _, rest = target.partition(".")
    scope = obj
    while scope is not None and not (scope.is_class and head in scope.all_members):
        scope = scope.parent
    if scope is not None:  # a class also sees the members it inherits (KGSSL.save comes from its base class)
        path = f"{scope.path}.{head}"
    else:
        try:
            path = obj.resolve(head)
        except griffe.NameResolutionError:
            return target
    return f"{path}.{rest}" if rest else path


def render(obj: griffe.Object, match: re.Match) -> str:
    target = match["target"]
    if match["role"] == "math":
        return f"`{target}`"
    shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
    return f'<autoref identifier="{resolve(obj, target)}" optional><code>{shown}</code></autoref>'


def objects(obj: griffe.Object):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from objects(member)


class SphinxRoles(griffe.Extension):
    """Rewrite the roles of every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, **kwargs) -> None:
        for obj in objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = ROLE.sub(lambda m, obj=obj: render(obj, m), obj.docstring.value)
