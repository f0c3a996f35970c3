"""Checks on template.yaml, as functions that return findings, so a test can also prove that a
deliberately broken template is caught.

The template has optional parts (``Condition:`` on resources, ``!If`` in properties), so the
permission checks run on the stack CloudFormation would create for given parameter values
(:func:`deployed`): the tests check it with the defaults and with every option switched on.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
SETTINGS = ROOT / "handler" / "core" / "settings.py"
# Where the key prefixes of the items each function keeps in the shared table are defined.
STATE_KEYS_SOURCE = ROOT / "handler" / "aws" / "redelivery_state.py"
DEDUP_KEYS_SOURCE = ROOT / "handler" / "aws" / "idempotency.py"
FUNCTION = "WebhookFunction"
REDELIVERY_FUNCTION = "RedeliveryFunction"
# Each function, and the classes of handler/core/settings.py whose from_env reads its configuration.
FUNCTIONS: dict[str, tuple[str, ...]] = {
    FUNCTION: ("Settings", "TelemetrySettings"),
    REDELIVERY_FUNCTION: ("RedeliverySettings", "TelemetrySettings"),
}
# Read by Powertools itself (not by settings.py), and set by the template for every function.
READ_BY_POWERTOOLS = frozenset({"POWERTOOLS_LOG_LEVEL"})
# The receiver's pipeline settings (read by Settings.from_env), which the redelivery function also gets,
# with the receiver's values, in pull mode (RedeliveryMode=pull) only.
PIPELINE_VARIABLES = (
    "EVENT_BUS_NAME",
    "ARCHIVE_BUCKET",
    "PAYLOAD_BUCKET",
    "IDEMPOTENCY_TABLE",
    "IDEMPOTENCY_TTL_SECONDS",
    "EVENT_MAX_ENTRY_BYTES",
    "EVENT_INLINE_MAX_BYTES",
    "ARCHIVE_MODE",
    "DEDUP_MODE",
)

# Parameter values that switch every optional part of the template on: the redelivery function
# with both its credentials, and a customer-managed KMS key.
EVERYTHING_ON: dict[str, str] = {
    "RedeliveryHooks": "repos/octo-org/hello-world/hooks/42,orgs/octo-org/hooks/7,app",
    "GitHubTokenParameterName": "/github-webhook/github-token",
    "GitHubAppId": "123456",
    "GitHubAppPrivateKeyParameterName": "/github-webhook/github-app-key",
    "SecretKmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    "RedeliveryMode": "pull",
}


def pulls(parameters: Mapping[str, str]) -> bool:
    """Whether a stack deployed with ``parameters`` has the redelivery function in pull mode."""
    return bool(parameters.get("RedeliveryHooks")) and parameters.get("RedeliveryMode") == "pull"


# DynamoDB actions on the shared table: the deduplication records' (the receiver's, Powertools
# Idempotency), and the redelivery state items'.
DEDUP_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem")
# BatchGetItem reads a hook's main item and its shards at once; saves are TransactWriteItems of Puts,
# which IAM checks as PutItem on each item.
STATE_ACTIONS = ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:BatchGetItem")


def _ssm_parameter(parameter: str) -> dict[str, str]:
    """The ARN of the SSM parameter named by the template parameter ``parameter`` (a leading slash)."""
    return {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${" + parameter + "}"}


def least_privilege(parameters: Mapping[str, str]) -> dict[str, dict[str, list[Any]]]:
    """Role -> action -> exactly the resources it must be granted on, for a stack deployed with
    ``parameters`` (every template parameter, as :func:`parameter_values` gives them)."""
    table = {"Fn::GetAtt": ["DeliveriesTable", "Arn"]}
    xray = {"xray:PutTraceSegments": ["*"], "xray:PutTelemetryRecords": ["*"]}
    # Only with a customer-managed key: the aws/ssm key lets every principal decrypt through SSM.
    kms = {"kms:Decrypt": [{"Ref": "SecretKmsKeyArn"}]} if parameters.get("SecretKmsKeyArn") else {}

    def logs(group: str) -> dict[str, list[Any]]:
        # The log group's Arn attribute ends in ":*", which covers its log streams.
        arn = {"Fn::GetAtt": [group, "Arn"]}
        return {"logs:CreateLogStream": [arn], "logs:PutLogEvents": [arn]}

    roles: dict[str, dict[str, list[Any]]] = {
        "WebhookFunctionRole": {
            "ssm:GetParameter": [_ssm_parameter("WebhookSecretParameterName")],
            "events:PutEvents": [{"Fn::GetAtt": ["WebhookBus", "Arn"]}],
            "dynamodb:GetItem": [table],
            "dynamodb:PutItem": [table],
            "dynamodb:UpdateItem": [table],
            "dynamodb:DeleteItem": [table],
            "s3:PutObject": [{"Fn::Sub": "${ArchiveBucket.Arn}/*"}],
            **kms,
            **logs("FunctionLogGroup"),
            **xray,
        }
    }
    if parameters.get("RedeliveryHooks"):
        secrets = [
            _ssm_parameter(name)
            for name in ("GitHubTokenParameterName", "GitHubAppPrivateKeyParameterName")
            if parameters.get(name)
        ]
        receiver = roles["WebhookFunctionRole"]
        # Pull mode: the receiver's grants for its pipeline, on the same resources.
        pipeline = ("events:PutEvents", "s3:PutObject", *DEDUP_ACTIONS) if pulls(parameters) else ()
        roles["RedeliveryFunctionRole"] = {
            **({"ssm:GetParameter": secrets} if secrets else {}),
            "dynamodb:GetItem": [table],
            "dynamodb:PutItem": [table],
            "dynamodb:BatchGetItem": [table],
            **{action: receiver[action] for action in pipeline},
            **kms,
            **logs("RedeliveryLogGroup"),
            **xray,
        }
    return roles


def _key_prefix(source: Path) -> str:
    """The module-level ``KEY_PREFIX = "..."`` of ``source``."""
    for node in ast.parse(source.read_text(encoding="utf-8")).body:
        if (
            isinstance(node, ast.Assign)
            and [getattr(target, "id", None) for target in node.targets] == ["KEY_PREFIX"]
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
        ):
            return node.value.value
    raise LookupError(f"no KEY_PREFIX string in {source.relative_to(ROOT)}")


def item_keys(parameters: Mapping[str, str]) -> dict[str, dict[str, set[str]]]:
    """Role -> dynamodb:LeadingKeys pattern -> the DynamoDB actions it must be granted on exactly those
    items, for roles that share the table with items that are not theirs."""
    if not parameters.get("RedeliveryHooks"):
        return {}
    # The state items are keyed KEY_PREFIX + hook; Powertools keys a record f"{key_prefix}#{hash}"
    # (BasePersistenceLayer._get_hashed_idempotency_key; the table has no sort key).
    keys = {_key_prefix(STATE_KEYS_SOURCE) + "*": set(STATE_ACTIONS)}
    if pulls(parameters):
        keys[_key_prefix(DEDUP_KEYS_SOURCE) + "#*"] = set(DEDUP_ACTIONS)
    return {"RedeliveryFunctionRole": keys}


def _leading_keys(statement: Mapping[str, Any]) -> str | None:
    """The one pattern of a ``ForAllValues:StringLike`` on ``dynamodb:LeadingKeys``, the statement's only
    condition; None for anything else (no condition, another operator, several patterns)."""
    if list(statement.get("Condition", {})) != ["ForAllValues:StringLike"]:
        return None
    test = statement["Condition"]["ForAllValues:StringLike"]
    if list(test) != ["dynamodb:LeadingKeys"]:
        return None
    patterns = as_list(test["dynamodb:LeadingKeys"])
    return patterns[0] if len(patterns) == 1 and isinstance(patterns[0], str) else None


def item_key_findings(cloudformation: dict[str, Any], parameters: Mapping[str, str] | None = None) -> list[str]:
    """For the stack deployed with ``parameters``: each DynamoDB grant of a role in :func:`item_keys` that is
    not limited to one expected key prefix, or grants an action on items it does not need, and each
    expected (prefix, action) that no statement grants."""
    stack = deployed(cloudformation, parameters)
    expected = item_keys(stack["Parameters"])
    findings = []
    granted: dict[str, dict[str, set[str]]] = {}
    for principal, where, statement in role_statements_of(stack["Resources"]):
        if principal not in expected or statement.get("Effect") != "Allow":
            continue
        actions = [action for action in as_list(statement.get("Action", [])) if action.startswith("dynamodb:")]
        if not actions:
            continue
        pattern = _leading_keys(statement)
        if pattern not in expected[principal]:
            shown = json.dumps(statement.get("Condition"), sort_keys=True)
            findings.append(
                f"{where}: {', '.join(actions)} with condition {shown}, expected dynamodb:LeadingKeys "
                f"limited to one of {sorted(expected[principal])}"
            )
            continue
        granted.setdefault(principal, {}).setdefault(pattern, set()).update(actions)
        findings.extend(
            f"{where}: {action} on items {pattern}" for action in actions if action not in expected[principal][pattern]
        )
    for role, keys in expected.items():
        for pattern, actions in keys.items():
            findings.extend(
                f"{role}: missing permission {action} on items {pattern}"
                for action in sorted(actions - granted.get(role, {}).get(pattern, set()))
            )
    return findings


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
    """The CloudFormation that SAM makes of ``template`` (as `sam package` would, CodeUri is an S3 URI).

    Conditions are left as they are: :func:`deployed` resolves them for given parameter values.
    """
    document = copy.deepcopy(template)
    for name, resource in document["Resources"].items():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = f"s3://artifacts/{name}.zip"
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return transform(document, {}, _NoManagedPolicies())


# -- Parameters, conditions and rules, evaluated as CloudFormation would ------------------------------


def parameter_values(template: dict[str, Any], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Every template parameter's value: its default unless overridden (as strings, like CloudFormation)."""
    values = {name: str(p.get("Default", "")) for name, p in template.get("Parameters", {}).items()}
    unknown = set(overrides or {}) - set(values)
    if unknown:
        raise KeyError(f"not parameters of the template: {sorted(unknown)}")
    values.update(overrides or {})
    return values


