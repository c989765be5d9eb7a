"""Translate a SAM template (JSON on stdin) to the CloudFormation SAM deploys (JSON on stdout).

Runs in .venv-sam, which has SAM's own translator (aws-sam-translator); the IAM judges read its output
so that SAM's policy templates are judged as deployed. Local CodeUri/DefinitionUri/ContentUri paths
become placeholder S3 URIs, as `sam build`/`sam package` would make them.
"""

from __future__ import annotations

import json
import os
import sys

from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

LOCAL_PATHS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::StateMachine": "DefinitionUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
}


def main() -> None:
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the translator asks for a partition
    template = json.load(sys.stdin)
    for resource in template.get("Resources", {}).values():
        prop = LOCAL_PATHS.get(resource.get("Type"))
        properties = resource.get("Properties") or {}
        if prop and isinstance(properties.get(prop), str):
            properties[prop] = "s3://local-build/" + properties[prop].strip("/")
    translated = Translator(managed_policy_map={}, sam_parser=Parser()).translate(
        sam_template=template, parameter_values={}
    )
    json.dump(translated, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
