"""template.yaml, checked on the template SAM transforms it into (aws-sam-translator), offline."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.checks import (
    EVERYTHING_ON,
    FUNCTION,
    FUNCTIONS,
    NO_RESOURCE_LEVEL_ACTIONS,
    PIPELINE_VARIABLES,
    REDELIVERY_FUNCTION,
    ROOT,
    as_list,
    deployed,
    env_findings,
    env_vars_read_by_the_code,
    iam_findings,
    inline_statements,
    item_key_findings,
    load_template,
    parameter_findings,
    pipeline_env_findings,
    rule_findings,
    transformed,
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def cloudformation(template: dict[str, Any]) -> dict[str, Any]:
    """The transformed template, conditions unresolved: every optional resource is in it."""
    return transformed(template)


@pytest.fixture(scope="module")
def stack_on(cloudformation: dict[str, Any]) -> dict[str, Any]:
    """The stack deployed with every option on (redelivery in pull mode with both credentials, a KMS key)."""
    return deployed(cloudformation, EVERYTHING_ON)


@pytest.fixture(scope="module")
def stack_off(cloudformation: dict[str, Any]) -> dict[str, Any]:
    """The stack deployed with the defaults: no redelivery hooks."""
    return deployed(cloudformation)


def of_type(cloudformation: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cloudformation["Resources"].items() if r["Type"] == kind}


# Managed policies (AWS's or ours) the template may attach by ARN, each with its policy document
# written out here so that it is checked like an inline policy. None: the function's role has inline
# policies only. SAM's defaults (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess) grant on "*".
ALLOWED_MANAGED_POLICIES: dict[str, dict[str, Any]] = {}


def ssm_parameter_arn(parameter: str) -> dict[str, str]:
    """The ARN of the SSM parameter named by the template parameter ``parameter``."""
    return {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${" + parameter + "}"}


TOKEN_ARN = ssm_parameter_arn("GitHubTokenParameterName")
APP_KEY_ARN = ssm_parameter_arn("GitHubAppPrivateKeyParameterName")

BASIC_EXECUTION_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY_WRITE_ONLY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"


def role_statements(template: dict[str, Any], role: str = "WebhookFunctionRole") -> dict[str, dict[str, Any]]:
    """A role's inline statements, by Sid (to break a copy of the template); a statement under an
    !If is found by the Sid of its true branch."""
    policies = template["Resources"][role]["Properties"]["Policies"]
    statements = {}
    for policy in policies:
        for statement in policy["PolicyDocument"]["Statement"]:
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]  # the branch is what a test breaks
            statements[statement["Sid"]] = statement
    return statements


# Parameter sets the permission checks run on: the defaults, each option on its own, and everything on.
PARAMETER_SETS = {
    "defaults": {},
    "kms-key": {"SecretKmsKeyArn": EVERYTHING_ON["SecretKmsKeyArn"]},
    "redelivery-token": {
        "RedeliveryHooks": "repos/octo-org/hello-world/hooks/42",
        "GitHubTokenParameterName": EVERYTHING_ON["GitHubTokenParameterName"],
    },
    "redelivery-app": {
        "RedeliveryHooks": "app",
        "GitHubAppId": EVERYTHING_ON["GitHubAppId"],
        "GitHubAppPrivateKeyParameterName": EVERYTHING_ON["GitHubAppPrivateKeyParameterName"],
    },
    "redelivery-pull": {
        "RedeliveryHooks": "repos/octo-org/hello-world/hooks/42",
        "GitHubTokenParameterName": EVERYTHING_ON["GitHubTokenParameterName"],
        "RedeliveryMode": "pull",
    },
    # Pull mode is inert without hooks.
    "pull-without-hooks": {"RedeliveryMode": "pull"},
    "everything": EVERYTHING_ON,
}
REDELIVER = PARAMETER_SETS["redelivery-token"]
PULL = PARAMETER_SETS["redelivery-pull"]


@pytest.mark.parametrize("parameters", PARAMETER_SETS.values(), ids=PARAMETER_SETS.keys())
def test_function_permissions_are_least_privilege(
    template: dict[str, Any], cloudformation: dict[str, Any], parameters: dict[str, str]
) -> None:
    assert parameter_findings(template, parameters) == []
    assert rule_findings(template, parameters) == []
    assert iam_findings(cloudformation, parameters, ALLOWED_MANAGED_POLICIES) == []
    assert item_key_findings(cloudformation, parameters) == []
    assert pipeline_env_findings(cloudformation, parameters) == []


def test_no_role_has_managed_policies(cloudformation: dict[str, Any]) -> None:
    for name, role in of_type(cloudformation, "AWS::IAM::Role").items():
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= set(ALLOWED_MANAGED_POLICIES), name


ROLES = {FUNCTION: "WebhookFunctionRole", REDELIVERY_FUNCTION: "RedeliveryFunctionRole"}
LOG_GROUPS = {FUNCTION: "FunctionLogGroup", REDELIVERY_FUNCTION: "RedeliveryLogGroup"}


def test_each_function_runs_as_its_own_role(template: dict[str, Any], stack_on: dict[str, Any]) -> None:
    assert set(ROLES) == set(FUNCTIONS)
    assert list(of_type(stack_on, "AWS::IAM::Role")) == list(ROLES.values())
    for function, role in ROLES.items():
        properties = template["Resources"][function]["Properties"]
        # With Role set, SAM silently ignores Policies: a statement added there would never apply.
        assert "Policies" not in properties
        assert properties["Role"] == {"Fn::GetAtt": [role, "Arn"]}
        assert stack_on["Resources"][function]["Properties"]["Role"] == properties["Role"]
        trust = stack_on["Resources"][role]["Properties"]["AssumeRolePolicyDocument"]
        [statement] = trust["Statement"]
        assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
        assert as_list(statement["Action"]) == ["sts:AssumeRole"]
    assert "Policies" not in template.get("Globals", {}).get("Function", {})


def test_each_function_logs_only_to_its_own_log_group(stack_on: dict[str, Any]) -> None:
    for function, role in ROLES.items():
        logs = [
            statement
            for where, statement in inline_statements(stack_on["Resources"])
            if where == role and any(action.startswith("logs:") for action in as_list(statement["Action"]))
        ]
        assert logs == [role_statements(stack_on, role)["WriteOwnLogs"]]
        assert sorted(as_list(logs[0]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
        # The LogGroup's Arn attribute is arn:...:log-group:<name>:*, which covers its streams.
        assert logs[0]["Resource"] == {"Fn::GetAtt": [LOG_GROUPS[function], "Arn"]}
        assert stack_on["Resources"][function]["Properties"]["LoggingConfig"] == {
            "LogGroup": {"Ref": LOG_GROUPS[function]}
        }


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(stack_on: dict[str, Any]) -> None:
    on_wildcard = {
        action
        for _, statement in inline_statements(stack_on["Resources"])
        if "*" in as_list(statement.get("Resource"))
        for action in as_list(statement["Action"])
    }
    assert on_wildcard == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert on_wildcard <= NO_RESOURCE_LEVEL_ACTIONS


def test_kms_decrypt_only_with_a_customer_key_and_only_through_ssm(
    cloudformation: dict[str, Any], stack_on: dict[str, Any]
) -> None:
    assert cloudformation["Conditions"]["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SecretKmsKeyArn"}, ""]}]}
    assert cloudformation["Resources"]["SecretKeyDecryptPolicy"]["Condition"] == "HasKmsKey"
    decrypt = [
        (where, statement)
        for where, statement in inline_statements(stack_on["Resources"])
        if "kms:Decrypt" in as_list(statement["Action"])
    ]
    assert [where for where, _ in decrypt] == [
        "SecretKeyDecryptPolicy (on WebhookFunctionRole)",
        "RedeliveryFunctionRole",
    ]
    for _, statement in decrypt:
        assert as_list(statement["Action"]) == ["kms:Decrypt"]
        assert statement["Resource"] == {"Ref": "SecretKmsKeyArn"}
        assert statement["Condition"] == {
            "StringEquals": {"kms:ViaService": {"Fn::Sub": "ssm.${AWS::Region}.${AWS::URLSuffix}"}}
        }
    without_key = deployed(cloudformation, {k: v for k, v in EVERYTHING_ON.items() if k != "SecretKmsKeyArn"})
    assert not [s for _, s in inline_statements(without_key["Resources"]) if "kms:Decrypt" in as_list(s["Action"])]


def test_redelivery_reads_exactly_the_parameters_it_is_given(cloudformation: dict[str, Any]) -> None:
    def reads(parameters: dict[str, str]) -> list[Any]:
        stack = deployed(cloudformation, parameters)
        statements = role_statements(stack, "RedeliveryFunctionRole").values()
        return [s["Resource"] for s in statements if "ssm:GetParameter" in as_list(s["Action"])]

    assert reads(PARAMETER_SETS["redelivery-token"]) == [TOKEN_ARN]
    assert reads(PARAMETER_SETS["redelivery-app"]) == [APP_KEY_ARN]
    assert reads(EVERYTHING_ON) == [TOKEN_ARN, APP_KEY_ARN]


def test_a_wildcard_resource_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    role_statements(broken)["PutDeliveryEvents"]["Resource"] = "*"
    assert iam_findings(transformed(broken)) == ["WebhookFunctionRole: events:PutEvents on a wildcard resource"]


def test_a_wildcard_resource_next_to_the_xray_actions_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    role_statements(broken)["SendTraces"]["Action"].append("logs:PutLogEvents")
    assert iam_findings(transformed(broken)) == ["WebhookFunctionRole: logs:PutLogEvents on a wildcard resource"]


def test_logs_on_every_log_group_are_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    role_statements(broken)["WriteOwnLogs"]["Resource"] = "arn:aws:logs:*:*:*"
    findings = iam_findings(transformed(broken))
    assert findings == [
        "WebhookFunctionRole: logs:CreateLogStream on a wildcard resource",
        "WebhookFunctionRole: logs:PutLogEvents on a wildcard resource",
    ]


def test_a_broader_action_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    role_statements(broken)["ArchiveDeliveries"]["Action"] = "s3:*"
    findings = iam_findings(transformed(broken))
    assert "WebhookFunctionRole: wildcard action s3:*" in findings
    assert "WebhookFunctionRole: missing permission s3:PutObject" in findings


def test_not_action_and_not_resource_are_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    statement = role_statements(broken)["PutDeliveryEvents"]
    statement["NotResource"] = statement.pop("Resource")
    findings = iam_findings(transformed(broken))
    assert "WebhookFunctionRole: an Allow with NotResource grants everything not listed" in findings


def test_a_managed_policy_on_the_role_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["WebhookFunctionRole"]["Properties"]["ManagedPolicyArns"] = [XRAY_WRITE_ONLY]
    assert iam_findings(transformed(broken), {}, ALLOWED_MANAGED_POLICIES) == [
        f"WebhookFunctionRole: managed policy {XRAY_WRITE_ONLY} is not on the allow-list"
    ]


def test_the_role_sam_would_generate_is_caught(template: dict[str, Any]) -> None:
    # The template as it was before the function had a role of its own: the same application
    # statements in the function's Policies, and SAM's generated role with its managed policies.
    broken = copy.deepcopy(template)
    application = [
        statement for sid, statement in role_statements(broken).items() if sid not in {"WriteOwnLogs", "SendTraces"}
    ]
    del broken["Resources"]["WebhookFunctionRole"]
    function = broken["Resources"][FUNCTION]["Properties"]
    del function["Role"]
    function["Policies"] = [{"Version": "2012-10-17", "Statement": application}]
    findings = iam_findings(transformed(broken), {}, ALLOWED_MANAGED_POLICIES)
    assert findings == [
        f"WebhookFunctionRole: managed policy {BASIC_EXECUTION_ROLE} is not on the allow-list",
        f"WebhookFunctionRole: managed policy {XRAY_WRITE_ONLY} is not on the allow-list",
        "WebhookFunctionRole: missing permission logs:CreateLogStream",
        "WebhookFunctionRole: missing permission logs:PutLogEvents",
        "WebhookFunctionRole: missing permission xray:PutTelemetryRecords",
        "WebhookFunctionRole: missing permission xray:PutTraceSegments",
    ]


def test_an_allowed_managed_policy_is_checked_like_an_inline_one(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["WebhookFunctionRole"]["Properties"]["ManagedPolicyArns"] = [BASIC_EXECUTION_ROLE]
    # AWSLambdaBasicExecutionRole's document, as AWS publishes it.
    allowed = {
        BASIC_EXECUTION_ROLE: {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": "*",
                }
            ],
        }
    }
    name = f"WebhookFunctionRole ({BASIC_EXECUTION_ROLE})"
    assert iam_findings(transformed(broken), {}, allowed) == [
        f"{name}: unexpected action logs:CreateLogGroup",
        f"{name}: logs:CreateLogGroup on a wildcard resource",
        f"{name}: logs:CreateLogStream on a wildcard resource",
        f"{name}: logs:PutLogEvents on a wildcard resource",
    ]


def test_sam_policy_templates_with_wildcards_are_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    del broken["Resources"]["WebhookFunctionRole"]
    del broken["Resources"][FUNCTION]["Properties"]["Role"]
    broken["Resources"][FUNCTION]["Properties"]["Policies"] = [{"S3CrudPolicy": {"BucketName": "*"}}]
    findings = iam_findings(transformed(broken))
    assert "WebhookFunctionRole: unexpected action s3:GetObject" in findings
    assert f"WebhookFunctionRole: managed policy {BASIC_EXECUTION_ROLE} is not on the allow-list" in findings


# The redelivery role, broken: each is caught with the redelivery function on.


def test_redelivery_reading_every_parameter_under_a_path_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    wider = {"Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/github-webhook/*"}
    role_statements(broken, "RedeliveryFunctionRole")["ReadGitHubToken"]["Resource"] = wider
    token, key = json.dumps(TOKEN_ARN), json.dumps(APP_KEY_ARN)
    assert iam_findings(transformed(broken), EVERYTHING_ON) == [
        f"RedeliveryFunctionRole: ssm:GetParameter on {json.dumps(wider)}, expected [{token}, {key}]",
        f"RedeliveryFunctionRole: missing permission ssm:GetParameter on {token}",
    ]


def test_redelivery_reading_a_parameter_it_is_not_given_is_caught(template: dict[str, Any]) -> None:
    # The token statement without its !If: with only the app hook, it would still grant a read.
    broken = copy.deepcopy(template)
    [policy] = broken["Resources"]["RedeliveryFunctionRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    statements[:] = [s["Fn::If"][1] if s.get("Fn::If", [None])[0] == "HasGitHubToken" else s for s in statements]
    assert iam_findings(transformed(broken), EVERYTHING_ON) == []
    token, key = json.dumps(TOKEN_ARN), json.dumps(APP_KEY_ARN)
    assert iam_findings(transformed(broken), PARAMETER_SETS["redelivery-app"]) == [
        f"RedeliveryFunctionRole: ssm:GetParameter on {token}, expected {key}"
    ]


def test_redelivery_writing_to_the_receivers_log_group_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    role_statements(broken, "RedeliveryFunctionRole")["WriteOwnLogs"]["Resource"] = {
        "Fn::GetAtt": ["FunctionLogGroup", "Arn"]
    }
    findings = iam_findings(transformed(broken), EVERYTHING_ON)
    assert (
        "RedeliveryFunctionRole: logs:PutLogEvents on "
        '{"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}, expected {"Fn::GetAtt": ["RedeliveryLogGroup", "Arn"]}'
    ) in findings


def test_redelivery_with_the_receivers_table_actions_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    role_statements(broken, "RedeliveryFunctionRole")["KeepRedeliveryState"]["Action"] += [
        "dynamodb:UpdateItem",
        "dynamodb:DeleteItem",
    ]
    assert iam_findings(transformed(broken), REDELIVER) == [
        "RedeliveryFunctionRole: unexpected action dynamodb:UpdateItem",
        "RedeliveryFunctionRole: unexpected action dynamodb:DeleteItem",
    ]
    # In pull mode the role may update and delete deduplication records, but not its state items.
    assert item_key_findings(transformed(broken), PULL) == [
        "RedeliveryFunctionRole: dynamodb:UpdateItem on items redelivery#*",
        "RedeliveryFunctionRole: dynamodb:DeleteItem on items redelivery#*",
    ]


def test_redelivery_state_on_every_item_of_the_table_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    del role_statements(broken, "RedeliveryFunctionRole")["KeepRedeliveryState"]["Condition"]
    for parameters in (REDELIVER, PULL):
        assert iam_findings(transformed(broken), parameters) == []  # same actions and resource: only the keys differ
        findings = item_key_findings(transformed(broken), parameters)
        assert findings[0].startswith(
            "RedeliveryFunctionRole: dynamodb:GetItem, dynamodb:PutItem, dynamodb:BatchGetItem with condition null, "
            "expected "
            "dynamodb:LeadingKeys limited to one of"
        )
        assert sorted(findings[1:]) == [
            "RedeliveryFunctionRole: missing permission dynamodb:BatchGetItem on items redelivery#*",
            "RedeliveryFunctionRole: missing permission dynamodb:GetItem on items redelivery#*",
            "RedeliveryFunctionRole: missing permission dynamodb:PutItem on items redelivery#*",
        ]


def test_deduplication_records_on_the_wrong_keys_are_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    dedup = role_statements(broken, "RedeliveryFunctionRole")["DeduplicateDeliveries"]
    # The prefix without Powertools' "#": it would also match keys such as github-delivery-other#….
    dedup["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] = ["github-delivery*"]
    findings = item_key_findings(transformed(broken), PULL)
    assert findings[0].startswith(
        "RedeliveryFunctionRole: dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem "
        'with condition {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["github-delivery*"]}}'
    )
    assert len(findings) == 5  # and the four actions missing on github-delivery#*
    # The redelivery items' pattern on the deduplication actions: they could then rewrite its state.
    dedup["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"] = ["redelivery#*"]
    assert item_key_findings(transformed(broken), PULL) == [
        "RedeliveryFunctionRole: dynamodb:UpdateItem on items redelivery#*",
        "RedeliveryFunctionRole: dynamodb:DeleteItem on items redelivery#*",
        "RedeliveryFunctionRole: missing permission dynamodb:DeleteItem on items github-delivery#*",
        "RedeliveryFunctionRole: missing permission dynamodb:GetItem on items github-delivery#*",
        "RedeliveryFunctionRole: missing permission dynamodb:PutItem on items github-delivery#*",
        "RedeliveryFunctionRole: missing permission dynamodb:UpdateItem on items github-delivery#*",
    ]


def test_pull_mode_grants_without_their_condition_are_caught(template: dict[str, Any]) -> None:
    # The pull-mode statements without their !If: the redeliver mode would hold the pipeline's grants.
    broken = copy.deepcopy(template)
    [policy] = broken["Resources"]["RedeliveryFunctionRole"]["Properties"]["Policies"]
    statements = policy["PolicyDocument"]["Statement"]
    statements[:] = [s["Fn::If"][1] if s.get("Fn::If", [None])[0] == "IsPullMode" else s for s in statements]
    assert iam_findings(transformed(broken), PULL) == []
    assert iam_findings(transformed(broken), REDELIVER) == [
        "RedeliveryFunctionRole: unexpected action events:PutEvents",
        "RedeliveryFunctionRole: unexpected action dynamodb:UpdateItem",
        "RedeliveryFunctionRole: unexpected action dynamodb:DeleteItem",
        "RedeliveryFunctionRole: unexpected action s3:PutObject",
    ]
    assert item_key_findings(transformed(broken), REDELIVER)[0].startswith(
        "RedeliveryFunctionRole: dynamodb:GetItem, dynamodb:PutItem, dynamodb:UpdateItem, dynamodb:DeleteItem "
        'with condition {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["github-delivery#*"]}}'
    )


def test_pull_mode_on_other_resources_than_the_receivers_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    statements = role_statements(broken, "RedeliveryFunctionRole")
    statements["ArchiveDeliveries"]["Resource"] = {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}
    statements["PutDeliveryEvents"]["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"
    }
    findings = iam_findings(transformed(broken), PULL)
    assert (
        'RedeliveryFunctionRole: s3:PutObject on {"Fn::GetAtt": ["ArchiveBucket", "Arn"]}, '
        'expected {"Fn::Sub": "${ArchiveBucket.Arn}/*"}'
    ) in findings
    assert 'RedeliveryFunctionRole: missing permission events:PutEvents on {"Fn::GetAtt": ["WebhookBus", "Arn"]}' in (
        findings
    )


def test_redelivery_on_sams_generated_role_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    del broken["Resources"]["RedeliveryFunctionRole"]
    del broken["Resources"][REDELIVERY_FUNCTION]["Properties"]["Role"]
    findings = iam_findings(transformed(broken), EVERYTHING_ON)
    assert f"RedeliveryFunctionRole: managed policy {BASIC_EXECUTION_ROLE} is not on the allow-list" in findings
    assert "RedeliveryFunctionRole: missing permission dynamodb:GetItem" in findings


# -- Redelivery: off without hooks, and its shape when on ------------------------------------------------

REDELIVERY_RESOURCES = {
    REDELIVERY_FUNCTION,
    "RedeliveryFunctionRole",
    "RedeliveryLogGroup",
    "RedeliveryErrorsAlarm",
    "RedeliveryGaveUpAlarm",
    "RedeliveryHooksNotCheckedAlarm",
    "RedeliveryBacklogAlarm",
    # generated by SAM from the function's properties and its Schedule event
    "RedeliveryFunctionEventInvokeConfig",
    "RedeliveryFunctionSchedule",
    "RedeliveryFunctionSchedulePermission",
}


def test_without_hooks_there_is_no_redelivery(cloudformation: dict[str, Any], stack_off: dict[str, Any]) -> None:
    hooks_only = {k: v for k, v in EVERYTHING_ON.items() if k != "SecretKmsKeyArn"}
    stack_on = deployed(cloudformation, hooks_only)
    assert set(stack_on["Resources"]) - set(stack_off["Resources"]) == REDELIVERY_RESOURCES
    assert set(stack_off["Resources"]) <= set(stack_on["Resources"])
    assert set(stack_on["Outputs"]) - set(stack_off["Outputs"]) == {"RedeliveryFunctionName"}
    # Nothing left in the stack refers to the redelivery function, its role or log group.
    assert "Redelivery" not in json.dumps([stack_off["Resources"], stack_off["Outputs"]])


def test_everything_only_for_redelivery_has_its_condition(cloudformation: dict[str, Any]) -> None:
    for name in REDELIVERY_RESOURCES:
        assert cloudformation["Resources"][name]["Condition"] == "HasRedeliveryHooks", name
    assert cloudformation["Outputs"]["RedeliveryFunctionName"]["Condition"] == "HasRedeliveryHooks"
    assert cloudformation["Conditions"]["HasRedeliveryHooks"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "RedeliveryHooks"}, ""]}]
    }
    assert cloudformation["Parameters"]["RedeliveryHooks"]["Default"] == ""


def test_redelivery_function_shape(template: dict[str, Any], stack_on: dict[str, Any]) -> None:
    function = stack_on["Resources"][REDELIVERY_FUNCTION]["Properties"]
    assert template["Resources"][REDELIVERY_FUNCTION]["Metadata"]["BuildMethod"] == "makefile"
    assert function["Handler"] == "handler.redelivery.handler"
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["MemorySize"] == 1024  # everything on: pull mode, which parses deliveries of up to 25 MB
    memory = template["Resources"][REDELIVERY_FUNCTION]["Properties"]["MemorySize"]
    assert memory == {"Fn::If": ["IsPullMode", 1024, 256]}
    assert function["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
    assert function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "true"  # off by default
    # Runs never overlap; one that cannot start within a minute is dropped, a failed one not retried.
    assert function["ReservedConcurrentExecutions"] == 1
    [invoke_config] = of_type(stack_on, "AWS::Lambda::EventInvokeConfig").values()
    assert invoke_config["Properties"]["MaximumRetryAttempts"] == 0
    assert invoke_config["Properties"]["MaximumEventAgeInSeconds"] == 60
    [rule] = of_type(stack_on, "AWS::Events::Rule").values()
    assert rule["Properties"]["ScheduleExpression"] == {"Ref": "RedeliverySchedule"}
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [REDELIVERY_FUNCTION, "Arn"]}
    # The timeout is well under the default schedule (the code stops 5 s before it).
    schedule = template["Parameters"]["RedeliverySchedule"]["Default"]
    assert schedule == "rate(5 minutes)"
    assert 30 <= function["Timeout"] <= 300 / 2
    variables = function["Environment"]["Variables"]
    assert variables["REDELIVERY_STATE_TABLE"] == {"Ref": "DeliveriesTable"}
    assert variables["REDELIVERY_HOOKS"] == {"Ref": "RedeliveryHooks"}
    assert variables["GITHUB_TOKEN"] == ""  # a literal token is refused in a deployed function
    assert variables["POWERTOOLS_SERVICE_NAME"] == {"Fn::Sub": "${ServiceName}-redelivery"}
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}


def test_redelivery_parameters(template: dict[str, Any]) -> None:
    parameters = template["Parameters"]
    assert parameters["GitHubApiUrl"]["Default"] == "https://api.github.com"
    assert parameters["RedeliveryLookbackHours"]["Default"] == 72
    assert parameters["RedeliveryMaxAttempts"]["Default"] == 3
    for name in ("GitHubTokenParameterName", "GitHubAppId", "GitHubAppPrivateKeyParameterName"):
        assert parameters[name]["Default"] == "", name
    valid = {
        "RedeliveryHooks": "repos/octo-org/hello-world/hooks/42, orgs/octo.org/hooks/7,app",
        "GitHubApiUrl": "https://ghe.example.com/api/v3",
        "RedeliverySchedule": "cron(0/10 * * * ? *)",
    }
    assert parameter_findings(template, valid) == []
    for hooks in ("repos/octo-org/hooks/42", "repos/a/b/hooks/x", "orgs/a/hooks/1,", "https://github.com/a/b"):
        assert parameter_findings(template, {"RedeliveryHooks": hooks}), hooks
    assert parameter_findings(template, {"GitHubTokenParameterName": "github-token"})  # no leading slash
    assert parameter_findings(template, {"GitHubApiUrl": "http://ghe.example.com/api/v3"})


def test_redelivery_mode_is_redeliver_unless_pull_is_asked_for(
    template: dict[str, Any], cloudformation: dict[str, Any]
) -> None:
    parameter = template["Parameters"]["RedeliveryMode"]
    assert (parameter["Default"], parameter["AllowedValues"]) == ("redeliver", ["redeliver", "pull"])
    assert parameter_findings(template, {"RedeliveryMode": "Pull"})
    assert cloudformation["Conditions"]["IsPullMode"] == {"Fn::Equals": [{"Ref": "RedeliveryMode"}, "pull"]}
    for parameters, mode in ((REDELIVER, "redeliver"), (PULL, "pull")):
        stack = deployed(cloudformation, parameters)
        variables = stack["Resources"][REDELIVERY_FUNCTION]["Properties"]["Environment"]["Variables"]
        assert variables["REDELIVERY_MODE"] == {"Ref": "RedeliveryMode"}
        assert stack["Parameters"]["RedeliveryMode"] == mode


def test_pull_mode_has_the_receivers_pipeline_and_redeliver_mode_does_not(cloudformation: dict[str, Any]) -> None:
    pull, redeliver = deployed(cloudformation, PULL), deployed(cloudformation, REDELIVER)

    def variables(stack: dict[str, Any], function: str) -> dict[str, Any]:
        return stack["Resources"][function]["Properties"]["Environment"]["Variables"]

    receiver = variables(pull, FUNCTION)
    assert set(PIPELINE_VARIABLES) <= set(receiver)
    assert {name: variables(pull, REDELIVERY_FUNCTION)[name] for name in PIPELINE_VARIABLES} == {
        name: receiver[name] for name in PIPELINE_VARIABLES
    }
    assert not set(PIPELINE_VARIABLES) & set(variables(redeliver, REDELIVERY_FUNCTION))

    def grants(stack: dict[str, Any], role: str) -> dict[str, dict[str, Any]]:
        return {sid: s for sid, s in role_statements(stack, role).items() if sid not in ("WriteOwnLogs", "SendTraces")}

    pipeline = {"PutDeliveryEvents", "DeduplicateDeliveries", "ArchiveDeliveries"}
    assert set(grants(redeliver, "RedeliveryFunctionRole")) == {"ReadGitHubToken", "KeepRedeliveryState"}
    assert set(grants(pull, "RedeliveryFunctionRole")) == {"ReadGitHubToken", "KeepRedeliveryState"} | pipeline
    ours, theirs = grants(pull, "RedeliveryFunctionRole"), grants(pull, "WebhookFunctionRole")
    for sid in pipeline:
        assert (ours[sid]["Action"], ours[sid]["Resource"]) == (theirs[sid]["Action"], theirs[sid]["Resource"]), sid
    assert ours["DeduplicateDeliveries"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["github-delivery#*"]}
    }
    assert ours["KeepRedeliveryState"]["Condition"] == {
        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["redelivery#*"]}
    }


def test_a_pipeline_variable_unlike_the_receivers_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    variables = broken["Resources"][REDELIVERY_FUNCTION]["Properties"]["Environment"]["Variables"]
    variables["IDEMPOTENCY_TTL_SECONDS"] = {"Fn::If": ["IsPullMode", "86400", {"Ref": "AWS::NoValue"}]}
    variables["PAYLOAD_BUCKET"] = {"Ref": "ArchiveBucket"}  # without its !If
    assert pipeline_env_findings(transformed(broken), PULL) == [
        'RedeliveryFunction: IDEMPOTENCY_TTL_SECONDS is "86400" in pull mode, the receiver\'s is "345600"'
    ]
    assert pipeline_env_findings(transformed(broken), REDELIVER) == [
        "RedeliveryFunction: PAYLOAD_BUCKET is set outside pull mode"
    ]
    del variables["EVENT_MAX_ENTRY_BYTES"]
    assert 'RedeliveryFunction: EVENT_MAX_ENTRY_BYTES is null in pull mode, the receiver\'s is "262144"' in (
        pipeline_env_findings(transformed(broken), PULL)
    )


def test_redelivery_without_credentials_is_refused_at_deploy_time(template: dict[str, Any]) -> None:
    assert rule_findings(template) == []
    [finding] = rule_findings(template, {"RedeliveryHooks": "repos/octo-org/hello-world/hooks/42"})
    assert finding.startswith("RedeliveryNeedsCredentials: ")
    assert rule_findings(template, {"RedeliveryHooks": "app", "GitHubAppId": "1"})
    assert rule_findings(template, PARAMETER_SETS["redelivery-app"]) == []


def test_function_shape(cloudformation: dict[str, Any]) -> None:
    function = cloudformation["Resources"][FUNCTION]["Properties"]
    assert function["Handler"] == "handler.app.handler"
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Timeout"] <= 10  # GitHub gives up after 10 s
    # X-Ray costs $5 per million traces: off unless the Tracing parameter turns it on, with Powertools' spans.
    assert function["TracingConfig"] == {"Mode": {"Ref": "Tracing"}}
    assert cloudformation["Parameters"]["Tracing"]["Default"] == "PassThrough"
    disabled = function["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"]
    assert disabled == {"Fn::If": ["IsTracing", "false", "true"]}
    traced = deployed(cloudformation, {"Tracing": "Active"})["Resources"][FUNCTION]["Properties"]
    assert traced["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "false"
    assert function["MemorySize"] == {"Ref": "MemorySize"}
    assert function["LoggingConfig"] == {"LogGroup": {"Ref": "FunctionLogGroup"}}
    reserved = function["ReservedConcurrentExecutions"]
    assert reserved["Fn::If"][0] == "HasReservedConcurrency"


def test_http_api_uses_default_stage_and_payload_format_2(cloudformation: dict[str, Any]) -> None:
    [stage] = of_type(cloudformation, "AWS::ApiGatewayV2::Stage").values()
    assert stage["Properties"]["StageName"] == "$default"
    assert stage["Properties"]["AutoDeploy"] is True
    settings = stage["Properties"]["DefaultRouteSettings"]
    assert settings == {
        "ThrottlingBurstLimit": {"Ref": "ThrottlingBurstLimit"},
        "ThrottlingRateLimit": {"Ref": "ThrottlingRateLimit"},
    }
    access = stage["Properties"]["AccessLogSettings"]
    assert access["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    fields = json.loads(access["Format"])
    assert {"requestId", "status", "integrationError"} <= set(fields)
    [api] = of_type(cloudformation, "AWS::ApiGatewayV2::Api").values()
    operation = api["Properties"]["Body"]["paths"]["/webhook"]["post"]
    assert operation["x-amazon-apigateway-integration"]["payloadFormatVersion"] == "2.0"
    assert list(api["Properties"]["Body"]["paths"]) == ["/webhook"]


def test_throttling_defaults_let_a_legitimate_burst_through(template: dict[str, Any]) -> None:
    # GitHub sends a burst's deliveries concurrently and never retries a 429 by itself: only abuse
    # should be throttled. Route limits cannot exceed the account's (10,000 rps, 5,000 burst by default).
    parameters = template["Parameters"]
    rate = parameters["ThrottlingRateLimit"]["Default"]
    burst = parameters["ThrottlingBurstLimit"]["Default"]
    assert 500 <= rate <= 10_000
    assert max(rate, 1000) <= burst <= 5_000
    for name in ("ThrottlingRateLimit", "ThrottlingBurstLimit", "ReservedConcurrency"):
        assert "Sizing throttling and concurrency" in parameters[name]["Description"], name


def test_each_function_sets_exactly_the_variables_its_code_reads(template: dict[str, Any]) -> None:
    webhook = env_vars_read_by_the_code(FUNCTION)
    redelivery = env_vars_read_by_the_code(REDELIVERY_FUNCTION)
    assert {"WEBHOOK_SECRET_PARAMETER", "EVENT_BUS_NAME", "IDEMPOTENCY_TABLE"} <= webhook
    assert {"REDELIVERY_HOOKS", "GITHUB_TOKEN_PARAMETER", "REDELIVERY_STATE_TABLE", "GITHUB_API_URL"} <= redelivery
    shared = {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE", "POWERTOOLS_TRACE_DISABLED"}
    # The pipeline's, in pull mode.
    assert webhook & redelivery == shared | {"POWERTOOLS_LOG_LEVEL"} | set(PIPELINE_VARIABLES)
    assert "REDELIVERY_MODE" in redelivery
    assert env_findings(template) == []


def test_a_missing_variable_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    del broken["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]["IDEMPOTENCY_TABLE"]
    del broken["Resources"][REDELIVERY_FUNCTION]["Properties"]["Environment"]["Variables"]["REDELIVERY_MAX_ATTEMPTS"]
    assert env_findings(broken) == [
        "WebhookFunction: IDEMPOTENCY_TABLE is read by the code but not set by the template",
        "RedeliveryFunction: REDELIVERY_MAX_ATTEMPTS is read by the code but not set by the template",
    ]


def test_a_variable_nothing_reads_is_caught(template: dict[str, Any]) -> None:
    # A misspelt name, or a receiver's variable outside the pipeline on the redelivery function.
    broken = copy.deepcopy(template)
    variables = broken["Resources"][REDELIVERY_FUNCTION]["Properties"]["Environment"]["Variables"]
    variables["REDELIVERY_LOOKBACK_HOUR"] = variables.pop("REDELIVERY_LOOKBACK_HOURS")
    variables["WEBHOOK_MAX_BODY_BYTES"] = "6291456"
    assert env_findings(broken) == [
        "RedeliveryFunction: REDELIVERY_LOOKBACK_HOURS is read by the code but not set by the template",
        "RedeliveryFunction: REDELIVERY_LOOKBACK_HOUR is set by the template but not read by the code",
        "RedeliveryFunction: WEBHOOK_MAX_BODY_BYTES is set by the template but not read by the code",
    ]


def test_data_stores_are_safe_by_default(cloudformation: dict[str, Any]) -> None:
    table = cloudformation["Resources"]["DeliveriesTable"]["Properties"]
    assert table["BillingMode"] == "PAY_PER_REQUEST"
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    bucket = cloudformation["Resources"]["ArchiveBucket"]["Properties"]
    assert all(bucket["PublicAccessBlockConfiguration"].values())
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    [rule] = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "ArchiveExpirationDays"}
    [deny] = cloudformation["Resources"]["ArchiveBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    for group in ("FunctionLogGroup", "ApiAccessLogGroup", "RedeliveryLogGroup"):
        assert cloudformation["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_alarms_cover_errors_throttles_5xx_signature_rejections_and_redelivery(cloudformation: dict[str, Any]) -> None:
    alarms = {name: a["Properties"] for name, a in of_type(cloudformation, "AWS::CloudWatch::Alarm").items()}
    metrics = {name: (a["Namespace"], a["MetricName"]) for name, a in alarms.items()}
    assert metrics == {
        "FunctionErrorsAlarm": ("AWS/Lambda", "Errors"),
        "FunctionThrottlesAlarm": ("AWS/Lambda", "Throttles"),
        "Api5xxAlarm": ("AWS/ApiGateway", "5xx"),
        "SignatureRejectionsAlarm": ({"Ref": "MetricsNamespace"}, "DeliveryRejected"),
        "RedeliveryErrorsAlarm": ("AWS/Lambda", "Errors"),
        "RedeliveryGaveUpAlarm": ({"Ref": "MetricsNamespace"}, "RedeliveryGaveUp"),
        "RedeliveryHooksNotCheckedAlarm": ({"Ref": "MetricsNamespace"}, "HooksNotChecked"),
        "RedeliveryBacklogAlarm": ({"Ref": "MetricsNamespace"}, "RedeliveryBacklog"),
    }
    assert {"Name": "reason", "Value": "signature"} in alarms["SignatureRejectionsAlarm"]["Dimensions"]
    assert alarms["RedeliveryErrorsAlarm"]["Dimensions"] == [
        {"Name": "FunctionName", "Value": {"Ref": REDELIVERY_FUNCTION}}
    ]
    # The redelivery function's metrics carry its own service name (POWERTOOLS_SERVICE_NAME).
    gave_up = alarms["RedeliveryGaveUpAlarm"]
    variables = cloudformation["Resources"][REDELIVERY_FUNCTION]["Properties"]["Environment"]["Variables"]
    assert gave_up["Dimensions"] == [{"Name": "service", "Value": variables["POWERTOOLS_SERVICE_NAME"]}]
    assert (gave_up["Statistic"], gave_up["Period"], gave_up["Threshold"]) == ("Sum", 300, 1)
    assert gave_up["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    for name in ("RedeliveryHooksNotCheckedAlarm", "RedeliveryBacklogAlarm"):
        assert alarms[name]["Dimensions"] == gave_up["Dimensions"], name
    # Hooks not checked in 2 of 3 five-minute periods: one run cut short is not an alarm, two are.
    not_checked = alarms["RedeliveryHooksNotCheckedAlarm"]
    assert (not_checked["Statistic"], not_checked["Period"], not_checked["Threshold"]) == ("Sum", 300, 1)
    assert (not_checked["EvaluationPeriods"], not_checked["DatapointsToAlarm"]) == (3, 2)
    assert not_checked["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    # Two runs of the default schedule fall within the evaluated periods (periods without a run are not breaching).
    schedule = cloudformation["Parameters"]["RedeliverySchedule"]["Default"]
    assert schedule == "rate(5 minutes)"
    assert not_checked["Period"] * not_checked["EvaluationPeriods"] >= 2 * 5 * 60
    # A backlog left at the end of every run for 3 hours: it does not drain.
    backlog = alarms["RedeliveryBacklogAlarm"]
    assert (backlog["Statistic"], backlog["Period"], backlog["EvaluationPeriods"]) == ("Minimum", 3600, 3)
    assert (backlog["ComparisonOperator"], backlog["Threshold"]) == ("GreaterThanThreshold", 0)
    assert backlog.get("DatapointsToAlarm", 3) == 3
    for alarm in alarms.values():
        assert alarm["TreatMissingData"] == "notBreaching"
        for actions in ("AlarmActions", "OKActions"):
            assert alarm[actions] == {"Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]}


def test_outputs(cloudformation: dict[str, Any]) -> None:
    outputs = cloudformation["Outputs"]
    assert outputs["WebhookUrl"]["Value"]["Fn::Sub"].endswith("/webhook")
    assert {"EventBusName", "EventBusArn", "ArchiveBucketName", "DeliveriesTableName"} <= set(outputs)
    assert outputs["RedeliveryFunctionName"]["Value"] == {"Ref": REDELIVERY_FUNCTION}


def test_secret_is_not_created_by_the_template(cloudformation: dict[str, Any]) -> None:
    assert of_type(cloudformation, "AWS::SSM::Parameter") == {}


def test_sam_local_env_file_only_sets_variables_the_template_declares(template: dict[str, Any]) -> None:
    # `sam local invoke --env-vars` ignores variables the template does not declare.
    local = json.loads((ROOT / "env.local.json").read_text(encoding="utf-8"))
    assert FUNCTION in local
    assert set(local) <= set(FUNCTIONS)
    for function, variables in local.items():
        declared = template["Resources"][function]["Properties"]["Environment"]["Variables"]
        assert set(variables) <= set(declared), function
    # Literal secrets are declared for `sam local`, and empty when deployed.
    assert template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]["WEBHOOK_SECRET"] == ""
    assert template["Resources"][REDELIVERY_FUNCTION]["Properties"]["Environment"]["Variables"]["GITHUB_TOKEN"] == ""


def test_snapstart_is_an_option_on_the_published_alias(cloudformation: dict[str, Any]) -> None:
    function = cloudformation["Resources"][FUNCTION]["Properties"]
    assert function["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    [alias] = of_type(cloudformation, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    [api] = of_type(cloudformation, "AWS::ApiGatewayV2::Api").values()
    uri = api["Properties"]["Body"]["paths"]["/webhook"]["post"]["x-amazon-apigateway-integration"]["uri"]
    assert "WebhookFunctionAliaslive" in json.dumps(uri)  # the API invokes the alias, so SnapStart applies
