"""``custom_interface.py``: the interface and the model code an exported
folder needs, gathered from this package into one file that imports
nothing of it (torch, torchaudio and SpeechBrain only).

:func:`bundle_source` collects the top-level definitions that the roots
(the interface, the adapter, the model classes) need, transitively and
across modules, in dependency order, with the package's imports removed;
:func:`bundled_node` rewrites the ``!new:speechbrain_kd...`` tags of a
model node to ``!new:custom_interface...``. With the package installed,
:func:`package_classes_resolved` makes ``custom_interface.<name>`` this
package's own ``<name>``, so that one process loads any number of folders
(Python keeps a single ``custom_interface`` module per process).
"""

import ast
import contextlib
import functools
import importlib
import importlib.util
import pkgutil
import sys
import types

PACKAGE = "speechbrain_kd"
BUNDLE_MODULE = "custom_interface"
BUNDLE_FILE = BUNDLE_MODULE + ".py"
INTERFACE = ("speechbrain_kd.pretrained.interface", "KDEnhancement")
ADAPTER = ("speechbrain_kd.pretrained.adapters", "PairOutput")
#: Package-only definitions and what the bundle holds instead.
PACKAGE_ONLY = {
    ("speechbrain_kd.pretrained.interface", "custom_interface_resolved"): (
        "def custom_interface_resolved():\n"
        '    """Nothing to resolve: this file is ``custom_interface``."""\n'
        "    return contextlib.nullcontext()\n",
        {"contextlib": "import contextlib"},
    ),
}
#: Modules whose names ``custom_interface.<name>`` may stand for.
STAND_IN_MODULES = (
    "speechbrain_kd.pretrained.adapters",
    "speechbrain_kd.pretrained.interface",
)
TAG_KINDS = ("!new:", "!name:", "!apply:")
DEFAULT_DOCSTRING = (
    "Interface and model code gathered from the speechbrain_kd package "
    "(do not edit)."
)


class BundleError(ValueError):
    """Raised when package code cannot be gathered into one file."""


class _ParsedModule:
    """A module's top-level definitions and imports."""

    def __init__(self, name):
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise BundleError(f"cannot find the source of module {name}")
        with open(spec.origin, encoding="utf-8") as stream:
            self.text = stream.read()
        self.name = name
        self.lines = self.text.splitlines()
        self.tree = ast.parse(self.text, filename=spec.origin)
        self.definitions = {}  # name -> top-level statement
        self.package_imports = {}  # bound name -> (module, name)
        self.external_imports = {}  # bound name -> import statement text
        for node in self.tree.body:
            if isinstance(node, ast.ImportFrom) and _is_package(node.module):
                for alias in node.names:
                    bound = alias.asname or alias.name
                    self.package_imports[bound] = (node.module, alias.name)
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                if isinstance(node, ast.Import) and any(
                    _is_package(alias.name) for alias in node.names
                ):
                    raise BundleError(
                        f"{name}: `import {PACKAGE}...` is not bundled; "
                        "use `from ... import ...`"
                    )
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    self.external_imports[bound] = _import_text(node, alias)
            else:
                for bound in _defined_names(node):
                    self.definitions[bound] = node

    def definition_text(self, name):
        """The source of the statement defining ``name``."""
        return ast.get_source_segment(self.text, self.definitions[name])

    def source(self, node):
        """The statement's text (decorators and the comments just above it
        included), with its lazy package imports replaced."""
        first = min(
            [node.lineno]
            + [d.lineno for d in getattr(node, "decorator_list", [])]
        )
        while first > 1 and self.lines[first - 2].lstrip().startswith("#"):
            first -= 1
        lines = self.lines[first - 1 : node.end_lineno]
        for lazy, bound, target in reversed(_lazy_imports(node)):
            indent = lines[lazy.lineno - first][: lazy.col_offset]
            replacement = (
                "pass" if bound == target[1] else f"{bound} = {target[1]}"
            )
            lines[lazy.lineno - first : lazy.end_lineno - first + 1] = [
                indent + replacement
            ]
        return "\n".join(lines) + "\n"


