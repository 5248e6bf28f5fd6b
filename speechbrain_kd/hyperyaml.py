"""HyperPyYAML files: finding a module by key, and writing YAML text.

:func:`find_module` is the one lookup of "the module under ``key``" of a
recipe or saved ``hyperparams.yaml``. It works on the objects that
``load_hyperpyyaml`` builds (:func:`speechbrain_kd.profiling.
load_module_from_hparams`) and on the unbuilt, reference-resolved YAML
nodes of :func:`resolved_nodes` (export reads a module's definition
without building the rest of a training file). :func:`yaml_text` writes
such nodes back with ruamel.yaml.

Example
-------
>>> text = "size: 4\\nmodel: !new:torch.nn.Linear [!ref <size>, 2]"
>>> nodes = resolved_nodes(text)
>>> print(yaml_text({"enhance_model": find_module(nodes, "model", "x")}))
enhance_model: !new:torch.nn.Linear [4, 2]
<BLANKLINE>
"""

import importlib
import io
import pathlib

import torch


def resolved_nodes(text):
    """HyperPyYAML text as ruamel nodes, references resolved, no objects.

    Tags (``!new:``, ``!name:``, ...) stay on the nodes; nothing is
    imported or built.

    Arguments
    ---------
    text : str
        HyperPyYAML text.

    Returns
    -------
    dict
        The top-level mapping (a ruamel ``CommentedMap``).

    Raises
    ------
    ValueError
        The text holds a ``!PLACEHOLDER`` (a recipe file, not the
        ``hyperparams.yaml`` saved by a run) or no mapping.

    Example
    -------
    >>> nodes = resolved_nodes("a: 2\\nb: !ref <a>\\nc: !new:torch.nn.ReLU")
    >>> nodes["b"], node_tag(nodes["c"])
    (2, '!new:torch.nn.ReLU')
    """
    import ruamel.yaml
    from hyperpyyaml.core import resolve_references

    try:
        resolved = resolve_references(io.StringIO(text)).getvalue()
    except ValueError as error:
        if "PLACEHOLDER" not in str(error):
            raise
        raise ValueError(
            f"{error} Pass the hyperparams.yaml saved in the training "
            "output folder (overrides applied), not the recipe's file."
        ) from None
    data = ruamel.yaml.YAML().load(resolved)
    if not isinstance(data, dict):
        raise ValueError("the hparams file does not hold a mapping of keys")
    return data


def node_tag(node):
    """The YAML tag of a ruamel node (``None`` when untagged).

    Arguments
    ---------
    node : object
        A value of :func:`resolved_nodes`.

    Returns
    -------
    str or None
        The tag, e.g. ``"!new:torch.nn.ReLU"``.

    Example
    -------
    >>> node_tag(resolved_nodes("x: !name:torch.nn.ReLU")["x"])
    '!name:torch.nn.ReLU'
    >>> node_tag(3) is None
    True
    """
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag)
    return value if isinstance(value, str) and value.startswith("!") else None


def tag_class(tag):
    """The class a ``!new:`` tag builds (``None`` if it cannot be imported).

    Arguments
    ---------
    tag : str or None
        A YAML tag.

    Returns
    -------
    type or None
        The class.

    Example
    -------
    >>> tag_class("!new:torch.nn.ReLU")
    <class 'torch.nn.modules.activation.ReLU'>
    >>> tag_class("!name:torch.nn.ReLU") is None
    True
    """
    if not tag or not tag.startswith("!new:"):
        return None
    module_name, _, name = tag[len("!new:") :].rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        return None


def is_module(value):
    """True for a ``torch.nn.Module`` or a ``!new:`` node that builds one.

    Arguments
    ---------
    value : object
        A built object or a node of :func:`resolved_nodes`.

    Returns
    -------
    bool
        Whether ``value`` is (or builds) a module.

    Example
    -------
    >>> is_module(torch.nn.ReLU()), is_module(1.0)
    (True, False)
    >>> is_module(resolved_nodes("x: !new:torch.nn.ReLU")["x"])
    True
    """
    if isinstance(value, torch.nn.Module):
        return True
    cls = tag_class(node_tag(value))
    return isinstance(cls, type) and issubclass(cls, torch.nn.Module)


def module_keys(hparams):
    """Keys of ``hparams`` (and ``outer.inner`` of its dicts) holding modules.

    Arguments
    ---------
    hparams : dict
        Loaded hyperparameters or :func:`resolved_nodes`.

    Returns
    -------
    list of str
        The keys, in file order.

    Example
    -------
    >>> module_keys(
    ...     {
    ...         "lr": 1.0,
    ...         "net": torch.nn.ReLU(),
    ...         "modules": {"net": torch.nn.ReLU()},
    ...     }
    ... )
    ['net', 'modules.net']
    """
    keys = []
    for name, value in hparams.items():
        if is_module(value):
            keys.append(str(name))
        elif isinstance(value, dict) and node_tag(value) is None:
            keys.extend(
                f"{name}.{inner}"
                for inner, item in value.items()
                if is_module(item)
            )
    return keys


