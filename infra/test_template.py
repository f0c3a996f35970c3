"""template.yaml, checked on the template SAM transforms it into (aws-sam-translator), offline."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.checks import (
    FUNCTION,
    NO_RESOURCE_LEVEL_ACTIONS,
    ROOT,
    as_list,
    env_findings,
    env_vars_read_by_the_code,
    iam_findings,
    inline_statements,
    load_template,
    transformed,
)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def cloudformation(template: dict[str, Any]) -> dict[str, Any]:
    return transformed(template)


def of_type(cloudformation: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in cloudformation["Resources"].items() if r["Type"] == kind}


# Managed policies (AWS's or ours) the template may attach by ARN, each with its policy document
# written out here so that it is checked like an inline policy. None: the function's role has inline
# policies only. SAM's defaults (AWSLambdaBasicExecutionRole, AWSXrayWriteOnlyAccess) grant on "*".
ALLOWED_MANAGED_POLICIES: dict[str, dict[str, Any]] = {}

BASIC_EXECUTION_ROLE = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
XRAY_WRITE_ONLY = "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess"


def role_statements(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The function role's inline statements, by Sid (to break a copy of the template)."""
    policies = template["Resources"]["WebhookFunctionRole"]["Properties"]["Policies"]
    return {statement["Sid"]: statement for policy in policies for statement in policy["PolicyDocument"]["Statement"]}


def test_function_permissions_are_least_privilege(cloudformation: dict[str, Any]) -> None:
    assert iam_findings(cloudformation, ALLOWED_MANAGED_POLICIES) == []


def test_no_role_has_managed_policies(cloudformation: dict[str, Any]) -> None:
    for name, role in of_type(cloudformation, "AWS::IAM::Role").items():
        assert set(role["Properties"].get("ManagedPolicyArns", [])) <= set(ALLOWED_MANAGED_POLICIES), name


