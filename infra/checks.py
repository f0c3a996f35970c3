"""Checks on template.yaml, as functions that return findings, so a test can also prove that a
deliberately broken template is caught."""

from __future__ import annotations

import ast
import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
FUNCTION = "WebhookFunction"

# Each action the function needs, and the one resource it may have.
LEAST_PRIVILEGE = {
    "ssm:GetParameter": {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${WebhookSecretParameterName}"
    },
    "events:PutEvents": {"Fn::GetAtt": ["WebhookBus", "Arn"]},
    "dynamodb:GetItem": {"Fn::GetAtt": ["DeliveriesTable", "Arn"]},
    "dynamodb:PutItem": {"Fn::GetAtt": ["DeliveriesTable", "Arn"]},
    "dynamodb:UpdateItem": {"Fn::GetAtt": ["DeliveriesTable", "Arn"]},
    "dynamodb:DeleteItem": {"Fn::GetAtt": ["DeliveriesTable", "Arn"]},
    "s3:PutObject": {"Fn::Sub": "${ArchiveBucket.Arn}/*"},
    "kms:Decrypt": {"Ref": "SecretKmsKeyArn"},
    # The log group's Arn attribute ends in ":*", which covers its log streams.
    "logs:CreateLogStream": {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]},
    "logs:PutLogEvents": {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]},
    "xray:PutTraceSegments": "*",
    "xray:PutTelemetryRecords": "*",
}

# The only actions allowed on Resource "*": actions that support no resource-level permissions
# (the Service Authorization Reference lists no resource type for them), so "*" is all IAM accepts.
NO_RESOURCE_LEVEL_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",  # X-Ray: sending trace segments names no resource
        "xray:PutTelemetryRecords",  # X-Ray: sending daemon telemetry names no resource
    }
)

# IAM resources that hold a policy document of their own.
_POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
# IAM resources to which managed policies can be attached by ARN.
_PRINCIPAL_TYPES = ("AWS::IAM::Role", "AWS::IAM::User", "AWS::IAM::Group")


def load_template() -> dict[str, Any]:
    return yaml_parse(TEMPLATE.read_text(encoding="utf-8"))


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def transformed(template: dict[str, Any]) -> dict[str, Any]:
    """The CloudFormation that SAM makes of ``template`` (as `sam package` would, CodeUri is an S3 URI)."""
    document = copy.deepcopy(template)
    document["Resources"][FUNCTION]["Properties"]["CodeUri"] = "s3://artifacts/webhook.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(document, {}, _NoManagedPolicies())


def inline_statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every inline statement: a role's (or user's, group's) Policies, and each policy resource's."""
    found = []
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] in _PRINCIPAL_TYPES:
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] in _POLICY_TYPES:
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for document in documents:
            found.extend((name, statement) for statement in as_list(document["Statement"]))
    return found


def _managed_policies(
    resources: dict[str, Any], allowed: Mapping[str, dict[str, Any]]
) -> tuple[list[str], list[tuple[str, dict[str, Any]]]]:
    """Findings for managed policies attached by ARN that are not on ``allowed``, and the statements
    of those that are (as written in ``allowed``, so that they are checked like inline ones)."""
    findings = []
    statements = []
    for name, resource in resources.items():
        if resource["Type"] not in _PRINCIPAL_TYPES:
            continue
        for arn in as_list(resource.get("Properties", {}).get("ManagedPolicyArns", [])):
            if isinstance(arn, str) and arn in allowed:
                document = allowed[arn]
                statements.extend((f"{name} ({arn})", statement) for statement in as_list(document["Statement"]))
            else:
                shown = arn if isinstance(arn, str) else json.dumps(arn, sort_keys=True)
                findings.append(f"{name}: managed policy {shown} is not on the allow-list")
    return findings, statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_wildcard(resource: Any) -> bool:
    return resource == "*" or (isinstance(resource, str) and resource.endswith(":*"))


def iam_findings(
    cloudformation: dict[str, Any], allowed_managed_policies: Mapping[str, dict[str, Any]] | None = None
) -> list[str]:
    """Every way the template's permissions exceed least privilege.

    Inline statements (roles, policy resources) are checked action by action against
    LEAST_PRIVILEGE. Any managed policy attached by ARN is a finding unless it is in
    ``allowed_managed_policies`` (ARN -> its policy document, written out by the caller), whose
    statements are then checked like inline ones. A wildcard resource is a finding unless the
    action is in NO_RESOURCE_LEVEL_ACTIONS.
    """
    resources = cloudformation["Resources"]
    findings, managed = _managed_policies(resources, allowed_managed_policies or {})
    granted = set()
    for name, statement in inline_statements(resources) + managed:
        if statement.get("Effect") != "Allow":
            continue
        for key in ("NotAction", "NotResource"):
            if key in statement:
                findings.append(f"{name}: an Allow with {key} grants everything not listed")
        resources_named = as_list(statement.get("Resource", []))
        for action in as_list(statement.get("Action", [])):
            granted.add(action)
            if "*" in action:
                findings.append(f"{name}: wildcard action {action}")
            expected = LEAST_PRIVILEGE.get(action)
            if expected is None:
                findings.append(f"{name}: unexpected action {action}")
            for resource in resources_named:
                if _is_wildcard(resource):
                    if action not in NO_RESOURCE_LEVEL_ACTIONS:
                        findings.append(f"{name}: {action} on a wildcard resource")
                elif expected is not None and resource != expected:
                    findings.append(f"{name}: {action} on {resource}, expected {expected}")
    missing = set(LEAST_PRIVILEGE) - granted
    findings.extend(f"missing permission {action}" for action in sorted(missing))
    return findings


def env_vars_read_by_the_code() -> set[str]:
    """Every variable name handler/core/settings.py reads (the one place configuration is read).

    AWS_* names are set by the Lambda platform itself.
    """
    tree = ast.parse((ROOT / "handler" / "core" / "settings.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if value.isupper() and value.replace("_", "").isalnum() and "_" in value and not value.startswith("AWS_"):
                names.add(value)
    return names | {"POWERTOOLS_LOG_LEVEL"}


def env_findings(template: dict[str, Any]) -> list[str]:
    variables = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    return [
        f"{name} is read by the code but not set by the template"
        for name in sorted(env_vars_read_by_the_code() - set(variables))
    ]