def find_module(hparams, key, source):
    """The module (or the ``!new:`` node of one) under ``key``.

    Arguments
    ---------
    hparams : dict
        Loaded hyperparameters or :func:`resolved_nodes`.
    key : str
        A top-level key (``model``, ``generator_csig``), or
        ``outer.inner`` for an entry of a top-level dict
        (``modules.model``); a top-level key holding a dot wins.
    source : str or pathlib.Path
        Where ``hparams`` came from (for the error message).

    Returns
    -------
    object
        The module, or its node.

    Raises
    ------
    ValueError
        ``key`` is absent or holds no module; the message lists the keys
        that hold modules.

    Example
    -------
    >>> hparams = {"lr": 0.1, "modules": {"net": torch.nn.ReLU()}}
    >>> find_module(hparams, "modules.net", "memory")
    ReLU()
    >>> find_module(hparams, "lr", "memory")
    Traceback (most recent call last):
    ...
    ValueError: 'lr' in memory is a builtins.float, not a torch.nn.Module; \
keys holding a torch.nn.Module: modules.net
    """
    value, found = hparams, True
    if key in hparams:
        value = hparams[key]
    else:
        for part in key.split("."):
            if isinstance(value, dict) and part in value:
                value = value[part]
            else:
                found = False
                break
    available = ", ".join(module_keys(hparams)) or "(none)"
    if not found:
        raise ValueError(
            f"no key {key!r} in {source}; keys holding a torch.nn.Module: "
            f"{available}"
        )
    if not is_module(value):
        raise ValueError(
            f"{key!r} in {source} is {_describe(value)}, not a "
            f"torch.nn.Module; keys holding a torch.nn.Module: {available}"
        )
    return value


def _describe(value):
    """``a <tag> node`` or ``a <module>.<class>`` for error messages."""
    tag = node_tag(value)
    if tag:
        return f"a {tag} node"
    # ruamel wraps plain values (ScalarFloat, CommentedMap, ...).
    for plain in (bool, int, float, str, list, dict):
        if isinstance(value, plain):
            return f"a builtins.{plain.__name__}"
    cls = type(value)
    return f"a {cls.__module__}.{cls.__qualname__}"


def plain_node(node):
    """A comment-free copy of a ruamel node, tags and flow lists kept.

    The nodes of :func:`resolved_nodes` carry the comments of the file
    they came from, including those of the keys that follow them.

    Arguments
    ---------
    node : object
        A node of :func:`resolved_nodes` (or plain data).

    Returns
    -------
    object
        The same YAML value built from fresh ruamel containers and plain
        Python scalars.

    Example
    -------
    >>> nodes = resolved_nodes("a: [1, 2]  # note\\n# next\\nb: 3\\n")
    >>> print(yaml_text({"a": plain_node(nodes["a"])}), end="")
    a: [1, 2]
    """
    from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar

    tag = node_tag(node)
    if isinstance(node, dict):
        copy = CommentedMap((str(k), plain_node(v)) for k, v in node.items())
    elif isinstance(node, list):
        copy = CommentedSeq(plain_node(v) for v in node)
        if getattr(node, "fa", None) is not None and node.fa.flow_style():
            copy.fa.set_flow_style()
    elif isinstance(node, TaggedScalar):
        return TaggedScalar(value=node.value, style=node.style, tag=tag)
    elif isinstance(node, bool) or node is None:
        return node
    else:
        for plain in (int, float, str):
            if isinstance(node, plain):
                return plain(node)
        return node
    if tag:
        copy.yaml_set_ctag(node.tag)
    return copy


def yaml_text(data, comment=None):
    """YAML text of ``data``, written by ruamel.yaml (4-space indents).

    Arguments
    ---------
    data : dict
        Plain data and ruamel nodes (tags kept; comments of the nodes are
        written too, see :func:`plain_node`). A ruamel ``CommentedMap``
        is written as it is (the top comment is set on it).
    comment : str, optional
        A comment written at the top (one ``#`` line per line).

    Returns
    -------
    str
        The text.

    Example
    -------
    >>> from ruamel.yaml.comments import TaggedScalar
    >>> ref = TaggedScalar(value="<a>", tag="!ref")
    >>> print(yaml_text({"a": 1, "b": ref, "c": [True, 0.5]}, "Hi"), end="")
    # Hi
    a: 1
    b: !ref <a>
    c:
      - true
      - 0.5
    """
    import ruamel.yaml
    from ruamel.yaml.comments import CommentedMap

    mapping = data if isinstance(data, CommentedMap) else CommentedMap(data)
    if comment:
        mapping.yaml_set_start_comment(comment)
    writer = ruamel.yaml.YAML()
    writer.indent(mapping=4, sequence=4, offset=2)
    stream = io.StringIO()
    writer.dump(mapping, stream)
    return stream.getvalue()