def imports_of_the_package(text):
    """The import statements of ``text`` that import this package.

    Arguments
    ---------
    text : str
        Python source.

    Returns
    -------
    list of str
        The statements (any depth), as source.

    Example
    -------
    >>> imports_of_the_package("def f():\\n    from speechbrain_kd import x\\n")
    ['from speechbrain_kd import x']
    """
    found = []
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ImportFrom) and _is_package(node.module):
            found.append(ast.unparse(node))
        elif isinstance(node, ast.Import) and any(
            _is_package(alias.name) for alias in node.names
        ):
            found.append(ast.unparse(node))
    return found


@functools.cache
def _parsed(name):
    """A :class:`_ParsedModule` (the source does not change meanwhile)."""
    return _ParsedModule(name)


def _is_package(module):
    """Whether an imported module name is this package."""
    return module is not None and (
        module == PACKAGE or module.startswith(PACKAGE + ".")
    )


def _import_text(node, alias):
    """``import x [as y]`` or ``from m import x [as y]`` for one alias."""
    name = alias.name + (f" as {alias.asname}" if alias.asname else "")
    if isinstance(node, ast.Import):
        return f"import {name}"
    return f"from {'.' * node.level}{node.module or ''} import {name}"


def _defined_names(node):
    """Names a top-level statement binds."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [node.name]
    targets = []
    if isinstance(node, ast.Assign):
        targets = node.targets
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names = []
    for target in targets:
        names += [n.id for n in ast.walk(target) if isinstance(n, ast.Name)]
    return names


def _referenced_names(node):
    """Every name a statement mentions (over-inclusive: locals too)."""
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _lazy_imports(node):
    """``(import node, bound name, (module, name))`` of the package
    imports inside a statement (in functions), in source order."""
    found = []
    for inner in ast.walk(node):
        if isinstance(inner, ast.Import) and any(
            _is_package(a.name) for a in inner.names
        ):
            raise BundleError(
                f"line {inner.lineno}: `import {PACKAGE}...` inside a "
                "function is not bundled; use `from ... import ...`"
            )
        if isinstance(inner, ast.ImportFrom) and _is_package(inner.module):
            if len(inner.names) != 1:
                raise BundleError(
                    f"line {inner.lineno}: import one name per lazy "
                    f"`from {inner.module} import ...` to bundle it"
                )
            alias = inner.names[0]
            found.append(
                (inner, alias.asname or alias.name, (inner.module, alias.name))
            )
    return sorted(found, key=lambda item: item[0].lineno)


class _Bundler:
    """Gathers definitions from parsed modules."""

    def __init__(self):
        self.needed = []  # (module, name) definition sites, discovery order
        self.aliases = {}  # (module, bound) -> (module, name)
        self.externals = {}  # bound name -> import text
        self.module_deps = {}  # module -> modules its top level imports

    def parsed(self, name):
        """The parsed module ``name`` (parsed once per process)."""
        return _parsed(name)

    def resolve(self, module, name, seen=()):
        """The defining ``(module, name)`` of a package name."""
        parsed = self.parsed(module)
        if name in parsed.definitions or (module, name) in PACKAGE_ONLY:
            return module, name
        if name in parsed.package_imports and (module, name) not in seen:
            return self.resolve(
                *parsed.package_imports[name], seen=(*seen, (module, name))
            )
        raise BundleError(f"{module} defines no {name!r}")

    def external(self, bound, text):
        """Records an import of another package binding ``bound``."""
        if self.externals.setdefault(bound, text) != text:
            raise BundleError(
                f"two imports bind {bound!r}: {self.externals[bound]!r} "
                f"and {text!r}"
            )

    def gather(self, roots):
        """Finds the definitions ``roots`` need, transitively."""
        queue = [self.resolve(*root) for root in roots]
        while queue:
            key = queue.pop(0)
            if key in self.needed or self._same_as_needed(key):
                continue
            self.needed.append(key)
            module, name = key
            parsed = self.parsed(module)
            if key in PACKAGE_ONLY:
                for bound, text in PACKAGE_ONLY[key][1].items():
                    self.external(bound, text)
                continue
            node = parsed.definitions[name]
            for ref in sorted(_referenced_names(node)):
                if ref in parsed.definitions and ref != name:
                    queue.append((module, ref))
                elif ref in parsed.package_imports:
                    target = self.resolve(*parsed.package_imports[ref])
                    queue.append(target)
                    self.module_deps.setdefault(module, set()).add(target[0])
                    if ref != target[1]:
                        self.aliases[(module, ref)] = target
                elif ref in parsed.external_imports:
                    self.external(ref, parsed.external_imports[ref])
            for _, _, target in _lazy_imports(node):
                queue.append(self.resolve(*target))

    def _same_as_needed(self, key):
        """Whether a needed definition of another module has the same name
        and text (e.g. ``logger = logging.getLogger(__name__)``)."""
        if key in PACKAGE_ONLY:
            return False
        module, name = key
        text = self.parsed(module).definition_text(name)
        return any(
            other_name == name
            and (other, other_name) not in PACKAGE_ONLY
            and self.parsed(other).definition_text(name) == text
            for other, other_name in self.needed
        )

    def module_order(self):
        """Modules of the needed definitions, dependencies first."""
        pending = list(dict.fromkeys(module for module, _ in self.needed))
        order = []
        while pending:
            ready = [
                m
                for m in pending
                if not (self.module_deps.get(m, set()) - {m}) & set(pending)
            ]
            if not ready:
                raise BundleError(f"circular top-level imports: {pending}")
            order.append(ready[0])
            pending.remove(ready[0])
        return order

    def check_names(self):
        """One flat name per definition, alias and import."""
        owners = {}
        for module, name in self.needed:
            owners.setdefault(name, set()).add((module, name))
        for (module, bound), target in self.aliases.items():
            owners.setdefault(bound, set()).add(target)
        for bound in self.externals:
            owners.setdefault(bound, set()).add(("import", bound))
        clashes = {k: v for k, v in owners.items() if len(v) > 1}
        if clashes:
            raise BundleError(
                "names defined more than once in the bundle: "
                + "; ".join(
                    f"{name} ({', '.join(sorted(m for m, _ in v))})"
                    for name, v in sorted(clashes.items())
                )
            )


def bundle_source(roots, docstring=None):
    """The text of a module holding ``roots`` and what they need.

    Arguments
    ---------
    roots : list of tuple
        ``(module, name)`` of package definitions (names re-exported by a
        package are followed to their definition).
    docstring : str, optional
        The module docstring (default :data:`DEFAULT_DOCSTRING`).

    Returns
    -------
    str
        Python source importing nothing of this package, formatted as
        ``ruff format`` and SpeechBrain's ruff settings (isort) want it.

    Raises
    ------
    BundleError
        A name is defined by two of the gathered modules, a package import
        cannot be followed, or a definition is missing.

    Example
    -------
    >>> text = bundle_source([("speechbrain_kd.pretrained", "PairOutput")])
    Traceback (most recent call last):
    ...
    speechbrain_kd.pretrained.bundle.BundleError: speechbrain_kd.pretrained defines no 'PairOutput'
    >>> text = bundle_source(
    ...     [("speechbrain_kd.pretrained.adapters", "PairOutput")]
    ... )
    >>> namespace = {}
    >>> exec(compile(text, "bundle", "exec"), namespace)
    >>> sorted(n for n in namespace if not n.startswith("__"))
    ['BUNDLED_FROM', 'PairOutput', 'nn']
    >>> imports_of_the_package(text)
    []
    """
    bundler = _Bundler()
    bundler.gather(roots)
    bundler.check_names()
    # Top-level blocks two blank lines apart, as ruff format writes them.
    docstring = '"""' + (docstring or DEFAULT_DOCSTRING).strip() + '\n"""'
    blocks = [docstring, _import_block(bundler.externals.values())]
    origins = {}
    for module in bundler.module_order():
        parsed = bundler.parsed(module)
        blocks.append(f"# From {module}.")
        aliases = [
            f"{bound} = {target}"
            for (importer, bound), (_, target) in sorted(
                bundler.aliases.items()
            )
            if importer == module
        ]
        blocks.append("\n".join(aliases))
        names = [n for m, n in bundler.needed if m == module]
        for node in parsed.tree.body:
            bound = [n for n in _defined_names(node) if n in names]
            if not bound:
                continue
            if (module, bound[0]) in PACKAGE_ONLY:
                blocks.append(PACKAGE_ONLY[(module, bound[0])][0])
            else:
                blocks.append(parsed.source(node))
            origins.update(dict.fromkeys(bound, module))
        for name in names:
            if (module, name) in PACKAGE_ONLY and name not in origins:
                blocks.append(PACKAGE_ONLY[(module, name)][0])
                origins[name] = module
    blocks.append(
        "#: Where each definition of this file comes from.\n"
        "BUNDLED_FROM = {\n"
        + "".join(f'    "{n}": "{m}",\n' for n, m in sorted(origins.items()))
        + "}"
    )
    head, imports, *rest = (b.strip("\n") for b in blocks)
    # isort: one blank line between the imports and the comment after them.
    body = imports + "\n\n" + "\n\n\n".join(b for b in rest if b.strip())
    return head + "\n\n" + body + "\n"


def _import_block(imports):
    """Import lines in isort's order under SpeechBrain's settings: the
    standard library, third-party packages, then SpeechBrain (its
    first-party package); ``import x`` lines before ``from x import y``."""

    def section(line):
        """0, 1 or 2: the section of an import line."""
        top = line.split()[1].split(".")[0]
        if top in sys.stdlib_module_names:
            return 0
        return 2 if top == "speechbrain" else 1

    blocks = []
    for number in range(3):
        lines = [t for t in imports if section(t) == number]
        plain = sorted(t for t in lines if t.startswith("import "))
        members = {}
        for line in lines:
            if line.startswith("from "):
                _, module, _, names = line.split(" ", 3)
                members.setdefault(module, []).append(names)
        froms = [_from_import(m, members[m]) for m in sorted(members)]
        if lines:
            blocks.append("\n".join(plain + froms))
    return "\n\n".join(blocks)


def _from_import(module, names):
    """One ``from module import ...`` statement, wrapped as ruff does."""

    def kind(name):
        """isort's order by type: constants, classes, then the rest."""
        bare = name.split(" as ")[0]
        if bare.isupper() and len(bare) > 1:
            return 0
        return 1 if bare[:1].isupper() else 2

    names = sorted(set(names), key=lambda n: (kind(n), n))
    line = f"from {module} import {', '.join(names)}"
    if len(line) <= 80:
        return line
    return (
        f"from {module} import (\n"
        + "".join(f"    {n},\n" for n in names)
        + ")"
    )


