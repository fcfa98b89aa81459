"""The rules kube-apiserver applies to a CustomResourceDefinition's schemas, where they can be checked offline.

Written after apiextensions-apiserver (apiextensions.k8s.io/v1 validation): the schema must be
structural (pkg/apiserver/schema/validation.go), must use only the OpenAPI subset CRDs allow
(pkg/apis/apiextensions/validation/validation.go), and every `default` must be valid against its
own node and survive pruning (pkg/apiserver/schema/defaulting/validation.go). Errors read like the
API server's own: `spec.versions[0].schema.openAPIV3Schema.properties[spec]...: Required value: ...`.

Not checked here (they need the API server's CEL environment): compiling x-kubernetes-validations
rules and their cost estimates. Regular expressions are compiled with Python's `re` and refused when
they use constructs RE2 (Go) does not support (lookaround, backreferences).
"""

from __future__ import annotations

import copy
import re
from typing import Any, Iterator

import jsonschema

Schema = dict[str, Any]

OPENAPI_TYPES = {"string", "number", "integer", "boolean", "array", "object"}
JUNCTORS = ("allOf", "anyOf", "oneOf")
META_FIELDS = {"metadata", "kind", "apiVersion"}
# JSON names of the fields apiextensions allows at the root when the status subresource is on.
ROOT_FIELDS_WITH_STATUS = {
    "description", "type", "format", "title", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum",
    "maxLength", "minLength", "pattern", "maxItems", "minItems", "uniqueItems", "multipleOf", "required",
    "items", "properties", "externalDocs", "example", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-validations",
}
UNSUPPORTED = {
    "id": "id is not supported",
    "additionalItems": "additionalItems is not supported",
    "patternProperties": "patternProperties is not supported",
    "definitions": "definitions is not supported",
    "dependencies": "dependencies is not supported",
    "$ref": "$ref is not supported",
}
# What a schema under allOf/anyOf/oneOf/not may not say (structural schemas keep these outside).
NESTED_FORBIDDEN = {
    "type": "must be empty to be structural",
    "additionalProperties": "must be undefined to be structural",
    "default": "must be undefined to be structural",
    "title": "must be empty to be structural",
    "description": "must be empty to be structural",
    "nullable": "must be false to be structural",
    "x-kubernetes-preserve-unknown-fields": "must be false to be structural",
    "x-kubernetes-embedded-resource": "must be false to be structural",
    "x-kubernetes-int-or-string": "must be false to be structural",
    "x-kubernetes-list-map-keys": "must be empty to be structural",
    "x-kubernetes-list-type": "must be undefined to be structural",
    "x-kubernetes-map-type": "must be undefined to be structural",
    "x-kubernetes-validations": "must be empty to be structural",
}
# Keys of a root `metadata` schema that are not a restriction of name/generateName.
RE2_UNSUPPORTED = re.compile(r"\(\?[=!]|\(\?<[=!]|\\[1-9]")

INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def prop(path: str, key: str) -> str:
    return f"{path}.properties[{key}]"


def check_crd(crd: dict[str, Any]) -> list[str]:
    """Every rule violation in the CRD's version schemas, as API-server-like field errors."""
    errors: list[str] = []
    versions = (crd.get("spec") or {}).get("versions") or []
    if not versions:
        errors.append("spec.versions: Required value: at least one version")
    for i, version in enumerate(versions):
        path = f"spec.versions[{i}].schema.openAPIV3Schema"
        schema = ((version or {}).get("schema") or {}).get("openAPIV3Schema")
        if not isinstance(schema, dict):
            errors.append(f"{path}: Required value: schemas are required (apiextensions.k8s.io/v1)")
            continue
        status_on = isinstance((version.get("subresources") or {}).get("status"), dict)
        errors += check_schema(schema, path, status_subresource=status_on)
    return errors


