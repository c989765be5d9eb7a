"""Deploying template.yaml into the simulated account as CloudFormation and SAM would.

Resources are created on first reference (`_resolve`), so each exists before what refers to it.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Final

from tagpatch_local import simulator
from tagpatch_local.account_facts import ACCOUNT_ID, LOCAL_ENVIRONMENT
from tagpatch_local.clients import AccountClients
from tagpatch_local.dispatch import LambdaDispatcher, LocalFunction
from tagpatch_local.template import FunctionSpec, Template, TemplateError, resolve, substitute_definition

# Lambda's execution-role trust policy: only the Lambda service may assume a function's role.
LAMBDA_TRUST_POLICY: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


# The SAM policy templates the runner expands, as samtranslator's policy_templates.json defines them
# (AWS SAM Developer Guide, "Policy template list"): template name -> its statement from its parameters.
SAM_POLICY_TEMPLATES: Final[Mapping[str, Callable[[Mapping[str, Any]], dict[str, Any]]]] = {
    "LambdaInvokePolicy": lambda parameters: {
        "Effect": "Allow",
        "Action": ["lambda:InvokeFunction"],
        "Resource": {
            "Fn::Sub": [
                "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:${functionName}*",
                {"functionName": parameters["FunctionName"]},
            ]
        },
    },
}
# The state machine's execution role: SAM lets Step Functions assume it.
STATES_TRUST_POLICY: Final = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "states.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
)


def coerce_to_shape(value: Any, shape: Any) -> Any:
    """CloudFormation passes parameters as strings; give each value the type the API's model wants.

    Keys the operation does not know are dropped (CloudFormation-only properties).
    """
    if shape.type_name == "structure":
        return {key: coerce_to_shape(item, shape.members[key]) for key, item in value.items() if key in shape.members}
    if shape.type_name == "list":
        return [coerce_to_shape(item, shape.member) for item in value]
    if shape.type_name in {"integer", "long"}:
        return int(value)
    if shape.type_name == "boolean":
        return value if isinstance(value, bool) else str(value).lower() == "true"
    return value


ORG_CYCLE_MACHINE: Final = "OrgCycleStateMachine"


def machine_role_name(logical_id: str) -> str:
    """A state machine's execution role, holding its Policies from template.yaml."""
    return f"tagpatch-local-{logical_id}Role"


