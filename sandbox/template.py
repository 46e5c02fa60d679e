"""Load a SAM template and expand it to plain CloudFormation with the SAM translator, offline."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from samcli.yamlhelper import yaml_parse
from samtranslator.parser.parser import Parser
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.translator import Translator

from sandbox.intrinsics import TemplateError

SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"

# The SAM translator accepts only S3 URIs for code, so local paths are swapped for this
# placeholder bucket. The object key is the SAM logical id, which maps the expanded resource
# back to its local directory.
_PLACEHOLDER_CODE_BUCKET = "sandbox-local-code"

_LOCAL_URI_PROPERTIES = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


@dataclass(frozen=True)
class ExpandedTemplate:
    """A template after the SAM transform, with the local directories its code comes from."""

    cloudformation: dict[str, Any]
    code_dirs: dict[str, Path]
    """SAM logical id of each function and layer -> local directory named by CodeUri/ContentUri."""


def read_template(path: Path) -> dict[str, Any]:
    """Parse a YAML or JSON template, turning short-form tags (!Ref, !Sub, ...) into long form."""
    try:
        document = yaml_parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TemplateError(f"cannot read template {path}: {exc.strerror}") from exc
    if not isinstance(document, Mapping) or "Resources" not in document:
        raise TemplateError(f"template {path} has no Resources section")
    return _plain(document)


def expand_template(
    document: Mapping[str, Any],
    *,
    base_dir: Path,
    parameter_values: Mapping[str, Any],
    region: str,
) -> ExpandedTemplate:
    """Run the SAM transform on ``document`` without AWS calls; plain CloudFormation passes through."""
    sam_template = copy.deepcopy(dict(document))
    code_dirs = _replace_local_uris(sam_template, base_dir)

    transforms = sam_template.get("Transform", [])
    if isinstance(transforms, str):
        transforms = [transforms]
    if SERVERLESS_TRANSFORM not in transforms:
        return ExpandedTemplate(cloudformation=sam_template, code_dirs=code_dirs)

    # The bundled managed policy map of the translator names every AWS managed policy, so the
    # empty fallback map means no IAM call is ever made.
    translator = Translator(
        managed_policy_map={},
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name=region),
    )
    try:
        cloudformation = translator.translate(
            sam_template=sam_template,
            parameter_values=dict(parameter_values),
            get_managed_policy_map=dict,
        )
    except InvalidDocumentException as exc:
        causes = "; ".join(str(cause) for cause in exc.causes)
        raise TemplateError(f"the SAM translator rejected the template: {causes}") from exc

    return ExpandedTemplate(cloudformation=_plain(cloudformation), code_dirs=code_dirs)


def code_key(code_property: Any) -> str | None:
    """Return the SAM logical id stored in the placeholder S3 location of expanded Code/Content."""
    if isinstance(code_property, Mapping) and code_property.get("S3Bucket") == _PLACEHOLDER_CODE_BUCKET:
        key = code_property.get("S3Key")
        return key if isinstance(key, str) else None
    return None


def _replace_local_uris(sam_template: dict[str, Any], base_dir: Path) -> dict[str, Path]:
    code_dirs: dict[str, Path] = {}
    globals_function = sam_template.get("Globals", {}).get("Function", {})
    global_code_uri = globals_function.get("CodeUri")

    for logical_id, resource in sam_template.get("Resources", {}).items():
        if not isinstance(resource, Mapping):
            continue
        uri_property = _LOCAL_URI_PROPERTIES.get(resource.get("Type", ""))
        if uri_property is None:
            continue
        properties = resource.setdefault("Properties", {})
        if properties.get("PackageType", "Zip") != "Zip" or "InlineCode" in properties:
            continue

        local_uri = properties.get(uri_property, global_code_uri if uri_property == "CodeUri" else None)
        if isinstance(local_uri, str) and not local_uri.startswith("s3://"):
            code_dirs[logical_id] = (base_dir / local_uri).resolve()
            properties[uri_property] = f"s3://{_PLACEHOLDER_CODE_BUCKET}/{logical_id}"

    if isinstance(global_code_uri, str) and not global_code_uri.startswith("s3://"):
        globals_function["CodeUri"] = f"s3://{_PLACEHOLDER_CODE_BUCKET}/Globals"
    return code_dirs


def _plain(node: Any) -> Any:
    """Convert the ordered and py27-compatible containers of the YAML loader to plain ones."""
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    return node
