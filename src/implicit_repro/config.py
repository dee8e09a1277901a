"""Resolve and validate the pipeline configuration.

``config/config.yaml`` holds ``defaults`` (the embedded ``small`` scale), one delta per preset under
``presets`` and an ``overrides`` delta applied last (handy from the command line:
``snakemake --config 'overrides={anil2022: {prefix_sums: {seeds: [0, 1]}}}'``). The resolved
experiment tree is validated against ``workflow/schemas/config.schema.yaml`` before any job starts;
each paper's section against the schema its package brings (``papers/<paper>/schema.yaml``), which
``load_schema`` composes in, so that adding a paper edits no shared file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml

from implicit_repro.errors import ConfigError

SCALES = ("smoke", "small", "paper")


def deep_merge(base: dict, delta: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (delta or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _coerce_cli_strings(node: Any) -> Any:
    """Snakemake parses nested ``--config`` values with YAML's BaseLoader, which keeps every leaf a
    string; give them their YAML types back (``"3"`` -> 3, ``"1e-3"`` -> 0.001)."""
    if isinstance(node, dict):
        return {k: _coerce_cli_strings(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_coerce_cli_strings(v) for v in node]
    if isinstance(node, str):
        try:
            return float(node) if _looks_like_float(node) else yaml.safe_load(node)
        except yaml.YAMLError:
            return node
    return node


def _looks_like_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return not text.lstrip("+-").isdigit()


def read_yaml(path: str | Path) -> Any:
    """A YAML file's content; a syntax error names the file, the line and the column."""
    try:
        with open(path, encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file. Check the path (it is relative to where you run).") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML{_yaml_position(exc)}. Fix the syntax there "
                          "(indent with spaces, close every bracket and quote).") from None


def _yaml_position(exc: yaml.YAMLError) -> str:
    """' at line L, column C: <problem> (<context> at line L0)', as far as PyYAML knows them."""
    mark, problem = getattr(exc, "problem_mark", None), getattr(exc, "problem", None)
    text = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    text += f": {problem}" if problem else ""
    context, context_mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and context_mark and (not mark or context_mark.line != mark.line):
        text += f" ({context} that starts at line {context_mark.line + 1})"
    return text


class Origin:
    """Which input gave a key its value: config/config.yaml, a copy given with ``--configfile``, or
    ``--config`` on the command line. Layers come lowest precedence first, as Snakemake merges them;
    an error then names the file the user has to edit, not the one they copied it from."""

    def __init__(self, layers: list[tuple[str, dict]]):
        self.layers = [(name, raw) for name, raw in layers if isinstance(raw, dict)]

    def summary(self) -> str:
        names = [name for name, _ in reversed(self.layers)]
        return names[0] if len(names) == 1 else f"{names[0]} (over {', '.join(names[1:])})"

    def of_raw(self, path: list) -> str:
        """The source of a key of the raw file (``scale``, ``presets.smoke.x``)."""
        for name, raw in reversed(self.layers):
            if _has(raw, path):
                return name
        return self.summary()

    def of_experiment(self, path: list, scale: str) -> str:
        """The source of a key of the resolved experiment: overrides beat the preset, which beats
        the defaults, whatever file each comes from."""
        for section in (["overrides"], ["presets", scale], ["defaults"]):
            for name, raw in reversed(self.layers):
                if _has(raw, section + path):
                    return f"{name}, under `{'.'.join(section)}`"
        return self.summary()


def _has(node: Any, path: list) -> bool:
    for part in path:
        if not isinstance(node, (dict, list)):
            return False
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
    return True


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path)


def _describe(error: jsonschema.ValidationError, where: Callable[[list], str], root: dict) -> str | None:
    path = _key_path(error)
    parts = list(error.absolute_path)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = set(error.schema.get("properties", {}))
        for part in error.schema.get("allOf", []):
            known |= set(_resolve_ref(part, root).get("properties", {}))
        extra = sorted(set(error.instance) - known)
        if not extra:
            return None
        keys = ", ".join(f"`{'.'.join(filter(None, [path, k]))}`" for k in extra)
        allowed = ", ".join(sorted(known))
        fix = error.schema.get(UNKNOWN_KEY_FIX, "Remove or rename it.").replace("<key>", extra[0])
        return f"{where(parts + extra[:1])}: unknown key {keys}; allowed here: {allowed}. {fix}"
    if error.validator == "required":
        return f"{where(parts)}: `{path or '<top level>'}` {error.message}. Add it."
    return f"{where(parts)}: key `{path}`: {error.message}. Fix that value."