def test_function_runs_as_its_own_role(template: dict[str, Any], cloudformation: dict[str, Any]) -> None:
    function = template["Resources"][FUNCTION]["Properties"]
    # With Role set, SAM silently ignores Policies: a statement added there would never apply.
    assert "Policies" not in function
    assert "Policies" not in template.get("Globals", {}).get("Function", {})
    assert function["Role"] == {"Fn::GetAtt": ["WebhookFunctionRole", "Arn"]}
    assert cloudformation["Resources"][FUNCTION]["Properties"]["Role"] == function["Role"]
    assert list(of_type(cloudformation, "AWS::IAM::Role")) == ["WebhookFunctionRole"]
    trust = cloudformation["Resources"]["WebhookFunctionRole"]["Properties"]["AssumeRolePolicyDocument"]
    [statement] = trust["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert as_list(statement["Action"]) == ["sts:AssumeRole"]


def test_logs_only_to_its_own_log_group(cloudformation: dict[str, Any]) -> None:
    logs = [
        statement
        for _, statement in inline_statements(cloudformation["Resources"])
        if any(action.startswith("logs:") for action in as_list(statement["Action"]))
    ]
    assert logs == [role_statements(cloudformation)["WriteOwnLogs"]]
    assert sorted(as_list(logs[0]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
    # The LogGroup's Arn attribute is arn:...:log-group:<name>:*, which covers its streams.
    assert logs[0]["Resource"] == {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}


def test_wildcard_resources_only_for_actions_without_resource_level_permissions(
    cloudformation: dict[str, Any],
) -> None:
    on_wildcard = {
        action
        for _, statement in inline_statements(cloudformation["Resources"])
        if "*" in as_list(statement.get("Resource"))
        for action in as_list(statement["Action"])
    }
    assert on_wildcard == {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
    assert on_wildcard <= NO_RESOURCE_LEVEL_ACTIONS


def test_kms_decrypt_only_with_a_customer_key_and_only_through_ssm(cloudformation: dict[str, Any]) -> None:
    policy = cloudformation["Resources"]["SecretKeyDecryptPolicy"]
    assert policy["Condition"] == "HasKmsKey"
    [statement] = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "ssm.${AWS::Region}.${AWS::URLSuffix}"
    }
    assert cloudformation["Conditions"]["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "SecretKmsKeyArn"}, ""]}]}


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
    assert "missing permission s3:PutObject" in findings


def test_not_action_and_not_resource_are_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    statement = role_statements(broken)["PutDeliveryEvents"]
    statement["NotResource"] = statement.pop("Resource")
    findings = iam_findings(transformed(broken))
    assert "WebhookFunctionRole: an Allow with NotResource grants everything not listed" in findings


def test_a_managed_policy_on_the_role_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"]["WebhookFunctionRole"]["Properties"]["ManagedPolicyArns"] = [XRAY_WRITE_ONLY]
    assert iam_findings(transformed(broken), ALLOWED_MANAGED_POLICIES) == [
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
    findings = iam_findings(transformed(broken), ALLOWED_MANAGED_POLICIES)
    assert findings == [
        f"WebhookFunctionRole: managed policy {BASIC_EXECUTION_ROLE} is not on the allow-list",
        f"WebhookFunctionRole: managed policy {XRAY_WRITE_ONLY} is not on the allow-list",
        "missing permission logs:CreateLogStream",
        "missing permission logs:PutLogEvents",
        "missing permission xray:PutTelemetryRecords",
        "missing permission xray:PutTraceSegments",
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
    assert iam_findings(transformed(broken), allowed) == [
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


def test_function_shape(cloudformation: dict[str, Any]) -> None:
    function = cloudformation["Resources"][FUNCTION]["Properties"]
    assert function["Handler"] == "handler.app.handler"
    assert function["Runtime"] == "python3.13"
    assert function["Architectures"] == ["arm64"]
    assert function["Timeout"] <= 10  # GitHub gives up after 10 s
    assert function["TracingConfig"] == {"Mode": "Active"}
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


def test_every_variable_the_code_reads_is_set(template: dict[str, Any]) -> None:
    assert {"WEBHOOK_SECRET_PARAMETER", "EVENT_BUS_NAME", "IDEMPOTENCY_TABLE"} <= env_vars_read_by_the_code()
    assert env_findings(template) == []


def test_a_missing_variable_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    del broken["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]["IDEMPOTENCY_TABLE"]
    assert env_findings(broken) == ["IDEMPOTENCY_TABLE is read by the code but not set by the template"]


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
    for group in ("FunctionLogGroup", "ApiAccessLogGroup"):
        assert cloudformation["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_alarms_cover_errors_throttles_5xx_and_signature_rejections(cloudformation: dict[str, Any]) -> None:
    alarms = {
        a["Properties"]["MetricName"]: a["Properties"]
        for a in of_type(cloudformation, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {"Errors", "Throttles", "5xx", "DeliveryRejected"}
    assert {"Name": "reason", "Value": "signature"} in alarms["DeliveryRejected"]["Dimensions"]
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == {
            "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
        }


def test_outputs(cloudformation: dict[str, Any]) -> None:
    outputs = cloudformation["Outputs"]
    assert outputs["WebhookUrl"]["Value"]["Fn::Sub"].endswith("/webhook")
    assert {"EventBusName", "EventBusArn", "ArchiveBucketName", "DeliveriesTableName"} <= set(outputs)


def test_secret_is_not_created_by_the_template(cloudformation: dict[str, Any]) -> None:
    assert of_type(cloudformation, "AWS::SSM::Parameter") == {}


def test_sam_local_env_file_only_sets_variables_the_template_declares(template: dict[str, Any]) -> None:
    # `sam local invoke --env-vars` ignores variables the template does not declare.
    local = json.loads((ROOT / "env.local.json").read_text(encoding="utf-8"))
    declared = template["Resources"][FUNCTION]["Properties"]["Environment"]["Variables"]
    assert set(local) == {FUNCTION}
    assert set(local[FUNCTION]) <= set(declared)
    assert declared["WEBHOOK_SECRET"] == ""  # empty when deployed


def test_snapstart_is_an_option_on_the_published_alias(cloudformation: dict[str, Any]) -> None:
    function = cloudformation["Resources"][FUNCTION]["Properties"]
    assert function["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
    [alias] = of_type(cloudformation, "AWS::Lambda::Alias").values()
    assert alias["Properties"]["Name"] == "live"
    [api] = of_type(cloudformation, "AWS::ApiGatewayV2::Api").values()
    uri = api["Properties"]["Body"]["paths"]["/webhook"]["post"]["x-amazon-apigateway-integration"]["uri"]
    assert "WebhookFunctionAliaslive" in json.dumps(uri)  # the API invokes the alias, so SnapStart applies