def check_schema(schema: Schema, path: str, status_subresource: bool = True) -> list[str]:
    """The structural, OpenAPI-subset and defaulting rules for one openAPIV3Schema."""
    errors: list[str] = []
    if status_subresource:
        if schema.get("type", "object") != "object":
            errors.append(f"{path}.type: Invalid value: {schema.get('type')!r}: only \"object\" is allowed as the type "
                          "at the root of the schema if the status subresource is enabled")
        extra = sorted(k for k, v in schema.items() if k not in ROOT_FIELDS_WITH_STATUS and v not in (None, False, "", [], {}))
        if extra:
            errors.append(f"{path}: Invalid value: {extra}: only {sorted(ROOT_FIELDS_WITH_STATUS)} are allowed at the "
                          "root of the schema if the status subresource is enabled")
    if schema.get("nullable"):
        errors.append(f"{path}.nullable: Forbidden: nullable cannot be true at the root")
    errors += list(openapi_errors(schema, path, is_root=True, inside_meta=False, defaults_forbidden=None))
    errors += list(structural_errors(schema, path, level="root"))
    errors += list(completeness_errors(schema, path))
    errors += list(default_errors(schema, path))
    return errors


# ----------------------------------------------------------------------------- the OpenAPI subset


def openapi_errors(s: Any, path: str, *, is_root: bool, inside_meta: bool, defaults_forbidden: str | None) -> Iterator[str]:
    if not isinstance(s, dict):
        yield f"{path}: Invalid value: {type(s).__name__}: must be a schema object"
        return
    t = s.get("type")
    if t is not None and not isinstance(t, str):
        yield f"{path}.type: Invalid value: {t!r}: must be one string (use nullable for null)"
    elif t == "null":
        yield f"{path}.type: Forbidden: type cannot be set to null, use nullable as an alternative"
    elif t and t not in OPENAPI_TYPES:
        yield f"{path}.type: Unsupported value: {t!r}: supported values: {sorted(OPENAPI_TYPES)}"
    if "default" in s and defaults_forbidden:
        yield f"{path}.default: Forbidden: must not be set {defaults_forbidden}"
    for key, why in UNSUPPORTED.items():
        if key in s:
            yield f"{path}.{key}: Forbidden: {why}"
    if isinstance(s.get("items"), list):
        yield f"{path}.items: Forbidden: items must be a schema object and not an array"
    if inside_meta and s.get("x-kubernetes-embedded-resource"):
        yield f"{path}.x-kubernetes-embedded-resource: Forbidden: must not be used inside of resource meta"
    if s.get("uniqueItems"):
        yield f"{path}.uniqueItems: Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"
    additional = s.get("additionalProperties")
    if additional is not None and s.get("properties") and additional is not True:
        yield f"{path}.additionalProperties: Forbidden: additionalProperties and properties are mutual exclusive"
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        yield f"{path}.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined"
    yield from list_map_errors(s, path)
    pattern = s.get("pattern")
    if isinstance(pattern, str):
        try:
            re.compile(pattern)
            if RE2_UNSUPPORTED.search(pattern):
                raise re.error("lookaround and backreferences are not RE2")
        except re.error as err:
            yield f"{path}.pattern: Invalid value: {pattern!r}: must be a valid regular expression, but isn't: {err}"

    if isinstance(additional, dict):
        sub_forbidden = "inside additionalProperties applying to object metadata" if inside_meta else defaults_forbidden
        yield from openapi_errors(additional, f"{path}.additionalProperties", is_root=False, inside_meta=inside_meta,
                                  defaults_forbidden=sub_forbidden)
    for key, sub in (s.get("properties") or {}).items():
        sub_meta, sub_forbidden = inside_meta, defaults_forbidden
        if (is_root or s.get("x-kubernetes-embedded-resource")) and key in META_FIELDS:
            sub_meta = True
            if is_root:
                sub_forbidden = f"in top-level {key}"
        yield from openapi_errors(sub, prop(path, key), is_root=False, inside_meta=sub_meta, defaults_forbidden=sub_forbidden)
    if isinstance(s.get("not"), dict):
        yield from openapi_errors(s["not"], f"{path}.not", is_root=False, inside_meta=inside_meta, defaults_forbidden=defaults_forbidden)
    for junctor in JUNCTORS:
        for i, sub in enumerate(s.get(junctor) or []):
            yield from openapi_errors(sub, f"{path}.{junctor}[{i}]", is_root=False, inside_meta=inside_meta,
                                      defaults_forbidden=defaults_forbidden)
    if isinstance(s.get("items"), dict):
        yield from openapi_errors(s["items"], f"{path}.items", is_root=False, inside_meta=inside_meta,
                                  defaults_forbidden=defaults_forbidden)