def _resolve_ref(schema: dict, root: dict) -> dict:
    """The sub-schema a {"$ref": "#/$defs/x"} points to (only local refs are used here)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    node = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _validate(instance: Any, schema: dict, where: Callable[[list], str]) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    # The most specific error first. A failing allOf branch makes the properties it checked count
    # as "unevaluated": skip that echo when no key is really unknown.
    errors = sorted(validator.iter_errors(instance), key=lambda e: (-len(e.absolute_path), _key_path(e)))
    messages = [_describe(e, where, schema) for e in errors]
    messages = [m for m in messages if m is not None]
    if messages:
        raise ConfigError(messages[0])


# A schema's own annotation: what the message about an unknown key of that level says after the
# allowed keys, ``<key>`` standing for the first unknown one (the experiment's top level: how to add a
# paper). Validators ignore it.
UNKNOWN_KEY_FIX = "x-unknown-key-fix"
REF = "#/$defs/"


def load_schema(path: str | Path, papers: list[str] | None = None) -> dict:
    """The shared schema at ``path`` with the section of every paper (``papers``, default: every
    package under ``implicit_repro/papers/``) composed in, from the paper's ``schema.yaml``."""
    from implicit_repro.papers import known, schema_file

    schema = read_yaml(path)
    shared = set(schema["$defs"])
    for paper in known() if papers is None else papers:
        _compose(schema, paper, schema_file(paper), shared)
    return schema


def _compose(schema: dict, paper: str, path: Path, shared: set[str]) -> None:
    """Put ``paper``'s fragment into ``schema``: its ``section`` as the experiment's ``paper`` key, its
    ``$defs`` as ``<paper>.<name>`` (no two papers' definitions can collide), its references to
    them renamed to match; a reference to neither its own nor a shared definition is an error."""
    fragment = read_yaml(path)
    if not isinstance(fragment, dict) or "section" not in fragment:
        raise ConfigError(f"{path}: no `section` key; it holds the JSON schema of the `{paper}` section of "
                          "config/config.yaml (see src/implicit_repro/papers/anil2022/schema.yaml).")
    own = fragment.get("$defs") or {}

    def renamed(node: Any) -> Any:
        if isinstance(node, list):
            return [renamed(v) for v in node]
        if not isinstance(node, dict):
            return node
        out = {k: renamed(v) for k, v in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(REF):
            name = ref[len(REF):]
            if name in own:
                out["$ref"] = f"{REF}{paper}.{name}"
            elif name not in shared:
                raise ConfigError(f"{path}: `$ref: {ref}` names no definition of its own `$defs` nor a shared one "
                                  f"({', '.join(sorted(shared))}). Define `{name}` under its `$defs`.")
        return out

    for name, definition in own.items():
        schema["$defs"][f"{paper}.{name}"] = renamed(definition)
    schema["$defs"]["experiment"]["properties"][paper] = renamed(fragment["section"])


def resolve(raw: dict, schema: dict, source: str = "config/config.yaml", origin: Origin | None = None) -> dict:
    """Validate the raw file, merge defaults <- presets[scale] <- overrides, validate the result.

    ``origin`` tells which input each key came from (default: all of it from ``source``).
    Returns the experiment tree plus ``scale`` and ``committed_scale``."""
    origin = origin or Origin([(source, raw)])
    raw = {**raw, "overrides": _parse_overrides(raw.get("overrides"))}
    _validate(raw, {k: v for k, v in schema.items() if k != "$defs"}, origin.of_raw)
    scale = raw["scale"]
    merged = deep_merge(raw["defaults"], raw["presets"].get(scale) or {})
    merged = deep_merge(merged, _coerce_cli_strings(raw.get("overrides") or {}))
    experiment_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/experiment"}
    _validate(merged, experiment_schema,
              lambda path: f"{origin.of_experiment(path, scale)} (scale '{scale}')")
    _check_cross_field(merged, origin.summary(), scale)
    return {"scale": scale, "committed_scale": raw["committed_scale"], **merged}


OVERRIDES_EXAMPLE = "--config 'overrides={anil2022: {prefix_sums: {seeds: [0, 1]}}}'"


def _parse_overrides(value: Any) -> Any:
    """Snakemake keeps a ``--config overrides=...`` that YAML cannot parse as the bare string: say
    that it is the YAML that is broken, not the type."""
    if not isinstance(value, str):
        return value
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--config overrides: not valid YAML{_yaml_position(exc)} in {value!r}. Write a YAML "
                          f"mapping in single quotes, for example {OVERRIDES_EXAMPLE}") from None
    if parsed is not None and not isinstance(parsed, dict):
        raise ConfigError(f"--config overrides: expected a mapping of keys to values, got {value!r}. For example "
                          f"{OVERRIDES_EXAMPLE}")
    return parsed


def _check_cross_field(cfg: dict, source: str, scale: str) -> None:
    """Constraints a JSON schema cannot express: each paper's grid checks its own section."""
    from implicit_repro.papers import known, part

    where = f"{source} (scale '{scale}')"
    for paper in known():
        if paper in cfg:
            part(paper, "grid").check(cfg[paper], where)


def load(config_path: str | Path, schema_path: str | Path, cli_overrides: dict | None = None) -> dict:
    raw = read_yaml(config_path)
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping of keys (scale, defaults, presets, ...), got "
                          f"{type(raw).__name__}. Start from a copy of config/config.yaml.")
    origin = Origin([(str(config_path), raw), ("--config", cli_overrides or {})])
    return resolve(deep_merge(raw, cli_overrides or {}), load_schema(schema_path), str(config_path), origin)