def generated_name(stack_name: str, logical_id: str, limit: int = 64) -> str:
    """The physical name CloudFormation gives a resource without a name of its own:
    `<stack>-<logical id>-<unique suffix>`, cut to the type's length limit (IAM roles: 64). The suffix is
    drawn at random in AWS; here it is derived from the names, so local runs are repeatable."""
    suffix = hashlib.sha256(f"{stack_name}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack_name}-{logical_id}"[: limit - len(suffix) - 1]
    return f"{head}-{suffix}"


class TemplateDeployment(AccountClients):
    """The stack from template.yaml, created in the simulated account (SimulatedAccount mixes it in)."""

    # The account and stack the template is deployed as: the hub's, unless a member's stack says otherwise.
    account_id: str = ACCOUNT_ID
    stack_name: str = "tagpatch-local"
    template: Template
    region: str
    parameters: dict[str, str]
    physical: dict[tuple[str, str | None], str]
    dispatcher: LambdaDispatcher
    state_machine_arn: str
    org_cycle_arn: str = ""  # the org cycle's state machine, when the template has one

    # -- deploying the template --
    def _resolve(self, logical_id: str, attribute: str | None) -> str:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::Partition": "aws",
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if attribute is None and logical_id in pseudo:
            return pseudo[logical_id]
        if attribute is None and logical_id in self.parameters:
            return self.parameters[logical_id]
        key = (logical_id, attribute)
        if key not in self.physical:
            self._create(logical_id)
        if key not in self.physical:
            raise TemplateError(f"the local runner cannot resolve {logical_id}{'.' + attribute if attribute else ''}")
        return self.physical[key]

    def _create(self, logical_id: str) -> None:
        """Create a resource that a function's environment or the state machine refers to."""
        kind = self.template.resource_type(logical_id)
        creator = self._CREATORS.get(kind)
        if creator is None:
            raise TemplateError(f"the local runner does not create {kind} ({logical_id})")
        creator(self, logical_id)

    def _create_s3_bucket(self, logical_id: str) -> None:
        name = f"tagpatch-local-{logical_id.lower()}-{self.account_id}"
        self.client("s3").create_bucket(Bucket=name)
        self.physical.update({(logical_id, None): name, (logical_id, "Arn"): f"arn:aws:s3:::{name}"})

    def _create_sns_topic(self, logical_id: str) -> None:
        properties = self.template.resources[logical_id].get("Properties", {})
        # The topic's key matters: publishing to an encrypted topic needs the publisher's KMS permissions.
        key = properties.get("KmsMasterKeyId")
        attributes = {"KmsMasterKeyId": str(resolve(key, self._resolve))} if key is not None else {}
        arn = self.client("sns").create_topic(Name=f"tagpatch-local-{logical_id}", Attributes=attributes)["TopicArn"]
        self.physical.update({(logical_id, None): arn, (logical_id, "TopicName"): arn.rsplit(":", 1)[1]})

    def _create_kms_key(self, logical_id: str) -> None:
        properties = self.template.resources[logical_id].get("Properties", {})
        key_policy = resolve(properties.get("KeyPolicy"), self._resolve)
        extra = {"Policy": json.dumps(key_policy)} if key_policy else {}
        meta = self.client("kms").create_key(Description=logical_id, **extra)["KeyMetadata"]
        self.physical.update({(logical_id, None): meta["KeyId"], (logical_id, "Arn"): meta["Arn"]})

    def _create_events_rule(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        events = self.client("events")
        name = f"tagpatch-local-{logical_id}"
        arn = events.put_rule(
            Name=name,
            EventPattern=json.dumps(properties["EventPattern"]),
            State=properties.get("State", "ENABLED"),
            Description=properties.get("Description", ""),
        )["RuleArn"]
        self.physical.update({(logical_id, None): name, (logical_id, "Arn"): arn})
        targets = [
            coerce_to_shape(target, events.meta.service_model.shape_for("Target"))
            for target in properties.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, Targets=targets)

    def _create_sqs_queue_policy(self, logical_id: str) -> None:
        properties = resolve(self._decided(self.template.resources[logical_id].get("Properties", {})), self._resolve)
        for queue_url in properties["Queues"]:
            self.client("sqs").set_queue_attributes(
                QueueUrl=queue_url, Attributes={"Policy": json.dumps(properties["PolicyDocument"])}
            )
        self.physical[(logical_id, None)] = logical_id

    def _create_sns_topic_policy(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        for topic_arn in properties["Topics"]:
            self.client("sns").set_topic_attributes(
                TopicArn=topic_arn, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
            )
        self.physical[(logical_id, None)] = logical_id

    def _create_cloudwatch_alarm(self, logical_id: str) -> None:
        cloudwatch = self.client("cloudwatch")
        name = f"tagpatch-local-{logical_id}"
        request = coerce_to_shape(
            resolve(self.template.resources[logical_id]["Properties"], self._resolve),
            cloudwatch.meta.service_model.operation_model("PutMetricAlarm").input_shape,
        )
        cloudwatch.put_metric_alarm(**{**request, "AlarmName": name})
        arn = f"arn:aws:cloudwatch:{self.region}:{self.account_id}:alarm:{name}"
        self.physical.update({(logical_id, None): name, (logical_id, "Arn"): arn})

    def _create_cloudwatch_dashboard(self, logical_id: str) -> None:
        # DashboardBody is a !Sub whose variable map may hold Fn::If (an alarm that exists under a condition).
        properties = resolve(self._decided(self.template.resources[logical_id]["Properties"]), self._resolve)
        name = str(properties.get("DashboardName") or f"tagpatch-local-{logical_id}")
        self.client("cloudwatch").put_dashboard(DashboardName=name, DashboardBody=properties["DashboardBody"])
        self.physical[(logical_id, None)] = name

    def _create_s3_bucket_policy(self, logical_id: str) -> None:
        properties = resolve(self._decided(self.template.resources[logical_id]["Properties"]), self._resolve)
        self.client("s3").put_bucket_policy(
            Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"])
        )
        self.physical[(logical_id, None)] = logical_id

    def _create_ssm_patch_baseline(self, logical_id: str) -> None:
        ssm = self.client("ssm")
        request = coerce_to_shape(
            resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve),
            ssm.meta.service_model.operation_model("CreatePatchBaseline").input_shape,
        )
        baseline_id = ssm.create_patch_baseline(**request)["BaselineId"]
        self.physical[(logical_id, None)] = baseline_id

    def _create_ssm_document(self, logical_id: str) -> None:
        # CloudFormation sends an object Content as JSON (DocumentFormat defaults to JSON) and names an
        # unnamed document after the stack; the runner names it after the logical id.
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        name = properties.get("Name") or f"tagpatch-local-{logical_id}"
        content = properties["Content"]
        self.client("ssm").create_document(
            Name=name,
            Content=content if isinstance(content, str) else json.dumps(content),
            DocumentType=properties.get("DocumentType", "Command"),
            DocumentFormat=properties.get("DocumentFormat", "JSON"),
        )
        self.physical[(logical_id, None)] = name

    def _create_ssm_resource_data_sync(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        destination = properties["S3Destination"]
        self.client("ssm").create_resource_data_sync(
            SyncName=properties["SyncName"],
            SyncType=properties.get("SyncType", "SyncToDestination"),
            S3Destination={
                "BucketName": destination["BucketName"],
                "Prefix": destination.get("BucketPrefix", ""),
                "SyncFormat": destination["SyncFormat"],
                "Region": destination["BucketRegion"],
            },
        )
        self.physical[(logical_id, None)] = properties["SyncName"]

    def _create_serverless_function(self, logical_id: str) -> None:
        self._create_function(self.template.functions()[logical_id])

    def _create_lambda_permission(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        extra = {k: properties[k] for k in ("SourceArn", "SourceAccount") if k in properties}
        self.client("lambda").add_permission(
            FunctionName=properties["FunctionName"],
            StatementId=logical_id,
            Action=properties["Action"],
            Principal=properties["Principal"],
            **extra,
        )
        self.physical[(logical_id, None)] = logical_id

    def _create_config_config_rule(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        rule = simulator.config.put_rule(self.account_id, self.region, properties)
        self.physical.update({(logical_id, None): rule.name, (logical_id, "Arn"): rule.arn})

    def _create_scheduler_schedule_group(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        name = str(properties.get("Name") or f"tagpatch-local-{logical_id}")
        arn = self.client("scheduler").create_schedule_group(Name=name)["ScheduleGroupArn"]
        self.physical.update({(logical_id, None): name, (logical_id, "Arn"): arn})

    def _create_sqs_queue(self, logical_id: str) -> None:
        sqs = self.client("sqs")
        name = f"tagpatch-local-{logical_id}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.physical.update({(logical_id, None): url, (logical_id, "Arn"): arn, (logical_id, "QueueName"): name})

    def _create_iam_role(self, logical_id: str) -> None:
        # A service role (Scheduler's), or a spoke's: its name, trust policy and inline policies as the
        # template gives them.
        properties = resolve(self.template.resources[logical_id].get("Properties", {}), self._resolve)
        iam = self.client("iam")
        role_name = str(properties.get("RoleName") or f"tagpatch-local-{logical_id}")
        arn = iam.create_role(
            RoleName=role_name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"])
        )["Role"]["Arn"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=role_name,
                PolicyName=policy["PolicyName"],
                PolicyDocument=json.dumps(policy["PolicyDocument"]),
            )
        self.physical.update({(logical_id, None): role_name, (logical_id, "Arn"): arn})

    def _create_glue_database(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id]["Properties"], self._resolve)
        name = str(properties["DatabaseInput"]["Name"])
        self.client("glue").create_database(DatabaseInput=properties["DatabaseInput"])
        self.physical[(logical_id, None)] = name

    def _create_glue_table(self, logical_id: str) -> None:
        properties = resolve(self.template.resources[logical_id]["Properties"], self._resolve)
        name = str(properties["TableInput"]["Name"])
        self.client("glue").create_table(DatabaseName=properties["DatabaseName"], TableInput=properties["TableInput"])
        self.physical[(logical_id, None)] = name

    def _create_athena_work_group(self, logical_id: str) -> None:
        # CloudFormation's WorkGroupConfiguration is the API's Configuration.
        athena = self.client("athena")
        properties = resolve(self.template.resources[logical_id]["Properties"], self._resolve)
        configuration = coerce_to_shape(
            properties.get("WorkGroupConfiguration", {}), athena.meta.service_model.shape_for("WorkGroupConfiguration")
        )
        name = str(properties["Name"])
        athena.create_work_group(Name=name, Description=properties.get("Description", ""), Configuration=configuration)
        self.physical[(logical_id, None)] = name

    def _quicksight_request(self, logical_id: str, operation: str) -> dict[str, Any]:
        # AWS::QuickSight::* properties carry the API's member names.
        quicksight = self.client("quicksight")
        request: dict[str, Any] = coerce_to_shape(
            resolve(self.template.resources[logical_id]["Properties"], self._resolve),
            quicksight.meta.service_model.operation_model(operation).input_shape,
        )
        return request

    def _create_quicksight_data_source(self, logical_id: str) -> None:
        request = self._quicksight_request(logical_id, "CreateDataSource")
        arn = self.client("quicksight").create_data_source(**request)["Arn"]
        self.physical.update({(logical_id, None): request["DataSourceId"], (logical_id, "Arn"): arn})

    def _create_quicksight_data_set(self, logical_id: str) -> None:
        request = self._quicksight_request(logical_id, "CreateDataSet")
        arn = self.client("quicksight").create_data_set(**request)["Arn"]
        self.physical.update({(logical_id, None): request["DataSetId"], (logical_id, "Arn"): arn})

    def _create_quicksight_dashboard(self, logical_id: str) -> None:
        quicksight = self.client("quicksight")
        request = self._quicksight_request(logical_id, "CreateDashboard")
        arn = quicksight.create_dashboard(**request)["Arn"]
        # CloudFormation waits for the version QuickSight builds, and fails the stack if it failed.
        version = quicksight.describe_dashboard(
            AwsAccountId=request["AwsAccountId"], DashboardId=request["DashboardId"]
        )["Dashboard"]["Version"]
        if version["Status"] != "CREATION_SUCCESSFUL":
            errors = "; ".join(f"{error['Type']}: {error.get('Message', '')}" for error in version.get("Errors", []))
            raise TemplateError(
                f"{logical_id}: QuickSight did not create the dashboard ({version['Status']}): {errors}"
            )
        self.physical.update({(logical_id, None): request["DashboardId"], (logical_id, "Arn"): arn})

    # Each resource type the runner deploys -> the method that creates it (as CloudFormation would).
    _CREATORS: ClassVar[Mapping[str, Callable[[TemplateDeployment, str], None]]] = {
        "AWS::S3::Bucket": _create_s3_bucket,
        "AWS::SNS::Topic": _create_sns_topic,
        "AWS::KMS::Key": _create_kms_key,
        "AWS::Events::Rule": _create_events_rule,
        "AWS::SQS::QueuePolicy": _create_sqs_queue_policy,
        "AWS::SNS::TopicPolicy": _create_sns_topic_policy,
        "AWS::CloudWatch::Alarm": _create_cloudwatch_alarm,
        "AWS::CloudWatch::Dashboard": _create_cloudwatch_dashboard,
        "AWS::S3::BucketPolicy": _create_s3_bucket_policy,
        "AWS::SSM::PatchBaseline": _create_ssm_patch_baseline,
        "AWS::SSM::ResourceDataSync": _create_ssm_resource_data_sync,
        "AWS::SSM::Document": _create_ssm_document,
        "AWS::Serverless::Function": _create_serverless_function,
        "AWS::Lambda::Permission": _create_lambda_permission,
        "AWS::Config::ConfigRule": _create_config_config_rule,
        "AWS::Scheduler::ScheduleGroup": _create_scheduler_schedule_group,
        "AWS::SQS::Queue": _create_sqs_queue,
        "AWS::IAM::Role": _create_iam_role,
        "AWS::Glue::Database": _create_glue_database,
        "AWS::Glue::Table": _create_glue_table,
        "AWS::Athena::WorkGroup": _create_athena_work_group,
        "AWS::QuickSight::DataSource": _create_quicksight_data_source,
        "AWS::QuickSight::DataSet": _create_quicksight_data_set,
        "AWS::QuickSight::Dashboard": _create_quicksight_dashboard,
    }

    def _environment_for(self, spec: FunctionSpec) -> dict[str, str]:
        environment = {
            name: str(resolve(self._decided(value), self._resolve)) for name, value in spec.environment.items()
        }
        # Layer files are mounted under /opt in Lambda; locally, find them in the layer's source.
        for name, value in environment.items():
            if value.startswith("/opt/"):
                relative = value.removeprefix("/opt/")
                candidates = [self.template.layer_dir(layer) / relative for layer in spec.layer_ids]
                found = next((path for path in candidates if path.exists()), None)
                if found is None:
                    raise TemplateError(f"{spec.logical_id}: {name}={value} is in none of its layers")
                environment[name] = str(found)
        return environment

    def enabled(self, logical_id: str) -> bool:
        """Whether CloudFormation creates the resource: its Condition, if any, holds for these parameters."""
        condition = self.template.resources[logical_id].get("Condition")
        return condition is None or bool(self._condition({"Condition": condition}))

    def _condition(self, expression: Any) -> Any:
        """Evaluate a template condition (Fn::Equals/Not/And/Or, Condition) with the stack's parameters."""
        if isinstance(expression, dict) and len(expression) == 1:
            ((name, argument),) = expression.items()
            if name in ("Condition", "Fn::Condition"):  # the short form !Condition loads as Fn::Condition
                return self._condition(self.template.document.get("Conditions", {})[argument])
            if name == "Fn::Equals":
                left, right = (self._condition(item) for item in argument)
                return str(left) == str(right)
            if name == "Fn::Not":
                return not self._condition(argument[0])
            if name == "Fn::And":
                return all(self._condition(item) for item in argument)
            if name == "Fn::Or":
                return any(self._condition(item) for item in argument)
        return resolve(expression, self._resolve)

    def _decided(self, value: Any) -> Any:
        """`value` with each Fn::If replaced by its chosen branch and AWS::NoValue dropped."""
        if isinstance(value, list):
            return [item for item in (self._decided(item) for item in value) if item != {"Ref": "AWS::NoValue"}]
        if not isinstance(value, dict):
            return value
        if set(value) == {"Fn::If"}:
            condition, when_true, when_false = value["Fn::If"]
            return self._decided(when_true if self._condition({"Condition": condition}) else when_false)
        # A key whose value is AWS::NoValue is left out, as CloudFormation leaves out such a property.
        decided = {key: self._decided(item) for key, item in value.items()}
        return {key: item for key, item in decided.items() if item != {"Ref": "AWS::NoValue"}}

    def _policy_documents(self, logical_id: str) -> list[dict[str, Any]]:
        """A function's or the state machine's policies as SAM and CloudFormation would deploy them
        (Fn::If decided, SAM policy templates in SAM_POLICY_TEMPLATES expanded)."""
        documents = []
        for policy in self.template.resources[logical_id].get("Properties", {}).get("Policies", []):
            chosen = policy
            if isinstance(policy, dict) and "Fn::If" in policy:
                condition, when_true, when_false = policy["Fn::If"]
                chosen = when_true if self._condition({"Condition": condition}) else when_false
                if chosen == {"Ref": "AWS::NoValue"}:
                    continue
            if isinstance(chosen, dict) and len(chosen) == 1 and next(iter(chosen)) in SAM_POLICY_TEMPLATES:
                ((name, parameters),) = chosen.items()
                chosen = {"Version": "2012-10-17", "Statement": [SAM_POLICY_TEMPLATES[name](parameters)]}
            if not isinstance(chosen, dict) or "Statement" not in chosen:
                # A managed policy or another SAM policy template would grant what the runner cannot see.
                raise TemplateError(f"{logical_id}: the local runner deploys only inline policy statements: {chosen!r}")
            documents.append(resolve(self._decided(chosen), self._resolve))
        return documents

    def _create_role(self, logical_id: str) -> str:
        """The function's execution role, holding exactly its policies from template.yaml."""
        iam = self.client("iam")
        # SAM names it <function>Role and CloudFormation generates its name: a spoke's trust matches
        # `<hub stack>-<Step>FunctionRole-*` (docs/decisions.md, "Many accounts and Regions").
        role_name = generated_name(self.stack_name, f"{logical_id}Role")
        arn = str(iam.create_role(RoleName=role_name, AssumeRolePolicyDocument=LAMBDA_TRUST_POLICY)["Role"]["Arn"])
        for index, document in enumerate(self._policy_documents(logical_id)):
            iam.put_role_policy(RoleName=role_name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document))
        return arn

    @property
    def state_machine_role_name(self) -> str:
        """The patch cycle state machine's execution role, holding its Policies from template.yaml."""
        return machine_role_name(self.template.state_machine().logical_id)

    def _create_state_machine_role(self, logical_id: str) -> str:
        return str(
            self.client("iam").create_role(
                RoleName=machine_role_name(logical_id), AssumeRolePolicyDocument=STATES_TRUST_POLICY
            )["Role"]["Arn"]
        )

    def _put_state_machine_policies(self, logical_id: str) -> None:
        role_name = machine_role_name(logical_id)
        for index, document in enumerate(self._policy_documents(logical_id)):
            self.client("iam").put_role_policy(
                RoleName=role_name, PolicyName=f"policy-{index}", PolicyDocument=json.dumps(document)
            )

    def _create_state_machine(self, logical_id: str, role_arn: str) -> str:
        machine = self.template.state_machine(logical_id)
        substitutions = {name: str(resolve(value, self._resolve)) for name, value in machine.substitutions.items()}
        definition = substitute_definition(machine.definition_path.read_text(encoding="utf-8"), substitutions)
        arn = str(
            self.client("stepfunctions").create_state_machine(
                name=str(resolve(machine.name, self._resolve)) if machine.name else f"tagpatch-local-{logical_id}",
                definition=definition,
                roleArn=role_arn,
                type="STANDARD",
            )["stateMachineArn"]
        )
        self.physical[(logical_id, None)] = arn
        return arn

    def role_arn(self, logical_id: str) -> str:
        """The execution role of a function (by its template logical id)."""
        for function in self.dispatcher.functions.values():
            if function.spec.logical_id == logical_id:
                return function.role_arn
        raise TemplateError(f"no function {logical_id} in this account")

    def _create_function(self, spec: FunctionSpec) -> None:
        name = f"tagpatch-local-{spec.logical_id}"
        role_arn = self._create_role(spec.logical_id)
        environment = self._environment_for(spec)
        archive = io.BytesIO()
        with zipfile.ZipFile(archive, "w") as bundle:
            bundle.writestr("README", "dispatched in-process by tagpatch_local.runner")
        arn = self.client("lambda").create_function(
            FunctionName=name,
            Runtime="python3.13",
            Role=role_arn,
            Handler=spec.handler,
            Code={"ZipFile": archive.getvalue()},
            Timeout=spec.timeout,
            MemorySize=spec.memory,
            Environment={"Variables": environment},
        )["FunctionArn"]
        self.dispatcher.functions[name] = LocalFunction(
            spec, name, arn, {**environment, "AWS_LAMBDA_FUNCTION_NAME": name, **LOCAL_ENVIRONMENT}, role_arn
        )
        self.physical.update({(spec.logical_id, None): name, (spec.logical_id, "Arn"): arn})

    def _deploy(self) -> None:
        self.dispatcher.sts = self.client("sts")
        machine = self.template.state_machine()
        # Step Functions invokes each function under the state machine's role (simulator/stepfunctions.py checks it).
        self._role_arn = self._create_state_machine_role(machine.logical_id)
        for logical_id in self.template.functions():
            if self.enabled(logical_id):
                self._resolve(logical_id, "Arn")
        self._put_state_machine_policies(machine.logical_id)
        # Resources nothing refers to that still shape what happens: rules that route events, the
        # topic and bucket policies that let services deliver, the permissions that let services invoke functions,
        # Config rules (which evaluate only while the account's recorder runs), the data sync and the runbooks.
        kinds = (
            "AWS::Events::Rule",
            "AWS::SNS::TopicPolicy",
            "AWS::SQS::QueuePolicy",
            "AWS::S3::BucketPolicy",
            "AWS::Lambda::Permission",
            "AWS::Config::ConfigRule",
            "AWS::SSM::ResourceDataSync",
            "AWS::SSM::Document",  # the runbooks a window's Automation task runs by name
        )
        for logical_id in self.template.resources:
            if self.template.resource_type(logical_id) in kinds and self.enabled(logical_id):
                self._resolve(logical_id, None)
        self.state_machine_arn = self._create_state_machine(machine.logical_id, self._role_arn)
        # The org cycle starts the patch cycle, so it comes after it (the schedule that starts it is not deployed).
        if ORG_CYCLE_MACHINE in self.template.resources:
            org_role = self._create_state_machine_role(ORG_CYCLE_MACHINE)
            self._put_state_machine_policies(ORG_CYCLE_MACHINE)
            self.org_cycle_arn = self._create_state_machine(ORG_CYCLE_MACHINE, org_role)
        # Alarms watch the state machine too, so they come last; each notifies as CloudWatch does.
        for logical_id in self.template.resources:
            if self.template.resource_type(logical_id) == "AWS::CloudWatch::Alarm" and self.enabled(logical_id):
                self._resolve(logical_id, None)
        # Dashboards name the alarms and the state machine, so they come after both.
        for logical_id in self.template.resources:
            if self.template.resource_type(logical_id) == "AWS::CloudWatch::Dashboard" and self.enabled(logical_id):
                self._resolve(logical_id, None)
        # QuickSight's data source, datasets and dashboard (with QuickSightPrincipalArn), each before what names it.
        for logical_id in self.template.resources:
            if self.template.resource_type(logical_id).startswith("AWS::QuickSight::") and self.enabled(logical_id):
                self._resolve(logical_id, None)

    def physical_id(self, logical_id: str) -> str:
        """What `!Ref <logical_id>` is in this account (a bucket name, a topic ARN, a baseline id)."""
        return self._resolve(logical_id, None)

    @property
    def artifact_bucket(self) -> str:
        return self.physical_id("ArtifactBucket")