def list_map_errors(s: Schema, path: str) -> Iterator[str]:
    t = s.get("type")
    map_type = s.get("x-kubernetes-map-type")
    if map_type is not None:
        if t != "object":
            yield f"{path}.type: Required value: must be object if x-kubernetes-map-type is specified"
        if map_type not in ("atomic", "granular"):
            yield f"{path}.x-kubernetes-map-type: Unsupported value: {map_type!r}: supported values: atomic, granular"
    list_type = s.get("x-kubernetes-list-type")
    if list_type is not None:
        if t != "array":
            yield f"{path}.type: Required value: must be array if x-kubernetes-list-type is specified"
        if list_type not in ("atomic", "set", "map"):
            yield f"{path}.x-kubernetes-list-type: Unsupported value: {list_type!r}: supported values: atomic, set, map"
    keys = s.get("x-kubernetes-list-map-keys") or []
    if keys and list_type != "map":
        yield f"{path}.x-kubernetes-list-type: Required value: must be map if x-kubernetes-list-map-keys is non-empty"
    items = s.get("items") if isinstance(s.get("items"), dict) else None
    if list_type == "map":
        if not keys:
            yield f"{path}.x-kubernetes-list-map-keys: Required value: must not be empty if x-kubernetes-list-type is map"
        if items is None:
            yield f"{path}.items: Required value: must have a schema if x-kubernetes-list-type is map"
        elif items.get("type") != "object":
            yield f"{path}.items.type: Invalid value: {items.get('type')!r}: must be object if parent array's x-kubernetes-list-type is map"
        else:
            required = set(items.get("required") or [])
            for key in keys:
                sub = (items.get("properties") or {}).get(key)
                if sub is None:
                    yield f"{path}.x-kubernetes-list-map-keys: Invalid value: {keys}: entries must all be names of item properties"
                    continue
                if sub.get("type") in ("array", "object"):
                    yield f"{prop(path + '.items', key)}.type: Invalid value: must be a scalar type if parent array's x-kubernetes-list-type is map"
                if key not in required and "default" not in sub:
                    yield (f"{prop(path + '.items', key)}.default: Required value: this property is in "
                           "x-kubernetes-list-map-keys, so it must have a default or be a required property")
                if sub.get("nullable"):
                    yield f"{prop(path + '.items', key)}.nullable: Forbidden: this property is in x-kubernetes-list-map-keys, so it cannot be nullable"
    if list_type in ("set", "map") and items is not None and items.get("nullable"):
        yield f"{path}.items.nullable: Forbidden: cannot be nullable when x-kubernetes-list-type is {list_type}"
    if list_type == "set" and items is not None:
        if items.get("type") == "object" and items.get("x-kubernetes-map-type") != "atomic":
            yield f"{path}.items.x-kubernetes-map-type: Invalid value: must be atomic as item of a list with x-kubernetes-list-type=set"
        if items.get("type") == "array" and items.get("x-kubernetes-list-type", "atomic") != "atomic":
            yield f"{path}.items.x-kubernetes-list-type: Invalid value: must be atomic as item of a list with x-kubernetes-list-type=set"


# ----------------------------------------------------------------------------- structural schema


