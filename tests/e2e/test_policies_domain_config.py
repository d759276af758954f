"""/v3/policies and /v3/domains/{id}/config through python-keystoneclient's
`policies` and `domain_configs` managers, and `openstack policy create/list/show/
set/delete`, against the real keystone-rs binary.
"""

import json

import pytest
from keystoneauth1 import exceptions as ka_exc
from keystoneclient.v3 import client as ks_client

from conftest import osc, osc_run


@pytest.fixture
def ksc(admin_session):
    return ks_client.Client(session=admin_session, interface="public")


def test_keystoneclient_policies(ksc):
    blob = json.dumps({"compute:get": ""})
    p = ksc.policies.create(blob=blob, type="application/json", color="red")
    assert p.blob == blob and p.type == "application/json" and p.color == "red"
    assert ksc.policies.get(p.id).blob == blob
    assert p.id in [x.id for x in ksc.policies.list()]
    assert p.id in [x.id for x in ksc.policies.list(type="application/json")]
    assert p.id not in [x.id for x in ksc.policies.list(type="text/plain")]
    updated = ksc.policies.update(p.id, blob="{}", type="text/plain")
    assert updated.blob == "{}" and updated.type == "text/plain" and updated.color == "red"

    # OS-ENDPOINT-POLICY through keystoneclient's endpoint_policy manager.
    service = ksc.services.create(name="e2e-nova", type="e2e-compute")
    endpoint = ksc.endpoints.create(service=service, url="http://compute", interface="public",
                                    region="RegionOne")
    try:
        ksc.endpoint_policy.create_policy_association_for_service(p, service)
        ksc.endpoint_policy.check_policy_association_for_service(p, service)
        assert ksc.endpoint_policy.get_policy_for_endpoint(endpoint).id == p.id
        assert [e.id for e in ksc.endpoint_policy.list_endpoints_for_policy(p)] == [endpoint.id]
        ksc.endpoint_policy.delete_policy_association_for_service(p, service)
        with pytest.raises(ka_exc.NotFound):
            ksc.endpoint_policy.get_policy_for_endpoint(endpoint)
    finally:
        ksc.endpoints.delete(endpoint)
        ksc.services.delete(service)

    ksc.policies.delete(p.id)
    with pytest.raises(ka_exc.NotFound):
        ksc.policies.get(p.id)


def test_keystoneclient_domain_configs(ksc):
    domain = ksc.domains.create(name="e2e-config-domain")
    try:
        config = {
            "identity": {"driver": "sql"},
            "ldap": {"url": "ldap://ldap.example.org", "user_tree_dn": "ou=Users",
                     "password": "secret"},
        }
        created = ksc.domain_configs.create(domain, config)
        # The sensitive ldap.password is stored, never returned.
        assert created.ldap == {"url": "ldap://ldap.example.org", "user_tree_dn": "ou=Users"}
        assert created.identity == {"driver": "sql"}
        got = ksc.domain_configs.get(domain)
        assert got.ldap == created.ldap
        updated = ksc.domain_configs.update(domain, {"ldap": {"suffix": "dc=example"}})
        assert updated.ldap["suffix"] == "dc=example"
        assert updated.ldap["url"] == "ldap://ldap.example.org"
        # keystone-rs has no LDAP driver: a domain may not ask for one.
        with pytest.raises(ka_exc.Forbidden) as refused:
            ksc.domain_configs.update(domain, {"identity": {"driver": "ldap"}})
        assert "identity driver ldap is not supported" in str(refused.value)
        with pytest.raises(ka_exc.Forbidden):
            ksc.domain_configs.create(domain, {"token": {"expiration": 1}})
        ksc.domain_configs.delete(domain)
        with pytest.raises(ka_exc.NotFound):
            ksc.domain_configs.get(domain)
    finally:
        ksc.domains.update(domain, enabled=False)
        ksc.domains.delete(domain)


def test_openstack_policy_commands(keystone, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"identity:list_users": ""}))
    created = osc(keystone, "policy", "create", "--type", "application/json", str(rules),
                  "-f", "json")
    pid = created["id"]
    assert created["type"] == "application/json"
    listed = osc(keystone, "policy", "list", "--long", "-f", "json")
    assert pid in [p["ID"] for p in listed]
    shown = osc(keystone, "policy", "show", pid, "-f", "json")
    assert json.loads(shown["rules"]) == {"identity:list_users": ""}
    osc(keystone, "policy", "set", "--type", "text/plain", pid)
    assert osc(keystone, "policy", "show", pid, "-f", "json")["type"] == "text/plain"
    osc(keystone, "policy", "delete", pid)
    out = osc_run(keystone, "policy", "show", pid)
    assert out.returncode != 0