def node_data(node):
    """A ruamel node as plain JSON-friendly Python data (tags as text).

    Arguments
    ---------
    node : object
        A node of :func:`resolved_nodes`.

    Returns
    -------
    object
        Dicts, lists and scalars; a tagged scalar becomes ``"<tag> <value>"``
        and a tagged non-empty container ``{"_tag": tag, "value": data}``.

    Example
    -------
    >>> nodes = resolved_nodes("a: {x: [1, !name:torch.nn.ReLU ]}")
    >>> node_data(nodes["a"])
    {'x': [1, '!name:torch.nn.ReLU']}
    """
    if isinstance(node, dict):
        data = {str(k): node_data(v) for k, v in node.items()}
    elif isinstance(node, list):
        data = [node_data(v) for v in node]
    elif node_tag(node):
        return f"{node_tag(node)} {getattr(node, 'value', '')}".strip()
    elif isinstance(node, bool) or node is None:
        return node
    elif isinstance(node, int):
        return int(node)
    elif isinstance(node, float):
        return float(node)
    else:
        return str(node)
    if node_tag(node) and (isinstance(node, dict) or node):
        return {"_tag": node_tag(node), "value": data}
    return data


def describe_module_node(node):
    """``(class path, constructor arguments)`` of a ``!new:`` node.

    Arguments
    ---------
    node : object
        A ``!new:`` node of :func:`resolved_nodes`.

    Returns
    -------
    tuple
        The class path and a dict of arguments (positional ones under
        ``"args"``), as :func:`node_data`.

    Example
    -------
    >>> describe_module_node(
    ...     resolved_nodes("m: !new:torch.nn.Linear [4, 2]")["m"]
    ... )
    ('torch.nn.Linear', {'args': [4, 2]})
    """
    class_path = node_tag(node)[len("!new:") :]
    if isinstance(node, dict):
        kwargs = {str(k): node_data(v) for k, v in node.items()}
    elif isinstance(node, list):
        kwargs = {"args": [node_data(v) for v in node]}
    else:
        kwargs = {}
    return class_path, kwargs


#: Top-level key of a yaml that holds only what it changes in another.
EXTENDS = "extends"


def recipe_source(hparams_file, overrides=""):
    r"""The yaml file and overrides that a recipe yaml stands for.

    A yaml whose top-level ``extends`` names another yaml (relative to its
    own folder) holds only what it changes (an ablation): it stands for
    that yaml with its other keys as overrides, then ``overrides`` (the
    command line's) on top. Every key it sets must exist in the base.
    Other yamls stand for themselves.

    Arguments
    ---------
    hparams_file : str or pathlib.Path
        The recipe yaml.
    overrides : str or dict
        Command-line overrides (yaml text, as ``sb.parse_arguments``
        returns them).

    Returns
    -------
    tuple
        ``(yaml_file, overrides)`` to load (and to save with the run).

    Raises
    ------
    ValueError
        If the base does not exist or lacks a key the yaml sets (naming
        the file, the key and the base).

    Example
    -------
    >>> import tempfile
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "base.yaml").write_text("a: 1\nb: 2\n")
    >>> _ = (folder / "abl.yaml").write_text("extends: base.yaml\nb: 3\n")
    >>> path, text = recipe_source(folder / "abl.yaml", "a: 5")
    >>> from hyperpyyaml import load_hyperpyyaml
    >>> path.name, load_hyperpyyaml(open(path), text)
    ('base.yaml', {'a': 5, 'b': 3})
    """
    import ruamel.yaml

    yaml = ruamel.yaml.YAML()
    hparams_file = pathlib.Path(hparams_file)
    with open(hparams_file, encoding="utf-8") as fin:
        document = yaml.load(fin)
    if not isinstance(document, dict) or EXTENDS not in document:
        return hparams_file, overrides
    changes = dict(document)
    base = (hparams_file.parent / str(changes.pop(EXTENDS))).resolve()
    if not base.is_file():
        raise ValueError(
            f"{hparams_file}: {EXTENDS}: {document[EXTENDS]} does not exist "
            f"(looked for {base})"
        )
    base, base_overrides = recipe_source(base)
    with open(base, encoding="utf-8") as fin:
        base_keys = set(yaml.load(fin) or {})
    unknown = [key for key in changes if key not in base_keys]
    if unknown:
        raise ValueError(
            f"{hparams_file} sets {unknown}, which {base} does not have "
            "(a yaml with 'extends' may only change keys of its base)"
        )
    merged = yaml.load(base_overrides) if base_overrides else {}
    merged = dict(merged or {})
    merged.update(changes)
    if isinstance(overrides, str):
        overrides = yaml.load(overrides) if overrides.strip() else {}
    merged.update(overrides or {})
    stream = io.StringIO()
    yaml.dump(merged, stream)
    return base, stream.getvalue()
