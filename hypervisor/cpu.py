"""CPU models and features as libvirt knows them: which models a host's libvirt names, what a
CPU definition amounts to in features, and the <cpu> element that asks for one model.

Features come from libvirt's own CPU map (baselineCPU with EXPAND_FEATURES), so vmotion
never keeps a table of its own of what "Westmere" contains.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass
from xml.sax.saxutils import escape

import libvirt

from .connection import with_connection

# Feature policies a guest CPU definition may give; "optional" ones are used only where the
# host has them, so they never stop a guest from starting.
_WANTED = {"", "require", "force"}
_REFUSED = {"disable", "forbid"}


@dataclass(frozen=True)
class ModelFacts:
    """What one host's libvirt says of a CPU model name for an architecture."""

    known_models: tuple[str, ...]
    features: frozenset[str] | None  # None when the model is unknown or libvirt cannot expand it


def model_cpu_xml(model: str) -> str:
    """The guest <cpu> element that gives a VM exactly this model, wherever it starts."""
    return f"<cpu mode='custom' match='exact' check='partial'><model fallback='forbid'>{escape(model)}</model></cpu>"


def arch_of(host_cpu_xml: str, default: str = "x86_64") -> str:
    try:
        return ET.fromstring(host_cpu_xml).findtext("arch", default=default) or default
    except ET.ParseError:
        return default


def describe_model(uri: str, arch: str, model: str, timeout: float) -> ModelFacts:
    """The CPU models libvirt at `uri` knows for `arch`, and the features of `model` among them."""

    def read(conn: libvirt.virConnect) -> ModelFacts:
        known = tuple(conn.getCPUModelNames(arch, 0))
        features = features_of(conn, model_cpu_xml(model), arch) if model in known else None
        return ModelFacts(known_models=known, features=features)

    return with_connection(uri, timeout, read)


def features_of(conn: libvirt.virConnect, cpu_xml: str, arch: str) -> frozenset[str] | None:
    """Every feature a host or guest <cpu> element amounts to: its model's, plus those it adds,
    less those it disables. None when it names no model or libvirt cannot expand it."""
    request = _expandable(cpu_xml, arch)
    if request is None:
        return None
    xml, refused = request
    try:
        expanded = ET.fromstring(conn.baselineCPU([xml], libvirt.VIR_CONNECT_BASELINE_CPU_EXPAND_FEATURES))
    except libvirt.libvirtError:
        return None  # an unknown model, or a driver without a CPU map (the test driver's i686 host)
    return frozenset(_feature_names(expanded, _WANTED)) - refused


def _expandable(cpu_xml: str, arch: str) -> tuple[str, frozenset[str]] | None:
    """The CPU as baselineCPU takes it (host form: arch, model, vendor, features) and the
    features it refuses, which baselineCPU would otherwise count in with the model's."""
    try:
        cpu = ET.fromstring(cpu_xml)
    except ET.ParseError:
        return None
    model = (cpu.findtext("model") or "").strip()
    if not model:
        return None
    vendor = cpu.findtext("vendor")
    added = "".join(f"<feature name='{escape(name)}'/>" for name in _feature_names(cpu, _WANTED))
    xml = (
        f"<cpu><arch>{escape(cpu.findtext('arch') or arch)}</arch><model>{escape(model)}</model>"
        f"{f'<vendor>{escape(vendor)}</vendor>' if vendor else ''}{added}</cpu>"
    )
    return xml, frozenset(_feature_names(cpu, _REFUSED))


def _feature_names(cpu: ET.Element, policies: set[str]) -> list[str]:
    return [f.get("name", "") for f in cpu.findall("feature") if f.get("policy", "") in policies and f.get("name")]
