"""Heat's own stack validation, run offline: ``python heat_engine.py < jobs.json``.

Heat (PyPI ``openstack-heat``) parses each template, builds a ``heat.engine.stack.Stack``
with the given parameters and calls ``Stack.validate()`` — the check ``openstack stack
create`` runs before it creates anything: the HOT version, parameters and conditions,
every resource's properties against its plugin's schema, intrinsic functions, references
and dependency loops, duplicate names. Only what needs a cloud is stubbed, as Heat's own
unit tests stub it (``heat.tests.common.HeatTestCase``): Keystone (its fake client), the
policy enforcer, the custom constraints that look names up in Nova, Glance and Neutron,
Neutron's extension list (networking-sfc present), and the two look-ups a server's
validation makes — a Glance image (the Debian 12 generic cloud image: active, 2 GiB
virtual disk) and the Nova flavours, which are those the template itself creates with
``create_flavors`` (so image and flavour sizes are really compared) — and Nova's absolute
limits for the metadata check (its default quotas). The database is
Heat's in-memory SQLite (``heat.tests.utils.setup_dummy_db``).

It runs in its own process: Heat configures oslo.config, oslo.messaging and SQLAlchemy
globally, which must not leak into the rest of the test session.

Input: ``[{"id": ..., "template": TEXT, "parameters": {...}}, ...]``; output:
``[{"id": ..., "error": null | "ExceptionType: message"}, ...]`` on stdout.
"""

from __future__ import annotations

import json
import logging
import sys
from types import SimpleNamespace
from unittest import mock

import yaml


def _setup(flavors: dict[str, SimpleNamespace]):
    from oslo_service import backend

    backend.init_backend(backend.BackendType.THREADING)
    from heat.common import messaging, policy
    from heat.engine import resources
    from heat.engine.clients.os import glance, keystone, neutron, nova
    from heat.engine.clients.os.keystone import fake_keystoneclient as fake_ks
    from heat.engine.clients.os.neutron import neutron_constraints as nc
    from heat.tests import utils
    from novaclient import exceptions as nova_exc

    messaging.setup("fake://", optional=True)
    utils.setup_dummy_db()
    resources.initialise()

    image = SimpleNamespace(status="active", min_ram=0, min_disk=2, name="image")

    def get_flavor(_plugin, name):
        if name not in flavors:
            raise nova_exc.NotFound(404, f"Flavor {name} could not be found.")
        return flavors[name]

    patches = [
        mock.patch.object(keystone.KeystoneClientPlugin, "_create",
                          return_value=fake_ks.FakeKeystoneClient()),
        mock.patch.object(policy.ResourceEnforcer, "enforce"),
        mock.patch.object(neutron.NeutronClientPlugin, "has_extension", return_value=True),
        mock.patch.object(glance.GlanceClientPlugin, "get_image", return_value=image),
        mock.patch.object(nova.NovaClientPlugin, "get_flavor", get_flavor),
        # Nova's default quotas ([quota] metadata_items = 128, injected_files = 5)
        mock.patch.object(nova.NovaClientPlugin, "absolute_limits",
                          return_value={"maxServerMeta": 128, "maxPersonality": 5,
                                        "maxPersonalitySize": 10240}),
    ]
    for constraint in (nova.FlavorConstraint, nova.KeypairConstraint, glance.ImageConstraint,
                       nc.NetworkConstraint, nc.PortConstraint, nc.SubnetConstraint):
        patches.append(mock.patch.object(constraint, "validate", return_value=True))
    for p in patches:
        p.start()
    return utils.dummy_context


def _flavors(templates: list[dict]) -> dict[str, SimpleNamespace]:
    """The flavours the templates create, by name: the cloud's catalogue in these tests."""
    out = {}
    for t in templates:
        for r in (t.get("resources") or {}).values():
            if r.get("type") == "OS::Nova::Flavor":
                p = r["properties"]
                out[p["name"]] = SimpleNamespace(name=p["name"], ram=p["ram"],
                                                 disk=p.get("disk", 0), vcpus=p["vcpus"])
    return out


def main() -> None:
    logging.disable(logging.CRITICAL)
    jobs = json.load(sys.stdin)
    parsed = [yaml.safe_load(j["template"]) for j in jobs]  # only to list the flavours
    dummy_context = _setup(_flavors(parsed))
    from heat.common import template_format
    from heat.engine import environment
    from heat.engine import stack as parser
    from heat.engine import template as templatem

    results = []
    for job in jobs:
        tmpl = templatem.Template(template_format.parse(job["template"]),
                                  env=environment.Environment(job["parameters"]))
        stack = parser.Stack(dummy_context(), "mosaico-validate", tmpl)
        try:
            stack.validate()
            error = None
        except Exception as e:  # Heat's verdict, reported to the test
            error = f"{type(e).__name__}: {e}"
        results.append({"id": job["id"], "error": error})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
