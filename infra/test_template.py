"""template.yaml, checked on the template SAM transforms it into (aws-sam-translator), offline."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from infra.checks import (
    FUNCTION,
    ROOT,
    env_findings,
    env_vars_read_by_the_code,
    iam_findings,
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


def test_function_permissions_are_least_privilege(cloudformation: dict[str, Any]) -> None:
    assert iam_findings(cloudformation) == []


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
    statements = broken["Resources"][FUNCTION]["Properties"]["Policies"][0]["Statement"]
    statements[1]["Resource"] = "*"
    assert iam_findings(transformed(broken)) == ["WebhookFunctionRole: events:PutEvents on a wildcard resource"]


def test_a_broader_action_is_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"][FUNCTION]["Properties"]["Policies"][0]["Statement"][3]["Action"] = "s3:*"
    findings = iam_findings(transformed(broken))
    assert "WebhookFunctionRole: wildcard action s3:*" in findings
    assert "missing permission s3:PutObject" in findings


def test_sam_policy_templates_with_wildcards_are_caught(template: dict[str, Any]) -> None:
    broken = copy.deepcopy(template)
    broken["Resources"][FUNCTION]["Properties"]["Policies"].append({"S3CrudPolicy": {"BucketName": "*"}})
    assert iam_findings(transformed(broken))


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