def _value(expression: Any, values: Mapping[str, str], conditions: Mapping[str, Any]) -> Any:
    """A condition function (Fn::Equals/Not/And/Or, Condition, Ref to a parameter) or a literal."""
    if isinstance(expression, dict) and len(expression) == 1:
        [(function, arguments)] = expression.items()
        if function == "Ref":
            return values[arguments]
        if function == "Fn::Equals":
            left, right = (_value(argument, values, conditions) for argument in arguments)
            return str(left) == str(right)
        if function == "Fn::Not":
            return not _value(arguments[0], values, conditions)
        if function == "Fn::And":
            return all(_value(argument, values, conditions) for argument in arguments)
        if function == "Fn::Or":
            return any(_value(argument, values, conditions) for argument in arguments)
        if function == "Condition":
            return _value(conditions[arguments], values, conditions)
        raise ValueError(f"cannot evaluate {function} here")
    return expression


_REMOVED = object()


def _resolve(node: Any, truth: Mapping[str, bool]) -> Any:
    """``node`` with each Fn::If replaced by its branch and each Ref AWS::NoValue removed."""
    if isinstance(node, dict):
        if len(node) == 1 and "Fn::If" in node:
            condition, when_true, when_false = node["Fn::If"]
            return _resolve(when_true if truth[condition] else when_false, truth)
        if node == {"Ref": "AWS::NoValue"}:
            return _REMOVED
        resolved = {key: _resolve(value, truth) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not _REMOVED}
    if isinstance(node, list):
        return [value for value in (_resolve(item, truth) for item in node) if value is not _REMOVED]
    return node


