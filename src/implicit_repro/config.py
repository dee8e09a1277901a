"""Resolve and validate the pipeline configuration.

``config/config.yaml`` holds ``defaults`` (the embedded ``small`` scale), one delta per preset under
``presets`` and an ``overrides`` delta applied last (handy from the command line:
``snakemake --config 'overrides={anil2022: {prefix_sums: {seeds: [0, 1]}}}'``). The resolved
experiment tree is validated against ``workflow/schemas/config.schema.yaml`` before any job starts.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

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


def _key_path(error: jsonschema.ValidationError) -> str:
    return ".".join(str(p) for p in error.absolute_path)


def _describe(error: jsonschema.ValidationError, where: str, root: dict) -> str | None:
    path = _key_path(error)
    if error.validator in ("additionalProperties", "unevaluatedProperties"):
        known = set(error.schema.get("properties", {}))
        for part in error.schema.get("allOf", []):
            known |= set(_resolve_ref(part, root).get("properties", {}))
        extra = sorted(set(error.instance) - known)
        if not extra:
            return None
        keys = ", ".join(f"`{'.'.join(filter(None, [path, k]))}`" for k in extra)
        allowed = ", ".join(sorted(known))
        return f"{where}: unknown key {keys}; allowed here: {allowed}. Remove or rename it."
    if error.validator == "required":
        return f"{where}: `{path or '<top level>'}` {error.message}. Add it."
    return f"{where}: key `{path}`: {error.message}. Fix that value."


def _resolve_ref(schema: dict, root: dict) -> dict:
    """The sub-schema a {"$ref": "#/$defs/x"} points to (only local refs are used here)."""
    ref = schema.get("$ref")
    if not ref:
        return schema
    node = root
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node


def _validate(instance: Any, schema: dict, where: str) -> None:
    validator = jsonschema.Draft202012Validator(schema)
    # The most specific error first. A failing allOf branch makes the properties it checked count
    # as "unevaluated": skip that echo when no key is really unknown.
    errors = sorted(validator.iter_errors(instance), key=lambda e: (-len(e.absolute_path), _key_path(e)))
    messages = [_describe(e, where, schema) for e in errors]
    messages = [m for m in messages if m is not None]
    if messages:
        raise ConfigError(messages[0])


def load_schema(path: str | Path) -> dict:
    with open(path) as fh:
        return yaml.safe_load(fh)


def resolve(raw: dict, schema: dict, source: str = "config/config.yaml") -> dict:
    """Validate the raw file, merge defaults <- presets[scale] <- overrides, validate the result.

    Returns the experiment tree plus ``scale``."""
    _validate(raw, {k: v for k, v in schema.items() if k != "$defs"}, source)
    scale = raw["scale"]
    merged = deep_merge(raw["defaults"], raw["presets"].get(scale) or {})
    merged = deep_merge(merged, _coerce_cli_strings(raw.get("overrides") or {}))
    experiment_schema = {"$defs": schema["$defs"], "$ref": "#/$defs/experiment"}
    _validate(merged, experiment_schema, f"{source} (scale '{scale}', after presets and overrides)")
    _check_cross_field(merged, source, scale)
    return {"scale": scale, **merged}


def _check_cross_field(cfg: dict, source: str, scale: str) -> None:
    """Constraints a JSON schema cannot express: each paper's grid checks its own section."""
    from implicit_repro.papers import known, part

    where = f"{source} (scale '{scale}')"
    for paper in known():
        if paper in cfg:
            part(paper, "grid").check(cfg[paper], where)


def load(config_path: str | Path, schema_path: str | Path, cli_overrides: dict | None = None) -> dict:
    with open(config_path) as fh:
        raw = yaml.safe_load(fh)
    return resolve(deep_merge(raw, cli_overrides or {}), load_schema(schema_path), str(config_path))
