"""Read template.yaml as SAM would deploy it: load its YAML, translate it to CloudFormation.

Local mode creates exactly what this returns, so it cannot drift from what deploys. The SAM
translator wants S3 URIs for code and definitions: local paths become `s3://local/<path>`
placeholders, which local mode maps back to the project's folders.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

LOCAL_URI = "s3://local/"
_URI_PROPS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
}


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short tags into their long form."""


def _construct(tag: str):
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.Loader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _tag in (
    "Ref",
    "GetAtt",
    "Sub",
    "Join",
    "Select",
    "Split",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "FindInMap",
    "Base64",
    "GetAZs",
    "ImportValue",
    "Condition",
):
    _CfnLoader.add_constructor(f"!{_tag}", _construct(_tag))


def load_template(path: Path) -> dict[str, Any]:
    """The template as a dict, short tags expanded (_CfnLoader is a SafeLoader subclass)."""
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # noqa: S506  # nosec B506


@dataclass(frozen=True)
class Translated:
    """The CloudFormation the SAM transform produces, and where each placeholder points."""

    resources: dict[str, dict[str, Any]]
    parameters: dict[str, Any]
    outputs: dict[str, Any]
    root: Path
    # the template's Conditions, evaluated against the parameters (for Fn::If and Condition)
    conditions: dict[str, bool] = field(default_factory=dict)


class _NoManagedPolicies:
    """The translator looks managed policies up in IAM only by name; we name none."""

    def load(self) -> dict[str, str]:
        return {}


def translate(
    template_path: Path,
    *,
    region: str,
    account_id: str,
    stack_name: str,
    parameter_overrides: dict[str, Any] | None = None,
) -> Translated:
    """Run the SAM transform on template.yaml, code and definition paths as placeholders."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    template = copy.deepcopy(load_template(template_path))
    for resource in template.get("Resources", {}).values():
        prop = _URI_PROPS.get(resource.get("Type", ""))
        props = resource.get("Properties", {})
        if prop and isinstance(props.get(prop), str) and not props[prop].startswith("s3://"):
            props[prop] = LOCAL_URI + props[prop].rstrip("/")
    parameters = {
        name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()
    }
    parameters.update(parameter_overrides or {})
    pseudo = {
        "AWS::Region": region,
        "AWS::AccountId": account_id,
        "AWS::StackName": stack_name,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
    }
    import logging

    logging.getLogger("samtranslator.feature_toggle").setLevel(logging.ERROR)
    translator = Translator(None, Parser(), boto_session=boto3.session.Session(region_name=region))
    output = translator.translate(
        template,
        parameter_values={**parameters, **pseudo},
        get_managed_policy_map=_NoManagedPolicies().load,
    )
    return Translated(
        resources=output["Resources"],
        parameters={**parameters, **pseudo},
        outputs=output.get("Outputs", {}),
        root=template_path.parent,
        conditions=evaluate_conditions(output.get("Conditions", {}), {**parameters, **pseudo}),
    )


def evaluate_conditions(conditions: dict[str, Any], parameters: dict[str, Any]) -> dict[str, bool]:
    """Each named condition's value (Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition and Ref
    of parameters: what a template's Conditions section may use)."""
    out: dict[str, bool] = {}

    def value(node: Any) -> Any:
        if not isinstance(node, dict) or len(node) != 1:
            return node
        ((key, arg),) = node.items()
        if key == "Ref":
            return parameters[arg]
        if key == "Condition":
            if arg not in out:
                out[arg] = bool(value(conditions[arg]))
            return out[arg]
        if key == "Fn::Equals":
            left, right = (str(value(a)) for a in arg)
            return left == right
        if key == "Fn::Not":
            return not value(arg[0])
        if key == "Fn::And":
            return all(value(a) for a in arg)
        if key == "Fn::Or":
            return any(value(a) for a in arg)
        raise ValueError(f"local mode cannot evaluate {key} in a condition")

    for name in conditions:
        value({"Condition": name})
    return out


def local_path(root: Path, uri: Any) -> Path | None:
    """Map a `s3://local/<path>` placeholder (or an S3Location dict) back to a project path."""
    if isinstance(uri, dict):
        bucket, key = uri.get("Bucket") or uri.get("S3Bucket"), uri.get("Key") or uri.get("S3Key")
        uri = f"s3://{bucket}/{key}"
    if isinstance(uri, str) and uri.startswith(LOCAL_URI):
        return root / uri[len(LOCAL_URI) :]
    return None