def deployed(cloudformation: dict[str, Any], parameters: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The resources and outputs CloudFormation would create from ``cloudformation`` (the transformed
    template) with ``parameters`` (the rest at their defaults): the resources and outputs whose
    condition is false are gone, and so is every Fn::If (replaced by its branch) and AWS::NoValue.
    """
    values = parameter_values(cloudformation, parameters)
    conditions = cloudformation.get("Conditions", {})
    truth = {name: bool(_value(expression, values, conditions)) for name, expression in conditions.items()}
    stack = {}
    for section in ("Resources", "Outputs"):
        kept = {
            name: entry
            for name, entry in cloudformation.get(section, {}).items()
            if "Condition" not in entry or truth[entry["Condition"]]
        }
        stack[section] = _resolve(kept, truth)
    stack["Parameters"] = values
    return stack


def rule_findings(template: dict[str, Any], parameters: Mapping[str, str] | None = None) -> list[str]:
    """The template's Rules that would refuse a deployment with ``parameters``, as CloudFormation would."""
    values = parameter_values(template, parameters)
    findings = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _value(rule["RuleCondition"], values, {}):
            continue
        for assertion in rule["Assertions"]:
            if not _value(assertion["Assert"], values, {}):
                findings.append(f"{name}: {assertion.get('AssertDescription', 'refused')}")
    return findings


def parameter_findings(template: dict[str, Any], parameters: Mapping[str, str]) -> list[str]:
    """Parameter values that CloudFormation would refuse (AllowedPattern, AllowedValues)."""
    findings = []
    declared = template["Parameters"]
    for name, value in parameters.items():
        pattern = declared[name].get("AllowedPattern")
        if pattern is not None and not re.fullmatch(pattern, value):
            findings.append(f"{name}: {value!r} does not match its AllowedPattern")
        allowed = declared[name].get("AllowedValues")
        if allowed is not None and value not in [str(v) for v in allowed]:
            findings.append(f"{name}: {value!r} is not one of its AllowedValues")
    return findings


# -- Permissions ------------------------------------------------------------------------------------------


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _references(value: Any) -> list[str]:
    """The names in a list of Refs (a policy resource's Roles); a literal name stands for itself."""
    return [item["Ref"] if isinstance(item, dict) and "Ref" in item else json.dumps(item) for item in as_list(value)]


def role_statements_of(resources: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """Every inline statement, as (principal, where it is written, statement): a role's (or user's,
    group's) own Policies, and those of each policy resource, once per principal it is attached to."""
    found = []
    for name, resource in resources.items():
        properties = resource.get("Properties", {})
        if resource["Type"] in _PRINCIPAL_TYPES:
            for policy in properties.get("Policies", []):
                found.extend((name, name, s) for s in as_list(policy["PolicyDocument"]["Statement"]))
        elif resource["Type"] in _POLICY_TYPES:
            statements = as_list(properties["PolicyDocument"]["Statement"])
            principals = [
                principal for key in ("Roles", "Users", "Groups") for principal in _references(properties.get(key, []))
            ]
            for principal in principals or ["(no principal)"]:
                found.extend((principal, f"{name} (on {principal})", s) for s in statements)
    return found


def inline_statements(resources: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every inline statement: a role's (or user's, group's) Policies, and each policy resource's."""
    return [(where, statement) for _, where, statement in role_statements_of(resources)]


def _managed_policies(
    resources: dict[str, Any], allowed: Mapping[str, dict[str, Any]]
) -> tuple[list[str], list[tuple[str, str, dict[str, Any]]]]:
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
                statements.extend((name, f"{name} ({arn})", s) for s in as_list(document["Statement"]))
            else:
                shown = arn if isinstance(arn, str) else json.dumps(arn, sort_keys=True)
                findings.append(f"{name}: managed policy {shown} is not on the allow-list")
    return findings, statements


def _is_wildcard(resource: Any) -> bool:
    return resource == "*" or (isinstance(resource, str) and resource.endswith(":*"))


def _shown(resources: list[Any]) -> str:
    return json.dumps(resources[0] if len(resources) == 1 else resources, sort_keys=True)


def iam_findings(
    cloudformation: dict[str, Any],
    parameters: Mapping[str, str] | None = None,
    allowed_managed_policies: Mapping[str, dict[str, Any]] | None = None,
) -> list[str]:
    """Every way the permissions of the stack deployed with ``parameters`` differ from least privilege.

    ``cloudformation`` is the transformed template; its conditions are resolved first (:func:`deployed`).
    Each role's statements (inline, and those of policy resources attached to it) are checked action by
    action against :func:`least_privilege`: an action it does not list, or a resource other than
    the ones listed, is a finding, and so is a listed one that is not granted. Any managed policy
    attached by ARN is a finding unless it is in ``allowed_managed_policies`` (ARN -> its policy
    document, written out by the caller), whose statements are then checked like inline ones. A
    wildcard resource is a finding unless the action is in NO_RESOURCE_LEVEL_ACTIONS.
    """
    stack = deployed(cloudformation, parameters)
    resources = stack["Resources"]
    expected = least_privilege(stack["Parameters"])
    findings, managed = _managed_policies(resources, allowed_managed_policies or {})
    granted: dict[str, dict[str, list[Any]]] = {}
    for principal, where, statement in role_statements_of(resources) + managed:
        if statement.get("Effect") != "Allow":
            continue
        for key in ("NotAction", "NotResource"):
            if key in statement:
                findings.append(f"{where}: an Allow with {key} grants everything not listed")
        resources_named = as_list(statement.get("Resource", []))
        allowed = expected.get(principal, {})
        for action in as_list(statement.get("Action", [])):
            granted.setdefault(principal, {}).setdefault(action, []).extend(resources_named)
            if "*" in action:
                findings.append(f"{where}: wildcard action {action}")
            if action not in allowed:
                findings.append(f"{where}: unexpected action {action}")
            for resource in resources_named:
                if _is_wildcard(resource):
                    if action not in NO_RESOURCE_LEVEL_ACTIONS:
                        findings.append(f"{where}: {action} on a wildcard resource")
                elif action in allowed and resource not in allowed[action]:
                    findings.append(f"{where}: {action} on {_shown([resource])}, expected {_shown(allowed[action])}")
    for role, actions in expected.items():
        for action in sorted(actions):
            given = granted.get(role, {}).get(action, [])
            if not given:
                findings.append(f"{role}: missing permission {action}")
                continue
            if any(_is_wildcard(resource) for resource in given):
                continue  # granted on more than needed: a finding above already
            findings.extend(
                f"{role}: missing permission {action} on {_shown([resource])}"
                for resource in actions[action]
                if resource not in given
            )
    return findings


# -- Environment ------------------------------------------------------------------------------------------


def _env_names_read_in(function: ast.FunctionDef) -> set[str]:
    """Variable names a from_env method reads from its mapping ``env``: ``env.get("X")``,
    ``env["X"]``, ``"X" in env``, and helpers called as ``helper(env, "X", ...)``."""

    def is_env(node: ast.AST) -> bool:
        return isinstance(node, ast.Name) and node.id == "env"

    def constant(node: ast.AST) -> str | None:
        return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None

    names = set()
    for node in ast.walk(function):
        if isinstance(node, ast.Call):
            if isinstance(node.func, ast.Attribute) and is_env(node.func.value) and node.args:
                names.add(constant(node.args[0]))
            for before, after in zip(node.args, node.args[1:], strict=False):
                if is_env(before):
                    names.add(constant(after))
        elif isinstance(node, ast.Subscript) and is_env(node.value):
            names.add(constant(node.slice))
        elif isinstance(node, ast.Compare) and any(is_env(c) for c in node.comparators):
            names.add(constant(node.left))
    return {name for name in names if name}


def env_vars_read_by(*classes: str) -> set[str]:
    """Every variable the ``from_env`` methods of ``classes`` (handler/core/settings.py, the one place
    configuration is read) read. AWS_* names are set by the Lambda platform itself."""
    tree = ast.parse(SETTINGS.read_text(encoding="utf-8"))
    methods = {
        node.name: item
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        for item in node.body
        if isinstance(item, ast.FunctionDef) and item.name == "from_env"
    }
    missing = [name for name in classes if name not in methods]
    if missing:
        raise LookupError(f"no from_env method on {missing} in {SETTINGS.relative_to(ROOT)}")
    names = set().union(*(_env_names_read_in(methods[name]) for name in classes))
    return {name for name in names if not name.startswith("AWS_")}


def env_vars_read_by_the_code(function: str = FUNCTION) -> set[str]:
    """Every variable ``function``'s code reads: its settings classes', and Powertools' own (and for the
    redelivery function, the pipeline's, which it reads in pull mode)."""
    read = env_vars_read_by(*FUNCTIONS[function]) | READ_BY_POWERTOOLS
    if function == REDELIVERY_FUNCTION:
        read |= set(PIPELINE_VARIABLES) & env_vars_read_by(*FUNCTIONS[FUNCTION])
    return read


def env_findings(template: dict[str, Any]) -> list[str]:
    """For each function of the template: each variable its code reads that the template does not set,
    and each variable the template sets that nothing reads (a misspelt name, or one left behind)."""
    findings = []
    for function in FUNCTIONS:
        if function not in template["Resources"]:
            findings.append(f"{function} is not in the template")
            continue
        variables = set(template["Resources"][function]["Properties"]["Environment"]["Variables"])
        read = env_vars_read_by_the_code(function)
        findings.extend(
            f"{function}: {name} is read by the code but not set by the template" for name in sorted(read - variables)
        )
        findings.extend(
            f"{function}: {name} is set by the template but not read by the code" for name in sorted(variables - read)
        )
    return findings


def pipeline_env_findings(cloudformation: dict[str, Any], parameters: Mapping[str, str] | None = None) -> list[str]:
    """For the stack deployed with ``parameters``: in pull mode, each pipeline variable the redelivery
    function does not get with the receiver's value; otherwise, each it gets at all."""
    stack = deployed(cloudformation, parameters)
    if REDELIVERY_FUNCTION not in stack["Resources"]:
        return []

    def variables(function: str) -> dict[str, Any]:
        return stack["Resources"][function]["Properties"].get("Environment", {}).get("Variables", {})

    receiver, redelivery = variables(FUNCTION), variables(REDELIVERY_FUNCTION)
    if not pulls(stack["Parameters"]):
        outside = [name for name in PIPELINE_VARIABLES if name in redelivery]
        return [f"{REDELIVERY_FUNCTION}: {name} is set outside pull mode" for name in outside]
    findings = [f"{FUNCTION}: {name} is not set" for name in PIPELINE_VARIABLES if name not in receiver]
    findings.extend(
        f"{REDELIVERY_FUNCTION}: {name} is {json.dumps(redelivery.get(name))} in pull mode, "
        f"the receiver's is {json.dumps(receiver[name])}"
        for name in PIPELINE_VARIABLES
        if name in receiver and redelivery.get(name) != receiver[name]
    )
    return findings