def structural_errors(s: Any, path: str, level: str) -> Iterator[str]:
    """level: root, item or field (the three levels of apiextensions' validateStructuralInvariants)."""
    if not isinstance(s, dict):
        return
    t = s.get("type") or ""
    int_or_string = bool(s.get("x-kubernetes-int-or-string"))
    preserve = bool(s.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(s.get("x-kubernetes-embedded-resource"))

    if t == "array" and "items" not in s:
        yield f"{path}.items: Required value: must be specified"
    if isinstance(s.get("items"), dict):
        yield from structural_errors(s["items"], f"{path}.items", "item")
    for key, sub in (s.get("properties") or {}).items():
        yield from structural_errors(sub, prop(path, key), "field")
    additional = s.get("additionalProperties")
    if additional is not None and additional is not False:
        if level == "root":
            yield f"{path}.additionalProperties: Forbidden: must not be used at the root"
        if isinstance(additional, dict):
            yield from structural_errors(additional, f"{path}.additionalProperties", "field")

    if int_or_string and preserve:
        yield f"{path}.x-kubernetes-preserve-unknown-fields: Invalid value: true: must be false if x-kubernetes-int-or-string is true"
    if int_or_string and embedded:
        yield f"{path}.x-kubernetes-embedded-resource: Invalid value: true: must be false if x-kubernetes-int-or-string is true"

    skip_any_of = s.get("anyOf") == INT_OR_STRING
    all_of = s.get("allOf") or []
    skip_first_all_of_any_of = bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == INT_OR_STRING
    yield from value_validation_errors(s, path, skip_any_of, skip_first_all_of_any_of)

    if embedded and t != "object":
        yield f"{path}.type: Required value: must be object if x-kubernetes-embedded-resource is true"
    elif not t and not int_or_string and not preserve:
        where = {"root": "at the root", "item": "for specified array items", "field": "for specified object fields"}[level]
        yield f"{path}.type: Required value: must not be empty {where}"
    if embedded and additional is not None:
        yield f"{path}.additionalProperties: Forbidden: must not be used if x-kubernetes-embedded-resource is set"
    if level == "root" and t and t != "object":
        yield f"{path}.type: Invalid value: {t!r}: must be object at the root"

    check_metadata = level == "root" or embedded
    props = s.get("properties") or {}
    for key in ("kind", "apiVersion"):
        if key in props and check_metadata and (props[key] or {}).get("type") != "string":
            yield f"{prop(path, key)}.type: Invalid value: {(props[key] or {}).get('type')!r}: must be string"
    if "metadata" in props:
        yield from metadata_errors(props["metadata"] or {}, prop(path, "metadata"), check_metadata, level)
    if embedded and not preserve and not props:
        yield (f"{path}.properties: Required value: must not be empty if x-kubernetes-embedded-resource is true "
               "without x-kubernetes-preserve-unknown-fields")


def metadata_errors(m: Schema, path: str, check_metadata: bool, level: str) -> Iterator[str]:
    """`metadata` is the API server's: an object, and at the root only name/generateName may be restricted."""
    if check_metadata and m.get("type") != "object":
        yield f"{path}.type: Invalid value: {m.get('type')!r}: must be object"
    if level != "root":
        return
    rest = {k: v for k, v in m.items() if k not in ("type", "default")}
    props = rest.pop("properties", None) or {}
    if set(props) - {"name", "generateName"}:
        rest["properties"] = props
    if rest:
        yield (f"{path}: Forbidden: must not specify anything other than name and generateName, but metadata is "
               f"implicitly specified (found {sorted(rest)})")


def value_validation_errors(s: Schema, path: str, skip_any_of: bool, skip_first_all_of_any_of: bool) -> Iterator[str]:
    """The logical junctors of a structural node: value validation only, never structure."""
    if not skip_any_of:
        for i, sub in enumerate(s.get("anyOf") or []):
            yield from nested_errors(sub, f"{path}.anyOf[{i}]", skip_any_of=False)
    for i, sub in enumerate(s.get("allOf") or []):
        yield from nested_errors(sub, f"{path}.allOf[{i}]", skip_any_of=skip_first_all_of_any_of and i == 0)
    for i, sub in enumerate(s.get("oneOf") or []):
        yield from nested_errors(sub, f"{path}.oneOf[{i}]", skip_any_of=False)
    if isinstance(s.get("not"), dict):
        yield from nested_errors(s["not"], f"{path}.not", skip_any_of=False)


def nested_errors(v: Any, path: str, skip_any_of: bool) -> Iterator[str]:
    if not isinstance(v, dict):
        return
    yield from value_validation_errors(v, path, skip_any_of, False)
    if isinstance(v.get("items"), dict):
        yield from nested_errors(v["items"], f"{path}.items", False)
    for key, sub in (v.get("properties") or {}).items():
        yield from nested_errors(sub, prop(path, key), False)
    if isinstance(v.get("additionalProperties"), dict):
        yield from nested_errors(v["additionalProperties"], f"{path}.additionalProperties", False)
    for key, why in NESTED_FORBIDDEN.items():
        if key in v and v[key] not in (None, False, "", []):
            yield f"{path}.{key}: Forbidden: {why}"
    if "metadata" in (v.get("properties") or {}):
        yield f"{prop(path, 'metadata')}: Forbidden: must not be specified in a nested context"


def completeness_errors(s: Any, path: str) -> Iterator[str]:
    """Every field or item named inside allOf/anyOf/oneOf/not is also specified outside of them."""
    if not isinstance(s, dict):
        return
    for junctor in JUNCTORS:
        for i, sub in enumerate(s.get(junctor) or []):
            yield from nested_completeness(s, sub, f"{path}.{junctor}[{i}]")
    if isinstance(s.get("not"), dict):
        yield from nested_completeness(s, s["not"], f"{path}.not")
    if isinstance(s.get("items"), dict):
        yield from completeness_errors(s["items"], f"{path}.items")
    for key, sub in (s.get("properties") or {}).items():
        yield from completeness_errors(sub, prop(path, key))
    if isinstance(s.get("additionalProperties"), dict):
        yield from completeness_errors(s["additionalProperties"], f"{path}.additionalProperties")


def nested_completeness(s: Schema, v: Any, path: str) -> Iterator[str]:
    if not isinstance(v, dict):
        return
    if isinstance(v.get("items"), dict):
        if not isinstance(s.get("items"), dict):
            yield f"{path}.items: Required value: must be specified in the structural part"
        else:
            yield from nested_completeness(s["items"], v["items"], f"{path}.items")
    for key, sub in (v.get("properties") or {}).items():
        outer = (s.get("properties") or {}).get(key)
        if outer is None:
            yield f"{prop(path, key)}: Required value: must be specified in the structural part"
        else:
            yield from nested_completeness(outer, sub, prop(path, key))
    for junctor in JUNCTORS:
        for i, sub in enumerate(v.get(junctor) or []):
            yield from nested_completeness(s, sub, f"{path}.{junctor}[{i}]")
    if isinstance(v.get("not"), dict):
        yield from nested_completeness(s, v["not"], f"{path}.not")


# ----------------------------------------------------------------------------- defaults


def default_errors(s: Any, path: str) -> Iterator[str]:
    """Each `default` validates against its own node, and pruning would not change it."""
    if not isinstance(s, dict):
        return
    if "default" in s:
        value = s["default"]
        validator = value_validator(s)
        for err in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
            yield f"{path}.default{where}: Invalid value: {json_short(err.instance)}: {err.message}"
        pruned = prune(copy.deepcopy(value), s)
        if pruned != value:
            yield f"{path}.default: Invalid value: {json_short(value)}: must not have unknown fields (pruned to {json_short(pruned)})"
    if isinstance(s.get("items"), dict):
        yield from default_errors(s["items"], f"{path}.items")
    for key, sub in (s.get("properties") or {}).items():
        yield from default_errors(sub, prop(path, key))
    if isinstance(s.get("additionalProperties"), dict):
        yield from default_errors(s["additionalProperties"], f"{path}.additionalProperties")


def json_short(value: Any) -> str:
    import json

    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def prune(value: Any, s: Schema) -> Any:
    """What the API server keeps of `value` under schema `s` (unknown fields dropped)."""
    if isinstance(value, dict) and s.get("type") == "object" or (isinstance(value, dict) and "properties" in s):
        props = s.get("properties") or {}
        additional = s.get("additionalProperties")
        out = {}
        for key, item in value.items():
            if key in props:
                out[key] = prune(item, props[key])
            elif isinstance(additional, dict):
                out[key] = prune(item, additional)
            elif additional is True or s.get("x-kubernetes-preserve-unknown-fields"):
                out[key] = item
        return out
    if isinstance(value, list) and isinstance(s.get("items"), dict):
        return [prune(item, s["items"]) for item in value]
    return value


def to_jsonschema(s: Any) -> Any:
    """An OpenAPI v3 (CRD subset) node as JSON Schema 2020-12 for validating a value against it."""
    if not isinstance(s, dict):
        return s
    out: dict[str, Any] = {}
    nullable = bool(s.get("nullable"))
    if s.get("x-kubernetes-int-or-string"):
        out["type"] = ["integer", "string"] + (["null"] if nullable else [])
    elif s.get("type"):
        out["type"] = [s["type"], "null"] if nullable else s["type"]
    for key in ("maxLength", "minLength", "pattern", "maxItems", "minItems", "multipleOf", "required",
                "maxProperties", "minProperties", "format"):
        if key in s:
            out[key] = s[key]
    if "enum" in s:
        out["enum"] = list(s["enum"]) + ([None] if nullable and None not in s["enum"] else [])
    for bound, exclusive in (("maximum", "exclusiveMaximum"), ("minimum", "exclusiveMinimum")):
        if bound in s:
            out[exclusive if s.get(exclusive) else bound] = s[bound]
    if "properties" in s:
        out["properties"] = {k: to_jsonschema(v) for k, v in s["properties"].items()}
    if isinstance(s.get("additionalProperties"), dict):
        out["additionalProperties"] = to_jsonschema(s["additionalProperties"])
    if isinstance(s.get("items"), dict):
        out["items"] = to_jsonschema(s["items"])
    for junctor in JUNCTORS:
        if junctor in s:
            out[junctor] = [to_jsonschema(v) for v in s[junctor]]
    if isinstance(s.get("not"), dict):
        out["not"] = to_jsonschema(s["not"])
    return out


FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("int32")
def _int32(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**31) <= value < 2**31


@FORMATS.checks("int64")
def _int64(value: object) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or -(2**63) <= value < 2**63


def value_validator(s: Schema) -> jsonschema.protocols.Validator:
    """A validator for values under OpenAPI node `s` (what the API server checks a stored value against)."""
    return jsonschema.Draft202012Validator(to_jsonschema(s), format_checker=FORMATS)


def object_errors(obj: dict[str, Any], crd: dict[str, Any], version: str) -> list[str]:
    """Validate a custom object (e.g. a Cluster) against version `version` of the CRD, metadata aside."""
    for v in (crd.get("spec") or {}).get("versions") or []:
        if v.get("name") == version:
            schema = copy.deepcopy(v["schema"]["openAPIV3Schema"])
            break
    else:
        return [f"the CRD serves no version {version}"]
    schema.setdefault("properties", {})
    for key in META_FIELDS:
        schema["properties"].pop(key, None)
    body = {k: v for k, v in obj.items() if k not in META_FIELDS}
    errors = []
    for err in value_validator(schema).iter_errors(body):
        where = ".".join(str(p) for p in err.absolute_path)
        errors.append(f"{where or '(root)'}: {err.message}")
    pruned = prune(copy.deepcopy(body), schema)
    if pruned != body:
        errors.append(f"unknown fields would be pruned by the API server: {json_short(body)} -> {json_short(pruned)}")
    return errors