def bundled_node(node):
    """A copy of a model node whose package tags name ``custom_interface``.

    Arguments
    ---------
    node : object
        A ruamel node of :func:`speechbrain_kd.hyperyaml.resolved_nodes`.

    Returns
    -------
    tuple
        The rewritten copy (comment-free) and the ``(module, name)`` of
        every package object its tags named.

    Example
    -------
    >>> from speechbrain_kd.hyperyaml import resolved_nodes, yaml_text
    >>> node = resolved_nodes("m: !new:speechbrain_kd.lobes.taps.LatentTap\\n")[
    ...     "m"
    ... ]
    >>> copy, roots = bundled_node(node)
    >>> print(yaml_text({"m": copy}), end="")
    m: !new:custom_interface.LatentTap
    >>> roots
    [('speechbrain_kd.lobes.taps', 'LatentTap')]
    """
    from ruamel.yaml.comments import TaggedScalar
    from ruamel.yaml.tag import Tag

    from speechbrain_kd.hyperyaml import node_tag, plain_node

    roots = []

    def rewrite(value):
        """Rewrites ``value``'s tag and those below it in place."""
        children = []
        if isinstance(value, dict):
            children = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        for key, child in children:
            value[key] = rewrite(child)
        tag = node_tag(value) or ""
        kind = next((k for k in TAG_KINDS if tag.startswith(k)), None)
        if kind is None or not _is_package(tag[len(kind) :].rsplit(".", 1)[0]):
            return value
        module, name = tag[len(kind) :].rsplit(".", 1)
        roots.append((module, name))
        new_tag = f"{kind}{BUNDLE_MODULE}.{name}"
        if isinstance(value, TaggedScalar):
            return TaggedScalar(
                value=value.value, style=value.style, tag=new_tag
            )
        value.yaml_set_ctag(Tag(suffix=new_tag))
        return value

    return rewrite(plain_node(node)), roots


