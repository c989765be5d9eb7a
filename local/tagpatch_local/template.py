"""Reads template.yaml so the local runner deploys exactly what `sam deploy` would.

Each function's handler, code directory, layers and environment, and the state machine's definition
and substitutions come from the template: there is no second list to keep in sync.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

SUB_PLACEHOLDER: Final = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class TemplateError(ValueError):
    """template.yaml holds something the local runner cannot reproduce."""


class _CfnLoader(yaml.SafeLoader):
    """Turns CloudFormation short-form tags (!Ref, !GetAtt, !Sub, ...) into their long forms."""


def _construct_intrinsic(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if name == "Fn::GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    document = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass
    if not isinstance(document, dict) or "Resources" not in document:
        raise TemplateError(f"{path}: not a CloudFormation template (no Resources)")
    return document


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str
    code_dir: Path
    handler: str  # module.function, relative to code_dir
    environment: Mapping[str, Any]  # values may still hold intrinsics
    layer_ids: tuple[str, ...]
    timeout: int
    memory: int


@dataclass(frozen=True)
class StateMachineSpec:
    logical_id: str
    definition_path: Path
    substitutions: Mapping[str, Any]
    name: Any = None  # the Name property, which may hold intrinsics


@dataclass(frozen=True)
class Template:
    root: Path
    document: Mapping[str, Any]

    @classmethod
    def load(cls, path: Path) -> Template:
        return cls(path.parent.resolve(), load_template(path))

    @property
    def resources(self) -> Mapping[str, Any]:
        resources: Mapping[str, Any] = self.document["Resources"]
        return resources

    def resource_type(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise TemplateError(f"template.yaml has no resource {logical_id!r}")
        return str(self.resources[logical_id]["Type"])

    def parameter_defaults(self) -> dict[str, str]:
        return {name: str(spec.get("Default", "")) for name, spec in self.document.get("Parameters", {}).items()}

    def global_environment(self) -> dict[str, Any]:
        """Environment variables every function gets from the Globals block."""
        variables: dict[str, Any] = self.document.get("Globals", {}).get("Function", {}).get("Environment", {})
        return dict(variables.get("Variables", {}))

    def functions(self) -> dict[str, FunctionSpec]:
        """Every AWS::Serverless::Function with Globals merged the way SAM merges them."""
        globals_ = self.document.get("Globals", {}).get("Function", {})
        specs = {}
        for logical_id, resource in self.resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            props = resource.get("Properties", {})
            environment = {**self.global_environment(), **props.get("Environment", {}).get("Variables", {})}
            # SAM appends a function's Layers to the global ones.
            layers = [*globals_.get("Layers", []), *props.get("Layers", [])]
            layer_ids = tuple(layer["Ref"] for layer in layers if isinstance(layer, dict) and "Ref" in layer)
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_dir=self.root / str(props["CodeUri"]),
                handler=str(props.get("Handler", globals_.get("Handler", ""))),
                environment=environment,
                layer_ids=layer_ids,
                timeout=int(props.get("Timeout", globals_.get("Timeout", 3))),
                memory=int(props.get("MemorySize", globals_.get("MemorySize", 128))),
            )
        return specs

    def layer_dir(self, logical_id: str) -> Path:
        resource = self.resources[logical_id]
        if resource["Type"] != "AWS::Serverless::LayerVersion":
            raise TemplateError(f"{logical_id} is a {resource['Type']}, not a layer")
        return self.root / str(resource["Properties"]["ContentUri"])

    def state_machine(self, logical_id: str = "PatchCycleStateMachine") -> StateMachineSpec:
        props = self.resources[logical_id]["Properties"]
        return StateMachineSpec(
            logical_id=logical_id,
            definition_path=self.root / str(props["DefinitionUri"]),
            substitutions=props.get("DefinitionSubstitutions", {}),
            name=props.get("Name"),
        )


Resolver = Callable[[str, str | None], str]
"""(logical id or parameter, attribute or None for Ref) -> physical value."""


def resolve(value: Any, resolver: Resolver) -> Any:  # noqa: PLR0911 - one return per intrinsic function, flat like CloudFormation's list
    """Evaluate the intrinsics the runner supports: Ref, Fn::GetAtt, Fn::Sub, Fn::Join, Fn::Split."""
    if isinstance(value, list):
        return [resolve(item, resolver) for item in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        return {key: resolve(item, resolver) for key, item in value.items()}
    ((name, argument),) = value.items()
    if name == "Ref":
        return resolver(str(argument), None)
    if name == "Fn::GetAtt":
        logical_id, attribute = argument
        return resolver(str(logical_id), str(attribute))
    if name == "Fn::Sub":
        text, variables = (argument, {}) if isinstance(argument, str) else argument
        local = {key: resolve(item, resolver) for key, item in variables.items()}

        def substitute(match: re.Match[str]) -> str:
            token = match.group(1)
            if token in local:
                return str(local[token])
            if "." in token and not token.startswith("AWS::"):
                logical_id, attribute = token.split(".", 1)
                return resolver(logical_id, attribute)
            return resolver(token, None)

        return SUB_PLACEHOLDER.sub(substitute, str(text))
    if name == "Fn::Join":
        separator, items = argument
        return str(separator).join(str(resolve(item, resolver)) for item in items)
    if name == "Fn::Split":
        separator, source = argument
        return str(resolve(source, resolver)).split(str(separator))
    if name.startswith("Fn::"):
        raise TemplateError(f"the local runner does not evaluate {name}")
    return {name: resolve(argument, resolver)}


def substitute_definition(definition_text: str, substitutions: Mapping[str, str]) -> str:
    """Apply DefinitionSubstitutions like Step Functions does: `${Name}` placeholders only.

    A regex rather than string.Template, which would trip over JSONPath's `$.` and `$$`.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in substitutions:
            raise TemplateError(f"the state machine definition uses ${{{name}}}, which DefinitionSubstitutions lacks")
        return substitutions[name]

    text = SUB_PLACEHOLDER.sub(replace, definition_text)
    json.loads(text)  # fail here, not inside moto, if a substitution broke the JSON
    return text
