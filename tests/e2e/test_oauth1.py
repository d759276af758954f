"""OS-OAUTH1 with the real clients: python-keystoneclient's `v3.contrib.oauth1`
(consumers, request tokens signed by oauthlib, authorization, access tokens, and its
`OAuth` auth plugin for a Keystone token), plus requests-style signatures made by
oauthlib's Client directly, against the real keystone-rs binary."""

import pytest
import requests
from keystoneauth1 import exceptions as ka_exc
from keystoneauth1 import session
from keystoneclient.v3 import client as ks_client
from keystoneclient.v3.contrib.oauth1 import auth as oauth_auth
from oauthlib import oauth1


@pytest.fixture
def ksc(admin_session):
    return ks_client.Client(session=admin_session, interface="public")


def _access(keystone, ksc):
    """consumer → request token → authorize (the admin, with `admin`) → access token."""
    consumer = ksc.oauth1.consumers.create(description="e2e consumer")
    project_id = keystone.admin_project_id()
    request = ksc.oauth1.request_tokens.create(consumer.id, consumer.secret, project_id)
    assert len(request.key) == 32 and request.secret and request.expires.endswith("Z")
    admin_role = [r for r in ksc.roles.list() if r.name == "admin"][0]
    verifier = ksc.oauth1.request_tokens.authorize(request.key, [admin_role.id])
    access = ksc.oauth1.access_tokens.create(
        consumer.id, consumer.secret, request.key, request.secret, verifier.oauth_verifier)
    return consumer, access, project_id, admin_role


def test_keystoneclient_oauth1_flow(keystone, ksc):
    consumer, access, project_id, admin_role = _access(keystone, ksc)
    # Consumers: the secret only at create; update; list.
    assert "secret" not in ksc.oauth1.consumers.get(consumer.id)._info
    ksc.oauth1.consumers.update(consumer.id, description="renamed")
    assert ksc.oauth1.consumers.get(consumer.id).description == "renamed"
    assert consumer.id in [c.id for c in ksc.oauth1.consumers.list()]

    plugin = oauth_auth.OAuth(
        auth_url=keystone.auth_url,
        consumer_key=consumer.id,
        consumer_secret=consumer.secret,
        access_key=access.key,
        access_secret=access.secret,
    )
    token = plugin.get_access(session.Session(auth=plugin))
    body = dict(token)  # keystoneclient's AccessInfoV3: the token body
    assert body["methods"] == ["oauth1"]
    assert body["project"]["id"] == project_id
    assert body["OS-OAUTH1"] == {"access_token_id": access.key, "consumer_id": consumer.id}
    assert admin_role.id in [r["id"] for r in body["roles"]]
    validated = ksc.tokens.validate(token.auth_token)
    assert validated["OS-OAUTH1"]["consumer_id"] == consumer.id

    # The user's access tokens and their roles.
    user_id = keystone.admin_user_id()
    resp = keystone.api("GET", f"/users/{user_id}/OS-OAUTH1/access_tokens",
                        keystone.admin_token(), 200)
    assert access.key in [t["id"] for t in resp.json()["access_tokens"]]
    roles = keystone.api(
        "GET", f"/users/{user_id}/OS-OAUTH1/access_tokens/{access.key}/roles",
        keystone.admin_token(), 200).json()["roles"]
    assert [r["id"] for r in roles] == [admin_role.id]

    # Deleting the consumer ends the token and the access token.
    ksc.oauth1.consumers.delete(consumer.id)
    with pytest.raises(ka_exc.NotFound):
        ksc.tokens.validate(token.auth_token)
    with pytest.raises(ka_exc.http.HttpError):
        plugin2 = oauth_auth.OAuth(auth_url=keystone.auth_url, consumer_key=consumer.id,
                                   consumer_secret=consumer.secret, access_key=access.key,
                                   access_secret=access.secret)
        plugin2.get_access(session.Session(auth=plugin2))


def test_oauthlib_signatures_and_refusals(keystone, ksc):
    consumer, access, _, _ = _access(keystone, ksc)
    url = keystone.auth_url.rstrip("/") + "/auth/tokens"
    body = '{"auth": {"identity": {"methods": ["oauth1"], "oauth1": {}}}}'

    def post(client):
        _, headers, _ = client.sign(url, http_method="POST")
        headers["Content-Type"] = "application/json"
        return requests.post(url, headers=headers, data=body, timeout=30)

    # HMAC-SHA256 and PLAINTEXT are accepted as oauthlib's server accepts them.
    for method in (oauth1.SIGNATURE_HMAC_SHA1, oauth1.SIGNATURE_HMAC_SHA256,
                   oauth1.SIGNATURE_PLAINTEXT):
        client = oauth1.Client(consumer.id, client_secret=consumer.secret,
                               resource_owner_key=access.key,
                               resource_owner_secret=access.secret,
                               signature_method=method)
        resp = post(client)
        assert resp.status_code == 201, (method, resp.text)
    # A wrong secret, a wrong access secret: 401 in Keystone's JSON shape.
    for secrets in ((consumer.secret, "wrong"), ("wrong", access.secret)):
        client = oauth1.Client(consumer.id, client_secret=secrets[0],
                               resource_owner_key=access.key,
                               resource_owner_secret=secrets[1])
        resp = post(client)
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == 401
    # A request token signed with the wrong consumer secret.
    req_url = keystone.auth_url.rstrip("/") + "/OS-OAUTH1/request_token"
    client = oauth1.Client(consumer.id, client_secret="wrong", callback_uri="oob")
    _, headers, _ = client.sign(req_url, http_method="POST")
    headers["Requested-Project-Id"] = keystone.admin_project_id()
    resp = requests.post(req_url, headers=headers, timeout=30)
    assert resp.status_code == 401, resp.text
    ksc.oauth1.consumers.delete(consumer.id)
