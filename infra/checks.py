"""Checks on template.yaml, as functions that return findings, so a test can also prove that a
deliberately broken template is caught."""

from __future__ import annotations

import ast
import copy
import os
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
}


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


def _statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::Policy":
            documents = [properties["PolicyDocument"]]
        else:
            continue
        for document in documents:
            found.extend((name, statement) for statement in document["Statement"])
    return found


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def iam_findings(cloudformation: dict[str, Any]) -> list[str]:
    """Every way the function's inline permissions exceed least privilege."""
    findings = []
    granted = set()
    for name, statement in _statements(cloudformation["Resources"]):
        if statement.get("Effect") != "Allow":
            continue
        resources = _as_list(statement.get("Resource"))
        for action in _as_list(statement.get("Action")):
            granted.add(action)
            if "*" in action:
                findings.append(f"{name}: wildcard action {action}")
            if action not in LEAST_PRIVILEGE:
                findings.append(f"{name}: unexpected action {action}")
                continue
            for resource in resources:
                if resource == "*" or (isinstance(resource, str) and resource.endswith(":*")):
                    findings.append(f"{name}: {action} on a wildcard resource")
                elif resource != LEAST_PRIVILEGE[action]:
                    findings.append(f"{name}: {action} on {resource}, expected {LEAST_PRIVILEGE[action]}")
    missing = set(LEAST_PRIVILEGE) - granted
    findings.extend(f"missing permission {action}" for action in sorted(missing))
    return findings


def env_vars_read_by_the_code() -> set[str]:
    """Every variable name handler/config.py reads (the one place configuration is read).

    AWS_* names are set by the Lambda platform itself.
    """
    tree = ast.parse((ROOT / "handler" / "config.py").read_text(encoding="utf-8"))
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