def write_custom_interface(folder, roots, docstring=None):
    """Writes ``custom_interface.py`` (interface, adapter and ``roots``).

    Arguments
    ---------
    folder : pathlib.Path
        The model folder.
    roots : list of tuple
        ``(module, name)`` of the model's package classes
        (:func:`bundled_node`).
    docstring : str, optional
        The module docstring.

    Returns
    -------
    pathlib.Path
        The written file.

    Example
    -------
    >>> import pathlib, tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> path = write_custom_interface(
    ...     folder, [("speechbrain_kd.lobes.taps", "LatentTap")]
    ... )
    >>> text = path.read_text()
    >>> "class KDEnhancement(Pretrained):" in text, "class LatentTap(" in text
    (True, True)
    """
    text = bundle_source([INTERFACE, ADAPTER, *roots], docstring)
    path = folder / BUNDLE_FILE
    path.write_text(text, encoding="utf-8")
    return path


def _stand_in():
    """A ``custom_interface`` module whose names are this package's."""
    from speechbrain_kd import lobes

    module = types.ModuleType(BUNDLE_MODULE)
    module.__doc__ = "speechbrain_kd's own classes for custom_interface.py"
    names = [
        f"{lobes.__name__}.{m.name}"
        for m in pkgutil.iter_modules(lobes.__path__)
    ]

    def lookup(name):
        """The package object called ``name``."""
        for source in (*STAND_IN_MODULES, *names):
            found = getattr(importlib.import_module(source), name, None)
            if found is not None and getattr(found, "__module__", "") == source:
                return found
        raise AttributeError(
            f"custom_interface.{name}: speechbrain_kd has no class or "
            f"function {name!r} (was the folder exported by a newer "
            "version? Load it with speechbrain's foreign_class and "
            "pymodule_file='custom_interface.py')"
        )

    module.__getattr__ = lookup
    return module


@contextlib.contextmanager
def package_classes_resolved():
    """Within: ``custom_interface.<name>`` is this package's ``<name>``.

    Example
    -------
    >>> import pydoc
    >>> with package_classes_resolved():
    ...     pydoc.locate("custom_interface.PairOutput").__module__
    'speechbrain_kd.pretrained.adapters'
    >>> "custom_interface" in sys.modules
    False
    """
    previous = sys.modules.get(BUNDLE_MODULE)
    sys.modules[BUNDLE_MODULE] = _stand_in()
    try:
        yield
    finally:
        if previous is None:
            sys.modules.pop(BUNDLE_MODULE, None)
        else:
            sys.modules[BUNDLE_MODULE] = previous
